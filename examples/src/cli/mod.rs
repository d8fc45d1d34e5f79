//! Subcommands of the `gumbolt` binary, one module each.
//!
//! A subcommand is a `clap::Args` struct and a `run(args) -> anyhow::Result<()>`. Usage errors
//! found after parsing (e.g. an estimator setting the estimator rejects) are returned as a
//! [`clap::Error`] built by [`usage_error`], which `main` turns into exit code 2.

mod logz;
mod progress;

use clap::{CommandFactory, Parser, Subcommand};
use std::fmt::Display;

/// The gumbolt toolkit: VAEs with Boltzmann-machine priors (GumBolt, NeurIPS 2018).
#[derive(Debug, Parser)]
#[command(name = "gumbolt", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Estimate the log-partition function log Z of an RBM (exact, AIS, or PT + bridge sampling).
    Logz(logz::LogzArgs),
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Logz(args) => logz::run(args),
    }
}

/// A usage error of subcommand `sub`, reported by clap (with its usage line) and exit code 2.
pub(crate) fn usage_error(sub: &str, message: impl Display) -> anyhow::Error {
    let mut cmd = Cli::command();
    cmd.build();
    let kind = clap::error::ErrorKind::ValueValidation;
    let err = match cmd.find_subcommand_mut(sub) {
        Some(s) => s.error(kind, message),
        None => cmd.error(kind, message),
    };
    err.into()
}

/// Value parser: an integer `≥ MIN`.
pub(crate) fn int_at_least<const MIN: usize>(s: &str) -> Result<usize, String> {
    let v: usize = s
        .trim()
        .parse()
        .map_err(|_| format!("expected an integer ≥ {MIN}"))?;
    if v < MIN {
        return Err(format!("expected an integer ≥ {MIN}, got {v}"));
    }
    Ok(v)
}

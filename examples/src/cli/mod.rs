//! Subcommands of the `gumbolt` binary, one module each.
//!
//! A subcommand is a `clap::Args` struct and a `run(args) -> anyhow::Result<()>`. Usage errors
//! found after parsing (e.g. an estimator setting the estimator rejects) are returned as a
//! [`clap::Error`] built by [`usage_error`], which `main` turns into exit code 2.

mod dataset;
mod hostload;
mod manifest;
mod prior_arg;
mod progress;
mod registry;
mod rundir;

use clap::{CommandFactory, Parser, Subcommand};
use std::fmt::Display;

/// The gumbolt toolkit: VAEs with Boltzmann-machine priors (GumBolt, NeurIPS 2018).
#[derive(Debug, Parser)]
#[command(name = "gumbolt", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Declares the subcommands: for each, its module, its variant of `Command` (the module's
/// `clap::Args` struct, whose doc comment is the subcommand's help text) and its arm in [`run`]
/// (the module's `run(args) -> anyhow::Result<()>`). Adding a subcommand is one line here.
macro_rules! subcommands {
    ($($variant:ident => $module:ident :: $args:ident,)*) => {
        $(mod $module;)*

        #[derive(Debug, Subcommand)]
        enum Command {
            $($variant($module::$args),)*
        }

        /// Runs the parsed command.
        pub fn run(cli: Cli) -> anyhow::Result<()> {
            match cli.command {
                $(Command::$variant(args) => $module::run(args),)*
            }
        }
    };
}

subcommands! {
    Train => train::TrainArgs,
    Eval => eval::EvalArgs,
    Sample => sample::SampleArgs,
    Export => export::ExportArgs,
    Quick => quick::QuickArgs,
    Reproduce => reproduce::ReproduceArgs,
    Logz => logz::LogzArgs,
    Bench => bench::BenchArgs,
}

/// The number of cores (1 if unknown): the default of every `--threads`.
pub(crate) fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
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

/// The error and its causes on one line, `a: b: c`, leaving out a cause whose text the message
/// already contains (several library errors include their source in their own message).
pub(crate) fn one_line(e: &anyhow::Error) -> String {
    let mut msg = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !msg.contains(&text) {
            if !msg.is_empty() {
                msg.push_str(": ");
            }
            msg.push_str(&text);
        }
    }
    msg.replace('\n', " ")
}

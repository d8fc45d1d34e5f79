//! `gumbolt`: the command line of the gumbolt toolkit.
//!
//! ```text
//! gumbolt logz --rbm rbm.json --method pt --json
//! gumbolt logz --random --n1 12 --n2 30 --scale 0.5 --seed 1 --method ais
//! ```
//!
//! Exit codes: 0 on success, 2 for usage errors (invalid or conflicting options), 1 for any
//! other error (unreadable or malformed input file, failed estimate). Errors are one line on
//! stderr, prefixed `error:`.

mod cli;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(usage) = e.downcast_ref::<clap::Error>() {
                usage.exit();
            }
            eprintln!("error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, `a: b: c`, leaving out a cause whose text the message
/// already contains (several library errors include their source in their own message).
fn one_line(e: &anyhow::Error) -> String {
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

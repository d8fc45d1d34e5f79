//! `gumbolt`: the command line of the gumbolt toolkit.
//!
//! ```text
//! gumbolt train --structure nonlinear --k 1 --iters 3000 --seed 0 --out runs/quick
//! gumbolt eval --run runs/quick --samples 1000 --json
//! gumbolt sample --run runs/quick --n 64 --out runs/quick/samples.png
//! gumbolt quick --out runs/quick
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

/// GEMM threads per process when the user has not chosen: the evaluator and the log Z
/// estimators run one worker thread per core, which is faster than threaded GEMMs; training
/// gains little from a second GEMM thread (measured on 2 cores: none at k = 1, ≈ 7 % at k = 5).
const DEFAULT_MATMUL_THREADS: &str = "1";

fn main() -> ExitCode {
    let bench_threads = bench_threads(std::env::args());
    if let Some(t) = &bench_threads {
        // SAFETY: as below: first statements of `main`, before any thread or GEMM exists.
        unsafe { std::env::set_var("MATMUL_NUM_THREADS", t) };
    } else if std::env::var_os("MATMUL_NUM_THREADS").is_none() {
        // SAFETY: first statement of `main`, before any thread is spawned or any GEMM reads
        // the variable (matrixmultiply reads it once, lazily), so nothing reads or writes the
        // environment concurrently.
        unsafe { std::env::set_var("MATMUL_NUM_THREADS", DEFAULT_MATMUL_THREADS) };
    }
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(usage) = e.downcast_ref::<clap::Error>() {
                usage.exit();
            }
            eprintln!("error: {}", cli::one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// The value of `--threads T` (or `--threads=T`) of `gumbolt bench`, when it is a positive
/// integer: it must reach MATMUL_NUM_THREADS before any GEMM runs, so it is read from the raw
/// arguments ahead of parsing (other values are left to clap to reject; the last one wins, as
/// in clap).
fn bench_threads(args: impl Iterator<Item = String>) -> Option<String> {
    let args: Vec<String> = args.skip(1).collect();
    if args.first().map(String::as_str) != Some("bench") {
        return None;
    }
    let mut found = None;
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        if a == "--" {
            break;
        }
        let v = if a == "--threads" {
            it.next().cloned()
        } else {
            a.strip_prefix("--threads=").map(str::to_string)
        };
        if let Some(v) = v {
            found = Some(v);
        }
    }
    found
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n >= 1)
        .map(|n| n.to_string())
}

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

/// matrixmultiply's own GEMM threads when the user has not chosen: training steps split their
/// GEMMs over their own thread pool (`--threads`), and the evaluator and the log Z estimators
/// run one worker thread per core, which is faster than threaded GEMMs.
const DEFAULT_MATMUL_THREADS: &str = "1";

fn main() -> ExitCode {
    // Subnormal floats cost microcode assists on many x86-64 CPUs (3× slower k = 20 steps):
    // flush them to zero on this thread; the library does the same on the threads it creates.
    gumbolt_core::fpmode::enable_flush_to_zero();
    if std::env::var_os("MATMUL_NUM_THREADS").is_none() {
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

//! `gumbolt quick`: `train`, `eval` and `sample` in one go with a small budget.

use super::dataset::DatasetArg;
use super::eval::{self, EvalArgs, LogzArg};
use super::int_at_least;
use super::sample::{self, SampleArgs};
use super::train::{self, TrainArgs};
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

/// Train briefly, evaluate and sample in one go (a few minutes on two cores).
///
/// `gumbolt train --structure nonlinear --k 1 --iters ITERS --seed SEED --out OUT`, then
/// `gumbolt eval --run OUT --samples SAMPLES --json` and `gumbolt sample --run OUT --n 64
/// --out OUT/samples.png --json`; prints their three JSON lines.
#[derive(Debug, Clone, Args)]
pub(crate) struct QuickArgs {
    /// The run directory.
    #[arg(long, value_name = "DIR", default_value = "runs/quick")]
    out: PathBuf,

    /// Training iterations.
    #[arg(long, value_name = "T", value_parser = int_at_least::<1>, default_value_t = 3000)]
    iters: usize,

    /// Seed of training, evaluation and sampling.
    #[arg(long, default_value_t = 0)]
    seed: u64,

    /// Importance samples per test image.
    #[arg(long, value_name = "S", value_parser = int_at_least::<1>, default_value_t = 1000)]
    samples: usize,

    /// Evaluate only the first N test images [default: all 10 000].
    #[arg(long, value_name = "N", value_parser = int_at_least::<1>)]
    limit: Option<usize>,

    /// The data set (the bundled copy) [default: mnist].
    #[arg(long, value_enum)]
    dataset: Option<DatasetArg>,

    /// Continue an interrupted run in --out (a finished one is only evaluated and sampled).
    #[arg(long)]
    resume: bool,

    /// Start over, deleting the run files already in --out.
    #[arg(long, conflicts_with = "resume")]
    force: bool,

    /// No progress display on stderr.
    #[arg(long, short)]
    quiet: bool,
}

/// Runs `gumbolt quick`.
pub(crate) fn run(args: QuickArgs) -> Result<()> {
    let mut t = TrainArgs::quick(args.out.clone(), args.iters as u64, args.seed, args.quiet);
    t.resume = args.resume;
    t.force = args.force;
    t.dataset = args.dataset;
    if args.resume {
        // The run's own settings apply.
        t.iters = None;
        t.seed = None;
    }
    train::run(t)?;
    eval::run(EvalArgs {
        run: args.out.clone(),
        samples: args.samples,
        limit: args.limit,
        logz: LogzArg::Pt,
        seed: args.seed,
        threads: 0,
        data_dir: None,
        data_file: None,
        per_image: None,
        json: true,
        quiet: args.quiet,
    })?;
    sample::run(SampleArgs {
        run: args.out.clone(),
        n: 64,
        out: Some(args.out.join("samples.png")),
        seed: args.seed,
        sweeps: 1000,
        fresh: false,
        cols: 8,
        scale: 2,
        npy: None,
        json: true,
    })
}

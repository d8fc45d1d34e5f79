//! Subcommands of the `gumbolt` binary, one module each.
//!
//! A subcommand is a `clap::Args` struct and a `run(args) -> anyhow::Result<()>`. Usage errors
//! found after parsing (e.g. an estimator setting the estimator rejects) are returned as a
//! [`clap::Error`] built by [`usage_error`], which `main` turns into exit code 2.

mod bench;
mod dataset;
mod eval;
mod export;
mod logz;
mod manifest;
mod prior_arg;
mod progress;
mod quick;
mod reproduce;
mod rundir;
mod sample;
mod train;

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
    /// Train GumBolt, GumBolt-nW or a baseline (dVAE, dVAE++, REINFORCE) on MNIST or OMNIGLOT
    /// into a run directory (checkpoints, metrics, curves).
    ///
    /// `--dataset omniglot` trains on the bundled rebuild of OMNIGLOT (results labelled
    /// "OMNIGLOT (rebuilt)"), on a rebuilt-format directory with --data-dir, or on Burda et
    /// al.'s chardata.mat with --data-file; its training images are re-binarised for every
    /// minibatch, the validation and test images are binarised once (seed 1).
    ///
    /// The run directory (--out) gets `checkpoint.ckpt` (periodic and final, written
    /// atomically), `metrics.jsonl` (one monitoring record per line: the objectives F_k and L_k
    /// with k = --monitor-k on training and validation images, GB Fig. 2b), `config.json`,
    /// `learning_curves.png` and `train_summary.json`; the summary is also printed as one JSON
    /// line on stdout (`sec_per_iter` is the median over this invocation's steps). An existing
    /// run is never overwritten: continue it with --resume (model options, if repeated, must
    /// match the checkpoint's; monitoring and checkpoint options may change) or start over with
    /// --force. A resumed run ends with the same parameters as an uninterrupted one.
    ///
    /// Structures can be named by the symbols of GB Table 1: `-`, `~`, `--`, `~~` (quote `~`
    /// against the shell's home-directory expansion: `--structure '~'`; `--structure --` and
    /// `--structure=--` both work).
    Train(train::TrainArgs),
    /// Evaluate a trained run: the S-sample importance-weighted test NLL and log Z.
    ///
    /// Loads `checkpoint.ckpt` of --run (any model, from the checkpoint's model kind and
    /// configuration), estimates log Z of its prior (PT + bridge sampling by default, AIS with
    /// --logz ais, exact for GumBolt-nW), and estimates log p(x) of every test image from S
    /// importance samples at τ = 0 (GB §5.1). The test set is that of the data set the run was trained on
    /// (from its config.json). Prints the result (one JSON object with --json) and writes it
    /// to `eval.json` in the run directory. The result depends on --seed, not on --threads.
    Eval(eval::EvalArgs),
    /// Draw samples from a trained run as a PNG grid.
    ///
    /// Binary latent configurations are drawn from the prior by block Gibbs at β = 1 (started
    /// from the run's PCD chains, or from Bernoulli(0.5) with --fresh) and fed to the decoder;
    /// the grid shows the pixel probabilities σ(o) (white = 1), --cols images per row.
    Sample(sample::SampleArgs),
    /// Write a trained run's weights as a safetensors file readable from Python (numpy,
    /// PyTorch) without gumbolt.
    ///
    /// float32 tensors in row-major order: `x_mean` `[784]`; `encoder{i}.dense{j}.kernel`
    /// `[in, out]` and `.bias` `[out]`; `encoder{i}.bn{j}.gamma`, `.beta`, `.moving_mean`,
    /// `.moving_var` (the batch norm after `dense{j}`); the same under `decoder.`; the prior as
    /// `prior.a` `[n1]`, `prior.b` `[n2]`, `prior.W` `[n1, n2]` (RBM) or `prior.h` `[n]` (factorial).
    /// `__metadata__` holds the model configuration as JSON under the key `gumbolt`. The
    /// README's "Weights from Python" section shows the forward pass in numpy.
    Export(export::ExportArgs),
    /// Train briefly, evaluate and sample in one go (a few minutes on two cores).
    ///
    /// `gumbolt train --structure nonlinear --k 1 --iters ITERS --seed SEED --out OUT`, then
    /// `gumbolt eval --run OUT --samples SAMPLES --json` and `gumbolt sample --run OUT --n 64
    /// --out OUT/samples.png --json`; prints their three JSON lines.
    Quick(quick::QuickArgs),
    /// Reproduce GB Table 1 or 2: every cell as resumable (cell, seed) jobs, then our numbers
    /// beside the paper's in OUT/table.md, table.json and table.png.
    ///
    /// Table 1: dVAE, dVAE++ (k = 1) and GumBolt (k = 1, 5, 20) on the structures —, ~, ——, ~~;
    /// Table 2: GumBolt and GumBolt-nW (k = 20) on —, ~, ~~. Each (cell, seed) job trains into
    /// `OUT/runs/<cell>/seed<s>/` (`gumbolt train`), evaluates it (`gumbolt eval --logz pt`, seed
    /// s) and writes `OUT/cells/<cell>-seed<s>.json` (cell ids like `nonlinear-gumbolt-k5`,
    /// `nonlinear2-gumbolt-nw-k20`; the GumBolt k = 20 cells are shared by both tables). A job
    /// whose result exists is skipped, never recomputed or overwritten; an interrupted job
    /// continues from its last checkpoint. A failed job is reported and the others go on; the
    /// command then exits with status 1 listing the failed jobs.
    ///
    /// Budgets (--iters, --samples and --limit override them; overrides are recorded):
    ///
    /// - smoke: 30 iterations, 10 PCD sweeps × 100 chains, S = 10 importance samples on the
    ///   first 500 test images, 1 seed (minutes; CI);
    ///
    /// - short: 5000 iterations, 200 sweeps × 100 chains, S = 500 on all test images, 1 seed;
    ///
    /// - long: 100 000 iterations, 200 sweeps × 100 chains, S = 1000 on all test images,
    ///   3 seeds;
    ///
    /// - paper: the paper's protocol, 1 000 000 iterations, 200 sweeps × 100 chains, S = 4000
    ///   on all test images, 5 seeds.
    ///
    /// The settings are stored in OUT/reproduce.json and in every result; an OUT holding results
    /// of other settings is refused (use another --out). The jobs are listed seed by seed, row by
    /// row, column by column; --shard I/N runs those whose index is I−1 modulo N. With
    /// --jobs J ≥ 2, J jobs run at once, each training step and evaluation with cores/J threads, and the progress
    /// of train and eval is not shown. One line per job start and end goes to stderr, with an ETA; at the
    /// end the table (also with pending cells) is written and printed on stdout.
    Reproduce(reproduce::ReproduceArgs),
    /// Estimate the log-partition function log Z of an RBM (exact, AIS, or PT + bridge sampling).
    Logz(logz::LogzArgs),
    /// Time GumBolt training iterations on the bundled MNIST, split by phase, with GFLOP/s.
    ///
    /// Runs --warmup untimed then --iters timed training steps (RBM prior, PCD, batch 100) and
    /// prints `sec_per_iter` (median), `sec_per_iter_mean`, the mean seconds per iteration of
    /// each phase (negative phase, encoder and decoder forward + backward, prior terms,
    /// optimiser, other) and the achieved GFLOP/s per phase and overall, against this CPU's
    /// f32 peak, measured first (0.1 s of independent FMA chains on the kernels' widest SIMD
    /// path, times the threads). FLOP counts: PCD 2·2·C·S·n1·n2 per iteration; a dense
    /// layer 2·rows·in·out forward and twice that backward; prior terms 8·B·k·n1·n2 (also in
    /// the JSON's `flop_formulas`). --threads T runs each step on T threads as `gumbolt train`
    /// does (default: all cores); the phase times are those of the thread that runs the
    /// networks, the negative phase's being the wait for it after them.
    Bench(bench::BenchArgs),
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Train(args) => train::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Sample(args) => sample::run(args),
        Command::Export(args) => export::run(args),
        Command::Quick(args) => quick::run(args),
        Command::Reproduce(args) => reproduce::run(args),
        Command::Logz(args) => logz::run(args),
        Command::Bench(args) => bench::run(args),
    }
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

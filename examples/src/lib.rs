//! The gumbolt command line and example programs.
//!
//! - The `gumbolt` binary (`src/main.rs`, subcommands in `src/cli/`):
//!   `gumbolt train --structure nonlinear --k 1 --iters 3000 --seed 0 --out runs/NAME` trains
//!   GumBolt (or GumBolt-nW with `--model gumbolt-nw`) on MNIST into a run directory
//!   (checkpoints, `metrics.jsonl`, `config.json`, `learning_curves.png`; `--resume` continues an
//!   interrupted run bit-exactly); `gumbolt eval --run runs/NAME --samples 1000 --json` gives the
//!   importance-weighted test NLL with log Z by PT + bridge sampling; `gumbolt sample --run
//!   runs/NAME --n 64 --out samples.png` draws a grid of samples; `gumbolt quick` does all three.
//!   `gumbolt logz --rbm FILE.json --method {exact,ais,pt} [--json]` estimates the
//!   log-partition function of an RBM with the estimators of `gumbolt-samplers`;
//!   `gumbolt logz --random --n1 12 --n2 30 --scale 0.5 --seed 1` does so for a random RBM.
//!   `gumbolt logz --help` lists the estimator settings.
//! - `examples/custom_prior.rs`: a user-defined prior (a 1-D Ising chain) implementing the core
//!   traits, sampled by the samplers' single-site Gibbs and checked against exact values.
//! - [`plot`]: PNG output (learning curves, grids of generated images, per-structure model
//!   comparisons with error bars), text drawn with the embedded DejaVu Sans font.
//! - [`npy`]: NumPy `.npy` arrays (`gumbolt eval --per-image`, `gumbolt sample --npy`).

pub mod npy;
pub mod plot;

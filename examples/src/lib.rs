//! The gumbolt command line and example programs.
//!
//! - The `gumbolt` binary (`src/main.rs`, subcommands in `src/cli/`):
//!   `gumbolt logz --rbm FILE.json --method {exact,ais,pt} [--json]` estimates the
//!   log-partition function of an RBM with the estimators of `gumbolt-samplers`;
//!   `gumbolt logz --random --n1 12 --n2 30 --scale 0.5 --seed 1` does so for a random RBM.
//!   `gumbolt logz --help` lists the estimator settings.
//! - `examples/custom_prior.rs`: a user-defined prior (a 1-D Ising chain) implementing the core
//!   traits, sampled by the samplers' single-site Gibbs and checked against exact values.
//! - [`plot`]: PNG output (learning curves, grids of generated images, per-structure model
//!   comparisons with error bars), text drawn with the embedded DejaVu Sans font.

pub mod plot;

//! # gumbolt-samplers
//!
//! Samplers of Boltzmann-machine priors and estimators of their log-partition function, for the
//! GumBolt toolkit (Khoshaman & Amin, NeurIPS 2018). Everything is generic over the capability
//! traits of `gumbolt-core`, so it works for the RBM of `gumbolt-priors` and for any other
//! prior with the same capabilities.
//!
//! | item | algorithm | trait bound |
//! |---|---|---|
//! | [`BlockGibbs`] | block Gibbs vectorised over chains, per-chain β (docs/algorithms.md §7.1) | [`BlockConditionals`] |
//! | [`Pcd`] | persistent contrastive divergence, `C` chains × `S` sweeps (§7.2; GB Eq. 6) | [`BlockConditionals`] |
//! | [`SiteGibbs`] | single-site Gibbs for any binary MRF (§8) | [`SiteConditionals`] |
//! | [`ParallelTempering`] | batched PT with even/odd swaps (§7.5) | [`BlockConditionals`] |
//! | [`Ladder`] | temperature ladders, automatic tuning for swap rate ≈ 0.5 (§7.5) | [`BlockConditionals`] |
//! | [`logz::ExactLogZ`], [`logz::Ais`], [`logz::PtBar`] | `log Z` estimators (§7.3–7.5) | see [`logz`] |
//!
//! Conventions: states are `[C, n]` f32 matrices (one configuration per row, column-major, `z1`
//! in the first `n1` columns); energies, weights and `log Z` are accumulated in f64. All
//! randomness comes from Xoshiro256++ streams derived from a seed, one per
//! [`CHAINS_PER_STREAM`] chains, so results are reproducible for a given seed. Configurations
//! are validated when an object is constructed (`Result<_, SamplerError>`); afterwards sampling
//! is infallible. Matrix products go through `gumbolt_core::linalg` (via the prior), whose
//! `matrixmultiply` backend is multi-threaded.
//!
//! [`BlockConditionals`]: gumbolt_core::BlockConditionals
//! [`SiteConditionals`]: gumbolt_core::SiteConditionals
#![warn(missing_docs)]

pub mod colour;
pub mod error;
pub mod gibbs;
mod kernels;
pub mod ladder;
pub mod logz;
pub mod pcd;
pub mod progress;
pub mod pt;
pub mod site;

pub use colour::{ColourGibbs, ColourPcd};
pub use error::{Result, SamplerError};
pub use gibbs::{BlockGibbs, block_field};
pub use kernels::CHAINS_PER_STREAM;
pub use ladder::{Ladder, LadderConfig, LadderTuning};
pub use logz::{Ais, AisConfig, ExactLogZ, PtBar, PtBarConfig};
pub use pcd::{NegativePhase, Pcd, PcdConfig};
pub use progress::{Phase, Progress};
pub use pt::{ParallelTempering, PtConfig, SwapStats};
pub use site::{SiteGibbs, SiteGibbsConfig};

//! # gumbolt-core
//!
//! The foundation of the gumbolt toolkit (Khoshaman & Amin, *GumBolt: Extending Gumbel trick to
//! Boltzmann priors*, NeurIPS 2018): small capability traits that every prior, sampler,
//! gradient estimator and model composes, and the shared numeric kernels the hot paths use.
//!
//! - [`prior`]: [`Prior`] (an energy `E_θ(ζ)` over binary units, evaluable at relaxed points,
//!   GB Eqs. 3, 7) and its capabilities (ζ-gradient, parameters, exact `log Z`, Gibbs
//!   conditionals).
//! - [`sampler`]: [`Sampler`] and [`LogPartitionEstimator`].
//! - [`posterior`]: [`Posterior`], [`GradientEstimator`] and its pathwise and score-function capabilities.
//! - [`numerics`]: stable `softplus`, `log_sigmoid`, `logit`, `log_sum_exp`, vectorised
//!   sigmoid/exp kernels.
//! - [`linalg`]: GEMM helpers that always reach `matrixmultiply` (never nalgebra's slow
//!   transposed products).
//! - [`parallel`]: element-wise passes split over the threads of the calling pool (results
//!   independent of the split).
//! - [`peak`]: the measured f32 FMA peak of a core (the yardstick of achieved GFLOP/s).
//! - [`fpmode`]: flush-to-zero of subnormal floats on every computing thread.
//! - [`rng`]: reproducible, non-overlapping RNG streams (one per chain or replica).
//! - [`exact`]: exact `log Z` and marginals of any prior by enumeration (tests, small models).
//!
//! Dependencies point one way: `core` ← `priors`/`estimators`/`samplers` ← `models` ← `examples`.
#![warn(missing_docs)]

pub mod error;
pub mod exact;
pub mod fpmode;
pub mod linalg;
pub mod numerics;
pub mod parallel;
pub mod peak;
pub mod posterior;
pub mod prior;
pub mod rng;
pub mod sampler;

pub use error::{CoreError, Result};
pub use posterior::{
    GradientEstimator, PathwiseEstimator, PathwiseGrad, Posterior, ScoreFunctionEstimator,
    ScoreGrad,
};
pub use prior::{
    Block, BlockConditionals, ChainProducts, ColourConditionals, EnergyGradient,
    EnergyParamGradient, ExactPartition, Parametric, Prior, PriorExt, SiteConditionals,
};
pub use sampler::{LogPartitionEstimate, LogPartitionEstimator, Sampler};

/// The f32 matrix type of hot paths: rows are samples/chains, columns are units (column-major).
pub type Mat = nalgebra::DMatrix<f32>;

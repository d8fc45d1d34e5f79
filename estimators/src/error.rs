//! Typed errors of the estimators crate.

use thiserror::Error;

/// Errors raised by the checked constructors of this crate.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum EstimatorError {
    /// The relaxation temperature τ of GB Eq. 2 must be positive and finite (τ = 0 is the
    /// discrete limit: use [`crate::Discrete`]).
    #[error(
        "invalid temperature τ = {tau}: must be positive and finite (use `Discrete` for τ = 0)"
    )]
    InvalidTemperature {
        /// The rejected value.
        tau: f64,
    },
    /// The location (logit) `l` of a binary Concrete density must be finite.
    #[error("invalid Concrete location l = {logit}: must be finite")]
    InvalidLogit {
        /// The rejected value.
        logit: f64,
    },
    /// The inverse temperature β of a smoothing distribution (dVAE's spike-and-exponential,
    /// dVAE++'s overlapping exponentials; docs/algorithms.md §3–§4) must be positive and finite.
    #[error("invalid smoothing inverse temperature β = {beta}: must be positive and finite")]
    InvalidBeta {
        /// The rejected value.
        beta: f64,
    },
    /// The NVIL decay α of the running averages must lie strictly between 0 and 1.
    #[error("invalid NVIL decay α = {decay}: must lie strictly between 0 and 1")]
    InvalidDecay {
        /// The rejected value.
        decay: f64,
    },
    /// A restored NVIL running state is not finite (mean) or not a finite non-negative variance.
    #[error("invalid NVIL state: mean {mean} must be finite, variance {var} finite and ≥ 0")]
    InvalidBaselineState {
        /// The rejected running mean.
        mean: f64,
        /// The rejected running variance.
        var: f64,
    },
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, EstimatorError>;

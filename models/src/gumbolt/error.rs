//! Typed errors of the GumBolt model.

use gumbolt_core::CoreError;
use gumbolt_estimators::EstimatorError;
use gumbolt_priors::PriorError;
use gumbolt_samplers::SamplerError;
use thiserror::Error;

/// Errors of [`super::GumBolt`]: invalid configurations (raised at construction), shape
/// mismatches of the inputs, and errors of the crates the model is composed from.
#[derive(Debug, Error)]
pub enum ModelError {
    /// A configuration value is outside its valid range.
    #[error("invalid configuration `{name}`: {reason}")]
    InvalidConfig {
        /// The option's name.
        name: &'static str,
        /// What was expected.
        reason: String,
    },
    /// An input has the wrong shape.
    #[error("shape mismatch in {context}: expected {expected}, got {got}")]
    Shape {
        /// Where the mismatch was found.
        context: &'static str,
        /// The expected shape.
        expected: String,
        /// The shape found.
        got: String,
    },
    /// A training step produced a non-finite loss (diverged parameters or inputs).
    #[error("non-finite {what} at iteration {iteration}")]
    NonFinite {
        /// Which quantity.
        what: &'static str,
        /// The iteration.
        iteration: u64,
    },
    /// An error of the core crate (e.g. an invalid network configuration, or an exact `log Z`
    /// that is intractable).
    #[error(transparent)]
    Core(#[from] CoreError),
    /// An error of the priors crate.
    #[error(transparent)]
    Prior(#[from] PriorError),
    /// An error of the samplers crate.
    #[error(transparent)]
    Sampler(#[from] SamplerError),
    /// An error of the estimators crate (e.g. an invalid temperature).
    #[error(transparent)]
    Estimator(#[from] EstimatorError),
    /// An error of a training objective (its hyper-parameters, or a prior it cannot train).
    #[error(transparent)]
    Objective(#[from] super::objective::ObjectiveError),
}

/// Shorthand for results of the model.
pub type Result<T> = std::result::Result<T, ModelError>;

pub(crate) fn ensure(
    cond: bool,
    name: &'static str,
    reason: impl FnOnce() -> String,
) -> Result<()> {
    if cond {
        Ok(())
    } else {
        Err(ModelError::InvalidConfig {
            name,
            reason: reason(),
        })
    }
}

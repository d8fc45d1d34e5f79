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
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, EstimatorError>;

//! Typed errors of the samplers and log-partition estimators.

use gumbolt_core::CoreError;
use thiserror::Error;

/// Errors raised by checked constructors and by the estimators.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum SamplerError {
    /// A configuration value is outside its valid range (raised at construction).
    #[error("invalid configuration `{name}`: {reason}")]
    InvalidConfig {
        /// The option's name.
        name: &'static str,
        /// What was expected.
        reason: String,
    },
    /// Two shapes that must agree do not.
    #[error("shape mismatch in {context}: expected {expected}, got {got}")]
    Shape {
        /// Where the mismatch was found.
        context: &'static str,
        /// The expected shape.
        expected: String,
        /// The shape found.
        got: String,
    },
    /// The automatic temperature ladder could not be built within its limits.
    #[error("temperature ladder: {0}")]
    Ladder(String),
    /// A computation produced a non-finite value (e.g. NaN parameters).
    #[error("non-finite value in {0}")]
    NonFinite(&'static str),
    /// An error of the core crate (e.g. an exact computation that is intractable).
    #[error(transparent)]
    Core(#[from] CoreError),
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, SamplerError>;

/// Returns [`SamplerError::InvalidConfig`] unless `cond` holds.
pub(crate) fn ensure(
    cond: bool,
    name: &'static str,
    reason: impl FnOnce() -> String,
) -> Result<()> {
    if cond {
        Ok(())
    } else {
        Err(SamplerError::InvalidConfig {
            name,
            reason: reason(),
        })
    }
}

/// Checks that both blocks of a bipartite prior are non-empty.
pub(crate) fn ensure_blocks(n1: usize, n2: usize) -> Result<()> {
    ensure(n1 >= 1 && n2 >= 1, "block_sizes", || {
        format!("both blocks must be non-empty, got ({n1}, {n2})")
    })
}

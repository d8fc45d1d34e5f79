//! Typed errors of the core crate.

use thiserror::Error;

/// Errors raised by core algorithms and checked constructors.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum CoreError {
    /// An exact computation was asked of a model too large to enumerate.
    #[error("exact {what} is intractable: {units} units to enumerate, at most {limit} supported")]
    Intractable {
        /// What was asked for (e.g. "log-partition").
        what: &'static str,
        /// Number of binary units that would have to be enumerated.
        units: usize,
        /// The largest number supported.
        limit: usize,
    },
    /// A configuration value is outside its valid range.
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
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, CoreError>;

//! Typed errors of the priors crate.

use gumbolt_core::CoreError;
use std::path::PathBuf;
use thiserror::Error;

/// Errors raised by the constructors, exact methods and file formats of this crate.
///
/// Errors that come from a file or a JSON string name their origin (the file path, or
/// `<string>` for [`crate::Rbm::from_json_str`]) and say what was expected.
#[derive(Debug, Error)]
pub enum PriorError {
    /// An error of a core algorithm, e.g. [`CoreError::Intractable`] when an exact computation
    /// would have to enumerate too many units.
    #[error(transparent)]
    Core(#[from] CoreError),

    /// Reading or writing a file failed.
    #[error("{}: I/O error while {action}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done (e.g. "reading", "renaming the temporary file").
        action: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The text is not valid JSON.
    #[error("{origin}: malformed JSON at line {line}, column {column}: {message}")]
    Json {
        /// The file path, or `<string>`.
        origin: String,
        /// 1-based line of the error (serde_json's convention).
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// serde_json's description.
        message: String,
    },

    /// The JSON is well formed but its content is not a valid prior (missing or unknown key,
    /// wrong type, inconsistent lengths, empty side, non-finite value).
    #[error("{origin}: {reason}; expected {expected}")]
    Format {
        /// The file path, or `<string>`.
        origin: String,
        /// What is wrong.
        reason: String,
        /// What was expected.
        expected: String,
    },

    /// A parameter vector or matrix has the wrong length or shape.
    #[error("shape mismatch for {what}: expected {expected}, got {got}")]
    Shape {
        /// Which parameter.
        what: &'static str,
        /// The expected shape.
        expected: String,
        /// The shape found.
        got: String,
    },

    /// A parameter is NaN or infinite.
    #[error("parameter {name} is not finite ({value})")]
    NonFinite {
        /// The parameter, e.g. `W[2][5]`.
        name: String,
        /// Its value.
        value: f64,
    },

    /// A bipartite prior was given an empty side.
    #[error("the {side} side of the RBM is empty; each side needs at least one unit")]
    EmptySide {
        /// `"z1"` or `"z2"`.
        side: &'static str,
    },

    /// The split of a [`crate::FactorialBernoulli`] into two blocks is out of range.
    #[error("block split n1 = {n1} is larger than the number of units {n}")]
    InvalidSplit {
        /// The requested size of block one.
        n1: usize,
        /// The number of units.
        n: usize,
    },

    /// A monomial of a [`crate::PolynomialMrf`] is invalid.
    #[error("monomial #{index} {units:?}: {reason}")]
    InvalidMonomial {
        /// Position of the monomial in the list given to the constructor.
        index: usize,
        /// Its unit indices as given.
        units: Vec<usize>,
        /// What is wrong (repeated index, index out of range, non-finite coefficient).
        reason: String,
    },
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, PriorError>;

/// Checks that every value is finite, naming the first offender `name[i]`.
pub(crate) fn check_finite(name: &str, values: &[f32]) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(i) => Err(PriorError::NonFinite {
            name: format!("{name}[{i}]"),
            value: values[i] as f64,
        }),
    }
}

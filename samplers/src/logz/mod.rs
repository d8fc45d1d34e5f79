//! Estimators of the log-partition function `log Z_θ` (GB Eq. 3), all implementing
//! [`LogPartitionEstimator`](gumbolt_core::LogPartitionEstimator):
//!
//! | estimator | method | needs |
//! |---|---|---|
//! | [`ExactLogZ`] | enumeration of the smaller side (docs/algorithms.md §7.3) | [`ExactPartition`](gumbolt_core::ExactPartition) |
//! | [`Ais`] | annealed importance sampling with z2 summed out (§7.4) | [`BlockConditionals`](gumbolt_core::BlockConditionals) |
//! | [`PtBar`] | parallel tempering + bridge sampling (BAR), the paper's method (GB §5.1; §7.5) | [`BlockConditionals`](gumbolt_core::BlockConditionals) |
//!
//! The sampling estimators report a standard error from the spread over independent runs, and
//! warnings when their diagnostics (effective sample size, swap rates) look bad. Both have an
//! `estimate_with_progress` method taking a `&mut dyn FnMut(Progress)` callback.

pub mod ais;
pub mod bar;
pub mod colour;
pub mod exact;
pub mod ptbar;

pub use ais::{Ais, AisBase, AisConfig, AisReport, AisSchedule};
pub use colour::{ColourAis, ColourAisConfig, ColourPtBar, ColourPtBarConfig, ColourPtBarReport};
pub use exact::ExactLogZ;
pub use ptbar::{LadderSpec, PtBar, PtBarConfig, PtBarReport};

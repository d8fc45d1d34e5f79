//! Exact `log Z` for priors that implement [`ExactPartition`] (docs/algorithms.md §7.3).

use crate::error::SamplerError;
use gumbolt_core::prior::ExactPartition;
use gumbolt_core::{LogPartitionEstimate, LogPartitionEstimator};

/// Wraps [`ExactPartition::log_partition`] as a [`LogPartitionEstimator`] (standard error 0).
///
/// Fails with [`SamplerError::Core`] (`Intractable`) when the prior is too large to enumerate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExactLogZ;

impl<P: ExactPartition + ?Sized> LogPartitionEstimator<P> for ExactLogZ {
    type Error = SamplerError;

    fn estimate(&mut self, prior: &P) -> Result<LogPartitionEstimate, SamplerError> {
        Ok(LogPartitionEstimate::exact(prior.log_partition()?))
    }
}

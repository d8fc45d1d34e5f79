//! Samplers and log-partition estimators.

use crate::Mat;

/// Draws batches of samples from a prior, keeping its own state (persistent chains, replicas
/// and temperatures, acceptance statistics, RNG streams) between calls.
pub trait Sampler<P: ?Sized> {
    /// Advances the sampler with the current parameters of `prior` and returns the current
    /// samples, one configuration per row (`[C, n]`, entries 0.0/1.0).
    fn sample(&mut self, prior: &P) -> &Mat;
}

/// An estimate of `log Z` with its standard error.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LogPartitionEstimate {
    /// The estimate of `log Z_θ`.
    pub log_z: f64,
    /// Its standard error (0 for exact methods), from the spread over independent runs.
    pub std_err: f64,
    /// The method's name (`exact`, `ais`, `pt`).
    pub method: String,
    /// Number of independent runs the standard error comes from.
    pub runs: usize,
    /// The per-run estimates (empty for exact methods).
    pub run_estimates: Vec<f64>,
    /// Signs of non-convergence (e.g. PT swap rates near zero, AIS weights dominated by one
    /// chain); empty when none were seen.
    pub warnings: Vec<String>,
}

impl LogPartitionEstimate {
    /// An exact value.
    pub fn exact(log_z: f64) -> Self {
        Self {
            log_z,
            std_err: 0.0,
            method: "exact".into(),
            runs: 1,
            run_estimates: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Combines independent per-run estimates: the mean, and the standard error of the mean.
    ///
    /// ```
    /// use gumbolt_core::LogPartitionEstimate;
    /// let e = LogPartitionEstimate::from_runs("ais", vec![1.0, 2.0, 3.0]);
    /// assert_eq!(e.log_z, 2.0);
    /// assert!((e.std_err - (1.0f64 / 3.0).sqrt()).abs() < 1e-12);
    /// ```
    pub fn from_runs(method: &str, runs: Vec<f64>) -> Self {
        let n = runs.len();
        let mean = runs.iter().sum::<f64>() / n.max(1) as f64;
        let var = if n > 1 {
            runs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64
        } else {
            f64::NAN
        };
        Self {
            log_z: mean,
            std_err: (var / n as f64).sqrt(),
            method: method.into(),
            runs: n,
            run_estimates: runs,
            warnings: Vec::new(),
        }
    }
}

/// Estimates `log Z` of a prior.
pub trait LogPartitionEstimator<P: ?Sized> {
    /// The estimator's error type.
    type Error: std::error::Error + Send + Sync + 'static;
    /// Runs the estimator.
    fn estimate(&mut self, prior: &P) -> Result<LogPartitionEstimate, Self::Error>;
}

//! Evaluation of trained GumBolt models (GB §5.1; docs/algorithms.md §2.4, §7): `log Z` of the prior,
//! the S-sample importance-weighted test log-likelihood at τ = 0, and generation.
//!
//! | item | what |
//! |---|---|
//! | [`estimate_log_z`], [`LogZConfig`], [`LogZ`] | `log Z` by PT + bridge sampling (the paper's method, default), AIS, or exactly when cheap (GumBolt-nW, tiny RBMs) |
//! | [`evaluate`], [`EvalConfig`], [`EvalReport`] | mean test NLL `−(1/n) Σ log p̂(x)` with `log p̂(x) = logmeanexp_s w_s − log Ẑ` (S = 4000, Burda et al. 2015), multi-threaded, reproducible for any thread count |
//! | [`generate`], [`GenerateConfig`], [`Generated`] | binary prior samples (block Gibbs from the PCD chains or fresh) fed to the decoder: pixel probabilities σ(o) (GB §3.1) |
//!
//! # Cost and threading
//!
//! With S = 4000 samples on 10 000 test images the decoder runs on 4·10⁷ latent vectors
//! (≈ 2·10¹³ FLOP for the `nonlinear` structure). The images are cut into chunks of
//! [`EvalConfig::images_per_chunk`]; each chunk is processed in passes of
//! `images_per_chunk × samples_per_pass` rows (batched GEMMs) and draws its noise from its own
//! stream, `root_rng(splitmix(seed ⊕ splitmix(chunk + 1)))`. Worker threads (sharing the model by
//! reference, each with its own [`Scratch`] buffers) take chunks from a shared counter, so the per-image estimates — and the report — do
//! not depend on the number of threads, only on the seed and the chunking.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Instant;

use gumbolt_core::Mat;
use gumbolt_core::rng::root_rng;
use gumbolt_samplers::Progress;
use gumbolt_samplers::logz::{AisBase, AisConfig, AisSchedule, PtBarConfig};
use serde::{Deserialize, Serialize};

use crate::gumbolt::{GumBolt, ModelError, PartitionGradient, Result, Scratch};
use crate::train::state::{CheckpointPartition, GumBoltPrior, splitmix};
use gumbolt_datasets::Dataset;

/// How `log Z` is estimated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogZMethod {
    /// Exact enumeration (fails for large RBMs: `min(n1, n2) > 24`).
    Exact,
    /// Annealed importance sampling (docs/algorithms.md §7.4; the reference code's method).
    Ais(AisConfig),
    /// Parallel tempering + bridge sampling (docs/algorithms.md §7.5; the paper's method).
    PtBar(PtBarConfig),
}

/// A `log Z` method and whether a cheap exact value (GumBolt-nW's factorial prior, RBMs with a
/// side of ≤ 20 units) replaces it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogZConfig {
    /// The method used when no cheap exact value is available (or `prefer_exact` is false).
    pub method: LogZMethod,
    /// Use the exact `log Z` when it is cheap.
    pub prefer_exact: bool,
}

impl Default for LogZConfig {
    /// [`LogZConfig::pt_bar`].
    fn default() -> Self {
        Self::pt_bar()
    }
}

impl LogZConfig {
    /// PT + BAR with the samplers' defaults (20 runs, tuned ladder, target standard error
    /// 0.01; GB §5.1), exact when cheap. The evaluation default.
    pub fn pt_bar() -> Self {
        Self {
            method: LogZMethod::PtBar(PtBarConfig::default()),
            prefer_exact: true,
        }
    }

    /// AIS with the samplers' defaults, exact when cheap.
    pub fn ais() -> Self {
        Self {
            method: LogZMethod::Ais(AisConfig::default()),
            prefer_exact: true,
        }
    }

    /// A cheap AIS for learning curves (about 0.2 s on a 100×100 RBM): 4 runs × 256 chains,
    /// 1000 linear βs, base rates from a 256-chain Gibbs run; exact when cheap. Its standard
    /// error (≈ 0.1–0.5 nats on trained RBMs) is reported with every record.
    pub fn monitoring() -> Self {
        Self {
            method: LogZMethod::Ais(AisConfig {
                chains: 256,
                runs: 4,
                schedule: AisSchedule::Linear { steps: 1000 },
                base: AisBase::GibbsMarginals {
                    chains: 256,
                    sweeps: 100,
                },
                batch: 256,
                target_std_err: None,
                ..AisConfig::default()
            }),
            prefer_exact: true,
        }
    }

    /// Sets the seed of the sampling method.
    pub fn with_seed(mut self, seed: u64) -> Self {
        match &mut self.method {
            LogZMethod::Exact => {}
            LogZMethod::Ais(c) => c.seed = seed,
            LogZMethod::PtBar(c) => c.seed = seed,
        }
        self
    }

    /// Sets the worker threads of the sampling method (0: all cores).
    pub fn with_threads(mut self, threads: usize) -> Self {
        match &mut self.method {
            LogZMethod::Exact => {}
            LogZMethod::Ais(c) => c.threads = threads,
            LogZMethod::PtBar(c) => c.threads = threads,
        }
        self
    }
}

/// An estimate of `log Z` with its standard error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogZ {
    /// `log Ẑ`.
    pub value: f64,
    /// Its standard error (0 for exact values; the spread over independent runs otherwise).
    pub std: f64,
    /// `"exact"`, `"ais"` or `"pt"`.
    pub method: String,
    /// Diagnostics of the sampling estimators (swap rates, effective sample sizes).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Wall time of the estimate.
    #[serde(default)]
    pub seconds: f64,
}

impl LogZ {
    /// A value with a standard error (e.g. given on a command line).
    pub fn new(value: f64, std: f64) -> Self {
        Self {
            value,
            std,
            method: "given".into(),
            warnings: Vec::new(),
            seconds: 0.0,
        }
    }
}

/// Estimates `log Z` of a trained prior (GB §5.1: PT with bridge sampling; docs/algorithms.md §7).
///
/// ```
/// use gumbolt_models::eval::{LogZConfig, estimate_log_z};
/// use gumbolt_priors::FactorialBernoulli;
/// let prior = FactorialBernoulli::new(vec![0.0; 4]).unwrap();
/// let lz = estimate_log_z(&prior, &LogZConfig::pt_bar(), &mut |_| {}).unwrap();
/// assert!((lz.value - 4.0 * 2f64.ln()).abs() < 1e-12 && lz.method == "exact");
/// ```
///
/// # Errors
/// [`ModelError::Core`] if an exact value was asked of a large RBM, [`ModelError::Sampler`]
/// for an invalid estimator configuration.
pub fn estimate_log_z<P: GumBoltPrior>(
    prior: &P,
    config: &LogZConfig,
    progress: &mut dyn FnMut(Progress),
) -> Result<LogZ> {
    let t0 = Instant::now();
    let exact = |v: f64| LogZ {
        value: v,
        std: 0.0,
        method: "exact".into(),
        warnings: Vec::new(),
        seconds: t0.elapsed().as_secs_f64(),
    };
    if config.prefer_exact && prior.exact_log_z_is_cheap() {
        return Ok(exact(prior.log_partition()?));
    }
    let est = match &config.method {
        LogZMethod::Exact => return Ok(exact(prior.log_partition()?)),
        LogZMethod::Ais(c) => prior.estimate_log_z_sampled(Some(c), None, progress)?,
        LogZMethod::PtBar(c) => prior.estimate_log_z_sampled(None, Some(c), progress)?,
    };
    Ok(LogZ {
        value: est.log_z,
        std: est.std_err,
        method: est.method,
        warnings: est.warnings,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// Settings of [`evaluate`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalConfig {
    /// Importance samples S per image (GB §5.1: 4000).
    pub samples: usize,
    /// Samples per image in one forward pass.
    pub samples_per_pass: usize,
    /// Images per chunk (the unit of work of a thread and of the noise streams).
    pub images_per_chunk: usize,
    /// Worker threads (0: the available parallelism). Does not change the result.
    pub threads: usize,
    /// Seed of the noise streams.
    pub seed: u64,
}

impl Default for EvalConfig {
    /// S = 4000, 10 images × 200 samples (2000 rows) per pass, all cores, seed 0.
    fn default() -> Self {
        Self {
            samples: 4000,
            samples_per_pass: 200,
            images_per_chunk: 10,
            threads: 0,
            seed: 0,
        }
    }
}

impl EvalConfig {
    /// Sets `samples`.
    pub fn with_samples(mut self, samples: usize) -> Self {
        self.samples = samples;
        self
    }

    /// Sets `threads`.
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self
    }

    /// Sets `seed`.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

/// Progress of [`evaluate`]: `done` of `total` images, after `elapsed_seconds` (an ETA is
/// `elapsed · (total − done)/done`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EvalProgress {
    /// Images done.
    pub done: usize,
    /// Images in all.
    pub total: usize,
    /// Seconds since the start.
    pub elapsed_seconds: f64,
}

/// The result of [`evaluate`] (GB Table 1 reports `−test_nll`'s negation, i.e. the NLL).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// Mean negative log-likelihood `−(1/n) Σ log p̂(x)` in nats.
    pub test_nll: f64,
    /// Standard error of that mean over images, `sd(log p̂(x))/√n` (it does not include the
    /// error of `log Ẑ`, which shifts every image alike: see `log_z_std`).
    pub test_nll_sem: f64,
    /// The `log Ẑ` used.
    pub log_z: f64,
    /// Its standard error.
    pub log_z_std: f64,
    /// How `log Ẑ` was obtained.
    pub log_z_method: String,
    /// Number of images.
    pub n: usize,
    /// Importance samples per image.
    pub samples: usize,
    /// Mean over images of the delta-method standard error of each `log p̂(x)` (the Monte-Carlo
    /// error of the IW estimate itself).
    pub mean_iw_std_err: f64,
    /// Wall time of the likelihood estimation (not of `log Z`).
    pub seconds: f64,
    /// Worker threads used.
    pub threads: usize,
    /// `log p̂(x)` per image, in the order of the test set (not serialised).
    #[serde(skip)]
    pub log_px: Vec<f64>,
    /// The delta-method standard error of each `log p̂(x)`, in the order of `log_px` (not
    /// serialised).
    #[serde(skip)]
    pub iw_std_err: Vec<f64>,
}

/// The noise stream of evaluation chunk `chunk`.
fn chunk_rng(seed: u64, chunk: usize) -> gumbolt_core::rng::StreamRng {
    root_rng(splitmix(seed ^ splitmix(chunk as u64 + 1)))
}

/// The S-sample importance-weighted estimate of the test log-likelihood at τ = 0 (GB §5.1;
/// docs/algorithms.md §2.4): for every image, `log p̂(x) = logsumexp_s(log w_s) − log S − log Ẑ` with
/// `log w = log p(x|z) − E(z) − log q(z|x)` at discrete z and batch norm in inference mode
/// ([`GumBolt::estimate_log_likelihood`]). Reports the mean NLL and its standard error over
/// images. See the [module docs](self) for the batching, threading and reproducibility.
///
/// # Errors
/// [`ModelError::InvalidConfig`] for zero samples or chunk sizes or an empty test set;
/// [`ModelError::Shape`] if the images do not fit the model.
pub fn evaluate<P, G>(
    model: &GumBolt<P, G>,
    test: &Dataset,
    config: &EvalConfig,
    log_z: &LogZ,
    progress: &mut dyn FnMut(EvalProgress),
) -> Result<EvalReport>
where
    P: GumBoltPrior,
    G: PartitionGradient<P> + Sync,
{
    let bad = |name: &'static str, reason: &str| ModelError::InvalidConfig {
        name,
        reason: reason.into(),
    };
    if config.samples == 0 || config.samples_per_pass == 0 || config.images_per_chunk == 0 {
        return Err(bad(
            "eval",
            "samples, samples_per_pass and images_per_chunk must be at least 1",
        ));
    }
    if test.is_empty() {
        return Err(bad("test", "the test set is empty"));
    }
    if test.dim() != model.config().pixels {
        return Err(ModelError::Shape {
            context: "evaluate",
            expected: format!("images of {} pixels", model.config().pixels),
            got: format!("{}", test.dim()),
        });
    }
    let t0 = Instant::now();
    let n = test.n();
    let per = config.images_per_chunk;
    let chunks = n.div_ceil(per);
    let threads = if config.threads > 0 {
        config.threads
    } else {
        std::thread::available_parallelism().map_or(1, |v| v.get())
    }
    .min(chunks);
    let mut log_px = vec![f64::NAN; n];
    let mut iw_err = vec![f64::NAN; n];
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let mut failure = None;
    progress(EvalProgress {
        done: 0,
        total: n,
        elapsed_seconds: 0.0,
    });
    std::thread::scope(|s| {
        let (tx, rx) = mpsc::channel();
        for _ in 0..threads {
            let tx = tx.clone();
            let (next, stop) = (&next, &stop);
            s.spawn(move || {
                gumbolt_core::fpmode::enable_flush_to_zero();
                let mut idx = Vec::with_capacity(per);
                let mut x = Mat::zeros(0, 0);
                // This worker's buffers; the model is shared by reference.
                let mut scratch = Scratch::default();
                while !stop.load(Ordering::Relaxed) {
                    let c = next.fetch_add(1, Ordering::Relaxed);
                    if c >= chunks {
                        break;
                    }
                    idx.clear();
                    idx.extend(c * per..((c + 1) * per).min(n));
                    test.gather_into(&idx, &mut x);
                    let mut rng = chunk_rng(config.seed, c);
                    let r = model.estimate_log_likelihood(
                        &x,
                        config.samples,
                        config.samples_per_pass,
                        log_z.value,
                        &mut rng,
                        &mut scratch,
                    );
                    if tx.send((c, r)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let mut done = 0;
        for (c, r) in rx {
            match r {
                Ok(est) => {
                    let start = c * per;
                    let len = est.log_px.len();
                    log_px[start..start + len].copy_from_slice(&est.log_px);
                    iw_err[start..start + len].copy_from_slice(&est.std_err);
                    done += len;
                    progress(EvalProgress {
                        done,
                        total: n,
                        elapsed_seconds: t0.elapsed().as_secs_f64(),
                    });
                }
                Err(e) => {
                    stop.store(true, Ordering::Relaxed);
                    failure.get_or_insert(e);
                }
            }
        }
    });
    if let Some(e) = failure {
        return Err(e);
    }
    let nf = n as f64;
    let mean = log_px.iter().sum::<f64>() / nf;
    let var = if n > 1 {
        log_px.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (nf - 1.0)
    } else {
        0.0
    };
    Ok(EvalReport {
        test_nll: -mean,
        test_nll_sem: (var / nf).sqrt(),
        log_z: log_z.value,
        log_z_std: log_z.std,
        log_z_method: log_z.method.clone(),
        n,
        samples: config.samples,
        mean_iw_std_err: iw_err.iter().sum::<f64>() / nf,
        seconds: t0.elapsed().as_secs_f64(),
        threads,
        log_px,
        iw_std_err: iw_err,
    })
}

/// Settings of [`generate`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerateConfig {
    /// Number of samples.
    pub n: usize,
    /// Block-Gibbs sweeps at β = 1 before the samples are taken.
    pub sweeps: usize,
    /// Start from the model's PCD chains (rows reused cyclically when `n` exceeds their
    /// number) instead of Bernoulli(0.5) states. Ignored when the model has no chains.
    pub from_chains: bool,
    /// Seed of the Gibbs streams.
    pub seed: u64,
}

impl Default for GenerateConfig {
    /// 100 samples after 1000 sweeps from the PCD chains.
    fn default() -> Self {
        Self {
            n: 100,
            sweeps: 1000,
            from_chains: true,
            seed: 0,
        }
    }
}

/// Prior samples and their decoded images.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    /// Binary latent configurations `[n, L·latent]` (`[z1 | z2]`, the prior's layout).
    pub latents: Mat,
    /// Decoder pixel probabilities `σ(g(z) + x_bias)`, `[n, D]`.
    pub probabilities: Mat,
}

impl Generated {
    /// The images as row-major pixel vectors (one `Vec` of `D` values per sample), ready for a
    /// PNG grid.
    pub fn images(&self) -> Vec<Vec<f32>> {
        (0..self.probabilities.nrows())
            .map(|r| self.probabilities.row(r).iter().copied().collect())
            .collect()
    }
}

/// Generation (GB §3.1: "discrete samples from BM are directly fed into the decoder"): `n`
/// binary configurations of the prior by block Gibbs (`sweeps` sweeps at β = 1, started from
/// the PCD chains or from Bernoulli(0.5)), decoded to pixel probabilities with batch norm in
/// inference mode.
///
/// # Errors
/// [`ModelError::InvalidConfig`] if `n` is 0.
pub fn generate<P, G>(model: &mut GumBolt<P, G>, config: &GenerateConfig) -> Result<Generated>
where
    P: GumBoltPrior,
    G: CheckpointPartition<P>,
{
    if config.n == 0 {
        return Err(ModelError::InvalidConfig {
            name: "generate.n",
            reason: "must be at least 1".into(),
        });
    }
    let init = if config.from_chains {
        model.partition().chains()
    } else {
        None
    };
    let latents = model
        .prior()
        .gibbs_samples(init, config.n, config.sweeps, config.seed)?;
    let probabilities = model.decode(&latents)?;
    Ok(Generated {
        latents,
        probabilities,
    })
}

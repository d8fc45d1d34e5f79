//! Annealed importance sampling (Neal 2001; Salakhutdinov & Murray 2008; docs/algorithms.md §7.4).
//!
//! **Base model A.** `W = 0`, z1 biases `a_A`, z2 biases 0, so
//! `log Z_A = Σ_i softplus(a_A,i) + n2·log 2`.
//!
//! **Path with z2 summed out.** For `0 = β_0 < … < β_K = 1`,
//! `log p*_β(z1) = ((1−β)a_A + β·h1)ᵀz1 + Σ_j softplus(β·c_j(z1))` with `h1 = logits(One | 0)`
//! (the RBM's `a`) and `c(z1) = logits(Two | z1)` (the RBM's `b + Wᵀz1`).
//!
//! **Per chain.** Draw `z1 ~ Bernoulli(σ(a_A))` exactly; for `k = 1..K`:
//! `log w += log p*_{β_k}(z1) − log p*_{β_{k−1}}(z1)`, then one Gibbs transition at `β_k`:
//! `z2 ~ σ(β_k c(z1))`, `z1 ~ σ((1−β_k)a_A + β_k·logits(One | z2))`.
//!
//! **Estimate.** `log Ẑ = log Z_A + log mean_m w_m` in f64, over all chains of all runs; the
//! standard error is the spread of the per-run estimates divided by `√runs`.
//!
//! All chains of a batch share one GEMM per half-step, and the weight increment reuses the
//! `c(z1)` logits of the transition that follows.

use crate::error::{Result, SamplerError, ensure, ensure_blocks};
use crate::gibbs::{BlockGibbs, block_field};
use crate::kernels::{self, CHAINS_PER_STREAM};
use crate::progress::{Phase, Progress, Reporter, effective_threads};
use gumbolt_core::numerics::{log_mean_exp, log_sum_exp, logit, softplus};
use gumbolt_core::prior::{Block, BlockConditionals};
use gumbolt_core::rng::{StreamRng, root_rng};
use gumbolt_core::{LogPartitionEstimate, LogPartitionEstimator};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};

/// The inverse-temperature schedule `0 = β_0 < … < β_K = 1` of [`Ais`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AisSchedule {
    /// `steps` equal steps.
    Linear {
        /// Number of steps `K` (≥ 1).
        steps: usize,
    },
    /// Piecewise linear with the proportions of Salakhutdinov & Murray (2008): 500/14500 of the
    /// steps on `[0, 0.5]`, 4000/14500 on `[0.5, 0.9]` and 10000/14500 on `[0.9, 1]`.
    Sm08 {
        /// Number of steps `K` (≥ 3).
        steps: usize,
    },
    /// Spacing from a pilot run: the density of βs is proportional to the standard deviation
    /// `σ_g(β)` of `g = d log p*_β(z1)/dβ` under `p_β` (uniform thermodynamic length, which
    /// minimises `Var log w` for a given `K`), estimated by a short AIS with importance weights
    /// on a linear grid; 5 % of the density is spread uniformly as a safeguard.
    Adaptive {
        /// Number of steps `K` (≥ 1).
        steps: usize,
        /// Chains of the pilot (≥ 2).
        pilot_chains: usize,
        /// Linear steps of the pilot (≥ 2).
        pilot_steps: usize,
    },
    /// An explicit schedule (validated: starts at 0, ends at 1, strictly increasing).
    Custom(Vec<f64>),
}

impl AisSchedule {
    /// The number of steps `K`.
    pub fn steps(&self) -> usize {
        match self {
            AisSchedule::Linear { steps }
            | AisSchedule::Sm08 { steps }
            | AisSchedule::Adaptive { steps, .. } => *steps,
            AisSchedule::Custom(b) => b.len().saturating_sub(1),
        }
    }

    fn validate(&self) -> Result<()> {
        match self {
            AisSchedule::Linear { steps } => ensure(*steps >= 1, "schedule.steps", || {
                "must be at least 1".into()
            }),
            AisSchedule::Sm08 { steps } => ensure(*steps >= 3, "schedule.steps", || {
                "must be at least 3".into()
            }),
            AisSchedule::Adaptive {
                steps,
                pilot_chains,
                pilot_steps,
            } => {
                ensure(*steps >= 1, "schedule.steps", || {
                    "must be at least 1".into()
                })?;
                ensure(*pilot_chains >= 2, "schedule.pilot_chains", || {
                    "must be at least 2".into()
                })?;
                ensure(*pilot_steps >= 2, "schedule.pilot_steps", || {
                    "must be at least 2".into()
                })
            }
            AisSchedule::Custom(b) => crate::ladder::Ladder::new(b.clone()).map(|_| ()),
        }
    }

    fn fixed_betas(&self) -> Option<Vec<f64>> {
        match self {
            AisSchedule::Linear { steps } => Some(piecewise(&[(1.0, *steps)])),
            AisSchedule::Sm08 { steps } => {
                let k1 = ((*steps as f64) * 500.0 / 14500.0).round().max(1.0) as usize;
                let k2 = ((*steps as f64) * 4000.0 / 14500.0).round().max(1.0) as usize;
                let k3 = steps.saturating_sub(k1 + k2).max(1);
                Some(piecewise(&[(0.5, k1), (0.9, k2), (1.0, k3)]))
            }
            AisSchedule::Custom(b) => Some(b.clone()),
            AisSchedule::Adaptive { .. } => None,
        }
    }
}

/// `[(end, steps)]` segments from 0.
fn piecewise(segments: &[(f64, usize)]) -> Vec<f64> {
    let mut betas = vec![0.0];
    let mut start = 0.0;
    for &(end, k) in segments {
        for i in 1..=k {
            betas.push(start + (end - start) * i as f64 / k as f64);
        }
        start = end;
    }
    *betas.last_mut().unwrap() = 1.0;
    betas
}

/// The z1 biases `a_A` of the AIS base model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AisBase {
    /// `a_A = 0`: the uniform distribution.
    Uniform,
    /// `a_A = h1 = logits(One | 0)` (the RBM's own `a`).
    PriorField,
    /// Base rates: `a_A = logit(clip(mean z1, 1e-3, 1 − 1e-3))` over a short block-Gibbs run
    /// at β = 1 (docs/algorithms.md §7.4, recommendation).
    GibbsMarginals {
        /// Chains of the run (≥ 1).
        chains: usize,
        /// Sweeps; the mean is taken over the second half (≥ 2).
        sweeps: usize,
    },
    /// Explicit biases (length `n1`), e.g. logits of data base rates.
    Custom(Vec<f32>),
}

/// Configuration of [`Ais`]. Validated by [`Ais::new`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AisConfig {
    /// Chains per run `M` (≥ 1). Default 256.
    pub chains: usize,
    /// Independent runs (≥ 2) of the first round; the standard error comes from their spread.
    /// Default 8.
    pub runs: usize,
    /// The schedule. Default `Adaptive { steps: 3000, pilot_chains: 256, pilot_steps: 1000 }`.
    pub schedule: AisSchedule,
    /// The base model. Default `GibbsMarginals { chains: 256, sweeps: 200 }`.
    pub base: AisBase,
    /// Chains annealed together in one state matrix (rounded up to a multiple of
    /// [`CHAINS_PER_STREAM`]; does not change the result). Default 512.
    pub batch: usize,
    /// A warning is issued when a run's effective sample size
    /// `(Σw)²/Σw²` is below this fraction of its chains. Default 0.05.
    pub min_ess_fraction: f64,
    /// Target standard error of `log Ẑ`: while the standard error is above it, runs are added
    /// (up to `max_runs`). `None`: exactly `runs` runs. Default `Some(0.01)`.
    pub target_std_err: Option<f64>,
    /// Upper limit on the runs when `target_std_err` is set. Default 64.
    pub max_runs: usize,
    /// Worker threads; the chain batches are dealt between them (0: the available
    /// parallelism). Does not change the result. Default 0.
    pub threads: usize,
    /// Seed. Default 0.
    pub seed: u64,
}

impl Default for AisConfig {
    fn default() -> Self {
        Self {
            chains: 256,
            runs: 8,
            schedule: AisSchedule::Adaptive {
                steps: 3000,
                pilot_chains: 256,
                pilot_steps: 1000,
            },
            base: AisBase::GibbsMarginals {
                chains: 256,
                sweeps: 200,
            },
            batch: 512,
            min_ess_fraction: 0.05,
            target_std_err: Some(0.01),
            max_runs: 64,
            threads: 0,
            seed: 0,
        }
    }
}

impl AisConfig {
    /// Checks the ranges documented on the fields.
    pub fn validate(&self) -> Result<()> {
        ensure(self.chains >= 1, "chains", || "must be at least 1".into())?;
        ensure(self.runs >= 2, "runs", || {
            "must be at least 2 (the standard error needs a spread)".into()
        })?;
        ensure(self.batch >= 1, "batch", || "must be at least 1".into())?;
        ensure(
            (0.0..=1.0).contains(&self.min_ess_fraction),
            "min_ess_fraction",
            || "must be in [0, 1]".into(),
        )?;
        if let Some(t) = self.target_std_err {
            ensure(t.is_finite() && t > 0.0, "target_std_err", || {
                format!("must be positive, got {t}")
            })?;
            ensure(self.max_runs >= self.runs, "max_runs", || {
                "must be at least `runs`".into()
            })?;
        }
        self.schedule.validate()?;
        match &self.base {
            AisBase::GibbsMarginals { chains, sweeps } => {
                ensure(*chains >= 1, "base.chains", || "must be at least 1".into())?;
                ensure(*sweeps >= 2, "base.sweeps", || "must be at least 2".into())
            }
            AisBase::Custom(a) => ensure(a.iter().all(|v| v.is_finite()), "base", || {
                "biases must be finite".into()
            }),
            _ => Ok(()),
        }
    }
}

/// Details of the last [`Ais`] run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AisReport {
    /// The schedule used.
    pub betas: Vec<f64>,
    /// The base model's z1 biases `a_A`.
    pub base_field: Vec<f32>,
    /// `log Z_A`.
    pub log_z_base: f64,
    /// Effective sample size `(Σw)²/Σw²` of each run.
    pub run_ess: Vec<f64>,
    /// Largest normalised weight of each run.
    pub run_max_weight: Vec<f64>,
}

/// AIS estimator of `log Z` for a [`BlockConditionals`] prior.
///
/// ```
/// # use gumbolt_core::prior::{Block, BlockConditionals, Prior};
/// # use gumbolt_core::{Mat, LogPartitionEstimator};
/// # use nalgebra::DMatrixView;
/// # #[derive(Clone, Debug)]
/// # struct Field; // −E = Σ z1 + 0·z2 over 2 + 3 units: log Z = 2·log(1+e) + 3·log 2
/// # impl Prior for Field {
/// #     fn num_units(&self) -> usize { 5 }
/// #     fn energy_into(&self, z: DMatrixView<'_, f32>, out: &mut [f64]) {
/// #         for (r, o) in out.iter_mut().enumerate() { *o = -(z[(r, 0)] + z[(r, 1)]) as f64 } }
/// # }
/// # impl BlockConditionals for Field {
/// #     fn block_sizes(&self) -> (usize, usize) { (2, 3) }
/// #     fn block_logits(&self, s: Block, _: DMatrixView<'_, f32>, out: &mut Mat) {
/// #         out.fill(if s == Block::One { 1.0 } else { 0.0 }) }
/// # }
/// use gumbolt_samplers::logz::{Ais, AisConfig, AisSchedule};
/// let cfg = AisConfig { chains: 64, runs: 4, schedule: AisSchedule::Linear { steps: 50 }, ..Default::default() };
/// let est = Ais::new(cfg).unwrap().estimate(&Field).unwrap();
/// let exact = 2.0 * (1.0 + 1f64.exp()).ln() + 3.0 * 2f64.ln();
/// assert!((est.log_z - exact).abs() < 1e-3);
/// ```
#[derive(Debug, Clone)]
pub struct Ais {
    config: AisConfig,
    report: Option<AisReport>,
}

impl Ais {
    /// An AIS estimator with a validated configuration.
    pub fn new(config: AisConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            config,
            report: None,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &AisConfig {
        &self.config
    }

    /// Details of the last estimate.
    pub fn report(&self) -> Option<&AisReport> {
        self.report.as_ref()
    }

    /// Runs AIS, reporting progress (phases [`Phase::Base`], [`Phase::Annealing`]).
    pub fn estimate_with_progress<P: BlockConditionals + ?Sized>(
        &mut self,
        prior: &P,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<LogPartitionEstimate> {
        let cfg = &self.config;
        let (n1, n2) = prior.block_sizes();
        ensure_blocks(n1, n2)?;
        let h1 = block_field(prior, Block::One);
        let base_field = match &cfg.base {
            AisBase::Uniform => vec![0.0; n1],
            AisBase::PriorField => h1.clone(),
            AisBase::Custom(a) => {
                if a.len() != n1 {
                    return Err(SamplerError::Shape {
                        context: "AIS base biases",
                        expected: format!("{n1}"),
                        got: format!("{}", a.len()),
                    });
                }
                a.clone()
            }
            AisBase::GibbsMarginals { chains, sweeps } => {
                gibbs_base_rates(prior, *chains, *sweeps, cfg.seed ^ 0xA15_BA5E, progress)?
            }
        };
        let log_z_base = base_field.iter().map(|&a| softplus(a as f64)).sum::<f64>()
            + n2 as f64 * std::f64::consts::LN_2;
        let betas = match cfg.schedule.fixed_betas() {
            Some(b) => b,
            None => {
                let AisSchedule::Adaptive {
                    steps,
                    pilot_chains,
                    pilot_steps,
                } = cfg.schedule
                else {
                    unreachable!()
                };
                adaptive_schedule(
                    prior,
                    &h1,
                    &base_field,
                    steps,
                    pilot_chains,
                    pilot_steps,
                    cfg.seed ^ 0x0A1_5C4E,
                )?
            }
        };

        let m = cfg.chains;
        let mut logw: Vec<f64> = Vec::new();
        let mut runs = cfg.runs;
        let mut done = 0u64;
        let mut goal = (runs * m * (betas.len() - 1)) as u64;
        loop {
            let first = logw.len() / m;
            logw.resize(runs * m, 0.0);
            let ctx = AnnealCtx {
                prior,
                betas: &betas,
                h1: &h1,
                base: &base_field,
                chains: m,
                batch: cfg.batch,
                seed: cfg.seed,
            };
            ctx.run(
                first..runs,
                &mut logw[first * m..],
                cfg.threads,
                progress,
                done,
                goal,
            );
            done = goal;
            if logw.iter().any(|w| !w.is_finite()) {
                return Err(SamplerError::NonFinite("AIS log-weights"));
            }
            let se =
                LogPartitionEstimate::from_runs("", logw.chunks(m).map(log_mean_exp).collect())
                    .std_err;
            match cfg.target_std_err {
                Some(target) if se > target && runs < cfg.max_runs => {
                    // se ∝ 1/√runs: aim 20 % beyond the runs the target needs
                    let want = (runs as f64 * (se / target).powi(2) * 1.2).ceil() as usize;
                    runs = want.clamp(runs + 1, cfg.max_runs);
                    goal = (runs * m * (betas.len() - 1)) as u64;
                }
                _ => break,
            }
        }

        let mut warnings = Vec::new();
        let mut run_est = Vec::with_capacity(runs);
        let mut run_ess = Vec::with_capacity(runs);
        let mut run_max = Vec::with_capacity(runs);
        for w in logw.chunks(m) {
            run_est.push(log_z_base + log_mean_exp(w));
            let lse = log_sum_exp(w);
            let norm: Vec<f64> = w.iter().map(|&x| (x - lse).exp()).collect();
            run_ess.push(1.0 / norm.iter().map(|p| p * p).sum::<f64>());
            run_max.push(norm.iter().copied().fold(0.0, f64::max));
        }
        let low_ess = run_ess
            .iter()
            .filter(|&&e| e < cfg.min_ess_fraction * m as f64)
            .count();
        if low_ess > 0 {
            let min = run_ess.iter().copied().fold(f64::INFINITY, f64::min);
            warnings.push(format!(
                "AIS: {low_ess} of {runs} runs have an effective sample size below {:.0}% of their {m} chains \
                 (smallest {min:.1}); the estimate may be biased low, use more steps",
                100.0 * cfg.min_ess_fraction
            ));
        }
        let dominated = run_max.iter().filter(|&&w| w > 0.5).count();
        if dominated > 0 && m > 1 {
            let max = run_max.iter().copied().fold(0.0, f64::max);
            warnings.push(format!(
                "AIS: in {dominated} of {runs} runs one chain carries more than half of the weight (up to \
                 {:.0}%)",
                100.0 * max
            ));
        }
        let pooled = log_z_base + log_mean_exp(&logw);
        let mut est = LogPartitionEstimate::from_runs("ais", run_est);
        est.log_z = pooled;
        if let Some(target) = cfg.target_std_err
            && est.std_err > target
        {
            warnings.push(format!(
                "standard error {:.4} is above the target {target} after max_runs = {} runs",
                est.std_err, cfg.max_runs
            ));
        }
        est.warnings = warnings;
        self.report = Some(AisReport {
            betas,
            base_field,
            log_z_base,
            run_ess,
            run_max_weight: run_max,
        });
        Ok(est)
    }
}

impl<P: BlockConditionals + ?Sized> LogPartitionEstimator<P> for Ais {
    type Error = SamplerError;

    fn estimate(&mut self, prior: &P) -> Result<LogPartitionEstimate> {
        self.estimate_with_progress(prior, &mut |_| {})
    }
}

/// A block of chains: segments `(run, first chain, end chain)` and the block's log-weights.
type ChainBlock<'a> = (Vec<(usize, usize, usize)>, &'a mut [f64]);

/// Everything the annealing of a range of runs needs.
struct AnnealCtx<'a, P: ?Sized> {
    prior: &'a P,
    betas: &'a [f64],
    h1: &'a [f32],
    base: &'a [f32],
    chains: usize,
    batch: usize,
    seed: u64,
}

impl<P: BlockConditionals + ?Sized> AnnealCtx<'_, P> {
    /// Anneals the chains of `runs` into `logw` (`runs.len()·chains` values). Runs are cut into
    /// blocks of at most `batch` chains (several short runs share a block); blocks are dealt
    /// round-robin to the threads. Every run draws from its own streams (see [`run_streams`]),
    /// so neither the batching nor the number of threads changes the result.
    fn run(
        &self,
        runs: std::ops::Range<usize>,
        logw: &mut [f64],
        threads: usize,
        progress: &mut dyn FnMut(Progress),
        done0: u64,
        goal: u64,
    ) {
        let m = self.chains;
        let batch = self.batch.div_ceil(CHAINS_PER_STREAM) * CHAINS_PER_STREAM;
        // segments (run, i0, i1) of at most `batch` chains, packed into blocks
        let mut blocks: Vec<Vec<(usize, usize, usize)>> = Vec::new();
        let mut rows = 0;
        for run in runs.clone() {
            for i0 in (0..m).step_by(batch) {
                let i1 = (i0 + batch).min(m);
                if blocks.is_empty() || rows + (i1 - i0) > batch {
                    blocks.push(Vec::new());
                    rows = 0;
                }
                blocks.last_mut().unwrap().push((run, i0, i1));
                rows += i1 - i0;
            }
        }
        let mut slices: Vec<ChainBlock<'_>> = Vec::with_capacity(blocks.len());
        let mut rest = logw;
        for blk in blocks {
            let len: usize = blk.iter().map(|&(_, i0, i1)| i1 - i0).sum();
            let (head, tail) = rest.split_at_mut(len);
            slices.push((blk, head));
            rest = tail;
        }
        let workers = effective_threads(threads).min(slices.len()).max(1);
        let mut per_worker: Vec<Vec<_>> = (0..workers).map(|_| Vec::new()).collect();
        for (i, s) in slices.into_iter().enumerate() {
            per_worker[i % workers].push(s);
        }
        let counter = AtomicU64::new(done0);
        let work = |mine: Vec<ChainBlock<'_>>, mut tick: Option<&mut dyn FnMut(u64)>| {
            let (n1, n2) = self.prior.block_sizes();
            for (segments, w) in mine {
                let mut rngs = Vec::new();
                let mut groups = Vec::new();
                for &(run, i0, i1) in &segments {
                    let all = run_streams(self.seed, run, m);
                    rngs.extend_from_slice(&all[i0 / CHAINS_PER_STREAM..kernels::streams_for(i1)]);
                    groups.extend(kernels::uniform_groups(i1 - i0, CHAINS_PER_STREAM));
                }
                let rows = w.len() as u64;
                let mut g = BlockGibbs::with_streams(n1, n2, rngs, groups);
                anneal(
                    self.prior,
                    &mut g,
                    self.betas,
                    self.h1,
                    self.base,
                    w,
                    None,
                    |_| {
                        let d = counter.fetch_add(rows, Ordering::Relaxed) + rows;
                        if let Some(t) = tick.as_deref_mut() {
                            t(d);
                        }
                    },
                );
            }
        };
        let mut reporter = Reporter::new_at(progress, Phase::Annealing, done0, goal);
        let _ftz = gumbolt_core::fpmode::FlushToZero::enable();
        std::thread::scope(|scope| {
            let mut lists = per_worker.into_iter();
            let mine = lists.next().expect("at least one worker");
            let work = &work;
            let handles: Vec<_> = lists
                .map(|l| {
                    scope.spawn(move || {
                        gumbolt_core::fpmode::enable_flush_to_zero();
                        work(l, None)
                    })
                })
                .collect();
            work(mine, Some(&mut |d| reporter.tick(d)));
            for h in handles {
                if let Err(e) = h.join() {
                    std::panic::resume_unwind(e);
                }
            }
        });
        reporter.tick(goal);
    }
}

/// The RNG streams of AIS run `run` with `chains` chains, one per [`CHAINS_PER_STREAM`] chains:
/// the run's base is the root stream of `seed` advanced by `run + 1` long jumps (2¹⁹² draws
/// each), and its chain groups are the base advanced by 1, 2, … jumps (2¹²⁸ draws each).
fn run_streams(seed: u64, run: usize, chains: usize) -> Vec<StreamRng> {
    let mut base = root_rng(seed);
    for _ in 0..=run {
        base.long_jump();
    }
    (0..kernels::streams_for(chains))
        .map(|_| {
            base.jump();
            base.clone()
        })
        .collect()
}

/// Per-step statistics of the adaptive pilot: weighted variance of `g` at each β.
struct Pilot {
    var: Vec<f64>,
    g: Vec<f64>,
}

/// Anneals the chains of `g` along `betas`, adding the log-weights to `logw`.
#[allow(clippy::too_many_arguments)]
fn anneal<P: BlockConditionals + ?Sized>(
    prior: &P,
    g: &mut BlockGibbs,
    betas: &[f64],
    h1: &[f32],
    base: &[f32],
    logw: &mut [f64],
    mut pilot: Option<&mut Pilot>,
    mut tick: impl FnMut(usize),
) {
    let (n1, _) = g.block_sizes();
    let rows = g.chains();
    let diff: Vec<f32> = h1.iter().zip(base).map(|(h, a)| h - a).collect();
    let mut lin = vec![0.0f64; rows];
    g.sample_one_from_field(base);
    let steps = betas.len() - 1;
    for k in 1..=steps {
        let (b_old, b_new) = (betas[k - 1] as f32, betas[k] as f32);
        g.compute_logits_two(prior);
        // log p*_{β_k}(z1) − log p*_{β_{k−1}}(z1)
        lin.fill(0.0);
        kernels::rowwise_dot_vec(&g.state().as_slice()[..rows * n1], &diff, rows, &mut lin);
        let db = b_new as f64 - b_old as f64;
        for (w, &l) in logw.iter_mut().zip(&lin) {
            *w += db * l;
        }
        kernels::softplus_diff_rows_uniform(
            g.last_logits_two().as_slice(),
            rows,
            b_old,
            b_new,
            logw,
        );
        if let Some(p) = pilot.as_deref_mut() {
            p.g.copy_from_slice(&lin);
            kernels::logit_times_sigmoid_rows(
                g.last_logits_two().as_slice(),
                rows,
                b_new,
                &mut p.g,
            );
            p.var.push(weighted_variance(logw, &p.g));
        }
        if k < steps {
            g.set_beta(b_new);
            g.sample_two();
            g.compute_logits_one(prior);
            g.sample_one(Some(base));
        }
        tick(k);
    }
}

fn weighted_variance(logw: &[f64], x: &[f64]) -> f64 {
    let m = logw.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (mut sw, mut s1, mut s2) = (0.0, 0.0, 0.0);
    for (&lw, &v) in logw.iter().zip(x) {
        let w = (lw - m).exp();
        sw += w;
        s1 += w * v;
        s2 += w * v * v;
    }
    let mean = s1 / sw;
    (s2 / sw - mean * mean).max(0.0)
}

/// `a_A = logit(clip(mean z1))` over the second half of a short Gibbs run at β = 1.
fn gibbs_base_rates<P: BlockConditionals + ?Sized>(
    prior: &P,
    chains: usize,
    sweeps: usize,
    seed: u64,
    progress: &mut dyn FnMut(Progress),
) -> Result<Vec<f32>> {
    let (n1, n2) = prior.block_sizes();
    let mut g = BlockGibbs::new(n1, n2, chains, seed)?;
    let mut rep = Reporter::new(progress, Phase::Base, sweeps as u64);
    let mut sum = vec![0.0f64; n1];
    let mut count = 0usize;
    for s in 0..sweeps {
        g.sweep(prior);
        if s >= sweeps / 2 {
            for (j, col) in g.z1().column_iter().enumerate() {
                sum[j] += col.iter().map(|&v| v as f64).sum::<f64>();
            }
            count += chains;
        }
        rep.tick(s as u64 + 1);
    }
    Ok(sum
        .iter()
        .map(|&s| logit((s / count as f64).clamp(1e-3, 1.0 - 1e-3)) as f32)
        .collect())
}

/// Builds `steps` βs with density ∝ `σ_g(β)` from a pilot AIS on a linear grid.
fn adaptive_schedule<P: BlockConditionals + ?Sized>(
    prior: &P,
    h1: &[f32],
    base: &[f32],
    steps: usize,
    pilot_chains: usize,
    pilot_steps: usize,
    seed: u64,
) -> Result<Vec<f64>> {
    let (n1, n2) = prior.block_sizes();
    let grid = piecewise(&[(1.0, pilot_steps)]);
    let mut g = BlockGibbs::new(n1, n2, pilot_chains, seed)?;
    let mut logw = vec![0.0; pilot_chains];
    let mut pilot = Pilot {
        var: Vec::with_capacity(pilot_steps),
        g: vec![0.0; pilot_chains],
    };
    anneal(
        prior,
        &mut g,
        &grid,
        h1,
        base,
        &mut logw,
        Some(&mut pilot),
        |_| {},
    );
    if pilot.var.iter().any(|v| !v.is_finite()) {
        return Err(SamplerError::NonFinite("AIS pilot"));
    }
    // σ at grid points 1..=pilot_steps; use σ(β_1) at β_0 as well.
    let mut sigma: Vec<f64> = Vec::with_capacity(grid.len());
    sigma.push(pilot.var[0].sqrt());
    sigma.extend(pilot.var.iter().map(|v| v.sqrt()));
    Ok(schedule_from_density(&grid, &sigma, steps))
}

/// `steps` βs equally spaced in the cumulative of `density` (piecewise linear on `grid`), with
/// 5 % of the mass spread uniformly.
pub(crate) fn schedule_from_density(grid: &[f64], density: &[f64], steps: usize) -> Vec<f64> {
    let mean = density.iter().sum::<f64>() / density.len() as f64;
    let floor = if mean > 0.0 { 0.05 * mean / 0.95 } else { 1.0 };
    let d: Vec<f64> = density.iter().map(|&s| s + floor).collect();
    let mut cum = vec![0.0];
    for i in 1..grid.len() {
        cum.push(cum[i - 1] + 0.5 * (d[i] + d[i - 1]) * (grid[i] - grid[i - 1]));
    }
    let total = *cum.last().unwrap();
    let mut betas = Vec::with_capacity(steps + 1);
    betas.push(0.0);
    let mut i = 0;
    for k in 1..steps {
        let t = total * k as f64 / steps as f64;
        while i + 2 < grid.len() && cum[i + 1] < t {
            i += 1;
        }
        let seg = cum[i + 1] - cum[i];
        let frac = if seg > 0.0 {
            ((t - cum[i]) / seg).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let b = grid[i] + frac * (grid[i + 1] - grid[i]);
        if b > *betas.last().unwrap() && b < 1.0 {
            betas.push(b);
        }
    }
    betas.push(1.0);
    betas
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn schedules_from_any_density_are_valid(
            density in proptest::collection::vec(0.0f64..100.0, 2..50),
            steps in 1usize..500,
        ) {
            let n = density.len();
            let grid: Vec<f64> = (0..n).map(|i| i as f64 / (n - 1) as f64).collect();
            let s = schedule_from_density(&grid, &density, steps);
            proptest::prop_assert!(crate::ladder::Ladder::new(s.clone()).is_ok(), "{:?}", s);
            proptest::prop_assert!(s.len() <= steps + 1);
        }
    }

    #[test]
    fn schedules_are_valid() {
        for s in [
            AisSchedule::Linear { steps: 10 },
            AisSchedule::Sm08 { steps: 1000 },
        ] {
            let b = s.fixed_betas().unwrap();
            assert!(crate::ladder::Ladder::new(b.clone()).is_ok(), "{s:?}");
            assert_eq!(b.len(), s.steps() + 1);
        }
        let grid: Vec<f64> = (0..=10).map(|i| i as f64 / 10.0).collect();
        let dens: Vec<f64> = grid.iter().map(|b| 1.0 + 10.0 * b).collect();
        let s = schedule_from_density(&grid, &dens, 100);
        assert_eq!(s.len(), 101);
        assert!(crate::ladder::Ladder::new(s.clone()).is_ok());
        // denser near 1
        assert!(s[100] - s[99] < s[1] - s[0]);
    }
}

//! `log Z` of any prior with a colouring ([`ColourConditionals`]): annealed importance sampling
//! and parallel tempering with bridge sampling, both on colour-class Gibbs sweeps
//! ([`ColourGibbs`]) and the prior's energies (no block is summed out, unlike the RBM's
//! [`crate::Ais`] and [`crate::PtBar`], which stay its fast path).
//!
//! **AIS** (Neal 2001; Salakhutdinov & Murray 2008): `p_k ∝ exp(−β_k E(z) + (1 − β_k) bᵀz)`
//! from the factorial base `b` (logits of the marginals of a pilot Gibbs run, clipped) at
//! `β_0 = 0` to the prior at `β_K = 1`, linear schedule; weights
//! `log w = Σ_k −(β_{k+1} − β_k)(E(z) + bᵀz)`, `log Ẑ = Σ_i softplus(b_i) + log mean w`.
//!
//! **PT + bridge sampling** (GB §5.1; Desjardins et al. 2010; Bennett 1976): replicas at
//! `0 = β_0 < … < β_R = 1` (ladder from a pilot run: equal steps of `∫ sd_β(E) dβ`, so that
//! neighbouring energy distributions overlap), a colour sweep of every replica then swaps of
//! neighbours (even and odd pairs alternately); every `thin` steps the statistics
//! `ℓ = −(β_{r+1} − β_r)·E(z)` of the samples at `β_r` and `β_{r+1}` are stored, Bennett's
//! equation gives `Δ_r = log(Z_{r+1}/Z_r)`, and `log Ẑ = n log 2 + Σ_r Δ_r`.
//!
//! Both split the work into independent runs (each with its own seed, so the result does not
//! depend on the number of threads) and report the spread of the per-run estimates over
//! `√runs` as the standard error; the estimate pools all samples (PT) or all weights (AIS).

use crate::colour::ColourGibbs;
use crate::error::{Result, SamplerError, ensure};
use crate::logz::bar::bar;
use crate::progress::effective_threads;
use gumbolt_core::numerics::{log_mean_exp, softplus};
use gumbolt_core::prior::ColourConditionals;
use gumbolt_core::{LogPartitionEstimate, LogPartitionEstimator};
use serde::{Deserialize, Serialize};

/// The seed of run `r` (SplitMix64 of the seed and the run).
fn run_seed(seed: u64, r: usize) -> u64 {
    let mut z = seed
        ^ (r as u64)
            .wrapping_add(1)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Runs `f(run)` for every run on `threads` scoped threads (flush-to-zero on each), in run
/// order.
fn par_runs<T: Send>(runs: usize, threads: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let threads = effective_threads(threads).clamp(1, runs.max(1));
    if threads == 1 {
        let _ftz = gumbolt_core::fpmode::FlushToZero::enable();
        return (0..runs).map(&f).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut out: Vec<(usize, T)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    gumbolt_core::fpmode::enable_flush_to_zero();
                    let mut mine = Vec::new();
                    loop {
                        let r = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if r >= runs {
                            break;
                        }
                        mine.push((r, f(r)));
                    }
                    mine
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a log Z worker panicked"))
            .collect()
    });
    out.sort_by_key(|(r, _)| *r);
    out.into_iter().map(|(_, t)| t).collect()
}

fn energies<P: ColourConditionals + ?Sized>(prior: &P, g: &ColourGibbs, out: &mut [f64]) {
    prior.energy_into(g.state().as_view(), out);
}

/// Configuration of [`ColourAis`]. Validated by [`ColourAis::new`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColourAisConfig {
    /// Chains per run (≥ 1). Default 256.
    pub chains: usize,
    /// Independent runs (≥ 2). Default 8.
    pub runs: usize,
    /// Annealing steps K (≥ 1). Default 3000.
    pub steps: usize,
    /// Sweeps of the pilot run whose marginals give the base (≥ 2; its chains: `chains`).
    /// Default 200.
    pub base_sweeps: usize,
    /// Worker threads (0: the available parallelism). Does not change the result.
    pub threads: usize,
    /// Seed. Default 0.
    pub seed: u64,
}

impl Default for ColourAisConfig {
    fn default() -> Self {
        Self {
            chains: 256,
            runs: 8,
            steps: 3000,
            base_sweeps: 200,
            threads: 0,
            seed: 0,
        }
    }
}

/// AIS over colour classes (module docs).
///
/// ```
/// use gumbolt_core::LogPartitionEstimator;
/// use gumbolt_core::prior::{ExactPartition, Parametric};
/// use gumbolt_priors::SparseBm;
/// use gumbolt_samplers::logz::{ColourAis, ColourAisConfig};
/// let mut bm = SparseBm::topology("zephyr:1,2".parse().unwrap());
/// bm.randomize(0.3, 0.5, &mut gumbolt_core::rng::root_rng(1));
/// let cfg = ColourAisConfig { steps: 300, ..Default::default() };
/// let est = ColourAis::new(cfg).unwrap().estimate(&bm).unwrap();
/// assert!((est.log_z - bm.log_partition().unwrap()).abs() < 5.0 * est.std_err + 1e-3);
/// ```
#[derive(Debug, Clone)]
pub struct ColourAis {
    config: ColourAisConfig,
}

impl ColourAis {
    /// # Errors
    /// [`SamplerError::InvalidConfig`] naming the field out of range.
    pub fn new(config: ColourAisConfig) -> Result<Self> {
        ensure(config.chains >= 1, "chains", || "must be at least 1".into())?;
        ensure(config.runs >= 2, "runs", || {
            "must be at least 2 (the standard error needs a spread)".into()
        })?;
        ensure(config.steps >= 1, "steps", || "must be at least 1".into())?;
        ensure(config.base_sweeps >= 2, "base_sweeps", || {
            "must be at least 2".into()
        })?;
        Ok(Self { config })
    }

    /// The configuration.
    pub fn config(&self) -> &ColourAisConfig {
        &self.config
    }
}

impl<P: ColourConditionals + Sync + ?Sized> LogPartitionEstimator<P> for ColourAis {
    type Error = SamplerError;

    fn estimate(&mut self, prior: &P) -> Result<LogPartitionEstimate> {
        let cfg = self.config.clone();
        let n = prior.num_units();
        // Base: clipped logits of the marginals of a pilot run (mean over its second half).
        let mut pilot = ColourGibbs::for_prior(prior, cfg.chains, run_seed(cfg.seed, usize::MAX))?;
        let mut mean = vec![0.0f64; n];
        let keep = cfg.base_sweeps / 2;
        {
            let _ftz = gumbolt_core::fpmode::FlushToZero::enable();
            for s in 0..cfg.base_sweeps {
                pilot.sweep(prior);
                if s >= cfg.base_sweeps - keep {
                    for (i, m) in mean.iter_mut().enumerate() {
                        *m += pilot
                            .state()
                            .column(i)
                            .iter()
                            .map(|&v| v as f64)
                            .sum::<f64>();
                    }
                }
            }
        }
        let denom = (keep * cfg.chains) as f64;
        let base: Vec<f32> = mean
            .iter()
            .map(|m| {
                let p = ((m + 0.5) / (denom + 1.0)).clamp(1e-3, 1.0 - 1e-3);
                (p / (1.0 - p)).ln() as f32
            })
            .collect();
        let classes = pilot.classes().to_vec();
        let base_by_class: Vec<Vec<f32>> = classes
            .iter()
            .map(|c| c.iter().map(|&i| base[i]).collect())
            .collect();
        let log_z_base: f64 = base.iter().map(|&b| softplus(b as f64)).sum();
        let k = cfg.steps;
        let runs = par_runs(cfg.runs, cfg.threads, |r| -> Result<Vec<f64>> {
            let mut g = ColourGibbs::new(n, classes.clone(), cfg.chains, run_seed(cfg.seed, r))?;
            g.sample_from_field(&base_by_class);
            let c = cfg.chains;
            let mut logw = vec![0.0f64; c];
            let mut e = vec![0.0f64; c];
            let bz = |g: &ColourGibbs, out: &mut Vec<f64>| {
                out.iter_mut().for_each(|v| *v = 0.0);
                let s = g.state();
                for (i, &b) in base.iter().enumerate() {
                    for (o, &z) in out.iter_mut().zip(s.column(i).iter()) {
                        *o += (b * z) as f64;
                    }
                }
            };
            let mut bzv = vec![0.0f64; c];
            for t in 0..k {
                let (b0, b1) = (t as f64 / k as f64, (t + 1) as f64 / k as f64);
                energies(prior, &g, &mut e);
                bz(&g, &mut bzv);
                for ((w, &e), &bz) in logw.iter_mut().zip(&e).zip(&bzv) {
                    // log p*_{b1} − log p*_{b0} = −(b1 − b0)(E + bᵀz).
                    *w -= (b1 - b0) * (e + bz);
                }
                g.set_beta(b1 as f32);
                g.sweep_with_base(prior, Some(&base_by_class));
            }
            if logw.iter().any(|w| !w.is_finite()) {
                return Err(SamplerError::NonFinite("AIS weights"));
            }
            Ok(logw)
        });
        let runs: Vec<Vec<f64>> = runs.into_iter().collect::<Result<_>>()?;
        let per_run: Vec<f64> = runs.iter().map(|w| log_z_base + log_mean_exp(w)).collect();
        let all: Vec<f64> = runs.concat();
        let mut est = LogPartitionEstimate::from_runs("ais", per_run);
        est.log_z = log_z_base + log_mean_exp(&all);
        let ess = {
            let m = all.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let s1: f64 = all.iter().map(|w| (w - m).exp()).sum();
            let s2: f64 = all.iter().map(|w| (2.0 * (w - m)).exp()).sum();
            s1 * s1 / s2
        };
        if ess < 0.05 * all.len() as f64 {
            est.warnings.push(format!(
                "AIS effective sample size {ess:.1} of {} weights: increase steps",
                all.len()
            ));
        }
        Ok(est)
    }
}

/// Configuration of [`ColourPtBar`]. Validated by [`ColourPtBar::new`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColourPtBarConfig {
    /// Independent PT ensembles (≥ 2). Default 8.
    pub runs: usize,
    /// The ladder `0 = β_0 < … < β_R = 1`; `None`: built from a pilot run (module docs).
    /// Default `None`.
    pub betas: Option<Vec<f64>>,
    /// Target `(β_{r+1} − β_r)·sd(E)` of the automatic ladder (> 0). Default 1.0.
    pub ladder_step: f64,
    /// Minimum number of replicas of the automatic ladder (≥ 2). Default 8.
    pub min_replicas: usize,
    /// Sweeps of the pilot run (≥ 10). Default 1000.
    pub pilot_sweeps: usize,
    /// Burn-in steps. Default 1000.
    pub burn_in: usize,
    /// Production steps per run (≥ 1). Default 20 000.
    pub sweeps: usize,
    /// Statistics are stored every `thin` steps (≥ 1). Default 2.
    pub thin: usize,
    /// A warning is issued for a pair whose swap rate is below this. Default 0.05.
    pub min_swap_rate: f64,
    /// Worker threads (0: the available parallelism). Does not change the result.
    pub threads: usize,
    /// Seed. Default 0.
    pub seed: u64,
}

impl Default for ColourPtBarConfig {
    fn default() -> Self {
        Self {
            runs: 8,
            betas: None,
            ladder_step: 1.0,
            min_replicas: 8,
            pilot_sweeps: 1000,
            burn_in: 1000,
            sweeps: 20_000,
            thin: 2,
            min_swap_rate: 0.05,
            threads: 0,
            seed: 0,
        }
    }
}

/// Details of the last [`ColourPtBar`] estimate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColourPtBarReport {
    /// The ladder.
    pub betas: Vec<f64>,
    /// Swap acceptance rate of each adjacent pair over the production steps.
    pub swap_rates: Vec<f64>,
    /// `Δ_r = log(Z_{r+1}/Z_r)` per pair (pooled).
    pub deltas: Vec<f64>,
}

/// PT + bridge sampling over colour classes (module docs).
///
/// ```
/// use gumbolt_core::LogPartitionEstimator;
/// use gumbolt_core::prior::ExactPartition;
/// use gumbolt_priors::SparseBm;
/// use gumbolt_samplers::logz::{ColourPtBar, ColourPtBarConfig};
/// let mut bm = SparseBm::topology("zephyr:1,2".parse().unwrap());
/// bm.randomize(0.3, 0.5, &mut gumbolt_core::rng::root_rng(1));
/// let cfg = ColourPtBarConfig { sweeps: 2000, ..Default::default() };
/// let est = ColourPtBar::new(cfg).unwrap().estimate(&bm).unwrap();
/// assert!((est.log_z - bm.log_partition().unwrap()).abs() < 5.0 * est.std_err + 1e-3);
/// ```
#[derive(Debug, Clone)]
pub struct ColourPtBar {
    config: ColourPtBarConfig,
    report: Option<ColourPtBarReport>,
}

/// One PT ensemble's stored statistics.
struct PtRun {
    fwd: Vec<Vec<f32>>,
    rev: Vec<Vec<f32>>,
    accepted: Vec<u64>,
    tried: Vec<u64>,
    /// Per-β energy sums (pilot).
    e_sum: Vec<f64>,
    e_sq: Vec<f64>,
    e_n: u64,
}

impl ColourPtBar {
    /// # Errors
    /// [`SamplerError::InvalidConfig`] naming the field out of range.
    pub fn new(config: ColourPtBarConfig) -> Result<Self> {
        ensure(config.runs >= 2, "runs", || {
            "must be at least 2 (the standard error needs a spread)".into()
        })?;
        ensure(config.sweeps >= 1, "sweeps", || "must be at least 1".into())?;
        ensure(config.thin >= 1, "thin", || "must be at least 1".into())?;
        ensure(config.pilot_sweeps >= 10, "pilot_sweeps", || {
            "must be at least 10".into()
        })?;
        ensure(config.min_replicas >= 2, "min_replicas", || {
            "must be at least 2".into()
        })?;
        ensure(
            config.ladder_step.is_finite() && config.ladder_step > 0.0,
            "ladder_step",
            || "must be positive".into(),
        )?;
        if let Some(b) = &config.betas {
            let ok = b.len() >= 2
                && b[0] == 0.0
                && *b.last().expect("non-empty") == 1.0
                && b.windows(2).all(|w| w[0] < w[1]);
            ensure(ok, "betas", || {
                "must increase strictly from 0 to 1 (at least two values)".into()
            })?;
        }
        Ok(Self {
            config,
            report: None,
        })
    }

    /// The report of the last estimate.
    pub fn report(&self) -> Option<&ColourPtBarReport> {
        self.report.as_ref()
    }

    /// One PT ensemble: `burn_in` then `steps` steps, storing statistics if `store`, energy
    /// moments per β if `moments`.
    #[allow(clippy::too_many_arguments)]
    fn run_ensemble<P: ColourConditionals + ?Sized>(
        prior: &P,
        classes: &[Vec<usize>],
        betas: &[f64],
        burn_in: usize,
        steps: usize,
        thin: usize,
        seed: u64,
        store: bool,
    ) -> Result<PtRun> {
        let r = betas.len();
        let n = prior.num_units();
        let mut g = ColourGibbs::new(n, classes.to_vec(), r, seed)?;
        let mut swap_rng = gumbolt_core::rng::root_rng(seed ^ 0x5157_4150);
        // row_of[t]: the row holding temperature t.
        let mut row_of: Vec<usize> = (0..r).collect();
        for (t, b) in g.betas_mut().iter_mut().enumerate() {
            *b = betas[t] as f32;
        }
        let mut e = vec![0.0f64; r];
        let stored = if store { steps / thin } else { 0 };
        let mut out = PtRun {
            fwd: vec![Vec::with_capacity(stored); r - 1],
            rev: vec![Vec::with_capacity(stored); r - 1],
            accepted: vec![0; r - 1],
            tried: vec![0; r - 1],
            e_sum: vec![0.0; r],
            e_sq: vec![0.0; r],
            e_n: 0,
        };
        for step in 0..burn_in + steps {
            g.sweep(prior);
            energies(prior, &g, &mut e);
            let production = step >= burn_in;
            let parity = step % 2;
            let mut t = parity;
            while t + 1 < r {
                let (a, b) = (row_of[t], row_of[t + 1]);
                let log_acc = (betas[t + 1] - betas[t]) * (e[b] - e[a]);
                let accept =
                    log_acc >= 0.0 || gumbolt_core::rng::uniform_f64(&mut swap_rng) < log_acc.exp();
                if production {
                    out.tried[t] += 1;
                }
                if accept {
                    row_of.swap(t, t + 1);
                    let bs = g.betas_mut();
                    bs.swap(a, b);
                    if production {
                        out.accepted[t] += 1;
                    }
                }
                t += 2;
            }
            if production {
                let k = step - burn_in;
                if store && k.is_multiple_of(thin) {
                    for t in 0..r - 1 {
                        let d = betas[t + 1] - betas[t];
                        out.fwd[t].push((-d * e[row_of[t]]) as f32);
                        out.rev[t].push((-d * e[row_of[t + 1]]) as f32);
                    }
                }
                for t in 0..r {
                    let v = e[row_of[t]];
                    out.e_sum[t] += v;
                    out.e_sq[t] += v * v;
                }
                out.e_n += 1;
            }
        }
        Ok(out)
    }

    /// The ladder from a pilot ensemble on a linear ladder (module docs).
    fn tune<P: ColourConditionals + Sync + ?Sized>(
        &self,
        prior: &P,
        classes: &[Vec<usize>],
    ) -> Result<Vec<f64>> {
        let cfg = &self.config;
        let k0 = 33;
        let lin: Vec<f64> = (0..k0).map(|i| i as f64 / (k0 - 1) as f64).collect();
        let pilots = par_runs(2, cfg.threads, |p| {
            Self::run_ensemble(
                prior,
                classes,
                &lin,
                cfg.pilot_sweeps / 4,
                cfg.pilot_sweeps,
                1,
                run_seed(cfg.seed ^ 0x0070_696C_6F74, p),
                false,
            )
        });
        let pilots: Vec<PtRun> = pilots.into_iter().collect::<Result<_>>()?;
        let sd: Vec<f64> = (0..k0)
            .map(|t| {
                let (mut s, mut q, mut nn) = (0.0, 0.0, 0.0);
                for p in &pilots {
                    s += p.e_sum[t];
                    q += p.e_sq[t];
                    nn += p.e_n as f64;
                }
                let m = s / nn;
                (q / nn - m * m).max(0.0).sqrt()
            })
            .collect();
        // S(β) = ∫ sd dβ (trapezoid), then R = ⌈S(1)/step⌉ equal steps of S.
        let mut cum = vec![0.0f64; k0];
        for t in 1..k0 {
            cum[t] = cum[t - 1] + 0.5 * (sd[t] + sd[t - 1]) * (lin[t] - lin[t - 1]);
        }
        let total = cum[k0 - 1];
        if !total.is_finite() {
            return Err(SamplerError::NonFinite("PT pilot energies"));
        }
        let steps = ((total / cfg.ladder_step).ceil() as usize).max(cfg.min_replicas - 1);
        if steps > 2000 {
            return Err(SamplerError::Ladder(format!(
                "{steps} replicas needed (∫ sd(E) dβ = {total:.1}); the prior is too large or too cold"
            )));
        }
        let mut betas = vec![0.0f64];
        for s in 1..steps {
            let target = total * s as f64 / steps as f64;
            let t = cum.partition_point(|&c| c < target).clamp(1, k0 - 1);
            let (c0, c1) = (cum[t - 1], cum[t]);
            let f = if c1 > c0 {
                (target - c0) / (c1 - c0)
            } else {
                0.5
            };
            let b = lin[t - 1] + f * (lin[t] - lin[t - 1]);
            if b > *betas.last().expect("non-empty") {
                betas.push(b);
            }
        }
        betas.push(1.0);
        Ok(betas)
    }
}

impl<P: ColourConditionals + Sync + ?Sized> LogPartitionEstimator<P> for ColourPtBar {
    type Error = SamplerError;

    fn estimate(&mut self, prior: &P) -> Result<LogPartitionEstimate> {
        let classes = prior.colour_classes();
        let betas = match &self.config.betas {
            Some(b) => b.clone(),
            None => self.tune(prior, &classes)?,
        };
        let cfg = self.config.clone();
        let runs = par_runs(cfg.runs, cfg.threads, |r| {
            Self::run_ensemble(
                prior,
                &classes,
                &betas,
                cfg.burn_in,
                cfg.sweeps,
                cfg.thin,
                run_seed(cfg.seed, r),
                true,
            )
        });
        let runs: Vec<PtRun> = runs.into_iter().collect::<Result<_>>()?;
        let n = prior.num_units() as f64;
        let pairs = betas.len() - 1;
        let solve = |fwd: &[f32], rev: &[f32]| -> Result<f64> {
            let d = bar(fwd, rev)
                .ok_or(SamplerError::NonFinite("bridge sampling: no samples"))?
                .delta;
            if d.is_finite() {
                Ok(d)
            } else {
                Err(SamplerError::NonFinite("bridge sampling"))
            }
        };
        let mut per_run = Vec::with_capacity(runs.len());
        for run in &runs {
            let mut s = n * std::f64::consts::LN_2;
            for t in 0..pairs {
                s += solve(&run.fwd[t], &run.rev[t])?;
            }
            per_run.push(s);
        }
        let mut deltas = Vec::with_capacity(pairs);
        for t in 0..pairs {
            let fwd: Vec<f32> = runs.iter().flat_map(|r| r.fwd[t].iter().copied()).collect();
            let rev: Vec<f32> = runs.iter().flat_map(|r| r.rev[t].iter().copied()).collect();
            deltas.push(solve(&fwd, &rev)?);
        }
        let swap_rates: Vec<f64> = (0..pairs)
            .map(|t| {
                let a: u64 = runs.iter().map(|r| r.accepted[t]).sum();
                let b: u64 = runs.iter().map(|r| r.tried[t]).sum();
                a as f64 / b.max(1) as f64
            })
            .collect();
        let mut est = LogPartitionEstimate::from_runs("pt", per_run);
        est.log_z = n * std::f64::consts::LN_2 + deltas.iter().sum::<f64>();
        for (t, &s) in swap_rates.iter().enumerate() {
            if s < cfg.min_swap_rate {
                est.warnings.push(format!(
                    "swap rate {s:.3} between β = {:.4} and {:.4} is below {}",
                    betas[t],
                    betas[t + 1],
                    cfg.min_swap_rate
                ));
            }
        }
        self.report = Some(ColourPtBarReport {
            betas,
            swap_rates,
            deltas,
        });
        Ok(est)
    }
}

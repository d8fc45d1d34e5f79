//! Parallel tempering with bridge sampling (GB §5.1; Desjardins et al. 2010; Bennett 1976;
//! Shirts & Chodera 2008; docs/algorithms.md §7.5).
//!
//! `runs` independent PT ensembles on a shared ladder `0 = β_0 < … < β_R = 1` (tuned
//! automatically for swap rates ≈ 0.5 unless given) are batched into block-Gibbs states (one
//! per worker thread). After `burn_in` steps, every `thin`-th production step stores, for every
//! replica, the Rao-Blackwellised statistics towards its neighbours, computed on the
//! z1-marginals `log q_β(z1) = β·h1ᵀz1 + Σ_j softplus(β·c_j(z1))` (`h1 = logits(One | 0)`,
//! `c = logits(Two | z1)`; `Σ_{z1} q_β = Z_β`): `ℓ = log q_{β_{r+1}}(z1) − log q_{β_r}(z1)` for
//! the samples at `β_r` and at `β_{r+1}`. Bennett's equation ([`bar`]) then
//! gives `Δ_r = log(Z_{r+1}/Z_r)` per adjacent pair, and
//!
//! `log Ẑ = (n1 + n2)·log 2 + Σ_r Δ_r`.
//!
//! The estimate pools the samples of all runs; its standard error is the spread of the per-run
//! estimates divided by `√runs` (PT samples are autocorrelated, so the i.i.d. BAR variance
//! formula would be too optimistic). With `target_std_err` set, production continues in rounds
//! (sized from the measured standard error, which falls as `1/√sweeps`) until the target or
//! `max_sweeps` is reached.

use crate::error::{Result, SamplerError, ensure, ensure_blocks};
use crate::gibbs::block_field;
use crate::kernels;
use crate::ladder::{Ladder, LadderConfig, LadderTuning};
use crate::logz::bar::bar;
use crate::progress::effective_threads;
use crate::progress::{Phase, Progress, Reporter};
use crate::pt::{ParallelTempering, PtConfig, SwapStats, ensemble_streams};
use gumbolt_core::prior::{Block, BlockConditionals};
use gumbolt_core::{LogPartitionEstimate, LogPartitionEstimator};
use serde::{Deserialize, Serialize};

/// How [`PtBar`] obtains its temperature ladder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum LadderSpec {
    /// Tune one for the prior at every estimate ([`Ladder::tune`]); the tuning's seed is offset
    /// by the estimator's seed.
    Auto(LadderConfig),
    /// Use this ladder.
    Fixed(Ladder),
}

/// Configuration of [`PtBar`]. Validated by [`PtBar::new`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PtBarConfig {
    /// Independent PT ensembles (runs) (≥ 2). Default 20 (GB §5.1).
    pub runs: usize,
    /// Burn-in PT steps, not used for estimation. Default 2000.
    pub burn_in: usize,
    /// Production PT steps of the first round (≥ 1). Default 10 000.
    pub sweeps: usize,
    /// Statistics are stored every `thin` production steps (≥ 1). Default 2.
    pub thin: usize,
    /// Target standard error of `log Ẑ`: while the estimate's standard error is above it,
    /// production continues (up to `max_sweeps`). `None`: exactly `sweeps` steps. Default
    /// `Some(0.01)`.
    pub target_std_err: Option<f64>,
    /// Upper limit on the production steps when `target_std_err` is set. Default 200 000.
    pub max_sweeps: usize,
    /// The ladder. Default `Auto(LadderConfig::default())`.
    pub ladder: LadderSpec,
    /// A warning is issued for any pair whose swap rate is below this. Default 0.05.
    pub min_swap_rate: f64,
    /// Upper limit on the stored statistics (f32 values, two per replica per stored step);
    /// thinning is raised, with a warning, to stay below it. Default 2²⁵ (128 MiB).
    pub max_stored_values: usize,
    /// Worker threads; the runs are split between them (0: the available parallelism).
    /// Does not change the result. Default 0.
    pub threads: usize,
    /// Seed. Default 0.
    pub seed: u64,
}

impl Default for PtBarConfig {
    fn default() -> Self {
        Self {
            runs: 20,
            burn_in: 2000,
            sweeps: 10_000,
            thin: 2,
            target_std_err: Some(0.01),
            max_sweeps: 200_000,
            ladder: LadderSpec::Auto(LadderConfig::default()),
            min_swap_rate: 0.05,
            max_stored_values: 1 << 25,
            threads: 0,
            seed: 0,
        }
    }
}

impl PtBarConfig {
    /// Checks the ranges documented on the fields.
    pub fn validate(&self) -> Result<()> {
        ensure(self.runs >= 2, "runs", || {
            "must be at least 2 (the standard error needs a spread)".into()
        })?;
        ensure(self.sweeps >= 1, "sweeps", || "must be at least 1".into())?;
        ensure(self.thin >= 1, "thin", || "must be at least 1".into())?;
        if let Some(t) = self.target_std_err {
            ensure(t.is_finite() && t > 0.0, "target_std_err", || {
                format!("must be positive, got {t}")
            })?;
            ensure(self.max_sweeps >= self.sweeps, "max_sweeps", || {
                "must be at least `sweeps`".into()
            })?;
        }
        ensure(
            (0.0..1.0).contains(&self.min_swap_rate),
            "min_swap_rate",
            || "must be in [0, 1)".into(),
        )?;
        ensure(self.max_stored_values >= 1, "max_stored_values", || {
            "must be positive".into()
        })?;
        match &self.ladder {
            LadderSpec::Auto(c) => c.validate(),
            LadderSpec::Fixed(_) => Ok(()),
        }
    }
}

/// Details of the last [`PtBar`] estimate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PtBarReport {
    /// The ladder used.
    pub ladder: Ladder,
    /// The automatic tuning, if the ladder was tuned.
    pub tuning: Option<LadderTuning>,
    /// Swap rate of every adjacent pair over the production steps.
    pub swap_rates: Vec<f64>,
    /// `Δ_r = log(Z_{β_{r+1}}/Z_{β_r})` per adjacent pair (pooled over runs).
    pub deltas: Vec<f64>,
    /// Standard error of each `Δ_r` from the spread over runs.
    pub delta_std_errs: Vec<f64>,
    /// Production steps made (per run).
    pub sweeps: usize,
    /// Stored steps (per replica and run).
    pub stored_steps: usize,
    /// Production rounds made (more than 1 when `target_std_err` extended the run).
    pub rounds: usize,
}

/// PT + bridge-sampling estimator of `log Z` for a [`BlockConditionals`] prior.
///
/// ```
/// # use gumbolt_core::prior::{Block, BlockConditionals, Prior};
/// # use gumbolt_core::{Mat, LogPartitionEstimator};
/// # use nalgebra::DMatrixView;
/// # #[derive(Clone, Debug)]
/// # struct Field; // −E = Σ z1 over 2 + 3 units: log Z = 2·log(1+e) + 3·log 2
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
/// use gumbolt_samplers::logz::{LadderSpec, PtBar, PtBarConfig};
/// use gumbolt_samplers::Ladder;
/// let cfg = PtBarConfig {
///     runs: 4, burn_in: 20, sweeps: 400,
///     ladder: LadderSpec::Fixed(Ladder::linear(3).unwrap()),
///     ..Default::default()
/// };
/// let mut pt = PtBar::new(cfg).unwrap();
/// let est = pt.estimate(&Field).unwrap();
/// let exact = 2.0 * (1.0 + 1f64.exp()).ln() + 3.0 * 2f64.ln();
/// assert!((est.log_z - exact).abs() < 0.05);
/// assert_eq!(pt.report().unwrap().swap_rates.len(), 2);
/// ```
#[derive(Debug, Clone)]
pub struct PtBar {
    config: PtBarConfig,
    report: Option<PtBarReport>,
}

impl PtBar {
    /// A PT+BAR estimator with a validated configuration.
    pub fn new(config: PtBarConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            config,
            report: None,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &PtBarConfig {
        &self.config
    }

    /// Details of the last estimate (ladder, swap rates, per-pair Δ).
    pub fn report(&self) -> Option<&PtBarReport> {
        self.report.as_ref()
    }

    /// Runs PT + BAR, reporting progress (phases [`Phase::Ladder`], [`Phase::BurnIn`],
    /// [`Phase::Sampling`], [`Phase::Solving`]).
    pub fn estimate_with_progress<P: BlockConditionals + ?Sized>(
        &mut self,
        prior: &P,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<LogPartitionEstimate> {
        let cfg = &self.config;
        let (n1, n2) = prior.block_sizes();
        ensure_blocks(n1, n2)?;
        let mut warnings = Vec::new();
        let (ladder, tuning) =
            match &cfg.ladder {
                LadderSpec::Fixed(l) => (l.clone(), None),
                LadderSpec::Auto(lc) => {
                    let mut lc = lc.clone();
                    lc.seed = lc
                        .seed
                        .wrapping_add(cfg.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
                    let t = Ladder::tune(prior, &lc, progress)?;
                    if t.swap_rates
                        .iter()
                        .any(|&a| (a - lc.target_swap_rate).abs() > lc.tolerance)
                    {
                        warnings.push(format!(
                        "ladder tuning did not converge in {} pilot runs (pilot swap rates {:?})",
                        t.pilot_runs,
                        t.swap_rates.iter().map(|a| (a * 100.0).round() / 100.0).collect::<Vec<_>>()
                    ));
                    }
                    (t.ladder.clone(), Some(t))
                }
            };
        let nrep = ladder.len();
        let runs = cfg.runs;
        let h1 = block_field(prior, Block::One);

        // The runs are split into shards of consecutive ensembles, one per thread. Every
        // ensemble has its own RNG streams, so the result does not depend on the split.
        let workers = effective_threads(cfg.threads).min(runs);
        let (gibbs_rngs, swap_rngs) = ensemble_streams(cfg.seed, runs);
        let mut shards: Vec<Shard> = (0..workers)
            .map(|w| {
                let (e0, e1) = (w * runs / workers, (w + 1) * runs / workers);
                let pt_cfg = PtConfig {
                    ensembles: e1 - e0,
                    steps_per_sample: 1,
                    seed: cfg.seed,
                };
                let pt = ParallelTempering::from_streams(
                    n1,
                    n2,
                    &ladder,
                    pt_cfg,
                    gibbs_rngs[e0..e1].to_vec(),
                    swap_rngs[e0..e1].to_vec(),
                );
                let col = Collector::new(&pt, &h1);
                Shard { pt, col }
            })
            .collect();

        let burn_in = cfg.burn_in;
        run_shards(&mut shards, progress, |sh, rep| {
            sh.burn_in(prior, burn_in, rep)
        });

        let per_step = 2 * nrep * runs;
        let mut done = 0usize;
        let mut goal = cfg.sweeps;
        let mut thin_warned = false;
        let mut rounds = 0usize;
        let result = loop {
            // thinning of this round: `thin`, raised if needed to stay within the memory limit
            let len = goal - done;
            let mut thin = cfg.thin;
            let stored_now = shards[0].col.steps;
            while (stored_now + len.div_ceil(thin)) * per_step > cfg.max_stored_values && thin < len
            {
                thin += 1;
            }
            if (stored_now + len.div_ceil(thin)) * per_step > cfg.max_stored_values {
                break Err(SamplerError::InvalidConfig {
                    name: "max_stored_values",
                    reason: format!("too small to store one step of {per_step} values"),
                });
            }
            if thin != cfg.thin && !thin_warned {
                thin_warned = true;
                warnings.push(format!(
                    "thinning raised from {} to {thin} to keep the stored statistics below {} values",
                    cfg.thin, cfg.max_stored_values
                ));
            }
            let (start, total) = (done, goal);
            run_shards(&mut shards, progress, |sh, rep| {
                sh.produce(prior, start, total, thin, rep)
            });
            done = goal;
            rounds += 1;
            let est = solve(&shards, nrep, runs, progress)?;
            let se = est.1.std_err;
            match cfg.target_std_err {
                Some(target) if se > target && done < cfg.max_sweeps => {
                    // se ∝ 1/√sweeps: aim 20 % beyond the sweeps the target needs
                    let want = (done as f64 * (se / target).powi(2) * 1.2).ceil() as usize;
                    goal = want.max(done + cfg.sweeps / 2).min(cfg.max_sweeps);
                }
                _ => break Ok(est),
            }
        };
        let (deltas, mut est, delta_std_errs) = result?;
        if let Some(target) = cfg.target_std_err
            && est.std_err > target
        {
            warnings.push(format!(
                "standard error {:.4} is above the target {target} after max_sweeps = {} sweeps",
                est.std_err, cfg.max_sweeps
            ));
        }

        let mut stats = vec![SwapStats::default(); nrep - 1];
        for sh in &shards {
            for (s, o) in stats.iter_mut().zip(sh.pt.swap_stats()) {
                s.merge(o);
            }
        }
        let swap_rates: Vec<f64> = stats.iter().map(SwapStats::rate).collect();
        for (r, &a) in swap_rates.iter().enumerate() {
            if a.is_nan() || a < cfg.min_swap_rate {
                warnings.push(format!(
                    "swap rate {a:.3} between β = {:.4} and β = {:.4} is below {}: the replicas may not \
                     mix and log Z may be biased",
                    ladder.betas()[r],
                    ladder.betas()[r + 1],
                    cfg.min_swap_rate
                ));
            }
        }
        est.warnings = warnings;
        self.report = Some(PtBarReport {
            ladder,
            tuning,
            swap_rates,
            deltas,
            delta_std_errs,
            sweeps: done,
            stored_steps: shards[0].col.steps,
            rounds,
        });
        Ok(est)
    }
}

/// Runs `f` on every shard, shard 0 on the calling thread (which reports progress), the others
/// on scoped threads.
fn run_shards<F>(shards: &mut [Shard], progress: &mut dyn FnMut(Progress), f: F)
where
    F: Fn(&mut Shard, Option<&mut dyn FnMut(Progress)>) + Sync,
{
    let _ftz = gumbolt_core::fpmode::FlushToZero::enable();
    std::thread::scope(|scope| {
        let (first, rest) = shards.split_first_mut().expect("at least one shard");
        let f = &f;
        let handles: Vec<_> = rest
            .iter_mut()
            .map(|sh| {
                scope.spawn(move || {
                    gumbolt_core::fpmode::enable_flush_to_zero();
                    f(sh, None)
                })
            })
            .collect();
        f(first, Some(progress));
        for h in handles {
            if let Err(e) = h.join() {
                std::panic::resume_unwind(e);
            }
        }
    });
}

/// Bridge sampling per adjacent pair, pooled over runs and per run: `(Δ_r, estimate, se(Δ_r))`.
fn solve(
    shards: &[Shard],
    nrep: usize,
    runs: usize,
    progress: &mut dyn FnMut(Progress),
) -> Result<(Vec<f64>, LogPartitionEstimate, Vec<f64>)> {
    let pairs = nrep - 1;
    let mut rep = Reporter::new(progress, Phase::Solving, pairs as u64);
    let mut deltas = Vec::with_capacity(pairs);
    // per pair, the Δ of every run
    let mut pair_run_deltas: Vec<Vec<f64>> = Vec::with_capacity(pairs);
    let mut fwd = Vec::new();
    let mut rev = Vec::new();
    for r in 0..pairs {
        fwd.clear();
        rev.clear();
        for sh in shards {
            sh.col.gather_all(Dir::Up, r, &mut fwd);
            sh.col.gather_all(Dir::Lower, r + 1, &mut rev);
        }
        if fwd.iter().chain(&rev).any(|v| !v.is_finite()) {
            return Err(SamplerError::NonFinite("bridge-sampling statistics"));
        }
        let s = bar(&fwd, &rev).ok_or(SamplerError::NonFinite("bridge sampling (no samples)"))?;
        if !s.delta.is_finite() {
            return Err(SamplerError::NonFinite("bridge-sampling Δ"));
        }
        deltas.push(s.delta);
        let mut per_run = Vec::with_capacity(runs);
        for sh in shards {
            for e in 0..sh.col.runs {
                sh.col.gather_run(Dir::Up, r, e, &mut fwd);
                sh.col.gather_run(Dir::Lower, r + 1, e, &mut rev);
                per_run.push(bar(&fwd, &rev).map_or(f64::NAN, |s| s.delta));
            }
        }
        pair_run_deltas.push(per_run);
        rep.tick(r as u64 + 1);
    }
    let (n1, n2) = shards[0].pt.chains().block_sizes();
    let log_z0 = (n1 + n2) as f64 * std::f64::consts::LN_2;
    let run_log_z: Vec<f64> = (0..runs)
        .map(|e| log_z0 + pair_run_deltas.iter().map(|d| d[e]).sum::<f64>())
        .collect();
    let delta_std_errs = pair_run_deltas
        .into_iter()
        .map(|d| LogPartitionEstimate::from_runs("", d).std_err)
        .collect();
    let mut est = LogPartitionEstimate::from_runs("pt", run_log_z);
    est.log_z = log_z0 + deltas.iter().sum::<f64>();
    if !est.log_z.is_finite() {
        return Err(SamplerError::NonFinite("PT log Z"));
    }
    Ok((deltas, est, delta_std_errs))
}

impl<P: BlockConditionals + ?Sized> LogPartitionEstimator<P> for PtBar {
    type Error = SamplerError;

    fn estimate(&mut self, prior: &P) -> Result<LogPartitionEstimate> {
        self.estimate_with_progress(prior, &mut |_| {})
    }
}

/// A batch of consecutive ensembles run by one thread, with its statistics.
struct Shard {
    pt: ParallelTempering,
    col: Collector,
}

impl Shard {
    fn burn_in<P: BlockConditionals + ?Sized>(
        &mut self,
        prior: &P,
        steps: usize,
        progress: Option<&mut dyn FnMut(Progress)>,
    ) {
        self.pt.refresh(prior);
        let mut rep = progress.map(|p| Reporter::new(p, Phase::BurnIn, steps as u64));
        for t in 0..steps {
            self.pt.step_inner(prior, |_| {});
            if let Some(r) = rep.as_mut() {
                r.tick(t as u64 + 1);
            }
        }
        self.pt.reset_swap_stats();
    }

    /// Production steps `start..end`, storing statistics every `thin` steps.
    fn produce<P: BlockConditionals + ?Sized>(
        &mut self,
        prior: &P,
        start: usize,
        end: usize,
        thin: usize,
        progress: Option<&mut dyn FnMut(Progress)>,
    ) {
        let pt = &mut self.pt;
        let col = &mut self.col;
        pt.refresh(prior);
        let mut rep =
            progress.map(|p| Reporter::new_at(p, Phase::Sampling, start as u64, end as u64));
        for t in start..end {
            if (t - start).is_multiple_of(thin) {
                pt.step_inner(prior, |pt| col.collect(pt));
            } else {
                pt.step_inner(prior, |_| {});
            }
            if let Some(r) = rep.as_mut() {
                r.tick(t as u64 + 1);
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Dir {
    Up,
    Lower,
}

/// Stores the bridge statistics of every replica, appended step by step: stored step `t`
/// holds `nrep·runs` values, temperature-major (`t·nrep·runs + r·runs + run`).
struct Collector {
    nrep: usize,
    runs: usize,
    steps: usize,
    h1: Vec<f32>,
    /// `log q_{β_{r+1}}(z1) − log q_{β_r}(z1)` for samples at `β_r` (used for `r < R`).
    up: Vec<f32>,
    /// `log q_{β_r}(z1) − log q_{β_{r−1}}(z1)` for samples at `β_r` (used for `r > 0`).
    lower: Vec<f32>,
    // per-row scratch
    beta_lo: Vec<f32>,
    beta: Vec<f32>,
    beta_hi: Vec<f32>,
    acc_up: Vec<f64>,
    acc_dn: Vec<f64>,
    hz: Vec<f64>,
}

impl Collector {
    fn new(pt: &ParallelTempering, h1: &[f32]) -> Self {
        let nrep = pt.replicas();
        let runs = pt.ensembles();
        let rows = nrep * runs;
        Self {
            nrep,
            runs,
            steps: 0,
            h1: h1.to_vec(),
            up: Vec::new(),
            lower: Vec::new(),
            beta_lo: vec![0.0; rows],
            beta: vec![0.0; rows],
            beta_hi: vec![0.0; rows],
            acc_up: vec![0.0; rows],
            acc_dn: vec![0.0; rows],
            hz: vec![0.0; rows],
        }
    }

    fn data(&self, d: Dir) -> &[f32] {
        match d {
            Dir::Up => &self.up,
            Dir::Lower => &self.lower,
        }
    }

    /// Appends the values of temperature `r` of all runs and stored steps to `out`, run by
    /// run (so the pooled order does not depend on how the runs are split into shards).
    fn gather_all(&self, d: Dir, r: usize, out: &mut Vec<f32>) {
        let block = self.nrep * self.runs;
        for run in 0..self.runs {
            out.extend(
                self.data(d)
                    .chunks_exact(block)
                    .map(|step| step[r * self.runs + run]),
            );
        }
    }

    /// Replaces `out` by the values of temperature `r` of run `run`, all stored steps.
    fn gather_run(&self, d: Dir, r: usize, run: usize, out: &mut Vec<f32>) {
        out.clear();
        let block = self.nrep * self.runs;
        out.extend(
            self.data(d)
                .chunks_exact(block)
                .map(|step| step[r * self.runs + run]),
        );
    }

    fn collect(&mut self, pt: &ParallelTempering) {
        let g = pt.chains();
        let rows = g.chains();
        let (n1, _) = g.block_sizes();
        let ladder = pt.betas();
        let top = self.nrep - 1;
        // The f32-rounded βs are the ones the chains run at; use them consistently, so every
        // log q_β is the same function in the two pairs it enters.
        let b32 = |r: usize| ladder[r] as f32;
        for (row, &r) in pt.temperature_of_row().iter().enumerate() {
            self.beta[row] = b32(r);
            self.beta_lo[row] = b32(r.saturating_sub(1));
            self.beta_hi[row] = b32((r + 1).min(top));
        }
        self.hz.fill(0.0);
        kernels::rowwise_dot_vec(
            &g.state().as_slice()[..rows * n1],
            &self.h1,
            rows,
            &mut self.hz,
        );
        for row in 0..rows {
            let b = self.beta[row] as f64;
            self.acc_up[row] = (self.beta_hi[row] as f64 - b) * self.hz[row];
            self.acc_dn[row] = (self.beta_lo[row] as f64 - b) * self.hz[row];
        }
        kernels::softplus_diff_rows_neighbours(
            g.last_logits_two().as_slice(),
            &self.beta_lo,
            &self.beta,
            &self.beta_hi,
            &mut self.acc_up,
            &mut self.acc_dn,
        );
        let block = self.nrep * self.runs;
        let base = self.up.len();
        self.up.resize(base + block, 0.0);
        self.lower.resize(base + block, 0.0);
        for (row, &r) in pt.temperature_of_row().iter().enumerate() {
            let i = base + r * self.runs + row / self.nrep;
            self.up[i] = self.acc_up[row] as f32;
            self.lower[i] = -self.acc_dn[row] as f32;
        }
        self.steps += 1;
    }
}

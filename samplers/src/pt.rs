//! Parallel tempering over a ladder of inverse temperatures (Desjardins et al. 2010; GB §5;
//! docs/algorithms.md §7.5).
//!
//! Replicas sit on a ladder `0 = β_0 < β_1 < … < β_R = 1`, each holding a state `(z1, z2)`
//! distributed as `p_β ∝ e^{−βE}`. Several independent ensembles are batched as one
//! `[ensembles·(R+1), n]` block-Gibbs state with per-row β, so one GEMM serves every replica.
//! One PT step is
//!
//! 1. one block-Gibbs sweep of every replica at its own β (§7.1);
//! 2. swap proposals between adjacent pairs — even pairs `(0,1), (2,3), …` and odd pairs
//!    `(1,2), (3,4), …` on alternate steps — accepted with probability
//!    `min(1, exp((β_r − β_{r+1})(E(x_r) − E(x_{r+1}))))`, exchanging the *states* `x_r` and
//!    `x_{r+1}` between the two temperatures.
//!
//! An exchange of states between temperatures is carried out by exchanging which row of the
//! state matrix carries which temperature (its β and its ladder index), which is the same
//! Markov chain without copying `2n` strided values per accepted swap. Every report of this
//! module is per temperature: [`ParallelTempering::samples_at`] returns the states currently at
//! `β_r`.

use crate::error::{Result, ensure};
use crate::gibbs::{BlockGibbs, block_field, check_sizes};
use crate::ladder::Ladder;
use gumbolt_core::prior::{Block, BlockConditionals};
use gumbolt_core::rng::{StreamRng, streams, uniform_f64};
use gumbolt_core::{Mat, Sampler};
use serde::{Deserialize, Serialize};

/// Configuration of [`ParallelTempering`]. Validated by [`ParallelTempering::new`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PtConfig {
    /// Number of independent PT ensembles batched together (≥ 1). Default 1. As a
    /// [`Sampler`], each ensemble contributes one sample at β = 1.
    pub ensembles: usize,
    /// PT steps per [`Sampler::sample`] call (≥ 1). Default 1.
    pub steps_per_sample: usize,
    /// Seed of the Gibbs and swap RNG streams. Default 0.
    pub seed: u64,
}

impl Default for PtConfig {
    fn default() -> Self {
        Self {
            ensembles: 1,
            steps_per_sample: 1,
            seed: 0,
        }
    }
}

impl PtConfig {
    /// Checks `ensembles ≥ 1` and `steps_per_sample ≥ 1`.
    pub fn validate(&self) -> Result<()> {
        ensure(self.ensembles >= 1, "ensembles", || {
            "must be at least 1".into()
        })?;
        ensure(self.steps_per_sample >= 1, "steps_per_sample", || {
            "must be at least 1".into()
        })
    }
}

/// Swap statistics of one adjacent pair `(β_r, β_{r+1})`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct SwapStats {
    /// Swap proposals made (summed over ensembles).
    pub attempts: u64,
    /// Swaps accepted.
    pub accepted: u64,
    /// Sum of the Metropolis acceptance probabilities `min(1, e^{…})` of all proposals.
    pub acceptance_sum: f64,
}

impl SwapStats {
    /// The swap rate: the mean Metropolis acceptance probability (a lower-variance estimate of
    /// the acceptance rate than `accepted/attempts`); NaN before any proposal.
    pub fn rate(&self) -> f64 {
        self.acceptance_sum / self.attempts as f64
    }
}

/// Batched parallel tempering over a [`BlockConditionals`] prior.
///
/// ```
/// # use gumbolt_core::prior::{Block, BlockConditionals, Prior};
/// # use gumbolt_core::{Mat, Sampler};
/// # use nalgebra::DMatrixView;
/// # #[derive(Clone, Debug)]
/// # struct Free; // E ≡ 0 over 2 + 2 units
/// # impl Prior for Free {
/// #     fn num_units(&self) -> usize { 4 }
/// #     fn energy_into(&self, _: DMatrixView<'_, f32>, out: &mut [f64]) { out.fill(0.0) }
/// # }
/// # impl BlockConditionals for Free {
/// #     fn block_sizes(&self) -> (usize, usize) { (2, 2) }
/// #     fn block_logits(&self, _: Block, _: DMatrixView<'_, f32>, out: &mut Mat) { out.fill(0.0) }
/// # }
/// use gumbolt_samplers::{Ladder, ParallelTempering, PtConfig};
/// let ladder = Ladder::linear(4).unwrap(); // β = 0, 1/3, 2/3, 1
/// let cfg = PtConfig { ensembles: 8, ..Default::default() };
/// let mut pt = ParallelTempering::for_prior(&Free, ladder, cfg).unwrap();
/// pt.run(&Free, 100);
/// // E ≡ 0, so every swap is accepted.
/// assert!(pt.swap_rates().iter().all(|&a| a == 1.0));
/// assert_eq!(pt.sample(&Free).shape(), (8, 4));
/// ```
#[derive(Debug, Clone)]
pub struct ParallelTempering {
    config: PtConfig,
    ladder: Vec<f64>,
    gibbs: BlockGibbs,
    temp_of_row: Vec<usize>,
    row_of: Vec<usize>,
    parity: usize,
    stats: Vec<SwapStats>,
    swap_rngs: Vec<StreamRng>,
    energies: Vec<f64>,
    h2: Vec<f32>,
    cold: Mat,
}

impl ParallelTempering {
    /// PT over blocks of sizes `(n1, n2)` on `ladder`; every replica starts Bernoulli(0.5).
    ///
    /// Ensemble `e` draws its Gibbs uniforms from stream `e` of the seed and its swap decisions
    /// from stream `e` of a second seed derived from it, so an ensemble's trajectory does not
    /// depend on how many ensembles are batched with it.
    pub fn new(n1: usize, n2: usize, ladder: Ladder, config: PtConfig) -> Result<Self> {
        config.validate()?;
        crate::error::ensure_blocks(n1, n2)?;
        let (g, s) = ensemble_streams(config.seed, config.ensembles);
        Ok(Self::from_streams(n1, n2, &ladder, config, g, s))
    }

    /// PT whose ensembles use the given Gibbs and swap streams (one of each per ensemble).
    pub(crate) fn from_streams(
        n1: usize,
        n2: usize,
        ladder: &Ladder,
        config: PtConfig,
        gibbs_rngs: Vec<StreamRng>,
        swap_rngs: Vec<StreamRng>,
    ) -> Self {
        let betas = ladder.betas().to_vec();
        let nrep = betas.len();
        let rows = nrep * config.ensembles;
        debug_assert_eq!(gibbs_rngs.len(), config.ensembles);
        debug_assert_eq!(swap_rngs.len(), config.ensembles);
        let mut gibbs = BlockGibbs::with_streams(n1, n2, gibbs_rngs, vec![nrep; config.ensembles]);
        for (row, b) in gibbs.betas_mut().iter_mut().enumerate() {
            *b = betas[row % nrep] as f32;
        }
        Self {
            temp_of_row: (0..rows).map(|row| row % nrep).collect(),
            row_of: (0..rows).collect(),
            parity: 0,
            stats: vec![SwapStats::default(); nrep - 1],
            swap_rngs,
            energies: vec![0.0; rows],
            h2: vec![0.0; n2],
            cold: Mat::zeros(config.ensembles, n1 + n2),
            ladder: betas,
            gibbs,
            config,
        }
    }

    /// Like [`ParallelTempering::new`] with the block sizes of `prior`.
    pub fn for_prior<P: BlockConditionals + ?Sized>(
        prior: &P,
        ladder: Ladder,
        config: PtConfig,
    ) -> Result<Self> {
        let (n1, n2) = prior.block_sizes();
        Self::new(n1, n2, ladder, config)
    }

    /// The ladder `β_0 = 0 < … < β_R = 1`.
    pub fn betas(&self) -> &[f64] {
        &self.ladder
    }

    /// Number of temperatures `R + 1`.
    pub fn replicas(&self) -> usize {
        self.ladder.len()
    }

    /// Number of independent ensembles.
    pub fn ensembles(&self) -> usize {
        self.config.ensembles
    }

    /// Swap statistics per adjacent pair `(β_r, β_{r+1})`, `r = 0..R`, since the last
    /// [`reset_swap_stats`](Self::reset_swap_stats).
    pub fn swap_stats(&self) -> &[SwapStats] {
        &self.stats
    }

    /// Swap rate (mean acceptance probability) per adjacent pair.
    pub fn swap_rates(&self) -> Vec<f64> {
        self.stats.iter().map(SwapStats::rate).collect()
    }

    /// Clears the swap statistics (e.g. after burn-in).
    pub fn reset_swap_stats(&mut self) {
        self.stats
            .iter_mut()
            .for_each(|s| *s = SwapStats::default());
    }

    /// The underlying block-Gibbs state: row `i` is at inverse temperature
    /// `betas()[temperature_of_row()[i]]`.
    pub fn chains(&self) -> &BlockGibbs {
        &self.gibbs
    }

    /// The ladder index of the temperature each row currently carries.
    pub fn temperature_of_row(&self) -> &[usize] {
        &self.temp_of_row
    }

    /// The row holding temperature `r` of ensemble `e`.
    pub fn row_of(&self, ensemble: usize, r: usize) -> usize {
        self.row_of[ensemble * self.ladder.len() + r]
    }

    /// The states at `β_r`, one row per ensemble (`[ensembles, n1+n2]`, a copy).
    pub fn samples_at(&self, r: usize) -> Mat {
        let mut out = Mat::zeros(self.config.ensembles, self.gibbs.state().ncols());
        self.gather(r, &mut out);
        out
    }

    fn gather(&self, r: usize, out: &mut Mat) {
        let state = self.gibbs.state();
        for e in 0..self.config.ensembles {
            let row = self.row_of(e, r);
            for j in 0..state.ncols() {
                out[(e, j)] = state[(row, j)];
            }
        }
    }

    /// One PT step: a sweep of every replica, then one (even or odd) swap phase.
    pub fn step<P: BlockConditionals + ?Sized>(&mut self, prior: &P) {
        self.refresh(prior);
        self.step_inner(prior, |_| {});
    }

    /// `steps` PT steps.
    pub fn run<P: BlockConditionals + ?Sized>(&mut self, prior: &P, steps: usize) {
        self.refresh(prior);
        for _ in 0..steps {
            self.step_inner(prior, |_| {});
        }
    }

    /// Re-reads the field `h2 = logits(Two | 0)` of the current parameters.
    pub(crate) fn refresh<P: BlockConditionals + ?Sized>(&mut self, prior: &P) {
        check_sizes(self.gibbs.block_sizes(), prior.block_sizes());
        self.h2 = block_field(prior, Block::Two);
    }

    /// One step; `on_logits` is called after `logits(Two | z1)` of the current `z1` has been
    /// computed (available from `self.chains().last_logits_two()`), before `z2` is resampled:
    /// the moment at which every row's `z1` is a sample of its temperature's `z1`-marginal.
    pub(crate) fn step_inner<P, F>(&mut self, prior: &P, mut on_logits: F)
    where
        P: BlockConditionals + ?Sized,
        F: FnMut(&Self),
    {
        self.gibbs.compute_logits_two(prior);
        on_logits(self);
        self.gibbs.sample_two();
        self.gibbs.compute_logits_one(prior);
        self.gibbs.sample_one(None);
        self.gibbs
            .energies_after_sweep(&self.h2, &mut self.energies);
        self.swap_phase();
    }

    fn swap_phase(&mut self) {
        let nrep = self.ladder.len();
        let parity = self.parity;
        self.parity ^= 1;
        for (e, rng) in self.swap_rngs.iter_mut().enumerate() {
            let base = e * nrep;
            let mut r = parity;
            while r + 1 < nrep {
                let i = self.row_of[base + r];
                let k = self.row_of[base + r + 1];
                let log_a =
                    (self.ladder[r] - self.ladder[r + 1]) * (self.energies[i] - self.energies[k]);
                let a = if log_a >= 0.0 { 1.0 } else { log_a.exp() };
                let u = uniform_f64(rng);
                let s = &mut self.stats[r];
                s.attempts += 1;
                s.acceptance_sum += a;
                if u < a {
                    s.accepted += 1;
                    self.row_of.swap(base + r, base + r + 1);
                    self.temp_of_row[i] = r + 1;
                    self.temp_of_row[k] = r;
                    let betas = self.gibbs.betas_mut();
                    betas[i] = self.ladder[r + 1] as f32;
                    betas[k] = self.ladder[r] as f32;
                }
                r += 2;
            }
        }
    }
}

/// The Gibbs and swap streams of `ensembles` ensembles for `seed`.
pub(crate) fn ensemble_streams(seed: u64, ensembles: usize) -> (Vec<StreamRng>, Vec<StreamRng>) {
    (
        streams(seed, ensembles),
        streams(seed ^ 0x5157_4150_5054_0001, ensembles),
    )
}

impl SwapStats {
    /// Adds the counts of `other` (e.g. of another batch of ensembles).
    pub fn merge(&mut self, other: &SwapStats) {
        self.attempts += other.attempts;
        self.accepted += other.accepted;
        self.acceptance_sum += other.acceptance_sum;
    }
}

impl<P: BlockConditionals + ?Sized> Sampler<P> for ParallelTempering {
    /// Runs `steps_per_sample` PT steps and returns the states at β = 1, one row per ensemble.
    fn sample(&mut self, prior: &P) -> &Mat {
        self.run(prior, self.config.steps_per_sample);
        let mut cold = std::mem::replace(&mut self.cold, Mat::zeros(0, 0));
        self.gather(self.ladder.len() - 1, &mut cold);
        self.cold = cold;
        &self.cold
    }
}

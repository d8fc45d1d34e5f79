//! The state of training that is not the model: the optimiser, the stream of the training
//! noise ρ, the threads of a step and the phase timers (docs/algorithms.md §2.3, §9).

use gumbolt_core::rng::{StreamRng, root_rng};

use super::pool::StepPool;
use crate::gumbolt::{GumBoltConfig, Noise, PhaseTimes, Result};
use crate::nn::Adam;

/// What a training step needs besides the model, owned by the [`super::Trainer`] (or by the
/// caller of [`crate::gumbolt::GumBolt::train_step`]) and passed to every step:
///
/// - the optimiser (Adam with the paper's schedule and weight decay, GB §5.1);
/// - the stream of the training noise ρ (GB Eq. 2), derived from the model's seed;
/// - the threads of a step ([`TrainState::set_threads`]);
/// - the phase timers ([`TrainState::set_phase_timing`]).
///
/// Checkpoints store the optimiser's moments and step count and the noise stream.
///
/// ```
/// use gumbolt_models::gumbolt::{GumBoltConfig, Structure};
/// use gumbolt_models::train::TrainState;
/// let config = GumBoltConfig::new(Structure::Nonlinear, 784);
/// let mut state = TrainState::new(&config).unwrap();
/// state.set_threads(2);
/// assert_eq!((state.threads(), state.optimizer().steps()), (2, 0));
/// ```
#[derive(Debug, Clone)]
pub struct TrainState {
    adam: Adam,
    rng: StreamRng,
    pool: StepPool,
    timing: Option<PhaseTimes>,
    /// The buffer of the last step's noise.
    noise: Noise,
}

impl TrainState {
    /// A fresh state for a model of `config`: Adam with `config.train.adam` and no steps taken,
    /// the noise stream of `config.seed` (the jump of its root stream, so it is independent
    /// of the networks' initialisation), one thread, timing off.
    ///
    /// # Errors
    /// An invalid optimiser configuration.
    pub fn new(config: &GumBoltConfig) -> Result<Self> {
        let mut rng = root_rng(config.seed);
        rng.jump();
        Ok(Self {
            adam: Adam::new(config.train.adam)?,
            rng,
            pool: StepPool::default(),
            timing: None,
            noise: Noise::default(),
        })
    }

    /// The optimiser state.
    pub fn optimizer(&self) -> &Adam {
        &self.adam
    }

    /// Mutable optimiser state (e.g. to restore it from a checkpoint).
    pub fn optimizer_mut(&mut self) -> &mut Adam {
        &mut self.adam
    }

    /// The stream of the training noise ρ.
    pub fn noise_rng(&self) -> &StreamRng {
        &self.rng
    }

    /// Replaces the stream of the training noise ρ (e.g. to restore it from a checkpoint).
    pub fn set_noise_rng(&mut self, rng: StreamRng) {
        self.rng = rng;
    }

    /// Runs training steps on `threads` threads (default 1): with two or more, the negative
    /// phase runs beside the forward and backward passes, the PCD chains' stream groups run as
    /// parallel tasks and large GEMMs are split, all in a pool of `threads` persistent threads
    /// whose idle threads pick up whatever work is left.
    ///
    /// Every task computes exactly what the serial step computes (the negative phase depends
    /// only on the prior's parameters and its own state; chains never interact; a GEMM's
    /// elements do not depend on how C is cut), so the results are bit-identical for every
    /// number of threads (tested).
    pub fn set_threads(&mut self, threads: usize) {
        self.pool = StepPool::new(threads);
    }

    /// The threads of a training step ([`TrainState::set_threads`]).
    pub fn threads(&self) -> usize {
        self.pool.threads()
    }

    /// Turns the phase timing of the training steps on (from zero) or off. Off by default; it
    /// only reads the clock between phases, so the results are the same either way.
    pub fn set_phase_timing(&mut self, on: bool) {
        self.timing = on.then(PhaseTimes::default);
    }

    /// The phase times accumulated since timing was turned on (`None` when off).
    pub fn phase_times(&self) -> Option<&PhaseTimes> {
        self.timing.as_ref()
    }

    /// The parts a step uses at once: optimiser, noise stream, pool, timers, noise buffer.
    pub(crate) fn parts(
        &mut self,
    ) -> (
        &mut Adam,
        &mut StreamRng,
        &mut StepPool,
        &mut Option<PhaseTimes>,
        &mut Noise,
    ) {
        (
            &mut self.adam,
            &mut self.rng,
            &mut self.pool,
            &mut self.timing,
            &mut self.noise,
        )
    }
}

//! GumBolt: a VAE with a Boltzmann-machine prior trained through the Gumbel relaxation
//! (Khoshaman & Amin, NeurIPS 2018; docs/algorithms.md §2).
//!
//! | item | role | paper |
//! |---|---|---|
//! | [`GumBolt`] | the model: encoders, decoder, prior, forward/backward, training step, evaluation | GB §3.1 Eq. 9, §5.1 |
//! | [`GumBoltRbm`], [`GumBoltNw`] | RBM prior with PCD; factorial prior with exact `log Z` (GumBolt-nW) | GB §5.1, Table 2 |
//! | [`GumBoltConfig`], [`Structure`] | `linear`, `nonlinear`, `linear2`, `nonlinear2` and hyper-parameters | GB Table 1, docs/algorithms.md §9 |
//! | [`TrainConfig`], [`LrSchedule`] | T, learning-rate decay, KL annealing, Adam | GB §5.1, docs/algorithms.md §2.3 |
//! | [`TrainablePrior`], [`PartitionGradient`] | what the model needs of a prior and of its `∇ log Z` | GB Eq. 6 |
//! | [`Noise`] | the uniform ρ of GB Eq. 2, explicit so losses can be made deterministic | |
//! | [`TrainingObjective`], [`Objective`] | the training objective (samples, combination of the k samples, backward pass) and its identifier; [`IwRelaxed`], [`Smoothed`], [`ReinforceObjective`] in [`objective`] | GB Eq. 9, docs/algorithms.md §3, §4, §6 |
//! | [`SampleCombination`], [`ImportanceWeighted`] | how the k relaxed samples of an image make its objective (a plug-in point for new relaxed objectives) | GB Eq. 9 |
//!
//! ```no_run
//! use gumbolt_datasets::load_bundled_mnist;
//! use gumbolt_models::gumbolt::{GumBolt, GumBoltConfig, Structure};
//! use gumbolt_samplers::PcdConfig;
//! let data = load_bundled_mnist().unwrap();
//! let config = GumBoltConfig::new(Structure::Nonlinear, data.train.dim()).with_iterations(1000);
//! let pcd = PcdConfig::default().chains(100).sweeps(200);
//! let mut model = GumBolt::with_pcd(config, &data.train.pixel_means(), pcd).unwrap();
//! let idx: Vec<usize> = (0..100).collect();
//! let mut state = gumbolt_models::train::TrainState::new(model.config()).unwrap();
//! let stats = model.train_step(&data.train.gather(&idx), 0, &mut state).unwrap();
//! println!("loss {}", stats.parts.loss);
//! ```

pub mod combination;
pub mod config;
pub mod error;
pub(crate) mod kernels;
pub mod model;
pub mod objective;
pub mod prior;

pub use combination::{ImportanceWeighted, SampleCombination};
pub use config::{GumBoltConfig, LrSchedule, PriorGraph, Structure, TrainConfig};
pub use error::{ModelError, Result};
pub use model::{
    GumBolt, GumBoltGraph, GumBoltNw, GumBoltRbm, IwEstimate, LossParts, Noise, Objectives,
    PhaseTimes, Scratch, StepStats,
};
pub use objective::{
    DvaeKind, DvaePpKind, IwRelaxed, NVIL_HIDDEN_UNITS, Nvil, Objective, ObjectiveError,
    ObjectiveKind, ObjectiveTerms, PriorGradients, ReinforceObjective, Smoothed, TrainingObjective,
    TrainingPass,
};
pub use prior::{
    ExactPartitionGradient, FixedSamples, ParamGroup, PartitionGradient, SampledPartition,
    TrainablePrior,
};

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_baselines;

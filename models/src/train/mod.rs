//! The training loop of GB §5.1 with monitoring, checkpoints and bit-exact resumption.
//!
//! | item | role |
//! |---|---|
//! | [`Trainer`], [`RbmTrainer`], [`NwTrainer`] | owns the model, the training images, the minibatch order and every RNG; [`Trainer::run`] trains up to an iteration, monitoring and checkpointing on the way |
//! | [`TrainerConfig`], [`MonitorConfig`], [`Interval`] | batch size, seeds, monitoring of F_k / L_k (GB Fig. 2b), checkpoint cadence |
//! | [`TrainImages`] | statically binarised images (MNIST) or grey levels re-binarised per minibatch (OMNIGLOT, docs/algorithms.md §10.11) |
//! | [`TrainEvent`], [`StepReport`], [`MetricsRecord`], [`CheckpointReport`], [`RunSummary`] | what the caller observes (progress bars, JSON-lines metrics) |
//! | [`TrainError`] | non-finite loss/parameters (naming the tensor and iteration), model and checkpoint errors |
//! | [`load_model`], [`read_meta`], [`CheckpointMeta`] | a trained model (or a checkpoint's metadata) from a checkpoint file |
//! | [`state`] | the model's state as named tensors; [`GumBoltPrior`], [`CheckpointPartition`] |
//!
//! # Schedules
//!
//! The learning-rate decay and the KL annealing are fractions of
//! [`crate::gumbolt::TrainConfig::total_iterations`] (GB §5.1: 60/75/95 % and 30 %), so they
//! scale with the run length; [`Interval::Times`] does the same for monitoring and checkpoints.
//!
//! # Reproducibility and resumption
//!
//! A run is a function of the model configuration (with its seed), the [`TrainerConfig`]'s
//! batch size and seed, and the data. Its state at an iteration boundary is:
//! all parameters, the batch-norm moving averages, Adam's moments and step count, the noise
//! stream of ρ, the PCD chain states (their streams are re-derived per iteration, see
//! [`CheckpointPartition`]), the minibatch order (permutation, position, epoch, shuffling
//! stream), the binarisation stream and the iteration counter. A checkpoint stores all of it
//! ([`crate::checkpoint`] format), so a run interrupted and resumed with [`Trainer::resume`]
//! ends with bit-identical parameters to an uninterrupted one. Monitoring uses its own noise
//! streams and never touches the training state, so the monitoring and checkpoint cadences do
//! not change the trajectory either.

pub mod order;
pub(crate) mod pool;
pub mod state;
mod step;

use std::path::{Path, PathBuf};
use std::time::Instant;

use gumbolt_core::Mat;
use gumbolt_core::rng::{StreamRng, root_rng};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::checkpoint::{self, CheckpointError, RawCheckpoint, Tensor, TensorData};
use crate::eval::{LogZ, LogZConfig, estimate_log_z};
use crate::gumbolt::{
    ExactPartitionGradient, GumBolt, GumBoltConfig, LossParts, ModelError, SampledPartition,
    Scratch,
};
use gumbolt_datasets::Dataset;

pub use order::EpochOrder;
use state::splitmix;
pub use state::{CheckpointPartition, GumBoltPrior, PersistentChains, model_kind, pcd_stream_seed};
pub use step::TrainState;

/// Errors of the training loop.
#[derive(Debug, Error)]
pub enum TrainError {
    /// A non-finite loss or parameter. Nothing is written after it: the last checkpoint on
    /// disk stays intact (resume from it, e.g. with a lower learning rate).
    #[error("non-finite {what} at iteration {iteration} (the last checkpoint is left intact)")]
    NonFinite {
        /// `loss` or `parameter <tensor>[<index>]`.
        what: String,
        /// The iteration (from 0) whose step produced it.
        iteration: u64,
    },
    /// An invalid trainer setting or data that do not fit the model.
    #[error("invalid trainer setting `{name}`: {reason}")]
    InvalidConfig {
        /// The setting.
        name: &'static str,
        /// What was expected.
        reason: String,
    },
    /// An error of the model (shapes, samplers, `log Z`).
    #[error(transparent)]
    Model(#[from] ModelError),
    /// An error reading or writing a checkpoint.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
}

fn invalid(name: &'static str, reason: impl Into<String>) -> TrainError {
    TrainError::InvalidConfig {
        name,
        reason: reason.into(),
    }
}

/// How often something happens during a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Interval {
    /// Never (checkpoints: only at the end of each [`Trainer::run`] call).
    Never,
    /// Every this many iterations.
    Every(u64),
    /// This many times over the run (every `⌈T/n⌉` iterations): scales with T.
    Times(u64),
}

impl Interval {
    /// The period in iterations for a run of `total` iterations (`None`: never).
    ///
    /// ```
    /// use gumbolt_models::train::Interval;
    /// assert_eq!(Interval::Times(20).period(3000), Some(150));
    /// assert_eq!(Interval::Every(7).period(3000), Some(7));
    /// assert_eq!(Interval::Never.period(3000), None);
    /// ```
    pub fn period(&self, total: u64) -> Option<u64> {
        match *self {
            Interval::Never | Interval::Times(0) => None,
            Interval::Every(n) => Some(n.max(1)),
            Interval::Times(n) => Some(total.div_ceil(n).max(1)),
        }
    }

    fn due(&self, iteration: u64, total: u64) -> bool {
        self.period(total)
            .is_some_and(|p| iteration.is_multiple_of(p) || iteration == total)
    }
}

/// Monitoring of the relaxed objective F_k (GB Eq. 9, at the training τ) and the discrete
/// objective L_k (GB Eq. 5, τ = 0) on fixed subsets of the training and validation images
/// (GB Fig. 2b: k = 20), both with batch norm in inference mode and β = 1, minus a `log Ẑ`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonitorConfig {
    /// When (default 20 times per run, and at iteration 0 and T).
    pub interval: Interval,
    /// Importance samples k (default 20, GB Fig. 2b).
    pub k: usize,
    /// Training images monitored (evenly spaced through the set; default 500).
    pub train_images: usize,
    /// Validation images monitored (default 500; none without a validation set).
    pub valid_images: usize,
    /// Images per forward pass (`images × k` rows; default 50).
    pub images_per_pass: usize,
    /// The `log Z` of the records (default [`LogZConfig::monitoring`]: a cheap AIS, or the
    /// exact value when cheap).
    pub log_z: LogZConfig,
    /// Seed of the monitoring noise (the same noise at every record, so curves are smooth).
    pub seed: u64,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self {
            interval: Interval::Times(20),
            k: 20,
            train_images: 500,
            valid_images: 500,
            images_per_pass: 50,
            log_z: LogZConfig::monitoring(),
            seed: 0x6D6F_6E69,
        }
    }
}

/// Settings of the training loop (the model's own settings are in [`GumBoltConfig`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainerConfig {
    /// Minibatch size B (GB §5.1: 100).
    pub batch_size: usize,
    /// Seed of the minibatch order and of the per-minibatch binarisation.
    pub seed: u64,
    /// Monitoring.
    pub monitor: MonitorConfig,
    /// When checkpoints are written (if a path is set); one is always written at the end of
    /// each [`Trainer::run`] call. Default 20 times per run.
    pub checkpoint_interval: Interval,
}

impl Default for TrainerConfig {
    fn default() -> Self {
        Self {
            batch_size: 100,
            seed: 0,
            monitor: MonitorConfig::default(),
            checkpoint_interval: Interval::Times(20),
        }
    }
}

impl TrainerConfig {
    /// Sets `seed`.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets the monitoring interval.
    pub fn with_monitor_interval(mut self, interval: Interval) -> Self {
        self.monitor.interval = interval;
        self
    }

    /// Sets the checkpoint interval.
    pub fn with_checkpoint_interval(mut self, interval: Interval) -> Self {
        self.checkpoint_interval = interval;
        self
    }
}

/// The training images.
#[derive(Debug, Clone, PartialEq)]
pub enum TrainImages {
    /// Binary images served as they are (statically binarised MNIST).
    Binary(Dataset),
    /// Grey levels in [0, 1], binarised afresh for every minibatch by
    /// [`Dataset::gather_binarized_into`] with the trainer's binarisation stream (OMNIGLOT's
    /// protocol, docs/algorithms.md §10.11).
    Grey(Dataset),
}

impl TrainImages {
    /// The images.
    pub fn dataset(&self) -> &Dataset {
        match self {
            TrainImages::Binary(d) | TrainImages::Grey(d) => d,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            TrainImages::Binary(_) => "binary",
            TrainImages::Grey(_) => "grey",
        }
    }
}

/// What the data a checkpoint was trained on looked like (resuming on other data is refused).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataInfo {
    /// Number of training images.
    pub n: usize,
    /// Values per image.
    pub dim: usize,
    /// `binary` or `grey`.
    pub kind: String,
    /// CRC-32 of the images' f32 little-endian bytes.
    pub crc32: u32,
}

impl DataInfo {
    fn of(images: &TrainImages) -> Self {
        let d = images.dataset();
        let mut crc = flate2::Crc::new();
        let mut buf = Vec::with_capacity(4 * 4096);
        for chunk in d.images().chunks(4096) {
            buf.clear();
            chunk
                .iter()
                .for_each(|v| buf.extend_from_slice(&v.to_le_bytes()));
            crc.update(&buf);
        }
        Self {
            n: d.n(),
            dim: d.dim(),
            kind: images.kind().into(),
            crc32: crc.sum(),
        }
    }
}

/// The saved position of the minibatch order (the permutation is the tensor `data.order`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderState {
    /// Current epoch.
    pub epoch: u64,
    /// Position within the permutation.
    pub position: usize,
    /// The shuffling stream.
    pub rng: StreamRng,
}

/// The JSON metadata of a training checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    /// `gumbolt/<prior>/<negative phase>` ([`model_kind`]), e.g. `gumbolt/rbm/pcd`.
    pub model_kind: String,
    /// The model configuration.
    pub model: GumBoltConfig,
    /// The negative phase's settings (the `PcdConfig` for PCD).
    pub negative_phase: serde_json::Value,
    /// The trainer's settings.
    pub trainer: TrainerConfig,
    /// Iterations done (the next one to run).
    pub iteration: u64,
    /// Adam's step count.
    pub adam_steps: u64,
    /// The stream of the training noise ρ.
    pub noise_rng: StreamRng,
    /// The minibatch order.
    pub order: OrderState,
    /// The per-minibatch binarisation stream.
    pub binarize_rng: StreamRng,
    /// Training wall time so far (steps only), over all sessions.
    pub train_seconds: f64,
    /// The iteration of the last metrics record, if any.
    pub last_monitor: Option<u64>,
    /// The training data.
    pub data: DataInfo,
    /// `gumbolt-models <version>`.
    pub writer: String,
    /// The training objective's own state ([`crate::gumbolt::TrainingObjective::state`]): NVIL's
    /// running statistics for REINFORCE with k = 1 (hence the name), absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nvil: Option<serde_json::Value>,
}

/// Reports one training step (for progress bars).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepReport {
    /// Iterations done, this step included.
    pub iteration: u64,
    /// Total iterations T.
    pub total: u64,
    /// Epoch of the step's minibatch.
    pub epoch: u64,
    /// The loss and its terms (before the update).
    pub parts: LossParts,
    /// The learning rate used.
    pub learning_rate: f64,
    /// Wall time of this step (minibatch, sampling, forward, backward, update).
    pub seconds: f64,
}

/// One monitoring record (one JSON line of the metrics file). Objectives are means over the
/// monitored images in nats (lower bounds on `log p(x)` for L_k; F_k is the relaxed proxy).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsRecord {
    /// Iterations done.
    pub iteration: u64,
    /// Total iterations T.
    pub total_iterations: u64,
    /// Current epoch.
    pub epoch: u64,
    /// Training wall time so far (steps only, all sessions).
    pub train_seconds: f64,
    /// KL-annealing coefficient β of the next step.
    pub kl_beta: f64,
    /// Learning rate of the next step.
    pub learning_rate: f64,
    /// Importance samples k of the objectives.
    pub k: usize,
    /// Relaxation temperature τ of F_k.
    pub tau: f64,
    /// Mean F_k on the monitored training images.
    pub train_relaxed: f64,
    /// Mean L_k on the monitored training images.
    pub train_discrete: f64,
    /// Number of monitored training images.
    pub train_images: usize,
    /// Mean F_k on the monitored validation images.
    pub valid_relaxed: Option<f64>,
    /// Mean L_k on the monitored validation images.
    pub valid_discrete: Option<f64>,
    /// Number of monitored validation images.
    pub valid_images: usize,
    /// The `log Ẑ` subtracted.
    pub log_z: f64,
    /// Its standard error.
    pub log_z_std: f64,
    /// How it was obtained (`exact`, `ais`, `pt`).
    pub log_z_method: String,
    /// Mean training loss over the steps since the previous record of this session.
    pub mean_loss: Option<f64>,
    /// Median seconds per step since the previous record of this session.
    pub sec_per_iter: Option<f64>,
    /// Steps since the previous record of this session.
    pub steps_in_interval: u64,
    /// Wall time of this record (log Z and objectives).
    pub monitor_seconds: f64,
}

/// A checkpoint was written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointReport {
    /// The file.
    pub path: PathBuf,
    /// Iterations done at the checkpoint.
    pub iteration: u64,
    /// Size in bytes.
    pub bytes: u64,
    /// Time to write it.
    pub seconds: f64,
}

/// What [`Trainer::run`] reports as it goes.
#[derive(Debug, Clone, Copy)]
pub enum TrainEvent<'a> {
    /// A step was taken.
    Step(&'a StepReport),
    /// Monitoring starts (it can take a second or two: `log Z` and 2·k forward passes).
    MonitorStart {
        /// Iterations done.
        iteration: u64,
    },
    /// A monitoring record (append it to the metrics file).
    Metrics(&'a MetricsRecord),
    /// A checkpoint was written.
    Checkpoint(&'a CheckpointReport),
}

/// Summary of one [`Trainer::run`] call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// Iteration counter at the start of the call.
    pub start_iteration: u64,
    /// Iteration counter at the end.
    pub end_iteration: u64,
    /// Wall time of the call (steps, monitoring, checkpoints).
    pub seconds: f64,
    /// Time in steps only.
    pub step_seconds: f64,
    /// Median seconds per step.
    pub sec_per_iter_median: Option<f64>,
    /// Mean seconds per step.
    pub sec_per_iter_mean: Option<f64>,
    /// The last step's loss.
    pub last_loss: Option<f64>,
    /// Metrics records produced.
    pub metrics_records: usize,
    /// Checkpoints written.
    pub checkpoints: usize,
}

fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    })
}

/// `m` evenly spaced indices of `0..n` (all of them when `m ≥ n`).
fn spread(n: usize, m: usize) -> Vec<usize> {
    let m = m.min(n);
    (0..m).map(|i| i * n / m).collect()
}

/// The trainer of GumBolt with an RBM prior and PCD ([`crate::gumbolt::GumBoltRbm`]);
/// checkpoint kind `gumbolt/rbm/pcd`.
pub type RbmTrainer = Trainer<gumbolt_priors::Rbm, SampledPartition<gumbolt_samplers::Pcd>>;

/// The trainer of GumBolt-nW ([`crate::gumbolt::GumBoltNw`]); checkpoint kind
/// `gumbolt/bernoulli/exact`.
pub type NwTrainer = Trainer<gumbolt_priors::FactorialBernoulli, ExactPartitionGradient>;

/// The training loop (GB §5.1; see the [module docs](self)).
///
/// ```no_run
/// use gumbolt_datasets::load_bundled_mnist;
/// use gumbolt_models::gumbolt::{GumBolt, GumBoltConfig, Structure};
/// use gumbolt_models::train::{TrainEvent, TrainImages, Trainer, TrainerConfig};
/// use gumbolt_samplers::PcdConfig;
/// let data = load_bundled_mnist().unwrap();
/// let config = GumBoltConfig::new(Structure::Nonlinear, data.train.dim()).with_iterations(3000);
/// let pcd = PcdConfig::default().chains(100).sweeps(200);
/// let model = GumBolt::with_pcd(config, &data.train.pixel_means(), pcd).unwrap();
/// let mut trainer = Trainer::new(
///     model,
///     TrainImages::Binary(data.train),
///     Some(&data.valid),
///     TrainerConfig::default(),
/// )
/// .unwrap()
/// .with_checkpoint_path("run.ckpt");
/// trainer
///     .run(u64::MAX, &mut |e| {
///         if let TrainEvent::Metrics(m) = e {
///             println!("{}", serde_json::to_string(m).unwrap());
///         }
///     })
///     .unwrap();
/// ```
#[derive(Debug)]
pub struct Trainer<P: GumBoltPrior, G: CheckpointPartition<P>> {
    model: GumBolt<P, G>,
    /// The optimiser, noise stream, threads and timers of the steps.
    state: TrainState,
    images: TrainImages,
    data_info: DataInfo,
    config: TrainerConfig,
    order: EpochOrder,
    binarize_rng: StreamRng,
    iteration: u64,
    train_seconds: f64,
    last_monitor: Option<u64>,
    monitor_train: Mat,
    monitor_valid: Option<Mat>,
    checkpoint_path: Option<PathBuf>,
    batch: Mat,
    interval_losses: Vec<f64>,
    interval_times: Vec<f64>,
}

impl<P: GumBoltPrior, G: CheckpointPartition<P>> Trainer<P, G> {
    /// A trainer at iteration 0 of a freshly built `model` (whose pixel means should be those
    /// of `images`). `valid` provides the monitored validation images.
    ///
    /// # Errors
    /// [`TrainError::InvalidConfig`] if the batch size is 0 or exceeds the images, the images
    /// do not have the model's width, or `monitor.k` / `monitor.images_per_pass` is 0.
    pub fn new(
        model: GumBolt<P, G>,
        images: TrainImages,
        valid: Option<&Dataset>,
        config: TrainerConfig,
    ) -> Result<Self, TrainError> {
        let order = EpochOrder::new(images.dataset().n(), splitmix(config.seed ^ 1));
        let binarize_rng = root_rng(splitmix(config.seed ^ 2));
        let state = TrainState::new(model.config())?;
        Self::assemble(model, state, images, valid, config, order, binarize_rng)
    }

    fn assemble(
        model: GumBolt<P, G>,
        state: TrainState,
        images: TrainImages,
        valid: Option<&Dataset>,
        config: TrainerConfig,
        order: EpochOrder,
        binarize_rng: StreamRng,
    ) -> Result<Self, TrainError> {
        let d = images.dataset();
        let pixels = model.config().pixels;
        if d.dim() != pixels {
            return Err(invalid(
                "images",
                format!(
                    "training images have {} values, the model {pixels}",
                    d.dim()
                ),
            ));
        }
        if config.batch_size == 0 || config.batch_size > d.n() {
            return Err(invalid(
                "batch_size",
                format!(
                    "must lie in 1..={} (the training images), got {}",
                    d.n(),
                    config.batch_size
                ),
            ));
        }
        let mon = &config.monitor;
        if mon.k == 0 || mon.images_per_pass == 0 {
            return Err(invalid(
                "monitor",
                "k and images_per_pass must be at least 1",
            ));
        }
        if let Some(v) = valid
            && v.dim() != pixels
        {
            return Err(invalid(
                "valid",
                format!(
                    "validation images have {} values, the model {pixels}",
                    v.dim()
                ),
            ));
        }
        let idx = spread(d.n(), mon.train_images.max(1));
        let monitor_train = match &images {
            TrainImages::Binary(d) => d.gather(&idx),
            TrainImages::Grey(d) => {
                let mut x = Mat::zeros(0, 0);
                d.gather_binarized_into(&idx, &mut root_rng(splitmix(config.seed ^ 3)), &mut x);
                x
            }
        };
        let monitor_valid = valid
            .filter(|v| !v.is_empty() && mon.valid_images > 0)
            .map(|v| v.gather(&spread(v.n(), mon.valid_images)));
        Ok(Self {
            data_info: DataInfo::of(&images),
            model,
            state,
            images,
            config,
            order,
            binarize_rng,
            iteration: 0,
            train_seconds: 0.0,
            last_monitor: None,
            monitor_train,
            monitor_valid,
            checkpoint_path: None,
            batch: Mat::zeros(0, 0),
            interval_losses: Vec::new(),
            interval_times: Vec::new(),
        })
    }

    /// Writes checkpoints to `path` (see [`TrainerConfig::checkpoint_interval`]).
    pub fn with_checkpoint_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.checkpoint_path = Some(path.into());
        self
    }

    /// Sets or clears the checkpoint path.
    pub fn set_checkpoint_path(&mut self, path: Option<PathBuf>) {
        self.checkpoint_path = path;
    }

    /// Changes the monitoring settings (they do not affect the training trajectory).
    ///
    /// # Errors
    /// As [`Trainer::new`] for `k` and `images_per_pass`.
    pub fn set_monitor_config(
        &mut self,
        monitor: MonitorConfig,
        valid: Option<&Dataset>,
    ) -> Result<(), TrainError> {
        if monitor.k == 0 || monitor.images_per_pass == 0 {
            return Err(invalid(
                "monitor",
                "k and images_per_pass must be at least 1",
            ));
        }
        let d = self.images.dataset();
        let idx = spread(d.n(), monitor.train_images.max(1));
        self.monitor_train = match &self.images {
            TrainImages::Binary(d) => d.gather(&idx),
            TrainImages::Grey(d) => {
                let mut x = Mat::zeros(0, 0);
                d.gather_binarized_into(
                    &idx,
                    &mut root_rng(splitmix(self.config.seed ^ 3)),
                    &mut x,
                );
                x
            }
        };
        self.monitor_valid = valid
            .filter(|v| !v.is_empty() && monitor.valid_images > 0)
            .map(|v| v.gather(&spread(v.n(), monitor.valid_images)));
        self.config.monitor = monitor;
        Ok(())
    }

    /// Changes the checkpoint cadence (it does not affect the training trajectory).
    pub fn set_checkpoint_interval(&mut self, interval: Interval) {
        self.config.checkpoint_interval = interval;
    }

    /// The model.
    pub fn model(&self) -> &GumBolt<P, G> {
        &self.model
    }

    /// Mutable model (changing it changes the run).
    pub fn model_mut(&mut self) -> &mut GumBolt<P, G> {
        &mut self.model
    }

    /// The training state: optimiser, noise stream, threads, phase timers.
    pub fn state(&self) -> &TrainState {
        &self.state
    }

    /// Mutable training state (e.g. to set the threads of a step).
    pub fn state_mut(&mut self) -> &mut TrainState {
        &mut self.state
    }

    /// The model, consuming the trainer.
    pub fn into_model(self) -> GumBolt<P, G> {
        self.model
    }

    /// The trainer's settings.
    pub fn config(&self) -> &TrainerConfig {
        &self.config
    }

    /// Iterations done (the next iteration to run).
    pub fn iteration(&self) -> u64 {
        self.iteration
    }

    /// Total iterations T of the model's configuration.
    pub fn total_iterations(&self) -> u64 {
        self.model.config().train.total_iterations
    }

    /// The current epoch.
    pub fn epoch(&self) -> u64 {
        self.order.epoch()
    }

    /// Training wall time so far (steps only, all sessions).
    pub fn train_seconds(&self) -> f64 {
        self.train_seconds
    }

    /// Whether the run is complete (`iteration == T`).
    pub fn is_finished(&self) -> bool {
        self.iteration >= self.total_iterations()
    }

    /// Trains until `until` iterations are done (at most T), then writes a checkpoint if a
    /// path is set. Every step: next minibatch (binarised afresh for [`TrainImages::Grey`]),
    /// PCD streams of the iteration, [`GumBolt::train_step`], a finiteness check of every
    /// parameter; then, when due, a monitoring record (also at iteration 0 and T) and a
    /// checkpoint.
    ///
    /// # Errors
    /// [`TrainError::NonFinite`] (nothing is written after it), model errors (monitoring's
    /// `log Z`) and checkpoint I/O errors.
    pub fn run(
        &mut self,
        until: u64,
        observer: &mut dyn FnMut(TrainEvent<'_>),
    ) -> Result<RunSummary, TrainError> {
        let t_start = Instant::now();
        let total = self.total_iterations();
        let until = until.min(total);
        let start = self.iteration;
        let mut times = Vec::with_capacity((until.saturating_sub(start)) as usize);
        let mut last_loss = None;
        let mut metrics = 0;
        let mut checkpoints = 0;
        let mut saved_at = None;
        if self.config.monitor.interval.due(self.iteration, total)
            && self.last_monitor != Some(self.iteration)
        {
            self.monitor(observer)?;
            metrics += 1;
        }
        while self.iteration < until {
            let t = self.iteration;
            let t0 = Instant::now();
            self.next_batch();
            let epoch = self.order.epoch();
            let (prior, partition) = self.model.prior_and_partition_mut();
            partition.begin_iteration(prior, t);
            let stats = match self.model.train_step(&self.batch, t, &mut self.state) {
                Err(ModelError::NonFinite { what, iteration }) => {
                    return Err(TrainError::NonFinite {
                        what: what.into(),
                        iteration,
                    });
                }
                r => r?,
            };
            if let Some((name, i)) = state::first_non_finite(&mut self.model) {
                return Err(TrainError::NonFinite {
                    what: format!("parameter {name}[{i}]"),
                    iteration: t,
                });
            }
            self.iteration += 1;
            let dt = t0.elapsed().as_secs_f64();
            self.train_seconds += dt;
            times.push(dt);
            self.interval_times.push(dt);
            self.interval_losses.push(stats.parts.loss);
            last_loss = Some(stats.parts.loss);
            observer(TrainEvent::Step(&StepReport {
                iteration: self.iteration,
                total,
                epoch,
                parts: stats.parts,
                learning_rate: stats.learning_rate,
                seconds: dt,
            }));
            if self.config.monitor.interval.due(self.iteration, total) {
                self.monitor(observer)?;
                metrics += 1;
            }
            if self.checkpoint_path.is_some()
                && self.config.checkpoint_interval.due(self.iteration, total)
            {
                self.checkpoint(observer)?;
                checkpoints += 1;
                saved_at = Some(self.iteration);
            }
        }
        if self.checkpoint_path.is_some()
            && saved_at != Some(self.iteration)
            && self.iteration > start
        {
            self.checkpoint(observer)?;
            checkpoints += 1;
        }
        let step_seconds: f64 = times.iter().sum();
        let mean = (!times.is_empty()).then(|| step_seconds / times.len() as f64);
        Ok(RunSummary {
            start_iteration: start,
            end_iteration: self.iteration,
            seconds: t_start.elapsed().as_secs_f64(),
            step_seconds,
            sec_per_iter_median: median(&mut times),
            sec_per_iter_mean: mean,
            last_loss,
            metrics_records: metrics,
            checkpoints,
        })
    }

    fn next_batch(&mut self) {
        let idx = self.order.next_batch(self.config.batch_size);
        match &self.images {
            TrainImages::Binary(d) => d.gather_into(idx, &mut self.batch),
            TrainImages::Grey(d) => {
                d.gather_binarized_into(idx, &mut self.binarize_rng, &mut self.batch)
            }
        }
    }

    fn checkpoint(&mut self, observer: &mut dyn FnMut(TrainEvent<'_>)) -> Result<(), TrainError> {
        let path = self.checkpoint_path.clone().expect("checked by the caller");
        let t0 = Instant::now();
        let bytes = self.save_checkpoint(&path)?;
        observer(TrainEvent::Checkpoint(&CheckpointReport {
            path,
            iteration: self.iteration,
            bytes,
            seconds: t0.elapsed().as_secs_f64(),
        }));
        Ok(())
    }

    /// Computes a monitoring record now (F_k and L_k on the monitored images; see
    /// [`MonitorConfig`]) and reports it to `observer`.
    ///
    /// # Errors
    /// Errors of the `log Z` estimate or the model.
    pub fn monitor(
        &mut self,
        observer: &mut dyn FnMut(TrainEvent<'_>),
    ) -> Result<MetricsRecord, TrainError> {
        observer(TrainEvent::MonitorStart {
            iteration: self.iteration,
        });
        let t0 = Instant::now();
        let cfg = self.config.monitor.clone();
        let log_z: LogZ = estimate_log_z(self.model.prior(), &cfg.log_z, &mut |_| {})?;
        let mut rngs = gumbolt_core::rng::streams(cfg.seed, 2).into_iter();
        let mut scratch = Scratch::default();
        let train = objectives(
            &self.model,
            &self.monitor_train,
            &cfg,
            log_z.value,
            &mut rngs.next().expect("two streams"),
            &mut scratch,
        )?;
        let valid = match &self.monitor_valid {
            Some(v) => Some(objectives(
                &self.model,
                v,
                &cfg,
                log_z.value,
                &mut rngs.next().expect("two streams"),
                &mut scratch,
            )?),
            None => None,
        };
        let tc = &self.model.config().train;
        let steps = self.interval_losses.len() as u64;
        let record = MetricsRecord {
            iteration: self.iteration,
            total_iterations: tc.total_iterations,
            epoch: self.order.epoch(),
            train_seconds: self.train_seconds,
            kl_beta: tc.kl_beta(self.iteration),
            learning_rate: tc.learning_rate(self.iteration),
            k: cfg.k,
            tau: self.model.config().tau,
            train_relaxed: train.0,
            train_discrete: train.1,
            train_images: self.monitor_train.nrows(),
            valid_relaxed: valid.map(|v| v.0),
            valid_discrete: valid.map(|v| v.1),
            valid_images: self.monitor_valid.as_ref().map_or(0, |v| v.nrows()),
            log_z: log_z.value,
            log_z_std: log_z.std,
            log_z_method: log_z.method,
            mean_loss: (steps > 0).then(|| self.interval_losses.iter().sum::<f64>() / steps as f64),
            sec_per_iter: median(&mut self.interval_times),
            steps_in_interval: steps,
            monitor_seconds: t0.elapsed().as_secs_f64(),
        };
        self.interval_losses.clear();
        self.interval_times.clear();
        self.last_monitor = Some(self.iteration);
        observer(TrainEvent::Metrics(&record));
        Ok(record)
    }

    /// Writes a checkpoint of the full training state to `path` atomically (see
    /// [`crate::checkpoint`]) and returns its size in bytes.
    ///
    /// # Errors
    /// [`TrainError::NonFinite`] if a parameter is not finite (nothing is written);
    /// [`CheckpointError::Io`].
    pub fn save_checkpoint(&mut self, path: impl AsRef<Path>) -> Result<u64, TrainError> {
        if let Some((name, i)) = state::first_non_finite(&mut self.model) {
            return Err(TrainError::NonFinite {
                what: format!("parameter {name}[{i}]"),
                iteration: self.iteration,
            });
        }
        let mut tensors = state::export_tensors(&mut self.model, &self.state);
        tensors.push(Tensor::u32(
            "data.order",
            self.order.order().iter().map(|&i| i as u32).collect(),
        ));
        let meta = CheckpointMeta {
            model_kind: model_kind::<P, G>(),
            model: self.model.config().clone(),
            negative_phase: self.model.partition().settings(),
            trainer: self.config.clone(),
            iteration: self.iteration,
            adam_steps: self.state.optimizer().steps(),
            noise_rng: self.state.noise_rng().clone(),
            order: OrderState {
                epoch: self.order.epoch(),
                position: self.order.position(),
                rng: self.order.rng().clone(),
            },
            binarize_rng: self.binarize_rng.clone(),
            train_seconds: self.train_seconds,
            last_monitor: self.last_monitor,
            data: self.data_info.clone(),
            writer: format!("gumbolt-models {}", env!("CARGO_PKG_VERSION")),
            nvil: self.model.objective().state(),
        };
        Ok(checkpoint::write_atomic(path, &meta, &tensors)?)
    }

    /// Restores a trainer from a checkpoint written by [`Trainer::save_checkpoint`], with the
    /// same training images (checked by size, kind and checksum) and validation images for
    /// monitoring; the checkpoint path is set to `path`. Continuing with [`Trainer::run`] gives
    /// exactly the parameters an uninterrupted run would have.
    ///
    /// # Errors
    /// [`CheckpointError`]s naming the file: unreadable, truncated, corrupt, or written for
    /// another model kind, structure or training set ([`CheckpointError::WrongStructure`]).
    pub fn resume(
        path: impl AsRef<Path>,
        images: TrainImages,
        valid: Option<&Dataset>,
    ) -> Result<Self, TrainError> {
        let path = path.as_ref();
        let mut raw = checkpoint::read(path)?;
        let meta = expect_kind::<P, G>(&raw)?;
        let info = DataInfo::of(&images);
        if info != meta.data {
            return Err(CheckpointError::wrong_structure(
                path,
                format!(
                    "it was trained on {} {} images of {} values (crc {:08x}), not on these {} {} \
                     images of {} values (crc {:08x})",
                    meta.data.n,
                    meta.data.kind,
                    meta.data.dim,
                    meta.data.crc32,
                    info.n,
                    info.kind,
                    info.dim,
                    info.crc32
                ),
            )
            .into());
        }
        let (model, train_state) = state::import_model::<P, G>(&mut raw, &meta)?;
        let order = take_order(&mut raw, &meta)?;
        if let Some(t) = raw.tensors.first() {
            return Err(CheckpointError::wrong_structure(
                path,
                format!("unexpected tensor `{}`", t.name),
            )
            .into());
        }
        let mut trainer = Self::assemble(
            model,
            train_state,
            images,
            valid,
            meta.trainer,
            order,
            meta.binarize_rng,
        )?;
        trainer.iteration = meta.iteration;
        trainer.train_seconds = meta.train_seconds;
        trainer.last_monitor = meta.last_monitor;
        trainer.checkpoint_path = Some(path.to_path_buf());
        Ok(trainer)
    }
}

/// The checkpoint's metadata, checked to be of the model kind `<P, G>`.
fn expect_kind<P: GumBoltPrior, G: CheckpointPartition<P>>(
    raw: &RawCheckpoint,
) -> Result<CheckpointMeta, CheckpointError> {
    let meta: CheckpointMeta = raw.meta_as()?;
    let want = model_kind::<P, G>();
    if meta.model_kind != want {
        return Err(CheckpointError::wrong_structure(
            &raw.path,
            format!("it holds a `{}` model, not `{want}`", meta.model_kind),
        ));
    }
    Ok(meta)
}

fn take_order(
    raw: &mut RawCheckpoint,
    meta: &CheckpointMeta,
) -> Result<EpochOrder, CheckpointError> {
    let path = raw.path.clone();
    let t = raw.take("data.order")?;
    let order: Vec<usize> = match t.data {
        TensorData::U32(v) => v.into_iter().map(|i| i as usize).collect(),
        TensorData::F32(_) => {
            return Err(CheckpointError::wrong_structure(
                &path,
                "tensor `data.order` is not u32",
            ));
        }
    };
    if order.len() != meta.data.n {
        return Err(CheckpointError::wrong_structure(
            &path,
            format!(
                "tensor `data.order` has {} entries for {} images",
                order.len(),
                meta.data.n
            ),
        ));
    }
    EpochOrder::from_parts(
        order,
        meta.order.position,
        meta.order.epoch,
        meta.order.rng.clone(),
    )
    .map_err(|e| CheckpointError::wrong_structure(&path, e))
}

/// Mean `(F_k, L_k)` over the rows of `x`, in passes of `images_per_pass` images.
fn objectives<P: GumBoltPrior, G: CheckpointPartition<P>>(
    model: &GumBolt<P, G>,
    x: &Mat,
    cfg: &MonitorConfig,
    log_z: f64,
    rng: &mut StreamRng,
    scratch: &mut Scratch,
) -> Result<(f64, f64), ModelError> {
    let n = x.nrows();
    let (mut f, mut l) = (0.0, 0.0);
    let mut start = 0;
    while start < n {
        let len = cfg.images_per_pass.min(n - start);
        let xb = x.rows(start, len).clone_owned();
        let o = model.monitor(&xb, cfg.k, log_z, rng, scratch)?;
        f += o.relaxed * len as f64;
        l += o.discrete * len as f64;
        start += len;
    }
    Ok((f / n as f64, l / n as f64))
}

/// The metadata of the checkpoint at `path` (e.g. to pick the model type from
/// [`CheckpointMeta::model_kind`] before [`load_model`]).
///
/// # Errors
/// As [`checkpoint::read`]; [`CheckpointError::WrongStructure`] if it is not a training
/// checkpoint.
pub fn read_meta(path: impl AsRef<Path>) -> Result<CheckpointMeta, CheckpointError> {
    checkpoint::read(path)?.meta_as()
}

/// The trained model of a checkpoint (for evaluation and generation).
///
/// ```no_run
/// use gumbolt_models::gumbolt::GumBoltRbm;
/// let model: GumBoltRbm = gumbolt_models::train::load_model("run.ckpt").unwrap();
/// ```
///
/// # Errors
/// As [`checkpoint::read`]; [`CheckpointError::WrongStructure`] if the checkpoint holds
/// another model kind or its tensors do not fit its configuration.
pub fn load_model<P: GumBoltPrior, G: CheckpointPartition<P>>(
    path: impl AsRef<Path>,
) -> Result<GumBolt<P, G>, CheckpointError> {
    let mut raw = checkpoint::read(path)?;
    let meta = expect_kind::<P, G>(&raw)?;
    Ok(state::import_model(&mut raw, &meta)?.0)
}

#[cfg(test)]
mod tests;

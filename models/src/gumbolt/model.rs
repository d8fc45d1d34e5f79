//! The GumBolt model: networks, prior, the relaxed objective of GB Eq. 9 with its hand-written
//! backward pass (docs/algorithms.md §2.1–§2.2), and the training step (§2.3, §9).

use gumbolt_core::numerics::LogSumExp;
use gumbolt_core::prior::Parametric;
use gumbolt_core::rng::{StreamRng, fill_uniform, root_rng};
use gumbolt_core::{GradientEstimator, Mat, Posterior};
use gumbolt_estimators::{BernoulliPosterior, Discrete, GumbelRelaxation};
use gumbolt_priors::{FactorialBernoulli, Rbm, SparseBm};
use gumbolt_samplers::{ColourPcd, Pcd, PcdConfig};
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::combination::{ImportanceWeighted, SampleCombination};
use super::config::GumBoltConfig;
use super::error::{ModelError, Result, ensure};
use super::kernels::{bernoulli_log_lik, repeat_rows, sum_squares};
use super::objective::{ObjectiveTerms, TrainingObjective, TrainingPass};
use super::prior::{ExactPartitionGradient, PartitionGradient, SampledPartition, TrainablePrior};
use crate::nn::{Mlp, MlpConfig, MlpScratch, Mode, ParamMut, Trainable, ensure_shape};
use crate::train::TrainState;

/// Uniform noise ρ for every stochastic layer: one `[N, latent_units]` matrix per layer, with
/// `N = B·k` rows (the k samples of image b are rows `b·k .. b·k + k`).
///
/// Passing the same `Noise` twice gives the same samples, which makes the loss deterministic
/// (finite-difference tests) and lets the relaxed and discrete objectives be compared at equal
/// ρ (docs/algorithms.md §8 T3).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Noise {
    layers: Vec<Mat>,
}

impl Noise {
    /// Draws uniforms on (0, 1) for `layers` layers of `[rows, units]`, layer by layer
    /// (column-major within a layer).
    pub fn draw<R: Rng + ?Sized>(rng: &mut R, rows: usize, layers: usize, units: usize) -> Self {
        let mut n = Noise::default();
        n.refill(rng, rows, layers, units);
        n
    }

    /// Noise from given matrices (entries in (0, 1); they are clamped to
    /// `[1e-6, 1 − 1e-6]` before use).
    pub fn from_layers(layers: Vec<Mat>) -> Self {
        Self { layers }
    }

    /// The matrices, one per stochastic layer.
    pub fn layers(&self) -> &[Mat] {
        &self.layers
    }

    /// Rows `N = B·k` (0 when empty).
    pub fn rows(&self) -> usize {
        self.layers.first().map_or(0, |m| m.nrows())
    }

    fn refill<R: Rng + ?Sized>(&mut self, rng: &mut R, rows: usize, layers: usize, units: usize) {
        self.layers.resize_with(layers, || Mat::zeros(0, 0));
        for m in &mut self.layers {
            ensure_shape(m, rows, units);
            fill_uniform(rng, m.as_mut_slice());
        }
    }
}

/// The noise ρ of a loss evaluation: given by the caller, or drawn inside it (a training step:
/// drawn by the networks' thread while the negative phase already runs beside it).
enum StepNoise<'a> {
    Given(&'a Noise),
    Draw {
        noise: &'a mut Noise,
        rng: &'a mut StreamRng,
        layers: usize,
        units: usize,
    },
}

impl StepNoise<'_> {
    /// The noise for `rows = B·k` rows, drawing it first if asked to.
    fn resolve(&mut self, rows: usize) -> &Noise {
        match self {
            StepNoise::Given(noise) => noise,
            StepNoise::Draw {
                noise,
                rng,
                layers,
                units,
            } => {
                noise.refill(*rng, rows, *layers, *units);
                noise
            }
        }
    }
}

/// The terms of one evaluation of the training loss (all means over the B images of the batch;
/// per-sample terms are weighted by the normalised importance weights w̃ of each image).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LossParts {
    /// The loss that was differentiated:
    /// `−(1/B) Σ_b [logsumexp_i log w_bi − log k] + β·S_Z + R_wd` (docs/algorithms.md §2.1 step 8).
    /// Its value contains the surrogate `S_Z`, not `log Z` (for PCD).
    pub loss: f64,
    /// `(1/B) Σ_b [logsumexp_i log w_bi − log k]`: the annealed relaxed objective F_k (GB Eq. 9)
    /// without its `−β log Z` term.
    pub objective: f64,
    /// `Σ_i w̃ log p(x|ζ)`: the reconstruction term.
    pub log_px_given_zeta: f64,
    /// `Σ_i w̃ (−E(ζ))`: the unnormalised prior term at relaxed points (GB Eq. 7).
    pub neg_energy: f64,
    /// `Σ_i w̃ log q̌(ζ|x)`: the Bernoulli "pmf" at relaxed points (GB text after Eq. 8).
    pub log_q: f64,
    /// The value of the `log Z` surrogate (`S_Z` for sampled negative phases, the exact
    /// `log Z` for [`ExactPartitionGradient`]).
    pub log_z_surrogate: f64,
    /// The weight-decay term `λ·½Σ‖θ‖²` over kernels, BN γ and the RBM W.
    pub weight_decay: f64,
    /// Mean effective sample size `1/Σ_i w̃²` (1 for k = 1, up to k).
    pub effective_samples: f64,
    /// The KL-annealing coefficient β used (docs/algorithms.md §2.3).
    pub beta: f64,
    /// REINFORCE with k = 1: the mean squared error `(1/B) Σ (ℓ − c − C_ψ(x))²` of NVIL's
    /// baseline network (its own loss, not part of `loss`); 0 otherwise.
    #[serde(default)]
    pub baseline_mse: f64,
}

/// What [`GumBolt::train_step`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepStats {
    /// The iteration t (from 0).
    pub iteration: u64,
    /// The learning rate used.
    pub learning_rate: f64,
    /// The loss and its terms, before the update.
    pub parts: LossParts,
}

/// Wall time of the training iterations split by phase, in seconds, accumulated over the steps
/// taken while timing is on ([`TrainState::set_phase_timing`]). Measuring only reads the clock
/// between phases: it never changes what is computed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PhaseTimes {
    /// The negative phase ([`PartitionGradient::advance`]: PCD sweeps, or the exact gradient).
    pub negative_phase: f64,
    /// The encoders' forward and backward passes, with the input centring, the relaxation and
    /// its gradient, and `log q̌(ζ|x)` and its logit gradient.
    pub encoder: f64,
    /// The decoder's forward and backward passes with `log p(x|ζ)` and `x − σ(o)`.
    pub decoder: f64,
    /// The prior terms: `−E(ζ)`, `∂(−E)/∂ζ`, and the gradient of the prior parameters
    /// (positive phase and the negative phase's contribution).
    pub prior: f64,
    /// The optimiser (Adam with weight decay).
    pub optimizer: f64,
    /// The rest: noise ρ, importance weights, the weight-decay value, bookkeeping.
    pub other: f64,
    /// Steps timed.
    pub steps: u64,
}

impl PhaseTimes {
    /// The sum of the phases.
    pub fn total(&self) -> f64 {
        self.negative_phase + self.encoder + self.decoder + self.prior + self.optimizer + self.other
    }

    pub(crate) fn add(&mut self, c: &Clock) {
        let [n, e, d, p, o, r] = c.acc;
        self.negative_phase += n;
        self.encoder += e;
        self.decoder += d;
        self.prior += p;
        self.optimizer += o;
        self.other += r;
    }
}

/// A phase of [`PhaseTimes`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum Phase {
    Negative = 0,
    Encoder = 1,
    Decoder = 2,
    Prior = 3,
    Optimizer = 4,
    Other = 5,
}

/// Stopwatch of one step: does nothing (not even read the clock) when off.
#[derive(Debug)]
pub(crate) struct Clock {
    last: Option<Instant>,
    acc: [f64; 6],
}

impl Clock {
    fn new(on: bool) -> Self {
        Self {
            last: on.then(Instant::now),
            acc: [0.0; 6],
        }
    }

    fn off() -> Self {
        Self::new(false)
    }

    /// Charges the time since the previous lap to `phase`.
    #[inline]
    pub(crate) fn lap(&mut self, phase: Phase) {
        if let Some(last) = &mut self.last {
            let now = Instant::now();
            self.acc[phase as usize] += now.duration_since(*last).as_secs_f64();
            *last = now;
        }
    }
}

/// Per-image importance-weighted estimates of `log p(x)` (Burda et al. 2015; GB §5.1
/// "4000-sample estimation"; docs/algorithms.md §2.4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IwEstimate {
    /// `log p̂(x) = logsumexp_s(log w_s) − log S − log Ẑ` per image.
    pub log_px: Vec<f64>,
    /// Delta-method standard error of each `log p̂(x)`: `sd(w)/(√S·mean(w))`, from the sample
    /// moments of the weights (it ignores the error of `log Ẑ`).
    pub std_err: Vec<f64>,
    /// Number of samples S per image.
    pub samples: usize,
}

impl IwEstimate {
    /// The mean of `log p̂(x)` over the images (minus it is the reported NLL).
    pub fn mean(&self) -> f64 {
        self.log_px.iter().sum::<f64>() / self.log_px.len().max(1) as f64
    }
}

/// The relaxed (GB Eq. 2) and discrete (τ = 0) objectives of the same noise, averaged over a
/// batch (GB Fig. 2b; docs/algorithms.md §2.4 "Monitoring").
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Objectives {
    /// Mean relaxed objective F_k (GB Eq. 9) at the model's τ.
    pub relaxed: f64,
    /// Mean discrete objective L_k (GB Eq. 5).
    pub discrete: f64,
}

/// How one forward pass runs.
#[derive(Clone, Copy)]
struct Pass<'a> {
    /// Draws the samples of every stochastic layer from its logits and noise.
    sampler: &'a dyn GradientEstimator,
    mode: Mode,
    /// KL-annealing coefficient β of the log-weights.
    beta: f64,
    /// Whether the backward pass will follow (then the decoder's `x − σ(o)` is kept).
    train: bool,
}

impl<'a> Pass<'a> {
    /// Evaluation: batch norm in inference mode, β = 1.
    fn eval(sampler: &'a dyn GradientEstimator) -> Self {
        Self {
            sampler,
            mode: Mode::Inference,
            beta: 1.0,
            train: false,
        }
    }
}

/// Buffers of the last forward pass, reused across iterations (the objectives' backward passes
/// read and write them through [`TrainingPass`]).
#[derive(Debug, Clone, Default)]
pub(crate) struct Workspace {
    /// Centred input `x − x̄` (`[B, D]`).
    pub(crate) xc: Mat,
    /// Logits of every stochastic layer (`[N, u]`; layer 1 repeated k times).
    pub(crate) logits: Vec<Mat>,
    /// Samples of every stochastic layer (`[N, u]`).
    pub(crate) zeta: Vec<Mat>,
    /// `[ζ1, ζ2]` (`[N, L·u]`): decoder input and prior argument.
    pub(crate) zeta_all: Mat,
    /// `x − σ(o)` of the decoder output (training only).
    pub(crate) dout: Mat,
    pub(crate) log_px: Vec<f64>,
    pub(crate) neg_e: Vec<f64>,
    pub(crate) log_q: Vec<f64>,
    pub(crate) log_w: Vec<f64>,
    /// `∂objective/∂log w` per row (the normalised importance weights w̃ for GB Eq. 9).
    pub(crate) wt: Vec<f64>,
    /// `∂loss/∂log w` per row.
    pub(crate) g: Vec<f32>,
    pub(crate) dzeta: Mat,
    pub(crate) egrad: Mat,
    pub(crate) dz_layer: Mat,
    pub(crate) dl: Mat,
    pub(crate) score: Mat,
    pub(crate) dl1: Mat,
    /// (B, k) of the last forward pass.
    pub(crate) shape: (usize, usize),
}

/// GumBolt (Khoshaman & Amin 2018): a VAE with a Boltzmann-machine prior trained through the
/// Gumbel relaxation of its binary latent units (GB §3.1, Eq. 9).
///
/// - **Encoder** (GB §5.1): one MLP per stochastic layer; layer 1 sees `x − x̄`, layer 2 (L = 2)
///   sees `[x − x̄, ζ1]` (hierarchical posterior `q(z1|x) q(z2|z1,x)`). Each outputs the logits
///   `l` of a 200-unit factorial Bernoulli layer.
/// - **Relaxation** (GB Eq. 2): `ζ = σ((l + logit ρ)/τ)`, τ = 1/7 in training.
/// - **Decoder**: an MLP from `[ζ1, ζ2]` (200·L units) to the logits `o = g(ζ) + x_bias` of a
///   Bernoulli image model; `x_bias = logit(clip(x̄, 1e-3, 0.999))` is fixed and the last dense
///   layer has its own trainable bias (docs/algorithms.md §2.1 step 4, §10.1).
/// - **Prior** `P`: an [`Rbm`] (GumBolt; 100×100 for L = 1, 200×200 for L = 2) or a
///   [`FactorialBernoulli`] (GumBolt-nW, GB Table 2), evaluated at the relaxed ζ (GB Eq. 7).
/// - **log Z gradient** `G` (GB Eq. 6): PCD samples ([`SampledPartition`]) or exact
///   ([`ExactPartitionGradient`]).
///
/// The training objective with k importance samples (rows of one image consecutive) is
/// `F_k = logsumexp_i(log w_i) − log k − β log Z` with
/// `log w = log p(x|ζ) + β(−E(ζ) − log q̌(ζ|x))` (GB Eq. 9 with KL annealing β, docs/algorithms.md
/// §2.1, §2.3), `log q̌(ζ|x) = Σ[ζ l − softplus(l)]`. Its gradient is computed by hand
/// (docs/algorithms.md §2.2; see [`GumBolt::loss_and_grad`]).
///
/// Evaluation sets τ = 0 (discrete `z = 1[l + logit ρ > 0]`, layer 2 fed the binary z1) and
/// runs batch norm in inference mode (GB §3.1, docs/algorithms.md §2.4).
///
/// **Training objectives.** The same networks, prior and evaluation train the models GumBolt
/// is compared with (GB Table 1): the model holds a [`TrainingObjective`] built from
/// [`GumBoltConfig::objective`] (GB Eq. 9 by default; dVAE and dVAE++, docs/algorithms.md
/// §3–§4; REINFORCE with NVIL / VIMCO, docs/algorithms.md §6) or set with
/// [`GumBolt::set_objective`]. Only the training samples, the combination of the k samples and
/// the backward pass differ.
#[derive(Debug, Clone)]
pub struct GumBolt<P, G> {
    config: GumBoltConfig,
    x_mean: Vec<f32>,
    x_bias: Vec<f32>,
    encoders: Vec<Mlp>,
    decoder: Mlp,
    prior: P,
    prior_grad: Vec<f32>,
    /// The negative phase; `None` only while a training step runs it.
    partition: Option<G>,
    /// The training objective: samples, combination of the k samples, backward pass.
    objective: Box<dyn TrainingObjective>,
    ws: Workspace,
}

const PARTITION_PRESENT: &str = "the negative phase is back in place after every training step";

/// GumBolt with an RBM prior trained by PCD (GB §3.1, §5.1).
pub type GumBoltRbm = GumBolt<Rbm, SampledPartition<Pcd>>;

/// GumBolt-nW: couplings W ≡ 0 throughout training, i.e. a factorial Bernoulli prior with the
/// exact `log Z` gradient `σ(h)` (GB Table 2; docs/algorithms.md §2.5).
pub type GumBoltNw = GumBolt<FactorialBernoulli, ExactPartitionGradient>;

impl GumBolt<Rbm, SampledPartition<Pcd>> {
    /// GumBolt with a zero-initialised RBM of sides [`GumBoltConfig::rbm_sides`] (docs/algorithms.md §1)
    /// and a PCD negative phase (GB §5.1: 200 sweeps).
    ///
    /// # Errors
    /// As [`GumBolt::new`], or an invalid PCD configuration.
    pub fn with_pcd(config: GumBoltConfig, pixel_means: &[f32], pcd: PcdConfig) -> Result<Self> {
        ensure(config.latent_dim() >= 2, "latent_units", || {
            "an RBM needs at least two latent units".into()
        })?;
        let (n1, n2) = config.rbm_sides();
        let pcd = Pcd::new(pcd)?;
        Self::new(
            config,
            pixel_means,
            Rbm::zeros(n1, n2),
            SampledPartition::new(pcd),
        )
    }
}

/// GumBolt with a Boltzmann machine on any graph (Chimera, Pegasus, Zephyr, a file's edge list:
/// [`GumBoltConfig::prior_graph`]) trained by PCD over the graph's colour classes (GB §3: the
/// relaxation and the discrete `log Z` of Eq. 9 hold for any BM prior).
pub type GumBoltGraph = GumBolt<SparseBm, SampledPartition<ColourPcd>>;

impl GumBolt<SparseBm, SampledPartition<ColourPcd>> {
    /// GumBolt with a zero-initialised machine on `config.prior_graph` (its node count must be
    /// `L·latent_units`; layer `l` holds nodes `l·latent_units..(l + 1)·latent_units`) and a
    /// PCD negative phase over colour classes.
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`] without a `prior_graph`, as [`GumBolt::new`], or an invalid
    /// PCD configuration.
    pub fn with_graph_pcd(
        config: GumBoltConfig,
        pixel_means: &[f32],
        pcd: PcdConfig,
    ) -> Result<Self> {
        config.validate()?;
        let graph = config
            .prior_graph
            .as_ref()
            .ok_or_else(|| ModelError::InvalidConfig {
                name: "prior_graph",
                reason: "a Boltzmann machine on a graph needs a graph".into(),
            })?;
        let prior = graph.prior().map_err(|reason| ModelError::InvalidConfig {
            name: "prior_graph",
            reason,
        })?;
        let pcd = ColourPcd::new(pcd)?;
        Self::new(config, pixel_means, prior, SampledPartition::new(pcd))
    }
}

impl GumBolt<FactorialBernoulli, ExactPartitionGradient> {
    /// GumBolt-nW with a zero-initialised factorial prior over `L·latent_units` units.
    ///
    /// # Errors
    /// As [`GumBolt::new`].
    pub fn nw(config: GumBoltConfig, pixel_means: &[f32]) -> Result<Self> {
        let n = config.latent_dim();
        Self::new(
            config,
            pixel_means,
            FactorialBernoulli::zeros(n),
            ExactPartitionGradient::new(),
        )
    }
}

fn shape_err(context: &'static str, expected: String, got: String) -> ModelError {
    ModelError::Shape {
        context,
        expected,
        got,
    }
}

/// The parts of a model a forward pass reads or runs, borrowed apart from its training
/// objective (whose sampler the pass may use).
struct Forward<'a, P, Q, N> {
    config: &'a GumBoltConfig,
    x_mean: &'a [f32],
    x_bias: &'a [f32],
    /// The encoders and the decoder, with the buffers they run in.
    nets: N,
    prior: &'a P,
    /// The approximating posterior: `log q` of the samples (GB text after Eq. 8).
    posterior: &'a Q,
    ws: &'a mut Workspace,
}

/// How a forward pass runs the networks: on their own buffers (training, [`OwnBuffers`]) or
/// read-only on a thread's [`Scratch`] (evaluation, [`ScratchBuffers`]); statically dispatched.
trait Networks {
    /// Encoder `i` on `x`.
    fn encoder(&mut self, i: usize, x: &Mat, mode: Mode) -> &Mat;
    /// The input buffer of encoder `i` for `rows` rows ([`Mlp::input_buffer`]).
    fn encoder_input(&mut self, i: usize, rows: usize) -> &mut Mat;
    /// The shared-input buffers of encoder `i` ([`Mlp::shared_input_buffers`]).
    fn encoder_shared_inputs(
        &mut self,
        i: usize,
        rows: usize,
        k: usize,
        shared_cols: usize,
    ) -> (&mut Mat, &mut Mat);
    /// Encoder `i` on its input buffers.
    fn encoder_buffered(&mut self, i: usize, mode: Mode) -> &Mat;
    /// The decoder on `x`.
    fn decoder(&mut self, x: &Mat, mode: Mode) -> &Mat;
}

/// The networks on their own buffers (any mode; a backward pass may follow).
struct OwnBuffers<'a> {
    encoders: &'a mut [Mlp],
    decoder: &'a mut Mlp,
}

impl Networks for OwnBuffers<'_> {
    fn encoder(&mut self, i: usize, x: &Mat, mode: Mode) -> &Mat {
        self.encoders[i].forward(x, mode)
    }
    fn encoder_input(&mut self, i: usize, rows: usize) -> &mut Mat {
        self.encoders[i].input_buffer(rows)
    }
    fn encoder_shared_inputs(
        &mut self,
        i: usize,
        rows: usize,
        k: usize,
        shared_cols: usize,
    ) -> (&mut Mat, &mut Mat) {
        self.encoders[i].shared_input_buffers(rows, k, shared_cols)
    }
    fn encoder_buffered(&mut self, i: usize, mode: Mode) -> &Mat {
        self.encoders[i].forward_buffered(mode)
    }
    fn decoder(&mut self, x: &Mat, mode: Mode) -> &Mat {
        self.decoder.forward(x, mode)
    }
}

/// The networks read-only, on a thread's buffers (inference mode only).
struct ScratchBuffers<'a> {
    encoders: &'a [Mlp],
    decoder: &'a Mlp,
    encoder_buffers: &'a mut [MlpScratch],
    decoder_buffers: &'a mut MlpScratch,
}

impl Networks for ScratchBuffers<'_> {
    fn encoder(&mut self, i: usize, x: &Mat, mode: Mode) -> &Mat {
        debug_assert_eq!(mode, Mode::Inference);
        self.encoders[i].infer(x, &mut self.encoder_buffers[i])
    }
    fn encoder_input(&mut self, i: usize, rows: usize) -> &mut Mat {
        self.encoders[i].scratch_input_buffer(&mut self.encoder_buffers[i], rows)
    }
    fn encoder_shared_inputs(
        &mut self,
        i: usize,
        rows: usize,
        k: usize,
        shared_cols: usize,
    ) -> (&mut Mat, &mut Mat) {
        self.encoders[i].scratch_shared_input_buffers(
            &mut self.encoder_buffers[i],
            rows,
            k,
            shared_cols,
        )
    }
    fn encoder_buffered(&mut self, i: usize, mode: Mode) -> &Mat {
        debug_assert_eq!(mode, Mode::Inference);
        self.encoders[i].infer_buffered(&mut self.encoder_buffers[i])
    }
    fn decoder(&mut self, x: &Mat, mode: Mode) -> &Mat {
        debug_assert_eq!(mode, Mode::Inference);
        self.decoder.infer(x, self.decoder_buffers)
    }
}

/// Per-thread buffers of evaluation ([`GumBolt::estimate_log_likelihood`]): the forward pass's
/// workspace and the networks' activations, so that threads share one model by reference
/// (docs/algorithms.md §2.4). Empty by default; sized on first use and reused.
///
/// ```
/// use gumbolt_models::gumbolt::{GumBolt, GumBoltConfig, Scratch, Structure};
/// let mut config = GumBoltConfig::new(Structure::Linear, 784);
/// (config.pixels, config.latent_units) = (4, 3);
/// let model = GumBolt::nw(config, &[0.5; 4]).unwrap();
/// let x = gumbolt_core::Mat::from_element(2, 4, 1.0);
/// let mut rng = gumbolt_core::rng::root_rng(1);
/// let mut scratch = Scratch::default(); // one per thread; the model is shared
/// let est = model.estimate_log_likelihood(&x, 8, 4, 0.0, &mut rng, &mut scratch).unwrap();
/// assert_eq!((est.log_px.len(), est.samples), (2, 8));
/// ```
#[derive(Debug, Clone, Default)]
pub struct Scratch {
    ws: Workspace,
    encoders: Vec<MlpScratch>,
    decoder: MlpScratch,
}

impl Scratch {
    /// The logits of every stochastic layer in the last pass run on these buffers.
    pub fn last_logits(&self) -> &[Mat] {
        &self.ws.logits
    }

    /// The samples of every stochastic layer in the last pass run on these buffers.
    pub fn last_samples(&self) -> &[Mat] {
        &self.ws.zeta
    }
}

impl<P: TrainablePrior, Q: Posterior, N: Networks> Forward<'_, P, Q, N> {
    /// The forward pass of docs/algorithms.md §2.1 for `x: [B, D]` with `k = N/B` samples per image:
    /// fills the workspace (logits, samples, `log p(x|ζ)`, `−E(ζ)`, `log q̌`, `log w`) and, when
    /// `train`, the decoder's `x − σ(o)`.
    fn run(self, x: &Mat, noise: &[Mat], k: usize, pass: Pass<'_>, clock: &mut Clock) {
        let Pass {
            sampler,
            mode,
            beta,
            train,
        } = pass;
        let (b, d) = x.shape();
        let n = b * k;
        let (l_count, u) = (self.config.layers(), self.config.latent_units);
        let ws = self.ws;
        ws.shape = (b, k);
        ws.logits.resize_with(l_count, || Mat::zeros(0, 0));
        ws.zeta.resize_with(l_count, || Mat::zeros(0, 0));

        // 1. Centred input x − x̄ (docs/algorithms.md §2.1 step 1).
        ensure_shape(&mut ws.xc, b, d);
        for ((xc_col, x_col), &m) in ws
            .xc
            .as_mut_slice()
            .chunks_exact_mut(b)
            .zip(x.as_slice().chunks_exact(b))
            .zip(self.x_mean)
        {
            for (c, &v) in xc_col.iter_mut().zip(x_col) {
                *c = v - m;
            }
        }

        // 2. Layer 1 on the B distinct images, then repeated k times: the repeated rows give
        // batch norm exactly the same (biased) statistics, so this equals running the encoder on
        // the N repeated rows (docs/algorithms.md §10.10) at 1/k of the cost.
        let mut nets = self.nets;
        let l1 = nets.encoder(0, &ws.xc, mode);
        repeat_rows(l1, k, &mut ws.logits[0]);
        sampler.sample_into(&ws.logits[0], &noise[0], &mut ws.zeta[0]);

        // 3. Layer 2 on [x − x̄, ζ1] (hierarchical posterior, GB §5.1).
        if l_count == 2 {
            if k == 1 {
                let inp = nets.encoder_input(1, n);
                inp.columns_mut(0, d).copy_from(&ws.xc);
                inp.columns_mut(d, u).copy_from(&ws.zeta[0]);
            } else {
                // The data part is the same for the k samples of an image: its product with
                // the first layer's kernel is computed once per image.
                let (shared, rest) = nets.encoder_shared_inputs(1, b, k, d);
                shared.copy_from(&ws.xc);
                rest.copy_from(&ws.zeta[0]);
            }
            let l2 = nets.encoder_buffered(1, mode);
            ensure_shape(&mut ws.logits[1], n, u);
            ws.logits[1].copy_from(l2);
            sampler.sample_into(&ws.logits[1], &noise[1], &mut ws.zeta[1]);
        }
        clock.lap(Phase::Encoder);

        // 4. Decoder on [ζ1, ζ2] and log p(x|ζ) (docs/algorithms.md §2.1 step 4).
        ensure_shape(&mut ws.zeta_all, n, l_count * u);
        for (i, z) in ws.zeta.iter().enumerate() {
            ws.zeta_all.columns_mut(i * u, u).copy_from(z);
        }
        let out = nets.decoder(&ws.zeta_all, mode);
        ws.log_px.resize(n, 0.0);
        let grad = if train { Some(&mut ws.dout) } else { None };
        bernoulli_log_lik(out, x, self.x_bias, k, &mut ws.log_px, grad);
        clock.lap(Phase::Decoder);

        // 5. −E(ζ) at the relaxed points (GB Eq. 7).
        ws.neg_e.resize(n, 0.0);
        self.prior.energy_into(ws.zeta_all.as_view(), &mut ws.neg_e);
        for e in &mut ws.neg_e {
            *e = -*e;
        }
        clock.lap(Phase::Prior);

        // 6. log q̌(ζ|x) = Σ_layers Σ_i [ζ l − softplus(l)] (GB text after Eq. 8).
        ws.log_q.clear();
        ws.log_q.resize(n, 0.0);
        for (l, z) in ws.logits.iter().zip(&ws.zeta) {
            self.posterior.accumulate_log_prob(l, z, &mut ws.log_q);
        }
        clock.lap(Phase::Encoder);

        // 7. log w = log p(x|ζ) + β(−E(ζ) − log q̌(ζ|x)) (GB Eq. 9, annealed, docs/algorithms.md §2.3).
        ws.log_w.resize(n, 0.0);
        for r in 0..n {
            ws.log_w[r] = ws.log_px[r] + beta * (ws.neg_e[r] - ws.log_q[r]);
        }
        clock.lap(Phase::Other);
    }
}

/// Per image, the objective made of its k log-weights by `combination` and
/// `∂objective/∂log w` (into `ws.wt`): the training objective's combination in training
/// passes, the importance-weighted bound (GB Eqs. 5, 9) in monitoring and evaluation.
fn group_objectives(ws: &mut Workspace, combination: &dyn SampleCombination) -> Vec<f64> {
    let (b, k) = ws.shape;
    ws.wt.resize(b * k, 0.0);
    (0..b)
        .map(|bi| {
            let lw = &ws.log_w[bi * k..(bi + 1) * k];
            combination.combine(lw, &mut ws.wt[bi * k..(bi + 1) * k])
        })
        .collect()
}

impl<P: TrainablePrior, G: PartitionGradient<P>> GumBolt<P, G> {
    /// A freshly initialised model (dense kernels: variance-scaling truncated normal; biases 0;
    /// BN γ = 1, β = 0) with the given prior and negative phase.
    ///
    /// `pixel_means` is x̄, the per-pixel mean of the training images: the encoder input is
    /// centred with it and the decoder's fixed offset is `logit(clip(x̄, 1e-3, 0.999))`.
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`] for an invalid configuration, pixel means outside [0, 1], or
    /// a prior whose size is not `L·latent_units`.
    pub fn new(config: GumBoltConfig, pixel_means: &[f32], prior: P, partition: G) -> Result<Self> {
        config.validate()?;
        let d = config.pixels;
        ensure(pixel_means.len() == d, "pixel_means", || {
            format!("expected {d} values, got {}", pixel_means.len())
        })?;
        ensure(
            pixel_means.iter().all(|m| (0.0..=1.0).contains(m)),
            "pixel_means",
            || "every mean must lie in [0, 1]".into(),
        )?;
        let n_lat = config.latent_dim();
        ensure(prior.num_units() == n_lat, "prior", || {
            format!(
                "the prior has {} units, the model {} (L·latent_units)",
                prior.num_units(),
                n_lat
            )
        })?;
        let groups: usize = prior.param_groups().iter().map(|g| g.len).sum();
        ensure(groups == prior.params().len(), "prior", || {
            "parameter groups do not cover the parameter vector".into()
        })?;
        let mut init = root_rng(config.seed);
        let hidden = vec![config.hidden_units; config.hidden_layers];
        let u = config.latent_units;
        let net = |input: usize, output: usize, rng: &mut StreamRng| {
            MlpConfig::new(input, hidden.clone(), output)
                .with_batch_norm(config.batch_norm)
                .build(rng)
        };
        let mut encoders = vec![net(d, u, &mut init)?];
        if config.layers() == 2 {
            encoders.push(net(d + u, u, &mut init)?);
        }
        let decoder = net(n_lat, d, &mut init)?;
        // Drawn after the other networks, so the shared networks are initialised alike for
        // every objective.
        let objective = config.objective.build(&config, &mut init)?;
        objective.check_prior(&config, &|units| prior.couples_within(units))?;
        let x_bias = pixel_means
            .iter()
            .map(|&m| gumbolt_core::numerics::logit((m as f64).clamp(1e-3, 0.999)) as f32)
            .collect();
        Ok(Self {
            objective,
            prior_grad: vec![0.0; prior.params().len()],
            x_mean: pixel_means.to_vec(),
            x_bias,
            encoders,
            decoder,
            prior,
            partition: Some(partition),
            ws: Workspace::default(),
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &GumBoltConfig {
        &self.config
    }

    /// The prior.
    pub fn prior(&self) -> &P {
        &self.prior
    }

    /// Mutable prior (e.g. to load parameters).
    pub fn prior_mut(&mut self) -> &mut P {
        &mut self.prior
    }

    /// The accumulated `∂loss/∂θ` of the prior (layout of its parameters) from the last
    /// [`GumBolt::loss_and_grad`].
    pub fn prior_grad(&self) -> &[f32] {
        &self.prior_grad
    }

    /// The negative phase.
    pub fn partition(&self) -> &G {
        self.partition.as_ref().expect(PARTITION_PRESENT)
    }

    /// Mutable negative phase (e.g. to reach the PCD chains).
    pub fn partition_mut(&mut self) -> &mut G {
        self.partition.as_mut().expect(PARTITION_PRESENT)
    }

    /// The prior and mutable access to the negative phase at once (e.g. to restore PCD chains,
    /// which needs the prior's block sizes).
    pub fn prior_and_partition_mut(&mut self) -> (&P, &mut G) {
        (
            &self.prior,
            self.partition.as_mut().expect(PARTITION_PRESENT),
        )
    }

    /// The encoder networks, one per stochastic layer.
    pub fn encoders(&self) -> &[Mlp] {
        &self.encoders
    }

    /// The decoder network.
    pub fn decoder(&self) -> &Mlp {
        &self.decoder
    }

    /// The fixed decoder offset `logit(clip(x̄, 1e-3, 0.999))`.
    pub fn x_bias(&self) -> &[f32] {
        &self.x_bias
    }

    /// The pixel means x̄.
    pub fn pixel_means(&self) -> &[f32] {
        &self.x_mean
    }

    /// Mutable encoder networks (e.g. to restore batch-norm moving averages).
    pub fn encoders_mut(&mut self) -> &mut [Mlp] {
        &mut self.encoders
    }

    /// Mutable decoder network.
    pub fn decoder_mut(&mut self) -> &mut Mlp {
        &mut self.decoder
    }

    /// The logits of every stochastic layer in the last forward pass (`[N, latent_units]`).
    pub fn last_logits(&self) -> &[Mat] {
        &self.ws.logits
    }

    /// The samples (ζ, or binary z at τ = 0) of every layer in the last forward pass.
    pub fn last_samples(&self) -> &[Mat] {
        &self.ws.zeta
    }

    /// The per-row `log p(x|ζ)` of the last forward pass.
    pub fn last_log_px(&self) -> &[f64] {
        &self.ws.log_px
    }

    /// The per-row `log q̌(ζ|x)` (at binary z: `log q(z|x)`) of the last forward pass.
    pub fn last_log_q(&self) -> &[f64] {
        &self.ws.log_q
    }

    /// The per-row log-weights `log w` of the last forward pass (without `log Z`).
    pub fn last_log_weights(&self) -> &[f64] {
        &self.ws.log_w
    }

    /// The training objective.
    pub fn objective(&self) -> &dyn TrainingObjective {
        self.objective.as_ref()
    }

    /// The training objective, mutably (e.g. to restore its state from a checkpoint).
    pub fn objective_mut(&mut self) -> &mut dyn TrainingObjective {
        self.objective.as_mut()
    }

    /// Trains with another objective (see [`TrainingObjective`]); monitoring and evaluation
    /// keep the importance-weighted bounds of the paper. Checkpoints record
    /// [`GumBoltConfig::objective`] and rebuild that objective: set one defined in code again
    /// after loading.
    pub fn set_objective(&mut self, objective: Box<dyn TrainingObjective>) {
        self.objective = objective;
    }

    /// Draws training-shaped noise for `rows = B·k` rows from `rng`.
    pub fn draw_noise<R: Rng + ?Sized>(&self, rng: &mut R, rows: usize) -> Noise {
        Noise::draw(rng, rows, self.config.layers(), self.config.latent_units)
    }

    /// The parts a forward pass runs, and the training objective.
    fn split(
        &mut self,
    ) -> (
        Forward<'_, P, BernoulliPosterior, OwnBuffers<'_>>,
        &mut dyn TrainingObjective,
    ) {
        (
            Forward {
                config: &self.config,
                x_mean: &self.x_mean,
                x_bias: &self.x_bias,
                nets: OwnBuffers {
                    encoders: &mut self.encoders,
                    decoder: &mut self.decoder,
                },
                prior: &self.prior,
                posterior: &BernoulliPosterior,
                ws: &mut self.ws,
            },
            self.objective.as_mut(),
        )
    }

    /// The parts an evaluation pass runs, read-only, on a thread's `scratch`.
    fn with_scratch<'a>(
        &'a self,
        scratch: &'a mut Scratch,
    ) -> Forward<'a, P, BernoulliPosterior, ScratchBuffers<'a>> {
        let Scratch {
            ws,
            encoders,
            decoder,
        } = scratch;
        encoders.resize_with(self.encoders.len(), MlpScratch::default);
        Forward {
            config: &self.config,
            x_mean: &self.x_mean,
            x_bias: &self.x_bias,
            nets: ScratchBuffers {
                encoders: &self.encoders,
                decoder: &self.decoder,
                encoder_buffers: encoders,
                decoder_buffers: decoder,
            },
            prior: &self.prior,
            posterior: &BernoulliPosterior,
            ws,
        }
    }

    fn check_batch(&self, x: &Mat, context: &'static str) -> Result<()> {
        if x.ncols() != self.config.pixels || x.nrows() == 0 {
            return Err(shape_err(
                context,
                format!("[B ≥ 1, {}] images", self.config.pixels),
                format!("[{}, {}]", x.nrows(), x.ncols()),
            ));
        }
        Ok(())
    }

    /// k from the noise shape, after checking it.
    fn check_noise(&self, x: &Mat, noise: &Noise, context: &'static str) -> Result<usize> {
        let b = x.nrows();
        let (l, u) = (self.config.layers(), self.config.latent_units);
        let n = noise.rows();
        let ok = noise.layers.len() == l
            && n >= b
            && n.is_multiple_of(b)
            && noise.layers.iter().all(|m| m.shape() == (n, u));
        if !ok {
            return Err(shape_err(
                context,
                format!("{l} noise matrices of [B·k, {u}] with B = {b}"),
                format!(
                    "{:?}",
                    noise.layers.iter().map(|m| m.shape()).collect::<Vec<_>>()
                ),
            ));
        }
        Ok(n / b)
    }

    /// One evaluation of the training loss at fixed noise and its full gradient (docs/algorithms.md
    /// §2.2), with batch norm in training mode:
    ///
    /// 1. the negative phase is prepared with the current θ ([`PartitionGradient::advance`]:
    ///    PCD sweeps, or the exact gradient);
    /// 2. forward pass with `ζ = σ((l + logit ρ)/τ)` (GB Eq. 2) and the log-weights of GB Eq. 9;
    /// 3. backward pass, with `w̃ = softmax_i(log w)` and `∂loss/∂log w_bi = −w̃_bi/B`:
    ///    - decoder: `∂/∂o = −w̃/B·(x − σ(o))`, back through the decoder to `∂/∂ζ`;
    ///    - prior θ: `β[−(1/B)Σ w̃ ∇θ(−E(ζ))] + β ∇θ S_Z` — positive minus negative phase
    ///      (GB Eq. 6);
    ///    - `∂/∂ζ += −w̃/B·β(∂(−E)/∂ζ − l)` (`∂(−E)/∂ζ1 = a + Wζ2`, `∂(−E)/∂ζ2 = b + Wᵀζ1`);
    ///    - through the relaxation `∂ζ/∂l = ζ(1−ζ)/τ`, plus the direct logit path of
    ///      `−β log q̌` at fixed ζ, `β(σ(l) − ζ)`;
    ///    - L = 2: layer 2's logits depend on ζ1 through its input `[x − x̄, ζ1]`; that
    ///      gradient is added to `∂/∂ζ1` before layer 1 is processed.
    ///
    /// Gradients are written (not accumulated) into the networks' gradient buffers and
    /// [`GumBolt::prior_grad`]. They exclude the weight decay, which the optimiser adds as
    /// `λθ` on the flagged tensors; its value is included in [`LossParts::loss`].
    ///
    /// # Errors
    /// [`ModelError::Shape`] for a batch or noise of the wrong shape; errors of the negative
    /// phase.
    pub fn loss_and_grad(&mut self, x: &Mat, noise: &Noise, beta: f64) -> Result<LossParts> {
        self.check_batch(x, "GumBolt::loss_and_grad")?;
        let _ftz = gumbolt_core::fpmode::FlushToZero::enable();
        let k = self.check_noise(x, noise, "GumBolt::loss_and_grad")?;
        let mut noise = StepNoise::Given(noise);
        self.loss_and_grad_impl(x, &mut noise, k, beta, None, &mut Clock::off())
    }

    fn loss_and_grad_impl(
        &mut self,
        x: &Mat,
        noise: &mut StepNoise<'_>,
        k: usize,
        beta: f64,
        pool: Option<&rayon::ThreadPool>,
        clock: &mut Clock,
    ) -> Result<LossParts> {
        clock.lap(Phase::Other);
        let products = self.config.train.network_products;
        for net in self
            .encoders
            .iter_mut()
            .chain(std::iter::once(&mut self.decoder))
        {
            net.set_training_products(products);
        }
        let mut partition = self.partition.take().expect(PARTITION_PRESENT);
        let (partition, advanced, terms) = if let Some(pool) = pool {
            // The negative phase samples with a copy of θ_t while this thread runs the
            // networks; the samples enter only the final gradient term, added afterwards.
            let prior = self.prior.clone();
            let mut advanced = Ok(());
            let networks_done = AtomicBool::new(false);
            let passes = pool.install(|| {
                rayon::scope(|s| {
                    s.spawn(|_| {
                        advanced = partition.advance(&prior);
                        // Then help the networks until they are done: polling for their
                        // split products and passes instead of sleeping keeps this worker
                        // awake, so each split part starts at once rather than after a
                        // wake-up (a futex and, on a VM, an interrupt to an idle vCPU).
                        while !networks_done.load(Ordering::Acquire) {
                            if rayon::yield_now() != Some(rayon::Yield::Executed) {
                                std::hint::spin_loop();
                            }
                        }
                    });
                    // Set on every way out of the passes (a panic too), so the helper stops.
                    let _done = SetOnDrop(&networks_done);
                    let noise = noise.resolve(x.nrows() * k);
                    clock.lap(Phase::Other);
                    self.passes(x, noise, k, beta, clock)
                })
            });
            clock.lap(Phase::Negative);
            (partition, advanced, passes)
        } else {
            let noise = noise.resolve(x.nrows() * k);
            clock.lap(Phase::Other);
            let advanced = partition.advance(&self.prior);
            clock.lap(Phase::Negative);
            let passes = if advanced.is_ok() {
                self.passes(x, noise, k, beta, clock)
            } else {
                ObjectiveTerms::default()
            };
            (partition, advanced, passes)
        };
        self.partition = Some(partition);
        advanced?;
        // The negative phase's gradient term, β ∇θ S_Z (GB Eq. 6).
        let Self {
            prior,
            prior_grad,
            partition,
            ..
        } = self;
        partition
            .as_ref()
            .expect(PARTITION_PRESENT)
            .accumulate_grad(prior, beta as f32, prior_grad);
        clock.lap(Phase::Prior);
        let weight_decay = {
            // λ·½ Σ‖θ‖² over the decayed tensors (the value of `nn::weight_decay_loss`).
            let lambda = self.config.train.adam.weight_decay;
            let sq: f64 = self
                .params_mut()
                .iter()
                .filter(|p| p.decay)
                .map(|p| sum_squares(p.value))
                .sum();
            0.5 * lambda * sq
        };
        let log_z_surrogate = self.partition().surrogate_value(&self.prior);
        let parts = LossParts {
            loss: -terms.objective + beta * log_z_surrogate + weight_decay,
            objective: terms.objective,
            log_px_given_zeta: terms.log_px_given_zeta,
            neg_energy: terms.neg_energy,
            log_q: terms.log_q,
            log_z_surrogate,
            weight_decay,
            effective_samples: terms.effective_samples,
            beta,
            baseline_mse: terms.baseline_mse,
        };
        clock.lap(Phase::Other);
        Ok(parts)
    }

    /// The forward and backward passes of one training step (everything but the negative
    /// phase's gradient term).
    fn passes(
        &mut self,
        x: &Mat,
        noise: &Noise,
        k: usize,
        beta: f64,
        clock: &mut Clock,
    ) -> ObjectiveTerms {
        let (forward, objective) = self.split();
        let pass = Pass {
            sampler: objective.sampler(),
            mode: Mode::Train,
            beta,
            train: true,
        };
        forward.run(x, &noise.layers, k, pass, clock);
        let objectives = group_objectives(&mut self.ws, self.objective.combination());
        clock.lap(Phase::Other);
        for e in &mut self.encoders {
            e.zero_grad();
        }
        clock.lap(Phase::Encoder);
        self.decoder.zero_grad();
        clock.lap(Phase::Decoder);
        let Self {
            config,
            ws,
            encoders,
            decoder,
            prior,
            prior_grad,
            objective,
            ..
        } = self;
        objective.backward(&mut TrainingPass {
            ws,
            encoders,
            decoder,
            prior: &*prior,
            prior_grad,
            noise: &noise.layers,
            clock,
            objectives: &objectives,
            layers: config.layers(),
            units: config.latent_units,
            pixels: config.pixels,
            k,
            beta,
        })
    }

    /// One training iteration t (docs/algorithms.md §2.1, §2.3, §9): draws ρ, advances the negative
    /// phase with the current θ, runs the forward and backward passes at `β_t = min(t/(0.3T), 1)`
    /// and takes an Adam step at the scheduled learning rate (weight decay `1e-4·½‖·‖²` on
    /// kernels, BN γ and the RBM W).
    ///
    /// `x` holds B binary images (`[B, D]`). The optimiser, the noise stream, the threads and
    /// the phase timers are the trainer's `state` (built for this model's configuration).
    ///
    /// # Errors
    /// [`ModelError::Shape`] for a batch of the wrong width; [`ModelError::NonFinite`] if the
    /// loss is not finite (the parameters are then left unchanged).
    pub fn train_step(
        &mut self,
        x: &Mat,
        iteration: u64,
        state: &mut TrainState,
    ) -> Result<StepStats> {
        self.check_batch(x, "GumBolt::train_step")?;
        let _ftz = gumbolt_core::fpmode::FlushToZero::enable();
        let k = self.config.k;
        let beta = self.config.train.kl_beta(iteration);
        let lr = self.config.train.learning_rate(iteration);
        let (adam, rng, pool, timing, noise) = state.parts();
        let mut clock = Clock::new(timing.is_some());
        // Drawn inside, on the networks' thread, while the negative phase starts beside it.
        let mut noise = StepNoise::Draw {
            noise,
            rng,
            layers: self.config.layers(),
            units: self.config.latent_units,
        };
        let pool = pool.get();
        let parts = self.loss_and_grad_impl(x, &mut noise, k, beta, pool.as_deref(), &mut clock)?;
        if !parts.loss.is_finite() {
            return Err(ModelError::NonFinite {
                what: "loss",
                iteration,
            });
        }
        let Self {
            encoders,
            decoder,
            prior,
            prior_grad,
            objective,
            ..
        } = self;
        let mut params = Vec::new();
        collect_params(encoders, decoder, prior, prior_grad, objective, &mut params);
        // On the step's pool, so the update is split over its threads.
        match pool.as_deref() {
            Some(pool) => pool.install(|| adam.step(&mut params, lr as f32))?,
            None => adam.step(&mut params, lr as f32)?,
        }
        objective.after_step();
        clock.lap(Phase::Optimizer);
        if let Some(t) = timing {
            t.add(&clock);
            t.steps += 1;
        }
        Ok(StepStats {
            iteration,
            learning_rate: lr,
            parts,
        })
    }

    /// Per image, the discrete objective `L_k = logsumexp_i log w_i − log k − log Ẑ` (GB Eq. 5)
    /// at τ = 0 for the given noise (`k = N/B`): `z = 1[l + logit ρ > 0]`, layer 2 fed the
    /// binary z1, batch norm in inference mode, β = 1 (docs/algorithms.md §2.4). `log_z` is the
    /// caller's estimate of `log Z` (AIS, PT, or exact). The pass runs on `scratch` (its
    /// samples and logits stay readable there).
    ///
    /// # Errors
    /// [`ModelError::Shape`] for a batch or noise of the wrong shape.
    pub fn discrete_objective(
        &self,
        x: &Mat,
        noise: &Noise,
        log_z: f64,
        scratch: &mut Scratch,
    ) -> Result<Vec<f64>> {
        self.check_batch(x, "GumBolt::discrete_objective")?;
        let _ftz = gumbolt_core::fpmode::FlushToZero::enable();
        let k = self.check_noise(x, noise, "GumBolt::discrete_objective")?;
        self.with_scratch(scratch).run(
            x,
            &noise.layers,
            k,
            Pass::eval(&Discrete),
            &mut Clock::off(),
        );
        Ok(group_objectives(&mut scratch.ws, &ImportanceWeighted)
            .into_iter()
            .map(|v| v - log_z)
            .collect())
    }

    /// Per image, the relaxed objective `F_k` (GB Eq. 9) at temperature `tau` for the given
    /// noise, with batch norm in inference mode and β = 1, minus `log_z` (for monitoring, GB
    /// Fig. 2b; it is not a bound on `log p(x)` for τ > 0, docs/algorithms.md §2.4).
    ///
    /// # Errors
    /// [`ModelError::Estimator`] for an invalid `tau`; [`ModelError::Shape`] as
    /// [`GumBolt::discrete_objective`].
    pub fn relaxed_objective(
        &self,
        x: &Mat,
        noise: &Noise,
        tau: f64,
        log_z: f64,
        scratch: &mut Scratch,
    ) -> Result<Vec<f64>> {
        let relax = GumbelRelaxation::new(tau)?;
        self.check_batch(x, "GumBolt::relaxed_objective")?;
        let _ftz = gumbolt_core::fpmode::FlushToZero::enable();
        let k = self.check_noise(x, noise, "GumBolt::relaxed_objective")?;
        self.with_scratch(scratch)
            .run(x, &noise.layers, k, Pass::eval(&relax), &mut Clock::off());
        Ok(group_objectives(&mut scratch.ws, &ImportanceWeighted)
            .into_iter()
            .map(|v| v - log_z)
            .collect())
    }

    /// Mean `F_k` (at the model's τ) and `L_k` over a batch, from the *same* noise drawn from
    /// `rng` (docs/algorithms.md §2.4: GB Fig. 2b uses k = 20).
    ///
    /// # Errors
    /// As [`GumBolt::discrete_objective`].
    pub fn monitor<R: Rng + ?Sized>(
        &self,
        x: &Mat,
        k: usize,
        log_z: f64,
        rng: &mut R,
        scratch: &mut Scratch,
    ) -> Result<Objectives> {
        ensure(k >= 1, "k", || "must be at least 1".into())?;
        let noise = self.draw_noise(rng, x.nrows() * k);
        let mean = |v: Vec<f64>| v.iter().sum::<f64>() / v.len() as f64;
        let relaxed = mean(self.relaxed_objective(x, &noise, self.config.tau, log_z, scratch)?);
        let discrete = mean(self.discrete_objective(x, &noise, log_z, scratch)?);
        Ok(Objectives { relaxed, discrete })
    }

    /// The S-sample importance-weighted estimate of `log p(x)` per image (Burda et al. 2015;
    /// GB §5.1 uses S = 4000; docs/algorithms.md §2.4):
    /// `log p̂(x) = logsumexp_s(log w_s) − log S − log Ẑ`, with
    /// `log w = log p(x|z) − E(z) − log q(z|x)` at discrete z (τ = 0, batch norm in inference
    /// mode). The samples are drawn in chunks of `chunk` per image (`B·chunk` rows per pass)
    /// and combined by a streaming max-shifted log-sum-exp in f64.
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`] if `samples` or `chunk` is 0; [`ModelError::Shape`] for a
    /// batch of the wrong width.
    pub fn estimate_log_likelihood<R: Rng + ?Sized>(
        &self,
        x: &Mat,
        samples: usize,
        chunk: usize,
        log_z: f64,
        rng: &mut R,
        scratch: &mut Scratch,
    ) -> Result<IwEstimate> {
        self.check_batch(x, "GumBolt::estimate_log_likelihood")?;
        let _ftz = gumbolt_core::fpmode::FlushToZero::enable();
        ensure(samples >= 1, "samples", || "must be at least 1".into())?;
        ensure(chunk >= 1, "chunk", || "must be at least 1".into())?;
        let b = x.nrows();
        let mut sum_w = vec![LogSumExp::default(); b];
        let mut sum_w2 = vec![LogSumExp::default(); b];
        let mut noise = Noise::default();
        let mut done = 0;
        while done < samples {
            let c = chunk.min(samples - done);
            noise.refill(rng, b * c, self.config.layers(), self.config.latent_units);
            self.with_scratch(scratch).run(
                x,
                &noise.layers,
                c,
                Pass::eval(&Discrete),
                &mut Clock::off(),
            );
            for bi in 0..b {
                for &lw in &scratch.ws.log_w[bi * c..(bi + 1) * c] {
                    sum_w[bi].add(lw);
                    sum_w2[bi].add(2.0 * lw);
                }
            }
            done += c;
        }
        let log_s = (samples as f64).ln();
        let mut log_px = Vec::with_capacity(b);
        let mut std_err = Vec::with_capacity(b);
        for (s1, s2) in sum_w.iter().zip(&sum_w2) {
            let (l1, l2) = (s1.value(), s2.value());
            log_px.push(l1 - log_s - log_z);
            // Relative variance of w: E[w²]/E[w]² − 1 = exp(l2 + log S − 2·l1) − 1.
            let rel_var = ((l2 + log_s - 2.0 * l1).exp() - 1.0).max(0.0);
            std_err.push((rel_var / samples as f64).sqrt());
        }
        Ok(IwEstimate {
            log_px,
            std_err,
            samples,
        })
    }

    /// `log p(x_r|z_r)` for every row of the latent configurations `z` (`[N, L·latent]`, binary
    /// or relaxed) and images `x` (`[N, D]`, row r paired with `z` row r), with batch norm in
    /// inference mode (the generative model of GB Eq. 5).
    ///
    /// # Errors
    /// [`ModelError::Shape`] for inconsistent shapes.
    pub fn log_px_given_z(&self, x: &Mat, z: &Mat) -> Result<Vec<f64>> {
        self.check_batch(x, "GumBolt::log_px_given_z")?;
        let n_lat = self.config.latent_dim();
        if z.shape() != (x.nrows(), n_lat) {
            return Err(shape_err(
                "GumBolt::log_px_given_z",
                format!("z of [{}, {n_lat}]", x.nrows()),
                format!("[{}, {}]", z.nrows(), z.ncols()),
            ));
        }
        let mut scratch = MlpScratch::default();
        let out = self.decoder.infer(z, &mut scratch);
        let mut lp = vec![0.0; x.nrows()];
        bernoulli_log_lik(out, x, &self.x_bias, 1, &mut lp, None);
        Ok(lp)
    }

    /// The decoder's pixel probabilities `σ(g(z) + x_bias)` for latent configurations `z`
    /// (`[N, L·latent]`), batch norm in inference mode: generation from prior samples (GB §3.1,
    /// docs/algorithms.md §2.5 "Generation").
    ///
    /// # Errors
    /// [`ModelError::Shape`] if `z` has the wrong width.
    pub fn decode(&self, z: &Mat) -> Result<Mat> {
        let n_lat = self.config.latent_dim();
        if z.ncols() != n_lat {
            return Err(shape_err(
                "GumBolt::decode",
                format!("[N, {n_lat}]"),
                format!("[{}, {}]", z.nrows(), z.ncols()),
            ));
        }
        let mut scratch = MlpScratch::default();
        let mut p = self.decoder.infer(z, &mut scratch).clone();
        for (j, &xb) in self.x_bias.iter().enumerate() {
            for v in p.column_mut(j).iter_mut() {
                *v = gumbolt_core::numerics::sigmoid((*v + xb) as f64) as f32;
            }
        }
        Ok(p)
    }
}

/// Every trainable tensor of the model, in a fixed order: encoder layer 1, encoder layer 2 (if
/// any), decoder, the prior's parameter groups, then the objective's own networks.
fn collect_params<'a, P: TrainablePrior>(
    encoders: &'a mut [Mlp],
    decoder: &'a mut Mlp,
    prior: &'a mut P,
    prior_grad: &'a mut [f32],
    objective: &'a mut Box<dyn TrainingObjective>,
    out: &mut Vec<ParamMut<'a>>,
) {
    for e in encoders.iter_mut() {
        e.collect_params(out);
    }
    decoder.collect_params(out);
    let groups = prior.param_groups();
    let mut value: &mut [f32] = Parametric::params_mut(prior);
    let mut grad: &mut [f32] = prior_grad;
    for g in groups {
        let (v, vr) = std::mem::take(&mut value).split_at_mut(g.len);
        let (gr, grr) = std::mem::take(&mut grad).split_at_mut(g.len);
        out.push(ParamMut::new(g.name, v, gr, g.decay));
        value = vr;
        grad = grr;
    }
    for (_, net) in objective.networks_mut() {
        net.collect_params(out);
    }
}

impl<P: TrainablePrior, G> Trainable for GumBolt<P, G> {
    fn collect_params<'a>(&'a mut self, out: &mut Vec<ParamMut<'a>>) {
        collect_params(
            &mut self.encoders,
            &mut self.decoder,
            &mut self.prior,
            &mut self.prior_grad,
            &mut self.objective,
            out,
        );
    }
}

/// Stores `true` into its flag when dropped (at the end of a scope, or while unwinding).
struct SetOnDrop<'a>(&'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

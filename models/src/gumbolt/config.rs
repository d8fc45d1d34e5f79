//! Structures, hyper-parameters and schedules of GumBolt (GB §5.1; docs/algorithms.md §2.3, §9).

use gumbolt_core::linalg::Precision;
use serde::{Deserialize, Serialize};

use super::error::{Result, ensure};
pub use super::objective::Objective;
use crate::nn::{AdamConfig, BatchNormConfig};

/// The four network structures of GB Table 1 (docs/algorithms.md §9).
///
/// | variant | GB symbol | stochastic layers L | hidden `Dense → BN → tanh` blocks per net (default) | prior (GumBolt) |
/// |---|---|---|---|---|
/// | [`Structure::Linear`] | `—` | 1 | 0 | RBM 100×100 (the 200 units split in half) |
/// | [`Structure::Nonlinear`] | `~` | 1 | 2 | RBM 100×100 |
/// | [`Structure::Linear2`] | `——` | 2 | 1 (reading (B) of docs/algorithms.md §9; set 0 for (A)) | RBM 200×200 |
/// | [`Structure::Nonlinear2`] | `~~` | 2 | 2 | RBM 200×200 |
///
/// With L = 2 the posterior is hierarchical, `q(z1|x) q(z2|z1, x)` (GB §5.1): the second
/// encoder sees `[x − x̄, ζ1]`. The decoder has the same number of hidden blocks as the encoders
/// and input width `200·L`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Structure {
    /// `—`: one stochastic layer, linear networks.
    Linear,
    /// `~`: one stochastic layer, two hidden layers per network.
    Nonlinear,
    /// `——`: two stochastic layers, one hidden layer per network by default.
    Linear2,
    /// `~~`: two stochastic layers, two hidden layers per network.
    Nonlinear2,
}

impl Structure {
    /// Number of stochastic layers L.
    pub fn layers(self) -> usize {
        match self {
            Structure::Linear | Structure::Nonlinear => 1,
            Structure::Linear2 | Structure::Nonlinear2 => 2,
        }
    }

    /// The default number of hidden blocks per network (docs/algorithms.md §9 table; `——` reading (B)).
    pub fn default_hidden_layers(self) -> usize {
        match self {
            Structure::Linear => 0,
            Structure::Linear2 => 1,
            Structure::Nonlinear | Structure::Nonlinear2 => 2,
        }
    }

    /// The name used on command lines and in result files.
    pub fn name(self) -> &'static str {
        match self {
            Structure::Linear => "linear",
            Structure::Nonlinear => "nonlinear",
            Structure::Linear2 => "linear2",
            Structure::Nonlinear2 => "nonlinear2",
        }
    }
}

impl std::str::FromStr for Structure {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "linear" | "—" => Ok(Structure::Linear),
            "nonlinear" | "~" => Ok(Structure::Nonlinear),
            "linear2" | "——" => Ok(Structure::Linear2),
            "nonlinear2" | "~~" => Ok(Structure::Nonlinear2),
            _ => Err(format!(
                "unknown structure {s:?}: expected linear, nonlinear, linear2 or nonlinear2"
            )),
        }
    }
}

/// A piecewise-constant learning rate: `base` times the multiplier of the last milestone
/// reached, `lr(t) = base · m_j` for the largest `j` with `t ≥ f_j·T` (1 before the first).
///
/// Milestones are fractions of the total number of iterations T, so the schedule scales with T.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LrSchedule {
    /// The initial learning rate.
    pub base: f64,
    /// `(fraction of T, cumulative multiplier)` pairs in increasing order of fraction.
    pub milestones: Vec<(f64, f64)>,
}

impl LrSchedule {
    /// GB §5.1: `base`, "reduced by 0.3 at 60%, 75%, and 95% of the total iterations"
    /// (3e-3 → 9e-4 → 2.7e-4 → 8.1e-5 for `base = 3e-3`).
    ///
    /// ```
    /// use gumbolt_models::gumbolt::LrSchedule;
    /// let s = LrSchedule::paper(3e-3);
    /// assert_eq!(s.at(0, 1000), 3e-3);
    /// assert!((s.at(600, 1000) - 9e-4).abs() < 1e-15);
    /// assert!((s.at(999, 1000) - 8.1e-5).abs() < 1e-15);
    /// ```
    pub fn paper(base: f64) -> Self {
        Self {
            base,
            milestones: vec![(0.6, 0.3), (0.75, 0.09), (0.95, 0.027)],
        }
    }

    /// The reference code's schedule (docs/algorithms.md §9: the reference implementation's `vae.py`, function `training`): a warm-up at
    /// `base/10` for the first 2 %, then `base`, `base/3`, `base/10`, `base/33` at 60/75/95 %.
    pub fn reference(base: f64) -> Self {
        Self {
            base,
            milestones: vec![
                (0.0, 0.1),
                (0.02, 1.0),
                (0.6, 1.0 / 3.0),
                (0.75, 0.1),
                (0.95, 1.0 / 33.0),
            ],
        }
    }

    /// A constant learning rate.
    pub fn constant(base: f64) -> Self {
        Self {
            base,
            milestones: Vec::new(),
        }
    }

    /// The learning rate at iteration `t` (from 0) of `total` iterations.
    pub fn at(&self, t: u64, total: u64) -> f64 {
        let mut m = 1.0;
        for &(f, mult) in &self.milestones {
            if t as f64 >= f * total as f64 {
                m = mult;
            }
        }
        self.base * m
    }

    fn validate(&self) -> Result<()> {
        ensure(
            self.base > 0.0 && self.base.is_finite(),
            "train.lr.base",
            || format!("must be positive and finite, got {}", self.base),
        )?;
        let mut last = f64::NEG_INFINITY;
        for &(f, m) in &self.milestones {
            ensure(
                (0.0..=1.0).contains(&f) && f >= last,
                "train.lr.milestones",
                || {
                    format!(
                        "fractions must be increasing within [0, 1], got {:?}",
                        self.milestones
                    )
                },
            )?;
            ensure(m > 0.0 && m.is_finite(), "train.lr.milestones", || {
                format!("multipliers must be positive, got {m}")
            })?;
            last = f;
        }
        Ok(())
    }
}

/// Optimisation settings (GB §5.1; docs/algorithms.md §2.3, §9). All schedules scale with
/// `total_iterations`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Total number of iterations T (GB: 10⁶).
    pub total_iterations: u64,
    /// Learning-rate schedule (default [`LrSchedule::paper`]`(3e-3)`).
    pub lr: LrSchedule,
    /// KL annealing: `β_t = min(t / (f·T), 1)` (GB §5.1: linear over 30 %, f = 0.3); `f = 0`
    /// disables annealing (`β ≡ 1`).
    pub kl_warmup_fraction: f64,
    /// Adam hyper-parameters, including the weight decay `1e-4·½‖·‖²` on dense kernels, BN γ
    /// and the RBM couplings W (docs/algorithms.md §10.2).
    pub adam: AdamConfig,
    /// The arithmetic of the encoders' and decoder's matrix products during training (forward
    /// and backward passes of a training step): [`Precision::F32`] (default), or
    /// [`Precision::Bf16`], bf16 operands with f32 accumulation on AMX CPUs (f32 elsewhere),
    /// as mixed-precision training does. Evaluation, the prior, the negative phase and the
    /// optimiser are always f32. Configurations written before this field existed read as f32.
    #[serde(default)]
    pub network_products: Precision,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            total_iterations: 1_000_000,
            lr: LrSchedule::paper(3e-3),
            kl_warmup_fraction: 0.3,
            adam: AdamConfig::default(),
            network_products: Precision::F32,
        }
    }
}

impl TrainConfig {
    /// The KL-annealing coefficient `β_t = min(t/(f·T), 1)` (docs/algorithms.md §2.3); 1 when `f = 0`.
    ///
    /// ```
    /// use gumbolt_models::gumbolt::TrainConfig;
    /// let c = TrainConfig { total_iterations: 1000, ..TrainConfig::default() };
    /// assert_eq!(c.kl_beta(0), 0.0);
    /// assert!((c.kl_beta(150) - 0.5).abs() < 1e-12);
    /// assert_eq!(c.kl_beta(300), 1.0);
    /// ```
    pub fn kl_beta(&self, t: u64) -> f64 {
        let span = self.kl_warmup_fraction * self.total_iterations as f64;
        if span <= 0.0 {
            1.0
        } else {
            (t as f64 / span).min(1.0)
        }
    }

    /// The learning rate at iteration `t`.
    pub fn learning_rate(&self, t: u64) -> f64 {
        self.lr.at(t, self.total_iterations)
    }

    /// Checks every field.
    ///
    /// # Errors
    /// [`super::ModelError::InvalidConfig`] naming the field, or the optimiser's error.
    pub fn validate(&self) -> Result<()> {
        ensure(self.total_iterations >= 1, "train.total_iterations", || {
            "must be at least 1".into()
        })?;
        ensure(
            (0.0..=1.0).contains(&self.kl_warmup_fraction),
            "train.kl_warmup_fraction",
            || format!("must lie in [0, 1], got {}", self.kl_warmup_fraction),
        )?;
        self.lr.validate()?;
        self.adam.validate()?;
        Ok(())
    }
}

/// Configuration of a [`super::GumBolt`] model. [`GumBoltConfig::new`] gives the paper's
/// settings for a structure; the fields can then be changed (e.g. tiny models in tests).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GumBoltConfig {
    /// The network structure (GB Table 1).
    pub structure: Structure,
    /// Input dimension D, taken from the data at construction (784 for MNIST and OMNIGLOT).
    pub pixels: usize,
    /// Units per stochastic layer (200); the latent vector has `L·latent_units` units.
    pub latent_units: usize,
    /// Width of every hidden layer (200).
    pub hidden_units: usize,
    /// Hidden `Dense → BN → tanh` blocks in each encoder layer and in the decoder
    /// (default [`Structure::default_hidden_layers`]).
    pub hidden_layers: usize,
    /// Importance samples k of the training objective (GB Eq. 9; Table 1 uses 1, 5, 20).
    pub k: usize,
    /// The training objective (GumBolt, dVAE, dVAE++ or REINFORCE); GumBolt when absent from
    /// a stored configuration.
    #[serde(default)]
    pub objective: Objective,
    /// Temperature τ of training: of the Gumbel relaxation (GB Eq. 2; 1/7 in GB §5.1), or
    /// `1/β` of the dVAE / dVAE++ smoothing ([`Objective::paper_tau`]).
    pub tau: f64,
    /// Batch-norm hyper-parameters of every hidden block.
    pub batch_norm: BatchNormConfig,
    /// Seed of the initialisation and of the training noise ρ.
    pub seed: u64,
    /// Optimisation settings.
    pub train: TrainConfig,
    /// The graph of a Boltzmann-machine prior on any graph ([`gumbolt_priors::SparseBm`]);
    /// `None` (and absent from stored configurations) for the RBM and factorial priors. Its
    /// node count must be `L·latent_units`: layer `l` holds nodes `l·latent_units ..
    /// (l + 1)·latent_units` in the graph's node order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prior_graph: Option<PriorGraph>,
}

/// The graph of a [`gumbolt_priors::SparseBm`] prior.
///
/// ```
/// use gumbolt_models::gumbolt::PriorGraph;
/// let g: PriorGraph = PriorGraph::Topology("pegasus:4".parse().unwrap());
/// assert_eq!(g.graph().unwrap().0, 264);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PriorGraph {
    /// A D-Wave topology.
    Topology(gumbolt_priors::Topology),
    /// An explicit edge list (e.g. read from a JSON file).
    Edges {
        /// Number of nodes.
        nodes: usize,
        /// Edges `(i, j)`, 0-based.
        edges: Vec<(usize, usize)>,
        /// Where it came from (a file name), for people.
        source: String,
    },
}

impl PriorGraph {
    /// Node count and edges.
    ///
    /// # Errors
    /// A message if an explicit edge list is invalid.
    pub fn graph(&self) -> std::result::Result<(usize, Vec<(usize, usize)>), String> {
        match self {
            PriorGraph::Topology(t) => Ok(t.graph()),
            PriorGraph::Edges { nodes, edges, .. } => {
                gumbolt_priors::SparseBm::from_edges(*nodes, edges).map_err(|e| e.to_string())?;
                Ok((*nodes, edges.clone()))
            }
        }
    }

    /// The zero-parameter prior on this graph.
    ///
    /// # Errors
    /// As [`PriorGraph::graph`].
    pub fn prior(&self) -> std::result::Result<gumbolt_priors::SparseBm, String> {
        let (n, e) = self.graph()?;
        gumbolt_priors::SparseBm::from_edges(n, &e).map_err(|e| e.to_string())
    }

    /// A short label: `pegasus:4`, or `graph:<source>`.
    pub fn label(&self) -> String {
        match self {
            PriorGraph::Topology(t) => t.spec(),
            PriorGraph::Edges { source, .. } => format!("graph:{source}"),
        }
    }
}

impl GumBoltConfig {
    /// The paper's settings for `structure` on images of `pixels` values (the data set's
    /// dimension, e.g. [`gumbolt_datasets::Dataset::dim`]): 200 latent units per layer,
    /// hidden width 200, k = 1, τ = 1/7, T = 10⁶, Adam 3e-3 with the paper's decay.
    ///
    /// ```
    /// use gumbolt_models::gumbolt::{GumBoltConfig, Structure};
    /// let c = GumBoltConfig::new(Structure::Nonlinear2, 784).with_k(20);
    /// assert_eq!((c.latent_dim(), c.hidden_layers, c.k), (400, 2, 20));
    /// assert!(c.validate().is_ok());
    /// ```
    pub fn new(structure: Structure, pixels: usize) -> Self {
        Self {
            structure,
            pixels,
            latent_units: 200,
            hidden_units: 200,
            hidden_layers: structure.default_hidden_layers(),
            k: 1,
            objective: Objective::GumBolt,
            tau: 1.0 / 7.0,
            batch_norm: BatchNormConfig::default(),
            seed: 0,
            train: TrainConfig::default(),
            prior_graph: None,
        }
    }

    /// Sets `k`.
    pub fn with_k(mut self, k: usize) -> Self {
        self.k = k;
        self
    }

    /// Sets the objective and its paper temperature on MNIST ([`Objective::paper_tau`]).
    pub fn with_objective(mut self, objective: Objective) -> Self {
        self.objective = objective;
        self.tau = objective.paper_tau(false);
        self
    }

    /// Sets `seed`.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets the total number of iterations T (the schedules scale with it).
    pub fn with_iterations(mut self, total: u64) -> Self {
        self.train.total_iterations = total;
        self
    }

    /// Number of stochastic layers L.
    pub fn layers(&self) -> usize {
        self.structure.layers()
    }

    /// Width of the latent vector `L·latent_units` (the decoder's input and the prior's size).
    pub fn latent_dim(&self) -> usize {
        self.layers() * self.latent_units
    }

    /// The RBM sides `(n1, n2)`: `n1 = ⌊L·latent/2⌋` (docs/algorithms.md §1 side split: 100×100 for
    /// L = 1, 200×200 for L = 2).
    pub fn rbm_sides(&self) -> (usize, usize) {
        let n = self.latent_dim();
        (n / 2, n - n / 2)
    }

    /// Checks every field.
    ///
    /// # Errors
    /// [`super::ModelError::InvalidConfig`] naming the field.
    pub fn validate(&self) -> Result<()> {
        ensure(self.pixels >= 1, "pixels", || "must be at least 1".into())?;
        ensure(self.latent_units >= 1, "latent_units", || {
            "must be at least 1".into()
        })?;
        ensure(
            self.hidden_units >= 1 || self.hidden_layers == 0,
            "hidden_units",
            || "must be at least 1 when there are hidden layers".into(),
        )?;
        ensure(self.k >= 1, "k", || "must be at least 1".into())?;
        ensure(self.tau > 0.0 && self.tau.is_finite(), "tau", || {
            format!("must be positive and finite, got {}", self.tau)
        })?;
        self.batch_norm.validate()?;
        if let Some(g) = &self.prior_graph {
            let (n, _) = g.graph().map_err(|e| super::ModelError::InvalidConfig {
                name: "prior_graph",
                reason: e,
            })?;
            ensure(n == self.latent_dim(), "prior_graph", || {
                format!(
                    "the graph {} has {n} nodes, the model {} latent units (L·latent_units)",
                    g.label(),
                    self.latent_dim()
                )
            })?;
        }
        self.train.validate()
    }
}

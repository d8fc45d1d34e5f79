//! Training objectives: how a training pass draws its latent samples from the encoder logits,
//! how the k log-weights of an image combine, and how the gradient reaches the encoder logits
//! (docs/algorithms.md §2.2, §3, §4, §6). Evaluation is the same for every objective: discrete
//! z at τ = 0 (GB §5.1).
//!
//! | module | objective | identifier ([`Objective`]) | training samples |
//! |---|---|---|---|
//! | [`iw_relaxed`] | [`IwRelaxed`]: GumBolt's importance-weighted relaxed objective F_k (GB Eq. 9) | `gumbolt` | Gumbel-relaxed ζ (GB Eq. 2), τ = 1/7 |
//! | [`smoothed`] | [`Smoothed`]: the smoothed ELBO of dVAE and dVAE++, averaged over k (docs/algorithms.md §3, §4) | `dvae`, `dvaepp` | spike-and-exponential or overlapping-exponential ζ |
//! | [`reinforce`] | [`ReinforceObjective`]: the discrete IW bound (GB Eq. 5) by REINFORCE, NVIL for k = 1 and VIMCO for k > 1 (docs/algorithms.md §6) | `reinforce` | binary z |
//!
//! A model holds its objective as a `Box<dyn TrainingObjective>` and calls it once per
//! training step (no dynamic dispatch inside the loops over samples). Configurations and
//! checkpoints record only the identifier [`Objective`], from which [`Objective::build`]
//! rebuilds the objective with its paper hyper-parameters.
//!
//! **Adding an objective**: one new file `objective/<name>.rs` holding a type that implements
//! [`TrainingObjective`] and a type that implements [`ObjectiveKind`] (its name, paper τ and
//! checked construction; it may be the same type), plus one entry `<name> { Variant => Kind, }`
//! in the `objectives!` list of this module, which declares the module and generates the
//! identifier's variant, name, parsing, serde form and [`Objective::ALL`].

use std::any::Any;
use std::ops::Range;

use gumbolt_core::prior::{EnergyGradient, EnergyParamGradient};
use gumbolt_core::rng::StreamRng;
use gumbolt_core::{GradientEstimator, Mat};
use thiserror::Error;

use super::combination::{ImportanceWeighted, SampleCombination};
use super::config::GumBoltConfig;
use super::error::Result;
use super::model::{Clock, Workspace};
use crate::nn::Mlp;

/// The prior's gradients an objective's backward pass needs: `E` and `∂E/∂ζ` at given points
/// (GB Eqs. 7, 11) and the weighted `∂(−E)/∂θ` (GB Eq. 6's positive phase). Implemented for
/// every prior that has them.
pub trait PriorGradients: EnergyGradient + EnergyParamGradient {}

impl<T: EnergyGradient + EnergyParamGradient + ?Sized> PriorGradients for T {}

/// Errors of constructing a training objective (its hyper-parameters, or a prior it cannot
/// train).
#[derive(Debug, Error)]
pub enum ObjectiveError {
    /// A hyper-parameter is outside its valid range.
    #[error("invalid {objective} hyper-parameter `{name}`: {reason}")]
    InvalidHyperParameter {
        /// The objective's name.
        objective: &'static str,
        /// The hyper-parameter.
        name: &'static str,
        /// What was expected.
        reason: String,
    },
    /// The objective's KL assumes no coupling inside a stochastic layer (two-layer dVAE and
    /// dVAE++, docs/algorithms.md §3, §4), but the prior has one.
    #[error(
        "invalid configuration `prior`: the two-layer {objective} KL assumes no coupling between \
         units of one layer, but this prior couples units inside a layer (layer l holds units \
         l·{units}..(l+1)·{units}); use --model gumbolt or reinforce, or one layer"
    )]
    CoupledLayers {
        /// The objective's name.
        objective: &'static str,
        /// Units per stochastic layer.
        units: usize,
    },
}

/// The terms of one training pass that the objective reports (all means over the B images;
/// the model adds the `log Z` surrogate and the weight decay to make [`super::LossParts`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ObjectiveTerms {
    /// The objective that was differentiated, without its `−β log Z` term.
    pub objective: f64,
    /// Its reconstruction term.
    pub log_px_given_zeta: f64,
    /// Its `−E` term.
    pub neg_energy: f64,
    /// Its `log q` term.
    pub log_q: f64,
    /// Mean effective sample size.
    pub effective_samples: f64,
    /// The loss of an auxiliary network trained beside the model (NVIL's baseline), 0 if none.
    pub baseline_mse: f64,
}

/// What an objective's backward pass works on: the buffers of the forward pass just run
/// (logits, samples, log-weights, the decoder's `x − σ(o)`, the combination's `∂/∂log w`), the
/// networks whose gradients it writes, the prior and its gradient buffer.
///
/// The backward pass must *write* (not accumulate) every encoder, decoder and prior gradient;
/// the model zeroes the networks' gradient buffers before it and adds the negative phase's
/// term `β ∇θ S_Z` (GB Eq. 6) after it.
pub struct TrainingPass<'a> {
    pub(crate) ws: &'a mut Workspace,
    pub(crate) encoders: &'a mut [Mlp],
    pub(crate) decoder: &'a mut Mlp,
    pub(crate) prior: &'a dyn PriorGradients,
    pub(crate) prior_grad: &'a mut [f32],
    pub(crate) noise: &'a [Mat],
    pub(crate) clock: &'a mut Clock,
    /// Per image, the combination of its k log-weights.
    pub(crate) objectives: &'a [f64],
    /// Stochastic layers L, units per layer, pixels D.
    pub(crate) layers: usize,
    pub(crate) units: usize,
    pub(crate) pixels: usize,
    /// Samples per image k and the KL-annealing coefficient β (docs/algorithms.md §2.3).
    pub(crate) k: usize,
    pub(crate) beta: f64,
}

impl TrainingPass<'_> {
    /// The importance-weighted terms (GB Eq. 9): the mean of the images' combined objectives,
    /// and the other terms weighted by `∂objective/∂log w` (w̃ for GB Eq. 9).
    pub(crate) fn weighted_terms(&self, baseline_mse: f64) -> ObjectiveTerms {
        let ws = &*self.ws;
        let (b, k) = ws.shape;
        let inv_b = 1.0 / b as f64;
        let wmean = |v: &[f64]| ws.wt.iter().zip(v).map(|(w, x)| w * x).sum::<f64>() * inv_b;
        let effective_samples = (0..b)
            .map(|bi| {
                1.0 / ws.wt[bi * k..(bi + 1) * k]
                    .iter()
                    .map(|w| w * w)
                    .sum::<f64>()
            })
            .sum::<f64>()
            * inv_b;
        ObjectiveTerms {
            objective: self.objectives.iter().sum::<f64>() * inv_b,
            log_px_given_zeta: wmean(&ws.log_px),
            neg_energy: wmean(&ws.neg_e),
            log_q: wmean(&ws.log_q),
            effective_samples,
            baseline_mse,
        }
    }
}

/// A training objective of the GumBolt networks (see the [module docs](self)).
///
/// Two required methods: the estimator that draws the training samples, and the backward pass.
/// The provided methods describe how the k log-weights combine (default: importance weighted,
/// GB Eq. 9) and any state of the objective's own (networks, running statistics) that the
/// optimiser trains and checkpoints store.
///
/// ```
/// use gumbolt_models::gumbolt::{GumBoltConfig, IwRelaxed, Objective, Structure};
/// let config = GumBoltConfig::new(Structure::Nonlinear, 784);
/// let mut init = gumbolt_core::rng::root_rng(0);
/// let mut objective = Objective::GumBolt.build(&config, &mut init).unwrap();
/// assert_eq!(objective.downcast_ref::<IwRelaxed>().unwrap().tau(), config.tau);
/// assert!(objective.networks_mut().is_empty() && objective.state().is_none());
/// ```
pub trait TrainingObjective: Any + dyn_clone::DynClone + std::fmt::Debug + Send + Sync {
    /// Draws the training samples from the encoder logits and uniform noise (relaxed,
    /// smoothed or discrete).
    fn sampler(&self) -> &dyn GradientEstimator;

    /// The backward pass after a training forward pass: writes every gradient of the model
    /// (see [`TrainingPass`]) and returns the objective's terms.
    fn backward(&mut self, pass: &mut TrainingPass<'_>) -> ObjectiveTerms;

    /// How the k log-weights of an image combine into its objective and `∂/∂log w` (filled
    /// before [`TrainingObjective::backward`]). Default: [`ImportanceWeighted`] (GB Eqs. 5, 9).
    fn combination(&self) -> &dyn SampleCombination {
        &ImportanceWeighted
    }

    /// Whether this objective can train a prior that couples units within the given ranges
    /// (`couples_within`, see [`super::TrainablePrior::couples_within`]). Default: yes.
    ///
    /// # Errors
    /// [`ObjectiveError::CoupledLayers`] when it cannot.
    fn check_prior(
        &self,
        config: &GumBoltConfig,
        couples_within: &dyn Fn(Range<usize>) -> bool,
    ) -> std::result::Result<(), ObjectiveError> {
        let _ = (config, couples_within);
        Ok(())
    }

    /// Networks of the objective's own, trained by the model's optimiser after the model's
    /// tensors and stored in checkpoints under `<name>.…`. Default: none.
    fn networks_mut(&mut self) -> Vec<(&'static str, &mut Mlp)> {
        Vec::new()
    }

    /// Called after every optimiser step (e.g. to fold running statistics). Default: nothing.
    fn after_step(&mut self) {}

    /// Small state of the objective's own for checkpoints (JSON), if any. Default: none.
    fn state(&self) -> Option<serde_json::Value> {
        None
    }

    /// Restores [`TrainingObjective::state`] (`None`: the state of a fresh objective).
    ///
    /// # Errors
    /// A message if the state does not fit.
    fn restore_state(
        &mut self,
        state: Option<&serde_json::Value>,
    ) -> std::result::Result<(), String> {
        let _ = state;
        Ok(())
    }
}

dyn_clone::clone_trait_object!(TrainingObjective);

impl dyn TrainingObjective {
    /// The objective as its concrete type, if it is a `T`.
    pub fn downcast_ref<T: TrainingObjective>(&self) -> Option<&T> {
        (self as &dyn Any).downcast_ref()
    }

    /// The objective as its concrete type, mutably, if it is a `T`.
    pub fn downcast_mut<T: TrainingObjective>(&mut self) -> Option<&mut T> {
        (self as &mut dyn Any).downcast_mut()
    }
}

/// A registered kind of training objective: its identifier's name, its paper temperature and
/// its checked construction for a model configuration.
pub trait ObjectiveKind {
    /// The name on command lines, in configurations and checkpoints.
    const NAME: &'static str;
    /// Other spellings accepted when parsing (lower case).
    const ALIASES: &'static [&'static str] = &[];

    /// The paper's training temperature τ (GB §5.1); `omniglot` for the OMNIGLOT settings.
    fn paper_tau(omniglot: bool) -> f64;

    /// The objective for a model of `config` (validated), with its hyper-parameters from the
    /// configuration; networks of its own are initialised from `init` (after the model's).
    ///
    /// # Errors
    /// [`ObjectiveError`] for invalid hyper-parameters, or errors building its networks.
    fn build(config: &GumBoltConfig, init: &mut StreamRng) -> Result<Box<dyn TrainingObjective>>;
}

/// Declares the objective modules and generates the identifier [`Objective`] from one line per
/// kind, `module { Variant => KindType }` (the variant's doc comment above it; a module holding
/// several kinds lists them in its braces).
macro_rules! objectives {
    ($($module:ident { $($(#[$doc:meta])* $variant:ident => $kind:ident),+ $(,)? },)+) => {
        $(pub mod $module;)+

        /// Which training objective a model uses: the serialisable identifier recorded in
        /// configurations and checkpoints (its name), from which [`Objective::build`] makes the
        /// objective. Every objective is evaluated the same way, at τ = 0 (GB §5.1); see the
        /// [module docs](self) for the table of objectives.
        ///
        /// ```
        /// use gumbolt_models::gumbolt::Objective;
        /// assert_eq!("dvae++".parse::<Objective>(), Ok(Objective::DvaePp));
        /// assert_eq!(Objective::DvaePp.paper_tau(false), 0.1);
        /// assert_eq!(Objective::DvaePp.paper_tau(true), 0.125);
        /// ```
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Objective {
            $($($(#[$doc])* $variant,)+)+
        }

        impl Objective {
            /// Every objective, in the order of registration (GB Table 1's, REINFORCE last).
            pub const ALL: [Objective; [$($(Objective::$variant,)+)+].len()] =
                [$($(Objective::$variant,)+)+];

            /// The name used on command lines, in result files and checkpoints.
            pub fn name(self) -> &'static str {
                match self {
                    $($(Objective::$variant => <$module::$kind as ObjectiveKind>::NAME,)+)+
                }
            }

            /// The paper's training temperature (GB §5.1: GumBolt 1/7, dVAE 1/5, dVAE++ 1/10
            /// on MNIST and 1/8 on OMNIGLOT; REINFORCE uses none and stores 1/7).
            pub fn paper_tau(self, omniglot: bool) -> f64 {
                match self {
                    $($(Objective::$variant => <$module::$kind as ObjectiveKind>::paper_tau(omniglot),)+)+
                }
            }

            /// The objective for a model of `config` ([`ObjectiveKind::build`]).
            ///
            /// # Errors
            /// As [`ObjectiveKind::build`].
            pub fn build(
                self,
                config: &GumBoltConfig,
                init: &mut StreamRng,
            ) -> Result<Box<dyn TrainingObjective>> {
                match self {
                    $($(Objective::$variant => <$module::$kind as ObjectiveKind>::build(config, init),)+)+
                }
            }

            /// The registered names, in the order of [`Objective::ALL`].
            const NAMES: &'static [&'static str] =
                &[$($(<$module::$kind as ObjectiveKind>::NAME,)+)+];

            fn aliases(self) -> &'static [&'static str] {
                match self {
                    $($(Objective::$variant => <$module::$kind as ObjectiveKind>::ALIASES,)+)+
                }
            }
        }
    };
}

// The registered objectives, in the order of GB Table 1 (REINFORCE last): one entry per
// module, `module { /// doc  Variant => KindType, }`.
objectives! {
    smoothed {
        /// dVAE: spike-and-exponential smoothing; closed-form KL for L = 1, Rolfe's estimator
        /// for L = 2 (docs/algorithms.md §3).
        Dvae => DvaeKind,
        /// dVAE++: overlapping-exponential smoothing; KL with `ν1 = q(z1 = 1|ζ1, x)` for L = 2
        /// (docs/algorithms.md §4).
        DvaePp => DvaePpKind,
    },
    iw_relaxed {
        /// GumBolt (GB Eq. 9).
        GumBolt => IwRelaxed,
    },
    reinforce {
        /// REINFORCE on the discrete objective with NVIL (k = 1) or VIMCO (k > 1) variance
        /// reduction (docs/algorithms.md §6).
        Reinforce => ReinforceObjective,
    },
}

pub use iw_relaxed::IwRelaxed;
pub use reinforce::{NVIL_HIDDEN_UNITS, Nvil, ReinforceObjective};
pub use smoothed::{DvaeKind, DvaePpKind, Smoothed};

impl Default for Objective {
    /// GumBolt (absent from a stored configuration means GumBolt).
    fn default() -> Self {
        Objective::GumBolt
    }
}

impl std::fmt::Display for Objective {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Objective {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let s_low = s.trim().to_ascii_lowercase();
        Objective::ALL
            .into_iter()
            .find(|o| o.name() == s_low || o.aliases().contains(&s_low.as_str()))
            .ok_or_else(|| {
                let (last, rest) = Objective::NAMES
                    .split_last()
                    .expect("objectives are registered");
                format!(
                    "unknown objective {s:?}: expected {} or {last}",
                    rest.join(", ")
                )
            })
    }
}

impl serde::Serialize for Objective {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Objective {
    /// Exactly a registered name (no aliases), as stored by [`serde::Serialize`].
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Objective::ALL
            .into_iter()
            .find(|o| o.name() == name)
            .ok_or_else(|| serde::de::Error::unknown_variant(&name, Objective::NAMES))
    }
}

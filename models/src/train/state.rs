//! The complete state of a [`GumBolt`] model as named tensors, and what the training loop needs
//! of its prior and negative phase (model kinds, PCD stream derivation, chain restore).

use gumbolt_core::Mat;
use gumbolt_core::Sampler;
use gumbolt_core::prior::{BlockConditionals, ColourConditionals, ExactPartition};
use gumbolt_core::{LogPartitionEstimate, LogPartitionEstimator};
use gumbolt_priors::{FactorialBernoulli, Rbm, SparseBm};
use gumbolt_samplers::logz::{
    Ais, AisBase, AisConfig, ColourAis, ColourAisConfig, ColourPtBar, ColourPtBarConfig,
    LadderSpec, PtBar, PtBarConfig,
};
use gumbolt_samplers::{BlockGibbs, ColourGibbs, ColourPcd, Pcd, PcdConfig, Progress};

use crate::checkpoint::{CheckpointError, RawCheckpoint, Tensor};
use crate::gumbolt::{
    ExactPartitionGradient, GumBolt, GumBoltConfig, ModelError, PartitionGradient,
    SampledPartition, TrainablePrior,
};
use crate::nn::{Mlp, Trainable};
use crate::train::TrainState;

/// A prior the training loop, checkpoints and evaluation support: trainable (GB Eq. 6–7),
/// sampleable by block Gibbs (two blocks for the RBM, colour classes for a Boltzmann machine on
/// any graph: PCD, AIS, PT, generation) and with an exact `log Z` where tractable.
pub trait GumBoltPrior: TrainablePrior + ExactPartition + Send + Sync + 'static {
    /// Name of the prior kind in checkpoints (`"rbm"`, `"bernoulli"`, `"sparse-bm"`).
    const KIND: &'static str;

    /// The zero-initialised prior a model of `config` starts from (`config` passed
    /// [`GumBoltPrior::check_config`]).
    fn for_config(config: &GumBoltConfig) -> Self;

    /// Whether a model of `config` can hold this prior (e.g. a graph prior needs
    /// `config.prior_graph`). Default: yes.
    ///
    /// # Errors
    /// A message saying what is missing.
    fn check_config(config: &GumBoltConfig) -> Result<(), String> {
        let _ = config;
        Ok(())
    }

    /// Whether the exact `log Z` is cheap (milliseconds): then monitoring and evaluation use
    /// it instead of a sampling estimate when asked to prefer exact values.
    fn exact_log_z_is_cheap(&self) -> bool;

    /// `log Z` by AIS (`ais`) or PT + bridge sampling (`pt`): given the RBM estimators'
    /// configurations, which a prior without two blocks maps onto its own estimators.
    ///
    /// # Errors
    /// The estimator's error.
    fn estimate_log_z_sampled(
        &self,
        ais: Option<&AisConfig>,
        pt: Option<&PtBarConfig>,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<LogPartitionEstimate, gumbolt_samplers::SamplerError>;

    /// `n` samples after `sweeps` Gibbs sweeps at β = 1 from `init` (rows reused cyclically)
    /// or from Bernoulli(0.5).
    ///
    /// # Errors
    /// An invalid sampler configuration (`n = 0`).
    fn gibbs_samples(
        &self,
        init: Option<&Mat>,
        n: usize,
        sweeps: usize,
        seed: u64,
    ) -> Result<Mat, gumbolt_samplers::SamplerError>;
}

/// [`GumBoltPrior::estimate_log_z_sampled`] of a two-block prior.
fn block_log_z<P: BlockConditionals + ?Sized>(
    prior: &P,
    ais: Option<&AisConfig>,
    pt: Option<&PtBarConfig>,
    progress: &mut dyn FnMut(Progress),
) -> Result<LogPartitionEstimate, gumbolt_samplers::SamplerError> {
    match (ais, pt) {
        (Some(c), _) => Ais::new(c.clone())?.estimate_with_progress(prior, progress),
        (None, Some(c)) => PtBar::new(c.clone())?.estimate_with_progress(prior, progress),
        (None, None) => Ok(LogPartitionEstimate::exact(f64::NAN)),
    }
}

/// [`GumBoltPrior::gibbs_samples`] of a two-block prior.
fn block_samples<P: BlockConditionals + ?Sized>(
    prior: &P,
    init: Option<&Mat>,
    n: usize,
    sweeps: usize,
    seed: u64,
) -> Result<Mat, gumbolt_samplers::SamplerError> {
    let (n1, n2) = prior.block_sizes();
    let mut gibbs = BlockGibbs::new(n1, n2, n, seed)?;
    if let Some(chains) = init {
        let c = chains.nrows();
        let state = gibbs.state_mut();
        for r in 0..n {
            state.row_mut(r).copy_from(&chains.row(r % c));
        }
    }
    gibbs.run(prior, sweeps);
    Ok(gibbs.state().clone())
}

/// [`GumBoltPrior::estimate_log_z_sampled`] of a prior with a colouring: AIS or PT + bridge
/// sampling over colour classes, with the RBM estimators' settings mapped onto them (AIS:
/// chains, runs, number of steps, base sweeps; PT: runs, burn-in, production steps, thinning,
/// a fixed ladder if given).
pub fn colour_log_z<P: ColourConditionals + Sync + ?Sized>(
    prior: &P,
    ais: Option<&AisConfig>,
    pt: Option<&PtBarConfig>,
) -> Result<LogPartitionEstimate, gumbolt_samplers::SamplerError> {
    match (ais, pt) {
        (Some(c), _) => {
            let base_sweeps = match c.base {
                AisBase::GibbsMarginals { sweeps, .. } => sweeps,
                _ => 200,
            };
            ColourAis::new(ColourAisConfig {
                chains: c.chains,
                runs: c.runs,
                steps: c.schedule.steps(),
                base_sweeps,
                threads: c.threads,
                seed: c.seed,
            })?
            .estimate(prior)
        }
        (None, Some(c)) => ColourPtBar::new(ColourPtBarConfig {
            runs: c.runs,
            betas: match &c.ladder {
                LadderSpec::Fixed(l) => Some(l.betas().to_vec()),
                LadderSpec::Auto(_) => None,
            },
            burn_in: c.burn_in,
            sweeps: c.sweeps,
            thin: c.thin,
            min_swap_rate: c.min_swap_rate,
            threads: c.threads,
            seed: c.seed,
            ..ColourPtBarConfig::default()
        })?
        .estimate(prior),
        (None, None) => Ok(LogPartitionEstimate::exact(f64::NAN)),
    }
}

/// [`GumBoltPrior::gibbs_samples`] of a prior with a colouring.
pub fn colour_samples<P: ColourConditionals + ?Sized>(
    prior: &P,
    init: Option<&Mat>,
    n: usize,
    sweeps: usize,
    seed: u64,
) -> Result<Mat, gumbolt_samplers::SamplerError> {
    let mut gibbs = ColourGibbs::for_prior(prior, n, seed)?;
    if let Some(chains) = init {
        let c = chains.nrows();
        let state = gibbs.state_mut();
        for r in 0..n {
            state.row_mut(r).copy_from(&chains.row(r % c));
        }
    }
    gibbs.run(prior, sweeps);
    Ok(gibbs.state().clone())
}

impl GumBoltPrior for Rbm {
    const KIND: &'static str = "rbm";

    fn for_config(config: &GumBoltConfig) -> Self {
        let (n1, n2) = config.rbm_sides();
        Rbm::zeros(n1, n2)
    }

    /// Enumerating the smaller side costs `2^min(n1, n2)`: cheap up to 20 units.
    fn exact_log_z_is_cheap(&self) -> bool {
        self.n1().min(self.n2()) <= 20
    }

    fn estimate_log_z_sampled(
        &self,
        ais: Option<&AisConfig>,
        pt: Option<&PtBarConfig>,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<LogPartitionEstimate, gumbolt_samplers::SamplerError> {
        block_log_z(self, ais, pt, progress)
    }

    fn gibbs_samples(
        &self,
        init: Option<&Mat>,
        n: usize,
        sweeps: usize,
        seed: u64,
    ) -> Result<Mat, gumbolt_samplers::SamplerError> {
        block_samples(self, init, n, sweeps, seed)
    }
}

impl GumBoltPrior for FactorialBernoulli {
    const KIND: &'static str = "bernoulli";

    fn for_config(config: &GumBoltConfig) -> Self {
        FactorialBernoulli::zeros(config.latent_dim())
    }

    /// `log Z = Σ softplus(h)`.
    fn exact_log_z_is_cheap(&self) -> bool {
        true
    }

    fn estimate_log_z_sampled(
        &self,
        ais: Option<&AisConfig>,
        pt: Option<&PtBarConfig>,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<LogPartitionEstimate, gumbolt_samplers::SamplerError> {
        block_log_z(self, ais, pt, progress)
    }

    fn gibbs_samples(
        &self,
        init: Option<&Mat>,
        n: usize,
        sweeps: usize,
        seed: u64,
    ) -> Result<Mat, gumbolt_samplers::SamplerError> {
        block_samples(self, init, n, sweeps, seed)
    }
}

impl GumBoltPrior for SparseBm {
    const KIND: &'static str = "sparse-bm";

    /// The zero-parameter machine on `config.prior_graph`.
    fn for_config(config: &GumBoltConfig) -> Self {
        config
            .prior_graph
            .as_ref()
            .expect("checked by check_config")
            .prior()
            .expect("checked by check_config")
    }

    fn check_config(config: &GumBoltConfig) -> Result<(), String> {
        let g = config
            .prior_graph
            .as_ref()
            .ok_or("a Boltzmann machine on a graph needs `prior_graph` in the configuration")?;
        g.prior().map(|_| ())
    }

    /// Enumeration costs `2^n`: cheap up to 20 units.
    fn exact_log_z_is_cheap(&self) -> bool {
        self.num_units() <= 20
    }

    fn estimate_log_z_sampled(
        &self,
        ais: Option<&AisConfig>,
        pt: Option<&PtBarConfig>,
        _progress: &mut dyn FnMut(Progress),
    ) -> Result<LogPartitionEstimate, gumbolt_samplers::SamplerError> {
        colour_log_z(self, ais, pt)
    }

    fn gibbs_samples(
        &self,
        init: Option<&Mat>,
        n: usize,
        sweeps: usize,
        seed: u64,
    ) -> Result<Mat, gumbolt_samplers::SamplerError> {
        colour_samples(self, init, n, sweeps, seed)
    }
}

/// A negative phase the training loop can checkpoint and resume bit-exactly.
///
/// **PCD streams.** The samplers crate does not expose the RNG state of its chains, so the
/// trainer re-derives the chains' streams at the start of every iteration `t` from the PCD seed
/// and `t` ([`pcd_stream_seed`]) and keeps only the chain *states* across iterations. The
/// Markov chains are unchanged (each iteration's sweeps use fresh, independent uniforms); what
/// this buys is that the full sampler state at an iteration boundary is the `[C, n]` chain
/// matrix, which checkpoints store.
pub trait CheckpointPartition<P>: PartitionGradient<P> + Clone + Send + Sync + 'static {
    /// Name of the negative-phase kind in checkpoints (`"pcd"`, `"exact"`).
    const KIND: &'static str;

    /// The settings needed to rebuild it (JSON; e.g. the [`PcdConfig`]).
    fn settings(&self) -> serde_json::Value;

    /// Rebuilds it from [`CheckpointPartition::settings`].
    ///
    /// # Errors
    /// A message if the settings are invalid.
    fn from_settings(settings: &serde_json::Value) -> Result<Self, String>;

    /// Called by the trainer before training iteration `t` (see the trait docs).
    fn begin_iteration(&mut self, prior: &P, iteration: u64);

    /// The persistent chain states `[C, n]`, if any exist yet.
    fn chains(&self) -> Option<&Mat>;

    /// Restores the chain states saved before iteration `iteration`.
    ///
    /// # Errors
    /// A message if the shape does not fit.
    fn restore_chains(&mut self, prior: &P, chains: Mat, iteration: u64) -> Result<(), String>;
}

/// The seed of the PCD chains' streams in training iteration `t`: SplitMix64 finalisation of
/// `seed ⊕ (t + 1)·φ` (φ = 2⁶⁴/golden ratio), so consecutive iterations get unrelated seeds.
pub fn pcd_stream_seed(seed: u64, iteration: u64) -> u64 {
    splitmix(
        seed ^ iteration
            .wrapping_add(1)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15),
    )
}

/// SplitMix64's output function (Steele et al. 2014): a bijective 64-bit mixer.
pub(crate) fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A PCD sampler whose persistent chains a checkpoint can save and restore: what
/// [`CheckpointPartition`] needs of a sampler, so that one impl (for `SampledPartition<S>`)
/// serves them all. [`Pcd`] (block Gibbs, bipartite priors) and [`ColourPcd`] (colour classes,
/// any graph) implement it; a new persistent-chain sampler implements it too.
pub trait PersistentChains: Sized {
    /// A sampler of this configuration (its chains are created when first used).
    ///
    /// # Errors
    /// A message if the configuration is invalid.
    fn from_config(config: PcdConfig) -> Result<Self, String>;

    /// Its configuration (checkpointed as the negative phase's settings).
    fn pcd_config(&self) -> &PcdConfig;

    /// The chains' states `[C, n]`, once they exist.
    fn chain_states(&self) -> Option<&Mat>;

    /// Gives the chains the random streams of `seed` and, if `states` is given, those states.
    ///
    /// # Errors
    /// A message if the chains do not exist yet or `states` does not fit them.
    fn reseed_chains(&mut self, states: Option<&Mat>, seed: u64) -> Result<(), String>;
}

/// Refuses chain states of another shape than `[chains, n]`.
fn check_chain_shape(states: &Mat, chains: usize, n: usize) -> Result<(), String> {
    if states.shape() != (chains, n) {
        return Err(format!(
            "PCD chains of shape {:?}, expected [{chains}, {n}]",
            states.shape()
        ));
    }
    Ok(())
}

const NO_CHAINS: &str = "PCD chains do not exist yet";

impl PersistentChains for Pcd {
    fn from_config(config: PcdConfig) -> Result<Self, String> {
        Pcd::new(config).map_err(|e| e.to_string())
    }

    fn pcd_config(&self) -> &PcdConfig {
        self.config()
    }

    fn chain_states(&self) -> Option<&Mat> {
        self.chains().map(|g| g.state())
    }

    fn reseed_chains(&mut self, states: Option<&Mat>, seed: u64) -> Result<(), String> {
        let g = self.chains_mut().ok_or(NO_CHAINS)?;
        if let Some(states) = states {
            let (n1, n2) = g.block_sizes();
            check_chain_shape(states, g.chains(), n1 + n2)?;
            g.state_mut().copy_from(states);
        }
        g.reseed(seed);
        Ok(())
    }
}

impl PersistentChains for ColourPcd {
    fn from_config(config: PcdConfig) -> Result<Self, String> {
        ColourPcd::new(config).map_err(|e| e.to_string())
    }

    fn pcd_config(&self) -> &PcdConfig {
        self.config()
    }

    fn chain_states(&self) -> Option<&Mat> {
        self.chains().map(|g| g.state())
    }

    fn reseed_chains(&mut self, states: Option<&Mat>, seed: u64) -> Result<(), String> {
        let g = self.chains_mut().ok_or(NO_CHAINS)?;
        if let Some(states) = states {
            check_chain_shape(states, g.chains(), g.num_units())?;
            if states.iter().any(|&v| v != 0.0 && v != 1.0) {
                return Err("PCD chains hold values other than 0 and 1".into());
            }
            g.state_mut().copy_from(states);
        }
        g.reseed(seed);
        Ok(())
    }
}

/// PCD (on the RBM's two blocks, or on colour classes for a Boltzmann machine on any graph):
/// checkpointed as its configuration and its chains' states, the streams re-derived for every
/// iteration ([`pcd_stream_seed`]).
impl<P, S> CheckpointPartition<P> for SampledPartition<S>
where
    P: gumbolt_core::prior::EnergyParamGradient + 'static,
    S: PersistentChains + Sampler<P> + Clone + Send + Sync + 'static,
{
    const KIND: &'static str = "pcd";

    fn settings(&self) -> serde_json::Value {
        serde_json::to_value(self.sampler().pcd_config()).expect("PcdConfig serialises")
    }

    fn from_settings(settings: &serde_json::Value) -> Result<Self, String> {
        let cfg: PcdConfig = serde_json::from_value(settings.clone()).map_err(|e| e.to_string())?;
        Ok(SampledPartition::new(S::from_config(cfg)?))
    }

    /// Re-derives the chains' streams for iteration `t` in place (keeps their states). Before
    /// the chains exist (the first iteration of a fresh run) nothing happens: the sampler
    /// creates them Bernoulli(0.5) from its own seed.
    fn begin_iteration(&mut self, _prior: &P, iteration: u64) {
        let seed = pcd_stream_seed(self.sampler().pcd_config().seed, iteration);
        if self.sampler().chain_states().is_some() {
            self.sampler_mut()
                .reseed_chains(None, seed)
                .expect("the chains exist");
        }
    }

    fn chains(&self) -> Option<&Mat> {
        self.sampler().chain_states()
    }

    fn restore_chains(&mut self, prior: &P, chains: Mat, iteration: u64) -> Result<(), String> {
        let seed = pcd_stream_seed(self.sampler().pcd_config().seed, iteration);
        let pcd = self.sampler_mut();
        if pcd.chain_states().is_none() {
            // The sampler only creates its chains when first used: let it (their states and
            // streams are replaced right after).
            pcd.sample(prior);
        }
        pcd.reseed_chains(Some(&chains), seed)
    }
}

impl<P: ExactPartition + 'static> CheckpointPartition<P> for ExactPartitionGradient {
    const KIND: &'static str = "exact";

    fn settings(&self) -> serde_json::Value {
        serde_json::Value::Null
    }

    fn from_settings(_settings: &serde_json::Value) -> Result<Self, String> {
        Ok(ExactPartitionGradient::new())
    }

    fn begin_iteration(&mut self, _prior: &P, _iteration: u64) {}

    fn chains(&self) -> Option<&Mat> {
        None
    }

    fn restore_chains(&mut self, _prior: &P, _chains: Mat, _iteration: u64) -> Result<(), String> {
        Err("an exact negative phase has no chains".into())
    }
}

/// The checkpoint name of a model kind: `"gumbolt/<prior>/<negative phase>"`.
pub fn model_kind<P: GumBoltPrior, G: CheckpointPartition<P>>() -> String {
    format!("gumbolt/{}/{}", P::KIND, G::KIND)
}

/// Names of the trainable tensors of `model`, in the order of [`Trainable::collect_params`]:
/// `encoder{i}.{j}.{kernel|bias|gamma|beta}`, `decoder.{j}.…`, `prior.{group}`, then the
/// training objective's networks (`nvil.{j}.…` for NVIL).
pub fn tensor_names<P: GumBoltPrior, G: PartitionGradient<P>>(
    model: &mut GumBolt<P, G>,
) -> Vec<String> {
    let mut names = Vec::new();
    let mlp_names = |prefix: String, net: &mut Mlp, names: &mut Vec<String>| {
        for (j, p) in net.params_mut().iter().enumerate() {
            names.push(format!("{prefix}.{j}.{}", p.name));
        }
    };
    for (i, e) in model.encoders_mut().iter_mut().enumerate() {
        mlp_names(format!("encoder{i}"), e, &mut names);
    }
    mlp_names("decoder".into(), model.decoder_mut(), &mut names);
    for g in model.prior().param_groups() {
        names.push(format!("prior.{}", g.name));
    }
    for (name, net) in model.objective_mut().networks_mut() {
        mlp_names(name.into(), net, &mut names);
    }
    names
}

fn for_each_batch_norm<P: GumBoltPrior, G: PartitionGradient<P>>(
    model: &mut GumBolt<P, G>,
    mut f: impl FnMut(String, &mut [f32], &mut [f32]),
) {
    let mut visit = |prefix: String, net: &mut Mlp| {
        for h in 0..net.n_hidden() {
            let (m, v) = net.batch_norm_mut(h).moving_stats_mut();
            f(format!("{prefix}.bn{h}"), m, v);
        }
    };
    for (i, e) in model.encoders_mut().iter_mut().enumerate() {
        visit(format!("encoder{i}"), e);
    }
    visit("decoder".into(), model.decoder_mut());
    for (name, net) in model.objective_mut().networks_mut() {
        visit(name.into(), net);
    }
}

/// The first non-finite trainable value, as `(tensor name, index)`.
pub fn first_non_finite<P: GumBoltPrior, G: PartitionGradient<P>>(
    model: &mut GumBolt<P, G>,
) -> Option<(String, usize)> {
    let bad = model.params_mut().iter().enumerate().find_map(|(t, p)| {
        // The largest exponent field is all ones iff some value is NaN or ±inf; an integer
        // max vectorises (a float sum would be one long dependency chain).
        const EXP: u32 = 0x7f80_0000;
        let top = p.value.iter().fold(0u32, |a, v| a.max(v.to_bits() & EXP));
        (top == EXP).then(|| (t, p.value.iter().position(|v| !v.is_finite()).unwrap_or(0)))
    })?;
    let names = tensor_names(model);
    Some((names[bad.0].clone(), bad.1))
}

/// Every piece of state of `model` and its training `state` as named tensors: pixel means,
/// trainable tensors, batch-norm moving averages, Adam moments (once a step was taken) and the
/// PCD chains (once they exist). The noise RNG, the Adam step count and the configuration go
/// into the JSON metadata.
pub fn export_tensors<P: GumBoltPrior, G: CheckpointPartition<P>>(
    model: &mut GumBolt<P, G>,
    state: &TrainState,
) -> Vec<Tensor> {
    let names = tensor_names(model);
    let mut out = vec![Tensor::f32("x_mean", model.pixel_means().to_vec())];
    for (name, p) in names.iter().zip(model.params_mut()) {
        out.push(Tensor::f32(format!("param/{name}"), p.value.to_vec()));
    }
    for_each_batch_norm(model, |name, m, v| {
        out.push(Tensor::f32(format!("bn/{name}.moving_mean"), m.to_vec()));
        out.push(Tensor::f32(format!("bn/{name}.moving_var"), v.to_vec()));
    });
    let adam = state.optimizer();
    for (name, (m, v)) in names
        .iter()
        .zip(adam.first_moments().iter().zip(adam.second_moments()))
    {
        out.push(Tensor::f32(format!("adam.m/{name}"), m.clone()));
        out.push(Tensor::f32(format!("adam.v/{name}"), v.clone()));
    }
    if let Some(c) = model.partition().chains() {
        let (r, n) = c.shape();
        out.push(Tensor::f32("pcd.chains", c.as_slice().to_vec()).with_shape(vec![r, n]));
    }
    out
}

/// Builds a model of `config` and its training state and restores what [`export_tensors`]
/// saved, taking its tensors out of `raw` (the Adam step count and noise RNG come from the
/// metadata). `iteration` is the next training iteration (for the PCD streams).
///
/// # Errors
/// [`CheckpointError::WrongStructure`] naming the tensor or setting that does not fit.
pub fn import_model<P: GumBoltPrior, G: CheckpointPartition<P>>(
    raw: &mut RawCheckpoint,
    meta: &super::CheckpointMeta,
) -> Result<(GumBolt<P, G>, TrainState), CheckpointError> {
    let config = meta.model.clone();
    let partition = &meta.negative_phase;
    let (adam_steps, iteration) = (meta.adam_steps, meta.iteration);
    let noise_rng = meta.noise_rng.clone();
    let path = raw.path.clone();
    let wrong = |reason: String| CheckpointError::wrong_structure(&path, reason);
    // The stored configuration is checked before anything is built from it.
    config
        .validate()
        .map_err(|e| wrong(format!("invalid model configuration: {e}")))?;
    if P::KIND == "rbm" && config.latent_dim() < 2 {
        return Err(wrong(format!(
            "invalid model configuration: an RBM prior needs at least two latent units, the \
             configuration has latent_units = {} and {} layer(s)",
            config.latent_units,
            config.layers()
        )));
    }
    P::check_config(&config).map_err(|e| wrong(format!("invalid model configuration: {e}")))?;
    let means = raw.take_f32("x_mean", config.pixels)?;
    let prior = P::for_config(&config);
    let negative =
        G::from_settings(partition).map_err(|e| wrong(format!("negative-phase settings: {e}")))?;
    let mut state = TrainState::new(&config)
        .map_err(|e: ModelError| wrong(format!("cannot build the optimiser: {e}")))?;
    let mut model = GumBolt::new(config, &means, prior, negative)
        .map_err(|e: ModelError| wrong(format!("cannot build the model: {e}")))?;
    let names = tensor_names(&mut model);
    let sizes: Vec<usize> = model.params_mut().iter().map(|p| p.len()).collect();
    let mut values = Vec::with_capacity(names.len());
    for (name, &len) in names.iter().zip(&sizes) {
        values.push(raw.take_f32(&format!("param/{name}"), len)?);
    }
    for (p, v) in model.params_mut().into_iter().zip(values) {
        p.value.copy_from_slice(&v);
    }
    let mut bn = Vec::new();
    for_each_batch_norm(&mut model, |name, m, _| bn.push((name, m.len())));
    let mut bn_values = Vec::with_capacity(bn.len());
    for (name, len) in &bn {
        bn_values.push((
            raw.take_f32(&format!("bn/{name}.moving_mean"), *len)?,
            raw.take_f32(&format!("bn/{name}.moving_var"), *len)?,
        ));
    }
    let mut it = bn_values.into_iter();
    for_each_batch_norm(&mut model, |_, m, v| {
        let (mm, vv) = it.next().expect("the same batch norms are visited twice");
        m.copy_from_slice(&mm);
        v.copy_from_slice(&vv);
    });
    if adam_steps > 0 {
        let mut m = Vec::with_capacity(names.len());
        let mut v = Vec::with_capacity(names.len());
        for (name, &len) in names.iter().zip(&sizes) {
            m.push(raw.take_f32(&format!("adam.m/{name}"), len)?);
            v.push(raw.take_f32(&format!("adam.v/{name}"), len)?);
        }
        state
            .optimizer_mut()
            .restore_state(adam_steps, m, v)
            .map_err(|e| wrong(format!("optimiser state: {e}")))?;
    }
    if let Some((name, i)) = first_non_finite(&mut model) {
        return Err(wrong(format!(
            "tensor `param/{name}` holds a value that is not finite (index {i})"
        )));
    }
    let mut bad_stats = None;
    for_each_batch_norm(&mut model, |name, m, v| {
        if bad_stats.is_none()
            && !(m.iter().all(|x| x.is_finite()) && v.iter().all(|x| x.is_finite()))
        {
            bad_stats = Some(name);
        }
    });
    if let Some(name) = bad_stats {
        return Err(wrong(format!(
            "batch-norm moving statistics `bn/{name}` hold a value that is not finite"
        )));
    }
    state.set_noise_rng(noise_rng);
    model
        .objective_mut()
        .restore_state(meta.nvil.as_ref())
        .map_err(|e| wrong(format!("training objective's state: {e}")))?;
    if let Some(t) = raw.take_optional("pcd.chains") {
        let shape = t.shape.clone();
        let values = match t.data {
            crate::checkpoint::TensorData::F32(v) if shape.len() == 2 => v,
            _ => return Err(wrong("tensor `pcd.chains` is not an f32 matrix".into())),
        };
        let chains = Mat::from_vec(shape[0], shape[1], values);
        let (prior, partition) = model.prior_and_partition_mut();
        partition
            .restore_chains(prior, chains, iteration)
            .map_err(|e| wrong(format!("tensor `pcd.chains`: {e}")))?;
    }
    Ok((model, state))
}

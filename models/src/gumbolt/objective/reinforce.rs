//! REINFORCE on the discrete importance-weighted bound (GB Eq. 5) with NVIL's variance
//! reduction for k = 1 and VIMCO's for k > 1 (docs/algorithms.md §6).

use gumbolt_core::rng::StreamRng;
use gumbolt_core::{GradientEstimator, Mat, ScoreFunctionEstimator, ScoreGrad};
use gumbolt_estimators::{NvilBaseline, Reinforce, vimco_signals};

use super::{ObjectiveError, ObjectiveKind, ObjectiveTerms, TrainingObjective, TrainingPass};
use crate::gumbolt::config::GumBoltConfig;
use crate::gumbolt::error::Result;
use crate::gumbolt::kernels::sum_row_groups;
use crate::gumbolt::model::Phase;
use crate::nn::{Mlp, MlpConfig, Mode, Trainable, ensure_shape};

/// Hidden units of NVIL's input-dependent baseline network `C_ψ(x)` (docs/algorithms.md §6: one
/// tanh hidden layer of 100 units).
pub const NVIL_HIDDEN_UNITS: usize = 100;

/// NVIL's variance reduction for k = 1 (Mnih & Gregor 2014; docs/algorithms.md §6): the baseline
/// network `C_ψ(x)` on the centred image, and the running mean `c` and variance `v` of
/// `ℓ − C_ψ(x)` (decay 0.8).
#[derive(Debug, Clone)]
pub struct Nvil {
    /// `C_ψ`: `D → 100 (BN, tanh) → 1`.
    net: Mlp,
    /// The running `c` and `v`.
    stats: NvilBaseline,
    /// `ℓ_r` and `C_ψ(x_r)` of the last training pass (for the running-statistics update).
    last_signal: Vec<f64>,
    last_baseline: Vec<f64>,
    dout: Mat,
}

impl Nvil {
    fn new(net: Mlp) -> Self {
        Self {
            net,
            stats: NvilBaseline::default(),
            last_signal: Vec::new(),
            last_baseline: Vec::new(),
            dout: Mat::zeros(0, 0),
        }
    }

    /// The baseline network.
    pub fn net(&self) -> &Mlp {
        &self.net
    }

    /// The running statistics.
    pub fn stats(&self) -> &NvilBaseline {
        &self.stats
    }

    /// Replaces the running statistics (e.g. from a checkpoint).
    pub fn set_stats(&mut self, stats: NvilBaseline) {
        self.stats = stats;
    }

    /// Folds the last training pass's `ℓ − C_ψ(x)` into the running statistics.
    fn update_stats(&mut self) {
        self.stats
            .centred_signal(&self.last_signal, &self.last_baseline);
    }
}

/// REINFORCE at binary `z = 1[l + logit ρ > 0]` ([`Reinforce`]) on `f = log w = log p(x|z) +
/// β(−E(z) − log q(z|x))` with the score `s = z − σ(l)` of every layer (layer 2 at fixed binary
/// z1), docs/algorithms.md §6:
///
/// - k = 1, NVIL: `∂loss/∂l = (1/B)(β − A)·s` with `A = (f − c − C_ψ(x))/max(1, √v)`; the
///   baseline network is trained on `(1/B) Σ (f − c − C_ψ(x))²` and the running statistics
///   `c`, `v` are folded after every optimiser step;
/// - k > 1, VIMCO: `∂loss/∂l_j = (1/B)(β w̃_j − (L̂ − L̂_{−j}))·s_j` (leave-one-out signals
///   of [`vimco_signals`]);
/// - decoder and prior as GumBolt's at binary z: weights `−w̃/B`, positive phase
///   `β Σ w̃ ∇θ(−E(z))/B`, negative phase `β ∇θ S_Z`.
///
/// The `β` term is the direct dependence of `f` on the logits through `−β log q` (zero in
/// expectation).
///
/// ```
/// use gumbolt_models::gumbolt::{GumBoltConfig, Objective, ReinforceObjective, Structure};
/// let mut init = gumbolt_core::rng::root_rng(0);
/// let nvil = GumBoltConfig::new(Structure::Nonlinear, 784).with_objective(Objective::Reinforce);
/// let mut o = Objective::Reinforce.build(&nvil, &mut init).unwrap();
/// assert_eq!(o.networks_mut()[0].0, "nvil"); // C_ψ, trained and checkpointed with the model
/// let vimco = nvil.with_k(5);
/// let o = Objective::Reinforce.build(&vimco, &mut init).unwrap();
/// assert!(o.downcast_ref::<ReinforceObjective>().unwrap().baseline().is_none());
/// assert!(ReinforceObjective::vimco(1).is_err());
/// ```
#[derive(Debug, Clone)]
pub struct ReinforceObjective {
    /// NVIL's baseline (k = 1); VIMCO needs none.
    nvil: Option<Nvil>,
    /// Per-row learning signals of the score-function estimator.
    signal: Vec<f64>,
    weights: Vec<f32>,
}

impl ReinforceObjective {
    /// VIMCO for `k > 1` samples per image (no baseline network).
    ///
    /// # Errors
    /// [`ObjectiveError::InvalidHyperParameter`] for `k < 2` (k = 1 needs NVIL's baseline:
    /// [`ReinforceObjective::nvil`]).
    pub fn vimco(k: usize) -> std::result::Result<Self, ObjectiveError> {
        if k < 2 {
            return Err(ObjectiveError::InvalidHyperParameter {
                objective: Self::NAME,
                name: "k",
                reason: format!("VIMCO needs k ≥ 2 samples per image, got {k}"),
            });
        }
        Ok(Self {
            nvil: None,
            signal: Vec::new(),
            weights: Vec::new(),
        })
    }

    /// NVIL (k = 1) with the baseline network `C_ψ` (input `pixels`, [`NVIL_HIDDEN_UNITS`]
    /// tanh units with batch norm, one output) and fresh running statistics.
    ///
    /// # Errors
    /// [`ObjectiveError::InvalidHyperParameter`] unless `C_ψ` maps `pixels` values to one.
    pub fn nvil(net: Mlp) -> std::result::Result<Self, ObjectiveError> {
        if net.n_out() != 1 {
            return Err(ObjectiveError::InvalidHyperParameter {
                objective: Self::NAME,
                name: "nvil.net",
                reason: format!(
                    "the baseline network must have one output, not {}",
                    net.n_out()
                ),
            });
        }
        Ok(Self {
            nvil: Some(Nvil::new(net)),
            signal: Vec::new(),
            weights: Vec::new(),
        })
    }

    /// NVIL's baseline (k = 1).
    pub fn baseline(&self) -> Option<&Nvil> {
        self.nvil.as_ref()
    }

    /// Mutable NVIL baseline.
    pub fn baseline_mut(&mut self) -> Option<&mut Nvil> {
        self.nvil.as_mut()
    }
}

impl ObjectiveKind for ReinforceObjective {
    const NAME: &'static str = "reinforce";
    const ALIASES: &'static [&'static str] = &["nvil", "vimco"];

    /// REINFORCE uses no temperature; 1/7 is stored.
    fn paper_tau(_omniglot: bool) -> f64 {
        1.0 / 7.0
    }

    /// NVIL for `config.k = 1` (its network drawn from `init` after the model's, so the shared
    /// networks are initialised alike for every objective), VIMCO otherwise.
    fn build(config: &GumBoltConfig, init: &mut StreamRng) -> Result<Box<dyn TrainingObjective>> {
        if config.k == 1 {
            let net = MlpConfig::new(config.pixels, vec![NVIL_HIDDEN_UNITS], 1)
                .with_batch_norm(config.batch_norm)
                .build(init)?;
            Ok(Box::new(Self::nvil(net)?))
        } else {
            Ok(Box::new(Self::vimco(config.k)?))
        }
    }
}

impl TrainingObjective for ReinforceObjective {
    fn sampler(&self) -> &dyn GradientEstimator {
        &Reinforce
    }

    /// After a forward pass with binary z in training mode and the importance-weighted
    /// combination (which fills the normalised weights w̃); see the type's docs.
    fn backward(&mut self, pass: &mut TrainingPass<'_>) -> ObjectiveTerms {
        let (l_count, k, beta) = (pass.layers, pass.k, pass.beta);
        let TrainingPass {
            ws,
            encoders,
            decoder,
            prior,
            prior_grad,
            clock,
            ..
        } = pass;
        let (b, _) = ws.shape;
        let n = b * k;
        let inv_b = 1.0 / b as f64;
        let beta32 = beta as f32;
        // The learning signal s of the score-function estimator, whose loss gradient is −s·score:
        // s = −coef with coef = ∂loss/∂l / score (rounded to f32 as the product is taken in f32).
        self.signal.resize(n, 0.0);
        let signal_of = |coef: f64| -((coef as f32) as f64);
        let mut mse = 0.0;
        if let Some(nv) = &mut self.nvil {
            debug_assert_eq!(k, 1, "NVIL's baseline is for one sample per image");
            let c = nv.net.forward(&ws.xc, Mode::Train);
            nv.last_baseline.clear();
            nv.last_baseline.extend(c.iter().map(|&v| v as f64));
            nv.last_signal.clear();
            nv.last_signal.extend_from_slice(&ws.log_w);
            let (mean, norm) = (nv.stats.mean(), nv.stats.normaliser());
            ensure_shape(&mut nv.dout, b, 1);
            for r in 0..b {
                let resid = ws.log_w[r] - mean - nv.last_baseline[r];
                let a = resid / norm;
                self.signal[r] = signal_of(inv_b * (beta - a));
                nv.dout[(r, 0)] = (-2.0 * inv_b * resid) as f32;
                mse += resid * resid * inv_b;
            }
            nv.net.zero_grad();
            nv.net.backward_params_only(&nv.dout);
        } else {
            for bi in 0..b {
                let (signal, wt) = vimco_signals(&ws.log_w[bi * k..(bi + 1) * k]);
                for j in 0..k {
                    self.signal[bi * k + j] = signal_of(inv_b * (beta * wt[j] - signal[j]));
                }
            }
        }
        clock.lap(Phase::Other);

        // ∂loss/∂log w = −w̃/B for the decoder and the prior.
        ws.g.clear();
        ws.g.extend(ws.wt.iter().map(|w| (-w * inv_b) as f32));
        for col in ws.dout.as_mut_slice().chunks_exact_mut(n) {
            for (v, &g) in col.iter_mut().zip(&ws.g) {
                *v *= g;
            }
        }
        decoder.backward_params_only(&ws.dout);
        clock.lap(Phase::Decoder);

        prior_grad.fill(0.0);
        self.weights.clear();
        self.weights.extend(ws.g.iter().map(|&g| g * beta32));
        prior.accumulate_neg_energy_grad(ws.zeta_all.as_view(), &self.weights, prior_grad);
        clock.lap(Phase::Prior);

        for layer in (0..l_count).rev() {
            Reinforce.logits_grad_into(
                ScoreGrad {
                    logits: &ws.logits[layer],
                    sample: &ws.zeta[layer],
                    learning_signal: &self.signal,
                },
                &mut ws.dl,
            );
            if layer == 1 {
                encoders[1].backward_params_only(&ws.dl);
            } else {
                sum_row_groups(&ws.dl, k, &mut ws.dl1);
                encoders[0].backward_params_only(&ws.dl1);
            }
        }
        clock.lap(Phase::Encoder);
        pass.weighted_terms(mse)
    }

    fn networks_mut(&mut self) -> Vec<(&'static str, &mut Mlp)> {
        self.nvil
            .iter_mut()
            .map(|nv| ("nvil", &mut nv.net))
            .collect()
    }

    /// Folds the step's `ℓ − C_ψ(x)` into NVIL's running statistics.
    fn after_step(&mut self) {
        if let Some(nv) = &mut self.nvil {
            nv.update_stats();
        }
    }

    fn state(&self) -> Option<serde_json::Value> {
        self.nvil
            .as_ref()
            .map(|nv| serde_json::to_value(nv.stats).expect("NVIL statistics serialise"))
    }

    fn restore_state(
        &mut self,
        state: Option<&serde_json::Value>,
    ) -> std::result::Result<(), String> {
        if let Some(nv) = &mut self.nvil {
            nv.stats = match state {
                Some(v) => serde_json::from_value(v.clone())
                    .map_err(|e| format!("NVIL's running statistics: {e}"))?,
                None => NvilBaseline::default(),
            };
        }
        Ok(())
    }
}

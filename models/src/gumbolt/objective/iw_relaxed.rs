//! GumBolt's training objective: the importance-weighted relaxed objective F_k of GB Eq. 9,
//! with Gumbel-relaxed samples (GB Eq. 2) and its hand-written backward pass
//! (docs/algorithms.md §2.2).

use std::sync::Arc;

use gumbolt_core::parallel;
use gumbolt_core::rng::StreamRng;
use gumbolt_core::{GradientEstimator, PathwiseEstimator, PathwiseGrad, Posterior};
use gumbolt_estimators::{BernoulliPosterior, GumbelRelaxation};

use super::{ObjectiveError, ObjectiveKind, ObjectiveTerms, TrainingObjective, TrainingPass};
use crate::gumbolt::combination::{ImportanceWeighted, SampleCombination};
use crate::gumbolt::config::GumBoltConfig;
use crate::gumbolt::error::Result;
use crate::gumbolt::kernels::sum_row_groups;
use crate::gumbolt::model::Phase;
use crate::nn::ensure_shape;

/// `F_k = log (1/k) Σ_i w_i − β log Z` with `log w = log p(x|ζ) + β(−E(ζ) − log q̌(ζ|x))` at
/// relaxed `ζ = σ((l + logit ρ)/τ)` (GB Eqs. 2, 9; docs/algorithms.md §2.1–§2.2).
///
/// The k log-weights of an image combine by a [`SampleCombination`]: [`ImportanceWeighted`]
/// (GB Eq. 9) by default, or any other one ([`IwRelaxed::with_combination`]; e.g. the relaxed
/// ELBO averaged over k of `examples/examples/custom_objective.rs`).
///
/// ```
/// use gumbolt_models::gumbolt::IwRelaxed;
/// let objective = IwRelaxed::new(1.0 / 7.0).unwrap();
/// assert_eq!(objective.tau(), 1.0 / 7.0);
/// assert!(IwRelaxed::new(0.0).is_err());
/// ```
#[derive(Debug, Clone)]
pub struct IwRelaxed {
    relax: GumbelRelaxation,
    combination: Arc<dyn SampleCombination>,
}

impl IwRelaxed {
    /// The objective at temperature `tau` with the importance-weighted combination.
    ///
    /// # Errors
    /// [`ObjectiveError::InvalidHyperParameter`] unless `tau` is positive and finite.
    pub fn new(tau: f64) -> std::result::Result<Self, ObjectiveError> {
        let relax =
            GumbelRelaxation::new(tau).map_err(|e| ObjectiveError::InvalidHyperParameter {
                objective: Self::NAME,
                name: "tau",
                reason: e.to_string(),
            })?;
        Ok(Self {
            relax,
            combination: Arc::new(ImportanceWeighted),
        })
    }

    /// The same objective with another combination of the k relaxed samples.
    pub fn with_combination(mut self, combination: Arc<dyn SampleCombination>) -> Self {
        self.combination = combination;
        self
    }

    /// The relaxation temperature τ.
    pub fn tau(&self) -> f64 {
        self.relax.tau()
    }
}

impl ObjectiveKind for IwRelaxed {
    const NAME: &'static str = "gumbolt";

    /// GB §5.1: τ = 1/7.
    fn paper_tau(_omniglot: bool) -> f64 {
        1.0 / 7.0
    }

    fn build(config: &GumBoltConfig, _init: &mut StreamRng) -> Result<Box<dyn TrainingObjective>> {
        Ok(Box::new(Self::new(config.tau)?))
    }
}

impl TrainingObjective for IwRelaxed {
    fn sampler(&self) -> &dyn GradientEstimator {
        &self.relax
    }

    fn combination(&self) -> &dyn SampleCombination {
        self.combination.as_ref()
    }

    /// The backward pass of docs/algorithms.md §2.2 (see [`crate::gumbolt::GumBolt::loss_and_grad`]).
    fn backward(&mut self, pass: &mut TrainingPass<'_>) -> ObjectiveTerms {
        let (l_count, u, d, k, beta) = (pass.layers, pass.units, pass.pixels, pass.k, pass.beta);
        let TrainingPass {
            ws,
            encoders,
            decoder,
            prior,
            prior_grad,
            noise,
            clock,
            ..
        } = pass;
        let (b, _) = ws.shape;
        let n = b * k;
        let inv_b = 1.0 / b as f64;
        let beta32 = beta as f32;
        // ∂loss/∂log w = −w̃/B.
        ws.g.clear();
        ws.g.extend(ws.wt.iter().map(|w| (-w * inv_b) as f32));
        clock.lap(Phase::Other);

        // Decoder: ∂loss/∂o = g·(x − σ(o)).
        let g = &ws.g;
        parallel::for_each_chunk_mut(ws.dout.as_mut_slice(), n, |_, cols| {
            for col in cols.chunks_exact_mut(n) {
                for (v, &g) in col.iter_mut().zip(g) {
                    *v *= g;
                }
            }
        });
        let dz = decoder.backward(&ws.dout);
        ensure_shape(&mut ws.dzeta, n, l_count * u);
        ws.dzeta.copy_from(dz);
        clock.lap(Phase::Decoder);

        // Prior and log q̌ terms of ∂loss/∂ζ: g·β·(∂(−E)/∂ζ − l).
        prior.energy_grad_into(ws.zeta_all.as_view(), &mut ws.egrad);
        let (g, egrad, logits) = (&ws.g, ws.egrad.as_slice(), &ws.logits);
        parallel::for_each_chunk_mut(ws.dzeta.as_mut_slice(), n, |start, cols| {
            for (c, dc) in cols.chunks_exact_mut(n).enumerate() {
                // Column `j` of ζ (all layers side by side) is column `j mod u` of layer `j / u`.
                let j = start / n + c;
                let eg = &egrad[j * n..(j + 1) * n];
                let lc = &logits[j / u].as_slice()[(j % u) * n..(j % u + 1) * n];
                for (((dv, &e), &l), &g) in dc.iter_mut().zip(eg).zip(lc).zip(g) {
                    *dv += g * beta32 * (-e - l);
                }
            }
        });

        // Prior parameters: positive phase Σ_r g_r β ∇θ(−E(ζ_r)), negative phase β ∇θ S_Z.
        prior_grad.fill(0.0);
        let weights: Vec<f32> = ws.g.iter().map(|&g| g * beta32).collect();
        prior.accumulate_neg_energy_grad(ws.zeta_all.as_view(), &weights, prior_grad);
        clock.lap(Phase::Prior);

        // Stochastic layers, last first.
        for layer in (0..l_count).rev() {
            ensure_shape(&mut ws.dz_layer, n, u);
            ws.dz_layer.copy_from(&ws.dzeta.columns(layer * u, u));
            // Through the relaxation: ∂ζ/∂l = ζ(1−ζ)/τ.
            self.relax.logits_grad_into(
                PathwiseGrad {
                    logits: &ws.logits[layer],
                    noise: &noise[layer],
                    sample: &ws.zeta[layer],
                    grad_sample: &ws.dz_layer,
                },
                &mut ws.dl,
            );
            // Direct logit path of −β log q̌ at fixed ζ: −β·g·(ζ − σ(l)).
            BernoulliPosterior.score_into(&ws.logits[layer], &ws.zeta[layer], &mut ws.score);
            let (g, score) = (&ws.g, ws.score.as_slice());
            parallel::for_each_chunk_mut(ws.dl.as_mut_slice(), n, |start, cols| {
                for (dcol, scol) in cols.chunks_exact_mut(n).zip(score[start..].chunks_exact(n)) {
                    for ((dv, &s), &g) in dcol.iter_mut().zip(scol).zip(g) {
                        *dv -= beta32 * g * s;
                    }
                }
            });
            if layer == 1 {
                let dz1 = encoders[1].backward_input_cols(&ws.dl, d, u);
                let mut target = ws.dzeta.columns_mut(0, u);
                target += dz1;
            } else {
                sum_row_groups(&ws.dl, k, &mut ws.dl1);
                encoders[0].backward_params_only(&ws.dl1);
            }
        }
        clock.lap(Phase::Encoder);
        pass.weighted_terms(0.0)
    }
}

//! dVAE and dVAE++ on the GumBolt networks: the smoothed ELBO averaged over the k samples
//! (no importance weighting) with its KL to the Boltzmann-machine prior, closed form for one
//! stochastic layer and the papers' estimators for two (docs/algorithms.md §3, §4, §10.10).

use std::ops::Range;

use gumbolt_core::numerics::{sigmoid, softplus};
use gumbolt_core::rng::StreamRng;
use gumbolt_core::{GradientEstimator, Mat, PathwiseGrad};

use super::{ObjectiveError, ObjectiveKind, ObjectiveTerms, TrainingObjective, TrainingPass};
use crate::dvae::Smoothing;
use crate::gumbolt::config::GumBoltConfig;
use crate::gumbolt::error::Result;
use crate::gumbolt::kernels::sum_row_groups;
use crate::gumbolt::model::Phase;
use crate::nn::ensure_shape;

/// The smoothed negative ELBO `(1/N) Σ_r [−log p(x|ζ_r) + β KL_r]` of dVAE (spike-and-
/// exponential smoothing, docs/algorithms.md §3) and dVAE++ (overlapping exponentials,
/// docs/algorithms.md §4), with smoothed ζ drawn by the smoothing's inverse CDF and the
/// gradient pathwise through it plus the KL terms.
///
/// ```
/// use gumbolt_models::dvae::Smoothing;
/// use gumbolt_models::gumbolt::Smoothed;
/// let dvae = Smoothed::new(Smoothing::spike_exp(5.0).unwrap());
/// assert_eq!(dvae.name(), "dvae");
/// ```
#[derive(Debug, Clone)]
pub struct Smoothed {
    smoothing: Smoothing,
    kl_ws: KlWorkspace,
}

impl Smoothed {
    /// The smoothed ELBO with the given smoothing (its sharpness β = 1/τ is checked by
    /// [`Smoothing::spike_exp`] / [`Smoothing::overlap_exp`]).
    pub fn new(smoothing: Smoothing) -> Self {
        Self {
            smoothing,
            kl_ws: KlWorkspace::default(),
        }
    }

    /// The smoothing.
    pub fn smoothing(&self) -> Smoothing {
        self.smoothing
    }

    /// `dvae` or `dvaepp`.
    pub fn name(&self) -> &'static str {
        match self.smoothing {
            Smoothing::SpikeExp(_) => DvaeKind::NAME,
            Smoothing::OverlapExp(_) => DvaePpKind::NAME,
        }
    }
}

fn smoothing_error(objective: &'static str, e: crate::gumbolt::ModelError) -> ObjectiveError {
    ObjectiveError::InvalidHyperParameter {
        objective,
        name: "tau",
        reason: e.to_string(),
    }
}

/// dVAE's registration: spike-and-exponential smoothing with β = 1/τ.
#[derive(Debug, Clone, Copy)]
pub struct DvaeKind;

impl ObjectiveKind for DvaeKind {
    const NAME: &'static str = "dvae";

    /// GB §5.1: τ = 1/5.
    fn paper_tau(_omniglot: bool) -> f64 {
        1.0 / 5.0
    }

    fn build(config: &GumBoltConfig, _init: &mut StreamRng) -> Result<Box<dyn TrainingObjective>> {
        let s =
            Smoothing::spike_exp(1.0 / config.tau).map_err(|e| smoothing_error(Self::NAME, e))?;
        Ok(Box::new(Smoothed::new(s)))
    }
}

/// dVAE++'s registration: overlapping exponentials with β = 1/τ.
#[derive(Debug, Clone, Copy)]
pub struct DvaePpKind;

impl ObjectiveKind for DvaePpKind {
    const NAME: &'static str = "dvaepp";
    const ALIASES: &'static [&'static str] = &["dvae++"];

    /// GB §5.1: τ = 1/10 on MNIST, 1/8 on OMNIGLOT.
    fn paper_tau(omniglot: bool) -> f64 {
        if omniglot { 1.0 / 8.0 } else { 1.0 / 10.0 }
    }

    fn build(config: &GumBoltConfig, _init: &mut StreamRng) -> Result<Box<dyn TrainingObjective>> {
        let s =
            Smoothing::overlap_exp(1.0 / config.tau).map_err(|e| smoothing_error(Self::NAME, e))?;
        Ok(Box::new(Smoothed::new(s)))
    }
}

impl TrainingObjective for Smoothed {
    fn sampler(&self) -> &dyn GradientEstimator {
        match &self.smoothing {
            Smoothing::SpikeExp(e) => e,
            Smoothing::OverlapExp(e) => e,
        }
    }

    /// The two-layer KL assumes no coupling inside a stochastic layer.
    fn check_prior(
        &self,
        config: &GumBoltConfig,
        couples_within: &dyn Fn(Range<usize>) -> bool,
    ) -> std::result::Result<(), ObjectiveError> {
        let u = config.latent_units;
        if config.layers() == 2 && (couples_within(0..u) || couples_within(u..2 * u)) {
            return Err(ObjectiveError::CoupledLayers {
                objective: self.name(),
                units: u,
            });
        }
        Ok(())
    }

    fn backward(&mut self, pass: &mut TrainingPass<'_>) -> ObjectiveTerms {
        let kl = self.backward_kl(pass);
        let (k, beta) = (pass.k, pass.beta);
        let ws = &*pass.ws;
        // The smoothed ELBO: the k samples are averaged (no importance weights).
        let n = ws.log_px.len() as f64;
        let log_px = ws.log_px.iter().sum::<f64>() / n;
        ObjectiveTerms {
            objective: log_px - beta * kl.kl_without_log_z,
            log_px_given_zeta: log_px,
            neg_energy: kl.neg_energy,
            log_q: kl.neg_entropy,
            effective_samples: k as f64,
            baseline_mse: 0.0,
        }
    }
}

/// Per-row buffers of the KL terms.
#[derive(Debug, Clone, Default)]
struct KlWorkspace {
    /// `σ(l)` per layer.
    q: Vec<Mat>,
    /// The prior's arguments `[s1 | s2]` of the three energy terms (see `backward_smoothed`).
    point: [Mat; 3],
    energy: Vec<f64>,
    /// `∂E/∂s` at the first point.
    egrad: Mat,
    /// `∂E/∂s` at s = 0, i.e. minus the biases.
    egrad0: Mat,
    /// KL contributions to `∂loss/∂l` per layer.
    dl_kl: Vec<Mat>,
    /// Per-row `KL − S_Z` (energy part minus entropies).
    kl: Vec<f64>,
    neg_entropy: Vec<f64>,
    weights: Vec<f32>,
}

/// Means over the rows of the KL terms of one smoothed-ELBO pass.
#[derive(Debug, Clone, Copy, Default)]
struct KlMeans {
    /// `mean(KL − S_Z)`.
    kl_without_log_z: f64,
    /// `mean(−E-terms)`.
    neg_energy: f64,
    /// `mean(−H(q))`.
    neg_entropy: f64,
}

/// `σ(x)` elementwise into `out` (f64 internally).
fn sigmoid_into(x: &Mat, out: &mut Mat) {
    ensure_shape(out, x.nrows(), x.ncols());
    for (o, &v) in out.as_mut_slice().iter_mut().zip(x.as_slice()) {
        *o = sigmoid(v as f64) as f32;
    }
}

/// The clip of Rolfe's KL estimator: logits to ±88 (docs/algorithms.md §3, §10.8).
const LOGIT_CLIP: f32 = 88.0;
/// `q̄ = min(q, 0.999)` of Rolfe's KL estimator.
const Q_CLIP: f32 = 0.999;

impl Smoothed {
    /// Backward pass of the smoothed negative ELBO `(1/N) Σ_r [−log p(x|ζ_r) + β KL_r]`
    /// (dVAE, dVAE++; no importance weighting, the k samples are averaged — docs/algorithms.md §3, §4,
    /// §10.10), after a forward pass with smoothed ζ. Writes every gradient and returns the
    /// means of the KL terms.
    ///
    /// With `q = σ(l)` and `E(s1, s2) = −aᵀs1 − bᵀs2 − s1ᵀWs2`, the KL with its `log Z`
    /// surrogate `S_Z` is, per row,
    /// - L = 1 (closed form, exact for a factorial posterior): `E(q) + S_Z − H(q)`;
    /// - L = 2, dVAE++ (docs/algorithms.md §4): `−aᵀμ1 − bᵀμ2 − ν1ᵀWμ2 + S_Z − H(μ1) − H(μ2)` with
    ///   `μ = σ(l)`, `ν1 = σ(l1 + β(2ζ1 − 1)) = q(z1 = 1|ζ1, x)`; gradients flow through ζ1
    ///   into ν1 and into μ2 (layer 2 sees ζ1);
    /// - L = 2, dVAE (Rolfe's estimator, docs/algorithms.md §3): value `−aᵀq1 − bᵀq2 − z1ᵀWq2 + S_Z −
    ///   H(q1) − H(q2)` with `z1 = 1[ζ1 > 0]`; gradient `Σ_i u_i ∇q̄_i` with
    ///   `u = sg(l − h − [Wq2 ⊙ (1 − z1)/(1 − q̄1), Wᵀz1])`, `q̄ = min(q, 0.999)`, logits
    ///   clipped to ±88 — the first block is REINFORCE without a baseline (GB App. B).
    ///
    /// The energy part is written as `E(A) + E(B) − E(C)` with `A = [s1, s2]`, `B = [m1, 0]`,
    /// `C = [s1, 0]` (`E(m, 0) = −aᵀm`), so any pairwise prior over the two blocks works.
    fn backward_kl(&mut self, pass: &mut TrainingPass<'_>) -> KlMeans {
        let smoothing = self.smoothing;
        let (l_count, u, d, k, beta) = (pass.layers, pass.units, pass.pixels, pass.k, pass.beta);
        let n_lat = l_count * u;
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
        let inv_n = 1.0 / n as f32;
        let scale = beta as f32 * inv_n;

        // Decoder: ∂loss/∂o = −(x − σ(o))/N, back to ∂loss/∂ζ.
        for v in ws.dout.as_mut_slice() {
            *v *= -inv_n;
        }
        let dz = decoder.backward(&ws.dout);
        ensure_shape(&mut ws.dzeta, n, n_lat);
        ws.dzeta.copy_from(dz);
        clock.lap(Phase::Decoder);

        let kw = &mut self.kl_ws;
        kw.q.resize_with(l_count, || Mat::zeros(0, 0));
        kw.dl_kl.resize_with(l_count, || Mat::zeros(0, 0));
        for (q, l) in kw.q.iter_mut().zip(&ws.logits) {
            sigmoid_into(l, q);
        }
        // −H(q) = Σ [q·l − softplus(l)] per row.
        kw.neg_entropy.clear();
        kw.neg_entropy.resize(n, 0.0);
        for l in &ws.logits {
            for lc in l.as_slice().chunks_exact(n) {
                for (h, &lv) in kw.neg_entropy.iter_mut().zip(lc) {
                    let lv = lv as f64;
                    *h += sigmoid(lv) * lv - softplus(lv);
                }
            }
        }
        prior_grad.fill(0.0);
        kw.kl.clear();
        kw.kl.resize(n, 0.0);
        kw.energy.resize(n, 0.0);
        kw.weights.resize(n, 0.0);

        if l_count == 1 {
            // KL = E(q) + S_Z − H(q); ∂KL/∂l = (∂E/∂q + l)·q(1 − q).
            let q = &kw.q[0];
            prior.energy_into(q.as_view(), &mut kw.energy);
            kw.kl.copy_from_slice(&kw.energy);
            prior.energy_grad_into(q.as_view(), &mut kw.egrad);
            let dl = &mut kw.dl_kl[0];
            ensure_shape(dl, n, u);
            for (((o, &e), &l), &qv) in dl
                .as_mut_slice()
                .iter_mut()
                .zip(kw.egrad.as_slice())
                .zip(ws.logits[0].as_slice())
                .zip(q.as_slice())
            {
                *o = scale * (e + l) * qv * (1.0 - qv);
            }
            kw.weights.fill(-scale);
            prior.accumulate_neg_energy_grad(q.as_view(), &kw.weights, prior_grad);
        } else {
            // −(biases) = ∂E/∂s at s = 0.
            prior.energy_grad_into(Mat::zeros(1, n_lat).as_view(), &mut kw.egrad0);
            let e0: Vec<f32> = kw.egrad0.row(0).iter().copied().collect();
            // s1: ν1 (dVAE++) or z1 = 1[ζ1 > 0] (dVAE); m1 = q1; s2 = q2.
            let mut s1 = Mat::zeros(n, u);
            match smoothing {
                Smoothing::OverlapExp(e) => {
                    for ((o, &l), &z) in s1
                        .as_mut_slice()
                        .iter_mut()
                        .zip(ws.logits[0].as_slice())
                        .zip(ws.zeta[0].as_slice())
                    {
                        *o = sigmoid(e.posterior_z1_logit(l, z) as f64) as f32;
                    }
                }
                Smoothing::SpikeExp(_) => {
                    for (o, &z) in s1.as_mut_slice().iter_mut().zip(ws.zeta[0].as_slice()) {
                        *o = if z > 0.0 { 1.0 } else { 0.0 };
                    }
                }
            }
            for p in &mut kw.point {
                ensure_shape(p, n, n_lat);
                p.fill(0.0);
            }
            kw.point[0].columns_mut(0, u).copy_from(&s1);
            kw.point[0].columns_mut(u, u).copy_from(&kw.q[1]);
            kw.point[1].columns_mut(0, u).copy_from(&kw.q[0]);
            kw.point[2].columns_mut(0, u).copy_from(&s1);
            for (p, sign) in kw.point.iter().zip([1.0, 1.0, -1.0]) {
                prior.energy_into(p.as_view(), &mut kw.energy);
                for (kl, &e) in kw.kl.iter_mut().zip(&kw.energy) {
                    *kl += sign * e;
                }
                kw.weights.fill(-scale * sign as f32);
                prior.accumulate_neg_energy_grad(p.as_view(), &kw.weights, prior_grad);
            }
            prior.energy_grad_into(kw.point[0].as_view(), &mut kw.egrad);
            for dl in &mut kw.dl_kl {
                ensure_shape(dl, n, u);
            }
            let (dl_a, dl_b) = kw.dl_kl.split_at_mut(1);
            let (dl1, dl2) = (&mut dl_a[0], &mut dl_b[0]);
            let (q1, q2) = (&kw.q[0], &kw.q[1]);
            let (l1, l2) = (&ws.logits[0], &ws.logits[1]);
            // Layer 2: ∂KL/∂q2 = ∂E/∂s2|_A + l2 (both estimators; dVAE through q̄2).
            for j in 0..u {
                let eg = kw.egrad.column(u + j);
                for r in 0..n {
                    let (l, qv) = (l2[(r, j)], q2[(r, j)]);
                    dl2[(r, j)] = match smoothing {
                        Smoothing::OverlapExp(_) => scale * (eg[r] + l) * qv * (1.0 - qv),
                        Smoothing::SpikeExp(_) => {
                            let lc = l.clamp(-LOGIT_CLIP, LOGIT_CLIP);
                            if qv < Q_CLIP {
                                scale * (eg[r] + lc) * qv * (1.0 - qv)
                            } else {
                                0.0
                            }
                        }
                    };
                }
            }
            // Layer 1.
            let dzeta1 = &mut ws.dzeta;
            for j in 0..u {
                let (e0j, eg) = (e0[j], kw.egrad.column(j));
                for r in 0..n {
                    let (l, qv, sv) = (l1[(r, j)], q1[(r, j)], s1[(r, j)]);
                    // ∂E/∂s1|_A − ∂E/∂s1|_0 = −(W s2)_j.
                    let coupling = eg[r] - e0j;
                    match smoothing {
                        Smoothing::OverlapExp(e) => {
                            let dnu = coupling * sv * (1.0 - sv);
                            dl1[(r, j)] = scale * ((e0j + l) * qv * (1.0 - qv) + dnu);
                            dzeta1[(r, j)] += scale * dnu * 2.0 * e.beta() as f32;
                        }
                        Smoothing::SpikeExp(_) => {
                            let lc = l.clamp(-LOGIT_CLIP, LOGIT_CLIP);
                            let qbar = qv.min(Q_CLIP);
                            let u1 = lc + e0j + coupling * (1.0 - sv) / (1.0 - qbar);
                            dl1[(r, j)] = if qv < Q_CLIP {
                                scale * u1 * qv * (1.0 - qv)
                            } else {
                                0.0
                            };
                        }
                    }
                }
            }
        }
        let inv_n64 = 1.0 / n as f64;
        let neg_energy = -kw.kl.iter().sum::<f64>() * inv_n64;
        let neg_entropy = kw.neg_entropy.iter().sum::<f64>() * inv_n64;
        clock.lap(Phase::Prior);

        // Stochastic layers, last first: pathwise through the smoothing plus the KL terms.
        for layer in (0..l_count).rev() {
            ensure_shape(&mut ws.dz_layer, n, u);
            ws.dz_layer.copy_from(&ws.dzeta.columns(layer * u, u));
            smoothing.estimator().logits_grad_into(
                PathwiseGrad {
                    logits: &ws.logits[layer],
                    noise: &noise[layer],
                    sample: &ws.zeta[layer],
                    grad_sample: &ws.dz_layer,
                },
                &mut ws.dl,
            );
            ws.dl += &kw.dl_kl[layer];
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
        KlMeans {
            kl_without_log_z: -neg_energy + neg_entropy,
            neg_energy,
            neg_entropy,
        }
    }
}

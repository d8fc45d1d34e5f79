//! The baselines' training objectives on the GumBolt networks: dVAE and dVAE++ (smoothed ELBO,
//! docs/algorithms.md §3–§4) and REINFORCE with NVIL / VIMCO variance reduction (docs/algorithms.md §6).
//!
//! They share the forward pass of [`GumBolt`] (encoders, decoder, prior); only the samples fed
//! to the decoder and the backward pass differ. Evaluation is the same for every objective:
//! discrete z at τ = 0 (GB §5.1).

use gumbolt_core::numerics::{sigmoid, softplus};
use gumbolt_core::{EstimatorGrad, Mat, Posterior};
use gumbolt_estimators::{BernoulliPosterior, NvilBaseline, vimco_signals};

use super::{Clock, GumBolt, Phase};
use crate::dvae::Smoothing;
use crate::gumbolt::kernels::sum_row_groups;
use crate::gumbolt::prior::{PartitionGradient, TrainablePrior};
use crate::nn::{Mlp, Mode, Trainable, ensure_shape};

/// Hidden units of NVIL's input-dependent baseline network `C_ψ(x)` (docs/algorithms.md §6: one tanh
/// hidden layer of 100 units).
pub const NVIL_HIDDEN_UNITS: usize = 100;

/// NVIL's variance reduction for k = 1 (Mnih & Gregor 2014; docs/algorithms.md §6): the baseline
/// network `C_ψ(x)` on the centred image, and the running mean `c` and variance `v` of
/// `ℓ − C_ψ(x)` (decay 0.8).
#[derive(Debug, Clone)]
pub struct Nvil {
    /// `C_ψ`: `D → 100 (BN, tanh) → 1`.
    pub(crate) net: Mlp,
    /// The running `c` and `v`.
    pub(crate) stats: NvilBaseline,
    /// `ℓ_r` and `C_ψ(x_r)` of the last training pass (for the running-statistics update).
    pub(crate) last_signal: Vec<f64>,
    pub(crate) last_baseline: Vec<f64>,
    dout: Mat,
}

impl Nvil {
    pub(crate) fn new(net: Mlp) -> Self {
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

    /// Folds the last training pass's `ℓ − C_ψ(x)` into the running statistics.
    pub(crate) fn update_stats(&mut self) {
        self.stats
            .centred_signal(&self.last_signal, &self.last_baseline);
    }
}

/// Per-row buffers of the KL terms.
#[derive(Debug, Clone, Default)]
pub(super) struct KlWorkspace {
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
    coef: Vec<f32>,
}

/// Means over the rows of the KL terms of one smoothed-ELBO pass.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct KlMeans {
    /// `mean(KL − S_Z)`.
    pub kl_without_log_z: f64,
    /// `mean(−E-terms)`.
    pub neg_energy: f64,
    /// `mean(−H(q))`.
    pub neg_entropy: f64,
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

impl<P: TrainablePrior, G: PartitionGradient<P>> GumBolt<P, G> {
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
    pub(super) fn backward_smoothed(
        &mut self,
        smoothing: Smoothing,
        noise: &[Mat],
        k: usize,
        beta: f64,
        clock: &mut Clock,
    ) -> KlMeans {
        let (l_count, u, d) = (
            self.config.layers(),
            self.config.latent_units,
            self.config.pixels,
        );
        let n_lat = l_count * u;
        let Self {
            ws,
            encoders,
            decoder,
            prior,
            prior_grad,
            ..
        } = self;
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

        let kw = &mut ws.kl_ws;
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
                EstimatorGrad {
                    logits: &ws.logits[layer],
                    noise: &noise[layer],
                    sample: &ws.zeta[layer],
                    grad_sample: Some(&ws.dz_layer),
                    learning_signal: None,
                },
                &mut ws.dl,
            );
            ws.dl += &ws.kl_ws.dl_kl[layer];
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

    /// Backward pass of REINFORCE on the discrete objective (docs/algorithms.md §6), after a forward
    /// pass with binary z in training mode and [`GumBolt::group_objectives`] (which fills the
    /// normalised weights w̃). With `f = log w = log p(x|z) + β(−E(z) − log q(z|x))` and the
    /// score `s = z − σ(l)` of every layer (layer 2 at fixed binary z1):
    ///
    /// - k = 1, NVIL: `∂loss/∂l = (1/B)(β − A)·s` with `A = (f − c − C_ψ(x))/max(1, √v)`;
    ///   the baseline network is trained on `(1/B) Σ (f − c − C_ψ(x))²` (returned);
    /// - k > 1, VIMCO: `∂loss/∂l_j = (1/B)(β w̃_j − (L̂ − L̂_{−j}))·s_j` (leave-one-out signals
    ///   of [`vimco_signals`]);
    /// - decoder and prior as GumBolt's at binary z: weights `−w̃/B`, positive phase
    ///   `β Σ w̃ ∇θ(−E(z))/B`, negative phase `β ∇θ S_Z`.
    ///
    /// The `β` term is the direct dependence of `f` on the logits through `−β log q` (zero in
    /// expectation); the baseline's running statistics are not updated here (see
    /// [`GumBolt::train_step`]).
    pub(super) fn backward_reinforce(&mut self, k: usize, beta: f64, clock: &mut Clock) -> f64 {
        let l_count = self.config.layers();
        let Self {
            ws,
            encoders,
            decoder,
            prior,
            prior_grad,
            nvil,
            ..
        } = self;
        let (b, _) = ws.shape;
        let n = b * k;
        let inv_b = 1.0 / b as f64;
        let beta32 = beta as f32;
        let kw = &mut ws.kl_ws;
        kw.coef.resize(n, 0.0);
        let mut mse = 0.0;
        if k == 1 {
            let nv = nvil
                .as_mut()
                .expect("REINFORCE with k = 1 has an NVIL baseline");
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
                kw.coef[r] = (inv_b * (beta - a)) as f32;
                nv.dout[(r, 0)] = (-2.0 * inv_b * resid) as f32;
                mse += resid * resid * inv_b;
            }
            nv.net.zero_grad();
            nv.net.backward_params_only(&nv.dout);
        } else {
            for bi in 0..b {
                let (signal, wt) = vimco_signals(&ws.log_w[bi * k..(bi + 1) * k]);
                for j in 0..k {
                    kw.coef[bi * k + j] = (inv_b * (beta * wt[j] - signal[j])) as f32;
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
        kw.weights.clear();
        kw.weights.extend(ws.g.iter().map(|&g| g * beta32));
        prior.accumulate_neg_energy_grad(ws.zeta_all.as_view(), &kw.weights, prior_grad);
        clock.lap(Phase::Prior);

        for layer in (0..l_count).rev() {
            BernoulliPosterior.score_into(&ws.logits[layer], &ws.zeta[layer], &mut ws.score);
            ensure_shape(&mut ws.dl, n, ws.score.ncols());
            for (dcol, scol) in ws
                .dl
                .as_mut_slice()
                .chunks_exact_mut(n)
                .zip(ws.score.as_slice().chunks_exact(n))
            {
                for ((dv, &s), &c) in dcol.iter_mut().zip(scol).zip(&kw.coef) {
                    *dv = c * s;
                }
            }
            if layer == 1 {
                encoders[1].backward_params_only(&ws.dl);
            } else {
                sum_row_groups(&ws.dl, k, &mut ws.dl1);
                encoders[0].backward_params_only(&ws.dl1);
            }
        }
        clock.lap(Phase::Encoder);
        mse
    }
}

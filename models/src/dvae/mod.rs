//! dVAE (Rolfe 2016) and dVAE++ (Vahdat et al. 2018) with **one** stochastic layer: the
//! smoothed ELBO with the closed-form KL to an RBM prior (docs/algorithms.md §3, §4) and its
//! hand-written gradient.
//!
//! - Smoothing ([`Smoothing`]): spike-and-exponential (dVAE) or overlapping exponentials
//!   (dVAE++); `ζ = F⁻¹(ρ; σ(l))`, pathwise gradient through the inverse CDF.
//! - Objective: `neg_elbo = −log p(x|ζ) + β_t·KL` per sample, averaged over the `N = B·k` rows
//!   (no importance weighting), plus weight decay.
//! - KL (L = 1, exact for a factorial posterior, docs/algorithms.md §3 "KL computation"):
//!   `KL = −aᵀq1 − bᵀq2 − q1ᵀWq2 + S_Z − H(q)` with `q = σ(l) = [q1 | q2]` and `H` the Bernoulli
//!   entropy; `S_Z` is the negative-phase surrogate of a [`PartitionGradient`] (PCD samples, or
//!   the exact `log Z`).
//!
//! The models that `gumbolt train --model dvae|dvaepp` trains are [`crate::gumbolt::GumBolt`]
//! with [`crate::gumbolt::Objective::Dvae`] / [`crate::gumbolt::Objective::DvaePp`], which add
//! the two-layer KL estimators and share GumBolt's networks, checkpoints and evaluation;
//! [`SmoothedElbo`] is the independent one-layer reference they are tested against.

use gumbolt_core::numerics::{sigmoid, softplus};
use gumbolt_core::prior::{EnergyGradient, EnergyParamGradient, Parametric, Prior};
use gumbolt_core::rng::root_rng;
use gumbolt_core::{Mat, PathwiseEstimator, PathwiseGrad};
use gumbolt_estimators::{OverlappingExp, SpikeAndExp};
use gumbolt_priors::Rbm;

use crate::gumbolt::kernels::{bernoulli_log_lik, repeat_rows, sum_row_groups, sum_squares};
use crate::gumbolt::{GumBoltConfig, ModelError, PartitionGradient, Result, TrainablePrior};
use crate::nn::{Mlp, MlpConfig, Mode, ParamMut, Trainable, ensure_shape};

/// The smoothing of the binary latent units and its pathwise gradient estimator.
#[derive(Debug, Clone, Copy)]
pub enum Smoothing {
    /// Spike-and-exponential (dVAE, docs/algorithms.md §3).
    SpikeExp(SpikeAndExp),
    /// Overlapping exponentials (dVAE++, docs/algorithms.md §4).
    OverlapExp(OverlappingExp),
}

impl Smoothing {
    /// Spike-and-exponential with sharpness β.
    ///
    /// # Errors
    /// An invalid β (not finite and positive).
    pub fn spike_exp(beta: f64) -> Result<Self> {
        Ok(Self::SpikeExp(SpikeAndExp::new(beta)?))
    }

    /// Overlapping exponentials with sharpness β.
    ///
    /// # Errors
    /// An invalid β (not finite and positive).
    pub fn overlap_exp(beta: f64) -> Result<Self> {
        Ok(Self::OverlapExp(OverlappingExp::new(beta)?))
    }

    pub(crate) fn estimator(&self) -> &dyn PathwiseEstimator {
        match self {
            Smoothing::SpikeExp(e) => e,
            Smoothing::OverlapExp(e) => e,
        }
    }
}

/// The terms of one evaluation of the smoothed negative ELBO (means over the `N = B·k` rows).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ElboParts {
    /// `mean(recon + β_t·KL) + weight decay`: the differentiated loss. With a sampled negative
    /// phase its value contains `S_Z`, not `log Z`.
    pub loss: f64,
    /// Mean `−log p(x|ζ)`.
    pub recon: f64,
    /// Mean KL (with `S_Z` in place of `log Z`).
    pub kl: f64,
    /// The `log Z` surrogate used.
    pub log_z_surrogate: f64,
    /// `λ·½Σ‖θ‖²` over encoder/decoder kernels, BN γ and the RBM W.
    pub weight_decay: f64,
    /// The KL coefficient β_t.
    pub beta: f64,
}

#[derive(Debug, Clone, Default)]
struct Workspace {
    xc: Mat,
    logits: Mat,
    q: Mat,
    zeta: Mat,
    dout: Mat,
    log_px: Vec<f64>,
    kl: Vec<f64>,
    energy: Vec<f64>,
    egrad: Mat,
    dzeta: Mat,
    dl: Mat,
    dl1: Mat,
}

/// The one-layer dVAE / dVAE++ objective: an encoder MLP `x − x̄ → l`, a smoothing of the
/// Bernoulli posterior `q = σ(l)`, a decoder MLP `ζ → o` (`o = g(ζ) + x_bias` with the fixed
/// GumBolt offset `x_bias = logit(clip(x̄, 1e-3, 0.999))`) and an [`Rbm`] prior whose two sides
/// split the latent vector contiguously (`[z1 | z2]`, `n1` first units).
#[derive(Debug, Clone)]
pub struct SmoothedElbo {
    x_mean: Vec<f32>,
    x_bias: Vec<f32>,
    encoder: Mlp,
    decoder: Mlp,
    prior: Rbm,
    prior_grad: Vec<f32>,
    smoothing: Smoothing,
    weight_decay: f64,
    ws: Workspace,
}

fn invalid(field: &'static str, reason: String) -> ModelError {
    ModelError::InvalidConfig {
        name: field,
        reason,
    }
}

impl SmoothedElbo {
    /// A fresh model with the networks of a one-layer [`GumBoltConfig`] (pixels, latent units,
    /// hidden layers and width, batch norm, seed, weight decay `train.adam.weight_decay`), the
    /// given prior over `latent_units` units and smoothing.
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`] for an invalid or two-layer configuration, pixel means of
    /// the wrong length or outside [0, 1], or a prior of the wrong size.
    pub fn new(
        config: &GumBoltConfig,
        pixel_means: &[f32],
        prior: Rbm,
        smoothing: Smoothing,
    ) -> Result<Self> {
        config.validate()?;
        if config.layers() != 1 {
            return Err(invalid(
                "structure",
                "the closed-form KL needs one stochastic layer".into(),
            ));
        }
        let d = config.pixels;
        if pixel_means.len() != d || !pixel_means.iter().all(|m| (0.0..=1.0).contains(m)) {
            return Err(invalid(
                "pixel_means",
                format!("expected {d} values in [0, 1]"),
            ));
        }
        let n = config.latent_units;
        if prior.n1() + prior.n2() != n {
            return Err(invalid(
                "prior",
                format!(
                    "the prior has {} units, the model {n}",
                    prior.n1() + prior.n2()
                ),
            ));
        }
        let mut init = root_rng(config.seed);
        let hidden = vec![config.hidden_units; config.hidden_layers];
        let mut net = |input: usize, output: usize| {
            MlpConfig::new(input, hidden.clone(), output)
                .with_batch_norm(config.batch_norm)
                .build(&mut init)
        };
        let encoder = net(d, n)?;
        let decoder = net(n, d)?;
        let x_bias = pixel_means
            .iter()
            .map(|&m| gumbolt_core::numerics::logit((m as f64).clamp(1e-3, 0.999)) as f32)
            .collect();
        Ok(Self {
            x_mean: pixel_means.to_vec(),
            x_bias,
            encoder,
            decoder,
            prior_grad: vec![0.0; prior.params().len()],
            prior,
            smoothing,
            weight_decay: config.train.adam.weight_decay,
            ws: Workspace::default(),
        })
    }

    /// The prior.
    pub fn prior(&self) -> &Rbm {
        &self.prior
    }

    /// Mutable prior.
    pub fn prior_mut(&mut self) -> &mut Rbm {
        &mut self.prior
    }

    /// `∂loss/∂θ` of the prior from the last [`SmoothedElbo::loss_and_grad`] (layout
    /// `[a | b | W column-major]`, without weight decay).
    pub fn prior_grad(&self) -> &[f32] {
        &self.prior_grad
    }

    /// The encoder network.
    pub fn encoder(&self) -> &Mlp {
        &self.encoder
    }

    /// The decoder network.
    pub fn decoder(&self) -> &Mlp {
        &self.decoder
    }

    /// The smoothing.
    pub fn smoothing(&self) -> Smoothing {
        self.smoothing
    }

    /// The logits `l` (`[N, n]`) of the last forward pass.
    pub fn last_logits(&self) -> &Mat {
        &self.ws.logits
    }

    /// The smoothed samples ζ (`[N, n]`) of the last forward pass.
    pub fn last_samples(&self) -> &Mat {
        &self.ws.zeta
    }

    /// Per-row KL (with the surrogate in place of `log Z`) of the last forward pass.
    pub fn last_kl(&self) -> &[f64] {
        &self.ws.kl
    }

    /// One evaluation of the loss at fixed noise `ρ` (`[B·k, n]`, rows of one image
    /// consecutive) with batch norm in training mode, and its full gradient:
    ///
    /// 1. `partition.advance(prior)` (PCD sweeps / exact `log Z`);
    /// 2. forward: `l = enc(x − x̄)` repeated k times, `ζ = F⁻¹(ρ; σ(l))`, `o = dec(ζ) + x_bias`,
    ///    `recon = −Σ_d [x_d o_d − softplus(o_d)]`, the closed-form KL;
    /// 3. backward (all terms scaled by 1/N): decoder → `∂/∂ζ` → logits through the smoothing's
    ///    pathwise `∂ζ/∂l`; plus `β_t·∂KL/∂l = β_t·(∂E/∂ζ|_q + l)·q(1−q)`; prior:
    ///    `β_t·[−(1/N)Σ_r ∇θ(−E)(q_r) + ∇θ S_Z]`.
    ///
    /// Gradients are written (not accumulated) and exclude weight decay, which the optimiser
    /// adds as `λθ` on the flagged tensors; its value is included in [`ElboParts::loss`].
    ///
    /// # Errors
    /// [`ModelError::Shape`] for a batch or noise of the wrong shape; errors of the negative
    /// phase.
    pub fn loss_and_grad<G: PartitionGradient<Rbm>>(
        &mut self,
        x: &Mat,
        noise: &Mat,
        partition: &mut G,
        beta: f64,
    ) -> Result<ElboParts> {
        let (b, d) = x.shape();
        let n_lat = self.prior.n1() + self.prior.n2();
        let n = noise.nrows();
        if d != self.x_mean.len() || b == 0 || noise.ncols() != n_lat || !n.is_multiple_of(b) {
            return Err(ModelError::Shape {
                context: "SmoothedElbo::loss_and_grad",
                expected: format!("x [B ≥ 1, {}], noise [B·k, {n_lat}]", self.x_mean.len()),
                got: format!("x {:?}, noise {:?}", x.shape(), noise.shape()),
            });
        }
        let k = n / b;
        partition.advance(&self.prior)?;
        let log_z = partition.surrogate_value(&self.prior);
        self.forward(x, noise, k, log_z);
        self.backward(noise, k, beta, partition);

        let inv_n = 1.0 / n as f64;
        let recon = -self.ws.log_px.iter().sum::<f64>() * inv_n;
        let kl = self.ws.kl.iter().sum::<f64>() * inv_n;
        let weight_decay = {
            let sq: f64 = self
                .params_mut()
                .iter()
                .filter(|p| p.decay)
                .map(|p| sum_squares(p.value))
                .sum();
            0.5 * self.weight_decay * sq
        };
        Ok(ElboParts {
            loss: recon + beta * kl + weight_decay,
            recon,
            kl,
            log_z_surrogate: log_z,
            weight_decay,
            beta,
        })
    }

    fn forward(&mut self, x: &Mat, noise: &Mat, k: usize, log_z: f64) {
        let (b, d) = x.shape();
        let n = b * k;
        let ws = &mut self.ws;
        ensure_shape(&mut ws.xc, b, d);
        for j in 0..d {
            let m = self.x_mean[j];
            for i in 0..b {
                ws.xc[(i, j)] = x[(i, j)] - m;
            }
        }
        let l = self.encoder.forward(&ws.xc, Mode::Train);
        repeat_rows(l, k, &mut ws.logits);
        self.smoothing
            .estimator()
            .sample_into(&ws.logits, noise, &mut ws.zeta);
        ensure_shape(&mut ws.q, n, ws.logits.ncols());
        for (q, &l) in ws.q.iter_mut().zip(ws.logits.iter()) {
            *q = sigmoid(l as f64) as f32;
        }

        let out = self.decoder.forward(&ws.zeta, Mode::Train);
        ws.log_px.resize(n, 0.0);
        bernoulli_log_lik(out, x, &self.x_bias, k, &mut ws.log_px, Some(&mut ws.dout));

        // KL_r = E(q_r) + S_Z − H(q_r), H = Σ_i [softplus(−l_i) + (1 − q_i) l_i].
        ws.energy.resize(n, 0.0);
        self.prior.energy_into(ws.q.as_view(), &mut ws.energy);
        ws.kl.clear();
        ws.kl.extend(ws.energy.iter().map(|e| e + log_z));
        for lc in ws.logits.as_slice().chunks_exact(n) {
            for (kl, &l) in ws.kl.iter_mut().zip(lc) {
                let l = l as f64;
                *kl -= softplus(-l) + (1.0 - sigmoid(l)) * l;
            }
        }
    }

    fn backward<G: PartitionGradient<Rbm>>(
        &mut self,
        noise: &Mat,
        k: usize,
        beta: f64,
        partition: &G,
    ) {
        let Self {
            ws,
            encoder,
            decoder,
            prior,
            prior_grad,
            smoothing,
            ..
        } = self;
        let n = ws.logits.nrows();
        let inv_n = 1.0 / n as f32;
        let beta32 = beta as f32;
        encoder.zero_grad();
        decoder.zero_grad();

        // Decoder: ∂loss/∂out = −(x − σ(o))/N, back to ∂loss/∂ζ.
        for v in ws.dout.iter_mut() {
            *v *= -inv_n;
        }
        let dz = decoder.backward(&ws.dout);
        ensure_shape(&mut ws.dzeta, dz.nrows(), dz.ncols());
        ws.dzeta.copy_from(dz);
        smoothing.estimator().logits_grad_into(
            PathwiseGrad {
                logits: &ws.logits,
                noise,
                sample: &ws.zeta,
                grad_sample: &ws.dzeta,
            },
            &mut ws.dl,
        );

        // KL: ∂KL/∂l = (∂E/∂q + l)·q(1 − q), scaled by β/N.
        prior.energy_grad_into(ws.q.as_view(), &mut ws.egrad);
        let scale = beta32 * inv_n;
        for (((dl, &e), &l), &q) in ws
            .dl
            .iter_mut()
            .zip(ws.egrad.iter())
            .zip(ws.logits.iter())
            .zip(ws.q.iter())
        {
            *dl += scale * (e + l) * q * (1.0 - q);
        }
        sum_row_groups(&ws.dl, k, &mut ws.dl1);
        encoder.backward_params_only(&ws.dl1);

        // Prior: β[−(1/N) Σ_r ∇θ(−E)(q_r) + ∇θ S_Z].
        prior_grad.fill(0.0);
        let weights = vec![-scale; n];
        prior.accumulate_neg_energy_grad(ws.q.as_view(), &weights, prior_grad);
        partition.accumulate_grad(prior, beta32, prior_grad);
    }
}

impl Trainable for SmoothedElbo {
    /// Encoder, decoder, then the prior's groups (`rbm.ab`, `rbm.w`).
    fn collect_params<'a>(&'a mut self, out: &mut Vec<ParamMut<'a>>) {
        self.encoder.collect_params(out);
        self.decoder.collect_params(out);
        let groups = self.prior.param_groups();
        let mut value: &mut [f32] = Parametric::params_mut(&mut self.prior);
        let mut grad: &mut [f32] = &mut self.prior_grad;
        for g in groups {
            let (v, vr) = std::mem::take(&mut value).split_at_mut(g.len);
            let (gr, grr) = std::mem::take(&mut grad).split_at_mut(g.len);
            out.push(ParamMut::new(g.name, v, gr, g.decay));
            value = vr;
            grad = grr;
        }
    }
}

#[cfg(test)]
mod tests;

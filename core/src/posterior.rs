//! The approximating posterior and gradient estimators (implemented in later crates).
//!
//! The posterior `q_φ(z|x)` of every model in the paper is a (hierarchical) product of
//! Bernoulli layers whose logits `l` come from the encoder (GB §2.2, §5.1). What differs between
//! GumBolt, REINFORCE, dVAE and dVAE++ is how a sample is produced from `l` and uniform noise
//! `ρ`, and how the loss gradient reaches `l`: that is a [`GradientEstimator`].

use crate::Mat;

/// A factorial layer of the approximating posterior, parametrised by logits.
pub trait Posterior {
    /// `log q(z|l)` for every row: `Σ_i [z_i l_i − softplus(l_i)]` for Bernoulli units. At
    /// relaxed ζ the same formula is GumBolt's `log q̌(ζ|x)` (GB text after Eq. 8).
    fn log_prob_into(&self, logits: &Mat, z: &Mat, out: &mut [f64]);

    /// The score `∂ log q(z|l)/∂l` (`z − σ(l)` for Bernoulli units), written into `out`.
    fn score_into(&self, logits: &Mat, z: &Mat, out: &mut Mat);
}

/// What the backward pass of a [`GradientEstimator`] receives.
#[derive(Debug, Clone, Copy)]
pub struct EstimatorGrad<'a> {
    /// The logits `l` (`[N, n]`).
    pub logits: &'a Mat,
    /// The uniform noise `ρ` the sample was drawn with.
    pub noise: &'a Mat,
    /// The sample that was fed forward.
    pub sample: &'a Mat,
    /// `∂loss/∂sample` for pathwise (reparameterised) estimators.
    pub grad_sample: Option<&'a Mat>,
    /// Per-row learning signal (e.g. `ℓ − baseline`) for score-function estimators.
    pub learning_signal: Option<&'a [f64]>,
}

/// Produces a sample from posterior logits and noise, and propagates the loss gradient back to
/// the logits: GumBolt's Gumbel relaxation `ζ = σ((l + logit ρ)/τ)` (GB Eq. 2), REINFORCE,
/// spike-and-exponential (dVAE), overlapping exponentials (dVAE++).
pub trait GradientEstimator: Send + Sync {
    /// Writes the sample drawn from `logits` with uniform `noise` into `out`.
    fn sample_into(&self, logits: &Mat, noise: &Mat, out: &mut Mat);

    /// Writes `∂loss/∂logits` into `out`.
    fn logits_grad_into(&self, grad: EstimatorGrad<'_>, out: &mut Mat);
}

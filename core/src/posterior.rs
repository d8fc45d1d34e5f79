//! The approximating posterior and gradient estimators (implemented in later crates).
//!
//! The posterior `q_φ(z|x)` of every model in the paper is a (hierarchical) product of
//! Bernoulli layers whose logits `l` come from the encoder (GB §2.2, §5.1). What differs between
//! GumBolt, REINFORCE, dVAE and dVAE++ is how a sample is produced from `l` and uniform noise
//! `ρ` (a [`GradientEstimator`]), and how the loss gradient reaches `l`: through the sample
//! (a [`PathwiseEstimator`]: GumBolt's relaxation, GB Eq. 2, and the dVAE / dVAE++
//! smoothings) or through the score of [`Posterior`] times a learning signal (a
//! [`ScoreFunctionEstimator`]: REINFORCE, docs/algorithms.md §6).

use crate::Mat;

/// A factorial layer of the approximating posterior, parametrised by logits.
pub trait Posterior {
    /// Adds `log q(z|l)` of every row to `out`: `Σ_i [z_i l_i − softplus(l_i)]` for Bernoulli
    /// units. The log-probabilities of the layers of a hierarchical posterior add up (GB §5.1).
    /// At relaxed ζ the same formula is GumBolt's `log q̌(ζ|x)` (GB text after Eq. 8).
    fn accumulate_log_prob(&self, logits: &Mat, z: &Mat, out: &mut [f64]);

    /// The score `∂ log q(z|l)/∂l` (`z − σ(l)` for Bernoulli units), written into `out`.
    fn score_into(&self, logits: &Mat, z: &Mat, out: &mut Mat);

    /// Writes `log q(z|l)` of every row into `out` (see [`Posterior::accumulate_log_prob`]).
    fn log_prob_into(&self, logits: &Mat, z: &Mat, out: &mut [f64]) {
        out.fill(0.0);
        self.accumulate_log_prob(logits, z, out);
    }
}

/// Produces a sample from posterior logits and uniform noise: GumBolt's Gumbel relaxation
/// `ζ = σ((l + logit ρ)/τ)` (GB Eq. 2), its τ = 0 limit, spike-and-exponential (dVAE),
/// overlapping exponentials (dVAE++), REINFORCE's discrete sample. How the gradient reaches the
/// logits is the capability of [`PathwiseEstimator`] or [`ScoreFunctionEstimator`].
pub trait GradientEstimator: Send + Sync {
    /// Writes the sample drawn from `logits` with uniform `noise` into `out`.
    fn sample_into(&self, logits: &Mat, noise: &Mat, out: &mut Mat);
}

/// What the backward pass of a [`PathwiseEstimator`] receives.
#[derive(Debug, Clone, Copy)]
pub struct PathwiseGrad<'a> {
    /// The logits `l` (`[N, n]`).
    pub logits: &'a Mat,
    /// The uniform noise `ρ` the sample was drawn with.
    pub noise: &'a Mat,
    /// The sample that was fed forward.
    pub sample: &'a Mat,
    /// `∂loss/∂sample`.
    pub grad_sample: &'a Mat,
}

/// A reparameterised estimator: the sample is a differentiable function of the logits at fixed
/// noise, and the loss gradient flows through it (GB Eq. 2 and §3.1; docs/algorithms.md §2.2,
/// §3, §4).
pub trait PathwiseEstimator: GradientEstimator {
    /// Writes `∂loss/∂logits = ∂loss/∂sample ⊙ ∂sample/∂logits` into `out`.
    fn logits_grad_into(&self, grad: PathwiseGrad<'_>, out: &mut Mat);
}

/// What the backward pass of a [`ScoreFunctionEstimator`] receives.
#[derive(Debug, Clone, Copy)]
pub struct ScoreGrad<'a> {
    /// The logits `l` (`[N, n]`).
    pub logits: &'a Mat,
    /// The sample that was fed forward.
    pub sample: &'a Mat,
    /// Per-row learning signal `s_r` (an objective to maximise, e.g. `ℓ − baseline`).
    pub learning_signal: &'a [f64],
}

/// A score-function estimator: `∂E_q[s]/∂l = E_q[s·∂ log q(z|l)/∂l]` for a signal `s` that
/// does not depend on `l` at fixed z (docs/algorithms.md §6).
pub trait ScoreFunctionEstimator: GradientEstimator {
    /// Writes the loss gradient `∂loss/∂l_{ri} = −s_r·∂ log q(z_r|l_r)/∂l_{ri}` into `out`.
    fn logits_grad_into(&self, grad: ScoreGrad<'_>, out: &mut Mat);
}

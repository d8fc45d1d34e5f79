//! # gumbolt-estimators
//!
//! The approximating posterior of the gumbolt toolkit and the gradient estimators that turn
//! its logits into samples and carry the loss gradient back to the logits (Khoshaman & Amin,
//! *GumBolt*, NeurIPS 2018, §2.2 and §3.1).
//!
//! | item | what | core trait |
//! |---|---|---|
//! | [`BernoulliPosterior`] | factorial Bernoulli layer: `log q(z|l) = Σ[z·l − softplus(l)]`, score `z − σ(l)`; at relaxed ζ the same formula is GumBolt's `log q̌(ζ|x)` (GB text after Eq. 8) | [`Posterior`](gumbolt_core::Posterior) |
//! | [`GumbelRelaxation`] | `ζ = σ((l + logit ρ)/τ)` (GB Eq. 2), pathwise backward `∂ζ/∂l = ζ(1−ζ)/τ` | [`PathwiseEstimator`](gumbolt_core::PathwiseEstimator) |
//! | [`BinaryConcrete`] | the true density and CDF of the relaxation (Maddison et al. 2017), `q(ζ|l,τ)`, needed to evaluate GB Eq. 8 | — |
//! | [`Discrete`] | the τ = 0 limit, `z = 1[l + logit ρ > 0]` (GB §2.2, Gumbel form), used at evaluation | [`GradientEstimator`](gumbolt_core::GradientEstimator) |
//! | [`SpikeAndExp`] | dVAE's spike-and-exponential smoothing (Rolfe 2016; docs/algorithms.md §3): inverse CDF and pathwise `∂ζ/∂l` | [`PathwiseEstimator`](gumbolt_core::PathwiseEstimator) |
//! | [`OverlappingExp`] | dVAE++'s overlapping exponentials (Vahdat et al. 2018; docs/algorithms.md §4): stable mixture inverse CDF, implicit `∂ζ/∂l` | [`PathwiseEstimator`](gumbolt_core::PathwiseEstimator) |
//! | [`Reinforce`], [`NvilBaseline`], [`vimco_signals`] | score-function gradients with NVIL centring (k = 1) and VIMCO leave-one-out signals (k > 1) (docs/algorithms.md §6) | [`ScoreFunctionEstimator`](gumbolt_core::ScoreFunctionEstimator) |
//!
//! Matrices are `[N, n]` f32 (rows are samples, columns units); per-row log-probabilities
//! are accumulated in f64. Uniform noise ρ is clamped to `[1e-6, 1 − 1e-6]` before `logit`
//! (docs/algorithms.md §2.1 \[REC\]); [`Discrete`] and [`GumbelRelaxation`] use the *same* clamped
//! `logit ρ`, so at a fixed ρ the relaxation converges to exactly the discrete sample as
//! τ → 0 (docs/algorithms.md §8 T3).
#![warn(missing_docs)]

pub mod concrete;
pub mod error;
pub mod gumbel;
pub mod overlap_exp;
pub mod posterior;
pub mod reinforce;
pub mod spike_exp;

pub use concrete::BinaryConcrete;
pub use error::{EstimatorError, Result};
pub use gumbel::{Discrete, GumbelRelaxation, NOISE_CLAMP, noise_logit};
pub use overlap_exp::OverlappingExp;
pub use posterior::BernoulliPosterior;
pub use reinforce::{NvilBaseline, Reinforce, vimco_signals};
pub use spike_exp::SpikeAndExp;

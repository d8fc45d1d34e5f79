//! The Gumbel (Concrete) relaxation of binary units and its τ = 0 limit (GB §2.2, Eq. 2).

use gumbolt_core::numerics::exp_approx;
use gumbolt_core::{GradientEstimator, Mat, PathwiseEstimator, PathwiseGrad, parallel};
use serde::{Deserialize, Serialize};

use crate::error::{EstimatorError, Result};

/// Uniform noise is clamped to `[NOISE_CLAMP, 1 − NOISE_CLAMP]` before `logit`
/// (docs/algorithms.md §2.1; the reference implementation clamps Concrete noise to
/// `[1e-5, 1 − 1e-5]`).
pub const NOISE_CLAMP: f32 = 1e-6;

/// `logit ρ = log ρ − log(1 − ρ)` of the clamped noise (GB Eq. 2's σ⁻¹(ρ)), in f32.
///
/// Both [`GumbelRelaxation`] and [`Discrete`] use this function, so at a fixed ρ the
/// relaxed sample tends to exactly the discrete one as τ → 0.
///
/// ```
/// use gumbolt_estimators::noise_logit;
/// assert_eq!(noise_logit(0.5), 0.0);
/// assert!((noise_logit(0.75) - 3f32.ln()).abs() < 1e-6);
/// assert!(noise_logit(0.0).is_finite() && noise_logit(1.0).is_finite());
/// ```
#[inline(always)]
pub fn noise_logit(rho: f32) -> f32 {
    let r = rho.clamp(NOISE_CLAMP, 1.0 - NOISE_CLAMP);
    // One logarithm: 1 − r is exact in f32 for r ≥ 1/2 and the quotient is rounded once.
    (r / (1.0 - r)).ln()
}

/// Reshapes `m` to `rows × cols` if needed (contents unspecified afterwards).
pub(crate) fn ensure_shape(m: &mut Mat, rows: usize, cols: usize) {
    if m.shape() != (rows, cols) {
        *m = Mat::zeros(rows, cols);
    }
}

fn check_shapes(logits: &Mat, noise: &Mat, what: &str) {
    assert_eq!(
        logits.shape(),
        noise.shape(),
        "{what}: logits and noise differ in shape"
    );
}

/// The Gumbel relaxation of a Bernoulli layer with temperature τ (GB Eq. 2; Maddison et al.
/// 2016):
///
/// `ζ = σ((l + σ⁻¹(ρ))/τ)`, `ρ ~ U(0, 1)`,
///
/// a differentiable reparameterisation whose τ → 0 limit is the discrete sample
/// `z = H(l + σ⁻¹(ρ))` of [`Discrete`]. GumBolt trains with τ = 1/7 (GB §5.1).
///
/// The backward pass is pathwise: `∂loss/∂l = ∂loss/∂ζ · ∂ζ/∂l` with `∂ζ/∂l = ζ(1−ζ)/τ`
/// (docs/algorithms.md §2.2). It needs [`PathwiseGrad::grad_sample`]; the direct dependence of a loss
/// on `l` at fixed ζ (e.g. through `log q̌(ζ|l)`, GB Eq. 9) is the caller's to add (see
/// [`crate::BernoulliPosterior`]'s score).
///
/// Construct it with [`GumbelRelaxation::new`], which rejects τ ≤ 0, NaN and ∞.
///
/// ```
/// use gumbolt_core::{GradientEstimator, Mat};
/// use gumbolt_estimators::GumbelRelaxation;
/// let relax = GumbelRelaxation::new(1.0 / 7.0).unwrap();
/// let l = Mat::from_row_slice(1, 2, &[0.0f32, 0.0]);
/// let rho = Mat::from_row_slice(1, 2, &[0.5f32, 0.9]);
/// let mut zeta = Mat::zeros(1, 2);
/// relax.sample_into(&l, &rho, &mut zeta);
/// assert_eq!(zeta[(0, 0)], 0.5); // logit(0.5) = 0
/// assert!(zeta[(0, 1)] > 0.999);  // σ(7·logit 0.9) = σ(15.4)
/// assert!(GumbelRelaxation::new(0.0).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "TauOnly", into = "TauOnly")]
pub struct GumbelRelaxation {
    tau: f64,
}

#[derive(Serialize, Deserialize)]
struct TauOnly {
    tau: f64,
}

impl TryFrom<TauOnly> for GumbelRelaxation {
    type Error = EstimatorError;
    fn try_from(t: TauOnly) -> Result<Self> {
        GumbelRelaxation::new(t.tau)
    }
}

impl From<GumbelRelaxation> for TauOnly {
    fn from(g: GumbelRelaxation) -> Self {
        TauOnly { tau: g.tau }
    }
}

impl GumbelRelaxation {
    /// The relaxation at temperature `tau`.
    ///
    /// # Errors
    /// [`EstimatorError::InvalidTemperature`] unless `0 < tau < ∞`.
    pub fn new(tau: f64) -> Result<Self> {
        if tau > 0.0 && tau.is_finite() {
            Ok(Self { tau })
        } else {
            Err(EstimatorError::InvalidTemperature { tau })
        }
    }

    /// The temperature τ.
    pub fn tau(&self) -> f64 {
        self.tau
    }

    /// `ζ(1 − ζ)/τ`, the derivative of the relaxation with respect to the logit, at a sample
    /// value ζ.
    #[inline(always)]
    pub fn slope(&self, zeta: f32) -> f32 {
        zeta * (1.0 - zeta) * (1.0 / self.tau) as f32
    }
}

impl GradientEstimator for GumbelRelaxation {
    /// `out = σ((l + logit ρ)/τ)` elementwise (`out` reshaped to the shape of `logits`).
    ///
    /// # Panics
    /// If `logits` and `noise` differ in shape.
    fn sample_into(&self, logits: &Mat, noise: &Mat, out: &mut Mat) {
        check_shapes(logits, noise, "GumbelRelaxation::sample_into");
        ensure_shape(out, logits.nrows(), logits.ncols());
        let inv_tau = (1.0 / self.tau) as f32;
        let (logits, noise) = (logits.as_slice(), noise.as_slice());
        // Element-wise, so split over the calling pool's threads (gumbolt_core::parallel).
        parallel::for_each_chunk_mut(out.as_mut_slice(), 1, |start, chunk| {
            for ((o, &l), &r) in chunk.iter_mut().zip(&logits[start..]).zip(&noise[start..]) {
                let y = (l + noise_logit(r)) * inv_tau;
                // σ(y) = 1/(1 + e^{−y}); exp_approx clamps its argument, so this saturates to
                // exactly 1 (or ~1e-38) instead of overflowing. Nothing takes log ζ
                // (docs/algorithms.md §2.1).
                *o = 1.0 / (1.0 + exp_approx(-y));
            }
        });
    }
}

impl PathwiseEstimator for GumbelRelaxation {
    /// `out = ∂loss/∂ζ ⊙ ζ(1−ζ)/τ` (docs/algorithms.md §2.2).
    ///
    /// # Panics
    /// If shapes differ.
    fn logits_grad_into(&self, grad: PathwiseGrad<'_>, out: &mut Mat) {
        let g = grad.grad_sample;
        assert_eq!(
            g.shape(),
            grad.sample.shape(),
            "GumbelRelaxation::logits_grad_into: ∂loss/∂ζ and ζ differ in shape"
        );
        ensure_shape(out, g.nrows(), g.ncols());
        let (g, sample) = (g.as_slice(), grad.sample.as_slice());
        parallel::for_each_chunk_mut(out.as_mut_slice(), 1, |start, chunk| {
            for ((o, &dz), &z) in chunk.iter_mut().zip(&g[start..]).zip(&sample[start..]) {
                *o = dz * self.slope(z);
            }
        });
    }
}

/// Discrete sampling at τ = 0 in the Gumbel form `z = H(l + σ⁻¹(ρ)) = 1[l + logit ρ > 0]`
/// (GB §2.2): the limit of [`GumbelRelaxation`] at the same noise, used at evaluation where
/// "the temperature is set to zero" (GB Fig. 1c, §5.1; docs/algorithms.md §2.4).
///
/// `P(z = 1) = P(logit ρ > −l) = σ(l)`, the Bernoulli posterior. This is the same
/// distribution as the reference's `1[ρ < σ(l)]` but not the same event for a given ρ; use this
/// form wherever a result is compared with a relaxed sample built from the same ρ (docs/algorithms.md
/// §8 T3).
///
/// It has no useful pathwise gradient (zero almost everywhere), so it is only a
/// [`GradientEstimator`]: a model trained through discrete samples needs a score-function
/// estimator instead ([`crate::Reinforce`]).
///
/// ```
/// use gumbolt_core::{GradientEstimator, Mat};
/// use gumbolt_estimators::Discrete;
/// let l = Mat::from_row_slice(1, 3, &[0.0f32, -1.0, 1.0]);
/// let rho = Mat::from_row_slice(1, 3, &[0.6f32, 0.6, 0.3]);
/// let mut z = Mat::zeros(1, 3);
/// Discrete.sample_into(&l, &rho, &mut z);
/// // logit 0.6 = 0.405: 0.405 > 0, −1 + 0.405 < 0, 1 − 0.847 > 0
/// assert_eq!(z.as_slice(), &[1.0, 0.0, 1.0]);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discrete;

impl GradientEstimator for Discrete {
    /// `out = 1[l + logit ρ > 0]` as 0.0/1.0.
    ///
    /// # Panics
    /// If `logits` and `noise` differ in shape.
    fn sample_into(&self, logits: &Mat, noise: &Mat, out: &mut Mat) {
        check_shapes(logits, noise, "Discrete::sample_into");
        ensure_shape(out, logits.nrows(), logits.ncols());
        for ((o, &l), &r) in out
            .as_mut_slice()
            .iter_mut()
            .zip(logits.as_slice())
            .zip(noise.as_slice())
        {
            *o = if l + noise_logit(r) > 0.0 { 1.0 } else { 0.0 };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gumbolt_core::numerics::sigmoid;
    use gumbolt_core::rng::{fill_uniform, root_rng};

    fn uniforms(rows: usize, cols: usize, seed: u64) -> Mat {
        let mut v = vec![0.0f32; rows * cols];
        fill_uniform(&mut root_rng(seed), &mut v);
        Mat::from_vec(rows, cols, v)
    }

    #[test]
    fn invalid_temperatures_are_rejected() {
        for tau in [0.0, -1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let e = GumbelRelaxation::new(tau).unwrap_err();
            assert!(matches!(e, EstimatorError::InvalidTemperature { .. }));
            assert!(e.to_string().contains("positive"), "{e}");
        }
        assert_eq!(GumbelRelaxation::new(0.25).unwrap().tau(), 0.25);
        // Deserialisation goes through the checked constructor.
        let ok: std::result::Result<GumbelRelaxation, _> = TauOnly { tau: -2.0 }.try_into();
        assert!(ok.is_err());
    }

    #[test]
    fn relaxation_matches_equation_2_in_f64() {
        let relax = GumbelRelaxation::new(0.3).unwrap();
        let l = Mat::from_fn(5, 7, |i, j| (i as f32 - 2.0) * 1.9 + (j as f32 - 3.0) * 0.7);
        let rho = uniforms(5, 7, 1);
        let mut z = Mat::zeros(0, 0);
        relax.sample_into(&l, &rho, &mut z);
        for (k, &zv) in z.as_slice().iter().enumerate() {
            let (lv, r) = (l.as_slice()[k] as f64, rho.as_slice()[k] as f64);
            let want = sigmoid((lv + r.ln() - (1.0 - r).ln()) / 0.3);
            assert!((zv as f64 - want).abs() < 2e-6, "{zv} vs {want}");
        }
    }

    #[test]
    fn backward_matches_finite_differences() {
        // d/dl Σ c ⊙ ζ(l) = c ⊙ ζ(1−ζ)/τ at a few temperatures.
        for tau in [2.0, 0.5, 1.0 / 7.0] {
            let relax = GumbelRelaxation::new(tau).unwrap();
            let l = Mat::from_fn(4, 6, |i, j| ((i * 6 + j) as f32 * 0.37).sin() * 0.8);
            let rho = uniforms(4, 6, 2);
            let c = Mat::from_fn(4, 6, |i, j| ((i + 3 * j) as f32 * 0.91).cos());
            let mut z = Mat::zeros(0, 0);
            relax.sample_into(&l, &rho, &mut z);
            let mut dl = Mat::zeros(0, 0);
            relax.logits_grad_into(
                PathwiseGrad {
                    logits: &l,
                    noise: &rho,
                    sample: &z,
                    grad_sample: &c,
                },
                &mut dl,
            );
            let h = 1e-3 * tau as f32;
            for k in 0..l.len() {
                let f = |d: f32| {
                    let mut lh = l.clone();
                    lh.as_mut_slice()[k] += d;
                    let mut zh = Mat::zeros(0, 0);
                    relax.sample_into(&lh, &rho, &mut zh);
                    zh.iter()
                        .zip(c.iter())
                        .map(|(&a, &b)| a as f64 * b as f64)
                        .sum::<f64>()
                };
                let fd = (f(h) - f(-h)) / (2.0 * h as f64);
                let a = dl.as_slice()[k] as f64;
                assert!(
                    (a - fd).abs() <= 2e-3 * (1.0 + a.abs()) / tau.min(1.0),
                    "tau {tau}, element {k}: analytic {a} vs fd {fd}"
                );
            }
        }
    }

    #[test]
    fn low_temperature_limit_is_the_discrete_sample() {
        let l = Mat::from_fn(50, 20, |i, j| ((i * 20 + j) as f32 * 0.618).sin() * 3.0);
        let rho = uniforms(50, 20, 3);
        let mut hard = Mat::zeros(0, 0);
        Discrete.sample_into(&l, &rho, &mut hard);
        let mut checked = 0;
        for tau in [1e-2, 1e-3, 1e-4] {
            let mut soft = Mat::zeros(0, 0);
            GumbelRelaxation::new(tau)
                .unwrap()
                .sample_into(&l, &rho, &mut soft);
            for k in 0..l.len() {
                let y = l.as_slice()[k] + noise_logit(rho.as_slice()[k]);
                // Away from the decision boundary the gap is σ(−|y|/τ) ≤ e^{−|y|/τ}.
                if y.abs() >= 1e-2 {
                    let gap = (soft.as_slice()[k] - hard.as_slice()[k]).abs() as f64;
                    let bound = (-(y.abs() as f64) / tau).exp() + 1e-7;
                    assert!(gap <= bound, "tau {tau}, y {y}: gap {gap} > {bound}");
                    checked += 1;
                }
            }
        }
        assert!(checked > 2900);
        // At τ = 1e-4 and |y| ≥ 1e-2 the relaxed value is the binary one to f32 precision.
        let mut soft = Mat::zeros(0, 0);
        GumbelRelaxation::new(1e-4)
            .unwrap()
            .sample_into(&l, &rho, &mut soft);
        for k in 0..l.len() {
            let y = l.as_slice()[k] + noise_logit(rho.as_slice()[k]);
            if y.abs() >= 1e-2 {
                assert!((soft.as_slice()[k] - hard.as_slice()[k]).abs() < 1e-30);
            }
        }
    }

    #[test]
    fn discrete_samples_are_bernoulli_sigma_l() {
        // P(z = 1) = σ(l): compare the frequency with a 5-standard-error tolerance.
        let logits = [-3.0f32, -0.5, 0.0, 0.8, 2.5];
        let n = 40_000;
        let l = Mat::from_fn(n, logits.len(), |_, j| logits[j]);
        let rho = uniforms(n, logits.len(), 4);
        let mut z = Mat::zeros(0, 0);
        Discrete.sample_into(&l, &rho, &mut z);
        for (j, &lj) in logits.iter().enumerate() {
            let p = sigmoid(lj as f64);
            let freq = z.column(j).iter().map(|&v| v as f64).sum::<f64>() / n as f64;
            let se = (p * (1.0 - p) / n as f64).sqrt();
            assert!((freq - p).abs() < 5.0 * se, "l = {lj}: {freq} vs {p}");
        }
    }

    #[test]
    fn saturated_noise_stays_finite() {
        let l = Mat::from_row_slice(1, 4, &[0.0f32, 0.0, 80.0, -80.0]);
        let rho = Mat::from_row_slice(1, 4, &[0.0f32, 1.0, 0.0, 1.0]);
        let mut z = Mat::zeros(0, 0);
        GumbelRelaxation::new(1.0 / 7.0)
            .unwrap()
            .sample_into(&l, &rho, &mut z);
        assert!(z.iter().all(|v| v.is_finite() && (0.0..=1.0).contains(v)));
        assert!(z[(0, 0)] < 1e-30 && z[(0, 1)] == 1.0);
    }
}

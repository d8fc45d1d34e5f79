//! Overlapping exponential smoothing of binary units: the dVAE++ estimator (Vahdat et al. 2018;
//! docs/algorithms.md §4).

use gumbolt_core::numerics::sigmoid;
use gumbolt_core::{GradientEstimator, Mat, PathwiseEstimator, PathwiseGrad};
use serde::{Deserialize, Serialize};

use crate::error::{EstimatorError, Result};
use crate::spike_exp::{BetaOnly, check_beta, map_logits_noise, pathwise_grad};

/// Overlapping exponential smoothing with inverse temperature β (dVAE++; docs/algorithms.md §4):
/// `r(ζ|0) = β e^{−βζ}/(1 − e^{−β})`, `r(ζ|1) = r(1−ζ|0)` on `[0, 1]`, mixed as
/// `q(ζ) = (1−q) r(ζ|0) + q r(ζ|1)` with `q = σ(l)`.
///
/// The sample is the inverse of the mixture CDF
/// `F(ζ) = [(1−q)(1−e^{−βζ}) + q(e^{β(ζ−1)} − e^{−β})]/(1−e^{−β})`: with `y = e^{−βζ}`,
/// `(1−q) y² + B̃ y − q e^{−β} = 0`, `B̃ = ρ(1−e^{−β}) + q e^{−β} − (1−q)`,
/// `Δ = B̃² + 4q(1−q)e^{−β}`, and the stable root
/// `y = (−B̃ + √Δ)/(2(1−q))` if `B̃ < 0`, else `y = 2q e^{−β}/(B̃ + √Δ)`; `ζ = −log(y)/β`.
///
/// The backward pass is pathwise by the implicit function theorem (docs/algorithms.md §4, DVAE# §3.4):
/// `∂ζ/∂q = −(∂F/∂q)/r(ζ) = (F0(ζ) − F1(ζ))/r(ζ)`, `∂ζ/∂l = ∂ζ/∂q · q(1−q)`. `q` is not clipped
/// (the stable root is finite at `q ∈ {0, 1}`). All arithmetic is f64.
///
/// ```
/// use gumbolt_core::{GradientEstimator, Mat};
/// use gumbolt_estimators::OverlappingExp;
/// let s = OverlappingExp::new(10.0).unwrap();
/// let l = Mat::from_row_slice(1, 3, &[0.0f32, 0.0, 0.0]);
/// let rho = Mat::from_row_slice(1, 3, &[0.0f32, 0.5, 1.0]);
/// let mut zeta = Mat::zeros(1, 3);
/// s.sample_into(&l, &rho, &mut zeta);
/// assert!(zeta[(0, 0)].abs() < 1e-6);
/// assert!((zeta[(0, 1)] - 0.5).abs() < 1e-6); // symmetric at q = 1/2
/// assert!((zeta[(0, 2)] - 1.0).abs() < 1e-6);
/// assert!(OverlappingExp::new(f64::NAN).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "BetaOnly", into = "BetaOnly")]
pub struct OverlappingExp {
    beta: f64,
}

impl TryFrom<BetaOnly> for OverlappingExp {
    type Error = EstimatorError;
    fn try_from(b: BetaOnly) -> Result<Self> {
        OverlappingExp::new(b.beta)
    }
}

impl From<OverlappingExp> for BetaOnly {
    fn from(s: OverlappingExp) -> Self {
        BetaOnly { beta: s.beta }
    }
}

impl OverlappingExp {
    /// The smoothing with inverse temperature `beta` (the reference implementation's `run.py`: 10–14; GB τ = 1/10, 1/8).
    ///
    /// # Errors
    /// [`EstimatorError::InvalidBeta`] unless `0 < beta < ∞`.
    pub fn new(beta: f64) -> Result<Self> {
        check_beta(beta).map(|beta| Self { beta })
    }

    /// The inverse temperature β.
    pub fn beta(&self) -> f64 {
        self.beta
    }

    /// The mixture CDF `F(ζ; q)` (docs/algorithms.md §4), clamped to `[0, 1]` outside `[0, 1]`.
    pub fn cdf(&self, zeta: f64, q: f64) -> f64 {
        let b = self.beta;
        let zeta = zeta.clamp(0.0, 1.0);
        // 1 − e^{−βζ} = −expm1(−βζ); e^{β(ζ−1)} − e^{−β} = e^{−β} expm1(βζ).
        let f0 = -(-b * zeta).exp_m1();
        let f1 = (-b).exp() * (b * zeta).exp_m1();
        ((1.0 - q) * f0 + q * f1) / -(-b).exp_m1()
    }

    /// The mixture density `r(ζ; q) = (1−q) r(ζ|0) + q r(ζ|1)` on `[0, 1]` (0 outside).
    pub fn density(&self, zeta: f64, q: f64) -> f64 {
        if !(0.0..=1.0).contains(&zeta) {
            return 0.0;
        }
        let b = self.beta;
        b * ((1.0 - q) * (-b * zeta).exp() + q * (b * (zeta - 1.0)).exp()) / -(-b).exp_m1()
    }

    /// The inverse CDF at noise `rho` and on-probability `q` by the stable root (docs/algorithms.md §4).
    #[inline]
    pub fn inverse_cdf(&self, rho: f64, q: f64) -> f64 {
        let b = self.beta;
        let rho = rho.clamp(0.0, 1.0);
        let eb = (-b).exp();
        let bt = rho * -(-b).exp_m1() + q * eb - (1.0 - q);
        let sd = (bt * bt + 4.0 * q * (1.0 - q) * eb).sqrt();
        let y = if bt < 0.0 {
            (sd - bt) / (2.0 * (1.0 - q))
        } else {
            2.0 * q * eb / (bt + sd)
        };
        (-y.ln() / b).clamp(0.0, 1.0)
    }

    /// The sample `ζ(l, ρ)` in f64 (what [`GradientEstimator::sample_into`] rounds to f32).
    #[inline]
    pub fn sample_f64(&self, l: f64, rho: f64) -> f64 {
        self.inverse_cdf(rho, sigmoid(l))
    }

    /// `∂ζ/∂q = (F0(ζ) − F1(ζ))/r(ζ)` at the sample of `(q, ρ)` (the common `1 − e^{−β}`
    /// cancels).
    #[inline]
    pub fn dzeta_dq(&self, rho: f64, q: f64) -> f64 {
        let b = self.beta;
        let zeta = self.inverse_cdf(rho, q);
        let num = -(-b * zeta).exp_m1() - (-b).exp() * (b * zeta).exp_m1();
        let den = b * ((1.0 - q) * (-b * zeta).exp() + q * (b * (zeta - 1.0)).exp());
        num / den
    }

    /// The pathwise derivative `∂ζ/∂l = ∂ζ/∂q · σ(l)σ(−l)` at `(l, ρ)`, in f64.
    #[inline]
    pub fn dzeta_dlogit(&self, l: f64, rho: f64) -> f64 {
        let q = sigmoid(l);
        self.dzeta_dq(rho, q) * q * sigmoid(-l)
    }

    /// The logit of `ν1 = q(z=1 | ζ, x)`: `l + log r(ζ|1) − log r(ζ|0) = l + β(2ζ − 1)`, used in
    /// the dVAE++ KL term `−ν1ᵀ W μ2` (docs/algorithms.md §4). Its derivative is 1 in `l` and 2β in ζ.
    ///
    /// ```
    /// use gumbolt_estimators::OverlappingExp;
    /// let s = OverlappingExp::new(10.0).unwrap();
    /// assert_eq!(s.posterior_z1_logit(0.5, 0.5), 0.5);
    /// assert_eq!(s.posterior_z1_logit(0.0, 1.0), 10.0);
    /// ```
    #[inline]
    pub fn posterior_z1_logit(&self, l: f32, zeta: f32) -> f32 {
        l + self.beta as f32 * (2.0 * zeta - 1.0)
    }
}

impl GradientEstimator for OverlappingExp {
    /// `out = F⁻¹(ρ; σ(l))` elementwise (docs/algorithms.md §4), computed in f64.
    ///
    /// # Panics
    /// If `logits` and `noise` differ in shape.
    fn sample_into(&self, logits: &Mat, noise: &Mat, out: &mut Mat) {
        map_logits_noise(logits, noise, out, "OverlappingExp::sample_into", |l, r| {
            self.sample_f64(l, r)
        });
    }
}

impl PathwiseEstimator for OverlappingExp {
    /// `out = ∂loss/∂ζ ⊙ ∂ζ/∂l` with `∂ζ/∂l` from [`OverlappingExp::dzeta_dlogit`] at
    /// `(grad.logits, grad.noise)`.
    ///
    /// # Panics
    /// If shapes differ.
    fn logits_grad_into(&self, grad: PathwiseGrad<'_>, out: &mut Mat) {
        pathwise_grad(grad, out, "OverlappingExp::logits_grad_into", |l, r| {
            self.dzeta_dlogit(l, r)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spike_exp::tests::{ks_critical, ks_statistic, uniforms};
    use gumbolt_core::numerics::logit;

    #[test]
    fn invalid_beta_is_rejected() {
        for beta in [0.0, -1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let e = OverlappingExp::new(beta).unwrap_err();
            assert!(matches!(e, EstimatorError::InvalidBeta { .. }));
        }
        assert_eq!(OverlappingExp::new(12.0).unwrap().beta(), 12.0);
        let bad: std::result::Result<OverlappingExp, _> = BetaOnly { beta: 0.0 }.try_into();
        assert!(bad.is_err());
    }

    #[test]
    fn samples_follow_the_mixture_cdf() {
        let n = 20_000;
        for (seed, (q, beta)) in [(0.3, 5.0), (0.7, 10.0), (0.5, 40.0), (0.05, 12.0)]
            .into_iter()
            .enumerate()
        {
            let s = OverlappingExp::new(beta).unwrap();
            let l = Mat::from_element(n, 1, logit(q) as f32);
            let q = sigmoid(l[(0, 0)] as f64);
            let rho = uniforms(n, 1, 200 + seed as u64);
            let mut z = Mat::zeros(0, 0);
            s.sample_into(&l, &rho, &mut z);
            assert!(z.iter().all(|v| (0.0..=1.0).contains(v)));
            let d = ks_statistic(z.iter().map(|&v| v as f64).collect(), |x| s.cdf(x, q));
            eprintln!(
                "overlap-exp q={q:.3} β={beta}: KS D={d:.5} (n={n}, crit {:.5})",
                ks_critical(n)
            );
            assert!(d < ks_critical(n), "q {q} β {beta}: D = {d}");
        }
    }

    #[test]
    fn cdf_inverts_the_inverse_cdf_and_density_is_its_derivative() {
        for beta in [5.0, 10.0, 40.0] {
            let s = OverlappingExp::new(beta).unwrap();
            for q in [1e-6, 1e-3, 0.1, 0.5, 0.9, 0.999, 1.0 - 1e-6] {
                for k in 0..=200 {
                    let rho = k as f64 / 200.0;
                    let zeta = s.inverse_cdf(rho, q);
                    assert!((0.0..=1.0).contains(&zeta));
                    let f = s.cdf(zeta, q);
                    assert!((f - rho).abs() < 1e-6, "β {beta} q {q} ρ {rho}: F = {f}");
                }
                for k in 1..20 {
                    let zeta = k as f64 / 20.0;
                    let h = 1e-6;
                    let fd = (s.cdf(zeta + h, q) - s.cdf(zeta - h, q)) / (2.0 * h);
                    let r = s.density(zeta, q);
                    assert!((fd - r).abs() <= 1e-5 * (1.0 + r), "{fd} vs {r}");
                }
            }
        }
    }

    #[test]
    fn pathwise_gradient_matches_finite_differences() {
        for beta in [5.0, 10.0, 40.0] {
            let s = OverlappingExp::new(beta).unwrap();
            for l in [-6.0, -1.5, -0.3, 0.0, 0.7, 2.0, 6.0] {
                for k in 1..40 {
                    let rho = k as f64 / 40.0;
                    let a = s.dzeta_dlogit(l, rho);
                    // ζ(l) is a steep step where the mixture density is tiny (β = 40, q ≈ 1/2):
                    // scale the step with the slope. There ζ(ρ) itself has condition ~1/r(ζ)
                    // (~1e7), so f64 round-off alone limits the agreement to ~1e-6 relative.
                    let h = (1e-4 / a.abs()).min(1e-6);
                    let fd = (s.sample_f64(l + h, rho) - s.sample_f64(l - h, rho)) / (2.0 * h);
                    assert!(
                        (a - fd).abs() <= 1e-5 * (1.0 + a.abs()),
                        "β {beta} l {l} ρ {rho}: analytic {a} vs fd {fd}"
                    );
                }
            }
        }
    }

    #[test]
    fn backward_is_grad_sample_times_slope() {
        let s = OverlappingExp::new(10.0).unwrap();
        let l = Mat::from_fn(4, 6, |i, j| ((i * 6 + j) as f32 * 0.37).sin() * 2.0);
        let rho = uniforms(4, 6, 9);
        let c = Mat::from_fn(4, 6, |i, j| ((i + 3 * j) as f32 * 0.91).cos());
        let mut z = Mat::zeros(0, 0);
        s.sample_into(&l, &rho, &mut z);
        let mut dl = Mat::zeros(0, 0);
        s.logits_grad_into(
            PathwiseGrad {
                logits: &l,
                noise: &rho,
                sample: &z,
                grad_sample: &c,
            },
            &mut dl,
        );
        assert_eq!(dl.shape(), l.shape());
        for k in 0..l.len() {
            let (lv, r) = (l.as_slice()[k] as f64, rho.as_slice()[k] as f64);
            let want = c.as_slice()[k] as f64 * s.dzeta_dlogit(lv, r);
            assert!((dl.as_slice()[k] as f64 - want).abs() <= 1e-6 * (1.0 + want.abs()));
            assert!(dl.as_slice()[k].is_finite());
        }
    }

    #[test]
    fn z1_logit_is_l_plus_the_log_density_ratio() {
        let s = OverlappingExp::new(10.0).unwrap();
        for (l, zeta) in [(0.3f32, 0.1f32), (-1.0, 0.8), (2.0, 0.5)] {
            // log r(ζ|1) − log r(ζ|0) from the component densities (q = 1 and q = 0).
            let ratio = (s.density(zeta as f64, 1.0) / s.density(zeta as f64, 0.0)).ln();
            let want = l as f64 + ratio;
            assert!((s.posterior_z1_logit(l, zeta) as f64 - want).abs() < 1e-5);
        }
    }
}

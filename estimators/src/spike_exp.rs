//! Spike-and-exponential smoothing of binary units: the dVAE estimator (Rolfe 2016;
//! docs/algorithms.md §3).

use gumbolt_core::numerics::sigmoid;
use gumbolt_core::{GradientEstimator, Mat, PathwiseEstimator, PathwiseGrad};
use serde::{Deserialize, Serialize};

use crate::error::{EstimatorError, Result};
use crate::gumbel::ensure_shape;

/// `q = σ(l)` is clipped to `[Q_CLIP, 1 − Q_CLIP]` before the spike-and-exponential inverse CDF
/// (docs/algorithms.md §3; the reference implementation's `dist_util.py`, `Spike_and_Exp`).
pub const Q_CLIP: f64 = 1e-7;

/// Serialised form of the smoothings: only the inverse temperature β.
#[derive(Serialize, Deserialize)]
pub(crate) struct BetaOnly {
    pub(crate) beta: f64,
}

/// Checks `0 < β < ∞`. β is an inverse temperature (GB "τ = 1/5" is β = 5, docs/algorithms.md §3).
pub(crate) fn check_beta(beta: f64) -> Result<f64> {
    if beta > 0.0 && beta.is_finite() {
        Ok(beta)
    } else {
        Err(EstimatorError::InvalidBeta { beta })
    }
}

/// `out[k] = f(l[k], ρ[k])` elementwise in f64, stored as f32 (`out` reshaped to `logits`).
pub(crate) fn map_logits_noise(
    logits: &Mat,
    noise: &Mat,
    out: &mut Mat,
    what: &str,
    f: impl Fn(f64, f64) -> f64,
) {
    assert_eq!(
        logits.shape(),
        noise.shape(),
        "{what}: logits and noise differ in shape"
    );
    ensure_shape(out, logits.nrows(), logits.ncols());
    for ((o, &l), &r) in out
        .as_mut_slice()
        .iter_mut()
        .zip(logits.as_slice())
        .zip(noise.as_slice())
    {
        *o = f(l as f64, r as f64) as f32;
    }
}

/// `out = ∂loss/∂ζ ⊙ slope(l, ρ)` for a pathwise estimator.
pub(crate) fn pathwise_grad(
    grad: PathwiseGrad<'_>,
    out: &mut Mat,
    what: &str,
    slope: impl Fn(f64, f64) -> f64,
) {
    let g = grad.grad_sample;
    assert_eq!(
        g.shape(),
        grad.logits.shape(),
        "{what}: ∂loss/∂ζ and logits differ in shape"
    );
    assert_eq!(
        grad.noise.shape(),
        grad.logits.shape(),
        "{what}: logits and noise differ in shape"
    );
    ensure_shape(out, g.nrows(), g.ncols());
    for (((o, &dz), &l), &r) in out
        .as_mut_slice()
        .iter_mut()
        .zip(g.as_slice())
        .zip(grad.logits.as_slice())
        .zip(grad.noise.as_slice())
    {
        *o = (dz as f64 * slope(l as f64, r as f64)) as f32;
    }
}

/// Spike-and-exponential smoothing with inverse temperature β (dVAE, Rolfe 2016; docs/algorithms.md
/// §3): `r(ζ|z=0) = δ(ζ)`, `r(ζ|z=1) = β e^{βζ}/(e^β − 1)` on `[0, 1]`.
///
/// With `q = clip(σ(l), 1e-7, 1 − 1e-7)` and `ρ ~ U(0, 1)` the inverse CDF of the mixture
/// `(1−q) δ(ζ) + q r(ζ|1)` is
///
/// `ζ = 0` if `ρ ≤ 1 − q`, else `ζ = (1/β) log1p(expm1(β)(ρ + q − 1)/q)`.
///
/// The backward pass is pathwise (docs/algorithms.md §3): on the "on" branch, with `u = (ρ+q−1)/q`,
///
/// `∂ζ/∂l = ∂ζ/∂q · q(1−q) = (1−ρ)(1−q)/(βq) · (e^{β(1−ζ)} − e^{−βζ})`,
///
/// and zero on the spike branch and where `q` is clipped. Everything is computed in f64 from
/// `(l, ρ)`; the f32 sample is not used by the backward pass.
///
/// ```
/// use gumbolt_core::{GradientEstimator, Mat};
/// use gumbolt_estimators::SpikeAndExp;
/// let s = SpikeAndExp::new(5.0).unwrap();
/// let l = Mat::from_row_slice(1, 3, &[0.0f32, 0.0, 0.0]); // q = 1/2
/// let rho = Mat::from_row_slice(1, 3, &[0.3f32, 0.75, 1.0]);
/// let mut zeta = Mat::zeros(1, 3);
/// s.sample_into(&l, &rho, &mut zeta);
/// assert_eq!(zeta[(0, 0)], 0.0); // spike: ρ ≤ 1 − q
/// assert!((zeta[(0, 1)] - (1.0 + 5f32.exp_m1() / 2.0).ln() / 5.0).abs() < 1e-6);
/// assert!((zeta[(0, 2)] - 1.0).abs() < 1e-6);
/// assert!(SpikeAndExp::new(0.0).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "BetaOnly", into = "BetaOnly")]
pub struct SpikeAndExp {
    beta: f64,
}

impl TryFrom<BetaOnly> for SpikeAndExp {
    type Error = EstimatorError;
    fn try_from(b: BetaOnly) -> Result<Self> {
        SpikeAndExp::new(b.beta)
    }
}

impl From<SpikeAndExp> for BetaOnly {
    fn from(s: SpikeAndExp) -> Self {
        BetaOnly { beta: s.beta }
    }
}

impl SpikeAndExp {
    /// The smoothing with inverse temperature `beta` (the reference implementation's `run.py`: 4–5).
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

    /// `clip(σ(l), 1e-7, 1 − 1e-7)`.
    #[inline]
    pub fn q_of_logit(l: f64) -> f64 {
        sigmoid(l).clamp(Q_CLIP, 1.0 - Q_CLIP)
    }

    /// The inverse CDF at noise `rho` and on-probability `q` (docs/algorithms.md §3), in f64.
    #[inline]
    pub fn inverse_cdf(&self, rho: f64, q: f64) -> f64 {
        let rho = rho.clamp(0.0, 1.0);
        let off = 1.0 - q;
        if rho <= off {
            return 0.0;
        }
        let u = (rho - off) / q;
        ((self.beta.exp_m1() * u).ln_1p() / self.beta).clamp(0.0, 1.0)
    }

    /// The mixture CDF `F(ζ) = (1−q) + q·expm1(βζ)/expm1(β)` for `ζ ∈ [0, 1]` (0 below 0,
    /// 1 above 1).
    pub fn cdf(&self, zeta: f64, q: f64) -> f64 {
        if zeta < 0.0 {
            0.0
        } else if zeta >= 1.0 {
            1.0
        } else {
            (1.0 - q) + q * (self.beta * zeta).exp_m1() / self.beta.exp_m1()
        }
    }

    /// The sample `ζ(l, ρ)` in f64 (what [`GradientEstimator::sample_into`] rounds to f32).
    #[inline]
    pub fn sample_f64(&self, l: f64, rho: f64) -> f64 {
        self.inverse_cdf(rho, Self::q_of_logit(l))
    }

    /// The pathwise derivative `∂ζ/∂l` at `(l, ρ)` in f64: zero on the spike branch and where
    /// `σ(l)` is clipped.
    #[inline]
    pub fn dzeta_dlogit(&self, l: f64, rho: f64) -> f64 {
        let p = sigmoid(l);
        if !(Q_CLIP..=1.0 - Q_CLIP).contains(&p) {
            return 0.0;
        }
        let rho = rho.clamp(0.0, 1.0);
        let q = p;
        if rho <= 1.0 - q {
            return 0.0;
        }
        let b = self.beta;
        let zeta = self.inverse_cdf(rho, q);
        // ∂ζ/∂q = expm1(β)(1−ρ)/(β q² e^{βζ}); expm1(β) e^{−βζ} = e^{β(1−ζ)} − e^{−βζ}.
        let e = (b * (1.0 - zeta)).exp() - (-b * zeta).exp();
        (1.0 - rho) * sigmoid(-l) / (b * q) * e
    }
}

impl GradientEstimator for SpikeAndExp {
    /// `out = ζ(l, ρ)` elementwise (docs/algorithms.md §3 inverse CDF), computed in f64.
    ///
    /// # Panics
    /// If `logits` and `noise` differ in shape.
    fn sample_into(&self, logits: &Mat, noise: &Mat, out: &mut Mat) {
        map_logits_noise(logits, noise, out, "SpikeAndExp::sample_into", |l, r| {
            self.sample_f64(l, r)
        });
    }
}

impl PathwiseEstimator for SpikeAndExp {
    /// `out = ∂loss/∂ζ ⊙ ∂ζ/∂l` with `∂ζ/∂l` from [`SpikeAndExp::dzeta_dlogit`] at
    /// `(grad.logits, grad.noise)`.
    ///
    /// # Panics
    /// If shapes differ.
    fn logits_grad_into(&self, grad: PathwiseGrad<'_>, out: &mut Mat) {
        pathwise_grad(grad, out, "SpikeAndExp::logits_grad_into", |l, r| {
            self.dzeta_dlogit(l, r)
        });
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use gumbolt_core::numerics::logit;
    use gumbolt_core::rng::{fill_uniform, root_rng};

    /// Asymptotic Kolmogorov critical value at α = 1e-3: `sqrt(ln(2/α)/2)/sqrt(n)`.
    pub(crate) fn ks_critical(n: usize) -> f64 {
        ((2.0f64 / 1e-3).ln() / 2.0).sqrt() / (n as f64).sqrt()
    }

    /// The one-sample KS statistic of `xs` against `cdf`.
    pub(crate) fn ks_statistic(mut xs: Vec<f64>, cdf: impl Fn(f64) -> f64) -> f64 {
        xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let n = xs.len() as f64;
        xs.iter()
            .enumerate()
            .map(|(i, &x)| {
                let f = cdf(x);
                (f - i as f64 / n).max((i + 1) as f64 / n - f)
            })
            .fold(0.0, f64::max)
    }

    pub(crate) fn uniforms(rows: usize, cols: usize, seed: u64) -> Mat {
        let mut v = vec![0.0f32; rows * cols];
        fill_uniform(&mut root_rng(seed), &mut v);
        Mat::from_vec(rows, cols, v)
    }

    #[test]
    fn invalid_beta_is_rejected() {
        for beta in [0.0, -1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let e = SpikeAndExp::new(beta).unwrap_err();
            assert!(matches!(e, EstimatorError::InvalidBeta { .. }));
        }
        assert_eq!(SpikeAndExp::new(4.0).unwrap().beta(), 4.0);
        let bad: std::result::Result<SpikeAndExp, _> = BetaOnly { beta: -2.0 }.try_into();
        assert!(bad.is_err());
        let json = serde_json::to_string(&SpikeAndExp::new(5.0).unwrap()).unwrap();
        assert_eq!(json, r#"{"beta":5.0}"#);
        assert_eq!(
            serde_json::from_str::<SpikeAndExp>(&json).unwrap().beta(),
            5.0
        );
        assert!(serde_json::from_str::<SpikeAndExp>(r#"{"beta":-1.0}"#).is_err());
        assert!(serde_json::from_str::<crate::OverlappingExp>(r#"{"beta":0.0}"#).is_err());
    }

    #[test]
    fn samples_follow_the_spike_and_exponential_mixture() {
        let n = 20_000;
        let z_crit = 3.29; // two-sided normal quantile at α = 1e-3
        for (seed, (q, beta)) in [(0.3, 5.0), (0.7, 10.0), (0.5, 40.0), (0.9, 4.0)]
            .into_iter()
            .enumerate()
        {
            let s = SpikeAndExp::new(beta).unwrap();
            let l = Mat::from_element(n, 1, logit(q) as f32);
            let q = SpikeAndExp::q_of_logit(l[(0, 0)] as f64);
            let rho = uniforms(n, 1, 100 + seed as u64);
            let mut z = Mat::zeros(0, 0);
            s.sample_into(&l, &rho, &mut z);
            assert!(z.iter().all(|v| (0.0..=1.0).contains(v)));
            let spikes = z.iter().filter(|&&v| v == 0.0).count();
            let se = (q * (1.0 - q) / n as f64).sqrt();
            let freq = spikes as f64 / n as f64;
            assert!(
                (freq - (1.0 - q)).abs() < z_crit * se,
                "{freq} vs {}",
                1.0 - q
            );
            let cont: Vec<f64> = z.iter().filter(|&&v| v > 0.0).map(|&v| v as f64).collect();
            let m = cont.len();
            let d = ks_statistic(cont, |x| (beta * x).exp_m1() / beta.exp_m1());
            eprintln!(
                "spike-exp q={q:.3} β={beta}: spike freq {freq:.4} (want {:.4}), KS D={d:.5} (n={m}, crit {:.5})",
                1.0 - q,
                ks_critical(m)
            );
            assert!(d < ks_critical(m), "q {q} β {beta}: D = {d}");
        }
    }

    #[test]
    fn cdf_inverts_the_inverse_cdf() {
        for beta in [5.0, 10.0, 40.0] {
            let s = SpikeAndExp::new(beta).unwrap();
            for q in [1e-6, 1e-3, 0.1, 0.5, 0.9, 0.999, 1.0 - 1e-6] {
                for k in 0..=200 {
                    let rho = k as f64 / 200.0;
                    let zeta = s.inverse_cdf(rho, q);
                    if rho <= 1.0 - q {
                        assert_eq!(zeta, 0.0);
                    } else {
                        let f = s.cdf(zeta, q);
                        assert!((f - rho).abs() < 1e-6, "β {beta} q {q} ρ {rho}: F = {f}");
                    }
                }
            }
        }
    }

    #[test]
    fn pathwise_gradient_matches_finite_differences() {
        for beta in [4.0, 5.0, 10.0, 40.0] {
            let s = SpikeAndExp::new(beta).unwrap();
            for l in [-4.0, -1.5, -0.3, 0.0, 0.7, 2.0, 5.0] {
                let q = sigmoid(l);
                for k in 1..40 {
                    let rho = k as f64 / 40.0;
                    if (rho - (1.0 - q)).abs() < 1e-3 {
                        continue;
                    }
                    let h = 1e-6;
                    let fd = (s.sample_f64(l + h, rho) - s.sample_f64(l - h, rho)) / (2.0 * h);
                    let a = s.dzeta_dlogit(l, rho);
                    assert!(
                        (a - fd).abs() <= 1e-6 * (1.0 + a.abs()),
                        "β {beta} l {l} ρ {rho}: analytic {a} vs fd {fd}"
                    );
                }
            }
            // Clipped q: zero gradient.
            assert_eq!(s.dzeta_dlogit(20.0, 0.99), 0.0);
            assert_eq!(s.dzeta_dlogit(-20.0, 0.999_999_99), 0.0);
        }
    }

    #[test]
    fn backward_is_grad_sample_times_slope() {
        let s = SpikeAndExp::new(5.0).unwrap();
        let l = Mat::from_fn(4, 6, |i, j| ((i * 6 + j) as f32 * 0.37).sin() * 2.0);
        let rho = uniforms(4, 6, 7);
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
        let mut zeros = 0;
        for k in 0..l.len() {
            let (lv, r) = (l.as_slice()[k] as f64, rho.as_slice()[k] as f64);
            let want = c.as_slice()[k] as f64 * s.dzeta_dlogit(lv, r);
            assert!((dl.as_slice()[k] as f64 - want).abs() <= 1e-6 * (1.0 + want.abs()));
            if z.as_slice()[k] == 0.0 {
                assert_eq!(dl.as_slice()[k], 0.0);
                zeros += 1;
            }
        }
        assert!(zeros > 0 && zeros < l.len());
    }
}

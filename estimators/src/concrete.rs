//! The binary Concrete (relaxed Bernoulli) density of Maddison et al. (2017): the true density
//! `q(ζ | l, τ)` of the Gumbel relaxation `ζ = σ((l + logit ρ)/τ)`, `ρ ~ U(0, 1)` (GB Eq. 2).
//!
//! GumBolt's relaxed objective `L̃_k` and its lower bound `Ľ_k` (GB Eq. 8) divide by this density;
//! the trained objective `F_k` (GB Eq. 9) replaces it with the Bernoulli proxy `q̌` of
//! [`crate::BernoulliPosterior`]. The density is needed to evaluate Eq. 8 itself (and so to check
//! that it is a bound); training does not use it.
//!
//! With `X = l + logit ρ` (a logistic variable of location `l`) and `ζ = σ(X/τ)`:
//!
//! - density `q(ζ) = τ e^{l} ζ^{−τ−1}(1−ζ)^{−τ−1} / (e^{l} ζ^{−τ} + (1−ζ)^{−τ})²`;
//! - CDF `F(ζ) = P(X ≤ τ·logit ζ) = σ(τ·logit(ζ) − l)`.
//!
//! The log-density is computed from the change of variables `ζ ↦ u = τ·logit(ζ) − l` (a
//! standard logistic variable, density `σ(u)σ(−u)`, and `du/dζ = τ/(ζ(1−ζ))`):
//!
//! `log q(ζ) = log τ − log ζ − log(1 − ζ) + log σ(u) + log σ(−u)`,
//!
//! and, for samples, in terms of `t = logit ζ` (the pre-sigmoid value `(l + logit ρ)/τ`), which
//! stays finite where `ζ = σ(t)` rounds to exactly 0 or 1 ([`BinaryConcrete::log_density_at_logit`]).

use gumbolt_core::numerics::{log_sigmoid, sigmoid};

use crate::error::{EstimatorError, Result};

/// One binary Concrete (relaxed Bernoulli) variable with location (logit) `l` and temperature
/// `τ > 0` (Maddison et al. 2017; GB Eq. 2): the law of `ζ = σ((l + logit ρ)/τ)`, `ρ ~ U(0, 1)`.
///
/// ```
/// use gumbolt_estimators::BinaryConcrete;
/// let q = BinaryConcrete::new(0.8, 0.5).unwrap();
/// // Closed form: τ e^l ζ^{−τ−1}(1−ζ)^{−τ−1} / (e^l ζ^{−τ} + (1−ζ)^{−τ})².
/// let (l, tau, z) = (0.8f64, 0.5f64, 0.3f64);
/// let direct = tau * l.exp() * z.powf(-tau - 1.0) * (1.0 - z).powf(-tau - 1.0)
///     / (l.exp() * z.powf(-tau) + (1.0 - z).powf(-tau)).powi(2);
/// assert!((q.log_density(z) - direct.ln()).abs() < 1e-12);
/// // CDF σ(τ·logit ζ − l): the median of ζ is σ(l/τ).
/// assert!((q.cdf(1.0 / (1.0 + (-0.8f64 / 0.5).exp())) - 0.5).abs() < 1e-12);
/// // The same density at t = logit ζ, finite where σ(t) rounds to 1.
/// assert!((q.log_density_at_logit((z / (1.0 - z)).ln()) - direct.ln()).abs() < 1e-12);
/// assert!(q.log_density_at_logit(80.0).is_finite());
/// assert!(BinaryConcrete::new(0.0, 0.0).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BinaryConcrete {
    logit: f64,
    tau: f64,
}

impl BinaryConcrete {
    /// The relaxed Bernoulli with location `logit` (`P(ζ > 1/2) = σ(logit)`) and temperature `tau`.
    ///
    /// # Errors
    /// [`EstimatorError::InvalidTemperature`] unless `0 < tau < ∞`;
    /// [`EstimatorError::InvalidLogit`] if `logit` is not finite.
    pub fn new(logit: f64, tau: f64) -> Result<Self> {
        if !(tau > 0.0 && tau.is_finite()) {
            return Err(EstimatorError::InvalidTemperature { tau });
        }
        if !logit.is_finite() {
            return Err(EstimatorError::InvalidLogit { logit });
        }
        Ok(Self { logit, tau })
    }

    /// The location `l`.
    pub fn logit(&self) -> f64 {
        self.logit
    }

    /// The temperature `τ`.
    pub fn tau(&self) -> f64 {
        self.tau
    }

    /// `log q(ζ | l, τ)` for `ζ ∈ (0, 1)` (`−∞` outside; at `ζ ∈ {0, 1}` the density is 0 for
    /// `τ > 1`, infinite for `τ < 1`, and this returns the limit).
    pub fn log_density(&self, zeta: f64) -> f64 {
        if !(0.0..=1.0).contains(&zeta) {
            return f64::NEG_INFINITY;
        }
        let (log_z, log_1mz) = (zeta.ln(), (-zeta).ln_1p());
        if zeta == 0.0 || zeta == 1.0 {
            // u → ∓∞: log σ(u) + log σ(−u) ≈ −|u| = −τ|logit ζ| (± l); the power of ζ decides.
            return match self.tau.partial_cmp(&1.0) {
                Some(std::cmp::Ordering::Less) => f64::INFINITY,
                Some(std::cmp::Ordering::Greater) => f64::NEG_INFINITY,
                _ => {
                    // τ = 1: q(ζ) = e^{l}/(e^{l}(1 − ζ) + ζ)², finite at the ends.
                    self.logit - 2.0 * (self.logit.exp() * (1.0 - zeta) + zeta).ln()
                }
            };
        }
        let u = self.tau * (log_z - log_1mz) - self.logit;
        self.tau.ln() - log_z - log_1mz + log_sigmoid(u) + log_sigmoid(-u)
    }

    /// `log q(ζ | l, τ)` at `ζ = σ(t)`, given `t = logit ζ`: the form to use on samples
    /// `t = (l + logit ρ)/τ`, exact even where `σ(t)` rounds to 0 or 1 in floating point.
    ///
    /// `log q = log τ − log σ(t) − log σ(−t) + log σ(τt − l) + log σ(l − τt)`.
    pub fn log_density_at_logit(&self, t: f64) -> f64 {
        let u = self.tau * t - self.logit;
        self.tau.ln() - log_sigmoid(t) - log_sigmoid(-t) + log_sigmoid(u) + log_sigmoid(-u)
    }

    /// The CDF `F(ζ) = P(σ((l + logit ρ)/τ) ≤ ζ) = σ(τ·logit(ζ) − l)` (0 below 0, 1 above 1).
    pub fn cdf(&self, zeta: f64) -> f64 {
        if zeta <= 0.0 {
            0.0
        } else if zeta >= 1.0 {
            1.0
        } else {
            sigmoid(self.tau * (zeta.ln() - (-zeta).ln_1p()) - self.logit)
        }
    }

    /// The reparameterised sample in logit space, `t = (l + logit ρ)/τ` (so `ζ = σ(t)`), in f64
    /// and without clamping ρ: the exact transform whose law is this density. `rho` must be in
    /// `(0, 1)`.
    pub fn sample_logit(&self, rho: f64) -> f64 {
        (self.logit + rho.ln() - (-rho).ln_1p()) / self.tau
    }
}

/// `Σ_i log q(ζ_i | l_i, τ)` for a factorial Concrete posterior over `n` units, with every
/// `ζ_i = σ(t_i)` given by its logit `t_i` ([`BinaryConcrete::log_density_at_logit`]): the
/// `log q_φ(ζ|x)` of GumBolt's relaxed objective `L̃_k` and of its bound `Ľ_k` (GB Eq. 8).
///
/// ```
/// use gumbolt_estimators::concrete::{BinaryConcrete, factorial_log_density_at_logits};
/// let (l, t) = ([0.5, -1.0], [2.0, -3.0]);
/// let sum = factorial_log_density_at_logits(&l, 0.5, &t);
/// let each: f64 = (0..2)
///     .map(|i| BinaryConcrete::new(l[i], 0.5).unwrap().log_density_at_logit(t[i]))
///     .sum();
/// assert!((sum - each).abs() < 1e-14);
/// ```
///
/// # Panics
/// If `logits` and `t` differ in length, or `tau` is not positive and finite.
pub fn factorial_log_density_at_logits(logits: &[f64], tau: f64, t: &[f64]) -> f64 {
    assert_eq!(logits.len(), t.len(), "one logit per unit");
    assert!(
        tau > 0.0 && tau.is_finite(),
        "temperature must be in (0, ∞)"
    );
    let log_tau = tau.ln();
    logits
        .iter()
        .zip(t)
        .map(|(&l, &t)| {
            let u = tau * t - l;
            log_tau - log_sigmoid(t) - log_sigmoid(-t) + log_sigmoid(u) + log_sigmoid(-u)
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spike_exp::tests::{ks_critical, uniforms};
    use crate::{GumbelRelaxation, NOISE_CLAMP};
    use gumbolt_core::{GradientEstimator, Mat};

    const CASES: [(f64, f64); 6] = [
        (0.0, 1.0),
        (0.8, 0.5),
        (-1.5, 1.0 / 7.0),
        (2.0, 2.0),
        (-0.3, 0.25),
        (3.0, 1.0 / 7.0),
    ];

    /// Gauss–Legendre nodes and weights on `[−1, 1]` (Newton on the Legendre recurrence).
    fn gauss_legendre(m: usize) -> (Vec<f64>, Vec<f64>) {
        let (mut xs, mut ws) = (vec![0.0; m], vec![0.0; m]);
        for k in 0..m {
            let mut x = (std::f64::consts::PI * (k as f64 + 0.75) / (m as f64 + 0.5)).cos();
            let mut d = 0.0;
            for _ in 0..100 {
                let (mut p0, mut p1) = (1.0, x);
                for j in 1..m {
                    let jf = j as f64;
                    let p2 = ((2.0 * jf + 1.0) * x * p1 - jf * p0) / (jf + 1.0);
                    p0 = p1;
                    p1 = p2;
                }
                d = m as f64 * (x * p1 - p0) / (x * x - 1.0);
                let dx = p1 / d;
                x -= dx;
                if dx.abs() < 1e-15 {
                    break;
                }
            }
            xs[k] = x;
            ws[k] = 2.0 / ((1.0 - x * x) * d * d);
        }
        (xs, ws)
    }

    /// `∫_0^1 q(ζ) dζ` by Gauss–Legendre in ζ itself, on geometrically graded panels
    /// `[2^{−j−1}, 2^{−j}]`, `j = 1..1000`, where the endpoint singularity `ζ^{τ−1}` is resolved.
    /// The half `[1/2, 1)` is integrated as `[0, 1/2]` of the mirror density
    /// `q(1 − ζ | l) = q(ζ | −l)` (checked in [`density_is_symmetric`]), since `1 − ζ` is not
    /// representable near 1. Returns the mass and the mass left below `2^{−1001}` (from the CDF).
    fn integral_by_quadrature(q: &BinaryConcrete) -> (f64, f64) {
        let (xs, ws) = gauss_legendre(32);
        let mut mass = 0.0;
        let mut tails = 0.0;
        for l in [q.logit(), -q.logit()] {
            let half = BinaryConcrete::new(l, q.tau()).unwrap();
            for j in 1..=1000 {
                let (lo, hi) = (0.5f64.powi(j + 1), 0.5f64.powi(j));
                for (&x, &w) in xs.iter().zip(&ws) {
                    let z = lo + 0.5 * (hi - lo) * (x + 1.0);
                    mass += 0.5 * (hi - lo) * w * half.log_density(z).exp();
                }
            }
            tails += half.cdf(0.5f64.powi(1001));
        }
        (mass, tails)
    }

    #[test]
    fn density_is_symmetric() {
        for (l, tau) in CASES {
            let (q, mirror) = (
                BinaryConcrete::new(l, tau).unwrap(),
                BinaryConcrete::new(-l, tau).unwrap(),
            );
            for z in [0.01f64, 0.25, 0.5, 0.6, 0.9] {
                let (a, b) = (q.log_density(1.0 - z), mirror.log_density(z));
                assert!(
                    (a - b).abs() < 1e-12 * (1.0 + a.abs()),
                    "l={l} τ={tau} ζ={z}"
                );
                assert!((q.cdf(1.0 - z) - (1.0 - mirror.cdf(z))).abs() < 1e-14);
            }
        }
    }

    #[test]
    fn density_integrates_to_one() {
        for (l, tau) in CASES {
            let q = BinaryConcrete::new(l, tau).unwrap();
            let (mass, tails) = integral_by_quadrature(&q);
            assert!(tails < 1e-30, "l={l} τ={tau}: tails {tails}");
            assert!((mass - 1.0).abs() < 1e-10, "l={l} τ={tau}: ∫q = {mass}");
        }
    }

    /// The density is the derivative of the CDF (central differences), so the two formulas
    /// agree, and the ζ-space and logit-space forms agree.
    #[test]
    fn density_is_the_derivative_of_the_cdf() {
        for (l, tau) in CASES {
            let q = BinaryConcrete::new(l, tau).unwrap();
            for z in [0.01f64, 0.1, 0.3, 0.5, 0.77, 0.95, 0.999] {
                let h = 1e-4 * z.min(1.0 - z);
                let fd = (q.cdf(z + h) - q.cdf(z - h)) / (2.0 * h);
                let dens = q.log_density(z).exp();
                assert!(
                    ((fd - dens) / dens).abs() < 1e-6,
                    "l={l} τ={tau} ζ={z}: {fd} vs {dens}"
                );
                let t = z.ln() - (-z).ln_1p();
                assert!((q.log_density_at_logit(t) - q.log_density(z)).abs() < 1e-10);
            }
            assert_eq!(q.cdf(0.0), 0.0);
            assert_eq!(q.cdf(1.0), 1.0);
            assert_eq!(q.log_density(-0.1), f64::NEG_INFINITY);
        }
    }

    #[test]
    fn log_density_is_stable_in_the_tails() {
        let q = BinaryConcrete::new(1.0, 1.0 / 7.0).unwrap();
        let mirror = BinaryConcrete::new(-1.0, 1.0 / 7.0).unwrap();
        for t in [-100.0f64, -30.0, 30.0, 100.0] {
            // Where ζ = σ(t) (or, for t > 0, 1 − ζ = σ(−t) through the mirror density
            // q(1 − ζ | l) = q(ζ | −l)) is representable, the ζ-space formula agrees.
            let (a, b) = if t < 0.0 {
                (q.log_density_at_logit(t), q.log_density(sigmoid(t)))
            } else {
                (q.log_density_at_logit(t), mirror.log_density(sigmoid(-t)))
            };
            assert!((a - b).abs() < 1e-9 * (1.0 + a.abs()), "t={t}: {a} vs {b}");
        }
        for t in [-700.0, -400.0, 400.0, 700.0] {
            let v = q.log_density_at_logit(t);
            assert!(v.is_finite(), "t={t}: {v}");
            // For |t| large: log q ≈ log τ + |t| − τ|t| ± l (a power law in ζ or 1 − ζ).
            let want = (1.0f64 / 7.0).ln() + (1.0 - 1.0 / 7.0) * t.abs() + t.signum() * 1.0;
            assert!(
                (v - want).abs() < 1e-9 * (1.0 + t.abs()),
                "t={t}: {v} vs {want}"
            );
        }
        let one = BinaryConcrete::new(0.4, 1.0).unwrap();
        let at_end = one.log_density(1.0);
        assert!((at_end - 0.4).abs() < 1e-15, "{at_end}");
        assert!((at_end - one.log_density(1.0 - 1e-7)).abs() < 1e-6);
        let at_start = one.log_density(0.0);
        assert!((at_start + 0.4).abs() < 1e-15, "{at_start}");
        assert!((at_start - one.log_density(1e-7)).abs() < 1e-6);
    }

    #[test]
    fn invalid_parameters_are_rejected() {
        for tau in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                BinaryConcrete::new(0.0, tau),
                Err(EstimatorError::InvalidTemperature { .. })
            ));
        }
        for l in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert!(matches!(
                BinaryConcrete::new(l, 1.0),
                Err(EstimatorError::InvalidLogit { .. })
            ));
        }
    }

    /// The KS statistic of samples censored to `[LO, HI]`: floating point rounds ζ near 1 to
    /// exactly 1 (f32: `ζ > 1 − 6e-8`; f64: `t > 37`), so the clamped variable `min(max(ζ, LO),
    /// HI)` is compared with its own CDF, which has atoms `F(LO)` at `LO` and `1 − F(HI)` at `HI`
    /// (the left limits are used at the atoms). For a law with atoms the continuous critical value
    /// is conservative.
    fn ks_censored(xs: &[f64], cdf: impl Fn(f64) -> f64) -> f64 {
        const LO: f64 = 1e-30;
        const HI: f64 = 1.0 - 1e-4;
        let mut xs: Vec<f64> = xs.iter().map(|&x| x.clamp(LO, HI)).collect();
        xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let n = xs.len() as f64;
        xs.iter()
            .enumerate()
            .map(|(i, &x)| {
                let at = if x == HI { 1.0 } else { cdf(x) };
                let left = if x == LO { 0.0 } else { cdf(x) };
                ((i + 1) as f64 / n - at).max(left - i as f64 / n)
            })
            .fold(0.0, f64::max)
    }

    /// Samples of the library's f32 Gumbel relaxation (GB Eq. 2) follow the Concrete CDF
    /// (one-sample Kolmogorov–Smirnov, α = 1e-3, 20 000 samples each, fixed seeds; censored to
    /// `[1e-30, 1 − 1e-4]` where f32 resolves ζ, see `ks_censored`). The noise clamp at `1e-6`
    /// moves at most `2e-6` of probability, far below the critical value.
    #[test]
    fn gumbel_relaxation_samples_pass_ks_against_the_cdf() {
        let n = 20_000;
        assert!(2.0 * NOISE_CLAMP as f64 * 100.0 < ks_critical(n));
        for (seed, (l, tau)) in CASES.into_iter().enumerate() {
            let q = BinaryConcrete::new(l, tau).unwrap();
            let relax = GumbelRelaxation::new(tau).unwrap();
            let logits = Mat::from_element(n, 1, l as f32);
            let rho = uniforms(n, 1, 500 + seed as u64);
            let mut zeta = Mat::zeros(0, 0);
            relax.sample_into(&logits, &rho, &mut zeta);
            let xs: Vec<f64> = zeta.iter().map(|&v| v as f64).collect();
            let d = ks_censored(&xs, |z| q.cdf(z));
            assert!(d < ks_critical(n), "l={l} τ={tau}: D = {d}");
            // The f64 transform has the same law.
            let ts: Vec<f64> = rho.iter().map(|&r| q.sample_logit(r as f64)).collect();
            let zs: Vec<f64> = ts.iter().map(|&t| sigmoid(t)).collect();
            let d64 = ks_censored(&zs, |z| q.cdf(z));
            assert!(d64 < ks_critical(n), "l={l} τ={tau}: f64 D = {d64}");
        }
    }

    /// Power of the KS check: samples at a different temperature or location are rejected.
    #[test]
    fn ks_rejects_the_wrong_temperature_or_location() {
        let n = 20_000;
        let rho = uniforms(n, 1, 9);
        let sample = |l: f64, tau: f64| -> Vec<f64> {
            let mut zeta = Mat::zeros(0, 0);
            GumbelRelaxation::new(tau).unwrap().sample_into(
                &Mat::from_element(n, 1, l as f32),
                &rho,
                &mut zeta,
            );
            zeta.iter().map(|&v| v as f64).collect()
        };
        let q = BinaryConcrete::new(0.5, 0.5).unwrap();
        assert!(ks_censored(&sample(0.5, 0.5), |z| q.cdf(z)) < ks_critical(n));
        assert!(ks_censored(&sample(0.5, 0.6), |z| q.cdf(z)) > ks_critical(n));
        assert!(ks_censored(&sample(0.6, 0.5), |z| q.cdf(z)) > ks_critical(n));
    }
}

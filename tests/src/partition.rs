//! The relaxed partition function `Z̃ = ∫_{[0,1]^n} e^{−E(ζ)} dζ` of GB Theorem 2, computed
//! accurately (Gauss–Legendre quadrature, docs/algorithms.md §8 T2.3) or by Monte Carlo (T2.2).

use crate::poly::Multilinear;
use crate::quadrature::Rule;
use gumbolt_core::numerics::log_mean_exp;
use gumbolt_core::rng::uniform_f64;
use nalgebra::DMatrix;
use rand::Rng;

/// `φ(c) = log((e^c − 1)/c) = log ∫_0^1 e^{c t} dt`, in the stable form of docs/algorithms.md §8 T2.3:
/// `c/2 + c²/24` for `|c| < 1e-4`, `c + log(−expm1(−c)) − log c` for `c > 0`, and
/// `log(−expm1(c)) − log(−c)` for `c < 0`.
///
/// ```
/// use gumbolt_tests::partition::phi;
/// assert!((phi(1.0) - (1f64.exp() - 1.0).ln()).abs() < 1e-15);
/// assert_eq!(phi(0.0), 0.0);
/// assert!((phi(-800.0) + 800f64.ln()).abs() < 1e-12); // no overflow or cancellation
/// ```
pub fn phi(c: f64) -> f64 {
    if c.abs() < 1e-4 {
        c / 2.0 + c * c / 24.0
    } else if c > 0.0 {
        c + (-(-c).exp_m1()).ln() - c.ln()
    } else {
        (-c.exp_m1()).ln() - (-c).ln()
    }
}

/// `log Z̃` by the full tensor-product rule (which must be on `[0,1]`): `m^n` energy
/// evaluations (docs/algorithms.md §8 T2.3, general polynomial with small `n`).
pub fn log_z_tilde_tensor<M: Multilinear + ?Sized>(m: &M, rule: &Rule) -> f64 {
    rule.log_integral_cube(m.num_units(), |z| -m.energy(z))
}

/// `log Z̃` with the last coordinate integrated analytically and the rest by the tensor rule.
///
/// `E` is affine in `ζ_n`: `E = A + ζ_n g_n` with `A = E(ζ_n = 0)`, so
/// `∫_0^1 e^{−A − g_n t} dt = e^{−A + φ(−g_n)}`. This is an independent cross-check of
/// [`log_z_tilde_tensor`] (and `m` times cheaper). For `n = 0` it is `−E(∅)`.
pub fn log_z_tilde_last_analytic<M: Multilinear + ?Sized>(m: &M, rule: &Rule) -> f64 {
    let n = m.num_units();
    if n == 0 {
        return -m.energy(&[]);
    }
    let mut full = vec![0.0; n];
    rule.log_integral_cube(n - 1, |z| {
        full[..n - 1].copy_from_slice(z);
        full[n - 1] = 0.0;
        let a = m.energy(&full);
        let g = m.gap(&full, n - 1);
        -a + phi(-g)
    })
}

/// `log Z̃` of an RBM with `−E = aᵀζ1 + bᵀζ2 + ζ1ᵀWζ2` (GB Eq. 4, docs/algorithms.md §1; `W` is
/// `n1 × n2`) by quadrature over `ζ1` only, with `ζ2` integrated analytically:
/// `log Z̃ = log ∫ exp(aᵀζ1 + Σ_j φ(b_j + (Wᵀζ1)_j)) dζ1` (docs/algorithms.md §8 T2.3).
/// `m^{n1}` evaluations, each `O(n1·n2)`.
pub fn rbm_log_z_tilde(a: &[f64], b: &[f64], w: &DMatrix<f64>, rule: &Rule) -> f64 {
    let (n1, n2) = (a.len(), b.len());
    assert_eq!(w.shape(), (n1, n2), "rbm_log_z_tilde: W must be n1 × n2");
    rule.log_integral_cube(n1, |z1| {
        let lin: f64 = a.iter().zip(z1).map(|(ai, zi)| ai * zi).sum();
        let free: f64 = (0..n2)
            .map(|j| {
                let c = b[j] + (0..n1).map(|i| w[(i, j)] * z1[i]).sum::<f64>();
                phi(c)
            })
            .sum();
        lin + free
    })
}

/// A Monte-Carlo estimate of `log Z̃ = log E_{ζ∼U[0,1]^n}[e^{−E(ζ)}]` (docs/algorithms.md §8 T2.2).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct McEstimate {
    /// `logmeanexp_s(−E(ζ_s))`.
    pub log_z_tilde: f64,
    /// `max_s(−E(ζ_s))`; every term is `≤ −E_min`, so this is the deterministic witness
    /// `logmeanexp ≤ max ≤ −E_min` of Theorem 2.
    pub max_neg_energy: f64,
    /// Delta-method standard error of `log_z_tilde`: `sd(e^{−E})/(√S · mean(e^{−E}))`.
    pub std_err: f64,
}

/// Draws `samples` points `ζ_s ∼ U[0,1]^n` and summarises `−E(ζ_s)`.
pub fn monte_carlo_log_z_tilde<M: Multilinear + ?Sized, R: Rng + ?Sized>(
    m: &M,
    rng: &mut R,
    samples: usize,
) -> McEstimate {
    assert!(samples >= 2);
    let n = m.num_units();
    let mut z = vec![0.0; n];
    let neg_e: Vec<f64> = (0..samples)
        .map(|_| {
            z.iter_mut().for_each(|v| *v = uniform_f64(rng));
            -m.energy(&z)
        })
        .collect();
    let max = neg_e.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    // Scaled weights w_s = e^{−E_s − max} ∈ (0, 1].
    let w: Vec<f64> = neg_e.iter().map(|&x| (x - max).exp()).collect();
    let s = samples as f64;
    let mean = w.iter().sum::<f64>() / s;
    let var = w.iter().map(|&x| (x - mean).powi(2)).sum::<f64>() / (s - 1.0);
    McEstimate {
        log_z_tilde: log_mean_exp(&neg_e),
        max_neg_energy: max,
        std_err: (var / s).sqrt() / mean,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::poly::PolySpec;
    use crate::quadrature::gauss_legendre_unit;

    #[test]
    fn phi_branches_are_continuous_and_match_the_definition() {
        for &c in &[-30.0f64, -3.0, -0.5, -1e-3, 1e-3, 0.5, 3.0, 30.0] {
            let direct = (c.exp_m1() / c).ln();
            assert!(
                (phi(c) - direct).abs() < 1e-14 * (1.0 + direct.abs()),
                "c={c}"
            );
        }
        for &c in &[1e-4f64, -1e-4] {
            let below = phi(c * (1.0 - 1e-12));
            let above = phi(c * (1.0 + 1e-12));
            let direct = (c.exp_m1() / c).ln();
            assert!(
                (below - direct).abs() < 1e-15 && (above - direct).abs() < 1e-15,
                "c={c}"
            );
        }
        assert!((phi(700.0) - (700.0 - 700f64.ln())).abs() < 1e-12);
    }

    #[test]
    fn analytic_last_axis_matches_full_tensor() {
        let p = PolySpec::from_terms(
            3,
            [
                (vec![0], 1.3),
                (vec![1, 2], -2.1),
                (vec![0, 1, 2], 0.7),
                (vec![2], 0.4),
            ],
        );
        let r = gauss_legendre_unit(24);
        let full = log_z_tilde_tensor(&p, &r);
        let part = log_z_tilde_last_analytic(&p, &r);
        assert!((full - part).abs() < 1e-13, "{full} vs {part}");
    }
}

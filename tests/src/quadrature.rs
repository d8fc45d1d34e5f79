//! Gauss–Legendre quadrature (nodes by Newton iteration on Legendre polynomials) and tensor
//! products of it over the unit cube `[0,1]^n`, in log space.
//!
//! The relaxed partition function `Z̃ = ∫_{[0,1]^n} e^{−E(ζ)} dζ` (GB Theorem 2) is an integral
//! of the exponential of a multilinear polynomial: smooth and entire, so Gauss–Legendre
//! converges spectrally (an `m`-node rule is exact for polynomials of degree `≤ 2m − 1`).

use gumbolt_core::numerics::LogSumExp;
use std::f64::consts::PI;

/// A quadrature rule `∫ f ≈ Σ_k w_k f(x_k)` on some interval.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Nodes `x_k`, ascending.
    pub nodes: Vec<f64>,
    /// Weights `w_k` (all positive for Gauss–Legendre).
    pub weights: Vec<f64>,
}

/// `(P_m(x), P_m'(x))` by the three-term recurrence
/// `(k+1) P_{k+1} = (2k+1) x P_k − k P_{k−1}` and `P_m' = m (x P_m − P_{m−1}) / (x² − 1)`
/// (valid for `|x| < 1`).
pub fn legendre_and_derivative(m: usize, x: f64) -> (f64, f64) {
    if m == 0 {
        return (1.0, 0.0);
    }
    let (mut p_prev, mut p) = (1.0, x);
    for k in 1..m {
        let kf = k as f64;
        let p_next = ((2.0 * kf + 1.0) * x * p - kf * p_prev) / (kf + 1.0);
        p_prev = p;
        p = p_next;
    }
    let d = m as f64 * (x * p - p_prev) / (x * x - 1.0);
    (p, d)
}

/// The `m`-node Gauss–Legendre rule on `[−1, 1]`.
///
/// The nodes are the roots of `P_m`, found by Newton's method from the asymptotic guesses
/// `cos(π (k + 3/4) / (m + 1/2))`; the weights are `2 / ((1 − x²) P_m'(x)²)`. Symmetry is
/// imposed exactly (only the non-negative roots are computed).
///
/// # Panics
/// If `m == 0`.
pub fn gauss_legendre(m: usize) -> Rule {
    assert!(m >= 1, "gauss_legendre: need at least one node");
    let mut nodes = vec![0.0; m];
    let mut weights = vec![0.0; m];
    let mf = m as f64;
    for k in 0..m.div_ceil(2) {
        let mut x = (PI * (k as f64 + 0.75) / (mf + 0.5)).cos();
        for _ in 0..100 {
            let (p, d) = legendre_and_derivative(m, x);
            let dx = p / d;
            x -= dx;
            if dx.abs() <= 1e-16 {
                break;
            }
        }
        if m % 2 == 1 && k == m / 2 {
            x = 0.0; // the middle root of an odd-order polynomial is exactly 0
        }
        let (_, d) = legendre_and_derivative(m, x);
        let w = 2.0 / ((1.0 - x * x) * d * d);
        nodes[k] = -x;
        nodes[m - 1 - k] = x;
        weights[k] = w;
        weights[m - 1 - k] = w;
    }
    Rule { nodes, weights }
}

/// The `m`-node Gauss–Legendre rule mapped to `[0, 1]` (`x ↦ (x + 1)/2`, `w ↦ w/2`).
pub fn gauss_legendre_unit(m: usize) -> Rule {
    let r = gauss_legendre(m);
    Rule {
        nodes: r.nodes.iter().map(|&x| 0.5 * (x + 1.0)).collect(),
        weights: r.weights.iter().map(|&w| 0.5 * w).collect(),
    }
}

/// The composite rule on `[0, 1]`: `panels` equal sub-intervals, each with the `m`-node
/// Gauss–Legendre rule (`m·panels` nodes). Used when the integrand is steep: for
/// `e^{ct}` the `m = 24` rule has relative error `≈ 1e-21` at `|c| = 16` per panel.
pub fn gauss_legendre_composite(m: usize, panels: usize) -> Rule {
    assert!(
        panels >= 1,
        "gauss_legendre_composite: need at least one panel"
    );
    let base = gauss_legendre(m);
    let h = 1.0 / panels as f64;
    let mut nodes = Vec::with_capacity(m * panels);
    let mut weights = Vec::with_capacity(m * panels);
    for p in 0..panels {
        let lo = p as f64 * h;
        for (&x, &w) in base.nodes.iter().zip(&base.weights) {
            nodes.push(lo + 0.5 * h * (x + 1.0));
            weights.push(0.5 * h * w);
        }
    }
    Rule { nodes, weights }
}

impl Rule {
    /// `Σ_k w_k f(x_k)`.
    pub fn integrate(&self, mut f: impl FnMut(f64) -> f64) -> f64 {
        self.nodes
            .iter()
            .zip(&self.weights)
            .map(|(&x, &w)| w * f(x))
            .sum()
    }

    /// `log ∫_{[0,1]^n} exp(log_f(ζ)) dζ` by the tensor product of this rule (which should be
    /// on `[0,1]`) over `n` axes: `m^n` evaluations of `log_f`, accumulated by a streaming
    /// log-sum-exp so that large `|log_f|` cannot overflow. For `n = 0` it is `log_f(&[])`.
    pub fn log_integral_cube(&self, n: usize, mut log_f: impl FnMut(&[f64]) -> f64) -> f64 {
        let m = self.nodes.len();
        let log_w: Vec<f64> = self.weights.iter().map(|w| w.ln()).collect();
        let mut idx = vec![0usize; n];
        let mut point: Vec<f64> = vec![self.nodes[0]; n];
        let mut acc = LogSumExp::default();
        loop {
            let lw: f64 = idx.iter().map(|&k| log_w[k]).sum();
            acc.add(lw + log_f(&point));
            // Odometer increment.
            let mut axis = 0;
            loop {
                if axis == n {
                    return acc.value();
                }
                idx[axis] += 1;
                if idx[axis] < m {
                    point[axis] = self.nodes[idx[axis]];
                    break;
                }
                idx[axis] = 0;
                point[axis] = self.nodes[0];
                axis += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn low_orders_match_tabulated_rules() {
        let r1 = gauss_legendre(1);
        assert_eq!(r1.nodes, vec![0.0]);
        assert!((r1.weights[0] - 2.0).abs() < 1e-15);
        let r2 = gauss_legendre(2);
        let x = 1.0 / 3f64.sqrt();
        assert!((r2.nodes[0] + x).abs() < 1e-15 && (r2.nodes[1] - x).abs() < 1e-15);
        assert!(r2.weights.iter().all(|&w| (w - 1.0).abs() < 1e-14));
        let r3 = gauss_legendre(3);
        let x = (0.6f64).sqrt();
        assert!((r3.nodes[0] + x).abs() < 1e-15 && r3.nodes[1] == 0.0);
        assert!((r3.weights[0] - 5.0 / 9.0).abs() < 1e-14);
        assert!((r3.weights[1] - 8.0 / 9.0).abs() < 1e-14);
        let r5 = gauss_legendre(5);
        let x2 = (5.0 - 2.0 * (10.0f64 / 7.0).sqrt()).sqrt() / 3.0;
        let w2 = (322.0 + 13.0 * 70f64.sqrt()) / 900.0;
        assert!((r5.nodes[3] - x2).abs() < 1e-15);
        assert!((r5.weights[3] - w2).abs() < 1e-14);
        assert!((r5.weights[2] - 128.0 / 225.0).abs() < 1e-14);
    }

    #[test]
    fn rules_are_exact_for_polynomials_up_to_degree_2m_minus_1() {
        for m in [1usize, 2, 3, 4, 7, 12, 24, 40] {
            let r = gauss_legendre(m);
            assert!(
                r.nodes.windows(2).all(|p| p[0] < p[1]),
                "m={m}: nodes ascending"
            );
            assert!(r.weights.iter().all(|&w| w > 0.0));
            for k in 0..2 * m {
                let q = r.integrate(|x| x.powi(k as i32));
                let exact = if k % 2 == 1 {
                    0.0
                } else {
                    2.0 / (k as f64 + 1.0)
                };
                assert!((q - exact).abs() < 1e-13, "m={m} k={k}: {q} vs {exact}");
            }
            // Degree 2m is not integrated exactly (the rule is optimal, not better): the error
            // is 2^{2m+1}(m!)^4 / ((2m+1)((2m)!)^2), about π/4^m.
            if m <= 12 {
                let q = r.integrate(|x| x.powi(2 * m as i32));
                let fact = |k: usize| (1..=k).map(|i| i as f64).product::<f64>();
                let err = 2f64.powi(2 * m as i32 + 1) * fact(m).powi(4)
                    / ((2.0 * m as f64 + 1.0) * fact(2 * m).powi(2));
                let got = 2.0 / (2.0 * m as f64 + 1.0) - q;
                assert!(
                    ((got - err) / err).abs() < 1e-6,
                    "m={m}: error {got} vs {err}"
                );
            }
        }
    }

    #[test]
    fn unit_rule_integrates_known_transcendental_integrals() {
        let r = gauss_legendre_unit(24);
        let e = std::f64::consts::E;
        assert!((r.integrate(f64::exp) - (e - 1.0)).abs() < 1e-14);
        assert!((r.integrate(|x| (PI * x).sin()) - 2.0 / PI).abs() < 1e-14);
        assert!((r.integrate(|x| 1.0 / (1.0 + x)) - 2f64.ln()).abs() < 1e-14);
        // ∫_0^1 e^{−20x} dx = (1 − e^{−20})/20: a steep integrand, as for |c| = 20.
        let q = r.integrate(|x| (-20.0 * x).exp());
        assert!((q - (-(-20.0f64).exp_m1()) / 20.0).abs() < 1e-12);
    }

    #[test]
    fn composite_rule_handles_steep_exponentials() {
        for &c in &[-80.0f64, -40.0, 40.0, 80.0] {
            let exact = c.exp_m1() / c;
            let r = gauss_legendre_composite(24, (c.abs() / 16.0).ceil() as usize);
            assert!(r.nodes.windows(2).all(|p| p[0] < p[1]));
            let q = r.integrate(|x| (c * x).exp());
            assert!(((q - exact) / exact).abs() < 1e-13, "c={c}: {q} vs {exact}");
        }
        let one = gauss_legendre_composite(7, 1);
        assert_eq!(one, gauss_legendre_unit(7));
    }

    #[test]
    fn tensor_product_in_log_space() {
        let r = gauss_legendre_unit(12);
        // ∫_{[0,1]^3} e^{x+2y+3z} = Π (e^c − 1)/c.
        let got = r.log_integral_cube(3, |p| p[0] + 2.0 * p[1] + 3.0 * p[2]);
        let want: f64 = [1.0f64, 2.0, 3.0]
            .iter()
            .map(|&c| (c.exp_m1() / c).ln())
            .sum();
        assert!((got - want).abs() < 1e-13, "{got} vs {want}");
        // Volume of the cube, and the n = 0 convention.
        assert!(r.log_integral_cube(4, |_| 0.0).abs() < 1e-14);
        assert_eq!(r.log_integral_cube(0, |_| 1.5), 1.5);
        // No overflow for huge log-integrands.
        let big = r.log_integral_cube(2, |p| 1000.0 + p[0]);
        assert!((big - (1000.0 + (1f64.exp_m1()).ln())).abs() < 1e-11);
    }
}

//! proptest strategies for random polynomial MRFs and RBMs (docs/algorithms.md §8: `n ≤ 12`,
//! degree `≤ 4`, 5–40 monomials, coefficients `N(0, s²)` with `s ∈ {0.5, 2, 5}`, including
//! `n = 1` and the all-zero polynomial).

use crate::poly::PolySpec;
use nalgebra::DMatrix;
use proptest::prelude::*;
use proptest::sample::{select, subsequence};
use std::ops::RangeInclusive;

/// The coefficient scales `s` of docs/algorithms.md §8.
pub const SCALES: [f64; 3] = [0.5, 2.0, 5.0];

/// A standard normal by Box–Muller from two proptest uniforms, written so that shrinking
/// (towards `u1 = 0`, `u2 = 0`) shrinks the value towards 0.
pub fn std_normal() -> impl Strategy<Value = f64> {
    (0.0..1.0f64, 0.0..1.0f64).prop_map(|(u1, u2)| {
        (-2.0 * (-u1).ln_1p()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    })
}

/// A general multilinear polynomial: `n` in `units`, `k` in `terms` random monomials of degree
/// `1..=min(max_degree, n)` (duplicates merged, so small `n` may have fewer than `k`), each
/// with coefficient `s·N(0,1)` for one `s` drawn from [`SCALES`], plus (in 1 case in 5) a
/// constant term (degree 0) of the same scale.
pub fn general_polynomial(
    units: RangeInclusive<usize>,
    terms: RangeInclusive<usize>,
    max_degree: usize,
) -> impl Strategy<Value = PolySpec> {
    (units, terms, select(&SCALES[..])).prop_flat_map(move |(n, k, s)| {
        let d = max_degree.min(n).max(1);
        let universe: Vec<usize> = (0..n).collect();
        (
            prop::collection::vec((subsequence(universe, 1..=d), std_normal()), k),
            prop::option::weighted(0.2, std_normal()),
        )
            .prop_map(move |(ts, constant)| {
                let constant = constant.map(|c| (Vec::new(), c));
                PolySpec::from_terms(n, ts.into_iter().chain(constant).map(|(m, c)| (m, s * c)))
            })
    })
}

/// The single-unit edge case `E = c·z` (`n = 1`), `c = s·N(0,1)`.
pub fn single_unit_polynomial() -> impl Strategy<Value = PolySpec> {
    (select(&SCALES[..]), std_normal())
        .prop_map(|(s, c)| PolySpec::from_terms(1, [(vec![0], s * c)]))
}

/// The zero polynomial on `n ∈ units` units, either with no monomials or with monomials whose
/// coefficients are all exactly 0.
pub fn zero_polynomial(units: RangeInclusive<usize>) -> impl Strategy<Value = PolySpec> {
    (units, any::<bool>()).prop_flat_map(|(n, explicit)| {
        let universe: Vec<usize> = (0..n).collect();
        let k = if explicit { 1..=5usize } else { 0..=0usize };
        prop::collection::vec(subsequence(universe, 1..=n.min(4)), k)
            .prop_map(move |ss| PolySpec::from_terms(n, ss.into_iter().map(|s| (s, 0.0))))
    })
}

/// The random MRF of docs/algorithms.md §8: mostly [`general_polynomial`] with `n ∈ 1..=max_units`,
/// 5–40 monomials and degree `≤ 4`, plus the edge cases [`single_unit_polynomial`] and
/// [`zero_polynomial`] (each about 1 case in 12).
pub fn polynomial(max_units: usize) -> impl Strategy<Value = PolySpec> {
    prop_oneof![
        10 => general_polynomial(1..=max_units, 5..=40, 4),
        1 => single_unit_polynomial(),
        1 => zero_polynomial(1..=max_units),
    ]
}

/// RBM parameters as plain f32 data (GB Eq. 4: `−E = aᵀz1 + bᵀz2 + z1ᵀWz2`, `W` is
/// `n1 × n2`, docs/algorithms.md §1).
#[derive(Debug, Clone, PartialEq)]
pub struct RbmSpec {
    /// Biases of `z1`.
    pub a: Vec<f32>,
    /// Biases of `z2`.
    pub b: Vec<f32>,
    /// Couplings, `n1 × n2`.
    pub w: DMatrix<f32>,
}

impl RbmSpec {
    /// The `gumbolt_priors` RBM with these parameters.
    ///
    /// # Panics
    /// If the constructor rejects them.
    pub fn build(&self) -> gumbolt_priors::Rbm {
        gumbolt_priors::Rbm::new(self.a.clone(), self.b.clone(), self.w.clone())
            .expect("Rbm::new rejected valid parameters")
    }

    /// `(a, b, W)` in f64.
    pub fn to_f64(&self) -> (Vec<f64>, Vec<f64>, DMatrix<f64>) {
        (
            self.a.iter().map(|&v| v as f64).collect(),
            self.b.iter().map(|&v| v as f64).collect(),
            self.w.map(|v| v as f64),
        )
    }

    /// `Σ|a| + Σ|b| + Σ|W|`: the `Σ|c_S|` of the equivalent polynomial.
    pub fn coeff_abs_sum(&self) -> f64 {
        self.a
            .iter()
            .chain(&self.b)
            .chain(self.w.iter())
            .map(|v| v.abs() as f64)
            .sum()
    }
}

/// A random RBM with `n1 ∈ n1_range`, `n2 ∈ n2_range` (sizes drawn independently, then the
/// pair is kept only if `n1 + n2 ≤ max_total`) and all parameters `s·N(0,1)` rounded to f32,
/// `s ∈ {0.5, 2, 5}`.
pub fn rbm(
    n1_range: RangeInclusive<usize>,
    n2_range: RangeInclusive<usize>,
    max_total: usize,
) -> impl Strategy<Value = RbmSpec> {
    (n1_range, n2_range)
        .prop_filter("n1 + n2 too large", move |(n1, n2)| n1 + n2 <= max_total)
        .prop_flat_map(|(n1, n2)| {
            let v = |k: usize| prop::collection::vec(std_normal(), k);
            (select(&SCALES[..]), v(n1), v(n2), v(n1 * n2)).prop_map(move |(s, a, b, w)| {
                let f = |x: &f64| (s * x) as f32;
                RbmSpec {
                    a: a.iter().map(f).collect(),
                    b: b.iter().map(f).collect(),
                    w: DMatrix::from_iterator(n1, n2, w.iter().map(f)),
                }
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::poly::Multilinear;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    /// The strategies cover what docs/algorithms.md §8 asks for: `n` from 1 to 12, degree up to 4,
    /// up to 40 monomials, the zero polynomial (both forms) and `n = 1`, constants, all scales.
    #[test]
    fn polynomial_strategy_covers_the_edge_cases() {
        let mut runner = TestRunner::deterministic();
        let strategy = polynomial(12);
        let specs: Vec<PolySpec> = (0..2000)
            .map(|_| strategy.new_tree(&mut runner).unwrap().current())
            .collect();
        let ns: std::collections::BTreeSet<usize> = specs.iter().map(|s| s.n).collect();
        assert_eq!(ns, (1..=12).collect());
        assert!(specs.iter().any(|s| s.degree() == 4));
        assert!(
            specs
                .iter()
                .all(|s| s.degree() <= 4 && s.monomials.len() <= 41)
        );
        assert!(specs.iter().any(|s| s.monomials.len() >= 35));
        assert!(specs.iter().any(|s| s.n > 1 && s.monomials.is_empty()));
        assert!(
            specs
                .iter()
                .any(|s| !s.monomials.is_empty() && s.coeff_abs_sum() == 0.0)
        );
        assert!(specs.iter().any(|s| s.n == 1 && s.coeff_abs_sum() > 0.0));
        assert!(
            specs
                .iter()
                .any(|s| s.monomials.iter().any(|(m, _)| m.is_empty()))
        );
        let big = specs.iter().filter(|s| s.slope_bound() > 50.0).count();
        assert!(big > 20, "large-scale (s = 5) instances: {big}");
        let small = specs
            .iter()
            .filter(|s| s.coeff_abs_sum() > 0.0 && s.slope_bound() < 3.0)
            .count();
        assert!(small > 20, "small-scale (s = 0.5) instances: {small}");
    }

    #[test]
    fn rbm_strategy_respects_sizes() {
        let mut runner = TestRunner::deterministic();
        let strategy = rbm(1..=8, 1..=8, 12);
        for _ in 0..300 {
            let r = strategy.new_tree(&mut runner).unwrap().current();
            let (n1, n2) = (r.a.len(), r.b.len());
            assert!(n1 >= 1 && n2 >= 1 && n1 + n2 <= 12);
            assert_eq!(r.w.shape(), (n1, n2));
        }
    }
}

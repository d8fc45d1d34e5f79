//! Multilinear polynomials `E(ζ) = Σ_S c_S Π_{i∈S} ζ_i` (docs/algorithms.md §8): a plain-data
//! description with an independent reference evaluator ([`PolySpec`]), the [`Multilinear`]
//! interface the theorem checks are written against, and exact vertex statistics.

use gumbolt_core::numerics::LogSumExp;
use std::collections::BTreeMap;

/// The f64 view of a multilinear energy that the Theorem 1/2 checks need.
///
/// Implemented by the reference [`PolySpec`] and by `gumbolt_priors::PolynomialMrf`.
pub trait Multilinear {
    /// Number of units `n`.
    fn num_units(&self) -> usize;
    /// `E(ζ)` at a relaxed point `ζ ∈ [0,1]^n`.
    fn energy(&self, zeta: &[f64]) -> f64;
    /// `g_i(ζ_{−i}) = ∂E/∂ζ_i`, summed over all monomials containing `i` (GB Eq. 11;
    /// docs/algorithms.md §8).
    fn gap(&self, zeta: &[f64], i: usize) -> f64;
    /// `∇E(ζ)`; default: every [`Multilinear::gap`].
    fn grad(&self, zeta: &[f64]) -> Vec<f64> {
        (0..self.num_units()).map(|i| self.gap(zeta, i)).collect()
    }
    /// `Σ_S |c_S|`, the scale of the tolerances `ε = 1e-9·(1 + Σ|c_S|)`.
    fn coeff_abs_sum(&self) -> f64;
}

impl Multilinear for gumbolt_priors::PolynomialMrf {
    fn num_units(&self) -> usize {
        gumbolt_priors::PolynomialMrf::num_units(self)
    }
    fn energy(&self, zeta: &[f64]) -> f64 {
        self.energy_f64(zeta)
    }
    fn gap(&self, zeta: &[f64], i: usize) -> f64 {
        self.gap_f64(zeta, i)
    }
    fn grad(&self, zeta: &[f64]) -> Vec<f64> {
        self.grad_f64(zeta)
    }
    fn coeff_abs_sum(&self) -> f64 {
        gumbolt_priors::PolynomialMrf::coeff_abs_sum(self)
    }
}

/// A multilinear polynomial as plain data: `n` units and monomials `(S, c_S)` with `S` sorted
/// and distinct (duplicates merged; the empty `S` is a constant). It evaluates itself independently of
/// `gumbolt_priors`, so it doubles as a reference implementation.
#[derive(Debug, Clone, PartialEq)]
pub struct PolySpec {
    /// Number of units.
    pub n: usize,
    /// Monomials `(S, c_S)`.
    pub monomials: Vec<(Vec<usize>, f64)>,
}

impl PolySpec {
    /// Builds a spec from raw terms: every `S` is sorted and deduplicated (`z_i² = z_i`), and
    /// equal subsets are merged by adding their coefficients.
    ///
    /// # Panics
    /// If an index is `≥ n`.
    pub fn from_terms(n: usize, terms: impl IntoIterator<Item = (Vec<usize>, f64)>) -> Self {
        let mut merged: BTreeMap<Vec<usize>, f64> = BTreeMap::new();
        for (mut s, c) in terms {
            s.sort_unstable();
            s.dedup();
            assert!(
                s.iter().all(|&i| i < n),
                "PolySpec: unit index out of range"
            );
            *merged.entry(s).or_insert(0.0) += c;
        }
        PolySpec {
            n,
            monomials: merged.into_iter().collect(),
        }
    }

    /// The zero polynomial on `n` units.
    pub fn zero(n: usize) -> Self {
        PolySpec {
            n,
            monomials: Vec::new(),
        }
    }

    /// The largest monomial degree (0 for the zero polynomial or a constant).
    pub fn degree(&self) -> usize {
        self.monomials
            .iter()
            .map(|(s, _)| s.len())
            .max()
            .unwrap_or(0)
    }

    /// `max_i Σ_{S∋i} |c_S|`: a bound on `|∂E/∂ζ_i|` over the cube, i.e. on the steepness of
    /// `e^{−E}` along any axis (it sets the number of quadrature panels).
    pub fn slope_bound(&self) -> f64 {
        (0..self.n)
            .map(|i| {
                self.monomials
                    .iter()
                    .filter(|(s, _)| s.contains(&i))
                    .map(|(_, c)| c.abs())
                    .sum::<f64>()
            })
            .fold(0.0, f64::max)
    }

    /// The `gumbolt_priors` polynomial MRF with the same monomials.
    ///
    /// # Panics
    /// If the constructor rejects the spec.
    pub fn build(&self) -> gumbolt_priors::PolynomialMrf {
        gumbolt_priors::PolynomialMrf::new(self.n, self.monomials.clone())
            .expect("PolynomialMrf::new rejected a valid multilinear spec")
    }
}

impl Multilinear for PolySpec {
    fn num_units(&self) -> usize {
        self.n
    }
    fn energy(&self, zeta: &[f64]) -> f64 {
        assert_eq!(zeta.len(), self.n);
        self.monomials
            .iter()
            .map(|(s, c)| c * s.iter().map(|&i| zeta[i]).product::<f64>())
            .sum()
    }
    fn gap(&self, zeta: &[f64], i: usize) -> f64 {
        assert_eq!(zeta.len(), self.n);
        self.monomials
            .iter()
            .filter(|(s, _)| s.contains(&i))
            .map(|(s, c)| {
                c * s
                    .iter()
                    .filter(|&&j| j != i)
                    .map(|&j| zeta[j])
                    .product::<f64>()
            })
            .sum()
    }
    fn coeff_abs_sum(&self) -> f64 {
        self.monomials.iter().map(|(_, c)| c.abs()).sum()
    }
}

/// The f64 tolerance of the Theorem 1 checks: `ε = 1e-9·(1 + Σ|c_S|)` (docs/algorithms.md §8 T1).
pub fn eps_f64<M: Multilinear + ?Sized>(m: &M) -> f64 {
    1e-9 * (1.0 + m.coeff_abs_sum())
}

/// Exact statistics over the `2^n` vertices of the hypercube.
#[derive(Debug, Clone, PartialEq)]
pub struct VertexStats {
    /// `min_z E(z)`.
    pub e_min: f64,
    /// `max_z E(z)`.
    pub e_max: f64,
    /// A minimising vertex.
    pub argmin: Vec<f64>,
    /// A maximising vertex.
    pub argmax: Vec<f64>,
    /// `log Z = log Σ_z e^{−E(z)}` (GB Eq. 3).
    pub log_z: f64,
}

/// The vertex `z ∈ {0,1}^n` whose unit `i` is bit `i` of `index`.
pub fn vertex(n: usize, index: u64) -> Vec<f64> {
    (0..n).map(|i| ((index >> i) & 1) as f64).collect()
}

/// Enumerates the `2^n` vertices in f64 through [`Multilinear::energy`].
///
/// # Panics
/// If `n > 24`.
pub fn vertex_stats<M: Multilinear + ?Sized>(m: &M) -> VertexStats {
    let n = m.num_units();
    assert!(n <= 24, "vertex_stats: 2^{n} vertices is too many");
    let mut lse = LogSumExp::default();
    let (mut e_min, mut e_max) = (f64::INFINITY, f64::NEG_INFINITY);
    let (mut i_min, mut i_max) = (0u64, 0u64);
    let mut z = vec![0.0; n];
    for idx in 0..(1u64 << n) {
        for (i, zi) in z.iter_mut().enumerate() {
            *zi = ((idx >> i) & 1) as f64;
        }
        let e = m.energy(&z);
        lse.add(-e);
        if e < e_min {
            e_min = e;
            i_min = idx;
        }
        if e > e_max {
            e_max = e;
            i_max = idx;
        }
    }
    VertexStats {
        e_min,
        e_max,
        argmin: vertex(n, i_min),
        argmax: vertex(n, i_max),
        log_z: lse.value(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_merges_and_evaluates() {
        let p = PolySpec::from_terms(
            3,
            [(vec![1, 0], 2.0), (vec![0, 1, 1], 1.0), (vec![2], -1.0)],
        );
        assert_eq!(p.monomials, vec![(vec![0, 1], 3.0), (vec![2], -1.0)]);
        assert_eq!(p.degree(), 2);
        let z = [0.5, 0.5, 1.0];
        assert!((p.energy(&z) - (0.75 - 1.0)).abs() < 1e-15);
        assert!((p.gap(&z, 0) - 1.5).abs() < 1e-15);
        assert!((p.gap(&z, 2) + 1.0).abs() < 1e-15);
        let s = vertex_stats(&p);
        assert_eq!((s.e_min, s.e_max), (-1.0, 3.0));
        assert_eq!(s.argmin, vec![0.0, 0.0, 1.0]);
        assert_eq!(s.argmax, vec![1.0, 1.0, 0.0]);
        let z_sum: f64 = (0..8u64).map(|k| (-p.energy(&vertex(3, k))).exp()).sum();
        assert!((s.log_z - z_sum.ln()).abs() < 1e-14);
        let zero = vertex_stats(&PolySpec::zero(4));
        assert_eq!((zero.e_min, zero.e_max), (0.0, 0.0));
        assert!((zero.log_z - 16f64.ln()).abs() < 1e-14);
    }
}

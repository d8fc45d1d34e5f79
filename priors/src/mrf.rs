//! Polynomial (higher-order) binary Markov random fields: multilinear energies
//! `E(z) = Σ_S c_S Π_{i∈S} z_i` with monomials of any order (GB App. A, Theorems 1–2;
//! docs/algorithms.md §8).
//!
//! Powers collapse on binary units (`z_i^m = z_i`), so every polynomial energy over
//! `{0,1}^n` is of this form; the relaxed energy `E(ζ)` on `[0,1]^n` uses the same formula.
//! The single-site gap `g_i(ζ_{−i}) = Σ_{S∋i} c_S Π_{j∈S∖{i}} ζ_j` sums over **all** monomials
//! containing `i` (docs/algorithms.md §8; GB Eq. 10 restricts to `j < i`, which would not be
//! `∂E/∂ζ_i`), so `∂E/∂ζ_i = g_i` (GB Eq. 11) and `p(z_i = 1 | z_{−i}) = σ(−g_i)`.
//!
//! # Coefficients: f64 and the f32 parameter vector
//! The coefficients `c_S` are f64 and are the source of truth of the exact inherent API
//! ([`PolynomialMrf::energy_f64`], [`PolynomialMrf::gap_f64`], …), which the property tests of
//! Theorems 1 and 2 need. [`Parametric::params`] exposes an f32 copy (one value per monomial,
//! in the order of [`PolynomialMrf::monomials`]). Calling [`Parametric::params_mut`] makes the
//! f32 copy authoritative: from then on every method uses the (exactly representable) f64
//! images of the f32 values, so an optimiser's writes are always seen.
//! [`PolynomialMrf::set_coefficients`] makes f64 values authoritative again.

use crate::error::{PriorError, Result};
use crate::rbm::Rbm;
use crate::util::{ensure_shape, std_normal_pair};
use gumbolt_core::Mat;
use gumbolt_core::prior::{
    EnergyGradient, EnergyParamGradient, ExactPartition, Parametric, Prior, SiteConditionals,
};
use nalgebra::DMatrixView;
use std::collections::HashMap;

/// A multilinear energy `E(z) = Σ_S c_S Π_{i∈S} z_i` over `n` binary units, with monomials of
/// any order (the empty monomial is a constant).
///
/// Monomials are stored sorted and distinct (duplicates given to [`PolynomialMrf::new`] are
/// merged by adding coefficients), with per-unit lists of the monomials containing each unit.
///
/// ```
/// use gumbolt_priors::PolynomialMrf;
/// // E = 2 z0 z1 z2 − z1 + 0.5
/// let mrf = PolynomialMrf::new(3, vec![(vec![2, 0, 1], 2.0), (vec![1], -1.0), (vec![], 0.5)]).unwrap();
/// assert_eq!(mrf.energy_f64(&[1.0, 1.0, 1.0]), 1.5);
/// assert_eq!(mrf.gap_f64(&[0.5, 0.0, 1.0], 1), 2.0 * 0.5 * 1.0 - 1.0); // ∂E/∂ζ1
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct PolynomialMrf {
    n: usize,
    /// Units of monomial `k`: `units[offsets[k]..offsets[k + 1]]`, sorted.
    units: Vec<usize>,
    offsets: Vec<usize>,
    coeffs: Vec<f64>,
    /// The f32 copy exposed by [`Parametric`].
    mirror: Vec<f32>,
    /// Whether `mirror` is authoritative (after [`Parametric::params_mut`]).
    f32_master: bool,
    /// Monomials containing each unit.
    by_unit: Vec<Vec<usize>>,
}

impl PolynomialMrf {
    /// Builds `E(z) = Σ_S c_S Π_{i∈S} z_i` from `(S, c_S)` pairs. The units of a monomial may
    /// be given in any order; monomials with the same set of units are merged (coefficients
    /// added, in the position of the first occurrence). The empty monomial is a constant.
    ///
    /// # Errors
    /// [`PriorError::InvalidMonomial`] for a unit `≥ n`, a unit repeated within one monomial
    /// (write `z_i` instead of `z_i²`), or a non-finite coefficient.
    ///
    /// ```
    /// use gumbolt_priors::{PolynomialMrf, PriorError};
    /// let m = PolynomialMrf::new(2, vec![(vec![0, 1], 1.0), (vec![1, 0], 2.0)]).unwrap();
    /// assert_eq!(m.monomials(), vec![(vec![0, 1], 3.0)]);
    /// assert!(matches!(PolynomialMrf::new(2, vec![(vec![0, 0], 1.0)]),
    ///                  Err(PriorError::InvalidMonomial { index: 0, .. })));
    /// assert!(PolynomialMrf::new(2, vec![(vec![2], 1.0)]).unwrap_err().to_string().contains("out of range"));
    /// ```
    pub fn new(n: usize, monomials: Vec<(Vec<usize>, f64)>) -> Result<Self> {
        let mut index: HashMap<Vec<usize>, usize> = HashMap::new();
        let mut sets: Vec<Vec<usize>> = Vec::new();
        let mut coeffs: Vec<f64> = Vec::new();
        for (idx, (given, c)) in monomials.into_iter().enumerate() {
            let invalid = |reason: String| PriorError::InvalidMonomial {
                index: idx,
                units: given.clone(),
                reason,
            };
            if let Some(&u) = given.iter().find(|&&u| u >= n) {
                return Err(invalid(format!(
                    "unit {u} is out of range for {n} units (valid: 0..{n})"
                )));
            }
            let mut s = given.clone();
            s.sort_unstable();
            if let Some(w) = s.windows(2).find(|w| w[0] == w[1]) {
                return Err(invalid(format!(
                    "unit {} appears more than once; on binary units z_i² = z_i, so list each unit once",
                    w[0]
                )));
            }
            if !c.is_finite() {
                return Err(invalid(format!("the coefficient {c} is not finite")));
            }
            match index.get(&s) {
                Some(&k) => coeffs[k] += c,
                None => {
                    index.insert(s.clone(), sets.len());
                    sets.push(s);
                    coeffs.push(c);
                }
            }
        }
        let mut units = Vec::new();
        let mut offsets = vec![0];
        let mut by_unit = vec![Vec::new(); n];
        for (k, s) in sets.iter().enumerate() {
            for &u in s {
                by_unit[u].push(k);
            }
            units.extend_from_slice(s);
            offsets.push(units.len());
        }
        let mirror = coeffs.iter().map(|&c| c as f32).collect();
        Ok(PolynomialMrf {
            n,
            units,
            offsets,
            coeffs,
            mirror,
            f32_master: false,
            by_unit,
        })
    }

    /// A random polynomial on `n` units with `num_monomials` monomials, each of a degree drawn
    /// uniformly from `1..=min(max_degree, n)` (degree 0, a constant, if that range is empty)
    /// on distinct units drawn uniformly, with coefficient `N(0, scale²)` (Box–Muller).
    /// Monomials that happen to coincide are merged, so there may be fewer.
    ///
    /// ```
    /// let mut rng = gumbolt_core::rng::root_rng(0);
    /// let m = gumbolt_priors::PolynomialMrf::random(6, 10, 3, 1.0, &mut rng);
    /// assert!(m.num_monomials() <= 10);
    /// assert!(m.monomials().iter().all(|(s, _)| (1..=3).contains(&s.len())));
    /// ```
    pub fn random(
        n: usize,
        num_monomials: usize,
        max_degree: usize,
        scale: f64,
        rng: &mut impl rand::Rng,
    ) -> Self {
        fn below<R: rand::Rng + ?Sized>(rng: &mut R, k: usize) -> usize {
            ((gumbolt_core::rng::uniform_f64(rng) * k as f64) as usize).min(k - 1)
        }
        let dmax = max_degree.min(n);
        let mut pool: Vec<usize> = (0..n).collect();
        let mut spare: Option<f64> = None;
        let mut terms = Vec::with_capacity(num_monomials);
        for _ in 0..num_monomials {
            let d = if dmax == 0 { 0 } else { 1 + below(rng, dmax) };
            // Partial Fisher–Yates: the first d entries of the pool are a uniform subset.
            for t in 0..d {
                let j = t + below(rng, n - t);
                pool.swap(t, j);
            }
            let z = spare.take().unwrap_or_else(|| {
                let (x, y) = std_normal_pair(rng);
                spare = Some(y);
                x
            });
            terms.push((pool[..d].to_vec(), scale * z));
        }
        PolynomialMrf::new(n, terms).expect("random monomials are valid")
    }

    /// Number of units `n`.
    pub fn num_units(&self) -> usize {
        self.n
    }

    /// Number of (merged) monomials, i.e. of parameters.
    pub fn num_monomials(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Monomial `k`: its sorted units and coefficient.
    pub fn monomial(&self, k: usize) -> (&[usize], f64) {
        (
            &self.units[self.offsets[k]..self.offsets[k + 1]],
            self.coef(k),
        )
    }

    /// All monomials `(S, c_S)` (sorted units, merged), in parameter order; feeding them back
    /// to [`PolynomialMrf::new`] rebuilds the same model.
    pub fn monomials(&self) -> Vec<(Vec<usize>, f64)> {
        (0..self.num_monomials())
            .map(|k| {
                let (s, c) = self.monomial(k);
                (s.to_vec(), c)
            })
            .collect()
    }

    /// The coefficients `c_S` in parameter order.
    pub fn coefficients(&self) -> Vec<f64> {
        (0..self.num_monomials()).map(|k| self.coef(k)).collect()
    }

    /// Replaces the coefficients (f64 becomes authoritative again; the f32 parameter copy is
    /// updated).
    ///
    /// # Errors
    /// [`PriorError::Shape`] for a wrong length, [`PriorError::NonFinite`] for a NaN or
    /// infinite value.
    pub fn set_coefficients(&mut self, c: &[f64]) -> Result<()> {
        if c.len() != self.num_monomials() {
            return Err(PriorError::Shape {
                what: "PolynomialMrf coefficients",
                expected: format!("{} (one per monomial)", self.num_monomials()),
                got: c.len().to_string(),
            });
        }
        if let Some(k) = c.iter().position(|v| !v.is_finite()) {
            return Err(PriorError::NonFinite {
                name: format!("c[{k}]"),
                value: c[k],
            });
        }
        self.coeffs.copy_from_slice(c);
        self.mirror = c.iter().map(|&v| v as f32).collect();
        self.f32_master = false;
        Ok(())
    }

    /// `Σ_S |c_S|` (the scale of the tolerances of the Theorem 1/2 property tests).
    pub fn coeff_abs_sum(&self) -> f64 {
        (0..self.num_monomials()).map(|k| self.coef(k).abs()).sum()
    }

    /// The monomials containing unit `i`.
    pub fn monomials_of_unit(&self, i: usize) -> &[usize] {
        &self.by_unit[i]
    }

    #[inline]
    fn coef(&self, k: usize) -> f64 {
        if self.f32_master {
            self.mirror[k] as f64
        } else {
            self.coeffs[k]
        }
    }

    #[inline]
    fn set(&self, k: usize) -> &[usize] {
        &self.units[self.offsets[k]..self.offsets[k + 1]]
    }

    /// `E(ζ) = Σ_S c_S Π_{i∈S} ζ_i` in f64.
    ///
    /// # Panics
    /// If `zeta.len() != n`.
    pub fn energy_f64(&self, zeta: &[f64]) -> f64 {
        assert_eq!(zeta.len(), self.n, "PolynomialMrf::energy_f64: length");
        (0..self.num_monomials())
            .map(|k| self.coef(k) * self.set(k).iter().map(|&i| zeta[i]).product::<f64>())
            .sum()
    }

    /// `g_i(ζ_{−i}) = ∂E/∂ζ_i = Σ_{S∋i} c_S Π_{j∈S∖{i}} ζ_j` in f64 (all monomials containing
    /// `i`; docs/algorithms.md §8). At a vertex, `g_i = E(z_i=1, z_{−i}) − E(z_i=0, z_{−i})`.
    ///
    /// # Panics
    /// If `zeta.len() != n` or `i ≥ n`.
    pub fn gap_f64(&self, zeta: &[f64], i: usize) -> f64 {
        assert_eq!(zeta.len(), self.n, "PolynomialMrf::gap_f64: length");
        self.by_unit[i]
            .iter()
            .map(|&k| {
                self.coef(k)
                    * self
                        .set(k)
                        .iter()
                        .filter(|&&j| j != i)
                        .map(|&j| zeta[j])
                        .product::<f64>()
            })
            .sum()
    }

    /// `∇E(ζ)`: every [`PolynomialMrf::gap_f64`].
    ///
    /// ```
    /// let m = gumbolt_priors::PolynomialMrf::new(2, vec![(vec![0, 1], 3.0)]).unwrap();
    /// assert_eq!(m.grad_f64(&[0.5, 0.25]), vec![0.75, 1.5]);
    /// ```
    pub fn grad_f64(&self, zeta: &[f64]) -> Vec<f64> {
        assert_eq!(zeta.len(), self.n, "PolynomialMrf::grad_f64: length");
        let mut g = vec![0.0; self.n];
        for k in 0..self.num_monomials() {
            let s = self.set(k);
            let c = self.coef(k);
            for &i in s {
                g[i] += c * s
                    .iter()
                    .filter(|&&j| j != i)
                    .map(|&j| zeta[j])
                    .product::<f64>();
            }
        }
        g
    }

    /// Exact `E_p[Π_{i∈S} z_i]` for every monomial and `log Z`, by enumerating all `2^n`
    /// configurations with bit masks (f64 throughout).
    fn exact_moments(&self) -> gumbolt_core::Result<(f64, Vec<f64>)> {
        let limit = gumbolt_core::exact::MAX_ENUMERATION_UNITS;
        if self.n > limit {
            return Err(gumbolt_core::CoreError::Intractable {
                what: "polynomial MRF log-partition gradient",
                units: self.n,
                limit,
            });
        }
        let masks: Vec<u32> = (0..self.num_monomials())
            .map(|k| self.set(k).iter().fold(0u32, |m, &i| m | (1 << i)))
            .collect();
        let coefs = self.coefficients();
        let energy = |x: u32| -> f64 {
            masks
                .iter()
                .zip(&coefs)
                .filter(|(m, _)| x & **m == **m)
                .map(|(_, c)| c)
                .sum()
        };
        let total = 1u32 << self.n;
        let mut lse = gumbolt_core::numerics::LogSumExp::default();
        for x in 0..total {
            lse.add(-energy(x));
        }
        let log_z = lse.value();
        let mut mom = vec![0.0; masks.len()];
        for x in 0..total {
            let p = (-energy(x) - log_z).exp();
            for (m, &mask) in mom.iter_mut().zip(&masks) {
                if x & mask == mask {
                    *m += p;
                }
            }
        }
        Ok((log_z, mom))
    }

    fn check_rows(&self, zeta: &DMatrixView<'_, f32>, what: &str) {
        assert_eq!(
            zeta.ncols(),
            self.n,
            "PolynomialMrf::{what}: batch has {} columns, the MRF has {} units",
            zeta.ncols(),
            self.n
        );
    }

    /// `prod[r] = c · Π_{j∈S, j≠skip} ζ_rj` for monomial `k`.
    fn column_product(
        &self,
        zeta: &DMatrixView<'_, f32>,
        k: usize,
        skip: Option<usize>,
        prod: &mut [f64],
    ) {
        prod.fill(self.coef(k));
        for &j in self.set(k) {
            if Some(j) == skip {
                continue;
            }
            for (p, &z) in prod.iter_mut().zip(zeta.column(j).as_slice()) {
                *p *= z as f64;
            }
        }
    }
}

impl Prior for PolynomialMrf {
    fn num_units(&self) -> usize {
        self.n
    }

    /// `E(ζ_r)` per row, computed in f64 from the f32 inputs (monomial by monomial, column-wise).
    fn energy_into(&self, zeta: DMatrixView<'_, f32>, out: &mut [f64]) {
        self.check_rows(&zeta, "energy_into");
        assert_eq!(
            out.len(),
            zeta.nrows(),
            "PolynomialMrf::energy_into: output length"
        );
        out.fill(0.0);
        let mut prod = vec![0.0; zeta.nrows()];
        for k in 0..self.num_monomials() {
            self.column_product(&zeta, k, None, &mut prod);
            out.iter_mut().zip(&prod).for_each(|(o, p)| *o += p);
        }
    }
}

impl EnergyGradient for PolynomialMrf {
    /// `∂E/∂ζ_i = g_i(ζ_{−i})` per row (GB Eq. 11), accumulated in f64 and stored as f32
    /// (`out` resized to `[N, n]` if needed).
    fn energy_grad_into(&self, zeta: DMatrixView<'_, f32>, out: &mut Mat) {
        self.check_rows(&zeta, "energy_grad_into");
        let rows = zeta.nrows();
        ensure_shape(out, rows, self.n);
        let mut acc = vec![0.0f64; rows];
        let mut prod = vec![0.0; rows];
        for i in 0..self.n {
            acc.fill(0.0);
            for &k in &self.by_unit[i] {
                self.column_product(&zeta, k, Some(i), &mut prod);
                acc.iter_mut().zip(&prod).for_each(|(a, p)| *a += p);
            }
            for (o, a) in out.column_mut(i).iter_mut().zip(&acc) {
                *o = *a as f32;
            }
        }
    }
}

impl Parametric for PolynomialMrf {
    /// θ = the coefficients `c_S` as f32, in the order of [`PolynomialMrf::monomials`].
    fn params(&self) -> &[f32] {
        &self.mirror
    }

    /// Makes the f32 parameters authoritative (module docs).
    fn params_mut(&mut self) -> &mut [f32] {
        self.f32_master = true;
        &mut self.mirror
    }
}

impl EnergyParamGradient for PolynomialMrf {
    /// `grad_S += −Σ_r w_r Π_{i∈S} ζ_ri` (in f64).
    fn accumulate_neg_energy_grad(
        &self,
        zeta: DMatrixView<'_, f32>,
        weights: &[f32],
        grad: &mut [f32],
    ) {
        self.check_rows(&zeta, "accumulate_neg_energy_grad");
        assert_eq!(
            weights.len(),
            zeta.nrows(),
            "PolynomialMrf: one weight per row"
        );
        assert_eq!(
            grad.len(),
            self.num_monomials(),
            "PolynomialMrf: gradient length"
        );
        let mut prod = vec![0.0; zeta.nrows()];
        for (k, g) in grad.iter_mut().enumerate() {
            prod.fill(1.0);
            for &j in self.set(k) {
                for (p, &z) in prod.iter_mut().zip(zeta.column(j).as_slice()) {
                    *p *= z as f64;
                }
            }
            let s: f64 = prod.iter().zip(weights).map(|(p, &w)| p * w as f64).sum();
            *g -= s as f32;
        }
    }
}

impl ExactPartition for PolynomialMrf {
    /// Exact `log Z` by [`gumbolt_core::exact::enumerate`] (`n ≤ 24`).
    fn log_partition(&self) -> gumbolt_core::Result<f64> {
        Ok(gumbolt_core::exact::enumerate(self)?.log_z)
    }

    /// `∂ log Z/∂c_S = −E_p[Π_{i∈S} z_i]` (GB Eq. 6), by enumeration (`n ≤ 24`).
    fn log_partition_grad(&self) -> gumbolt_core::Result<Vec<f64>> {
        Ok(self.exact_moments()?.1.into_iter().map(|m| -m).collect())
    }
}

impl SiteConditionals for PolynomialMrf {
    /// `g_i` for every row of `z` (f64).
    fn site_energy_gaps(&self, z: DMatrixView<'_, f32>, i: usize, out: &mut [f64]) {
        self.check_rows(&z, "site_energy_gaps");
        assert!(
            i < self.n,
            "PolynomialMrf::site_energy_gaps: unit {i} out of range"
        );
        assert_eq!(
            out.len(),
            z.nrows(),
            "PolynomialMrf::site_energy_gaps: output length"
        );
        out.fill(0.0);
        let mut prod = vec![0.0; z.nrows()];
        for &k in &self.by_unit[i] {
            self.column_product(&z, k, Some(i), &mut prod);
            out.iter_mut().zip(&prod).for_each(|(o, p)| *o += p);
        }
    }
}

impl From<&Rbm> for PolynomialMrf {
    /// The RBM as a polynomial MRF (docs/algorithms.md §8): monomials `{i}` with `−a_i`, `{n1+j}` with
    /// `−b_j`, then `{i, n1+j}` with `−W_ij` for every coupling (zeros included), `W` column by
    /// column, so `params() = −rbm.params()` element by element.
    fn from(rbm: &Rbm) -> Self {
        let (n1, n2) = (rbm.n1(), rbm.n2());
        let mut terms: Vec<(Vec<usize>, f64)> = Vec::with_capacity(n1 + n2 + n1 * n2);
        terms.extend(
            rbm.a()
                .iter()
                .enumerate()
                .map(|(i, &a)| (vec![i], -(a as f64))),
        );
        terms.extend(
            rbm.b()
                .iter()
                .enumerate()
                .map(|(j, &b)| (vec![n1 + j], -(b as f64))),
        );
        let w = rbm.w();
        for j in 0..n2 {
            for i in 0..n1 {
                terms.push((vec![i, n1 + j], -(w[(i, j)] as f64)));
            }
        }
        PolynomialMrf::new(n1 + n2, terms).expect("an RBM's monomials are valid")
    }
}

impl PolynomialMrf {
    /// Colour classes of the interaction hypergraph: two units that share a monomial get
    /// different colours ([`crate::topology::greedy_colouring`] of the graph joining every pair
    /// of units of every monomial).
    pub fn hypergraph_colouring(&self) -> Vec<Vec<usize>> {
        let mut pairs = std::collections::BTreeSet::new();
        for k in 0..self.num_monomials() {
            let s = self.set(k);
            for (a, &i) in s.iter().enumerate() {
                for &j in &s[a + 1..] {
                    pairs.insert((i.min(j), i.max(j)));
                }
            }
        }
        let pairs: Vec<(usize, usize)> = pairs.into_iter().collect();
        crate::topology::greedy_colouring(self.n, &pairs)
    }
}

impl gumbolt_core::prior::ColourConditionals for PolynomialMrf {
    /// [`PolynomialMrf::hypergraph_colouring`] (computed at every call: callers keep it).
    fn colour_classes(&self) -> Vec<Vec<usize>> {
        self.hypergraph_colouring()
    }

    /// `−g_i` for the units of the class ([`SiteConditionals::site_energy_gaps`]).
    fn colour_logits(&self, class: usize, z: DMatrixView<'_, f32>, out: &mut Mat) {
        let classes = self.hypergraph_colouring();
        let rows = z.nrows();
        let mut gap = vec![0.0f64; rows];
        for (k, &i) in classes[class].iter().enumerate() {
            self.site_energy_gaps(z, i, &mut gap);
            for (o, &g) in out.as_mut_slice()[k * rows..(k + 1) * rows]
                .iter_mut()
                .zip(&gap)
            {
                *o = -g as f32;
            }
        }
    }
}

#[cfg(test)]
mod tests;

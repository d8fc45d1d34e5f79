//! The restricted Boltzmann machine prior (GB Eq. 4; docs/algorithms.md §1).
//!
//! `−E(z) = aᵀz1 + bᵀz2 + z1ᵀ W z2` with `a ∈ R^{n1}`, `b ∈ R^{n2}`, `W ∈ R^{n1×n2}`.
//! The paper writes `z2ᵀWz1`; this crate follows the reference code and docs/algorithms.md §1
//! (`W_here = W_paperᵀ`, so `W[i][j]` couples `z1_i` and `z2_j`).
//!
//! # Parameter layout
//! θ is one flat `Vec<f32>` (see [`Parametric::params`]):
//! `[a (n1) | b (n2) | W column-major n1×n2]`, i.e. `θ[i] = a_i`, `θ[n1 + j] = b_j`,
//! `θ[n1 + n2 + i + j·n1] = W_ij`. Gradients ([`EnergyParamGradient`],
//! [`ExactPartition::log_partition_grad`]) use the same layout.

use crate::bipartite::{self, Level};
use crate::error::{PriorError, Result, check_finite};
use crate::util::{ensure_shape, with_scratch};
use gumbolt_core::linalg::{BinaryProductWeights, Op, affine_unpacked, gemm, gemm_tn, matmul_nn};
use gumbolt_core::prior::{
    Block, BlockConditionals, ChainProducts, EnergyGradient, EnergyParamGradient, ExactPartition,
    Parametric, Prior, SiteConditionals,
};
use gumbolt_core::{CoreError, Mat};
use nalgebra::{DMatrix, DMatrixView, DMatrixViewMut};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;

/// A restricted Boltzmann machine over `z = [z1, z2]`, `z1 ∈ {0,1}^{n1}`, `z2 ∈ {0,1}^{n2}`:
/// `−E(z) = aᵀz1 + bᵀz2 + z1ᵀWz2` (GB Eq. 4, with `W` stored `n1×n2` as in docs/algorithms.md §1).
///
/// Units `0..n1` of a batch row are `z1` ([`Block::One`]), units `n1..n1+n2` are `z2`
/// ([`Block::Two`]). Parameters live in one flat vector, layout `[a | b | W column-major]`
/// (module docs).
///
/// ```
/// use gumbolt_priors::Rbm;
/// use gumbolt_core::prior::{ExactPartition, PriorExt};
/// use nalgebra::DMatrix;
/// let rbm = Rbm::new(vec![0.5], vec![-1.0, 0.0], DMatrix::from_row_slice(1, 2, &[2.0, 1.0])).unwrap();
/// // E at z = (1 | 1, 0): −(0.5 − 1 + 2) = −1.5
/// let e = rbm.energies(&DMatrix::from_row_slice(1, 3, &[1.0f32, 1.0, 0.0]));
/// assert!((e[0] + 1.5).abs() < 1e-12);
/// // log Z = log Σ_{z1} e^{a z1} Π_j (1 + e^{b_j + W_1j z1})
/// let want = ((1.0 + (-1f64).exp()) * 2.0 + 0.5f64.exp() * (1.0 + 1f64.exp()) * (1.0 + 1f64.exp())).ln();
/// assert!((rbm.log_partition().unwrap() - want).abs() < 1e-12);
/// ```
///
/// Block-Gibbs conditionals (docs/algorithms.md §1): `p(z2 = 1 | z1) = σ(b + Wᵀz1)`.
///
/// ```
/// use gumbolt_core::prior::{Block, BlockConditionals};
/// use nalgebra::DMatrix;
/// let rbm = gumbolt_priors::Rbm::new(vec![0.0], vec![1.0, 2.0], DMatrix::from_row_slice(1, 2, &[3.0, 4.0])).unwrap();
/// let z1 = DMatrix::from_row_slice(2, 1, &[0.0f32, 1.0]); // two chains
/// let mut logits = DMatrix::zeros(2, 2);
/// rbm.block_logits(Block::Two, z1.as_view(), &mut logits);
/// assert_eq!(logits, DMatrix::from_row_slice(2, 2, &[1.0, 2.0, 4.0, 6.0]));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RbmFlat", into = "RbmFlat")]
pub struct Rbm {
    n1: usize,
    n2: usize,
    theta: Vec<f32>,
}

/// The serde form of [`Rbm`]: sizes and the flat parameter vector.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct RbmFlat {
    n1: usize,
    n2: usize,
    params: Vec<f32>,
}

impl From<Rbm> for RbmFlat {
    fn from(r: Rbm) -> Self {
        RbmFlat {
            n1: r.n1,
            n2: r.n2,
            params: r.theta,
        }
    }
}

impl TryFrom<RbmFlat> for Rbm {
    type Error = PriorError;
    fn try_from(f: RbmFlat) -> Result<Self> {
        check_sides(f.n1, f.n2)?;
        let want = num_params(f.n1, f.n2);
        if f.params.len() != want {
            return Err(PriorError::Shape {
                what: "RBM parameter vector [a | b | W]",
                expected: format!("{want} = n1 + n2 + n1·n2 values"),
                got: format!("{}", f.params.len()),
            });
        }
        check_finite("theta", &f.params)?;
        Ok(Rbm {
            n1: f.n1,
            n2: f.n2,
            theta: f.params,
        })
    }
}

fn num_params(n1: usize, n2: usize) -> usize {
    n1 + n2 + n1 * n2
}

fn check_sides(n1: usize, n2: usize) -> Result<()> {
    if n1 == 0 {
        return Err(PriorError::EmptySide { side: "z1" });
    }
    if n2 == 0 {
        return Err(PriorError::EmptySide { side: "z2" });
    }
    Ok(())
}

impl Rbm {
    /// The RBM with `a = 0`, `b = 0`, `W = 0`: the uniform prior, `log Z = (n1+n2)·log 2`
    /// (the reference initialisation, docs/algorithms.md §1).
    ///
    /// # Panics
    /// If `n1 == 0` or `n2 == 0` (use [`crate::FactorialBernoulli`] for a model without
    /// couplings).
    ///
    /// ```
    /// use gumbolt_core::prior::ExactPartition;
    /// let rbm = gumbolt_priors::Rbm::zeros(3, 4);
    /// assert!((rbm.log_partition().unwrap() - 7.0 * 2f64.ln()).abs() < 1e-12);
    /// ```
    pub fn zeros(n1: usize, n2: usize) -> Rbm {
        check_sides(n1, n2).expect("Rbm::zeros");
        Rbm {
            n1,
            n2,
            theta: vec![0.0; num_params(n1, n2)],
        }
    }

    /// An RBM with biases `a`, `b` and couplings `W` (`n1×n2`, `W[(i, j)]` couples `z1_i`
    /// and `z2_j`).
    ///
    /// # Errors
    /// [`PriorError::EmptySide`] if `a` or `b` is empty, [`PriorError::Shape`] if `W` is not
    /// `len(a) × len(b)`, [`PriorError::NonFinite`] for a NaN or infinite value.
    ///
    /// ```
    /// use gumbolt_priors::{PriorError, Rbm};
    /// use nalgebra::DMatrix;
    /// let rbm = Rbm::new(vec![0.0; 2], vec![0.0; 3], DMatrix::zeros(2, 3)).unwrap();
    /// assert_eq!((rbm.n1(), rbm.n2()), (2, 3));
    /// assert!(matches!(Rbm::new(vec![0.0; 2], vec![0.0; 3], DMatrix::zeros(3, 2)),
    ///                  Err(PriorError::Shape { .. })));
    /// ```
    pub fn new(a: Vec<f32>, b: Vec<f32>, w: DMatrix<f32>) -> Result<Rbm> {
        let (n1, n2) = (a.len(), b.len());
        check_sides(n1, n2)?;
        if w.shape() != (n1, n2) {
            return Err(PriorError::Shape {
                what: "W",
                expected: format!("{n1}×{n2} (len(a) × len(b))"),
                got: format!("{}×{}", w.nrows(), w.ncols()),
            });
        }
        check_finite("a", &a)?;
        check_finite("b", &b)?;
        if let Some(k) = w.as_slice().iter().position(|v| !v.is_finite()) {
            return Err(PriorError::NonFinite {
                name: format!("W[{}][{}]", k % n1, k / n1),
                value: w.as_slice()[k] as f64,
            });
        }
        let mut theta = a;
        theta.extend_from_slice(&b);
        theta.extend_from_slice(w.as_slice());
        Ok(Rbm { n1, n2, theta })
    }

    /// An RBM with `a`, `b` and `W` all i.i.d. `N(0, scale²)`, drawn in the order of the
    /// parameter layout (`a`, then `b`, then `W` column by column) by the Box–Muller transform
    /// on [`gumbolt_core::rng::uniform_f64`] draws (both normals of each pair are used), so
    /// the values are reproducible for a seeded generator.
    ///
    /// # Panics
    /// If `n1 == 0` or `n2 == 0`.
    ///
    /// ```
    /// let mut rng = gumbolt_core::rng::root_rng(1);
    /// let rbm = gumbolt_priors::Rbm::random(4, 5, 0.1, &mut rng);
    /// assert!(rbm.w().iter().all(|w| w.abs() < 1.0));
    /// ```
    pub fn random(n1: usize, n2: usize, scale: f32, rng: &mut impl rand::Rng) -> Rbm {
        let mut rbm = Rbm::zeros(n1, n2);
        let s = scale as f64;
        let mut pairs = rbm.theta.chunks_mut(2);
        for pair in &mut pairs {
            let (x, y) = crate::util::std_normal_pair(rng);
            pair[0] = (s * x) as f32;
            if let Some(v) = pair.get_mut(1) {
                *v = (s * y) as f32;
            }
        }
        rbm
    }

    /// Number of units in `z1`.
    pub fn n1(&self) -> usize {
        self.n1
    }

    /// Number of units in `z2`.
    pub fn n2(&self) -> usize {
        self.n2
    }

    /// Biases `a` of `z1`.
    pub fn a(&self) -> &[f32] {
        &self.theta[..self.n1]
    }

    /// Mutable biases `a`.
    pub fn a_mut(&mut self) -> &mut [f32] {
        &mut self.theta[..self.n1]
    }

    /// Biases `b` of `z2`.
    pub fn b(&self) -> &[f32] {
        &self.theta[self.n1..self.n1 + self.n2]
    }

    /// Mutable biases `b`.
    pub fn b_mut(&mut self) -> &mut [f32] {
        let n1 = self.n1;
        &mut self.theta[n1..n1 + self.n2]
    }

    /// Couplings `W` (`n1×n2`, column-major view into the parameter vector).
    ///
    /// ```
    /// use gumbolt_core::prior::Parametric;
    /// use nalgebra::DMatrix;
    /// let w = DMatrix::from_row_slice(2, 2, &[1.0f32, 2.0, 3.0, 4.0]);
    /// let rbm = gumbolt_priors::Rbm::new(vec![-1.0, -2.0], vec![-3.0, -4.0], w.clone()).unwrap();
    /// assert_eq!(rbm.w(), w);
    /// // θ = [a | b | W column-major]
    /// assert_eq!(rbm.params(), &[-1.0, -2.0, -3.0, -4.0, 1.0, 3.0, 2.0, 4.0]);
    /// ```
    pub fn w(&self) -> DMatrixView<'_, f32> {
        DMatrixView::from_slice(&self.theta[self.n1 + self.n2..], self.n1, self.n2)
    }

    /// Mutable couplings `W`.
    pub fn w_mut(&mut self) -> DMatrixViewMut<'_, f32> {
        let (n1, n2) = (self.n1, self.n2);
        DMatrixViewMut::from_slice(&mut self.theta[n1 + n2..], n1, n2)
    }

    /// Exact marginals `(E_p[z1], E_p[z2])`, by summing the larger side out and enumerating the
    /// smaller one (see [`ExactPartition::log_partition`]).
    ///
    /// # Errors
    /// [`CoreError::Intractable`] (wrapped) if the smaller side has more than
    /// [`gumbolt_core::exact::MAX_ENUMERATION_UNITS`] units.
    ///
    /// ```
    /// let rbm = gumbolt_priors::Rbm::new(vec![0.0], vec![3.0], nalgebra::DMatrix::zeros(1, 1)).unwrap();
    /// let (m1, m2) = rbm.exact_marginals().unwrap();
    /// assert!((m1[0] - 0.5).abs() < 1e-12);
    /// assert!((m2[0] - gumbolt_core::numerics::sigmoid(3.0)).abs() < 1e-12);
    /// ```
    pub fn exact_marginals(&self) -> Result<(Vec<f64>, Vec<f64>)> {
        let (mom, z1_enumerated) = self.moments(Level::Marginals)?;
        Ok(if z1_enumerated {
            (mom.e_z, mom.e_s)
        } else {
            (mom.e_s, mom.e_z)
        })
    }

    /// Runs the bipartite enumeration over the smaller side; returns whether it was `z1`.
    fn moments(&self, level: Level) -> std::result::Result<(bipartite::Moments, bool), CoreError> {
        let (n1, n2) = (self.n1, self.n2);
        let limit = gumbolt_core::exact::MAX_ENUMERATION_UNITS;
        let small = n1.min(n2);
        if small > limit {
            return Err(CoreError::Intractable {
                what: "RBM log-partition (smaller side)",
                units: small,
                limit,
            });
        }
        let a: Vec<f64> = self.a().iter().map(|&v| v as f64).collect();
        let b: Vec<f64> = self.b().iter().map(|&v| v as f64).collect();
        let w = &self.theta[n1 + n2..];
        if n1 <= n2 {
            // Enumerate z1: c = b + Wᵀz1; u_i = row i of W (strided in storage, gathered here).
            let mut u = vec![0.0f64; n1 * n2];
            for j in 0..n2 {
                for i in 0..n1 {
                    u[i * n2 + j] = w[i + j * n1] as f64;
                }
            }
            Ok((bipartite::enumerate(&a, &b, &u, level), true))
        } else {
            // Enumerate z2: c = a + W z2; u_j = column j of W (contiguous).
            let u: Vec<f64> = w.iter().map(|&v| v as f64).collect();
            Ok((bipartite::enumerate(&b, &a, &u, level), false))
        }
    }

    fn check_rows(&self, zeta: &DMatrixView<'_, f32>, what: &str) {
        assert_eq!(
            zeta.ncols(),
            self.n1 + self.n2,
            "Rbm::{what}: batch has {} columns, the RBM has n1 + n2 = {} units",
            zeta.ncols(),
            self.n1 + self.n2
        );
    }
}

impl Prior for Rbm {
    fn num_units(&self) -> usize {
        self.n1 + self.n2
    }

    /// `E(ζ_r) = −(ζ1_rᵀa + ζ2_rᵀb + ζ1_rᵀWζ2_r)` per row, as
    /// `−(Z1·a + rowsum((Z1·W + b) ⊙ Z2))` with one GEMM; accumulated per row in f64.
    fn energy_into(&self, zeta: DMatrixView<'_, f32>, out: &mut [f64]) {
        self.check_rows(&zeta, "energy_into");
        assert_eq!(out.len(), zeta.nrows(), "Rbm::energy_into: output length");
        let (n1, n2, rows) = (self.n1, self.n2, zeta.nrows());
        out.fill(0.0);
        if rows == 0 {
            return;
        }
        let z1 = zeta.columns(0, n1);
        let z2 = zeta.columns(n1, n2);
        for (i, &ai) in self.a().iter().enumerate() {
            let ai = ai as f64;
            let col = z1.column(i);
            for (o, &z) in out.iter_mut().zip(col.as_slice()) {
                *o += ai * z as f64;
            }
        }
        with_scratch(rows * n2, |t| {
            // β = 0: the product overwrites the scratch without reading it.
            let mut tv = DMatrixViewMut::from_slice(t, rows, n2);
            matmul_nn(&z1, &self.w(), &mut tv);
            for ((j, &bj), tj) in self.b().iter().enumerate().zip(t.chunks_exact(rows)) {
                let bj = bj as f64;
                let col = z2.column(j);
                for ((o, &z), &tj) in out.iter_mut().zip(col.as_slice()).zip(tj) {
                    *o += (bj + tj as f64) * z as f64;
                }
            }
        });
        for o in out.iter_mut() {
            *o = -*o;
        }
    }
}

impl EnergyGradient for Rbm {
    /// `∂E/∂ζ1 = −(a + Wζ2)`, `∂E/∂ζ2 = −(b + Wᵀζ1)` per row (rows: `−(Z2·Wᵀ + a)` and
    /// `−(Z1·W + b)`). `out` is resized to `[N, n1+n2]` if needed.
    fn energy_grad_into(&self, zeta: DMatrixView<'_, f32>, out: &mut Mat) {
        self.check_rows(&zeta, "energy_grad_into");
        let (n1, n2, rows) = (self.n1, self.n2, zeta.nrows());
        ensure_shape(out, rows, n1 + n2);
        let z1 = zeta.columns(0, n1);
        let z2 = zeta.columns(n1, n2);
        let w = self.w();
        gemm(
            -1.0,
            &z2,
            Op::N,
            &w,
            Op::T,
            0.0,
            &mut out.columns_mut(0, n1),
        );
        gemm(
            -1.0,
            &z1,
            Op::N,
            &w,
            Op::N,
            0.0,
            &mut out.columns_mut(n1, n2),
        );
        if rows == 0 {
            return;
        }
        // The biases, column by column over contiguous slices (`out` is column-major).
        let bias = self.a().iter().chain(self.b());
        for (col, &h) in out.as_mut_slice().chunks_exact_mut(rows).zip(bias) {
            col.iter_mut().for_each(|v| *v -= h);
        }
    }
}

impl Parametric for Rbm {
    /// θ = `[a (n1) | b (n2) | W column-major n1×n2]`.
    fn params(&self) -> &[f32] {
        &self.theta
    }

    fn params_mut(&mut self) -> &mut [f32] {
        &mut self.theta
    }
}

impl EnergyParamGradient for Rbm {
    /// `grad_a += Σ_r w_r ζ1_r`, `grad_b += Σ_r w_r ζ2_r`, `grad_W += Z1ᵀ diag(w) Z2`
    /// (`gemm_tn` on a row-weighted copy of the smaller side). Sums over rows of the biases are
    /// taken in f64.
    fn accumulate_neg_energy_grad(
        &self,
        zeta: DMatrixView<'_, f32>,
        weights: &[f32],
        grad: &mut [f32],
    ) {
        self.check_rows(&zeta, "accumulate_neg_energy_grad");
        let (n1, n2, rows) = (self.n1, self.n2, zeta.nrows());
        assert_eq!(
            weights.len(),
            rows,
            "Rbm::accumulate_neg_energy_grad: one weight per row"
        );
        assert_eq!(
            grad.len(),
            self.theta.len(),
            "Rbm::accumulate_neg_energy_grad: gradient length"
        );
        if rows == 0 {
            return;
        }
        for (k, g) in grad[..n1 + n2].iter_mut().enumerate() {
            let col = zeta.column(k);
            *g += crate::util::weighted_sum(col.as_slice(), weights) as f32;
        }
        let z1 = zeta.columns(0, n1);
        let z2 = zeta.columns(n1, n2);
        let mut gw = DMatrixViewMut::from_slice(&mut grad[n1 + n2..], n1, n2);
        // A row-weighted copy of the smaller side, in a reused scratch buffer.
        let (small, n_small) = if n1 <= n2 { (&z1, n1) } else { (&z2, n2) };
        with_scratch(rows * n_small, |zw| {
            for (i, dst) in zw.chunks_exact_mut(rows).enumerate() {
                let col = small.column(i);
                for ((d, &z), &w) in dst.iter_mut().zip(col.as_slice()).zip(weights) {
                    *d = z * w;
                }
            }
            let zw = DMatrixView::from_slice(zw, rows, n_small);
            if n1 <= n2 {
                gemm_tn(1.0, &zw, &z2, 1.0, &mut gw);
            } else {
                gemm_tn(1.0, &z1, &zw, 1.0, &mut gw);
            }
        });
    }
}

impl ExactPartition for Rbm {
    /// Exact `log Z = logsumexp_{z_s} [h_sᵀz_s + Σ_j softplus(c_j(z_s))]` over the smaller
    /// side `z_s` (the other side summed out analytically; docs/algorithms.md §1, §7.3): for `n1 ≤ n2`,
    /// `log p̃(z1) = aᵀz1 + Σ_j softplus(b_j + (Wᵀz1)_j)`, otherwise symmetrically over `z2`
    /// with `c = a + W z2`. Enumeration in Gray-code order with an `O(n_other)` update of `c`
    /// in f64, chunked and run on the available cores.
    ///
    /// # Errors
    /// [`CoreError::Intractable`] if `min(n1, n2) >` [`gumbolt_core::exact::MAX_ENUMERATION_UNITS`].
    fn log_partition(&self) -> gumbolt_core::Result<f64> {
        Ok(self.moments(Level::LogZ)?.0.log_z)
    }

    /// `∇θ log Z = E_p[∇θ(−E)]` in the parameter layout: `∂/∂a = E[z1]`, `∂/∂b = E[z2]`,
    /// `∂/∂W = E[z1 z2ᵀ]`, with the summed-out side Rao-Blackwellised to `σ(c)`
    /// (docs/algorithms.md §7.3).
    fn log_partition_grad(&self) -> gumbolt_core::Result<Vec<f64>> {
        let (n1, n2) = (self.n1, self.n2);
        let (mom, z1_enumerated) = self.moments(Level::Full)?;
        let mut g = vec![0.0; self.theta.len()];
        let gw_off = n1 + n2;
        if z1_enumerated {
            // e_zs is n2 × n1: entry (j, i) = E[σ(c_j) z1_i] = ∂/∂W_ij.
            g[..n1].copy_from_slice(&mom.e_z);
            g[n1..n1 + n2].copy_from_slice(&mom.e_s);
            for i in 0..n1 {
                for j in 0..n2 {
                    g[gw_off + i + j * n1] = mom.e_zs[j + i * n2];
                }
            }
        } else {
            // e_zs is n1 × n2: entry (i, j) = E[σ(c_i) z2_j], already column-major W.
            g[..n1].copy_from_slice(&mom.e_s);
            g[n1..n1 + n2].copy_from_slice(&mom.e_z);
            g[gw_off..].copy_from_slice(&mom.e_zs);
        }
        Ok(g)
    }
}

impl BlockConditionals for Rbm {
    fn block_sizes(&self) -> (usize, usize) {
        (self.n1, self.n2)
    }

    /// `logits(Two | z1) = b + Wᵀz1` (rows `Z1·W + b`) and `logits(One | z2) = a + W z2`
    /// (rows `Z2·Wᵀ + a`), through [`affine_unpacked`] (no packing of `W` per call; each row's
    /// logits independent of the other rows). `out` is resized to `[C, n_side]` if needed.
    fn block_logits(&self, side: Block, other: DMatrixView<'_, f32>, out: &mut Mat) {
        let rows = other.nrows();
        match side {
            Block::Two => {
                assert_eq!(
                    other.ncols(),
                    self.n1,
                    "Rbm::block_logits(Two): `other` must be [C, n1]"
                );
                ensure_shape(out, rows, self.n2);
                affine_unpacked(&other, &self.w(), Op::N, self.b(), out);
            }
            Block::One => {
                assert_eq!(
                    other.ncols(),
                    self.n2,
                    "Rbm::block_logits(One): `other` must be [C, n2]"
                );
                ensure_shape(out, rows, self.n1);
                affine_unpacked(&other, &self.w(), Op::T, self.a(), out);
            }
        }
    }

    /// With [`ChainProducts::Bf16x3`] on an AMX CPU: `W` and `Wᵀ` split and packed once
    /// ([`BinaryProductWeights`]), so each sweep's two products are exact terms summed in f32.
    fn prepared_conditionals(
        &self,
        products: ChainProducts,
    ) -> Option<Box<dyn BlockConditionals + '_>> {
        if products.effective() != ChainProducts::Bf16x3 {
            return None;
        }
        let w = self.w();
        Some(Box::new(RbmChainProducts {
            rbm: self,
            two: Arc::new(BinaryProductWeights::new(&w, Op::N)?),
            one: Arc::new(BinaryProductWeights::new(&w, Op::T)?),
        }))
    }
}

/// An [`Rbm`]'s block conditionals with prepared couplings
/// ([`Rbm::prepared_conditionals`]): `logits(Two | z1) = Z1·W + b` and
/// `logits(One | z2) = Z2·Wᵀ + a` through [`BinaryProductWeights`].
#[derive(Clone)]
struct RbmChainProducts<'a> {
    rbm: &'a Rbm,
    two: Arc<BinaryProductWeights>,
    one: Arc<BinaryProductWeights>,
}

impl std::fmt::Debug for RbmChainProducts<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RbmChainProducts({:?})", self.two)
    }
}

impl Prior for RbmChainProducts<'_> {
    fn num_units(&self) -> usize {
        self.rbm.num_units()
    }

    fn energy_into(&self, zeta: DMatrixView<'_, f32>, out: &mut [f64]) {
        self.rbm.energy_into(zeta, out)
    }
}

impl BlockConditionals for RbmChainProducts<'_> {
    fn block_sizes(&self) -> (usize, usize) {
        self.rbm.block_sizes()
    }

    fn block_logits(&self, side: Block, other: DMatrixView<'_, f32>, out: &mut Mat) {
        match side {
            Block::Two => self.two.affine(&other, self.rbm.b(), out),
            Block::One => self.one.affine(&other, self.rbm.a(), out),
        }
    }
}

impl SiteConditionals for Rbm {
    /// `g_i = −(a_i + Σ_j W_ij z2_j)` for `i < n1`, `g_{n1+j} = −(b_j + Σ_i W_ij z1_i)`,
    /// for every row of `z`, accumulated in f64 column by column.
    fn site_energy_gaps(&self, z: DMatrixView<'_, f32>, i: usize, out: &mut [f64]) {
        self.check_rows(&z, "site_energy_gaps");
        let (n1, n2) = (self.n1, self.n2);
        assert!(
            i < n1 + n2,
            "Rbm::site_energy_gaps: unit {i} out of range (n = {})",
            n1 + n2
        );
        assert_eq!(out.len(), z.nrows(), "Rbm::site_energy_gaps: output length");
        let w = self.w();
        if i < n1 {
            out.fill(-(self.a()[i] as f64));
            for j in 0..n2 {
                let wij = w[(i, j)] as f64;
                if wij != 0.0 {
                    for (o, &zj) in out.iter_mut().zip(z.column(n1 + j).as_slice()) {
                        *o -= wij * zj as f64;
                    }
                }
            }
        } else {
            let j = i - n1;
            out.fill(-(self.b()[j] as f64));
            for (k, &wkj) in w.column(j).iter().enumerate() {
                let wkj = wkj as f64;
                if wkj != 0.0 {
                    for (o, &zk) in out.iter_mut().zip(z.column(k).as_slice()) {
                        *o -= wkj * zk as f64;
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// JSON files.

const JSON_EXPECTED: &str =
    r#"a JSON object {"a": [n1 numbers], "b": [n2 numbers], "W": [[n2 numbers] × n1 rows]}"#;

fn format_err(origin: &str, reason: String, expected: &str) -> PriorError {
    PriorError::Format {
        origin: origin.to_string(),
        reason,
        expected: expected.to_string(),
    }
}

fn json_type(v: &serde_json::Value) -> &'static str {
    use serde_json::Value;
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Reads an array of finite f32 numbers.
fn json_numbers(origin: &str, name: &str, v: &serde_json::Value) -> Result<Vec<f32>> {
    let arr = v.as_array().ok_or_else(|| {
        format_err(
            origin,
            format!("`{name}` is {}", json_type(v)),
            "an array of numbers",
        )
    })?;
    arr.iter()
        .enumerate()
        .map(|(k, x)| {
            let f = x.as_f64().ok_or_else(|| {
                format_err(
                    origin,
                    format!("`{name}[{k}]` is {}", json_type(x)),
                    "a finite number",
                )
            })?;
            let f32v = f as f32;
            if f32v.is_finite() {
                Ok(f32v)
            } else {
                Err(format_err(
                    origin,
                    format!("`{name}[{k}]` = {f} is not finite in f32"),
                    "finite numbers (|x| < 3.4e38)",
                ))
            }
        })
        .collect()
}

impl Rbm {
    /// Parses the JSON format `{"a": [n1 numbers], "b": [n2 numbers], "W": [[n2 numbers] ×
    /// n1 rows]}` (`W[i][j]` couples `z1_i` and `z2_j`, the orientation of docs/algorithms.md §1).
    ///
    /// # Errors
    /// [`PriorError::Json`] for malformed JSON (with line and column), [`PriorError::Format`]
    /// for a missing or unknown key, a value of the wrong type, a row count of `W` different
    /// from `len(a)`, a row length different from `len(b)`, an empty side or a value that is
    /// not a finite f32. The origin in the message is `<string>`.
    ///
    /// ```
    /// let rbm = gumbolt_priors::Rbm::from_json_str(r#"{"a": [1], "b": [2, 3], "W": [[0.5, -1]]}"#).unwrap();
    /// assert_eq!(rbm.w()[(0, 1)], -1.0);
    /// assert!(gumbolt_priors::Rbm::from_json_str(r#"{"a": [1], "b": [2]}"#).unwrap_err()
    ///     .to_string().contains("missing key `W`"));
    /// ```
    pub fn from_json_str(s: &str) -> Result<Rbm> {
        Self::parse_json(s, "<string>")
    }

    /// The JSON form read by [`Rbm::from_json_str`]: one line each for `a` and `b`, one line
    /// per row of `W`; numbers in the shortest form that reads back to the same f32.
    ///
    /// # Errors
    /// [`PriorError::NonFinite`] if a parameter is NaN or infinite (JSON cannot hold it).
    ///
    /// ```
    /// let rbm = gumbolt_priors::Rbm::from_json_str(r#"{"a": [1], "b": [2, 3], "W": [[0.5, -1]]}"#).unwrap();
    /// let s = rbm.to_json_string().unwrap();
    /// assert_eq!(s, "{\n  \"a\": [1.0],\n  \"b\": [2.0, 3.0],\n  \"W\": [\n    [0.5, -1.0]\n  ]\n}\n");
    /// assert_eq!(gumbolt_priors::Rbm::from_json_str(&s).unwrap(), rbm);
    /// ```
    pub fn to_json_string(&self) -> Result<String> {
        check_finite("theta", &self.theta).map_err(|_| {
            let (k, &v) = self
                .theta
                .iter()
                .enumerate()
                .find(|(_, v)| !v.is_finite())
                .unwrap();
            PriorError::NonFinite {
                name: self.param_name(k),
                value: v as f64,
            }
        })?;
        fn push_list(out: &mut String, xs: impl Iterator<Item = f32>) {
            out.push('[');
            for (k, x) in xs.enumerate() {
                if k > 0 {
                    out.push_str(", ");
                }
                out.push_str(&serde_json::to_string(&x).expect("finite f32 serialises"));
            }
            out.push(']');
        }
        let mut s = String::with_capacity(16 * self.theta.len() + 64);
        s.push_str("{\n  \"a\": ");
        push_list(&mut s, self.a().iter().copied());
        s.push_str(",\n  \"b\": ");
        push_list(&mut s, self.b().iter().copied());
        s.push_str(",\n  \"W\": [\n");
        let w = self.w();
        for i in 0..self.n1 {
            s.push_str("    ");
            push_list(&mut s, w.row(i).iter().copied());
            s.push_str(if i + 1 < self.n1 { ",\n" } else { "\n" });
        }
        s.push_str("  ]\n}\n");
        Ok(s)
    }

    /// Reads an RBM from a JSON file (format of [`Rbm::from_json_str`]).
    ///
    /// # Errors
    /// [`PriorError::Io`] if the file cannot be read; otherwise the errors of
    /// [`Rbm::from_json_str`], naming the file.
    pub fn load_json(path: impl AsRef<Path>) -> Result<Rbm> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| PriorError::Io {
            path: path.to_path_buf(),
            action: "reading the RBM JSON file",
            source,
        })?;
        Self::parse_json(&text, &path.display().to_string())
    }

    /// Writes the RBM as JSON ([`Rbm::to_json_string`]) atomically: to a temporary file in the
    /// same directory, which is fsynced and then renamed over `path`.
    ///
    /// # Errors
    /// [`PriorError::NonFinite`] for a non-finite parameter; [`PriorError::Io`] naming the
    /// file if writing, syncing or renaming fails (the temporary file is removed).
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("gumbolt-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// let path = dir.join("rbm.json");
    /// let rbm = gumbolt_priors::Rbm::random(3, 2, 1.0, &mut gumbolt_core::rng::root_rng(0));
    /// rbm.save_json(&path).unwrap();
    /// assert_eq!(gumbolt_priors::Rbm::load_json(&path).unwrap(), rbm);
    /// std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn save_json(&self, path: impl AsRef<Path>) -> Result<()> {
        let text = self.to_json_string()?;
        atomic_write(path.as_ref(), text.as_bytes())
    }

    fn param_name(&self, k: usize) -> String {
        let (n1, n2) = (self.n1, self.n2);
        if k < n1 {
            format!("a[{k}]")
        } else if k < n1 + n2 {
            format!("b[{}]", k - n1)
        } else {
            let q = k - n1 - n2;
            format!("W[{}][{}]", q % n1, q / n1)
        }
    }

    fn parse_json(text: &str, origin: &str) -> Result<Rbm> {
        use serde_json::Value;
        let v: Value = serde_json::from_str(text).map_err(|e| {
            let (line, column) = (e.line(), e.column());
            let mut message = e.to_string();
            let suffix = format!(" at line {line} column {column}");
            if let Some(stripped) = message.strip_suffix(&suffix) {
                message = stripped.to_string();
            }
            PriorError::Json {
                origin: origin.to_string(),
                line,
                column,
                message,
            }
        })?;
        let obj = v.as_object().ok_or_else(|| {
            format_err(
                origin,
                format!("the top-level value is {}", json_type(&v)),
                JSON_EXPECTED,
            )
        })?;
        if let Some(k) = obj.keys().find(|k| !matches!(k.as_str(), "a" | "b" | "W")) {
            return Err(format_err(
                origin,
                format!("unknown key `{k}`"),
                "only the keys `a`, `b` and `W` (note the capital W)",
            ));
        }
        let get = |key: &str| {
            obj.get(key)
                .ok_or_else(|| format_err(origin, format!("missing key `{key}`"), JSON_EXPECTED))
        };
        let (av, bv, wv) = (get("a")?, get("b")?, get("W")?);
        let a = json_numbers(origin, "a", av)?;
        let b = json_numbers(origin, "b", bv)?;
        if a.is_empty() {
            return Err(format_err(
                origin,
                "`a` is empty".into(),
                "at least one unit in z1 (n1 ≥ 1)",
            ));
        }
        if b.is_empty() {
            return Err(format_err(
                origin,
                "`b` is empty".into(),
                "at least one unit in z2 (n2 ≥ 1)",
            ));
        }
        let (n1, n2) = (a.len(), b.len());
        let rows = wv.as_array().ok_or_else(|| {
            format_err(
                origin,
                format!("`W` is {}", json_type(wv)),
                "an array of n1 rows",
            )
        })?;
        if rows.len() != n1 {
            return Err(format_err(
                origin,
                format!("`W` has {} rows but `a` has {n1} entries", rows.len()),
                "one row of W per unit of z1 (len(W) = len(a))",
            ));
        }
        let mut w = DMatrix::<f32>::zeros(n1, n2);
        for (i, row) in rows.iter().enumerate() {
            let name = format!("W[{i}]");
            let r = json_numbers(origin, &name, row)?;
            if r.len() != n2 {
                return Err(format_err(
                    origin,
                    format!("`{name}` has {} entries but `b` has {n2}", r.len()),
                    "every row of W to have len(b) entries",
                ));
            }
            for (j, x) in r.into_iter().enumerate() {
                w[(i, j)] = x;
            }
        }
        Rbm::new(a, b, w)
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory: write, fsync,
/// rename (then a best-effort fsync of the directory).
pub(crate) fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let io = |action: &'static str, p: &Path| {
        let p = p.to_path_buf();
        move |source| PriorError::Io {
            path: p,
            action,
            source,
        }
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| PriorError::Io {
            path: path.to_path_buf(),
            action: "choosing a file name",
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the path has no file name",
            ),
        })?
        .to_string_lossy()
        .into_owned();
    let tmp = dir.join(format!(
        ".{name}.tmp.{}.{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(io("creating the temporary file", path))?;
        f.write_all(bytes)
            .map_err(io("writing the temporary file", path))?;
        f.sync_all()
            .map_err(io("syncing the temporary file", path))?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(io("renaming the temporary file over the target", path))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return result;
    }
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

impl gumbolt_core::prior::ColourConditionals for Rbm {
    /// The two sides: class 0 is `z1` (units `0..n1`), class 1 is `z2` (GB Eq. 4).
    fn colour_classes(&self) -> Vec<Vec<usize>> {
        let (n1, n2) = (self.n1(), self.n2());
        vec![(0..n1).collect(), (n1..n1 + n2).collect()]
    }

    /// [`BlockConditionals::block_logits`] of the side given the other side's columns.
    fn colour_logits(&self, class: usize, z: DMatrixView<'_, f32>, out: &mut Mat) {
        let (n1, n2) = (self.n1(), self.n2());
        match class {
            0 => self.block_logits(Block::One, z.columns(n1, n2), out),
            _ => self.block_logits(Block::Two, z.columns(0, n1), out),
        }
    }
}

#[cfg(test)]
mod tests;

//! The factorial Bernoulli prior `E(z) = −hᵀz` (the prior of GumBolt-nW, docs/algorithms.md §2.5, and
//! of the Concrete/Gumbel-softmax VAE).
//!
//! Everything is exact and cheap: `log Z = Σ_i softplus(h_i)`, `∇_h log Z = σ(h)`,
//! `E_p[z_i] = σ(h_i)`. It also implements [`BlockConditionals`] by viewing the units as two
//! blocks `z1 = z[..n1]`, `z2 = z[n1..]` with no couplings, so bipartite samplers and
//! estimators can be tested on it.

use crate::error::{PriorError, Result, check_finite};
use crate::util::{ensure_shape, weighted_sum};
use gumbolt_core::Mat;
use gumbolt_core::numerics::{sigmoid, softplus};
use gumbolt_core::prior::{
    Block, BlockConditionals, EnergyGradient, EnergyParamGradient, ExactPartition, Parametric,
    Prior, SiteConditionals,
};
use nalgebra::DMatrixView;
use serde::{Deserialize, Serialize};

/// Independent Bernoulli units with logits `h`: `E(z) = −hᵀz`, `p(z_i = 1) = σ(h_i)`.
///
/// Parameters θ = `h` (length `n`). For [`BlockConditionals`] the units split into
/// `z1 = z[..n1]` and `z2 = z[n1..]` (default `n1 = ⌊n/2⌋`, as the RBM side split of
/// docs/algorithms.md §1); an [`crate::Rbm`] with `W = 0` and biases `[a, b] = h` is the same model.
///
/// ```
/// use gumbolt_priors::FactorialBernoulli;
/// use gumbolt_core::prior::{ExactPartition, PriorExt};
/// use gumbolt_core::numerics::softplus;
/// let p = FactorialBernoulli::new(vec![1.0, -2.0]).unwrap();
/// assert!((p.log_partition().unwrap() - (softplus(1.0) + softplus(-2.0))).abs() < 1e-15);
/// let e = p.energies(&nalgebra::DMatrix::from_row_slice(1, 2, &[0.5f32, 1.0]));
/// assert!((e[0] - 1.5).abs() < 1e-12); // −(0.5·1 − 2·1)
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "BernoulliFlat", into = "BernoulliFlat")]
pub struct FactorialBernoulli {
    h: Vec<f32>,
    n1: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct BernoulliFlat {
    h: Vec<f32>,
    n1: usize,
}

impl From<FactorialBernoulli> for BernoulliFlat {
    fn from(p: FactorialBernoulli) -> Self {
        BernoulliFlat { h: p.h, n1: p.n1 }
    }
}

impl TryFrom<BernoulliFlat> for FactorialBernoulli {
    type Error = PriorError;
    fn try_from(f: BernoulliFlat) -> Result<Self> {
        FactorialBernoulli::with_split(f.h, f.n1)
    }
}

impl FactorialBernoulli {
    /// Units with logits `h`, split into blocks at `n1 = ⌊n/2⌋`.
    ///
    /// # Errors
    /// [`PriorError::NonFinite`] if a logit is NaN or infinite.
    pub fn new(h: Vec<f32>) -> Result<Self> {
        let n1 = h.len() / 2;
        Self::with_split(h, n1)
    }

    /// Units with logits `h`, split into blocks `z1 = z[..n1]`, `z2 = z[n1..]`.
    ///
    /// # Errors
    /// [`PriorError::InvalidSplit`] if `n1 > h.len()`, [`PriorError::NonFinite`] if a logit
    /// is NaN or infinite.
    ///
    /// ```
    /// use gumbolt_core::prior::BlockConditionals;
    /// let p = gumbolt_priors::FactorialBernoulli::with_split(vec![0.0; 5], 1).unwrap();
    /// assert_eq!(p.block_sizes(), (1, 4));
    /// assert!(gumbolt_priors::FactorialBernoulli::with_split(vec![0.0; 5], 6).is_err());
    /// ```
    pub fn with_split(h: Vec<f32>, n1: usize) -> Result<Self> {
        if n1 > h.len() {
            return Err(PriorError::InvalidSplit { n1, n: h.len() });
        }
        check_finite("h", &h)?;
        Ok(FactorialBernoulli { h, n1 })
    }

    /// `n` units with `h = 0` (the uniform prior, `log Z = n log 2`), split at `⌊n/2⌋`.
    pub fn zeros(n: usize) -> Self {
        FactorialBernoulli {
            h: vec![0.0; n],
            n1: n / 2,
        }
    }

    /// The logits `h`.
    pub fn h(&self) -> &[f32] {
        &self.h
    }

    /// Mutable logits `h`.
    pub fn h_mut(&mut self) -> &mut [f32] {
        &mut self.h
    }

    /// The size of block one.
    pub fn n1(&self) -> usize {
        self.n1
    }

    /// Exact marginals `E_p[z_i] = σ(h_i)`.
    ///
    /// ```
    /// let p = gumbolt_priors::FactorialBernoulli::new(vec![0.0, 2.0]).unwrap();
    /// assert_eq!(p.marginals()[0], 0.5);
    /// ```
    pub fn marginals(&self) -> Vec<f64> {
        self.h.iter().map(|&h| sigmoid(h as f64)).collect()
    }

    fn check_rows(&self, zeta: &DMatrixView<'_, f32>, what: &str) {
        assert_eq!(
            zeta.ncols(),
            self.h.len(),
            "FactorialBernoulli::{what}: batch has {} columns, the prior has {} units",
            zeta.ncols(),
            self.h.len()
        );
    }
}

impl Prior for FactorialBernoulli {
    fn num_units(&self) -> usize {
        self.h.len()
    }

    /// `E(ζ_r) = −Σ_i h_i ζ_ri`, accumulated per row in f64 (unit by unit).
    fn energy_into(&self, zeta: DMatrixView<'_, f32>, out: &mut [f64]) {
        self.check_rows(&zeta, "energy_into");
        assert_eq!(
            out.len(),
            zeta.nrows(),
            "FactorialBernoulli::energy_into: output length"
        );
        out.fill(0.0);
        for (i, &hi) in self.h.iter().enumerate() {
            let hi = hi as f64;
            for (o, &z) in out.iter_mut().zip(zeta.column(i).as_slice()) {
                *o += hi * z as f64;
            }
        }
        for o in out.iter_mut() {
            *o = -*o;
        }
    }
}

impl EnergyGradient for FactorialBernoulli {
    /// `∂E/∂ζ_i = −h_i` on every row (`out` resized to `[N, n]` if needed).
    fn energy_grad_into(&self, zeta: DMatrixView<'_, f32>, out: &mut Mat) {
        self.check_rows(&zeta, "energy_grad_into");
        ensure_shape(out, zeta.nrows(), self.h.len());
        for (i, &hi) in self.h.iter().enumerate() {
            out.column_mut(i).fill(-hi);
        }
    }
}

impl Parametric for FactorialBernoulli {
    /// θ = `h`.
    fn params(&self) -> &[f32] {
        &self.h
    }

    fn params_mut(&mut self) -> &mut [f32] {
        &mut self.h
    }
}

impl EnergyParamGradient for FactorialBernoulli {
    /// `grad_i += Σ_r w_r ζ_ri` (sums in f64).
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
            "FactorialBernoulli: one weight per row"
        );
        assert_eq!(
            grad.len(),
            self.h.len(),
            "FactorialBernoulli: gradient length"
        );
        for (i, g) in grad.iter_mut().enumerate() {
            *g += weighted_sum(zeta.column(i).as_slice(), weights) as f32;
        }
    }
}

impl ExactPartition for FactorialBernoulli {
    /// `log Z = Σ_i softplus(h_i)`, for any number of units.
    fn log_partition(&self) -> gumbolt_core::Result<f64> {
        Ok(self.h.iter().map(|&h| softplus(h as f64)).sum())
    }

    /// `∂ log Z/∂h_i = σ(h_i)`.
    fn log_partition_grad(&self) -> gumbolt_core::Result<Vec<f64>> {
        Ok(self.marginals())
    }
}

impl BlockConditionals for FactorialBernoulli {
    fn block_sizes(&self) -> (usize, usize) {
        (self.n1, self.h.len() - self.n1)
    }

    /// `logits(One | z2) = h[..n1]` and `logits(Two | z1) = h[n1..]` on every row: the blocks
    /// do not interact.
    fn block_logits(&self, side: Block, other: DMatrixView<'_, f32>, out: &mut Mat) {
        let (n1, n2) = self.block_sizes();
        let (h, n_other) = match side {
            Block::One => (&self.h[..n1], n2),
            Block::Two => (&self.h[n1..], n1),
        };
        assert_eq!(
            other.ncols(),
            n_other,
            "FactorialBernoulli::block_logits({side:?}): `other` width"
        );
        ensure_shape(out, other.nrows(), h.len());
        for (j, &hj) in h.iter().enumerate() {
            out.column_mut(j).fill(hj);
        }
    }
}

impl SiteConditionals for FactorialBernoulli {
    /// `g_i = −h_i` for every row.
    fn site_energy_gaps(&self, z: DMatrixView<'_, f32>, i: usize, out: &mut [f64]) {
        self.check_rows(&z, "site_energy_gaps");
        assert_eq!(
            out.len(),
            z.nrows(),
            "FactorialBernoulli::site_energy_gaps: output length"
        );
        out.fill(-(self.h[i] as f64));
    }
}

impl gumbolt_core::prior::ColourConditionals for FactorialBernoulli {
    /// One class: every unit is independent of the others.
    fn colour_classes(&self) -> Vec<Vec<usize>> {
        vec![(0..self.h().len()).collect()]
    }

    /// `h` in every row.
    fn colour_logits(&self, _class: usize, z: DMatrixView<'_, f32>, out: &mut Mat) {
        for (k, &h) in self.h().iter().enumerate() {
            out.as_mut_slice()[k * z.nrows()..(k + 1) * z.nrows()].fill(h);
        }
    }
}

#[cfg(test)]
#[allow(clippy::needless_range_loop)] // index-heavy reference formulas
mod tests {
    use super::*;
    use crate::Rbm;
    use crate::test_util::*;
    use gumbolt_core::prior::PriorExt;
    use nalgebra::DMatrix;

    fn random(n: usize, seed: u64) -> FactorialBernoulli {
        let h = uniforms(n, -3.0, 3.0, &mut rng(seed))
            .iter()
            .map(|&x| x as f32)
            .collect();
        FactorialBernoulli::new(h).unwrap()
    }

    #[test]
    fn exact_quantities_match_enumeration_and_finite_differences() {
        let mut p = random(6, 1);
        let e = gumbolt_core::exact::enumerate(&p).unwrap();
        assert_close(p.log_partition().unwrap(), e.log_z, 1e-12, "log Z");
        let g = p.log_partition_grad().unwrap();
        for i in 0..6 {
            assert_close(g[i], e.marginals[i], 1e-12, "σ(h) = marginal");
            let th = p.h()[i];
            p.h_mut()[i] = th + 1e-2;
            let (fp, hp) = (p.log_partition().unwrap(), p.h()[i]);
            p.h_mut()[i] = th - 1e-2;
            let (fm, hm) = (p.log_partition().unwrap(), p.h()[i]);
            p.h_mut()[i] = th;
            assert_close(g[i], (fp - fm) / (hp - hm) as f64, 1e-5, "d log Z/dh");
        }
    }

    #[test]
    fn energy_and_parameter_gradients_match_finite_differences() {
        let mut r = rng(2);
        let mut p = random(5, 3);
        let zeta = relaxed(4, 5, &mut r);
        let mut g = Mat::zeros(0, 0);
        p.energy_grad_into(zeta.as_view(), &mut g);
        for i in 0..5 {
            let (mut zp, mut zm) = (zeta.clone(), zeta.clone());
            zp.column_mut(i).add_scalar_mut(0.25);
            zm.column_mut(i).add_scalar_mut(-0.25);
            let (ep, em) = (p.energies(&zp), p.energies(&zm));
            for row in 0..4 {
                assert_close(g[(row, i)] as f64, (ep[row] - em[row]) / 0.5, 1e-6, "dE/dζ");
            }
        }
        let weights = [0.5f32, -1.0, 2.0, 0.25];
        let mut grad = vec![0.0f32; 5];
        p.accumulate_neg_energy_grad(zeta.as_view(), &weights, &mut grad);
        let obj = |p: &FactorialBernoulli| -> f64 {
            -p.energies(&zeta)
                .iter()
                .zip(&weights)
                .map(|(e, &w)| e * w as f64)
                .sum::<f64>()
        };
        for k in 0..5 {
            let th = p.h()[k];
            p.h_mut()[k] = th + 0.5;
            let (fp, hp) = (obj(&p), p.h()[k]);
            p.h_mut()[k] = th - 0.5;
            let (fm, hm) = (obj(&p), p.h()[k]);
            p.h_mut()[k] = th;
            assert_close(
                grad[k] as f64,
                (fp - fm) / (hp - hm) as f64,
                1e-5,
                "d(−E)/dh",
            );
        }
    }

    #[test]
    fn conditionals() {
        let p = FactorialBernoulli::with_split(vec![1.0, 2.0, 3.0], 1).unwrap();
        let z = binary(3, 3, &mut rng(4));
        let mut out = Mat::zeros(0, 0);
        p.block_logits(Block::Two, z.columns(0, 1), &mut out);
        assert_eq!(
            out,
            DMatrix::from_row_slice(3, 2, &[2.0, 3.0, 2.0, 3.0, 2.0, 3.0])
        );
        p.block_logits(Block::One, z.columns(1, 2), &mut out);
        assert_eq!(out, DMatrix::from_element(3, 1, 1.0));
        let mut gaps = vec![0.0; 3];
        p.site_energy_gaps(z.as_view(), 2, &mut gaps);
        assert_eq!(gaps, vec![-3.0; 3]);
        assert_eq!(FactorialBernoulli::zeros(5).block_sizes(), (2, 3));
        assert!(matches!(
            FactorialBernoulli::new(vec![f32::NAN]),
            Err(PriorError::NonFinite { .. })
        ));
        assert!(matches!(
            FactorialBernoulli::with_split(vec![0.0], 2),
            Err(PriorError::InvalidSplit { .. })
        ));
        let s = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<FactorialBernoulli>(&s).unwrap(), p);
        assert!(serde_json::from_str::<FactorialBernoulli>(r#"{"h": [1], "n1": 3}"#).is_err());
    }

    #[test]
    fn rbm_with_zero_couplings_is_the_factorial_prior() {
        let mut r = rng(5);
        for (n1, n2) in [(1, 1), (3, 5), (6, 2)] {
            let mut rbm = Rbm::random(n1, n2, 1.5, &mut r);
            rbm.w_mut().fill(0.0);
            let h: Vec<f32> = rbm.a().iter().chain(rbm.b()).copied().collect();
            let fb = FactorialBernoulli::with_split(h, n1).unwrap();
            let zeta = relaxed(8, n1 + n2, &mut r);
            assert_eq!(rbm.energies(&zeta), fb.energies(&zeta), "energies");
            let (mut g1, mut g2) = (Mat::zeros(0, 0), Mat::zeros(0, 0));
            rbm.energy_grad_into(zeta.as_view(), &mut g1);
            fb.energy_grad_into(zeta.as_view(), &mut g2);
            assert_eq!(g1, g2, "dE/dζ");
            let w = vec![0.3f32; 8];
            let (mut p1, mut p2) = (vec![0.0f32; rbm.params().len()], vec![0.0f32; n1 + n2]);
            rbm.accumulate_neg_energy_grad(zeta.as_view(), &w, &mut p1);
            fb.accumulate_neg_energy_grad(zeta.as_view(), &w, &mut p2);
            assert_eq!(p1[..n1 + n2], p2[..], "d(−E)/d(a, b)");
            assert_close(
                rbm.log_partition().unwrap(),
                fb.log_partition().unwrap(),
                1e-12,
                "log Z",
            );
            let (l1, l2) = (
                rbm.log_partition_grad().unwrap(),
                fb.log_partition_grad().unwrap(),
            );
            for k in 0..n1 + n2 {
                assert_close(l1[k], l2[k], 1e-13, "d log Z/d(a, b)");
            }
            let (m1, m2) = rbm.exact_marginals().unwrap();
            assert_eq!(m1.len() + m2.len(), n1 + n2);
            for (k, m) in m1.iter().chain(&m2).enumerate() {
                assert_close(*m, fb.marginals()[k], 1e-13, "marginals");
            }
            for side in [Block::One, Block::Two] {
                let other = match side {
                    Block::One => zeta.columns(n1, n2),
                    Block::Two => zeta.columns(0, n1),
                };
                let (mut o1, mut o2) = (Mat::zeros(0, 0), Mat::zeros(0, 0));
                rbm.block_logits(side, other, &mut o1);
                fb.block_logits(side, other, &mut o2);
                assert_eq!(o1, o2, "block logits {side:?}");
            }
            let (mut s1, mut s2) = (vec![0.0; 8], vec![0.0; 8]);
            for i in 0..n1 + n2 {
                rbm.site_energy_gaps(zeta.as_view(), i, &mut s1);
                fb.site_energy_gaps(zeta.as_view(), i, &mut s2);
                assert_eq!(s1, s2, "site gaps");
            }
        }
    }
}

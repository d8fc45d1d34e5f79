//! Exact products of 0/1 matrices with f32 weights on Intel AMX: the block conditionals of
//! Gibbs chains, `logits = Z·op(W) + bias` with binary states `Z` (docs/architecture.md,
//! "Chain products").
//!
//! Each weight is split once into three bf16 parts whose sum is the weight exactly
//! (`w = hi + mid + lo`, 8 + 8 + 8 significant bits). A 0/1 state is exact in bf16, so every
//! product `z·part` is exact and the tile unit sums them in f32: the accuracy of an f32 GEMM
//! (one f32 rounding per addition), not its bits, since the additions come in another order.
//! Packing the weights costs about as much as one product; it pays off over the hundreds of
//! products (sweeps) that use the same weights.

use super::Op;
use crate::Mat;
use nalgebra::{DMatrixView, Dim, Matrix, RawStorage};

/// The weights `op(W)` (`k×n`) of `Z·op(W) + bias`, prepared for exact products with 0/1
/// matrices `Z` (`C×k`) on AMX.
///
/// ```
/// use gumbolt_core::Mat;
/// use gumbolt_core::linalg::{BinaryProductWeights, Op, affine_unpacked};
/// let w = Mat::from_fn(40, 24, |i, j| ((i * 7 + j * 3) % 11) as f32 * 0.37 - 1.5);
/// let z = Mat::from_fn(50, 40, |c, i| ((c * 5 + i * 3) % 4 == 0) as u8 as f32);
/// let bias = vec![0.25f32; 24];
/// if let Some(prepared) = BinaryProductWeights::new(&w, Op::N) {
///     let mut exact_terms = Mat::zeros(50, 24);
///     prepared.affine(&z.as_view(), &bias, &mut exact_terms);
///     let mut f32_gemm = Mat::zeros(50, 24);
///     affine_unpacked(&z, &w, Op::N, &bias, &mut f32_gemm);
///     assert!((exact_terms - f32_gemm).amax() < 1e-5);
/// } // None: this CPU has no AMX (use the f32 products)
/// ```
pub struct BinaryProductWeights {
    #[cfg(target_arch = "x86_64")]
    panel: super::amx::SplitPanel,
}

impl BinaryProductWeights {
    /// Whether this CPU and operating system run the products (AMX-BF16 on x86-64 Linux).
    pub fn available() -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            super::amx::available()
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }

    /// Prepares `op(w)` (`k×n`: `k` inputs, `n` outputs); `None` when the products are not
    /// [`available`](Self::available). Weights must be finite and below 3.38·10³⁸ in
    /// magnitude (the largest bf16); weights under about 2⁻¹¹⁰ lose their lowest part.
    pub fn new<R, C, S>(w: &Matrix<f32, R, C, S>, op: Op) -> Option<Self>
    where
        R: Dim,
        C: Dim,
        S: RawStorage<f32, R, C>,
    {
        #[cfg(target_arch = "x86_64")]
        {
            let (rs, cs) = w.strides();
            let (rows, cols) = w.shape();
            let (k, n, rs, cs) = match op {
                Op::N => (rows, cols, rs, cs),
                Op::T => (cols, rows, cs, rs),
            };
            if k == 0 || n == 0 {
                return None;
            }
            // SAFETY: nalgebra's storage holds every (i, j) of `w` at i·rs + j·cs from its
            // first element; op only swaps the roles of the strides.
            let panel =
                unsafe { super::amx::split_panel(k, n, w.data.ptr(), rs as isize, cs as isize) }?;
            Some(Self { panel })
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (w, op);
            None
        }
    }

    /// `(k, n)`: the shape of `op(W)`.
    pub fn shape(&self) -> (usize, usize) {
        #[cfg(target_arch = "x86_64")]
        {
            (self.panel.k(), self.panel.rows())
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            unreachable!("BinaryProductWeights is never built off x86-64")
        }
    }

    /// `out ← z·op(W) + bias` for a `C×k` matrix `z` of 0.0/1.0 entries (other values are
    /// rounded to bf16) whose columns are contiguous; `out` becomes `C×n`. Row `c` of `out`
    /// depends only on row `c` of `z`, bit for bit, whatever `C`.
    ///
    /// # Panics
    /// If `z` has not `k` columns or unit row stride, or `bias` is not of length `n`.
    pub fn affine(&self, z: &DMatrixView<'_, f32>, bias: &[f32], out: &mut Mat) {
        let (k, n) = self.shape();
        let c = z.nrows();
        assert!(
            z.ncols() == k && bias.len() == n,
            "BinaryProductWeights::affine: z {}x{}, bias {} for weights {k}x{n}",
            z.nrows(),
            z.ncols(),
            bias.len()
        );
        if out.shape() != (c, n) {
            *out = Mat::zeros(c, n);
        }
        if c == 0 {
            return;
        }
        for (col, &b) in out.as_mut_slice().chunks_exact_mut(c).zip(bias) {
            col.fill(b);
        }
        let (rsz, ldz) = z.strides();
        assert!(
            rsz == 1 || c == 1,
            "BinaryProductWeights::affine: z must have unit row stride"
        );
        #[cfg(target_arch = "x86_64")]
        // SAFETY: z is `c×k` with columns `ldz` apart (rows adjacent, or a single row),
        // out is `c×n` contiguous and distinct from z; the panel exists, so AMX is available.
        unsafe {
            super::amx::split_product(&self.panel, c, z.as_ptr(), ldz, out.as_mut_ptr(), c);
        }
    }
}

impl std::fmt::Debug for BinaryProductWeights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (k, n) = self.shape();
        write!(f, "BinaryProductWeights({k}x{n}, bf16x3)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linalg::affine_unpacked;

    fn weights(k: usize, n: usize, seed: u64) -> Mat {
        // Magnitudes over several octaves, signs mixed: every part of the split is used.
        Mat::from_fn(k, n, |i, j| {
            let h = (i as u64 * 2_654_435_761 + j as u64 * 40_503 + seed * 97) % 10_007;
            let x = h as f32 / 10_007.0 - 0.5;
            x * (1.0 + (h % 7) as f32).exp2() * 0.1
        })
    }

    fn states(c: usize, k: usize, seed: u64) -> Mat {
        Mat::from_fn(c, k, |r, i| {
            (((r as u64 * 31 + i as u64 * 17 + seed) * 2_654_435_761) >> 7) as u8 as f32
        })
        .map(|v| {
            if (v as u32).is_multiple_of(3) {
                1.0
            } else {
                0.0
            }
        })
    }

    #[test]
    fn parts_sum_to_the_weight_exactly() {
        use crate::linalg::amx::{from_bf16, split_bf16};
        for i in 0..100_000u32 {
            let x = f32::from_bits(i.wrapping_mul(2_654_435_761) % 0x7f00_0000)
                * if i % 2 == 0 { 1.0 } else { -1.0 };
            if x.abs() < 1e-30 || !x.is_finite() {
                continue;
            }
            let [hi, mid, lo] = split_bf16(x);
            // The sum in f64 is exact (three values of at most 8 significant bits).
            let sum = from_bf16(hi) as f64 + from_bf16(mid) as f64 + from_bf16(lo) as f64;
            assert_eq!(sum, x as f64, "x = {x:e}");
        }
    }

    #[test]
    fn products_are_exact_terms_summed_in_f32() {
        if !BinaryProductWeights::available() {
            eprintln!("skipped: this CPU or kernel has no AMX-BF16");
            return;
        }
        // The PCD shapes of `~~` (200 × 200) and `~` (100 × 100), and ragged edges.
        for (si, &(c, k, n)) in [(100, 200, 200), (32, 100, 100), (37, 45, 70), (1, 33, 17)]
            .iter()
            .enumerate()
        {
            let w = weights(k, n, si as u64);
            let wt = w.transpose();
            let z = states(c, k, si as u64);
            let bias: Vec<f32> = (0..n).map(|j| j as f32 * 0.01 - 0.3).collect();
            for (ww, op) in [(&w, Op::N), (&wt, Op::T)] {
                let prepared = BinaryProductWeights::new(ww, op).unwrap();
                assert_eq!(prepared.shape(), (k, n));
                let mut got = Mat::zeros(0, 0);
                prepared.affine(&z.as_view(), &bias, &mut got);
                let mut f32_gemm = Mat::zeros(c, n);
                affine_unpacked(&z, ww, op, &bias, &mut f32_gemm);
                for j in 0..n {
                    for r in 0..c {
                        // Exact reference in f64; both f32 results within k + 1 roundings of
                        // the largest partial sum's magnitude.
                        let mut exact = bias[j] as f64;
                        let mut mag = bias[j].abs() as f64;
                        for i in 0..k {
                            let t = z[(r, i)] as f64 * w[(i, j)] as f64;
                            exact += t;
                            mag += t.abs();
                        }
                        let tol = (k + 1) as f64 * mag * f32::EPSILON as f64 / 2.0 + 1e-30;
                        let err = (got[(r, j)] as f64 - exact).abs();
                        assert!(
                            err <= tol,
                            "{c}x{k}x{n} {op:?} ({r},{j}): err {err} tol {tol}"
                        );
                        let err32 = (f32_gemm[(r, j)] as f64 - exact).abs();
                        assert!(err32 <= tol, "the f32 reference itself");
                    }
                }
            }
        }
    }

    #[test]
    fn each_row_depends_only_on_its_own_states() {
        if !BinaryProductWeights::available() {
            eprintln!("skipped: this CPU or kernel has no AMX-BF16");
            return;
        }
        let (c, k, n) = (100, 200, 200);
        let w = weights(k, n, 5);
        let z = states(c, k, 9);
        let bias = vec![0.1f32; n];
        let prepared = BinaryProductWeights::new(&w, Op::T).unwrap();
        let mut all = Mat::zeros(c, n);
        prepared.affine(&z.as_view(), &bias, &mut all);
        // The chains in groups of 32 (the PCD shards), and one at a time.
        for group in [32, 1] {
            for r0 in (0..c).step_by(group) {
                let rows = group.min(c - r0);
                let part = z.rows(r0, rows).clone_owned();
                let mut got = Mat::zeros(rows, n);
                prepared.affine(&part.as_view(), &bias, &mut got);
                assert_eq!(
                    got,
                    all.rows(r0, rows).clone_owned(),
                    "rows {r0}.. of {group}"
                );
            }
        }
    }
}

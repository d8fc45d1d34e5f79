//! GEMM helpers on nalgebra matrices that always reach `matrixmultiply::sgemm`.
//!
//! nalgebra's `tr_mul`, `gemm_tr` and `ad_mul` do not use matrixmultiply and run about 10x slower
//! (nalgebra issue #717; engineering notes). These helpers pass the operands' strides straight to
//! `sgemm`, so a transpose is only a swap of strides: no copy, no slow path, and bit-identical
//! results to the untransposed product.
//!
//! All helpers compute `C ← α·op(A)·op(B) + β·C` on column-major f32 matrices or views.

use nalgebra::{Dim, Matrix, RawStorage, RawStorageMut};

/// Whether an operand enters the product as it is or transposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `A`
    N,
    /// `Aᵀ`
    T,
}

fn dims<R: Dim, C: Dim, S: RawStorage<f32, R, C>>(
    m: &Matrix<f32, R, C, S>,
    op: Op,
) -> (usize, usize, isize, isize) {
    let (r, c) = m.shape();
    let (rs, cs) = m.strides();
    match op {
        Op::N => (r, c, rs as isize, cs as isize),
        Op::T => (c, r, cs as isize, rs as isize),
    }
}

/// `C ← α·op(A)·op(B) + β·C` through `matrixmultiply::sgemm`.
///
/// # Panics
/// If the shapes of `op(A)`, `op(B)` and `C` are inconsistent (a programming error).
///
/// ```
/// use gumbolt_core::linalg::{gemm, Op};
/// use nalgebra::DMatrix;
/// let a = DMatrix::from_row_slice(2, 3, &[1.0f32, 2., 3., 4., 5., 6.]);
/// let b = DMatrix::from_row_slice(2, 3, &[1.0f32, 0., 1., 0., 1., 0.]);
/// let mut c = DMatrix::<f32>::zeros(2, 2);
/// gemm(1.0, &a, Op::N, &b, Op::T, 0.0, &mut c); // A·Bᵀ
/// assert_eq!(c, &a * b.transpose());
/// ```
pub fn gemm<R1, C1, S1, R2, C2, S2, R3, C3, S3>(
    alpha: f32,
    a: &Matrix<f32, R1, C1, S1>,
    op_a: Op,
    b: &Matrix<f32, R2, C2, S2>,
    op_b: Op,
    beta: f32,
    c: &mut Matrix<f32, R3, C3, S3>,
) where
    R1: Dim,
    C1: Dim,
    S1: RawStorage<f32, R1, C1>,
    R2: Dim,
    C2: Dim,
    S2: RawStorage<f32, R2, C2>,
    R3: Dim,
    C3: Dim,
    S3: RawStorageMut<f32, R3, C3>,
{
    let (m, k, rsa, csa) = dims(a, op_a);
    let (k2, n, rsb, csb) = dims(b, op_b);
    let (mc, nc) = c.shape();
    assert!(
        k == k2 && m == mc && n == nc,
        "gemm: shapes op(A) {m}x{k}, op(B) {k2}x{n}, C {mc}x{nc} are inconsistent"
    );
    let (rsc, csc) = c.strides();
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        // matrixmultiply handles k = 0 by scaling C by beta; do the same explicitly.
        for j in 0..n {
            for i in 0..m {
                let v = &mut c[(i, j)];
                *v = if beta == 0.0 { 0.0 } else { beta * *v };
            }
        }
        return;
    }
    // SAFETY: the shapes were checked above; the pointers and strides come from nalgebra
    // matrices whose storage covers every (i, j) with i < rows, j < cols at
    // ptr + i·row_stride + j·col_stride. C is borrowed mutably, so it cannot alias A or B.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            alpha,
            a.data.ptr(),
            rsa,
            csa,
            b.data.ptr(),
            rsb,
            csb,
            beta,
            c.data.ptr_mut(),
            rsc as isize,
            csc as isize,
        );
    }
}

/// `C ← A·B` (overwrites C).
pub fn matmul_nn<R1, C1, S1, R2, C2, S2, R3, C3, S3>(
    a: &Matrix<f32, R1, C1, S1>,
    b: &Matrix<f32, R2, C2, S2>,
    c: &mut Matrix<f32, R3, C3, S3>,
) where
    R1: Dim,
    C1: Dim,
    S1: RawStorage<f32, R1, C1>,
    R2: Dim,
    C2: Dim,
    S2: RawStorage<f32, R2, C2>,
    R3: Dim,
    C3: Dim,
    S3: RawStorageMut<f32, R3, C3>,
{
    gemm(1.0, a, Op::N, b, Op::N, 0.0, c);
}

/// `C ← A·Bᵀ` (overwrites C), e.g. the Gibbs half-sweep `Z2·Wᵀ`.
pub fn matmul_nt<R1, C1, S1, R2, C2, S2, R3, C3, S3>(
    a: &Matrix<f32, R1, C1, S1>,
    b: &Matrix<f32, R2, C2, S2>,
    c: &mut Matrix<f32, R3, C3, S3>,
) where
    R1: Dim,
    C1: Dim,
    S1: RawStorage<f32, R1, C1>,
    R2: Dim,
    C2: Dim,
    S2: RawStorage<f32, R2, C2>,
    R3: Dim,
    C3: Dim,
    S3: RawStorageMut<f32, R3, C3>,
{
    gemm(1.0, a, Op::N, b, Op::T, 0.0, c);
}

/// `C ← α·Aᵀ·B + β·C`, e.g. weight gradients `Xᵀ·dY` accumulated into C.
pub fn gemm_tn<R1, C1, S1, R2, C2, S2, R3, C3, S3>(
    alpha: f32,
    a: &Matrix<f32, R1, C1, S1>,
    b: &Matrix<f32, R2, C2, S2>,
    beta: f32,
    c: &mut Matrix<f32, R3, C3, S3>,
) where
    R1: Dim,
    C1: Dim,
    S1: RawStorage<f32, R1, C1>,
    R2: Dim,
    C2: Dim,
    S2: RawStorage<f32, R2, C2>,
    R3: Dim,
    C3: Dim,
    S3: RawStorageMut<f32, R3, C3>,
{
    gemm(alpha, a, Op::T, b, Op::N, beta, c);
}

/// Adds `v` to every row of `m` (a bias broadcast), one contiguous column at a time so the
/// inner loop vectorises.
///
/// ```
/// let mut m = gumbolt_core::Mat::zeros(2, 3);
/// gumbolt_core::linalg::add_row_vector(&mut m, &[1.0, 2.0, 3.0]);
/// assert_eq!(m.row(1).iter().copied().collect::<Vec<_>>(), vec![1.0, 2.0, 3.0]);
/// ```
pub fn add_row_vector(m: &mut crate::Mat, v: &[f32]) {
    assert_eq!(m.ncols(), v.len(), "add_row_vector: width mismatch");
    let rows = m.nrows();
    if rows == 0 {
        return;
    }
    for (col, &vj) in m.as_mut_slice().chunks_exact_mut(rows).zip(v) {
        for x in col.iter_mut() {
            *x += vj;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::{DMatrix, DMatrixView};

    fn lcg(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (s >> 8) as f32 / (1u32 << 24) as f32 - 0.5
            })
            .collect()
    }

    #[test]
    fn all_transpose_combinations_match_naive() {
        let a = DMatrix::from_vec(7, 5, lcg(35, 1));
        let b = DMatrix::from_vec(5, 9, lcg(45, 2));
        let c0 = DMatrix::from_vec(7, 9, lcg(63, 3));
        let at = a.transpose();
        let bt = b.transpose();
        let want = &a * &b * 0.5 + &c0 * 2.0;
        for (aa, oa) in [(&a, Op::N), (&at, Op::T)] {
            for (bb, ob) in [(&b, Op::N), (&bt, Op::T)] {
                let mut c = c0.clone();
                gemm(0.5, aa, oa, bb, ob, 2.0, &mut c);
                assert!((&c - &want).abs().max() < 1e-5, "{oa:?}{ob:?}");
            }
        }
    }

    #[test]
    fn works_on_column_views_and_empty_inner_dimension() {
        let z = DMatrix::from_vec(4, 6, lcg(24, 4));
        let w = DMatrix::from_vec(2, 4, lcg(8, 5));
        let z1: DMatrixView<f32> = z.columns(0, 2);
        let mut out = DMatrix::zeros(4, 4);
        matmul_nn(&z1, &w, &mut out);
        assert!((&out - z.columns(0, 2) * &w).abs().max() < 1e-6);
        let e = DMatrix::<f32>::zeros(3, 0);
        let f = DMatrix::<f32>::zeros(0, 2);
        let mut g = DMatrix::from_element(3, 2, 7.0f32);
        gemm(1.0, &e, Op::N, &f, Op::N, 0.0, &mut g);
        assert_eq!(g, DMatrix::zeros(3, 2));
    }

    #[test]
    fn tn_and_nt_helpers() {
        let x = DMatrix::from_vec(6, 3, lcg(18, 6));
        let y = DMatrix::from_vec(6, 4, lcg(24, 7));
        let mut g = DMatrix::zeros(3, 4);
        gemm_tn(1.0, &x, &y, 0.0, &mut g);
        assert!((&g - x.transpose() * &y).abs().max() < 1e-6);
        let mut h = DMatrix::zeros(6, 6);
        matmul_nt(&x, &x, &mut h);
        assert!((&h - &x * x.transpose()).abs().max() < 1e-6);
        let mut m = DMatrix::zeros(2, 3);
        add_row_vector(&mut m, &[1.0, 2.0, 3.0]);
        assert_eq!(
            m.row(1).iter().copied().collect::<Vec<_>>(),
            vec![1.0, 2.0, 3.0]
        );
    }
}

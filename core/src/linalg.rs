//! GEMM helpers on nalgebra matrices that always reach `matrixmultiply::sgemm`.
//!
//! nalgebra's `tr_mul`, `gemm_tr` and `ad_mul` do not use matrixmultiply and run about 10x slower
//! (nalgebra issue #717). These helpers pass the operands' strides straight to
//! `sgemm`, so a transpose is only a swap of strides: no copy, no slow path, and bit-identical
//! results to the untransposed product.
//!
//! All helpers compute `C ← α·op(A)·op(B) + β·C` on column-major f32 matrices or views.

use nalgebra::{Dim, Matrix, RawStorage, RawStorageMut};

pub use binary::BinaryProductWeights;

#[cfg(target_arch = "x86_64")]
mod amx;
mod binary;
#[cfg(target_arch = "x86_64")]
mod packed;

/// The 64-byte-aligned start of a region of at least `len` elements in `buf`, grown as needed
/// (the pack buffers of the packed f32 and AMX GEMMs; their packers overwrite every element
/// they use).
#[cfg(target_arch = "x86_64")]
fn aligned64<T: Copy + Default>(buf: &mut Vec<T>, len: usize) -> *mut T {
    let pad = 64 / std::mem::size_of::<T>();
    if buf.len() < len + pad {
        buf.resize(len + pad, T::default());
    }
    let off = buf.as_ptr().align_offset(64);
    // SAFETY: `off < pad` elements and the buffer holds `len + pad`, so `off..off + len` is inside.
    unsafe { buf.as_mut_ptr().add(off) }
}

/// The arithmetic of [`gemm`]'s products on the calling thread (see [`ProductPrecision`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// f32 operands, f32 fused multiply-adds (the default; results identical on every CPU
    /// with the same vector width).
    #[default]
    F32,
    /// Operands rounded to bf16 (8 significant bits), products and sums in f32, on CPUs with
    /// AMX-BF16 (Intel Xeon Sapphire Rapids and later) for products of at least 16×16 and
    /// about a megaflop; f32 elsewhere. Results then depend on the CPU.
    Bf16,
}

impl Precision {
    /// The precision products actually get on this CPU when `self` is asked for: `Bf16` only
    /// where the AMX-BF16 path runs ([`Precision::bf16_available`]).
    pub fn effective(self) -> Precision {
        match self {
            Precision::Bf16 if Self::bf16_available() => Precision::Bf16,
            _ => Precision::F32,
        }
    }

    /// Whether this CPU and operating system run bf16 products on AMX.
    pub fn bf16_available() -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            amx::available()
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
        })
    }
}

impl std::str::FromStr for Precision {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "f32" => Ok(Precision::F32),
            "bf16" => Ok(Precision::Bf16),
            other => Err(format!("precision must be f32 or bf16, not {other:?}")),
        }
    }
}

thread_local! {
    static PRODUCT_PRECISION: std::cell::Cell<Precision> = const { std::cell::Cell::new(Precision::F32) };
}

/// Sets the [`Precision`] of [`gemm`] (and the helpers built on it) on the current thread until
/// the guard is dropped, e.g. around a network's training passes. The precision is read once
/// per product on the thread that calls it; the parts of a product split over a pool's
/// threads inherit it, and no other work sees it (it is cleared while a split product waits
/// for its other part, when rayon may run an unrelated job on this thread).
///
/// ```
/// use gumbolt_core::linalg::{matmul_nn, Precision, ProductPrecision};
/// use nalgebra::DMatrix;
/// let a = DMatrix::<f32>::from_element(128, 128, 1.0 / 3.0);
/// let mut exact = DMatrix::<f32>::zeros(128, 128);
/// matmul_nn(&a, &a, &mut exact);
/// let mut c = DMatrix::<f32>::zeros(128, 128);
/// {
///     let _bf16 = ProductPrecision::enter(Precision::Bf16);
///     matmul_nn(&a, &a, &mut c);
/// }
/// // bf16 keeps 8 significant bits of each operand: a relative error below 2⁻⁷.
/// assert!(((c[(0, 0)] - exact[(0, 0)]) / exact[(0, 0)]).abs() < 1.0 / 128.0);
/// assert_eq!(ProductPrecision::current(), Precision::F32);
/// ```
pub struct ProductPrecision {
    previous: Precision,
    // Thread-local state: the guard must be dropped on the thread that made it.
    _not_send: std::marker::PhantomData<*const ()>,
}

impl ProductPrecision {
    /// Uses `precision` for this thread's products until the guard is dropped.
    pub fn enter(precision: Precision) -> Self {
        let previous = PRODUCT_PRECISION.with(|p| p.replace(precision));
        Self {
            previous,
            _not_send: std::marker::PhantomData,
        }
    }

    /// The precision of this thread's products now.
    pub fn current() -> Precision {
        PRODUCT_PRECISION.with(|p| p.get())
    }
}

impl Drop for ProductPrecision {
    fn drop(&mut self) {
        PRODUCT_PRECISION.with(|p| p.set(self.previous));
    }
}

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

/// `C ← α·op(A)·op(B) + β·C` through `matrixmultiply::sgemm`, or, for large products on
/// AVX-512 CPUs, a packed GEMM with a wider register tile that computes every element the
/// same way (bit-identical for the α = ±1 of the toolkit's products; see the `packed` module).
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
    let op = RawGemm {
        kernel: choose_kernel(m, k, n, rsa, rsc as isize, csc as isize),
        m,
        k,
        n,
        alpha,
        a: a.data.ptr(),
        rsa,
        csa,
        b: b.data.ptr(),
        rsb,
        csb,
        beta,
        c: c.data.ptr_mut(),
        rsc: rsc as isize,
        csc: csc as isize,
    };
    // SAFETY: the shapes were checked above; the pointers and strides come from nalgebra
    // matrices whose storage covers every (i, j) with i < rows, j < cols at
    // ptr + i·row_stride + j·col_stride. C is borrowed mutably, so it cannot alias A or B.
    unsafe { op.run(parallel_parts(m, k, n)) }
}

/// Minimum work (2·m·k·n flops) of each part of a GEMM split over threads: below this the
/// cost of handing a part to another thread (and of packing an operand twice) outweighs it.
pub const PARALLEL_GEMM_MIN_FLOP: usize = 12_000_000;

/// Rows or columns of C per part are multiples of this (whole register tiles of both
/// matrixmultiply's 16×16 and the packed GEMM's 48×8).
const SPLIT_ALIGN: usize = 48;

/// Into how many parts [`gemm`] splits an `m×k·k×n` product: 1 unless the calling thread is a
/// worker of a rayon thread pool with several threads, then up to the pool's size, each part
/// at least [`PARALLEL_GEMM_MIN_FLOP`] and [`SPLIT_ALIGN`] rows/columns wide.
fn parallel_parts(m: usize, k: usize, n: usize) -> usize {
    if rayon::current_thread_index().is_none() {
        return 1;
    }
    let threads = rayon::current_num_threads();
    if threads < 2 {
        return 1;
    }
    let flop = 2usize.saturating_mul(m).saturating_mul(k).saturating_mul(n);
    let by_size = flop / PARALLEL_GEMM_MIN_FLOP;
    let by_dim = m.max(n) / SPLIT_ALIGN;
    threads.min(by_size).min(by_dim).max(1)
}

/// The kernel that computes a whole product (every part of a split alike).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kernel {
    /// `matrixmultiply::sgemm`.
    Matrixmultiply,
    /// The packed AVX-512 f32 GEMM (bit-identical to matrixmultiply).
    Packed,
    /// bf16 operands on AMX ([`Precision::Bf16`]).
    Amx,
}

/// The kernel of [`gemm`] for this shape and the calling thread's [`Precision`].
fn choose_kernel(m: usize, k: usize, n: usize, rsa: isize, rsc: isize, csc: isize) -> Kernel {
    #[cfg(target_arch = "x86_64")]
    {
        if ProductPrecision::current() == Precision::Bf16 && amx::preferred(m, k, n, rsc, csc) {
            return Kernel::Amx;
        }
        if packed::preferred(m, k, n, rsa, rsc) {
            return Kernel::Packed;
        }
        Kernel::Matrixmultiply
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (m, k, n, rsa, rsc, csc);
        Kernel::Matrixmultiply
    }
}

/// A GEMM on raw pointers (the arguments of `matrixmultiply::sgemm`).
#[derive(Clone, Copy)]
struct RawGemm {
    /// The kernel (decided once for the whole product).
    kernel: Kernel,
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: *const f32,
    rsa: isize,
    csa: isize,
    b: *const f32,
    rsb: isize,
    csb: isize,
    beta: f32,
    c: *mut f32,
    rsc: isize,
    csc: isize,
}

// SAFETY: a `RawGemm` is only sent to another thread by `RawGemm::run`, which splits C into
// disjoint blocks and joins before returning; A and B are only read.
unsafe impl Send for RawGemm {}

impl RawGemm {
    /// Computes the product in `parts` pieces: C is cut into blocks of whole rows (when
    /// `n ≤ m`, so only B is packed twice) or whole columns, run under `rayon::join`.
    ///
    /// Every element of C is computed by the same micro-kernel over the same `k`-blocks in the
    /// same order whatever the cut (matrixmultiply blocks only `k` in the accumulation), so
    /// the result is bit-identical to the single call (tested).
    ///
    /// # Safety
    /// The pointers and strides must describe valid `m×k`, `k×n` and `m×n` matrices, C not
    /// aliasing A or B.
    unsafe fn run(self, parts: usize) {
        if parts <= 1 {
            #[cfg(target_arch = "x86_64")]
            if self.kernel == Kernel::Amx {
                // SAFETY: the caller's contract; `Amx` is only chosen when the CPU runs AMX,
                // m, k, n are positive and C is row- or column-major.
                unsafe {
                    amx::sgemm(
                        self.m, self.k, self.n, self.alpha, self.a, self.rsa, self.csa, self.b,
                        self.rsb, self.csb, self.beta, self.c, self.rsc, self.csc,
                    );
                }
                return;
            }
            #[cfg(target_arch = "x86_64")]
            if self.kernel == Kernel::Packed {
                // SAFETY: the caller's contract; `packed` is only set when the CPU has
                // AVX-512 F and m, k, n are positive.
                unsafe {
                    packed::sgemm(
                        self.m, self.k, self.n, self.alpha, self.a, self.rsa, self.csa, self.b,
                        self.rsb, self.csb, self.beta, self.c, self.rsc, self.csc,
                    );
                }
                return;
            }
            // SAFETY: the caller's contract.
            unsafe {
                matrixmultiply::sgemm(
                    self.m, self.k, self.n, self.alpha, self.a, self.rsa, self.csa, self.b,
                    self.rsb, self.csb, self.beta, self.c, self.rsc, self.csc,
                );
            }
            return;
        }
        let by_rows = self.n <= self.m;
        let len = if by_rows { self.m } else { self.n };
        if len < 2 {
            // SAFETY: as above (nothing to split).
            unsafe { self.run(1) };
            return;
        }
        let left_parts = parts / 2;
        let cut = (len * left_parts / parts).div_ceil(SPLIT_ALIGN) * SPLIT_ALIGN;
        let cut = cut.clamp(1, len - 1);
        let (mut first, mut second) = (self, self);
        // SAFETY: the offsets stay inside the matrices (cut < len) and the two blocks of C
        // are disjoint.
        unsafe {
            if by_rows {
                first.m = cut;
                second.m = len - cut;
                second.a = self.a.offset(cut as isize * self.rsa);
                second.c = self.c.offset(cut as isize * self.rsc);
            } else {
                first.n = cut;
                second.n = len - cut;
                second.b = self.b.offset(cut as isize * self.csb);
                second.c = self.c.offset(cut as isize * self.csc);
            }
        }
        // While this thread waits for the other part it may run unrelated rayon jobs: they
        // must not see this thread's product precision (the parts carry their kernel).
        let _f32 = ProductPrecision::enter(Precision::F32);
        rayon::join(
            // SAFETY: disjoint blocks of C; the caller's contract for the rest.
            move || unsafe { first.run(left_parts) },
            move || unsafe { second.run(parts - left_parts) },
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

/// Rows of C per register tile of [`affine_unpacked`] (two AVX-512 vectors).
const AFFINE_MR: usize = 32;
/// Columns of C per register tile of [`affine_unpacked`].
const AFFINE_NR: usize = 8;
/// The wider tile of [`affine_unpacked`], used when it divides the number of columns: 20
/// accumulators of 16 lanes, which AVX-512's 32 registers hold.
const AFFINE_NR_WIDE: usize = 10;

/// `C ← A·op(B) + 1·biasᵀ` (every row of C gets `bias` added) without packing either operand:
/// the product of block-Gibbs sweeps, `Z1·W + b` and `Z2·Wᵀ + a` (GB Eq. 4), repeated hundreds
/// of times with the same `W` on a few dozen chains.
///
/// `matrixmultiply` copies ("packs") both operands into its own layout on every call; with
/// 32–100 rows and a 100×100 or 200×200 `W` that copy costs about a third of the product
/// (measured). Here A's columns are read in place (A must have unit row stride: a
/// column-major matrix or a view of some of its columns), B through its strides, and C is
/// computed in register tiles of 32 rows × 8 columns with fused multiply-adds.
///
/// Every element is `bias_j` followed by `k` fused multiply-adds in the order `l = 0, 1, …`
/// whatever the tile, so the result of a row does not depend on the other rows (a shard of
/// chains gives the same logits as the whole batch) nor on the CPU's vector width.
///
/// # Panics
/// If the shapes are inconsistent or A's row stride is not 1 (programming errors).
///
/// ```
/// use gumbolt_core::linalg::{affine_unpacked, Op};
/// use nalgebra::DMatrix;
/// let z = DMatrix::from_row_slice(2, 3, &[1.0f32, 0., 1., 0., 1., 1.]);
/// let w = DMatrix::from_row_slice(3, 2, &[1.0f32, 2., 3., 4., 5., 6.]);
/// let mut c = DMatrix::<f32>::zeros(2, 2);
/// affine_unpacked(&z, &w, Op::N, &[0.5, -0.5], &mut c);
/// assert_eq!(c, DMatrix::from_row_slice(2, 2, &[6.5, 7.5, 8.5, 9.5]));
/// let wt = w.transpose();
/// let mut d = DMatrix::<f32>::zeros(2, 2);
/// affine_unpacked(&z, &wt, Op::T, &[0.5, -0.5], &mut d);
/// assert_eq!(c, d);
/// ```
pub fn affine_unpacked<R1, C1, S1, R2, C2, S2>(
    a: &Matrix<f32, R1, C1, S1>,
    b: &Matrix<f32, R2, C2, S2>,
    op_b: Op,
    bias: &[f32],
    c: &mut crate::Mat,
) where
    R1: Dim,
    C1: Dim,
    S1: RawStorage<f32, R1, C1>,
    R2: Dim,
    C2: Dim,
    S2: RawStorage<f32, R2, C2>,
{
    let (m, k) = a.shape();
    let (k2, n, rsb, csb) = dims(b, op_b);
    assert!(
        k == k2 && c.shape() == (m, n) && bias.len() == n,
        "affine_unpacked: shapes A {m}x{k}, op(B) {k2}x{n}, C {:?}, bias {} are inconsistent",
        c.shape(),
        bias.len()
    );
    let (rsa, lda) = a.strides();
    assert!(
        rsa == 1 || m <= 1,
        "affine_unpacked: A must have unit row stride"
    );
    if m == 0 || n == 0 {
        return;
    }
    let lda = if m <= 1 { lda.max(1) } else { lda };
    // The slices A, B cover: every (i, l) at i + l·lda and (l, j) at l·rsb + j·csb.
    let a_len = if k == 0 { 0 } else { (k - 1) * lda + m };
    let b_len = if k == 0 {
        0
    } else {
        (k - 1) * rsb as usize + (n - 1) * csb as usize + 1
    };
    // SAFETY: nalgebra's storage of A (B) covers every element at these offsets, so the
    // slices from the first element up to the last one are inside the allocation.
    let (a_sl, b_sl) = unsafe {
        (
            std::slice::from_raw_parts(a.data.ptr(), a_len),
            std::slice::from_raw_parts(b.data.ptr(), b_len),
        )
    };
    let ops = AffineOperands {
        k,
        n,
        b: b_sl,
        rsb: rsb as usize,
        csb: csb as usize,
        bias,
    };
    affine_tiles(m, a_sl, lda, ops, c.as_mut_slice());
}

/// What every tile of [`affine_unpacked`] shares: the inner dimension `k`, the columns `n` of
/// C, B (element `(l, j)` at `l·rsb + j·csb`) and the bias.
#[derive(Clone, Copy)]
struct AffineOperands<'a> {
    k: usize,
    n: usize,
    b: &'a [f32],
    rsb: usize,
    csb: usize,
    bias: &'a [f32],
}

/// One register tile: `acc[jj][ii] = bias[j0 + jj] + Σ_l a[ii + l·lda]·b[l·rsb + (j0 + jj)·csb]`
/// for `ii < MR`, `jj < NR`, in fused multiply-adds over `l = 0, 1, …`.
#[inline(always)]
fn affine_tile<const MR: usize, const NR: usize>(
    ops: AffineOperands<'_>,
    a: &[f32],
    lda: usize,
    j0: usize,
) -> [[f32; MR]; NR] {
    let AffineOperands {
        k,
        b,
        rsb,
        csb,
        bias,
        ..
    } = ops;
    let mut acc = [[0.0f32; MR]; NR];
    for (jj, col) in acc.iter_mut().enumerate() {
        *col = [bias[j0 + jj]; MR];
    }
    if k == 0 {
        return acc;
    }
    assert!((k - 1) * lda + MR <= a.len());
    assert!((k - 1) * rsb + (j0 + NR - 1) * csb < b.len());
    for l in 0..k {
        // SAFETY: the two asserts above bound every index of this loop.
        let av: [f32; MR] = unsafe { *(a.as_ptr().add(l * lda) as *const [f32; MR]) };
        for (jj, col) in acc.iter_mut().enumerate() {
            // SAFETY: as above.
            let w = unsafe { *b.get_unchecked(l * rsb + (j0 + jj) * csb) };
            for (x, &y) in col.iter_mut().zip(av.iter()) {
                *x = y.mul_add(w, *x);
            }
        }
    }
    acc
}

/// The tiles of one block of `MR` rows starting at `a` (leading dimension `lda`), all columns;
/// the first `rows ≤ MR` of them are written to rows `i0..i0 + rows` of C (`[m, n]`).
#[inline(always)]
fn affine_row_block<const MR: usize>(
    ops: AffineOperands<'_>,
    a: &[f32],
    lda: usize,
    c: &mut [f32],
    (m, i0, rows): (usize, usize, usize),
) {
    let n = ops.n;
    let mut j0 = 0;
    // Every element is the same chain of fused multiply-adds over `l` whatever the tile that
    // computes it, so the tile widths are free: ten columns when they divide n (the RBM sides
    // of the paper's models, 100 and 200), else eight, then four, then one at a time.
    if n.is_multiple_of(AFFINE_NR_WIDE) {
        while j0 + AFFINE_NR_WIDE <= n {
            let t = affine_tile::<MR, AFFINE_NR_WIDE>(ops, a, lda, j0);
            store_tile(&t, c, m, i0, rows, j0);
            j0 += AFFINE_NR_WIDE;
        }
    }
    while j0 + AFFINE_NR <= n {
        let t = affine_tile::<MR, AFFINE_NR>(ops, a, lda, j0);
        store_tile(&t, c, m, i0, rows, j0);
        j0 += AFFINE_NR;
    }
    if j0 + 4 <= n {
        let t = affine_tile::<MR, 4>(ops, a, lda, j0);
        store_tile(&t, c, m, i0, rows, j0);
        j0 += 4;
    }
    for j in j0..n {
        let t = affine_tile::<MR, 1>(ops, a, lda, j);
        store_tile(&t, c, m, i0, rows, j);
    }
}

/// Writes the first `rows` rows of tile `t` to C (`[m, n]`) at rows `i0..`, columns `j0..`.
#[inline(always)]
fn store_tile<const MR: usize, const NR: usize>(
    t: &[[f32; MR]; NR],
    c: &mut [f32],
    m: usize,
    i0: usize,
    rows: usize,
    j0: usize,
) {
    for (jj, col) in t.iter().enumerate() {
        let o = (j0 + jj) * m + i0;
        c[o..o + rows].copy_from_slice(&col[..rows]);
    }
}

crate::multiversion! {
    /// The tiles of [`affine_unpacked`] on slices: C (`[m, n]`, leading dimension m) from A
    /// (leading dimension `lda`). Rows past the last whole tile go through a zero-padded copy
    /// of their A rows.
    fn affine_tiles(m: usize, a: &[f32], lda: usize, ops: AffineOperands<'_>, c: &mut [f32]) {
        let k = ops.k;
        let whole = m / AFFINE_MR * AFFINE_MR;
        for i0 in (0..whole).step_by(AFFINE_MR) {
            affine_row_block::<AFFINE_MR>(ops, &a[i0..], lda, c, (m, i0, AFFINE_MR));
        }
        let rest = m - whole;
        if rest == 0 {
            return;
        }
        // The last rows through a zero-padded copy, in the narrowest tile that holds them.
        let mr = if rest <= 8 { 8 } else if rest <= 16 { 16 } else { AFFINE_MR };
        let mut pad = vec![0.0f32; mr * k.max(1)];
        for l in 0..k {
            pad[l * mr..l * mr + rest].copy_from_slice(&a[l * lda + whole..l * lda + whole + rest]);
        }
        let place = (m, whole, rest);
        match mr {
            8 => affine_row_block::<8>(ops, &pad, 8, c, place),
            16 => affine_row_block::<16>(ops, &pad, 16, c, place),
            _ => affine_row_block::<AFFINE_MR>(ops, &pad, AFFINE_MR, c, place),
        }
    }
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

    #[test]
    fn split_gemm_is_bit_identical_to_one_call() {
        // Shapes of the networks (rows ≫ cols and cols ≫ rows, odd remainders), every
        // transpose, β = 0 and β ≠ 0, split over 2, 3 and 4 threads.
        let shapes = [
            (2000, 200, 784),
            (203, 517, 333),
            (100, 784, 200),
            (61, 300, 2000),
        ];
        for (si, &(m, k, n)) in shapes.iter().enumerate() {
            let a = DMatrix::from_vec(m, k, lcg(m * k, 10 + si as u32));
            let b = DMatrix::from_vec(k, n, lcg(k * n, 20 + si as u32));
            let c0 = DMatrix::from_vec(m, n, lcg(m * n, 30 + si as u32));
            let (at, bt) = (a.transpose(), b.transpose());
            for (aa, oa) in [(&a, Op::N), (&at, Op::T)] {
                for (bb, ob) in [(&b, Op::N), (&bt, Op::T)] {
                    for beta in [0.0f32, 0.75] {
                        let mut want = c0.clone();
                        gemm(1.25, aa, oa, bb, ob, beta, &mut want);
                        assert_eq!(parallel_parts(m, k, n), 1, "outside a pool: one call");
                        for threads in [2, 3, 4] {
                            let pool = rayon::ThreadPoolBuilder::new()
                                .num_threads(threads)
                                .build()
                                .unwrap();
                            let mut got = c0.clone();
                            let parts = pool.install(|| {
                                gemm(1.25, aa, oa, bb, ob, beta, &mut got);
                                parallel_parts(m, k, n)
                            });
                            if 2 * m * k * n >= 2 * PARALLEL_GEMM_MIN_FLOP {
                                assert!(parts >= 2, "{m}x{k}x{n} not split");
                            }
                            let same = want
                                .iter()
                                .zip(got.iter())
                                .all(|(x, y)| x.to_bits() == y.to_bits());
                            assert!(same, "{m}x{k}x{n} {oa:?}{ob:?} β={beta} {threads} threads");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn bf16_rounding_is_to_nearest_even() {
        use super::amx::{from_bf16, to_bf16};
        assert_eq!(from_bf16(to_bf16(1.0)), 1.0);
        // 1 + 2⁻⁸ is halfway between 1 and 1 + 2⁻⁷: ties go to the even 1.
        assert_eq!(from_bf16(to_bf16(1.0 + 1.0 / 256.0)), 1.0);
        // Just above halfway rounds up.
        assert_eq!(
            from_bf16(to_bf16(1.0 + 1.0 / 256.0 + 1.0 / 65536.0)),
            1.0 + 1.0 / 128.0
        );
        // 1 + 3·2⁻⁸ is halfway between 1 + 2⁻⁷ (odd) and 1 + 2⁻⁶: up to the even one.
        assert_eq!(from_bf16(to_bf16(1.0 + 3.0 / 256.0)), 1.0 + 1.0 / 64.0);
        assert_eq!(from_bf16(to_bf16(-2.5)), -2.5);
        assert!(from_bf16(to_bf16(f32::NAN)).is_nan());
        assert_eq!(from_bf16(to_bf16(f32::INFINITY)), f32::INFINITY);
        for x in lcg(1000, 77) {
            let r = from_bf16(to_bf16(x));
            assert!((r - x).abs() <= x.abs() / 256.0, "{x} -> {r}");
        }
    }

    /// `α·op(A)·op(B) + β·C` in f64 from bf16-rounded operands, and `Σ|a||b|` per element.
    fn bf16_reference(
        alpha: f32,
        a: &DMatrix<f32>,
        b: &DMatrix<f32>,
        beta: f32,
        c0: &DMatrix<f32>,
    ) -> (DMatrix<f64>, DMatrix<f64>) {
        use super::amx::{from_bf16, to_bf16};
        let r = |x: f32| from_bf16(to_bf16(x)) as f64;
        let (m, k, n) = (a.nrows(), a.ncols(), b.ncols());
        let mut want = DMatrix::<f64>::zeros(m, n);
        let mut mag = DMatrix::<f64>::zeros(m, n);
        for j in 0..n {
            for i in 0..m {
                let (mut s, mut t) = (0.0, 0.0);
                for l in 0..k {
                    let p = r(a[(i, l)]) * r(b[(l, j)]);
                    s += p;
                    t += p.abs();
                }
                want[(i, j)] = alpha as f64 * s + beta as f64 * c0[(i, j)] as f64;
                mag[(i, j)] = alpha.abs() as f64 * t + (beta as f64 * c0[(i, j)] as f64).abs();
            }
        }
        (want, mag)
    }

    #[test]
    fn bf16_products_match_the_rounded_operands_product() {
        if !Precision::bf16_available() {
            eprintln!("skipped: this CPU or kernel has no AMX-BF16");
            return;
        }
        // The networks' shapes (forward, input gradient, weight gradient) and ragged edges.
        let shapes = [
            (2000, 200, 784),
            (200, 2000, 784),
            (100, 784, 200),
            (137, 45, 170),
        ];
        for (si, &(m, k, n)) in shapes.iter().enumerate() {
            let a = DMatrix::from_vec(m, k, lcg(m * k, 40 + si as u32));
            let b = DMatrix::from_vec(k, n, lcg(k * n, 50 + si as u32));
            let c0 = DMatrix::from_vec(m, n, lcg(m * n, 60 + si as u32));
            let (at, bt) = (a.transpose(), b.transpose());
            for &(alpha, beta) in &[(1.0f32, 0.0f32), (1.0, 1.0), (-0.5, 0.75)] {
                let (want, mag) = bf16_reference(alpha, &a, &b, beta, &c0);
                for (aa, oa) in [(&a, Op::N), (&at, Op::T)] {
                    for (bb, ob) in [(&b, Op::N), (&bt, Op::T)] {
                        for row_major_c in [false, true] {
                            let got = if row_major_c {
                                // C row-major: compute Cᵀ's storage through a transposed view.
                                let mut ct = c0.transpose();
                                let mut view =
                                    nalgebra::DMatrixViewMut::from_slice_with_strides_mut(
                                        ct.as_mut_slice(),
                                        m,
                                        n,
                                        n,
                                        1,
                                    );
                                let _p = ProductPrecision::enter(Precision::Bf16);
                                gemm(alpha, aa, oa, bb, ob, beta, &mut view);
                                drop(_p);
                                ct.transpose()
                            } else {
                                let mut c = c0.clone();
                                let _p = ProductPrecision::enter(Precision::Bf16);
                                gemm(alpha, aa, oa, bb, ob, beta, &mut c);
                                c
                            };
                            for j in 0..n {
                                for i in 0..m {
                                    // f32 accumulation of k terms: a few units of 2⁻²⁴ per
                                    // term's magnitude.
                                    let tol = 1e-6 * mag[(i, j)] * (k as f64).sqrt() + 1e-30;
                                    let err = (got[(i, j)] as f64 - want[(i, j)]).abs();
                                    assert!(
                                        err <= tol,
                                        "{m}x{k}x{n} {oa:?}{ob:?} α={alpha} β={beta} \
                                         row-major C {row_major_c}: ({i},{j}) err {err} tol {tol}"
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn bf16_products_of_bf16_exact_integers_are_exact() {
        // Small integers are exact in bf16 and their sums exact in f32: the bf16 product then
        // equals the f32 one bit for bit, whatever the kernel.
        let (m, k, n) = (300, 100, 130);
        let ints = |len: usize, seed: u32| -> Vec<f32> {
            lcg(len, seed)
                .into_iter()
                .map(|x| (x * 16.0).round())
                .collect()
        };
        let a = DMatrix::from_vec(m, k, ints(m * k, 3));
        let b = DMatrix::from_vec(k, n, ints(k * n, 4));
        let mut want = DMatrix::zeros(m, n);
        matmul_nn(&a, &b, &mut want);
        let mut got = DMatrix::zeros(m, n);
        {
            let _p = ProductPrecision::enter(Precision::Bf16);
            assert_eq!(ProductPrecision::current(), Precision::Bf16);
            matmul_nn(&a, &b, &mut got);
        }
        assert_eq!(ProductPrecision::current(), Precision::F32);
        assert_eq!(got, want);
    }

    #[test]
    fn bf16_split_products_are_bit_identical_to_one_call() {
        if !Precision::bf16_available() {
            eprintln!("skipped: this CPU or kernel has no AMX-BF16");
            return;
        }
        for (si, &(m, k, n)) in [(2000, 200, 784), (203, 517, 333), (61, 300, 2000)]
            .iter()
            .enumerate()
        {
            let a = DMatrix::from_vec(m, k, lcg(m * k, 70 + si as u32));
            let b = DMatrix::from_vec(k, n, lcg(k * n, 80 + si as u32));
            let c0 = DMatrix::from_vec(m, n, lcg(m * n, 90 + si as u32));
            let at = a.transpose();
            for (aa, oa) in [(&a, Op::N), (&at, Op::T)] {
                for beta in [0.0f32, 1.0] {
                    let mut want = c0.clone();
                    {
                        let _p = ProductPrecision::enter(Precision::Bf16);
                        gemm(1.0, aa, oa, &b, Op::N, beta, &mut want);
                    }
                    let mut f32_result = c0.clone();
                    gemm(1.0, aa, oa, &b, Op::N, beta, &mut f32_result);
                    assert_ne!(want, f32_result, "the bf16 kernel ran");
                    for threads in [2, 3] {
                        let pool = rayon::ThreadPoolBuilder::new()
                            .num_threads(threads)
                            .build()
                            .unwrap();
                        let mut got = c0.clone();
                        pool.install(|| {
                            let _p = ProductPrecision::enter(Precision::Bf16);
                            gemm(1.0, aa, oa, &b, Op::N, beta, &mut got);
                        });
                        let same = want
                            .iter()
                            .zip(got.iter())
                            .all(|(x, y)| x.to_bits() == y.to_bits());
                        assert!(same, "{m}x{k}x{n} {oa:?} β={beta} {threads} threads");
                    }
                }
            }
        }
    }

    /// Runs `C ← α·op(A)·op(B) + β·C` through matrixmultiply directly, C in `c` with strides
    /// `(rsc, csc)`.
    fn reference_sgemm(
        alpha: f32,
        (a, oa): (&DMatrix<f32>, Op),
        (b, ob): (&DMatrix<f32>, Op),
        beta: f32,
        c: &mut [f32],
        (rsc, csc): (usize, usize),
    ) {
        let (m, k, rsa, csa) = dims(a, oa);
        let (k2, n, rsb, csb) = dims(b, ob);
        assert!(k == k2 && c.len() == m * n && ((rsc, csc) == (1, m) || (rsc, csc) == (n, 1)));
        // SAFETY: the shapes are consistent (asserted) and C is a distinct buffer of m·n.
        unsafe {
            matrixmultiply::sgemm(
                m,
                k,
                n,
                alpha,
                a.as_ptr(),
                rsa,
                csa,
                b.as_ptr(),
                rsb,
                csb,
                beta,
                c.as_mut_ptr(),
                rsc as isize,
                csc as isize,
            )
        };
    }

    /// Whatever path [`gemm`] takes (the packed AVX-512 GEMM on the large shapes of an AVX-512
    /// CPU, matrixmultiply otherwise), the toolkit's products (α = ±1, β ∈ {0, 1}) give the
    /// same bits as matrixmultiply: the networks' shapes, several blocks of the inner
    /// dimension, rows and columns that leave partial tiles, every transpose, and a row-major
    /// C (through a transposed view).
    #[test]
    fn gemm_is_bit_identical_to_matrixmultiply() {
        let shapes = [
            (2000, 200, 784),
            (2000, 784, 200),
            (1000, 200, 200),
            (203, 517, 333),
            (130, 1030, 9),
            (97, 300, 50),
        ];
        let mut packed_taken = 0;
        for (si, &(m, k, n)) in shapes.iter().enumerate() {
            let a = DMatrix::from_vec(m, k, lcg(m * k, 60 + si as u32));
            let b = DMatrix::from_vec(k, n, lcg(k * n, 70 + si as u32));
            let c0 = DMatrix::from_vec(m, n, lcg(m * n, 80 + si as u32));
            let (at, bt) = (a.transpose(), b.transpose());
            for (aa, oa) in [(&a, Op::N), (&at, Op::T)] {
                for (bb, ob) in [(&b, Op::N), (&bt, Op::T)] {
                    let (_, _, rsa, _) = dims(aa, oa);
                    packed_taken +=
                        usize::from(choose_kernel(m, k, n, rsa, 1, m as isize) == Kernel::Packed);
                    for (alpha, beta) in [(1.0f32, 0.0f32), (1.0, 1.0), (-1.0, 0.0), (-1.0, 1.0)] {
                        let mut want = c0.clone();
                        reference_sgemm(
                            alpha,
                            (aa, oa),
                            (bb, ob),
                            beta,
                            want.as_mut_slice(),
                            (1, m),
                        );
                        let mut got = c0.clone();
                        gemm(alpha, aa, oa, bb, ob, beta, &mut got);
                        let same = want
                            .iter()
                            .zip(got.iter())
                            .all(|(x, y)| x.to_bits() == y.to_bits());
                        assert!(same, "{m}x{k}x{n} {oa:?}{ob:?} α={alpha} β={beta}");
                        // Row-major C (unit column stride), as a strided view.
                        let mut want_r = c0.as_slice().to_vec();
                        reference_sgemm(alpha, (aa, oa), (bb, ob), beta, &mut want_r, (n, 1));
                        let mut got_r = c0.as_slice().to_vec();
                        {
                            let mut view = nalgebra::DMatrixViewMut::from_slice_with_strides_mut(
                                &mut got_r, m, n, n, 1,
                            );
                            gemm(alpha, aa, oa, bb, ob, beta, &mut view);
                        }
                        let same = want_r
                            .iter()
                            .zip(got_r.iter())
                            .all(|(x, y)| x.to_bits() == y.to_bits());
                        assert!(
                            same,
                            "row-major C {m}x{k}x{n} {oa:?}{ob:?} α={alpha} β={beta}"
                        );
                    }
                }
            }
        }
        if crate::numerics::simd_path() == "avx512" {
            assert!(packed_taken > 0, "no shape took the packed GEMM");
        }
    }

    #[test]
    fn affine_unpacked_matches_f64_and_rows_do_not_depend_on_each_other() {
        // Row counts around every tile width, column counts with and without a remainder,
        // both orientations of B, A as a column view of a wider matrix (the chains' state).
        for &(m, k, n) in &[
            (1, 5, 3),
            (7, 13, 9),
            (32, 100, 100),
            (100, 200, 200),
            (45, 17, 8),
            (20, 11, 14),
            (33, 6, 30),
        ] {
            let state = DMatrix::from_vec(m, k + 3, lcg(m * (k + 3), m as u32));
            let z = state.columns(2, k);
            let w = DMatrix::from_vec(k, n, lcg(k * n, 40 + n as u32));
            let wt = w.transpose();
            let bias = lcg(n, 50);
            let mut want = DMatrix::<f64>::zeros(m, n);
            for i in 0..m {
                for j in 0..n {
                    want[(i, j)] = bias[j] as f64
                        + (0..k)
                            .map(|l| z[(i, l)] as f64 * w[(l, j)] as f64)
                            .sum::<f64>();
                }
            }
            let mut nn = DMatrix::zeros(m, n);
            affine_unpacked(&z, &w, Op::N, &bias, &mut nn);
            let mut nt = DMatrix::zeros(m, n);
            affine_unpacked(&z, &wt, Op::T, &bias, &mut nt);
            assert_eq!(nn, nt, "{m}x{k}x{n}: both layouts of B give the same bits");
            let err = nn
                .iter()
                .zip(want.iter())
                .map(|(&g, &w)| (g as f64 - w).abs())
                .fold(0.0, f64::max);
            assert!(err < 1e-5 * k as f64, "{m}x{k}x{n}: error {err}");
            // Any block of rows on its own gives the same bits as inside the whole batch.
            for (r0, rows) in [(0, m.min(3)), (m / 2, m - m / 2), (m - 1, 1)] {
                let part = z.rows(r0, rows).clone_owned();
                let mut out = DMatrix::zeros(rows, n);
                affine_unpacked(&part, &w, Op::N, &bias, &mut out);
                assert_eq!(
                    out,
                    nn.rows(r0, rows).clone_owned(),
                    "{m}x{k}x{n} rows {r0}+{rows}"
                );
            }
        }
    }
}

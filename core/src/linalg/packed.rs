//! A packed f32 GEMM with an AVX-512 register tile of 48×8, for the networks' large products
//! (2000-row batches at k = 20). matrixmultiply's AVX-512 tile is 16×16: 16 broadcasts and one
//! load feed 16 FMAs, where here three loads and eight broadcasts feed 24. On a 2-vCPU
//! Sapphire Rapids class VM it ran the forward products 1.1–1.2x and the input gradient 1.05x
//! as fast as matrixmultiply (`cargo bench -p gumbolt-core --bench kernels -- gemm_gflops`,
//! `nn_*` and `nt_*` against `matrixmultiply_*`), and a one-thread `~`, k = 20 training step
//! in 0.89 of the time (README, "Speed").
//!
//! It computes every element exactly as matrixmultiply does, so the two are interchangeable
//! bit for bit and [`super::gemm`] picks either by shape:
//!
//! - the inner dimension is cut into the same blocks of [`KC`] = 256 (matrixmultiply's
//!   `S_KC`), starting at 0;
//! - within a block, an element is a chain of fused multiply-adds `ab ← a_il·b_lj + ab` over
//!   `l` in order, starting from 0;
//! - after each block, `c ← α·ab + β'·c` as `fma(α, ab, β'·c)` (`c ← α·ab` when β' = 0), where
//!   β' is the caller's β for the first block and 1 after it.
//!
//! matrixmultiply writes its partial edge tiles as `β'·c + α·ab` with two roundings instead
//! of one; for the α = ±1 of every product in the toolkit the two are the same number, so the
//! results agree bit for bit (tested on the networks' shapes, every transpose, α = ±1,
//! β ∈ {0, 1}). Whatever α and β, an element does not depend on the tile that computes it, so
//! a product split over threads gives the same bits as one call (tested).

use std::arch::x86_64::*;
use std::cell::RefCell;

/// The inner-dimension block: matrixmultiply's `S_KC` (its default, which the toolkit does not
/// override), so both accumulate the same partial sums.
pub(super) const KC: usize = 256;
/// Rows of a register tile (three AVX-512 vectors).
const MR: usize = 48;
/// Columns of a register tile: 24 accumulators, three A vectors and a broadcast B value fit in
/// AVX-512's 32 registers.
const NR: usize = 8;
/// Rows of A packed at once (four tiles; 48 KiB per tile at KC, streamed from L2).
const MC: usize = 192;
/// Columns of B packed at once (at most; `KC·NC` floats).
const NC: usize = 2048;

/// Whether this CPU runs the AVX-512 tile (F only; detection is cached by the standard library).
pub(super) fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
}

/// Whether the packed tile is faster than matrixmultiply for `C[m×n] ← op(A)[m×k]·op(B)[k×n]`
/// with A's row stride `rsa` and C's row stride `rsc` (measured: large products of a
/// column-major A into a column-major C, as in the networks' forward passes and input
/// gradients; matrixmultiply is faster when A is transposed, as in the weight gradients
/// `Xᵀ·dY`, and on small products where packing dominates).
pub(super) fn preferred(m: usize, k: usize, n: usize, rsa: isize, rsc: isize) -> bool {
    rsc == 1 && rsa == 1 && m >= 128 && n >= NR && k >= 16 && available()
}

/// Pack buffers of one thread, reused across calls.
#[derive(Default)]
struct PackBuffers {
    a: Vec<f32>,
    b: Vec<f32>,
}

thread_local! {
    static BUFFERS: RefCell<PackBuffers> = RefCell::new(PackBuffers::default());
}

/// `C ← α·op(A)·op(B) + β·C` with the arguments of `matrixmultiply::sgemm`.
///
/// # Safety
/// The pointers and strides describe valid `m×k`, `k×n` and `m×n` matrices, C not aliasing A
/// or B, all of `m, k, n` positive, and the CPU supports AVX-512 F ([`available`]).
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn sgemm(
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
) {
    BUFFERS.with(|cell| {
        let mut bufs = cell.borrow_mut();
        let PackBuffers { a: abuf, b: bbuf } = &mut *bufs;
        let ap = super::aligned64(abuf, MC.div_ceil(MR) * MR * KC);
        let bp = super::aligned64(bbuf, NC.min(n).div_ceil(NR) * NR * KC);
        let mut jc = 0;
        while jc < n {
            let nc = NC.min(n - jc);
            let mut pc = 0;
            while pc < k {
                let kc = KC.min(k - pc);
                let beta_block = if pc == 0 { beta } else { 1.0 };
                // SAFETY: offsets inside B (pc < k, jc < n); the buffer holds nc×kc rounded up.
                unsafe {
                    pack_b(
                        kc,
                        nc,
                        b.offset(pc as isize * rsb + jc as isize * csb),
                        rsb,
                        csb,
                        bp,
                    )
                };
                let mut ic = 0;
                while ic < m {
                    let mc = MC.min(m - ic);
                    // SAFETY: offsets inside A (ic < m, pc < k); the buffer holds MC×KC.
                    unsafe {
                        pack_a(
                            mc,
                            kc,
                            a.offset(ic as isize * rsa + pc as isize * csa),
                            rsa,
                            csa,
                            ap,
                        )
                    };
                    let mut jr = 0;
                    while jr < nc {
                        let mut ir = 0;
                        while ir < mc {
                            let tile = Tile {
                                c: c.wrapping_offset(
                                    (ic + ir) as isize * rsc + (jc + jr) as isize * csc,
                                ),
                                rsc,
                                csc,
                                rows: MR.min(mc - ir),
                                cols: NR.min(nc - jr),
                            };
                            // SAFETY: the packed panels hold kc steps of MR (NR) values; the
                            // tile's rows × cols are inside C; AVX-512 F is the caller's
                            // contract.
                            unsafe {
                                kernel(
                                    kc,
                                    alpha,
                                    ap.add(ir * kc),
                                    bp.add(jr * kc),
                                    beta_block,
                                    tile,
                                )
                            };
                            ir += MR;
                        }
                        jr += NR;
                    }
                    ic += MC;
                }
                pc += KC;
            }
            jc += NC;
        }
    });
}

/// Packs rows `0..mc` × columns `0..kc` of A into strips of MR rows: strip `s` holds, for each
/// `l`, the MR values `A[s·MR + i, l]` (zero past row `mc`).
///
/// # Safety
/// A covers `mc×kc` through its strides; `out` holds `⌈mc/MR⌉·MR·kc` floats.
unsafe fn pack_a(mc: usize, kc: usize, a: *const f32, rsa: isize, csa: isize, out: *mut f32) {
    let mut i0 = 0;
    while i0 < mc {
        let rows = MR.min(mc - i0);
        // SAFETY: the strip's kc·MR floats are inside `out`; every read is inside A.
        unsafe {
            let o = out.add(i0 * kc);
            if rsa == 1 {
                for l in 0..kc {
                    let src = a.offset(i0 as isize + l as isize * csa);
                    std::ptr::copy_nonoverlapping(src, o.add(l * MR), rows);
                    std::ptr::write_bytes(o.add(l * MR + rows), 0, MR - rows);
                }
            } else {
                for i in 0..MR {
                    if i < rows {
                        let src = a.offset((i0 + i) as isize * rsa);
                        for l in 0..kc {
                            *o.add(l * MR + i) = *src.offset(l as isize * csa);
                        }
                    } else {
                        for l in 0..kc {
                            *o.add(l * MR + i) = 0.0;
                        }
                    }
                }
            }
        }
        i0 += MR;
    }
}

/// Packs rows `0..kc` × columns `0..nc` of B into strips of NR columns: strip `s` holds, for
/// each `l`, the NR values `B[l, s·NR + j]` (zero past column `nc`).
///
/// # Safety
/// B covers `kc×nc` through its strides; `out` holds `⌈nc/NR⌉·NR·kc` floats.
unsafe fn pack_b(kc: usize, nc: usize, b: *const f32, rsb: isize, csb: isize, out: *mut f32) {
    let mut j0 = 0;
    while j0 < nc {
        let cols = NR.min(nc - j0);
        // SAFETY: the strip's kc·NR floats are inside `out`; every read is inside B.
        unsafe {
            let o = out.add(j0 * kc);
            if csb == 1 {
                for l in 0..kc {
                    let src = b.offset(l as isize * rsb + j0 as isize);
                    std::ptr::copy_nonoverlapping(src, o.add(l * NR), cols);
                    std::ptr::write_bytes(o.add(l * NR + cols), 0, NR - cols);
                }
            } else {
                for j in 0..NR {
                    if j < cols {
                        let src = b.offset((j0 + j) as isize * csb);
                        for l in 0..kc {
                            *o.add(l * NR + j) = *src.offset(l as isize * rsb);
                        }
                    } else {
                        for l in 0..kc {
                            *o.add(l * NR + j) = 0.0;
                        }
                    }
                }
            }
        }
        j0 += NR;
    }
}

/// Where a register tile goes: its first element, C's strides, and how many of its MR×NR
/// elements are inside C.
#[derive(Clone, Copy)]
struct Tile {
    c: *mut f32,
    rsc: isize,
    csc: isize,
    rows: usize,
    cols: usize,
}

/// One register tile over `kc` packed steps, then `c ← fma(α, ab, β·c)` (`α·ab` when β = 0) on
/// its elements inside C.
///
/// # Safety
/// `a` (`b`) holds `kc` steps of MR (NR) floats, 64-byte aligned; the tile's `rows × cols`
/// elements are inside C; the CPU supports AVX-512 F.
#[target_feature(enable = "avx512f")]
unsafe fn kernel(kc: usize, alpha: f32, a: *const f32, b: *const f32, beta: f32, t: Tile) {
    const V: usize = MR / 16;
    let mut acc = [[_mm512_setzero_ps(); V]; NR];
    let (mut a, mut b) = (a, b);
    for _ in 0..kc {
        // SAFETY: `kc` steps of MR and NR floats are the caller's contract.
        unsafe {
            let mut av = [_mm512_setzero_ps(); V];
            for (h, v) in av.iter_mut().enumerate() {
                *v = _mm512_load_ps(a.add(16 * h));
            }
            for (j, col) in acc.iter_mut().enumerate() {
                let bj = _mm512_set1_ps(*b.add(j));
                for (x, &v) in col.iter_mut().zip(av.iter()) {
                    *x = _mm512_fmadd_ps(v, bj, *x);
                }
            }
            a = a.add(MR);
            b = b.add(NR);
        }
    }
    let alphav = _mm512_set1_ps(alpha);
    let betav = _mm512_set1_ps(beta);
    if t.rsc == 1 {
        for (j, col) in acc.iter().enumerate().take(t.cols) {
            // SAFETY: column j < cols of the tile is inside C, rows 0..rows contiguous.
            let cj = unsafe { t.c.offset(j as isize * t.csc) };
            for (h, &x) in col.iter().enumerate() {
                let lo = 16 * h;
                if lo >= t.rows {
                    break;
                }
                let mask: __mmask16 = if t.rows - lo >= 16 {
                    0xffff
                } else {
                    (1u16 << (t.rows - lo)) - 1
                };
                // SAFETY: the mask covers only rows inside C.
                unsafe {
                    let p = cj.add(lo);
                    let out = if beta != 0.0 {
                        let cv = _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, p), betav);
                        _mm512_fmadd_ps(alphav, x, cv)
                    } else {
                        _mm512_mul_ps(alphav, x)
                    };
                    _mm512_mask_storeu_ps(p, mask, out);
                }
            }
        }
    } else {
        let mut buf = [[0f32; MR]; NR];
        for (col, out) in acc.iter().zip(buf.iter_mut()) {
            for (h, &x) in col.iter().enumerate() {
                // SAFETY: `out` holds MR = 16·V floats.
                unsafe { _mm512_storeu_ps(out.as_mut_ptr().add(16 * h), x) };
            }
        }
        for (j, col) in buf.iter().enumerate().take(t.cols) {
            for (i, &ab) in col.iter().enumerate().take(t.rows) {
                // SAFETY: (i, j) is inside the tile's part of C.
                unsafe {
                    let p = t.c.offset(i as isize * t.rsc + j as isize * t.csc);
                    *p = if beta != 0.0 {
                        alpha.mul_add(ab, beta * *p)
                    } else {
                        alpha * ab
                    };
                }
            }
        }
    }
}

//! Products with bf16 operands and f32 accumulation on Intel AMX (the tile unit of Sapphire
//! Rapids and later Xeons), for the networks' training products when
//! [`super::Precision::Bf16`] is in effect (see [`super::ProductPrecision`]).
//!
//! One `TDPBF16PS` multiplies a 16×32 bf16 tile of A by a 32×16 bf16 tile of B into a 16×16 f32
//! accumulator: 16 384 flops, where an AVX-512 FMA does 32. Operands are rounded to bf16 (8
//! significant bits, round to nearest even) while they are packed into tiles; products and
//! sums are f32. This is what PyTorch's bf16 autocast does to a `Linear` layer, on the CPU's
//! matrix unit instead of its vector unit.
//!
//! Layout. The product is computed as a row-major `T[M×N] ← P[M×K]·Q[K×N]`: C itself when C
//! is row-major, `Cᵀ = op(B)ᵀ·op(A)ᵀ` when C is column-major (nalgebra's layout). P is packed
//! into 16-row × 32-column tiles, Q into the pair-interleaved ("VNNI") tiles the instruction
//! expects (row `p` of a tile holds `(Q[2p][j], Q[2p+1][j])` for 16 columns `j`); both are
//! zero-padded to whole tiles, so padding adds exact zeros. C is computed in blocks of 2×2
//! accumulator tiles (32×32), all `K` at once.
//!
//! Every element of C is the same sequence of instructions whatever the block or the split of
//! C over threads (cuts are multiples of 16), so a product split over threads is
//! bit-identical to one call (tested).
//!
//! Linux only: the process must ask the kernel for the tile state once
//! (`arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`); [`available`] does that.

use std::arch::asm;
use std::arch::x86_64::{
    __cpuid, __cpuid_count, __m512, __m512bh, __m512i, _mm512_cvtne2ps_pbh, _mm512_loadu_ps,
    _mm512_permutexvar_epi16, _mm512_set_epi16, _mm512_store_si512, _mm512_storeu_si512,
};
use std::cell::RefCell;
use std::sync::OnceLock;

/// Rows of a tile, and f32 columns of an accumulator tile.
const TR: usize = 16;
/// bf16 values in a row of an operand tile (64 bytes), i.e. the inner-dimension block.
const TK: usize = 32;
/// Elements (u16) in one packed operand tile.
const TILE: usize = TR * TK;

/// Whether this CPU and operating system run AMX-BF16 (CPUID leaf 7: AMX-TILE and AMX-BF16,
/// and the kernel granted the tile data state). Decided once per process.
pub(super) fn available() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(|| {
        // CPUID leaf 7 is read only when the maximum leaf reaches it.
        let max_leaf = __cpuid(0).eax;
        if max_leaf < 7 {
            return false;
        }
        let leaf7 = __cpuid_count(7, 0);
        let amx_bf16 = leaf7.edx & (1 << 22) != 0;
        let amx_tile = leaf7.edx & (1 << 24) != 0;
        // The packers convert with AVX512-BF16 (every AMX-BF16 CPU has it).
        amx_bf16
            && amx_tile
            && std::arch::is_x86_feature_detected!("avx512bf16")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && request_tile_state()
    })
}

/// Asks Linux for permission to use the AMX tile data state (process-wide).
#[cfg(target_os = "linux")]
fn request_tile_state() -> bool {
    const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
    const XFEATURE_XTILEDATA: libc::c_long = 18;
    // SAFETY: arch_prctl with these arguments only changes the process's permitted xfeatures;
    // it fails (returns -1) on kernels without AMX support.
    let r = unsafe {
        libc::syscall(
            libc::SYS_arch_prctl,
            ARCH_REQ_XCOMP_PERM,
            XFEATURE_XTILEDATA,
        )
    };
    r == 0
}

#[cfg(not(target_os = "linux"))]
fn request_tile_state() -> bool {
    false
}

/// Whether the AMX path is worth it for `C[m×n] ← op(A)[m×k]·op(B)[k×n]` with C's strides
/// `(rsc, csc)`: one of them 1, and a product large enough to amortise the packing.
pub(super) fn preferred(m: usize, k: usize, n: usize, rsc: isize, csc: isize) -> bool {
    (rsc == 1 || csc == 1)
        && m >= TR
        && n >= TR
        && k >= TK / 2
        && 2 * m * k * n >= 1 << 20
        && available()
}

/// The bf16 bits of `x`, rounded to nearest even; NaN stays NaN.
#[inline(always)]
pub(super) fn to_bf16(x: f32) -> u16 {
    (round_high(x) >> 16) as u16
}

/// The f32 value of bf16 bits.
pub(super) fn from_bf16(h: u16) -> f32 {
    f32::from_bits((h as u32) << 16)
}

/// Pack buffers of one thread, reused across calls (64-byte aligned starts).
#[derive(Default)]
struct Buffers {
    p: Vec<u16>,
    q: Vec<u16>,
}

thread_local! {
    static BUFFERS: RefCell<Buffers> = RefCell::new(Buffers::default());
}

/// A strided f32 matrix: element `(i, j)` at `ptr + i·rs + j·cs`.
#[derive(Clone, Copy)]
struct View {
    ptr: *const f32,
    rs: isize,
    cs: isize,
}

impl View {
    /// # Safety
    /// `(i, j)` inside the matrix.
    #[inline(always)]
    unsafe fn at(self, i: usize, j: usize) -> f32 {
        // SAFETY: the caller's contract.
        unsafe { *self.ptr.offset(i as isize * self.rs + j as isize * self.cs) }
    }
}

/// The bf16 bits of `x` in the high half of a u32 (round to nearest even, NaN kept), lane-wise
/// arithmetic that vectorises.
#[inline(always)]
fn round_high(x: f32) -> u32 {
    let b = x.to_bits();
    let rounded = b.wrapping_add(0x7fff + ((b >> 16) & 1)) & 0xffff_0000;
    if x.is_nan() {
        (b | 0x0040_0000) & 0xffff_0000
    } else {
        rounded
    }
}

/// 32 f32 (`lo` then `hi`) as 32 bf16, rounded to nearest even (`VCVTNE2PS2BF16`; NaN stays
/// NaN, subnormal inputs become zero, as the tile unit treats bf16 subnormals anyway).
#[inline]
#[target_feature(enable = "avx512f,avx512bf16")]
fn convert_32(lo: __m512, hi: __m512) -> __m512i {
    // SAFETY: `__m512bh` and `__m512i` are both 64 bytes of plain data.
    unsafe { std::mem::transmute::<__m512bh, __m512i>(_mm512_cvtne2ps_pbh(hi, lo)) }
}

/// Packs P (`rows×k`) into `tiles_m × kb` tiles of 16 rows × 32 columns (tile `(t, b)` at
/// `(t·kb + b)·TILE`, element `(r, c)` of a tile at `r·32 + c`), rounded to bf16; the rest
/// stays zero. Tiles are written in order; P is read along its contiguous direction.
///
/// # Safety
/// `p` describes a valid `rows×k` matrix; `dst` holds `tiles_m·kb·TILE` zeroed elements; the
/// CPU has AVX-512 F, BW and BF16 (every AMX-BF16 CPU does).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16")]
unsafe fn pack_p(rows: usize, k: usize, p: View, kb: usize, dst: *mut u16) {
    for i0 in (0..rows).step_by(TR) {
        let r_end = (rows - i0).min(TR);
        for b in 0..kb {
            let l0 = b * TK;
            let c_end = (k - l0).min(TK);
            // SAFETY: the tile lies inside the buffer (i0/16 < tiles_m, b < kb).
            let tile = unsafe { dst.add((i0 / TR * kb + b) * TILE) };
            if r_end < TR || c_end < TK {
                // SAFETY: as above; the padding of a partial tile is zero.
                unsafe { std::ptr::write_bytes(tile, 0, TILE) };
            }
            if p.cs == 1 && c_end == TK {
                for r in 0..r_end {
                    // SAFETY: row i0 + r, columns l0..l0 + 32 are inside P and contiguous;
                    // row r of the tile is 64 bytes at a 64-byte boundary.
                    unsafe {
                        let src = p.ptr.offset((i0 + r) as isize * p.rs).add(l0);
                        let v = convert_32(_mm512_loadu_ps(src), _mm512_loadu_ps(src.add(16)));
                        _mm512_store_si512(tile.add(r * TK) as *mut __m512i, v);
                    }
                }
            } else if p.cs == 1 || p.rs != 1 {
                for r in 0..r_end {
                    for c in 0..c_end {
                        // SAFETY: (i0 + r, l0 + c) is inside P; r·32 + c inside the tile.
                        unsafe { *tile.add(r * TK + c) = to_bf16(p.at(i0 + r, l0 + c)) };
                    }
                }
            } else {
                for c in 0..c_end {
                    for r in 0..r_end {
                        // SAFETY: as above.
                        unsafe { *tile.add(r * TK + c) = to_bf16(p.at(i0 + r, l0 + c)) };
                    }
                }
            }
        }
    }
}

/// Packs Q (`k×cols`) into `tiles_n × kb` pair-interleaved tiles (tile `(t, b)` at
/// `(t·kb + b)·TILE`; within it, element `(l, j)` at `(l/2)·32 + j·2 + l%2` for `l < 32`,
/// `j < 16`), rounded to bf16; the rest stays zero. Tiles are written in order.
///
/// # Safety
/// `q` describes a valid `k×cols` matrix; `dst` holds `tiles_n·kb·TILE` zeroed elements; the
/// CPU has AVX-512 F, BW and BF16.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16")]
unsafe fn pack_q(k: usize, cols: usize, q: View, kb: usize, dst: *mut u16) {
    for j0 in (0..cols).step_by(TR) {
        let j_end = (cols - j0).min(TR);
        for b in 0..kb {
            let l0 = b * TK;
            let l_end = (k - l0).min(TK);
            // SAFETY: the tile lies inside the buffer (j0/16 < tiles_n, b < kb).
            let tile = unsafe { dst.add((j0 / TR * kb + b) * TILE) };
            let whole = j_end == TR && l_end == TK;
            if !whole {
                // SAFETY: as above; the padding of a partial tile is zero.
                unsafe { std::ptr::write_bytes(tile, 0, TILE) };
            }
            if q.cs == 1 && j_end == TR && l_end.is_multiple_of(2) {
                // Rows contiguous: rows l and l + 1 interleave into one row of u32 pairs.
                // Lane i of the converted pair of rows holds row l's column i (i < 16) or row
                // l + 1's column i − 16; the tile row wants them alternating.
                let interleave = _mm512_set_epi16(
                    31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21,
                    5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0,
                );
                for pair in 0..l_end / 2 {
                    let l = l0 + 2 * pair;
                    // SAFETY: rows l, l + 1 (< k) and columns j0..j0 + 16 are inside Q; row
                    // `pair` of the tile is 64 bytes at a 64-byte boundary.
                    unsafe {
                        let at = |l: usize| q.ptr.offset(l as isize * q.rs).add(j0);
                        let v = convert_32(_mm512_loadu_ps(at(l)), _mm512_loadu_ps(at(l + 1)));
                        let v = _mm512_permutexvar_epi16(interleave, v);
                        _mm512_store_si512(tile.add(pair * TK) as *mut __m512i, v);
                    }
                }
            } else if q.rs == 1 && whole {
                // Columns contiguous: the pairs of a column are adjacent; convert a column at
                // a time, then transpose the 16×16 block of pairs into the tile's rows.
                let mut block = [[0u32; TR]; TR];
                for (j, pairs) in block.iter_mut().enumerate() {
                    // SAFETY: column j0 + j, rows l0..l0 + 32 are inside Q and contiguous; in
                    // order, its 32 bf16 values are the 16 pairs of the column.
                    unsafe {
                        let col = q.ptr.offset(l0 as isize + (j0 + j) as isize * q.cs);
                        let v = convert_32(_mm512_loadu_ps(col), _mm512_loadu_ps(col.add(16)));
                        _mm512_storeu_si512(pairs.as_mut_ptr() as *mut __m512i, v);
                    }
                }
                // SAFETY: the tile holds 16 rows of 16 u32.
                let out = unsafe { std::slice::from_raw_parts_mut(tile as *mut u32, TR * TR) };
                for (pair, row) in out.chunks_exact_mut(TR).enumerate() {
                    for (j, o) in row.iter_mut().enumerate() {
                        *o = block[j][pair];
                    }
                }
            } else if q.rs == 1 && q.cs != 1 {
                // Columns contiguous: a pair (l, l + 1) of one column is adjacent.
                for j in 0..j_end {
                    for l in 0..l_end {
                        // SAFETY: (l0 + l, j0 + j) is inside Q; the offset inside the tile.
                        unsafe {
                            *tile.add((l / 2) * TK + j * 2 + l % 2) = to_bf16(q.at(l0 + l, j0 + j))
                        };
                    }
                }
            } else {
                for l in 0..l_end {
                    for j in 0..j_end {
                        // SAFETY: as above.
                        unsafe {
                            *tile.add((l / 2) * TK + j * 2 + l % 2) = to_bf16(q.at(l0 + l, j0 + j))
                        };
                    }
                }
            }
        }
    }
}

/// [`pack_q`], then the zero tiles that pad Q to `tiles_n` column tiles.
///
/// # Safety
/// As [`pack_q`], with `dst` holding `tiles_n·kb·TILE` elements.
unsafe fn pack_q_padded(k: usize, cols: usize, q: View, kb: usize, tiles_n: usize, dst: *mut u16) {
    // SAFETY: the caller's contract.
    unsafe {
        pack_q(k, cols, q, kb, dst);
        zero_tiles(dst, cols.div_ceil(TR) * kb, tiles_n * kb);
    }
}

/// Zeroes tiles `from..to` of a packed buffer (the padding tiles that make the tile counts
/// even).
///
/// # Safety
/// The buffer holds `to` tiles.
unsafe fn zero_tiles(dst: *mut u16, from: usize, to: usize) {
    if to > from {
        // SAFETY: the caller's contract.
        unsafe { std::ptr::write_bytes(dst.add(from * TILE), 0, (to - from) * TILE) };
    }
}

/// The tile configuration: palette 1, eight tiles of 16 rows × 64 bytes.
#[repr(C, align(64))]
struct TileConfig([u8; 64]);

impl TileConfig {
    fn new() -> Self {
        let mut c = [0u8; 64];
        c[0] = 1;
        for t in 0..8 {
            c[16 + 2 * t] = 64; // bytes per row (little-endian u16)
            c[48 + t] = TR as u8; // rows
        }
        Self(c)
    }
}

/// An accumulator tile's f32 values in memory (16 rows of 16).
#[repr(C, align(64))]
struct AccTile([f32; TR * TR]);

/// `C ← α·op(A)·op(B) + β·C` with the arguments of `matrixmultiply::sgemm`, operands rounded
/// to bf16.
///
/// # Safety
/// The pointers and strides describe valid `m×k`, `k×n` and `m×n` matrices, C not aliasing A
/// or B, `m, k, n` positive, C row- or column-major (`rsc == 1` or `csc == 1`), and
/// [`available`] returned true.
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
    // Map onto the row-major T ← P·Q.
    let (rows, cols, p, q, ldt) = if csc == 1 {
        (
            m,
            n,
            View {
                ptr: a,
                rs: rsa,
                cs: csa,
            },
            View {
                ptr: b,
                rs: rsb,
                cs: csb,
            },
            rsc,
        )
    } else {
        (
            n,
            m,
            View {
                ptr: b,
                rs: csb,
                cs: rsb,
            },
            View {
                ptr: a,
                rs: csa,
                cs: rsa,
            },
            csc,
        )
    };
    let kb = k.div_ceil(TK);
    let tiles_m = rows.div_ceil(TR).next_multiple_of(2);
    let tiles_n = cols.div_ceil(TR).next_multiple_of(2);
    BUFFERS.with(|cell| {
        let mut bufs = cell.borrow_mut();
        let Buffers { p: pbuf, q: qbuf } = &mut *bufs;
        let pp = super::aligned64(pbuf, tiles_m * kb * TILE);
        let qp = super::aligned64(qbuf, tiles_n * kb * TILE);
        // SAFETY: the caller's contract; the buffers hold the padded tiles.
        unsafe {
            pack_p(rows, k, p, kb, pp);
            zero_tiles(pp, rows.div_ceil(TR) * kb, tiles_m * kb);
            pack_q_padded(k, cols, q, kb, tiles_n, qp);
            compute(
                Shape {
                    rows,
                    cols,
                    kb,
                    tiles_m,
                    tiles_n,
                },
                pp,
                1,
                qp,
                Epilogue {
                    alpha,
                    beta,
                    t: c,
                    ldt,
                },
            );
        }
    });
}

/// Parts of a [`SplitPanel`] weight.
pub(super) const SPLIT_PARTS: usize = 3;

/// `x` as three bf16 values `[hi, mid, lo]` whose sum is `x` exactly: `hi` is `x` rounded to
/// bf16, `mid` the rounded remainder, `lo` the rest, which has at most 8 significant bits (the
/// subtractions are exact). Exact for every finite `x` whose `lo` is not below f32's normal
/// range (|x| ≳ 2⁻¹¹⁰) and below bf16's largest value.
pub(super) fn split_bf16(x: f32) -> [u16; SPLIT_PARTS] {
    let hi = to_bf16(x);
    let rest = x - from_bf16(hi);
    let mid = to_bf16(rest);
    let lo = to_bf16(rest - from_bf16(mid));
    [hi, mid, lo]
}

/// A matrix P (`rows×k`) packed once as the P operand of many products, each element split
/// into [`SPLIT_PARTS`] bf16 parts ([`split_bf16`]): tile `(t, b, s)` of part `s` at
/// `((t·kb + b)·parts + s)·TILE`, padding zero.
pub(super) struct SplitPanel {
    rows: usize,
    k: usize,
    kb: usize,
    tiles_m: usize,
    buf: Vec<u16>,
    /// Offset of the 64-byte-aligned first tile in `buf`.
    start: usize,
}

impl SplitPanel {
    /// Packs `p` (`rows×k`).
    ///
    /// # Safety
    /// `p` describes a valid `rows×k` matrix.
    unsafe fn pack(rows: usize, k: usize, p: View) -> Self {
        let kb = k.div_ceil(TK);
        let tiles_m = rows.div_ceil(TR).next_multiple_of(2);
        let mut buf = vec![0u16; tiles_m * kb * SPLIT_PARTS * TILE + TILE];
        let start = buf.as_ptr().align_offset(64);
        let tiles = &mut buf[start..];
        for i in 0..rows {
            let (t, r) = (i / TR, i % TR);
            for l in 0..k {
                let (b, c) = (l / TK, l % TK);
                // SAFETY: (i, l) is inside P.
                let parts = split_bf16(unsafe { p.at(i, l) });
                for (s, part) in parts.into_iter().enumerate() {
                    tiles[((t * kb + b) * SPLIT_PARTS + s) * TILE + r * TK + c] = part;
                }
            }
        }
        Self {
            rows,
            k,
            kb,
            tiles_m,
            buf,
            start,
        }
    }

    /// Rows of P.
    pub(super) fn rows(&self) -> usize {
        self.rows
    }

    /// Columns of P (the inner dimension).
    pub(super) fn k(&self) -> usize {
        self.k
    }
}

/// Packs `op(W)ᵀ` of a `k×n` matrix `op(W)` with element `(l, j)` of `op(W)` at
/// `ptr + l·rs + j·cs` into a [`SplitPanel`] (`n×k`); `None` when AMX is not [`available`].
///
/// # Safety
/// The pointer and strides describe a valid `k×n` matrix.
pub(super) unsafe fn split_panel(
    k: usize,
    n: usize,
    ptr: *const f32,
    rs: isize,
    cs: isize,
) -> Option<SplitPanel> {
    if !available() {
        return None;
    }
    // SAFETY: the caller's contract; P(i, l) = op(W)(l, i).
    Some(unsafe {
        SplitPanel::pack(
            n,
            k,
            View {
                ptr,
                rs: cs,
                cs: rs,
            },
        )
    })
}

/// `C[c, j] += Σ_l Z[c, l]·P[j, l]` for a column-major `cols×k` matrix Z (leading dimension
/// `ldz`, 0/1 entries for exact products) and a column-major `cols×rows` C (leading dimension
/// `ldc`): the row-major `T = Cᵀ ← T + P·Zᵀ` with P's parts summed. Every element of C is the
/// same instruction sequence whatever `cols`, so each row of C depends only on the same row of Z.
///
/// # Safety
/// Z and C describe valid matrices of these shapes, C not aliasing Z, `ldz, ldc ≥ cols ≥ 1`,
/// and `panel` came from [`split_panel`] (so AMX is available).
pub(super) unsafe fn split_product(
    panel: &SplitPanel,
    cols: usize,
    z: *const f32,
    ldz: usize,
    c: *mut f32,
    ldc: usize,
) {
    let (rows, k, kb) = (panel.rows, panel.k, panel.kb);
    let tiles_n = cols.div_ceil(TR).next_multiple_of(2);
    BUFFERS.with(|cell| {
        let mut bufs = cell.borrow_mut();
        let qp = super::aligned64(&mut bufs.q, tiles_n * kb * TILE);
        // Q = Zᵀ (k×cols): element (l, j) = Z[j, l] at z + l·ldz + j.
        let q = View {
            ptr: z,
            rs: ldz as isize,
            cs: 1,
        };
        // SAFETY: the caller's contract; the buffer holds the padded tiles, the panel its own.
        unsafe {
            pack_q_padded(k, cols, q, kb, tiles_n, qp);
            compute(
                Shape {
                    rows,
                    cols,
                    kb,
                    tiles_m: panel.tiles_m,
                    tiles_n,
                },
                panel.buf.as_ptr().add(panel.start),
                SPLIT_PARTS,
                qp,
                Epilogue {
                    alpha: 1.0,
                    beta: 1.0,
                    t: c,
                    ldt: ldc as isize,
                },
            );
        }
    });
}

/// Sizes of the mapped product.
#[derive(Clone, Copy)]
struct Shape {
    rows: usize,
    cols: usize,
    kb: usize,
    tiles_m: usize,
    tiles_n: usize,
}

/// Where and how results go: `T ← α·acc + β·T`, T row-major with leading dimension `ldt`.
#[derive(Clone, Copy)]
struct Epilogue {
    alpha: f32,
    beta: f32,
    t: *mut f32,
    ldt: isize,
}

/// Runs the 2×2-tile blocks over the packed operands. P holds `parts` tiles per row tile and
/// inner block (tile `(t, b, s)` at `((t·kb + b)·parts + s)·TILE`), all multiplied by the same
/// Q tile and summed: `parts = 1` is a plain product, `parts = 3` the split weights of
/// [`SplitPanel`].
///
/// # Safety
/// The packed buffers hold `tiles_m·kb·parts` and `tiles_n·kb` tiles; T covers `rows×cols` at
/// `ldt`.
unsafe fn compute(s: Shape, pp: *const u16, parts: usize, qp: *const u16, e: Epilogue) {
    let cfg = TileConfig::new();
    // With α = 1 and β ∈ {0, 1} the accumulators start from C (or zero) and end in C; any other
    // α, β start from zero and go through `α·acc + β·c` element by element. Whole tiles are
    // loaded from and stored to C in place, partial ones through `spill` (the same values).
    let direct = e.alpha == 1.0 && (e.beta == 0.0 || e.beta == 1.0);
    let mut spill = [
        AccTile([0.0; TR * TR]),
        AccTile([0.0; TR * TR]),
        AccTile([0.0; TR * TR]),
        AccTile([0.0; TR * TR]),
    ];
    let ldt_bytes = e.ldt as usize * 4;
    // SAFETY: the tile configuration is valid; every load and store below reads or writes
    // one tile of 16 rows × 64 bytes inside the packed buffers, `spill`, or (whole tiles) T.
    unsafe {
        asm!("ldtilecfg [{}]", in(reg) cfg.0.as_ptr(), options(nostack, readonly));
        // Along rows of T: a pair of P's row tiles stays in L1 while Q streams from L2, and
        // consecutive blocks write the same 32 rows of C (pages stay in the TLB).
        for ti in (0..s.tiles_m).step_by(2) {
            let p0 = pp.add(ti * s.kb * parts * TILE);
            let p1 = pp.add((ti + 1) * s.kb * parts * TILE);
            for tj in (0..s.tiles_n).step_by(2) {
                let q0 = qp.add(tj * s.kb * TILE);
                let q1 = qp.add((tj + 1) * s.kb * TILE);
                let mut places = [(std::ptr::null_mut::<f32>(), 0usize); 4];
                for (x, sp) in spill.iter_mut().enumerate() {
                    let (ti, tj) = (ti + x / 2, tj + x % 2);
                    let whole = extent(s, ti, tj) == (TR, TR);
                    places[x] = if direct && whole {
                        let at = e.t.offset((ti * TR) as isize * e.ldt).add(tj * TR);
                        (at, ldt_bytes)
                    } else {
                        load_c(s, e, ti, tj, direct, sp);
                        (sp.0.as_mut_ptr(), 64)
                    };
                    if direct && whole && e.beta == 0.0 {
                        tile_zero(x);
                    } else {
                        tile_load(x, places[x].0, places[x].1);
                    }
                }
                // Split weights: each Q tile pair once per inner block, then every part.
                // One part: the plain product's interleaved loads and products.
                if parts > 1 {
                    for b in 0..s.kb {
                        asm!(
                            "tileloadd tmm6, [{q0} + {s}*1]",
                            "tileloadd tmm7, [{q1} + {s}*1]",
                            q0 = in(reg) q0.add(b * TILE),
                            q1 = in(reg) q1.add(b * TILE),
                            s = in(reg) 64usize,
                            options(nostack, readonly),
                        );
                        for part in 0..parts {
                            let at = (b * parts + part) * TILE;
                            asm!(
                                "tileloadd tmm4, [{p0} + {s}*1]",
                                "tdpbf16ps tmm0, tmm4, tmm6",
                                "tdpbf16ps tmm1, tmm4, tmm7",
                                "tileloadd tmm5, [{p1} + {s}*1]",
                                "tdpbf16ps tmm2, tmm5, tmm6",
                                "tdpbf16ps tmm3, tmm5, tmm7",
                                p0 = in(reg) p0.add(at),
                                p1 = in(reg) p1.add(at),
                                s = in(reg) 64usize,
                                options(nostack, readonly),
                            );
                        }
                    }
                } else {
                    for b in 0..s.kb {
                        asm!(
                            "tileloadd tmm4, [{p0} + {s}*1]",
                            "tileloadd tmm6, [{q0} + {s}*1]",
                            "tdpbf16ps tmm0, tmm4, tmm6",
                            "tileloadd tmm7, [{q1} + {s}*1]",
                            "tdpbf16ps tmm1, tmm4, tmm7",
                            "tileloadd tmm5, [{p1} + {s}*1]",
                            "tdpbf16ps tmm2, tmm5, tmm6",
                            "tdpbf16ps tmm3, tmm5, tmm7",
                            p0 = in(reg) p0.add(b * TILE),
                            p1 = in(reg) p1.add(b * TILE),
                            q0 = in(reg) q0.add(b * TILE),
                            q1 = in(reg) q1.add(b * TILE),
                            s = in(reg) 64usize,
                            options(nostack, readonly),
                        );
                    }
                }
                for (x, sp) in spill.iter().enumerate() {
                    tile_store(x, places[x].0, places[x].1);
                    if std::ptr::eq(places[x].0, sp.0.as_ptr()) {
                        store_c(s, e, ti + x / 2, tj + x % 2, direct, sp);
                    }
                }
            }
        }
        asm!("tilerelease", options(nostack, nomem));
    }
}

/// Zeroes accumulator tile `x` (tmm0–tmm3).
///
/// # Safety
/// A tile configuration is loaded.
#[inline(always)]
unsafe fn tile_zero(x: usize) {
    // SAFETY: the caller's contract.
    unsafe {
        match x {
            0 => asm!("tilezero tmm0", options(nostack, nomem)),
            1 => asm!("tilezero tmm1", options(nostack, nomem)),
            2 => asm!("tilezero tmm2", options(nostack, nomem)),
            _ => asm!("tilezero tmm3", options(nostack, nomem)),
        }
    }
}

/// Loads accumulator tile `x` (tmm0–tmm3) from 16 rows of 16 f32 at `ptr`, `stride` bytes apart.
///
/// # Safety
/// A tile configuration is loaded; the 16 rows are readable.
#[inline(always)]
unsafe fn tile_load(x: usize, ptr: *const f32, stride: usize) {
    // SAFETY: the caller's contract.
    unsafe {
        match x {
            0 => {
                asm!("tileloadd tmm0, [{p} + {s}*1]", p = in(reg) ptr, s = in(reg) stride, options(nostack, readonly))
            }
            1 => {
                asm!("tileloadd tmm1, [{p} + {s}*1]", p = in(reg) ptr, s = in(reg) stride, options(nostack, readonly))
            }
            2 => {
                asm!("tileloadd tmm2, [{p} + {s}*1]", p = in(reg) ptr, s = in(reg) stride, options(nostack, readonly))
            }
            _ => {
                asm!("tileloadd tmm3, [{p} + {s}*1]", p = in(reg) ptr, s = in(reg) stride, options(nostack, readonly))
            }
        }
    }
}

/// Stores accumulator tile `x` (tmm0–tmm3) to 16 rows of 16 f32 at `ptr`, `stride` bytes apart.
///
/// # Safety
/// A tile configuration is loaded; the 16 rows are writable and not aliased.
#[inline(always)]
unsafe fn tile_store(x: usize, ptr: *mut f32, stride: usize) {
    // SAFETY: the caller's contract.
    unsafe {
        match x {
            0 => {
                asm!("tilestored [{p} + {s}*1], tmm0", p = in(reg) ptr, s = in(reg) stride, options(nostack))
            }
            1 => {
                asm!("tilestored [{p} + {s}*1], tmm1", p = in(reg) ptr, s = in(reg) stride, options(nostack))
            }
            2 => {
                asm!("tilestored [{p} + {s}*1], tmm2", p = in(reg) ptr, s = in(reg) stride, options(nostack))
            }
            _ => {
                asm!("tilestored [{p} + {s}*1], tmm3", p = in(reg) ptr, s = in(reg) stride, options(nostack))
            }
        }
    }
}

/// The valid rows and columns of accumulator tile `(ti, tj)`.
fn extent(s: Shape, ti: usize, tj: usize) -> (usize, usize) {
    (
        s.rows.saturating_sub(ti * TR).min(TR),
        s.cols.saturating_sub(tj * TR).min(TR),
    )
}

/// Fills `acc` with the starting accumulator of tile `(ti, tj)`: C's values when accumulating
/// onto C directly (β = 1), else zero; padding is zero.
///
/// # Safety
/// T covers `rows×cols` at `ldt`.
unsafe fn load_c(s: Shape, e: Epilogue, ti: usize, tj: usize, direct: bool, acc: &mut AccTile) {
    acc.0 = [0.0; TR * TR];
    if !(direct && e.beta == 1.0) {
        return;
    }
    let (r, c) = extent(s, ti, tj);
    for i in 0..r {
        // SAFETY: (ti·16 + i, tj·16 + j) for j < c is inside T.
        let row = unsafe { e.t.offset((ti * TR + i) as isize * e.ldt).add(tj * TR) };
        for j in 0..c {
            // SAFETY: as above.
            acc.0[i * TR + j] = unsafe { *row.add(j) };
        }
    }
}

/// Writes the valid part of accumulator tile `(ti, tj)` to T.
///
/// # Safety
/// T covers `rows×cols` at `ldt`.
unsafe fn store_c(s: Shape, e: Epilogue, ti: usize, tj: usize, direct: bool, acc: &AccTile) {
    let (r, c) = extent(s, ti, tj);
    for i in 0..r {
        // SAFETY: as in `load_c`.
        let row = unsafe { e.t.offset((ti * TR + i) as isize * e.ldt).add(tj * TR) };
        for j in 0..c {
            let v = acc.0[i * TR + j];
            // SAFETY: as above.
            unsafe {
                let out = row.add(j);
                *out = if direct {
                    v
                } else if e.beta == 0.0 {
                    e.alpha * v
                } else {
                    e.alpha.mul_add(v, e.beta * *out)
                };
            }
        }
    }
}

//! The plain block-Gibbs draw of [`super::draw_block`] (every β = 1, no base field: the PCD
//! negative phase) written with AVX-512 intrinsics.
//!
//! The generic kernel converts a stream's words to uniforms in a buffer and then draws; the
//! compiler keeps neither the 24-bit integer pairs nor the uniforms in registers and turns the
//! pair interleave into shuffles. Here each 64-bit word becomes the two 24-bit integers of its
//! pair of rows as the two 32-bit halves of one lane (the low half is the even row), so eight
//! words are sixteen rows' uniforms without a shuffle or a trip through memory, and the
//! Bernoulli test follows in the same registers. Every operation is the one the scalar
//! definition does, in the same order (a multiply then an add, never a fused one; the clamp of
//! `exp_approx` keeps a NaN as NaN), so the units are the same bit for bit (tested against the
//! generic kernel).

use std::arch::x86_64::*;

/// `1 / 2²⁴`, the spacing of the uniforms.
const INV_2_24: f32 = 1.0 / 16_777_216.0;

/// Whether this CPU runs [`plain_columns`].
pub(super) fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
}

/// `exp_approx` of `gumbolt_core::numerics` on sixteen lanes, operation for operation.
#[inline]
#[target_feature(enable = "avx512f")]
fn exp16(x: __m512) -> __m512 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const MAGIC: f32 = 12_582_912.0;
    let s = _mm512_set1_ps;
    // `x.clamp(-87, 88)`: VMINPS/VMAXPS return their second operand when either is NaN, so x
    // goes second and a NaN stays NaN, as in `f32::clamp`.
    let x = _mm512_max_ps(s(-87.0), _mm512_min_ps(s(88.0), x));
    let t = _mm512_add_ps(_mm512_mul_ps(x, s(LOG2E)), s(MAGIC));
    let n = _mm512_sub_ps(t, s(MAGIC));
    let r = _mm512_sub_ps(
        _mm512_sub_ps(x, _mm512_mul_ps(n, s(LN2_HI))),
        _mm512_mul_ps(n, s(LN2_LO)),
    );
    let mut p = s(1.987_569_1e-4);
    for c in [
        1.398_199_9e-3,
        8.333_452e-3,
        4.166_579_6e-2,
        1.666_666_5e-1,
        0.5,
    ] {
        p = _mm512_add_ps(_mm512_mul_ps(p, r), s(c));
    }
    let p = _mm512_add_ps(
        _mm512_add_ps(_mm512_mul_ps(_mm512_mul_ps(p, r), r), r),
        s(1.0),
    );
    let ni = _mm512_sub_epi32(_mm512_castps_si512(t), _mm512_set1_epi32(0x4B40_0000));
    let scale = _mm512_slli_epi32::<23>(_mm512_add_epi32(ni, _mm512_set1_epi32(127)));
    _mm512_mul_ps(p, _mm512_castsi512_ps(scale))
}

/// The plain draw of rows `start..start + len` of columns `col0..` of `out` (`[rows, ·]`,
/// column-major) from `per_col` consecutive words per column: `out[c,j] = 1[u + u·e^{−l} < 1]`
/// with `u` the uniforms of `gumbolt_core::rng::uniforms_from_words`.
///
/// # Safety
/// The CPU must support AVX-512F ([`available`]).
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn plain_columns(
    words: &[u64],
    per_col: usize,
    at: (usize, usize, usize, usize),
    logits: &[f32],
    out: &mut [f32],
) {
    let (rows, start, len, col0) = at;
    let one = _mm512_set1_ps(1.0);
    let sign = _mm512_set1_epi32(i32::MIN);
    let low24 = _mm512_set1_epi64(0xFF_FFFF);
    assert!(
        2 * per_col >= len,
        "plain_columns: too few words per column"
    );
    for (j, w) in words.chunks_exact(per_col).enumerate() {
        let first = (col0 + j) * rows + start;
        let l = &logits[first..first + len];
        let o = &mut out[first..first + len];
        let mut i = 0;
        while i < len {
            let n = (len - i).min(16);
            let row_mask: __mmask16 = if n == 16 { !0 } else { (1u16 << n) - 1 };
            let word_mask: __mmask8 = ((1u16 << n.div_ceil(2)) - 1) as u8;
            // SAFETY: the masks cover rows i..i + n < len of `l` and `o` and words
            // i/2..(i + n).div_ceil(2) <= per_col = w.len() of `w` (asserted above); masked-off lanes
            // are neither read nor written.
            unsafe {
                let x = _mm512_maskz_loadu_epi64(word_mask, w.as_ptr().add(i / 2) as *const i64);
                let even = _mm512_srli_epi64::<40>(x);
                let odd = _mm512_and_si512(_mm512_srli_epi64::<8>(x), low24);
                let pairs = _mm512_or_si512(even, _mm512_slli_epi64::<32>(odd));
                // 24-bit integers: the signed conversion is exact, as `m as f32` is.
                let m = _mm512_cvtepi32_ps(pairs);
                let u = _mm512_mul_ps(
                    _mm512_add_ps(m, _mm512_set1_ps(0.5)),
                    _mm512_set1_ps(INV_2_24),
                );
                let l16 = _mm512_maskz_loadu_ps(row_mask, l.as_ptr().add(i));
                let neg = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(l16), sign));
                let lhs = _mm512_add_ps(u, _mm512_mul_ps(u, exp16(neg)));
                let on = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(lhs, one);
                _mm512_mask_storeu_ps(
                    o.as_mut_ptr().add(i),
                    row_mask,
                    _mm512_maskz_mov_ps(on, one),
                );
            }
            i += 16;
        }
    }
}

//! Vectorisable elementwise kernels of the samplers and the per-stream uniform generator.
//!
//! Every kernel works on whole column-major blocks (`[C, n]` stored column after column) and
//! takes per-row (per-chain) inverse temperatures β, so one GEMM serves all chains and
//! temperatures. The kernels go through core's `multiversion!` (baseline, AVX2+FMA and AVX-512 picked at
//! run time, bit-identical) and core's f32 `exp`/`softplus` kernels.

use gumbolt_core::numerics::{exp_approx, softplus_approx as softplus_f32};
use gumbolt_core::rng::{StreamRng, fill_words, uniforms_from_words};

#[cfg(target_arch = "x86_64")]
mod avx512;

/// Rows per block of the f32 row accumulators.
const ROW_CHUNK: usize = 256;

/// Number of chains (rows) that share one RNG stream. Fixed, so that a given seed gives the same
/// draws whatever the batching or the number of threads.
pub const CHAINS_PER_STREAM: usize = 32;

/// `1[u < σ(x)]` without a division: `u < 1/(1 + e^{−x})  ⟺  u + u·e^{−x} < 1`.
#[inline(always)]
fn bernoulli(x: f32, u: f32) -> f32 {
    if u + u * exp_approx(-x) < 1.0 {
        1.0
    } else {
        0.0
    }
}

/// The logits, inverse temperatures, base field and output of [`draw_block`]: column-major
/// `[rows, cols]` blocks with `rows = beta.len()`.
pub(crate) struct Draw<'a> {
    pub(crate) logits: &'a [f32],
    pub(crate) beta: &'a [f32],
    pub(crate) base: Option<&'a [f32]>,
    pub(crate) out: &'a mut [f32],
}

/// Draws a block of Bernoulli units, `out[c,j] = 1[u[c,j] < σ(β_c·l[c,j] + (1 − β_c)·base_j)]`
/// (base 0 when `None`), with the uniforms `u` that [`fill_uniform_block`] draws from the same
/// streams and groups: the same units, bit for bit, as `fill_uniform_block` followed by
/// [`sample_block`] (tested), but each stream's words become uniforms and units in one pass
/// over a small buffer, so the `[rows, cols]` block of uniforms never goes through memory.
pub(crate) fn draw_block(rngs: &mut [StreamRng], groups: &[usize], draw: Draw<'_>) {
    let rows = draw.beta.len();
    if rows == 0 {
        return;
    }
    let cols = draw.out.len() / rows;
    let Draw {
        logits,
        beta,
        base,
        out,
    } = draw;
    #[cfg(target_arch = "x86_64")]
    if base.is_none() && beta.iter().all(|&b| b == 1.0) && avx512::available() {
        for_each_word_chunk(rngs, groups, cols, |words, per_col, (start, len), col| {
            let at = (rows, start, len, col);
            // SAFETY: `available()` checked that the CPU has AVX-512F.
            unsafe { avx512::plain_columns(words, per_col, at, logits, out) };
        });
        return;
    }
    for_each_word_chunk(rngs, groups, cols, |words, per_col, (start, len), col| {
        let at = (rows, start, len, col);
        bernoulli_columns(words, per_col, at, logits, beta, base, out);
    });
}

/// Walks the streams' words in the order both block draws consume them: for each group `g`
/// (rows `start..start + len`, stream `rngs[g]`, `per_col = ⌈len/2⌉` words per column) and each
/// chunk of columns `col..` that fits the word buffer, `f(words, per_col, (start, len), col)`
/// with the stream's next words for those columns.
fn for_each_word_chunk(
    rngs: &mut [StreamRng],
    groups: &[usize],
    cols: usize,
    mut f: impl FnMut(&[u64], usize, (usize, usize), usize),
) {
    debug_assert_eq!(rngs.len(), groups.len());
    let mut words = [0u64; WORD_BUFFER];
    let mut start = 0;
    for (rng, &len) in rngs.iter_mut().zip(groups) {
        if len == 0 {
            continue;
        }
        let per_col = len.div_ceil(2);
        assert!(
            per_col <= WORD_BUFFER,
            "a stream group of {len} rows is longer than the word buffer"
        );
        let cols_per_fill = WORD_BUFFER / per_col;
        let mut col = 0;
        while col < cols {
            let n = cols_per_fill.min(cols - col);
            let used = &mut words[..n * per_col];
            fill_words(rng, used);
            f(used, per_col, (start, len), col);
            col += n;
        }
        start += len;
    }
}

gumbolt_core::multiversion! {
    /// The units of rows `start..start + len` of columns `col0..` of `out` (`[rows, ·]`,
    /// column-major) from `per_col` consecutive words per column ([`draw_block`]).
    fn bernoulli_columns(
        words: &[u64],
        per_col: usize,
        at: (usize, usize, usize, usize),
        logits: &[f32],
        beta: &[f32],
        base: Option<&[f32]>,
        out: &mut [f32],
    ) {
        let (rows, start, len, col0) = at;
        let beta = &beta[start..start + len];
        // Plain Gibbs (every β = 1, so β·l = l exactly) skips the multiplications.
        let plain = base.is_none() && beta.iter().all(|&b| b == 1.0);
        let mut uniforms = [0.0f32; 2 * WORD_BUFFER];
        for (j, w) in words.chunks_exact(per_col).enumerate() {
            let col = col0 + j;
            let u = &mut uniforms[..len];
            uniforms_from_words(w, u);
            let first = col * rows + start;
            let l = &logits[first..first + len];
            let o = &mut out[first..first + len];
            match base {
                None if plain => {
                    for ((o, &l), &u) in o.iter_mut().zip(l).zip(u.iter()) {
                        *o = bernoulli(l, u);
                    }
                }
                None => {
                    for (((o, &l), &u), &b) in o.iter_mut().zip(l).zip(u.iter()).zip(beta) {
                        *o = bernoulli(b * l, u);
                    }
                }
                Some(h) => {
                    let h = h[col];
                    for (((o, &l), &u), &b) in o.iter_mut().zip(l).zip(u.iter()).zip(beta) {
                        *o = bernoulli(b * l + (1.0 - b) * h, u);
                    }
                }
            }
        }
    }
}

gumbolt_core::multiversion! {
    /// Draws a block of Bernoulli units: for every column `j` and row `c`,
    /// `out[c,j] = 1[u[c,j] < σ(β_c·l[c,j] + (1 − β_c)·base_j)]` (base 0 when `None`).
    /// The reference of [`draw_block`], which draws the uniforms itself.
    ///
    /// All slices are column-major with `rows = beta.len()` rows.
    #[cfg(test)]
    pub(crate) fn sample_block(
        logits: &[f32],
        beta: &[f32],
        base: Option<&[f32]>,
        uniforms: &[f32],
        out: &mut [f32],
    ) {
        let rows = beta.len();
        if rows == 0 {
            return;
        }
        if base.is_none() && beta.iter().all(|&b| b == 1.0) {
            // Plain Gibbs (every β = 1, so β·l = l exactly): one loop over the whole block.
            for ((o, &l), &u) in out.iter_mut().zip(logits).zip(uniforms) {
                *o = bernoulli(l, u);
            }
            return;
        }
        let cols = out.len() / rows;
        for j in 0..cols {
            let l = &logits[j * rows..(j + 1) * rows];
            let u = &uniforms[j * rows..(j + 1) * rows];
            let o = &mut out[j * rows..(j + 1) * rows];
            match base {
                None => {
                    for (((o, &l), &u), &b) in o.iter_mut().zip(l).zip(u).zip(beta) {
                        *o = bernoulli(b * l, u);
                    }
                }
                Some(h) => {
                    let h = h[j];
                    for (((o, &l), &u), &b) in o.iter_mut().zip(l).zip(u).zip(beta) {
                        *o = bernoulli(b * l + (1.0 - b) * h, u);
                    }
                }
            }
        }
    }
}

gumbolt_core::multiversion! {
    /// `acc[c] += Σ_j [softplus(β_new·l[c,j]) − softplus(β_old·l[c,j])]` with the same
    /// (β_old, β_new) for every row: the AIS weight increment of the summed-out block.
    pub(crate) fn softplus_diff_rows_uniform(
        logits: &[f32],
        rows: usize,
        beta_old: f32,
        beta_new: f32,
        acc: &mut [f64],
    ) {
        if rows == 0 {
            return;
        }
        // Per-row sums in f32 (full-width vectors), added to the f64 accumulators once.
        let mut sum = [0.0f32; ROW_CHUNK];
        for r0 in (0..rows).step_by(ROW_CHUNK) {
            let len = ROW_CHUNK.min(rows - r0);
            let sum = &mut sum[..len];
            sum.fill(0.0);
            for l in logits.chunks_exact(rows) {
                for (s, &x) in sum.iter_mut().zip(&l[r0..r0 + len]) {
                    *s += softplus_f32(beta_new * x) - softplus_f32(beta_old * x);
                }
            }
            for (a, &s) in acc[r0..r0 + len].iter_mut().zip(sum.iter()) {
                *a += s as f64;
            }
        }
    }
}

gumbolt_core::multiversion! {
    /// With per-row inverse temperatures (β_lo, β, β_hi):
    /// `up[c] += Σ_j [softplus(β_hi,c·l[c,j]) − softplus(β_c·l[c,j])]` and
    /// `down[c] += Σ_j [softplus(β_lo,c·l[c,j]) − softplus(β_c·l[c,j])]` (the summed-out part of
    /// the bridge-sampling statistics towards both neighbours).
    pub(crate) fn softplus_diff_rows_neighbours(
        logits: &[f32],
        beta_lo: &[f32],
        beta: &[f32],
        beta_hi: &[f32],
        up: &mut [f64],
        down: &mut [f64],
    ) {
        let rows = beta.len();
        if rows == 0 {
            return;
        }
        let mut su = [0.0f32; ROW_CHUNK];
        let mut sd = [0.0f32; ROW_CHUNK];
        for r0 in (0..rows).step_by(ROW_CHUNK) {
            let len = ROW_CHUNK.min(rows - r0);
            let (su, sd) = (&mut su[..len], &mut sd[..len]);
            su.fill(0.0);
            sd.fill(0.0);
            let (bl, b, bh) = (&beta_lo[r0..r0 + len], &beta[r0..r0 + len], &beta_hi[r0..r0 + len]);
            for l in logits.chunks_exact(rows) {
                for (((((u, d), &x), &bl), &b), &bh) in
                    su.iter_mut().zip(sd.iter_mut()).zip(&l[r0..r0 + len]).zip(bl).zip(b).zip(bh)
                {
                    let mid = softplus_f32(b * x);
                    *u += softplus_f32(bh * x) - mid;
                    *d += softplus_f32(bl * x) - mid;
                }
            }
            for (a, &v) in up[r0..r0 + len].iter_mut().zip(su.iter()) {
                *a += v as f64;
            }
            for (a, &v) in down[r0..r0 + len].iter_mut().zip(sd.iter()) {
                *a += v as f64;
            }
        }
    }
}

gumbolt_core::multiversion! {
    /// `acc[c] += Σ_j z[c,j]·l[c,j]` over column-major `[rows, cols]` blocks.
    pub(crate) fn rowwise_dot(z: &[f32], l: &[f32], rows: usize, acc: &mut [f64]) {
        if rows == 0 {
            return;
        }
        for (zc, lc) in z.chunks_exact(rows).zip(l.chunks_exact(rows)) {
            for ((a, &zz), &ll) in acc.iter_mut().zip(zc).zip(lc) {
                *a += (zz * ll) as f64;
            }
        }
    }
}

gumbolt_core::multiversion! {
    /// `acc[c] += Σ_j l[c,j]·σ(β·l[c,j])`: the derivative in β of `Σ_j softplus(β·l[c,j])`.
    pub(crate) fn logit_times_sigmoid_rows(logits: &[f32], rows: usize, beta: f32, acc: &mut [f64]) {
        if rows == 0 {
            return;
        }
        for l in logits.chunks_exact(rows) {
            for (a, &x) in acc.iter_mut().zip(l) {
                *a += (x / (1.0 + exp_approx(-beta * x))) as f64;
            }
        }
    }
}

/// `acc[c] += Σ_j z[c,j]·v_j` over a column-major `[rows, cols]` block.
pub(crate) fn rowwise_dot_vec(z: &[f32], v: &[f32], rows: usize, acc: &mut [f64]) {
    if rows == 0 {
        return;
    }
    for (zc, &vj) in z.chunks_exact(rows).zip(v) {
        if vj == 0.0 {
            continue;
        }
        let vj = vj as f64;
        for (a, &zz) in acc.iter_mut().zip(zc) {
            *a += zz as f64 * vj;
        }
    }
}

/// Fills the column-major `[rows, cols]` block `out` with uniforms on (0, 1): consecutive rows
/// are split into groups of lengths `groups` (summing to `rows`), and the rows of group `g` are
/// drawn from `rngs[g]`, column after column, so the draws of a row depend only on its stream
/// and its position in the group.
pub(crate) fn fill_uniform_block(
    rngs: &mut [StreamRng],
    groups: &[usize],
    rows: usize,
    out: &mut [f32],
) {
    if rows == 0 {
        return;
    }
    debug_assert_eq!(groups.iter().sum::<usize>(), rows);
    let cols = out.len() / rows;
    // Each stream's draws, column after column, in a tight loop over a buffer of words, then
    // one vectorised conversion of the buffer: the same values as drawing column by column.
    for_each_word_chunk(rngs, groups, cols, |words, per_col, (start, len), col| {
        let n = words.len() / per_col;
        let block = &mut out[col * rows..(col + n) * rows];
        columns_from_words(words, per_col, (rows, start, len), block);
    });
}

/// Words in the buffer of [`for_each_word_chunk`] (4 KiB).
const WORD_BUFFER: usize = 512;

gumbolt_core::multiversion! {
    /// The uniforms of rows `start..start + len` of every column of `out` (`[rows, ·]`,
    /// column-major) from `per_col` consecutive words per column.
    fn columns_from_words(
        words: &[u64],
        per_col: usize,
        place: (usize, usize, usize),
        out: &mut [f32],
    ) {
        let (rows, start, len) = place;
        for (w, col) in words.chunks_exact(per_col).zip(out.chunks_exact_mut(rows)) {
            uniforms_from_words(w, &mut col[start..start + len]);
        }
    }
}

/// Group lengths of `rows` rows in groups of `group` (the last one possibly shorter).
pub(crate) fn uniform_groups(rows: usize, group: usize) -> Vec<usize> {
    (0..rows.div_ceil(group))
        .map(|g| group.min(rows - g * group))
        .collect()
}

/// Number of RNG streams for `rows` chains.
pub(crate) fn streams_for(rows: usize) -> usize {
    rows.div_ceil(CHAINS_PER_STREAM)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gumbolt_core::numerics::{sigmoid, softplus};
    use gumbolt_core::rng::fill_uniform;

    #[test]
    fn fast_softplus_is_accurate() {
        let mut worst = 0.0f64;
        for i in -4000..=4000 {
            let x = i as f32 * 0.0137;
            let got = softplus_f32(x) as f64;
            let want = softplus(x as f64);
            worst = worst.max((got - want).abs() / want.max(1e-30).max(1.0));
            if x < -10.0 {
                // tiny values: relative accuracy
                assert!(((got - want) / want).abs() < 1e-5, "x={x}");
            }
        }
        assert!(worst < 5e-7, "worst {worst}");
        assert!(softplus_f32(-1e9) >= 0.0 && softplus_f32(1e9) == 1e9);
    }

    #[test]
    fn bernoulli_kernel_matches_sigmoid_threshold() {
        let rows = 3;
        let logits = [0.0f32, 2.0, -2.0, 0.5, 40.0, -40.0];
        let beta = [1.0f32, 0.5, 0.0];
        let uniforms = [0.49f32, 0.7, 0.51, 0.5, 0.99, 0.3];
        let mut out = [9.0f32; 6];
        sample_block(&logits, &beta, None, &uniforms, &mut out);
        for j in 0..2 {
            for (c, &b) in beta.iter().enumerate() {
                let k = j * rows + c;
                let p = sigmoid((b * logits[k]) as f64);
                assert_eq!(out[k], if (uniforms[k] as f64) < p { 1.0 } else { 0.0 });
            }
        }
        let base = [3.0f32, -3.0];
        sample_block(&logits, &beta, Some(&base), &uniforms, &mut out);
        // row 2 has β = 0: pure base field.
        assert_eq!(out[2], 1.0); // σ(3) = 0.95 > 0.51
        assert_eq!(out[5], 0.0); // σ(−3) = 0.047 < 0.3
    }

    #[test]
    fn uniform_blocks_do_not_depend_on_batching() {
        let rows = 70;
        let mut a = gumbolt_core::rng::streams(5, streams_for(rows));
        let mut out = vec![0.0f32; rows * 3];
        fill_uniform_block(
            &mut a,
            &uniform_groups(rows, CHAINS_PER_STREAM),
            rows,
            &mut out,
        );
        // row 40 lives in group 1; its three draws come from stream 1 in column order.
        let mut s = gumbolt_core::rng::streams(5, 2).pop().unwrap();
        let mut col = vec![0.0f32; CHAINS_PER_STREAM];
        fill_uniform(&mut s, &mut col);
        assert_eq!(out[40], col[40 - CHAINS_PER_STREAM]);
    }

    #[test]
    fn uniform_blocks_equal_column_by_column_draws() {
        // Groups of even and odd lengths, and more columns than one word buffer holds.
        for rows in [1usize, 5, 37, 70, 100] {
            let groups = uniform_groups(rows, CHAINS_PER_STREAM);
            let cols = 3 * WORD_BUFFER / 16 + 7;
            let mut a = gumbolt_core::rng::streams(9, groups.len());
            let mut out = vec![0.0f32; rows * cols];
            fill_uniform_block(&mut a, &groups, rows, &mut out);
            let mut b = gumbolt_core::rng::streams(9, groups.len());
            let mut want = vec![0.0f32; rows * cols];
            for col in want.chunks_exact_mut(rows) {
                let mut start = 0;
                for (rng, &len) in b.iter_mut().zip(&groups) {
                    fill_uniform(rng, &mut col[start..start + len]);
                    start += len;
                }
            }
            assert_eq!(out, want, "rows {rows}");
            // The streams end in the same state.
            for (x, y) in a.iter_mut().zip(b.iter_mut()) {
                let (mut wx, mut wy) = ([0u64; 1], [0u64; 1]);
                fill_words(x, &mut wx);
                fill_words(y, &mut wy);
                assert_eq!(wx, wy);
            }
        }
    }

    #[test]
    fn fused_draws_equal_uniforms_then_units() {
        // Groups of even and odd lengths, more columns than one word buffer holds, and the
        // three cases of the kernel: plain Gibbs, per-row β, and β with AIS's base field.
        for rows in [1usize, 5, 37, 100] {
            let groups = uniform_groups(rows, CHAINS_PER_STREAM);
            let cols = 3 * WORD_BUFFER / 16 + 7;
            let logits: Vec<f32> = (0..rows * cols)
                .map(|i| ((i * 7919) % 97) as f32 / 8.0 - 6.0)
                .collect();
            let varied: Vec<f32> = (0..rows).map(|c| c as f32 / rows as f32).collect();
            let ones = vec![1.0f32; rows];
            let field: Vec<f32> = (0..cols).map(|j| (j % 9) as f32 - 4.0).collect();
            for (beta, base) in [(&ones, None), (&varied, None), (&varied, Some(&field[..]))] {
                let mut a = gumbolt_core::rng::streams(21, groups.len());
                let mut u = vec![0.0f32; rows * cols];
                fill_uniform_block(&mut a, &groups, rows, &mut u);
                let mut want = vec![9.0f32; rows * cols];
                sample_block(&logits, beta, base, &u, &mut want);
                let mut b = gumbolt_core::rng::streams(21, groups.len());
                let mut got = vec![9.0f32; rows * cols];
                let draw = Draw {
                    logits: &logits,
                    beta,
                    base,
                    out: &mut got,
                };
                draw_block(&mut b, &groups, draw);
                assert_eq!(got, want, "rows {rows}, base {}", base.is_some());
                assert!(got.contains(&0.0) && got.contains(&1.0));
                for (x, y) in a.iter_mut().zip(b.iter_mut()) {
                    let (mut wx, mut wy) = ([0u64; 1], [0u64; 1]);
                    fill_words(x, &mut wx);
                    fill_words(y, &mut wy);
                    assert_eq!(wx, wy, "the streams end in the same state");
                }
            }
        }
    }

    #[test]
    fn plain_draws_match_the_reference_at_extreme_logits() {
        // The plain draw (the AVX-512 kernel where the CPU has it) against uniforms then
        // units, at every group length up to two groups, with logits at and beyond the
        // clamp of `exp_approx`, signed zeros, infinities and NaN.
        let specials = [
            0.0f32,
            -0.0,
            87.0,
            -87.0,
            88.0,
            -88.0,
            200.0,
            -200.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            1e-30,
            -1e-30,
            16.6,
            -16.6,
        ];
        for rows in 1..=2 * CHAINS_PER_STREAM + 3 {
            let groups = uniform_groups(rows, CHAINS_PER_STREAM);
            let cols = 41;
            let logits: Vec<f32> = (0..rows * cols)
                .map(|i| match i % 4 {
                    0 => specials[(i / 4) % specials.len()],
                    _ => ((i * 7919) % 211) as f32 / 10.0 - 10.5,
                })
                .collect();
            let ones = vec![1.0f32; rows];
            let mut a = gumbolt_core::rng::streams(5, groups.len());
            let mut u = vec![0.0f32; rows * cols];
            fill_uniform_block(&mut a, &groups, rows, &mut u);
            let mut want = vec![9.0f32; rows * cols];
            sample_block(&logits, &ones, None, &u, &mut want);
            let mut b = gumbolt_core::rng::streams(5, groups.len());
            let mut got = vec![9.0f32; rows * cols];
            let draw = Draw {
                logits: &logits,
                beta: &ones,
                base: None,
                out: &mut got,
            };
            draw_block(&mut b, &groups, draw);
            assert_eq!(got, want, "rows {rows}");
            assert!(got.contains(&0.0) && got.contains(&1.0));
        }
    }

    #[test]
    fn plain_gibbs_draws_equal_the_per_column_draws() {
        // Every β = 1 with no base field takes the whole-block loop; a base field of zero
        // takes the per-column loop (β·l + 0·0 = l), which must draw the same units.
        let (rows, cols) = (37, 9);
        let logits: Vec<f32> = (0..rows * cols)
            .map(|i| ((i * 7919) % 97) as f32 / 8.0 - 6.0)
            .collect();
        let uniforms: Vec<f32> = (0..rows * cols)
            .map(|i| (((i * 104_729) % 1000) as f32 + 0.5) / 1000.0)
            .collect();
        let ones = vec![1.0f32; rows];
        let mut fast = vec![9.0f32; rows * cols];
        sample_block(&logits, &ones, None, &uniforms, &mut fast);
        let zero_base = vec![0.0f32; cols];
        let mut general = vec![9.0f32; rows * cols];
        sample_block(&logits, &ones, Some(&zero_base), &uniforms, &mut general);
        assert_eq!(fast, general);
        for ((&o, &l), &u) in fast.iter().zip(&logits).zip(&uniforms) {
            assert_eq!(o, bernoulli(l, u));
        }
        assert!(fast.contains(&0.0) && fast.contains(&1.0));
    }
}

//! Element-wise passes split over the threads of the calling rayon pool.
//!
//! A training step runs its networks on one worker of a small pool while another worker runs
//! the negative phase (docs/architecture.md, "Threads"). Once the negative phase is done that
//! worker only takes halves of the large products ([`crate::linalg::gemm`]); the element-wise
//! passes between them (the decoder likelihood over `N × D` logits, relaxed sampling, the
//! posterior's log-probabilities and scores, bias sums) would stay on the networks' thread.
//! The helpers here hand parts of such a pass to the pool.
//!
//! Splitting never changes a result: a pass is split into whole elements, whole rows (for
//! per-row sums, which keep their order of summation) or whole columns (for per-column sums),
//! and every element is computed by the same operations whichever thread computes it. Parts
//! are only formed on a worker of a rayon pool with several threads (as [`crate::linalg`]
//! splits products), so a caller outside a pool never starts threads.
//!
//! ```
//! use gumbolt_core::parallel::for_each_chunk_mut;
//! let x: Vec<f32> = (0..300_000).map(|i| i as f32).collect();
//! let mut y = vec![0.0f32; x.len()];
//! let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
//! // Element-wise: each part gets its offset into `y` and its chunk.
//! pool.install(|| {
//!     for_each_chunk_mut(&mut y, 1, |start, chunk| {
//!         for (o, &v) in chunk.iter_mut().zip(&x[start..]) {
//!             *o = 2.0 * v;
//!         }
//!     })
//! });
//! assert!(y.iter().zip(&x).all(|(&o, &v)| o == 2.0 * v));
//! ```

use std::ops::Range;

use crate::linalg::{Precision, ProductPrecision};

/// Minimum number of elements of each part of a split pass: below this the cost of handing a
/// part to another thread (and of waking it) outweighs the work.
pub const PARALLEL_ELEMENTWISE_MIN: usize = 1 << 17;

/// Into how many parts a pass over `elements` values is split: 1 unless the calling thread is
/// a worker of a rayon pool with several threads, then up to the pool's size with at least
/// [`PARALLEL_ELEMENTWISE_MIN`] elements per part.
pub fn parts_for(elements: usize) -> usize {
    if rayon::current_thread_index().is_none() {
        return 1;
    }
    let threads = rayon::current_num_threads();
    threads.min(elements / PARALLEL_ELEMENTWISE_MIN).max(1)
}

/// `0..len` cut into `parts` consecutive ranges of nearly equal length whose boundaries are
/// multiples of `align` (the last range takes the remainder); empty ranges are dropped.
///
/// # Panics
/// If `align` is 0.
pub fn ranges(len: usize, align: usize, parts: usize) -> Vec<Range<usize>> {
    assert!(align > 0, "parallel::ranges: align must be positive");
    let units = len.div_ceil(align);
    let parts = parts.clamp(1, units.max(1));
    let mut out = Vec::with_capacity(parts);
    let mut start = 0;
    for p in 1..=parts {
        let end = if p == parts {
            len
        } else {
            (units * p / parts * align).min(len)
        };
        if end > start {
            out.push(start..end);
        }
        start = end;
    }
    out
}

/// Runs `f` on every item of `parts`, the items in parallel on the calling rayon pool
/// (recursive `rayon::join`; a single item runs on this thread).
pub fn for_each_part<T: Send, F: Fn(T) + Sync>(mut parts: Vec<T>, f: &F) {
    match parts.len() {
        0 => {}
        1 => f(parts.pop().expect("one part")),
        n => {
            let right = parts.split_off(n / 2);
            // While this thread waits for the other half it may run unrelated rayon jobs: they
            // must not see this thread's product precision (as in `linalg`'s split products).
            let _f32 = ProductPrecision::enter(Precision::F32);
            rayon::join(|| for_each_part(parts, f), || for_each_part(right, f));
        }
    }
}

/// Runs `f(start, chunk)` over consecutive chunks of `out` (boundaries at multiples of
/// `align`, e.g. a column length for whole columns of a column-major matrix), in parallel
/// when [`parts_for`] allows; `start` is the chunk's offset in `out`.
pub fn for_each_chunk_mut<F: Fn(usize, &mut [f32]) + Sync>(out: &mut [f32], align: usize, f: F) {
    let work = out.len();
    for_each_chunk_mut_with_work(out, align, work, f);
}

/// As [`for_each_chunk_mut`] for a pass whose work is `work` elements rather than the length
/// of `out` (e.g. one sum per column of a tall matrix: `out` holds the sums).
pub fn for_each_chunk_mut_with_work<T: Send, F: Fn(usize, &mut [T]) + Sync>(
    out: &mut [T],
    align: usize,
    work: usize,
    f: F,
) {
    let parts = parts_for(work);
    if parts <= 1 {
        f(0, out);
        return;
    }
    let mut chunks = Vec::with_capacity(parts);
    let mut rest = out;
    let mut offset = 0;
    for r in ranges(rest.len(), align.max(1), parts) {
        let (head, tail) = rest.split_at_mut(r.len());
        chunks.push((offset, head));
        offset += r.len();
        rest = tail;
    }
    for_each_part(chunks, &|(start, chunk): (usize, &mut [T])| f(start, chunk));
}

/// Runs `f(rows, out_rows)` for consecutive row ranges of a pass that writes one value per
/// row (`out`) and reads `work` elements in all, `out_rows` being `out[rows]`; row boundaries
/// are multiples of `align`. In parallel when [`parts_for`] allows.
pub fn for_each_row_range<T: Send, F: Fn(Range<usize>, &mut [T]) + Sync>(
    out: &mut [T],
    align: usize,
    work: usize,
    f: F,
) {
    let rs = ranges(out.len(), align.max(1), parts_for(work));
    let mut items = Vec::with_capacity(rs.len());
    let mut rest = out;
    for r in rs {
        let (head, tail) = rest.split_at_mut(r.len());
        items.push((r, head));
        rest = tail;
    }
    for_each_part(items, &|(r, o)| f(r, o));
}

/// `s` cut into the pieces `s[r.start·unit .. r.end·unit]` for each of `ranges` (disjoint,
/// ascending), e.g. whole columns (`unit` = rows) of a column-major matrix, or the
/// per-column statistics (`unit` = 1) that go with them.
///
/// # Panics
/// If a range exceeds `s` or the ranges overlap or are out of order.
pub fn split_mut<'a, T>(s: &'a mut [T], ranges: &[Range<usize>], unit: usize) -> Vec<&'a mut [T]> {
    let mut out = Vec::with_capacity(ranges.len());
    let mut rest = s;
    let mut consumed = 0;
    for r in ranges {
        assert!(r.start >= consumed, "split_mut: ranges out of order");
        let (_, tail) = rest.split_at_mut((r.start - consumed) * unit);
        let (mine, tail) = tail.split_at_mut(r.len() * unit);
        out.push(mine);
        rest = tail;
        consumed = r.end;
    }
    out
}

/// Rows `range` of every column of a column-major buffer with `rows` rows, one slice per
/// column, for each of `ranges` (disjoint, ascending): the mutable parts of a pass split over
/// rows.
///
/// # Panics
/// If `data.len()` is not a multiple of `rows` or a range exceeds `rows`.
pub fn row_blocks_mut<'a>(
    data: &'a mut [f32],
    rows: usize,
    ranges: &[Range<usize>],
) -> Vec<Vec<&'a mut [f32]>> {
    let mut blocks: Vec<Vec<&'a mut [f32]>> = ranges.iter().map(|_| Vec::new()).collect();
    if rows == 0 {
        return blocks;
    }
    assert_eq!(data.len() % rows, 0, "row_blocks_mut: not whole columns");
    for mut col in data.chunks_exact_mut(rows) {
        let mut consumed = 0;
        for (block, r) in blocks.iter_mut().zip(ranges) {
            assert!(
                r.start >= consumed && r.end <= rows,
                "row_blocks_mut: range"
            );
            let (_, tail) = col.split_at_mut(r.start - consumed);
            let (mine, tail) = tail.split_at_mut(r.len());
            block.push(mine);
            col = tail;
            consumed = r.end;
        }
    }
    blocks
}

/// Runs `f(rows, out_rows, columns)` for row blocks of a pass over an `rows × cols`
/// column-major matrix `m` that writes one value per row (`out`, length `rows`): `columns`
/// holds rows `rows` of every column of `m`. Row boundaries are multiples of `align`
/// (e.g. the `k` samples of one image). Runs in parallel when [`parts_for`] allows; per-row
/// sums keep their order, so the result does not depend on the split.
///
/// # Panics
/// If `out.len() != rows` or `m.len()` is not a multiple of `rows`.
pub fn for_each_row_block<T: Send, F>(m: &mut [f32], rows: usize, out: &mut [T], align: usize, f: F)
where
    F: Fn(Range<usize>, &mut [T], Vec<&mut [f32]>) + Sync,
{
    assert_eq!(out.len(), rows, "for_each_row_block: one output per row");
    let parts = parts_for(m.len());
    let rs = ranges(rows, align.max(1), parts);
    let blocks = row_blocks_mut(m, rows, &rs);
    let mut items = Vec::with_capacity(rs.len());
    let mut rest = out;
    for (r, cols) in rs.into_iter().zip(blocks) {
        let (head, tail) = rest.split_at_mut(r.len());
        items.push((r, head, cols));
        rest = tail;
    }
    for_each_part(items, &|(r, o, cols)| f(r, o, cols));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(n: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .expect("pool")
    }

    #[test]
    fn ranges_cover_and_align() {
        for (len, align, parts) in [(10, 1, 3), (2000, 20, 2), (7, 4, 5), (0, 3, 2), (5, 8, 2)] {
            let rs = ranges(len, align, parts);
            assert!(rs.len() <= parts.max(1));
            let mut next = 0;
            for r in &rs {
                assert_eq!(r.start, next);
                assert!(!r.is_empty());
                if r.end != len {
                    assert_eq!(r.end % align, 0, "{len} {align} {parts}: {rs:?}");
                }
                next = r.end;
            }
            assert_eq!(next, len);
        }
        assert_eq!(ranges(2000, 20, 2), vec![0..1000, 1000..2000]);
    }

    #[test]
    fn parts_only_inside_a_pool_with_threads() {
        let big = 10 * PARALLEL_ELEMENTWISE_MIN;
        assert_eq!(parts_for(big), 1, "outside a pool");
        assert_eq!(pool(1).install(|| parts_for(big)), 1);
        assert_eq!(pool(2).install(|| parts_for(big)), 2);
        assert_eq!(pool(2).install(|| parts_for(PARALLEL_ELEMENTWISE_MIN)), 1);
        assert_eq!(
            pool(3).install(|| parts_for(2 * PARALLEL_ELEMENTWISE_MIN)),
            2
        );
    }

    #[test]
    fn split_mut_cuts_whole_units() {
        let mut v: Vec<u32> = (0..12).collect();
        let parts = split_mut(&mut v, &[0..1, 2..4], 3);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], &[0, 1, 2]);
        assert_eq!(parts[1], &[6, 7, 8, 9, 10, 11]);
    }

    #[test]
    fn chunks_cover_every_element_once_on_several_threads() {
        let n = 3 * PARALLEL_ELEMENTWISE_MIN + 17;
        let mut out = vec![0.0f32; n];
        let seen = std::sync::Mutex::new(Vec::new());
        pool(3).install(|| {
            for_each_chunk_mut(&mut out, 5, |start, chunk| {
                seen.lock().unwrap().push((start, chunk.len()));
                for (i, o) in chunk.iter_mut().enumerate() {
                    *o += (start + i) as f32;
                }
            })
        });
        assert!(out.iter().enumerate().all(|(i, &v)| v == i as f32));
        let mut seen = seen.into_inner().unwrap();
        seen.sort();
        assert_eq!(seen.len(), 3, "{seen:?}");
        assert!(seen.iter().all(|&(s, _)| s % 5 == 0));
    }

    #[test]
    fn row_blocks_sum_rows_in_order_whatever_the_split() {
        // Per-row sums of a column-major matrix: identical bits on 1, 2 and 3 threads.
        let (rows, cols) = (3000, 90);
        let m: Vec<f32> = (0..rows * cols)
            .map(|i| ((i * 7919) % 1013) as f32 * 1e-3 - 0.4)
            .collect();
        let run = |threads: usize| {
            let mut data = m.clone();
            let mut out = vec![0.0f64; rows];
            pool(threads).install(|| {
                for_each_row_block(&mut data, rows, &mut out, 20, |r, o, cols| {
                    assert_eq!(r.start % 20, 0);
                    for col in cols {
                        for (acc, v) in o.iter_mut().zip(col.iter_mut()) {
                            *acc += *v as f64;
                            *v *= 2.0;
                        }
                    }
                })
            });
            (out, data)
        };
        let (one, d1) = run(1);
        for threads in [2, 3] {
            let (many, dm) = run(threads);
            assert!(
                one.iter()
                    .zip(&many)
                    .all(|(a, b)| a.to_bits() == b.to_bits())
            );
            assert_eq!(d1, dm);
        }
        let want: f64 = (0..cols).map(|j| m[j * rows + 5] as f64).sum();
        assert!((one[5] - want).abs() < 1e-9);
        assert_eq!(d1[rows + 5], 2.0 * m[rows + 5]);
    }
}

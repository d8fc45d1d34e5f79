//! Helpers shared by the unit tests.

use gumbolt_core::Mat;
use gumbolt_core::rng::{StreamRng, root_rng, uniform_f64};

/// A seeded generator.
pub fn rng(seed: u64) -> StreamRng {
    root_rng(seed)
}

/// `rows × cols` matrix of uniforms on (0, 1): relaxed points ζ.
pub fn relaxed(rows: usize, cols: usize, r: &mut StreamRng) -> Mat {
    Mat::from_fn(rows, cols, |_, _| uniform_f64(r) as f32)
}

/// `rows × cols` matrix of 0/1 entries.
pub fn binary(rows: usize, cols: usize, r: &mut StreamRng) -> Mat {
    Mat::from_fn(
        rows,
        cols,
        |_, _| if uniform_f64(r) < 0.5 { 0.0 } else { 1.0 },
    )
}

/// Uniforms on (lo, hi).
pub fn uniforms(n: usize, lo: f64, hi: f64, r: &mut StreamRng) -> Vec<f64> {
    (0..n).map(|_| lo + (hi - lo) * uniform_f64(r)).collect()
}

/// Row `r` of a matrix as f64.
pub fn row_f64(m: &Mat, r: usize) -> Vec<f64> {
    m.row(r).iter().map(|&v| v as f64).collect()
}

/// `|a − b| ≤ tol` with a readable failure.
#[track_caller]
pub fn assert_close(a: f64, b: f64, tol: f64, what: &str) {
    assert!(
        (a - b).abs() <= tol,
        "{what}: {a} vs {b} (|diff| = {:e} > {tol:e})",
        (a - b).abs()
    );
}

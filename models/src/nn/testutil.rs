//! Helpers of the finite-difference tests.

use gumbolt_core::Mat;
use gumbolt_core::rng::{fill_uniform, root_rng};

/// A `[rows, cols]` matrix of uniforms on (−1, 1) from `seed`.
pub fn rand_mat(rows: usize, cols: usize, seed: u64) -> Mat {
    let mut rng = root_rng(seed);
    let mut v = vec![0.0f32; rows * cols];
    fill_uniform(&mut rng, &mut v);
    Mat::from_vec(rows, cols, v.into_iter().map(|u| 2.0 * u - 1.0).collect())
}

/// Central differences `(f(i, +h) − f(i, −h)) / 2h` for `i in 0..n`, where `f(i, δ)` is the
/// loss (in f64) with scalar `i` moved by `δ`.
pub fn fd_grad(n: usize, h: f32, mut f: impl FnMut(usize, f32) -> f64) -> Vec<f64> {
    (0..n)
        .map(|i| (f(i, h) - f(i, -h)) / (2.0 * h as f64))
        .collect()
}

/// Asserts `|a − b| ≤ atol + rtol·max(|a|, |b|)` elementwise.
///
/// The f32 forward pass rounds every output to ~6e-8 relative, so with h = 1e-2 and losses of
/// order 1 the central difference carries ~1e-5 of rounding noise plus an O(h²) truncation
/// error; the tolerances used in the tests (1e-3) leave a wide margin above both while still
/// catching any wrong term (errors of a missing term are O(1)).
pub fn check_close(analytic: &[f32], fd: &[f64], rtol: f64, atol: f64, what: &str) {
    assert_eq!(analytic.len(), fd.len(), "{what}: lengths");
    for (i, (&a, &f)) in analytic.iter().zip(fd).enumerate() {
        let a = a as f64;
        let err = (a - f).abs();
        let tol = atol + rtol * a.abs().max(f.abs());
        assert!(
            err <= tol,
            "{what}[{i}]: analytic {a} vs finite difference {f} (err {err:.3e}, tol {tol:.3e})"
        );
    }
}

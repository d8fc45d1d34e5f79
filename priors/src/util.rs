//! Small helpers shared by the priors.

use gumbolt_core::Mat;

/// A pair of independent standard normals by the Box–Muller transform of two uniforms on
/// (0, 1) with 53 random bits ([`gumbolt_core::rng::uniform_f64`]).
pub(crate) fn std_normal_pair<R: rand::Rng + ?Sized>(rng: &mut R) -> (f64, f64) {
    let u1 = gumbolt_core::rng::uniform_f64(rng);
    let u2 = gumbolt_core::rng::uniform_f64(rng);
    let r = (-2.0 * u1.ln()).sqrt();
    let (s, c) = (std::f64::consts::TAU * u2).sin_cos();
    (r * c, r * s)
}

/// Resizes `out` to `rows × cols` if it has another shape (its contents are then zeros).
pub(crate) fn ensure_shape(out: &mut Mat, rows: usize, cols: usize) {
    if out.shape() != (rows, cols) {
        *out = Mat::zeros(rows, cols);
    }
}

/// Runs `f` on a scratch buffer of `len` f32 (unspecified contents) reused across calls on this
/// thread: the priors' per-call temporaries of `rows × n` values (megabytes at k = 20) would
/// otherwise be fresh allocations whose pages fault in at every call. The buffer is taken out
/// while in use, so a nested call (e.g. from a rayon job run on this thread while a split
/// product waits) gets a buffer of its own.
pub(crate) fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    thread_local! {
        static SCRATCH: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
    }
    let mut buf = SCRATCH.with(|s| s.take());
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
    let out = f(&mut buf[..len]);
    SCRATCH.with(|s| s.set(buf));
    out
}

/// `Σ_r w_r x_r` in f64.
pub(crate) fn weighted_sum(x: &[f32], w: &[f32]) -> f64 {
    x.iter().zip(w).map(|(&x, &w)| x as f64 * w as f64).sum()
}

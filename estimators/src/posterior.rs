//! The factorial Bernoulli layer of the approximating posterior (GB §2.2, §3.1).

use gumbolt_core::{Mat, Posterior, parallel};

use gumbolt_core::numerics::{sigmoid_approx as sigmoid_f32, softplus_approx as softplus_f32};

/// A factorial Bernoulli layer with logits `l`: `q(z_i = 1) = σ(l_i)` (GB §2.2).
///
/// - `log q(z|l) = Σ_i [z_i·l_i − softplus(l_i)]` (the stable form of
///   `z log σ(l) + (1−z) log(1−σ(l))`, docs/algorithms.md §2.1 step 6).
/// - Evaluated at a *relaxed* ζ ∈ \[0,1\]ⁿ the same expression is GumBolt's Bernoulli "pmf"
///   `log q̌(ζ|x)` that replaces the Concrete density in the objective (GB text after Eq. 8,
///   Eq. 9); it tends to `log q(z|x)` as τ → 0.
/// - The score is `∂ log q(z|l)/∂l = z − σ(l)`; with ζ held fixed this is also the direct
///   logit path of `log q̌` in GumBolt's backward pass (docs/algorithms.md §2.2).
///
/// Elementwise work is f32 with the vectorised kernels of `gumbolt_core::numerics`;
/// the per-row sums are accumulated in f64.
///
/// ```
/// use gumbolt_core::{Mat, Posterior};
/// use gumbolt_estimators::BernoulliPosterior;
/// let l = Mat::from_row_slice(1, 2, &[0.0f32, 2.0]);
/// let z = Mat::from_row_slice(1, 2, &[1.0f32, 0.0]);
/// let mut lp = [0.0f64];
/// BernoulliPosterior.log_prob_into(&l, &z, &mut lp);
/// // log σ(0) + log(1 − σ(2))
/// let want = -(2f64.ln()) - (1.0 + 2f64.exp()).ln();
/// assert!((lp[0] - want).abs() < 1e-6);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BernoulliPosterior;

impl Posterior for BernoulliPosterior {
    /// Adds `Σ_i [z_i·l_i − softplus(l_i)]` of every row to `out` (instead of overwriting it):
    /// the log-probabilities of the layers of a hierarchical posterior add up
    /// (`log q(z1, z2|x) = log q(z1|x) + log q(z2|z1, x)`, GB §5.1).
    ///
    /// # Panics
    /// If `logits` and `z` differ in shape or `out` does not have one entry per row.
    fn accumulate_log_prob(&self, logits: &Mat, z: &Mat, out: &mut [f64]) {
        assert_eq!(
            logits.shape(),
            z.shape(),
            "BernoulliPosterior: logits and samples differ in shape"
        );
        assert_eq!(
            out.len(),
            logits.nrows(),
            "BernoulliPosterior: one output per row"
        );
        let rows = logits.nrows();
        if rows == 0 {
            return;
        }
        let (ls, zs) = (logits.as_slice(), z.as_slice());
        // Row blocks over the calling pool's threads; each row's sum keeps its order.
        parallel::for_each_row_range(out, 1, ls.len(), |r, out| {
            let mut acc = vec![0.0f32; r.len()];
            // Contiguous columns as slices, so the elementwise loop vectorises.
            for (lc, zc) in ls.chunks_exact(rows).zip(zs.chunks_exact(rows)) {
                let (lc, zc) = (&lc[r.clone()], &zc[r.clone()]);
                for ((a, &l), &zv) in acc.iter_mut().zip(lc).zip(zc) {
                    *a = zv * l - softplus_f32(l);
                }
                for (o, &a) in out.iter_mut().zip(&acc) {
                    *o += a as f64;
                }
            }
        });
    }

    /// Writes the score `z − σ(l)` into `out` (reshaped to the shape of `logits`).
    ///
    /// # Panics
    /// If `logits` and `z` differ in shape.
    fn score_into(&self, logits: &Mat, z: &Mat, out: &mut Mat) {
        assert_eq!(
            logits.shape(),
            z.shape(),
            "BernoulliPosterior: logits and samples differ in shape"
        );
        crate::gumbel::ensure_shape(out, logits.nrows(), logits.ncols());
        let (ls, zs) = (logits.as_slice(), z.as_slice());
        parallel::for_each_chunk_mut(out.as_mut_slice(), 1, |start, chunk| {
            for ((o, &l), &zv) in chunk.iter_mut().zip(&ls[start..]).zip(&zs[start..]) {
                *o = zv - sigmoid_f32(l);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gumbolt_core::numerics::{sigmoid, softplus};

    fn mat(rows: usize, cols: usize, f: impl Fn(usize, usize) -> f32) -> Mat {
        Mat::from_fn(rows, cols, f)
    }

    #[test]
    fn log_prob_matches_f64_reference_and_normalises() {
        let l = mat(4, 3, |i, j| (i as f32 - 1.5) * 3.1 + j as f32 * 7.3 - 9.0);
        let z = mat(4, 3, |i, j| ((i + 2 * j) % 3) as f32 * 0.45); // relaxed values in [0,1]
        let mut out = vec![0.0; 4];
        BernoulliPosterior.log_prob_into(&l, &z, &mut out);
        for r in 0..4 {
            let want: f64 = (0..3)
                .map(|c| {
                    let (lv, zv) = (l[(r, c)] as f64, z[(r, c)] as f64);
                    zv * lv - softplus(lv)
                })
                .sum();
            assert!((out[r] - want).abs() < 1e-5 * (1.0 + want.abs()), "row {r}");
        }
        // At binary z the probabilities of all 2^n configurations sum to one.
        let l = mat(1, 3, |_, j| [0.3f32, -2.0, 5.0][j]);
        let mut total = 0.0;
        for bits in 0..8usize {
            let z = mat(1, 3, |_, j| ((bits >> j) & 1) as f32);
            let mut lp = [0.0];
            BernoulliPosterior.log_prob_into(&l, &z, &mut lp);
            total += lp[0].exp();
        }
        assert!((total - 1.0).abs() < 1e-6, "{total}");
    }

    #[test]
    fn score_is_the_logit_derivative_of_log_prob() {
        let l = mat(3, 4, |i, j| (i as f32 * 1.7 - j as f32 * 0.9) * 1.3);
        let z = mat(3, 4, |i, j| ((i * 5 + j * 3) % 7) as f32 / 6.0);
        let mut s = Mat::zeros(0, 0);
        BernoulliPosterior.score_into(&l, &z, &mut s);
        for r in 0..3 {
            for c in 0..4 {
                assert!(
                    (s[(r, c)] as f64 - (z[(r, c)] as f64 - sigmoid(l[(r, c)] as f64))).abs()
                        < 1e-6
                );
                // Central difference of the row's log-probability in l_rc.
                let h = 1e-2f32;
                let lp = |d: f32| {
                    let mut lh = l.clone();
                    lh[(r, c)] += d;
                    let mut out = vec![0.0; 3];
                    BernoulliPosterior.log_prob_into(&lh, &z, &mut out);
                    out[r]
                };
                let fd = (lp(h) - lp(-h)) / (2.0 * h as f64);
                assert!(
                    (fd - s[(r, c)] as f64).abs() < 2e-4,
                    "({r},{c}): {fd} vs {}",
                    s[(r, c)]
                );
            }
        }
    }

    #[test]
    fn accumulate_adds_layers_and_extremes_are_finite() {
        let l = mat(2, 2, |i, j| if (i + j) % 2 == 0 { 90.0 } else { -90.0 });
        let z = mat(2, 2, |i, _| i as f32);
        let mut out = vec![1.0, 2.0];
        BernoulliPosterior.accumulate_log_prob(&l, &z, &mut out);
        // Row 0 (l = [90, −90], z = 0): −softplus(90) − softplus(−90) ≈ −90.
        // Row 1 (l = [−90, 90], z = 1): (−90 − 0) + (90 − 90) = −90.
        assert!((out[0] - (1.0 - 90.0)).abs() < 1e-4, "{}", out[0]);
        assert!((out[1] - (2.0 - 90.0)).abs() < 1e-4, "{}", out[1]);
        assert!(out.iter().all(|v| v.is_finite()));
    }
}

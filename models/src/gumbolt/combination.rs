//! How the k relaxed samples of one image make its training objective.
//!
//! A relaxed training pass computes, for every image x and each of its k samples ζ^i, the
//! log-weight `log w_i = log p(x|ζ^i) + β(−E(ζ^i) − log q̌(ζ^i|x)) − β log Z` (GB Eq. 9 with
//! the KL annealing factor β of docs/algorithms.md §2.3). A [`SampleCombination`] turns these k
//! numbers into the image's objective (to be maximised) and its derivatives `∂objective/∂log w_i`;
//! the model back-propagates those derivatives through every log-weight, so a combination is
//! all a new relaxed objective has to define:
//!
//! - [`ImportanceWeighted`]: `log (1/k) Σ_i w_i`, the importance-weighted objective of GB Eq. 9
//!   (the default); its derivatives are the normalised weights `w̃_i = softmax_i(log w)`.
//! - the Gumbel-relaxed ELBO averaged over the k samples, `(1/k) Σ_i log w_i` (derivatives
//!   `1/k`), is defined in `examples/examples/custom_objective.rs` as an example of a
//!   combination written outside the library.
//!
//! ```
//! use gumbolt_models::gumbolt::{ImportanceWeighted, SampleCombination};
//! let mut grad = [0.0; 2];
//! let objective = ImportanceWeighted.combine(&[0.0, 2f64.ln()], &mut grad);
//! assert!((objective - 1.5f64.ln()).abs() < 1e-12); // log((1 + 2) / 2)
//! assert!((grad[0] - 1.0 / 3.0).abs() < 1e-12 && (grad[1] - 2.0 / 3.0).abs() < 1e-12);
//! ```

/// The objective of one image from the log-weights of its k samples (see the module docs).
pub trait SampleCombination: Send + Sync + std::fmt::Debug {
    /// Returns the image's objective and writes `∂objective/∂log w_i` into `grad`
    /// (`grad.len() == log_w.len() == k`).
    fn combine(&self, log_w: &[f64], grad: &mut [f64]) -> f64;
}

/// `log (1/k) Σ_i exp(log w_i)` with the derivatives `softmax_i(log w)` (GB Eqs. 5, 9),
/// computed shifted by the largest log-weight.
#[derive(Debug, Clone, Copy, Default)]
pub struct ImportanceWeighted;

impl SampleCombination for ImportanceWeighted {
    fn combine(&self, log_w: &[f64], grad: &mut [f64]) -> f64 {
        let m = log_w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mut s = 0.0;
        for (w, &l) in grad.iter_mut().zip(log_w) {
            *w = (l - m).exp();
            s += *w;
        }
        for w in grad.iter_mut() {
            *w /= s;
        }
        m + s.ln() - (log_w.len() as f64).ln()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn importance_weighted_gradient_matches_finite_differences() {
        let lw = [-3.0, -1.25, 0.5, -40.0, 2.0];
        let mut g = [0.0; 5];
        let f = ImportanceWeighted.combine(&lw, &mut g);
        let mut scratch = [0.0; 5];
        for i in 0..lw.len() {
            let h = 1e-6;
            let (mut up, mut down) = (lw, lw);
            up[i] += h;
            down[i] -= h;
            let fd = (ImportanceWeighted.combine(&up, &mut scratch)
                - ImportanceWeighted.combine(&down, &mut scratch))
                / (2.0 * h);
            assert!((fd - g[i]).abs() < 1e-8, "i {i}: {fd} vs {}", g[i]);
        }
        // k equal log-weights: the objective is that value, the weights 1/k.
        let f1 = ImportanceWeighted.combine(&[-7.0; 4], &mut g[..4]);
        assert!((f1 + 7.0).abs() < 1e-12 && g[..4].iter().all(|&w| (w - 0.25).abs() < 1e-15));
        assert!(f.is_finite());
    }
}

//! The tanh non-linearity.

use gumbolt_core::numerics::tanh_inplace;
use gumbolt_core::{Mat, parallel};

/// `y = tanh(x)` elementwise (the hidden non-linearity of every network, docs/algorithms.md §9), with
/// backward `dx = dy ⊙ (1 − y²)`. Stateless: the backward pass needs only the output `y`.
///
/// The forward pass uses core's vectorised `tanh_inplace` (polynomial `exp`, absolute error
/// < 1e-6).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tanh;

impl Tanh {
    /// `x ← tanh(x)` in place.
    pub fn forward_inplace(x: &mut Mat) {
        // Element-wise: split over the calling pool's threads (gumbolt_core::parallel).
        parallel::for_each_chunk_mut(x.as_mut_slice(), 1, |_, chunk| tanh_inplace(chunk));
    }

    /// `grad ← grad ⊙ (1 − y²)` in place, where `y` is the forward output.
    ///
    /// # Panics
    /// If the shapes differ.
    pub fn backward_inplace(y: &Mat, grad: &mut Mat) {
        assert_eq!(y.shape(), grad.shape(), "Tanh::backward: shapes");
        let y = y.as_slice();
        parallel::for_each_chunk_mut(grad.as_mut_slice(), 1, |start, chunk| {
            for (g, &v) in chunk.iter_mut().zip(&y[start..]) {
                *g *= 1.0 - v * v;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::testutil::{check_close, fd_grad, rand_mat};

    #[test]
    fn backward_matches_finite_differences() {
        let x = rand_mat(5, 4, 31) * 2.5;
        let c = rand_mat(5, 4, 32);
        let mut y = x.clone();
        Tanh::forward_inplace(&mut y);
        for (a, b) in y.iter().zip(x.iter()) {
            assert!((a - b.tanh()).abs() < 1e-6);
        }
        let mut g = c.clone();
        Tanh::backward_inplace(&y, &mut g);
        let fd = fd_grad(x.len(), 1e-2, |i, h| {
            let mut xp = x.clone();
            xp.as_mut_slice()[i] += h;
            Tanh::forward_inplace(&mut xp);
            xp.iter()
                .zip(c.iter())
                .map(|(&a, &b)| a as f64 * b as f64)
                .sum()
        });
        check_close(g.as_slice(), &fd, 1e-3, 1e-3, "tanh dX");
    }
}

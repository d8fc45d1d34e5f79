//! Hand-written batched networks on nalgebra f32 matrices (docs/algorithms.md §9).
//!
//! Every matrix is column-major with **rows = samples** (`[N, features]`), the layout of
//! `gumbolt_core::Mat`. All matrix products go through `gumbolt_core::linalg` (`matmul_nn`,
//! `matmul_nt`, `gemm_tn`), which always reach `matrixmultiply::sgemm`; nalgebra's `tr_mul` /
//! `gemm_tr` are ~10x slower (nalgebra issue #717; measured in `cargo bench -p gumbolt-core --bench kernels`).
//!
//! | item | role |
//! |---|---|
//! | [`Dense`] | `Y = X W + b`, variance-scaling truncated-normal init |
//! | [`BatchNorm`] | batch normalisation, train / inference [`Mode`], exact backward |
//! | [`Tanh`] | `tanh` and its backward `1 − y²` |
//! | [`Mlp`] | `[Dense(h) → BatchNorm → tanh] × n_hidden → Dense(out)` with reusable buffers |
//! | [`ParamMut`], [`Trainable`] | every trainable tensor as a flat `&mut [f32]` with its gradient |
//! | [`Adam`] | TF1-style Adam (ε-hat form) with coupled weight decay on flagged tensors |
//!
//! Gradients *accumulate*: `backward` adds to the parameter gradients, so call
//! [`Trainable::zero_grad`] once per iteration (or after each optimiser step).

mod adam;
mod batchnorm;
mod dense;
pub mod init;
mod mlp;
mod param;
mod tanh;

pub use adam::{Adam, AdamConfig};
pub use batchnorm::{BatchNorm, BatchNormConfig};
pub use dense::Dense;
pub use mlp::{Mlp, MlpConfig, MlpScratch};
pub use param::{ParamMut, Trainable, weight_decay_loss};
pub use tanh::Tanh;

use gumbolt_core::Mat;

/// Whether batch normalisation uses batch statistics (training) or its moving averages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Mode {
    /// Normalise with the (biased) statistics of the current batch and update the moving
    /// averages.
    Train,
    /// Normalise with the moving averages; nothing is updated, the network is deterministic.
    Inference,
}

/// Reshapes `m` to `rows × cols` if it has another shape, reusing its allocation when the
/// capacity suffices. The contents are unspecified (zeros or old values) after a reshape.
pub fn ensure_shape(m: &mut Mat, rows: usize, cols: usize) {
    if m.shape() != (rows, cols) {
        let old = std::mem::replace(m, Mat::zeros(0, 0));
        let mut v: Vec<f32> = old.data.into();
        v.resize(rows * cols, 0.0);
        *m = Mat::from_vec(rows, cols, v);
    }
}

#[cfg(test)]
pub(crate) mod testutil;

/// `Σ f(x_i)` over eight independent lanes, so that the loop vectorises (a single running sum
/// is one long dependency chain); the order of the additions is fixed, so the result is
/// reproducible. Batch-norm statistics sum in f64, bias gradients in f32.
#[inline]
pub(crate) fn lane_sum<T>(xs: &[f32], f: impl Fn(f32) -> T) -> T
where
    T: Copy + Default + std::ops::AddAssign + std::iter::Sum,
{
    let mut acc = [T::default(); 8];
    let chunks = xs.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += f(x);
        }
    }
    let mut total: T = acc.iter().copied().sum();
    for &x in rest {
        total += f(x);
    }
    total
}

//! Vectorisable elementwise kernels of the GumBolt forward and backward passes.
//!
//! The decoder likelihood touches `N × 784` values per iteration (`N = B·k`); its `softplus`
//! and `σ` are the branch-free kernels of `gumbolt_core::numerics`, applied in flat
//! loops over whole columns so that LLVM vectorises them.

use gumbolt_core::numerics::{
    softplus_approx as softplus_f32, softplus_sigmoid_approx as softplus_sigmoid_f32,
};
use gumbolt_core::{Mat, parallel};

/// The Bernoulli decoder log-likelihood `log p(x|ζ) = Σ_d [x_d·o_d − softplus(o_d)]`
/// (docs/algorithms.md §2.1 step 4) for every row `r` of `out` (`[N, D]`, the decoder's last dense
/// layer), with `o = out + x_bias` and target image `x[r / k]` (`x: [B, D]`, `N = B·k`, rows of
/// one image consecutive). Written into `lp` (length N).
///
/// With `grad = Some(dout)` also writes `dout[r, d] = x_d − σ(o_rd)`, the gradient of
/// `log p(x|ζ_r)` with respect to `out[r, d]` (computed here from the same `exp` as the
/// softplus; the backward pass scales its rows).
pub(crate) fn bernoulli_log_lik(
    out: &Mat,
    x: &Mat,
    x_bias: &[f32],
    k: usize,
    lp: &mut [f64],
    grad: Option<&mut Mat>,
) {
    let (n, d) = out.shape();
    assert_eq!(x.nrows() * k, n, "bernoulli_log_lik: rows");
    assert_eq!(x.ncols(), d, "bernoulli_log_lik: width");
    assert_eq!(x_bias.len(), d, "bernoulli_log_lik: bias width");
    assert_eq!(lp.len(), n, "bernoulli_log_lik: output length");
    let mut grad = grad;
    if let Some(dout) = grad.as_deref_mut() {
        crate::nn::ensure_shape(dout, n, d);
    }
    let b = x.nrows();
    let (out_s, x_s) = (out.as_slice(), x.as_slice());
    // Rows of whole images, split over the pool's threads (each row's sum keeps its order).
    let rows_of = |r: std::ops::Range<usize>, lp: &mut [f64], mut dcols: Vec<&mut [f32]>| {
        let rows = r.len();
        let mut term = vec![0.0f32; rows];
        let mut xrep = vec![0.0f32; rows];
        lp.fill(0.0);
        for (j, &xb) in x_bias.iter().enumerate() {
            let oc = &out_s[j * n + r.start..j * n + r.end];
            // The target pixel of every row (image r / k), so the inner loops are flat.
            let xc = &x_s[j * b + r.start / k..j * b + r.end / k];
            if k == 1 {
                xrep.copy_from_slice(xc);
            } else {
                for (chunk, &v) in xrep.chunks_exact_mut(k).zip(xc) {
                    chunk.fill(v);
                }
            }
            match dcols.get_mut(j) {
                None => log_lik_column(oc, &xrep, xb, &mut term),
                Some(dc) => log_lik_grad_column(oc, &xrep, xb, &mut term, dc),
            }
            for (l, &t) in lp.iter_mut().zip(&term) {
                *l += t as f64;
            }
        }
    };
    match grad {
        None => parallel::for_each_row_range(lp, k, n * d, |r, lp| rows_of(r, lp, Vec::new())),
        Some(dout) => {
            parallel::for_each_row_block(dout.as_mut_slice(), n, lp, k, |r, lp, dcols| {
                rows_of(r, lp, dcols)
            })
        }
    }
}

gumbolt_core::multiversion! {
/// One pixel column of [`bernoulli_log_lik`]: `term = x·o − softplus(o)`, `o = out + x_bias`
/// (compiled for AVX-512 / AVX2 and picked at run time, like the core kernels).
fn log_lik_column(oc: &[f32], xrep: &[f32], xb: f32, term: &mut [f32]) {
    for ((t, &ov), &xv) in term.iter_mut().zip(oc).zip(xrep) {
        let o = ov + xb;
        *t = xv * o - softplus_f32(o);
    }
}
}

gumbolt_core::multiversion! {
/// As [`log_lik_column`], also writing `dc = x − σ(o)` (from the same `exp`).
fn log_lik_grad_column(oc: &[f32], xrep: &[f32], xb: f32, term: &mut [f32], dc: &mut [f32]) {
    for (((t, &ov), &xv), dv) in term.iter_mut().zip(oc).zip(xrep).zip(dc.iter_mut()) {
        let o = ov + xb;
        let (sp, sig) = softplus_sigmoid_f32(o);
        *t = xv * o - sp;
        *dv = xv - sig;
    }
}
}

/// Repeats every row of `src` (`[B, c]`) `k` times consecutively into `dst` (`[B·k, c]`):
/// row `b·k + i` of `dst` is row `b` of `src` (docs/algorithms.md §0; the reference implementation's `util.py`, `repeat_input_iw`).
pub(crate) fn repeat_rows(src: &Mat, k: usize, dst: &mut Mat) {
    let (b, c) = src.shape();
    crate::nn::ensure_shape(dst, b * k, c);
    if k == 1 {
        dst.copy_from(src);
        return;
    }
    for j in 0..c {
        let s = src.column(j);
        let mut dcol = dst.column_mut(j);
        for (chunk, &v) in dcol.as_mut_slice().chunks_exact_mut(k).zip(s.iter()) {
            chunk.fill(v);
        }
    }
}

/// Sums every group of `k` consecutive rows of `src` (`[B·k, c]`) into `dst` (`[B, c]`): the
/// adjoint of [`repeat_rows`].
pub(crate) fn sum_row_groups(src: &Mat, k: usize, dst: &mut Mat) {
    let (n, c) = src.shape();
    let b = n / k;
    crate::nn::ensure_shape(dst, b, c);
    if k == 1 {
        dst.copy_from(src);
        return;
    }
    for j in 0..c {
        let s = src.column(j);
        let s = s.as_slice();
        let mut dcol = dst.column_mut(j);
        for (bi, d) in dcol.iter_mut().enumerate() {
            *d = s[bi * k..(bi + 1) * k].iter().sum();
        }
    }
}

/// `Σ θ²` in f64 with eight independent lanes (vectorised; `weight_decay_loss` of
/// [`crate::nn`] sums one value at a time and would cost a few hundred µs per iteration).
pub(crate) fn sum_squares(v: &[f32]) -> f64 {
    let mut acc = [0.0f64; 8];
    let chunks = v.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            let x = x as f64;
            *a += x * x;
        }
    }
    acc.iter().sum::<f64>() + rest.iter().map(|&x| (x as f64) * (x as f64)).sum::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use gumbolt_core::numerics as nm;

    #[test]
    fn decoder_likelihood_and_gradient() {
        let x = Mat::from_fn(2, 3, |i, j| ((i + j) % 2) as f32);
        let out = Mat::from_fn(6, 3, |i, j| (i as f32 - 2.5) * 1.3 + j as f32 * 0.4);
        let xb = [0.1f32, -0.2, 0.3];
        let mut lp = vec![0.0; 6];
        let mut dout = Mat::zeros(0, 0);
        bernoulli_log_lik(&out, &x, &xb, 3, &mut lp, Some(&mut dout));
        let mut lp2 = vec![0.0; 6];
        bernoulli_log_lik(&out, &x, &xb, 3, &mut lp2, None);
        assert_eq!(lp, lp2);
        for r in 0..6 {
            let mut want = 0.0;
            for d in 0..3 {
                let o = (out[(r, d)] + xb[d]) as f64;
                let xv = x[(r / 3, d)] as f64;
                want += xv * o - nm::softplus(o);
                let gw = xv - nm::sigmoid(o);
                assert!((dout[(r, d)] as f64 - gw).abs() < 1e-6);
            }
            assert!((lp[r] - want).abs() < 1e-5, "row {r}: {} vs {want}", lp[r]);
        }
        // repeat / sum are adjoint.
        let m = Mat::from_fn(2, 3, |i, j| (i * 3 + j) as f32);
        let mut rep = Mat::zeros(0, 0);
        repeat_rows(&m, 3, &mut rep);
        assert_eq!(rep.row(4), m.row(1));
        let mut back = Mat::zeros(0, 0);
        sum_row_groups(&rep, 3, &mut back);
        assert_eq!(back, &m * 3.0);
        let v: Vec<f32> = (0..21).map(|i| i as f32 * 0.5 - 3.0).collect();
        let want: f64 = v.iter().map(|&x| (x as f64).powi(2)).sum();
        assert!((sum_squares(&v) - want).abs() < 1e-12);
    }
}

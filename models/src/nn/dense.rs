//! The fully connected layer `Y = X W + b`.

use gumbolt_core::linalg::{add_row_vector, gemm_tn, matmul_nn, matmul_nt};
use gumbolt_core::{CoreError, Mat};
use nalgebra::{Dyn, Matrix, RawStorage};
use rand::Rng;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ensure_shape;
use super::init::fill_variance_scaling;
use super::param::{ParamMut, Trainable};

/// A dense layer with kernel `W: [in, out]` and bias `b: [out]`, applied to a batch
/// `X: [N, in]` as `Y = X W + b` (rows = samples).
///
/// Initialisation (docs/algorithms.md §9): kernel from the variance-scaling truncated normal
/// (`std = √(1.3·2/fan_in)`, [`super::init`]), bias 0. The kernel is weight-decayed, the
/// bias is not (docs/algorithms.md §10.2).
///
/// Serialisation stores the kernel and bias only; gradients restart at zero.
#[derive(Debug, Clone, PartialEq)]
pub struct Dense {
    w: Mat,
    b: Vec<f32>,
    dw: Mat,
    db: Vec<f32>,
}

impl Dense {
    /// A freshly initialised `n_in → n_out` layer.
    ///
    /// # Errors
    /// [`CoreError::InvalidConfig`] if a size is 0.
    pub fn new<R: Rng + ?Sized>(n_in: usize, n_out: usize, rng: &mut R) -> Result<Self, CoreError> {
        if n_in == 0 || n_out == 0 {
            return Err(CoreError::InvalidConfig {
                name: "dense size",
                reason: format!("sizes must be positive, got {n_in} -> {n_out}"),
            });
        }
        let mut w = Mat::zeros(n_in, n_out);
        fill_variance_scaling(rng, n_in, w.as_mut_slice());
        Self::from_params(w, vec![0.0; n_out])
    }

    /// A layer with the given kernel `[in, out]` and bias `[out]`.
    ///
    /// # Errors
    /// [`CoreError::Shape`] if `b.len() != w.ncols()`.
    pub fn from_params(w: Mat, b: Vec<f32>) -> Result<Self, CoreError> {
        if b.len() != w.ncols() {
            return Err(CoreError::Shape {
                context: "Dense::from_params",
                expected: format!("bias of length {}", w.ncols()),
                got: format!("{}", b.len()),
            });
        }
        let (r, c) = w.shape();
        Ok(Self {
            dw: Mat::zeros(r, c),
            db: vec![0.0; c],
            w,
            b,
        })
    }

    /// Input width.
    pub fn n_in(&self) -> usize {
        self.w.nrows()
    }

    /// Output width.
    pub fn n_out(&self) -> usize {
        self.w.ncols()
    }

    /// The kernel `W: [in, out]`.
    pub fn weights(&self) -> &Mat {
        &self.w
    }

    /// Mutable kernel.
    pub fn weights_mut(&mut self) -> &mut Mat {
        &mut self.w
    }

    /// The bias `b: [out]`.
    pub fn bias(&self) -> &[f32] {
        &self.b
    }

    /// Mutable bias.
    pub fn bias_mut(&mut self) -> &mut [f32] {
        &mut self.b
    }

    /// The accumulated `∂loss/∂W`.
    pub fn grad_weights(&self) -> &Mat {
        &self.dw
    }

    /// The accumulated `∂loss/∂b`.
    pub fn grad_bias(&self) -> &[f32] {
        &self.db
    }

    /// `y ← x W + b`; `y` is reshaped to `[N, out]` if needed (reusing its allocation).
    ///
    /// # Panics
    /// If `x` does not have `in` columns.
    pub fn forward<S: RawStorage<f32, Dyn, Dyn>>(&self, x: &Matrix<f32, Dyn, Dyn, S>, y: &mut Mat) {
        assert_eq!(x.ncols(), self.n_in(), "Dense::forward: input width");
        ensure_shape(y, x.nrows(), self.n_out());
        matmul_nn(x, &self.w, y);
        add_row_vector(y, &self.b);
    }

    /// Accumulates the parameter gradients for the input `x` of the forward pass and
    /// `dy = ∂loss/∂y`: `dW += xᵀ dy` (through `gemm_tn`), `db += Σ_rows dy`.
    ///
    /// # Panics
    /// On inconsistent shapes.
    pub fn backward_params<S: RawStorage<f32, Dyn, Dyn>>(
        &mut self,
        x: &Matrix<f32, Dyn, Dyn, S>,
        dy: &Mat,
    ) {
        assert_eq!(
            dy.shape(),
            (x.nrows(), self.n_out()),
            "Dense::backward: dy shape"
        );
        gemm_tn(1.0, x, dy, 1.0, &mut self.dw);
        add_column_sums(dy, &mut self.db);
    }

    /// `y ← [repeat_k(shared), rest] W + b` without materialising the repeated rows: the input
    /// of row `r` is `[shared[r / k], rest[r]]` (`shared: [B, s]`, `rest: [B·k, in − s]`).
    /// The shared part's product `shared · W[..s]` is computed once per distinct row (into
    /// `tmp`, `[B, out]`) — for the second encoder's `[x − x̄, ζ1]` with k samples that is
    /// 1/k of the data part's work (docs/algorithms.md §2.1, §10.10).
    ///
    /// # Panics
    /// On inconsistent shapes.
    pub fn forward_shared(&self, shared: &Mat, k: usize, rest: &Mat, tmp: &mut Mat, y: &mut Mat) {
        let s = shared.ncols();
        assert_eq!(
            s + rest.ncols(),
            self.n_in(),
            "Dense::forward_shared: widths"
        );
        assert_eq!(
            shared.nrows() * k,
            rest.nrows(),
            "Dense::forward_shared: rows"
        );
        let out = self.n_out();
        ensure_shape(tmp, shared.nrows(), out);
        matmul_nn(shared, &self.w.rows(0, s), tmp);
        ensure_shape(y, rest.nrows(), out);
        matmul_nn(rest, &self.w.rows(s, rest.ncols()), y);
        for j in 0..out {
            let bj = self.b[j];
            let t = tmp.column(j);
            let mut ycol = y.column_mut(j);
            for (chunk, &tv) in ycol.as_mut_slice().chunks_exact_mut(k).zip(t.iter()) {
                let add = tv + bj;
                for v in chunk {
                    *v += add;
                }
            }
        }
    }

    /// The parameter gradients of [`Dense::forward_shared`]: `dW[..s] += sharedᵀ Σ_k dy`
    /// (the k rows of each group summed into `tmp` first), `dW[s..] += restᵀ dy`,
    /// `db += Σ_rows dy`.
    ///
    /// # Panics
    /// On inconsistent shapes.
    pub fn backward_params_shared(
        &mut self,
        shared: &Mat,
        k: usize,
        rest: &Mat,
        dy: &Mat,
        tmp: &mut Mat,
    ) {
        let (s, b) = (shared.ncols(), shared.nrows());
        let out = self.n_out();
        assert_eq!(dy.shape(), (b * k, out), "Dense::backward_shared: dy shape");
        assert_eq!(rest.nrows(), b * k, "Dense::backward_shared: rows");
        ensure_shape(tmp, b, out);
        for j in 0..out {
            let src = dy.column(j);
            let src = src.as_slice();
            let mut dcol = tmp.column_mut(j);
            for (bi, d) in dcol.iter_mut().enumerate() {
                *d = src[bi * k..(bi + 1) * k].iter().sum();
            }
        }
        gemm_tn(1.0, shared, &*tmp, 1.0, &mut self.dw.rows_mut(0, s));
        gemm_tn(1.0, rest, dy, 1.0, &mut self.dw.rows_mut(s, rest.ncols()));
        add_column_sums(dy, &mut self.db);
    }

    /// `dx ← dy Wᵀ` (through `matmul_nt`), reshaping `dx` to `[N, in]` if needed.
    pub fn input_grad(&self, dy: &Mat, dx: &mut Mat) {
        self.input_grad_cols(dy, 0, self.n_in(), dx);
    }

    /// The gradient for input columns `start .. start + len` only:
    /// `dx ← dy · W[start..start+len, :]ᵀ`, `dx: [N, len]`. Saves the work for input columns
    /// that need no gradient (e.g. the data part of `[x − x̄, ζ1]`, docs/algorithms.md §2.1).
    ///
    /// # Panics
    /// If the column range exceeds the input width or `dy` has the wrong width.
    pub fn input_grad_cols(&self, dy: &Mat, start: usize, len: usize, dx: &mut Mat) {
        assert_eq!(dy.ncols(), self.n_out(), "Dense::input_grad: dy width");
        assert!(
            start + len <= self.n_in(),
            "Dense::input_grad: column range"
        );
        ensure_shape(dx, dy.nrows(), len);
        matmul_nt(dy, &self.w.rows(start, len), dx);
    }

    /// [`Dense::backward_params`], then the input gradient into `dx` if asked for.
    pub fn backward<S: RawStorage<f32, Dyn, Dyn>>(
        &mut self,
        x: &Matrix<f32, Dyn, Dyn, S>,
        dy: &Mat,
        dx: Option<&mut Mat>,
    ) {
        self.backward_params(x, dy);
        if let Some(dx) = dx {
            self.input_grad(dy, dx);
        }
    }

    /// Number of trainable scalars.
    pub fn num_params(&self) -> usize {
        self.w.len() + self.b.len()
    }
}

impl Trainable for Dense {
    fn collect_params<'a>(&'a mut self, out: &mut Vec<ParamMut<'a>>) {
        out.push(ParamMut::new(
            "kernel",
            self.w.as_mut_slice(),
            self.dw.as_mut_slice(),
            true,
        ));
        out.push(ParamMut::new("bias", &mut self.b, &mut self.db, false));
    }
}

#[derive(Serialize)]
struct DenseRef<'a> {
    w: &'a Mat,
    b: &'a [f32],
}

#[derive(Deserialize)]
struct DenseOwned {
    w: Mat,
    b: Vec<f32>,
}

impl Serialize for Dense {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        DenseRef {
            w: &self.w,
            b: &self.b,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Dense {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let o = DenseOwned::deserialize(d)?;
        Dense::from_params(o.w, o.b).map_err(serde::de::Error::custom)
    }
}

/// `out[j] += Σ_rows m[·, j]` (the bias gradient), each column in eight lanes
/// ([`super::lane_sum`]) instead of one long chain of dependent additions.
fn add_column_sums(m: &Mat, out: &mut [f32]) {
    let rows = m.nrows();
    if rows == 0 {
        return;
    }
    let data = m.as_slice();
    // One independent sum per column: whole columns split over the calling pool's threads.
    gumbolt_core::parallel::for_each_chunk_mut_with_work(out, 1, data.len(), |start, outs| {
        for (col, o) in data[start * rows..].chunks_exact(rows).zip(outs.iter_mut()) {
            *o += super::lane_sum(col, |v| v);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::testutil::{check_close, fd_grad, rand_mat};

    fn loss(y: &Mat, c: &Mat) -> f64 {
        y.iter()
            .zip(c.iter())
            .map(|(&a, &b)| a as f64 * b as f64)
            .sum()
    }

    #[test]
    fn forward_matches_naive() {
        let mut rng = gumbolt_core::rng::root_rng(1);
        let mut d = Dense::new(5, 3, &mut rng).unwrap();
        d.bias_mut().copy_from_slice(&[0.5, -1.0, 2.0]);
        let x = rand_mat(4, 5, 2);
        let mut y = Mat::zeros(0, 0);
        d.forward(&x, &mut y);
        let want = &x * d.weights() + Mat::from_fn(4, 3, |_, j| d.bias()[j]);
        assert!((&y - want).abs().max() < 1e-6);
        // Also through a (strided) view of a wider matrix.
        let big = rand_mat(4, 9, 3);
        let v = big.columns(2, 5);
        d.forward(&v, &mut y);
        let want = v * d.weights() + Mat::from_fn(4, 3, |_, j| d.bias()[j]);
        assert!((&y - want).abs().max() < 1e-6);
    }

    #[test]
    fn backward_matches_finite_differences() {
        let mut rng = gumbolt_core::rng::root_rng(4);
        let mut d = Dense::new(5, 3, &mut rng).unwrap();
        d.bias_mut().copy_from_slice(&[0.1, -0.2, 0.3]);
        let x = rand_mat(6, 5, 5);
        let c = rand_mat(6, 3, 6);
        let mut y = Mat::zeros(0, 0);
        d.forward(&x, &mut y);
        let mut dx = Mat::zeros(0, 0);
        d.backward(&x, &c, Some(&mut dx)); // ∂(Σ c⊙y)/∂y = c
        // Parameters.
        let base = d.clone();
        for k in 0..2 {
            let analytic: Vec<f32> = if k == 0 {
                d.grad_weights().as_slice().to_vec()
            } else {
                d.grad_bias().to_vec()
            };
            let fd = fd_grad(analytic.len(), 1e-2, |i, h| {
                let mut p = base.clone();
                p.params_mut()[k].value[i] += h;
                let mut y = Mat::zeros(0, 0);
                p.forward(&x, &mut y);
                loss(&y, &c)
            });
            check_close(&analytic, &fd, 1e-3, 1e-3, if k == 0 { "dW" } else { "db" });
        }
        // Input.
        let fd = fd_grad(x.len(), 1e-2, |i, h| {
            let mut xp = x.clone();
            xp.as_mut_slice()[i] += h;
            let mut y = Mat::zeros(0, 0);
            base.forward(&xp, &mut y);
            loss(&y, &c)
        });
        check_close(dx.as_slice(), &fd, 1e-3, 1e-3, "dX");
        // Partial input gradient = the matching columns of the full one.
        let mut part = Mat::zeros(0, 0);
        d.input_grad_cols(&c, 1, 3, &mut part);
        assert_eq!(part, dx.columns(1, 3).into_owned());
    }

    #[test]
    fn gradients_accumulate_and_serde_roundtrips() {
        let mut rng = gumbolt_core::rng::root_rng(8);
        let mut d = Dense::new(3, 2, &mut rng).unwrap();
        let x = rand_mat(4, 3, 9);
        let dy = rand_mat(4, 2, 10);
        d.backward_params(&x, &dy);
        let once = d.grad_weights().clone();
        d.backward_params(&x, &dy);
        assert!((d.grad_weights() - &once * 2.0).abs().max() < 1e-6);
        d.zero_grad();
        assert!(d.grad_weights().iter().all(|&g| g == 0.0));
        let json = serde_json::to_string(&d).unwrap();
        let back: Dense = serde_json::from_str(&json).unwrap();
        assert_eq!(back, d);
        assert!(Dense::from_params(Mat::zeros(2, 3), vec![0.0; 2]).is_err());
        assert!(Dense::new(0, 3, &mut rng).is_err());
        let mut v = serde_json::to_value(&d).unwrap();
        v["b"] = serde_json::json!([0.0]);
        let e = serde_json::from_value::<Dense>(v).unwrap_err();
        assert!(e.to_string().contains("bias of length 2"), "{e}");
    }
}

//! Batch normalisation over the rows of a batch.

use gumbolt_core::{CoreError, Mat, parallel};
use nalgebra::{Dyn, Matrix, RawStorage};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::param::{ParamMut, Trainable};
use super::{Mode, ensure_shape};

/// Hyper-parameters of [`BatchNorm`]; the defaults are the reference's
/// (`tf.layers.batch_normalization(momentum=0.8, epsilon=1e-2)`, docs/algorithms.md §9).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BatchNormConfig {
    /// ε added to the variance, default `1e-2`.
    pub eps: f32,
    /// Momentum of the moving averages, `m ← momentum·m + (1 − momentum)·batch`; default 0.8.
    pub momentum: f32,
}

impl Default for BatchNormConfig {
    fn default() -> Self {
        Self {
            eps: 1e-2,
            momentum: 0.8,
        }
    }
}

impl BatchNormConfig {
    /// Checks `eps > 0` and `momentum ∈ [0, 1]`.
    ///
    /// # Errors
    /// [`CoreError::InvalidConfig`] naming the offending field.
    pub fn validate(&self) -> Result<(), CoreError> {
        if !(self.eps > 0.0 && self.eps.is_finite()) {
            return Err(CoreError::InvalidConfig {
                name: "batch_norm.eps",
                reason: format!("must be positive and finite, got {}", self.eps),
            });
        }
        if !(0.0..=1.0).contains(&self.momentum) {
            return Err(CoreError::InvalidConfig {
                name: "batch_norm.momentum",
                reason: format!("must lie in [0, 1], got {}", self.momentum),
            });
        }
        Ok(())
    }
}

/// Batch normalisation of each column (feature) of a `[N, d]` batch:
/// `y = γ ⊙ (x − μ)/√(σ² + ε) + β`.
///
/// - [`Mode::Train`]: μ and σ² are the batch mean and the **biased** batch variance (divisor N),
///   and the moving averages are updated, `m ← 0.8·m + 0.2·μ`, `v ← 0.8·v + 0.2·σ²`
///   (docs/algorithms.md §9).
/// - [`Mode::Inference`]: μ and σ² are the moving averages (initially 0 and 1).
///
/// γ starts at 1 (weight-decayed, docs/algorithms.md §10.2) and β at 0. The backward pass is exact for
/// the mode of the last forward pass; in training mode it includes the coupling of all rows
/// through the batch statistics:
/// `dx = γ/√(σ²+ε) · (dy − mean(dy) − x̂ ⊙ mean(dy ⊙ x̂))` per column.
///
/// Serialisation stores γ, β, the moving averages and the configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchNorm {
    config: BatchNormConfig,
    gamma: Vec<f32>,
    beta: Vec<f32>,
    moving_mean: Vec<f32>,
    moving_var: Vec<f32>,
    dgamma: Vec<f32>,
    dbeta: Vec<f32>,
    // Cache of the last forward pass.
    xhat: Mat,
    inv_std: Vec<f32>,
    last_mode: Option<Mode>,
}

impl BatchNorm {
    /// Batch norm over `dim` features with γ = 1, β = 0, moving mean 0 and moving variance 1.
    ///
    /// # Errors
    /// [`CoreError::InvalidConfig`] for an invalid configuration or `dim == 0`.
    pub fn new(dim: usize, config: BatchNormConfig) -> Result<Self, CoreError> {
        config.validate()?;
        if dim == 0 {
            return Err(CoreError::InvalidConfig {
                name: "batch_norm dim",
                reason: "must be positive".into(),
            });
        }
        Ok(Self {
            config,
            gamma: vec![1.0; dim],
            beta: vec![0.0; dim],
            moving_mean: vec![0.0; dim],
            moving_var: vec![1.0; dim],
            dgamma: vec![0.0; dim],
            dbeta: vec![0.0; dim],
            xhat: Mat::zeros(0, 0),
            inv_std: vec![0.0; dim],
            last_mode: None,
        })
    }

    /// Number of features.
    pub fn dim(&self) -> usize {
        self.gamma.len()
    }

    /// The configuration.
    pub fn config(&self) -> &BatchNormConfig {
        &self.config
    }

    /// Scale γ.
    pub fn gamma(&self) -> &[f32] {
        &self.gamma
    }

    /// Mutable γ.
    pub fn gamma_mut(&mut self) -> &mut [f32] {
        &mut self.gamma
    }

    /// Shift β.
    pub fn beta(&self) -> &[f32] {
        &self.beta
    }

    /// Mutable β.
    pub fn beta_mut(&mut self) -> &mut [f32] {
        &mut self.beta
    }

    /// Moving average of the batch means.
    pub fn moving_mean(&self) -> &[f32] {
        &self.moving_mean
    }

    /// Moving average of the (biased) batch variances.
    pub fn moving_var(&self) -> &[f32] {
        &self.moving_var
    }

    /// Mutable moving averages `(mean, variance)` (e.g. to restore them from a checkpoint).
    pub fn moving_stats_mut(&mut self) -> (&mut [f32], &mut [f32]) {
        (&mut self.moving_mean, &mut self.moving_var)
    }

    /// The accumulated `∂loss/∂γ`.
    pub fn grad_gamma(&self) -> &[f32] {
        &self.dgamma
    }

    /// The accumulated `∂loss/∂β`.
    pub fn grad_beta(&self) -> &[f32] {
        &self.dbeta
    }

    /// `y ← BN(x)` in [`Mode::Inference`] without touching the layer (no cache for a backward
    /// pass): the same values as [`BatchNorm::forward`] in inference mode, from `&self`, so
    /// that several threads can run one network (docs/algorithms.md §2.4).
    ///
    /// # Panics
    /// If `x` does not have `d` columns.
    pub fn infer_into(&self, x: &Mat, y: &mut Mat) {
        let (n, d) = x.shape();
        assert_eq!(d, self.dim(), "BatchNorm::infer_into: input width");
        ensure_shape(y, n, d);
        if n == 0 {
            return;
        }
        let eps = self.config.eps as f64;
        for (j, (yc, xc)) in y
            .as_mut_slice()
            .chunks_exact_mut(n)
            .zip(x.as_slice().chunks_exact(n))
            .enumerate()
        {
            let mean = self.moving_mean[j];
            let inv_std = (1.0 / (self.moving_var[j] as f64 + eps).sqrt()) as f32;
            let (g, b) = (self.gamma[j], self.beta[j]);
            for (yv, &xv) in yc.iter_mut().zip(xc) {
                let h = (xv - mean) * inv_std;
                *yv = g * h + b;
            }
        }
    }

    /// `y ← BN(x)` in `mode`; `y` is reshaped to `[N, d]` if needed. Caches `x̂` and `1/√(σ²+ε)`
    /// for the backward pass; in [`Mode::Train`] also updates the moving averages.
    ///
    /// # Panics
    /// If `x` does not have `d` columns, or has no row in training mode.
    pub fn forward<S: RawStorage<f32, Dyn, Dyn>>(
        &mut self,
        x: &Matrix<f32, Dyn, Dyn, S>,
        y: &mut Mat,
        mode: Mode,
    ) {
        let (n, d) = x.shape();
        assert_eq!(d, self.dim(), "BatchNorm::forward: input width");
        assert!(
            n > 0 || mode == Mode::Inference,
            "BatchNorm::forward: empty training batch"
        );
        ensure_shape(y, n, d);
        ensure_shape(&mut self.xhat, n, d);
        let eps = self.config.eps as f64;
        let mom = self.config.momentum;
        let (rs, cs) = x.strides();
        for j in 0..d {
            // The input column is copied into the (contiguous) output column first, so the
            // statistics run over a slice with vectorised lane sums.
            let yc = &mut y.as_mut_slice()[j * n..(j + 1) * n];
            if rs == 1 && n > 0 {
                // SAFETY: with unit row stride, column j of x is the n contiguous values
                // starting at offset j·cs of its storage.
                let xc = unsafe { std::slice::from_raw_parts(x.data.ptr().add(j * cs), n) };
                yc.copy_from_slice(xc);
            } else {
                for (i, yv) in yc.iter_mut().enumerate() {
                    *yv = x[(i, j)];
                }
            }
        }
        // Every column is normalised on its own: whole columns split over the calling pool's
        // threads (gumbolt_core::parallel; the result does not depend on the split).
        let cols = parallel::ranges(d, 1, parallel::parts_for(n * d));
        let parts = parallel::split_mut(y.as_mut_slice(), &cols, n)
            .into_iter()
            .zip(parallel::split_mut(self.xhat.as_mut_slice(), &cols, n))
            .zip(parallel::split_mut(&mut self.moving_mean, &cols, 1))
            .zip(parallel::split_mut(&mut self.moving_var, &cols, 1))
            .zip(parallel::split_mut(&mut self.inv_std, &cols, 1))
            .zip(cols.iter().cloned())
            .collect::<Vec<_>>();
        let (gamma, beta) = (&self.gamma, &self.beta);
        parallel::for_each_part(parts, &|(((((ys, xhs), mms), mvs), iss), r)| {
            for (c, j) in r.enumerate() {
                let yc = &mut ys[c * n..(c + 1) * n];
                let (mean, inv_std) = match mode {
                    Mode::Train => {
                        let col = &*yc;
                        let mean = super::lane_sum(col, |v| v as f64) / n as f64;
                        let var = super::lane_sum(col, |v| (v as f64 - mean) * (v as f64 - mean))
                            / n as f64;
                        mms[c] = mom * mms[c] + (1.0 - mom) * mean as f32;
                        mvs[c] = mom * mvs[c] + (1.0 - mom) * var as f32;
                        (mean as f32, (1.0 / (var + eps).sqrt()) as f32)
                    }
                    Mode::Inference => (mms[c], (1.0 / (mvs[c] as f64 + eps).sqrt()) as f32),
                };
                iss[c] = inv_std;
                let (g, b) = (gamma[j], beta[j]);
                let xh = &mut xhs[c * n..(c + 1) * n];
                for (xh, yv) in xh.iter_mut().zip(yc.iter_mut()) {
                    let h = (*yv - mean) * inv_std;
                    *xh = h;
                    *yv = g * h + b;
                }
            }
        });
        self.last_mode = Some(mode);
    }

    /// Backward pass in place: `grad` holds `∂loss/∂y` on entry and `∂loss/∂x` on exit;
    /// `∂loss/∂γ += Σ_rows dy ⊙ x̂` and `∂loss/∂β += Σ_rows dy` are accumulated.
    ///
    /// # Panics
    /// If no forward pass was run or `grad` does not have the shape of its output.
    pub fn backward_inplace(&mut self, grad: &mut Mat) {
        let mode = self.last_mode.expect("BatchNorm::backward before forward");
        assert_eq!(
            grad.shape(),
            self.xhat.shape(),
            "BatchNorm::backward: gradient shape"
        );
        let n = grad.nrows();
        let inv_n = 1.0 / n.max(1) as f32;
        if n == 0 {
            return;
        }
        let (xhat, gamma, inv_std) = (self.xhat.as_slice(), &self.gamma, &self.inv_std);
        // Columns are independent: split over the calling pool's threads.
        let d = self.gamma.len();
        let cols = parallel::ranges(d, 1, parallel::parts_for(n * d));
        let parts = parallel::split_mut(grad.as_mut_slice(), &cols, n)
            .into_iter()
            .zip(parallel::split_mut(&mut self.dbeta, &cols, 1))
            .zip(parallel::split_mut(&mut self.dgamma, &cols, 1))
            .zip(cols.iter().cloned())
            .collect::<Vec<_>>();
        parallel::for_each_part(parts, &|(((gs, dbs), dgs), r)| {
            for ((g, j), (db, dg)) in gs
                .chunks_exact_mut(n)
                .zip(r)
                .zip(dbs.iter_mut().zip(dgs.iter_mut()))
            {
                let xh = &xhat[j * n..(j + 1) * n];
                let (s1, s2) = lane_dot_sums(g, xh);
                *db += s1;
                *dg += s2;
                let scale = gamma[j] * inv_std[j];
                match mode {
                    Mode::Train => {
                        let (m1, m2) = (s1 * inv_n, s2 * inv_n);
                        for (gv, &h) in g.iter_mut().zip(xh) {
                            *gv = scale * (*gv - m1 - h * m2);
                        }
                    }
                    Mode::Inference => {
                        for gv in g.iter_mut() {
                            *gv *= scale;
                        }
                    }
                }
            }
        });
    }

    /// Number of trainable scalars (γ and β).
    pub fn num_params(&self) -> usize {
        2 * self.dim()
    }
}

/// `(Σ g_i, Σ g_i·h_i)` in f32 over eight independent lanes (see [`super::lane_sum`]).
#[inline]
fn lane_dot_sums(g: &[f32], h: &[f32]) -> (f32, f32) {
    let (mut a1, mut a2) = ([0.0f32; 8], [0.0f32; 8]);
    let gc = g.chunks_exact(8);
    let hc = h.chunks_exact(8);
    let (gr, hr) = (gc.remainder(), hc.remainder());
    for (g8, h8) in gc.zip(hc) {
        for i in 0..8 {
            a1[i] += g8[i];
            a2[i] += g8[i] * h8[i];
        }
    }
    let (mut s1, mut s2): (f32, f32) = (a1.iter().sum(), a2.iter().sum());
    for (&gv, &hv) in gr.iter().zip(hr) {
        s1 += gv;
        s2 += gv * hv;
    }
    (s1, s2)
}

impl Trainable for BatchNorm {
    fn collect_params<'a>(&'a mut self, out: &mut Vec<ParamMut<'a>>) {
        out.push(ParamMut::new(
            "gamma",
            &mut self.gamma,
            &mut self.dgamma,
            true,
        ));
        out.push(ParamMut::new(
            "beta",
            &mut self.beta,
            &mut self.dbeta,
            false,
        ));
    }
}

#[derive(Serialize)]
struct BatchNormRef<'a> {
    config: &'a BatchNormConfig,
    gamma: &'a [f32],
    beta: &'a [f32],
    moving_mean: &'a [f32],
    moving_var: &'a [f32],
}

#[derive(Deserialize)]
struct BatchNormOwned {
    config: BatchNormConfig,
    gamma: Vec<f32>,
    beta: Vec<f32>,
    moving_mean: Vec<f32>,
    moving_var: Vec<f32>,
}

impl Serialize for BatchNorm {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        BatchNormRef {
            config: &self.config,
            gamma: &self.gamma,
            beta: &self.beta,
            moving_mean: &self.moving_mean,
            moving_var: &self.moving_var,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for BatchNorm {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let o = BatchNormOwned::deserialize(d)?;
        let dim = o.gamma.len();
        if [o.beta.len(), o.moving_mean.len(), o.moving_var.len()] != [dim; 3] {
            return Err(D::Error::custom(
                "batch norm: gamma, beta, moving_mean and moving_var lengths differ",
            ));
        }
        let mut bn = BatchNorm::new(dim, o.config).map_err(D::Error::custom)?;
        bn.gamma = o.gamma;
        bn.beta = o.beta;
        bn.moving_mean = o.moving_mean;
        bn.moving_var = o.moving_var;
        Ok(bn)
    }
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

    fn setup() -> (BatchNorm, Mat, Mat) {
        let mut bn = BatchNorm::new(3, BatchNormConfig::default()).unwrap();
        bn.gamma_mut().copy_from_slice(&[1.3, -0.7, 0.9]);
        bn.beta_mut().copy_from_slice(&[0.2, 0.0, -0.4]);
        // Columns with different means and scales.
        let mut x = rand_mat(6, 3, 21);
        for (j, (s, m)) in [(1.0f32, 0.3f32), (2.5, -1.0), (0.6, 2.0)]
            .into_iter()
            .enumerate()
        {
            for v in x.column_mut(j).iter_mut() {
                *v = *v * s + m;
            }
        }
        (bn, x, rand_mat(6, 3, 22))
    }

    #[test]
    fn train_forward_normalises_with_biased_variance() {
        let (mut bn, x, _) = setup();
        bn.gamma_mut().fill(1.0);
        bn.beta_mut().fill(0.0);
        let mut y = Mat::zeros(0, 0);
        bn.forward(&x, &mut y, Mode::Train);
        for j in 0..3 {
            let c = x.column(j);
            let n = c.len() as f64;
            let mean = c.iter().map(|&v| v as f64).sum::<f64>() / n;
            let var = c.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
            for i in 0..6 {
                let want = (x[(i, j)] as f64 - mean) / (var + 1e-2).sqrt();
                assert!((y[(i, j)] as f64 - want).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn train_backward_matches_finite_differences_of_the_coupled_batch() {
        let (mut bn, x, c) = setup();
        let base = bn.clone();
        let mut y = Mat::zeros(0, 0);
        bn.forward(&x, &mut y, Mode::Train);
        let mut g = c.clone();
        bn.backward_inplace(&mut g);
        let fd_x = fd_grad(x.len(), 1e-2, |i, h| {
            let mut p = base.clone();
            let mut xp = x.clone();
            xp.as_mut_slice()[i] += h;
            let mut y = Mat::zeros(0, 0);
            p.forward(&xp, &mut y, Mode::Train);
            loss(&y, &c)
        });
        check_close(g.as_slice(), &fd_x, 1e-3, 1e-3, "BN dX (train)");
        // The full Jacobian is batch-coupled: dX differs from the per-row formula γ·inv_std·dy.
        let naive = (0..3)
            .map(|j| bn.gamma()[j] * bn.inv_std[j])
            .collect::<Vec<_>>();
        assert!((0..6).any(|i| (g[(i, 0)] - naive[0] * c[(i, 0)]).abs() > 1e-2));
        for (k, name) in [(0usize, "dgamma"), (1, "dbeta")] {
            let analytic = if k == 0 {
                bn.grad_gamma().to_vec()
            } else {
                bn.grad_beta().to_vec()
            };
            let fd = fd_grad(3, 1e-2, |i, h| {
                let mut p = base.clone();
                p.params_mut()[k].value[i] += h;
                let mut y = Mat::zeros(0, 0);
                p.forward(&x, &mut y, Mode::Train);
                loss(&y, &c)
            });
            check_close(&analytic, &fd, 1e-3, 1e-3, name);
        }
    }

    #[test]
    fn inference_uses_moving_averages_and_its_backward_is_exact() {
        let (mut bn, x, c) = setup();
        let mut y = Mat::zeros(0, 0);
        bn.forward(&x, &mut y, Mode::Train);
        // One update from (0, 1): m = 0.2·μ, v = 0.8 + 0.2·σ² (biased).
        for j in 0..3 {
            let col = x.column(j);
            let mean = col.iter().map(|&v| v as f64).sum::<f64>() / 6.0;
            let var = col.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / 6.0;
            assert!((bn.moving_mean()[j] as f64 - 0.2 * mean).abs() < 1e-6);
            assert!((bn.moving_var()[j] as f64 - (0.8 + 0.2 * var)).abs() < 1e-6);
        }
        let before = (bn.moving_mean().to_vec(), bn.moving_var().to_vec());
        let x2 = rand_mat(4, 3, 23);
        bn.forward(&x2, &mut y, Mode::Inference);
        assert_eq!(
            (bn.moving_mean().to_vec(), bn.moving_var().to_vec()),
            before
        );
        for j in 0..3 {
            for i in 0..4 {
                let want = bn.gamma()[j] as f64 * (x2[(i, j)] - bn.moving_mean()[j]) as f64
                    / (bn.moving_var()[j] as f64 + 1e-2).sqrt()
                    + bn.beta()[j] as f64;
                assert!((y[(i, j)] as f64 - want).abs() < 1e-5);
            }
        }
        // Inference rows are independent: one row alone gives the same output.
        let mut y1 = Mat::zeros(0, 0);
        bn.forward(&x2.rows(2, 1), &mut y1, Mode::Inference);
        assert_eq!(y1.row(0), y.row(2));
        // Backward in inference mode.
        bn.forward(&x2, &mut y, Mode::Inference);
        let c2 = c.rows(0, 4).into_owned();
        let base = bn.clone();
        let mut g = c2.clone();
        bn.zero_grad();
        bn.backward_inplace(&mut g);
        let fd = fd_grad(x2.len(), 1e-2, |i, h| {
            let mut p = base.clone();
            let mut xp = x2.clone();
            xp.as_mut_slice()[i] += h;
            let mut y = Mat::zeros(0, 0);
            p.forward(&xp, &mut y, Mode::Inference);
            loss(&y, &c2)
        });
        check_close(g.as_slice(), &fd, 1e-3, 1e-3, "BN dX (inference)");
        let fd = fd_grad(3, 1e-2, |i, h| {
            let mut p = base.clone();
            p.gamma_mut()[i] += h;
            let mut y = Mat::zeros(0, 0);
            p.forward(&x2, &mut y, Mode::Inference);
            loss(&y, &c2)
        });
        check_close(bn.grad_gamma(), &fd, 1e-3, 1e-3, "BN dgamma (inference)");
    }

    #[test]
    fn config_validation_and_serde() {
        assert!(
            BatchNorm::new(
                3,
                BatchNormConfig {
                    eps: 0.0,
                    momentum: 0.8
                }
            )
            .is_err()
        );
        assert!(
            BatchNorm::new(
                3,
                BatchNormConfig {
                    eps: 1e-2,
                    momentum: 1.5
                }
            )
            .is_err()
        );
        assert!(BatchNorm::new(0, BatchNormConfig::default()).is_err());
        let (mut bn, x, _) = setup();
        let mut y = Mat::zeros(0, 0);
        bn.forward(&x, &mut y, Mode::Train);
        let back: BatchNorm = serde_json::from_str(&serde_json::to_string(&bn).unwrap()).unwrap();
        assert_eq!(back.gamma(), bn.gamma());
        assert_eq!(back.moving_var(), bn.moving_var());
        assert_eq!(back.config(), bn.config());
    }
}

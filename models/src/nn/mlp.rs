//! The multilayer perceptron of the encoders and decoders (docs/algorithms.md §9).

use gumbolt_core::linalg::{Precision, ProductPrecision};
use gumbolt_core::{CoreError, Mat};
use nalgebra::{Dyn, Matrix, RawStorage};
use rand::Rng;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::batchnorm::{BatchNorm, BatchNormConfig};
use super::dense::Dense;
use super::param::{ParamMut, Trainable};
use super::tanh::Tanh;
use super::{Mode, ensure_shape};

/// Shape of an [`Mlp`]: `input → hidden[0] → … → hidden[n−1] → output`.
///
/// The reference's structures (docs/algorithms.md §9, Table 1) are e.g. `784 → [200, 200] → 200` for a
/// non-linear encoder layer, `784 → [] → 200` for the linear one and `400 → [200, 200] → 784` for
/// the two-layer non-linear decoder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MlpConfig {
    /// Input width.
    pub input: usize,
    /// Widths of the hidden `Dense → BatchNorm → tanh` blocks (may be empty: a linear map).
    pub hidden: Vec<usize>,
    /// Output width (the final `Dense` has no batch norm and no activation).
    pub output: usize,
    /// Batch-norm hyper-parameters of every hidden block.
    pub batch_norm: BatchNormConfig,
}

impl MlpConfig {
    /// `input → hidden… → output` with the reference's batch-norm settings.
    ///
    /// ```
    /// use gumbolt_models::nn::MlpConfig;
    /// let mut rng = gumbolt_core::rng::root_rng(0);
    /// let mut enc = MlpConfig::new(784, [200, 200], 200).build(&mut rng).unwrap();
    /// // Per block: kernel + bias + γ + β; then the output kernel + bias.
    /// let block = |i: usize, o: usize| i * o + o + 2 * o;
    /// assert_eq!(enc.num_params(), block(784, 200) + block(200, 200) + 200 * 200 + 200);
    /// ```
    pub fn new(input: usize, hidden: impl Into<Vec<usize>>, output: usize) -> Self {
        Self {
            input,
            hidden: hidden.into(),
            output,
            batch_norm: BatchNormConfig::default(),
        }
    }

    /// Replaces the batch-norm settings.
    pub fn with_batch_norm(mut self, batch_norm: BatchNormConfig) -> Self {
        self.batch_norm = batch_norm;
        self
    }

    /// Checks that every width is positive and the batch-norm settings are valid.
    ///
    /// # Errors
    /// [`CoreError::InvalidConfig`].
    pub fn validate(&self) -> Result<(), CoreError> {
        if self.input == 0 || self.output == 0 || self.hidden.contains(&0) {
            return Err(CoreError::InvalidConfig {
                name: "mlp widths",
                reason: format!(
                    "every width must be positive, got {} -> {:?} -> {}",
                    self.input, self.hidden, self.output
                ),
            });
        }
        self.batch_norm.validate()
    }

    /// Builds a freshly initialised network (kernels: variance-scaling truncated normal,
    /// biases 0, γ = 1, β = 0).
    ///
    /// # Errors
    /// As [`MlpConfig::validate`].
    pub fn build<R: Rng + ?Sized>(&self, rng: &mut R) -> Result<Mlp, CoreError> {
        self.validate()?;
        let mut hidden = Vec::with_capacity(self.hidden.len());
        let mut width = self.input;
        for &h in &self.hidden {
            hidden.push(HiddenLayer {
                dense: Dense::new(width, h, rng)?,
                bn: BatchNorm::new(h, self.batch_norm)?,
            });
            width = h;
        }
        let output = Dense::new(width, self.output, rng)?;
        Ok(Mlp {
            config: self.clone(),
            hidden,
            output,
            buf: Buffers::default(),
            training_products: Precision::F32,
        })
    }
}

/// One `Dense → BatchNorm → tanh` block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct HiddenLayer {
    dense: Dense,
    bn: BatchNorm,
}

/// Activations and gradients of a pass, reused across iterations: the network's own (for
/// training passes and their backward pass), or a caller's [`MlpScratch`] for inference from
/// `&self` ([`Mlp::infer`]).
#[derive(Debug, Clone, Default, PartialEq)]
struct Buffers {
    /// Copy of the input `[N, input]`.
    input: Mat,
    /// Dense outputs (BN inputs) of the hidden blocks.
    pre: Vec<Mat>,
    /// tanh outputs of the hidden blocks.
    act: Vec<Mat>,
    /// Gradients w.r.t. the hidden activations (in place through tanh and BN).
    grad: Vec<Mat>,
    /// The network output `[N, output]`.
    output: Mat,
    /// Gradient w.r.t. the input (or a column range of it).
    dinput: Mat,
    /// Rows of the last forward pass, if any.
    rows: Option<usize>,
    /// Shared-input mode ([`Mlp::shared_input_buffers`]): `[B, s]` rows repeated `k` times
    /// before the per-row part in `input`; `shared_k == 0` when off.
    shared: Mat,
    shared_k: usize,
    /// Scratch of the shared first layer (`[B, width]`).
    shared_tmp: Mat,
}

impl Buffers {
    fn input_buffer(&mut self, rows: usize, width: usize) -> &mut Mat {
        self.shared_k = 0;
        ensure_shape(&mut self.input, rows, width);
        &mut self.input
    }

    fn shared_input_buffers(
        &mut self,
        rows: usize,
        k: usize,
        shared_cols: usize,
        width: usize,
    ) -> (&mut Mat, &mut Mat) {
        assert!(shared_cols <= width && k >= 1, "Mlp::shared_input_buffers");
        self.shared_k = k;
        ensure_shape(&mut self.shared, rows, shared_cols);
        ensure_shape(&mut self.input, rows * k, width - shared_cols);
        (&mut self.shared, &mut self.input)
    }
}

/// Per-thread buffers of inference passes through an [`Mlp`] shared by reference
/// ([`Mlp::infer`], [`Mlp::infer_buffered`]): evaluation threads each own one instead of a copy
/// of the network (docs/algorithms.md §2.4). Empty by default; sized on first use.
///
/// ```
/// use gumbolt_models::nn::{MlpConfig, MlpScratch, Mode};
/// let mut net = MlpConfig::new(3, [4], 2).build(&mut gumbolt_core::rng::root_rng(1)).unwrap();
/// let x = gumbolt_core::Mat::from_element(5, 3, 0.5);
/// let mut scratch = MlpScratch::default();
/// let y = net.infer(&x, &mut scratch).clone();
/// assert_eq!(&y, net.forward(&x, Mode::Inference));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MlpScratch {
    buf: Buffers,
}

/// Which input gradient a backward pass computes.
#[derive(Clone, Copy)]
enum InputGrad {
    None,
    Cols(usize, usize),
}

/// `[Dense(h) → BatchNorm → tanh] × n_hidden → Dense(out)` (docs/algorithms.md §9; the reference's
/// `FeedForwardNetwork`), batched over rows.
///
/// The forward pass caches everything the backward pass needs in buffers owned by the network;
/// once the batch size is fixed, forward and backward passes allocate nothing.
/// `backward*` accumulates the parameter gradients (see [`Trainable`]) and returns the input
/// gradient. Parameters are listed per block as dense kernel (decayed), dense bias, BN γ
/// (decayed), BN β, then the output kernel (decayed) and bias.
///
/// Serialisation stores the configuration and all parameters and moving averages (not the
/// buffers or gradients).
///
/// ```
/// use gumbolt_models::nn::{MlpConfig, Mode, Trainable};
/// let mut rng = gumbolt_core::rng::root_rng(1);
/// let mut net = MlpConfig::new(3, [4], 2).build(&mut rng).unwrap();
/// let x = gumbolt_core::Mat::from_element(5, 3, 0.5);
/// assert_eq!(net.forward(&x, Mode::Train).shape(), (5, 2));
/// let dy = gumbolt_core::Mat::from_element(5, 2, 1.0);
/// net.zero_grad();
/// let dx = net.backward(&dy);
/// assert_eq!(dx.shape(), (5, 3));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Mlp {
    config: MlpConfig,
    hidden: Vec<HiddenLayer>,
    output: Dense,
    buf: Buffers,
    /// The precision of the products of training-mode forward passes and of backward passes
    /// (a run-time setting, not part of the network's state; f32 unless set).
    training_products: Precision,
}

impl Mlp {
    /// Sets the [`Precision`] of the matrix products of [`Mode::Train`] forward passes and of
    /// backward passes; inference passes always use f32.
    pub fn set_training_products(&mut self, precision: Precision) {
        self.training_products = precision;
    }

    /// The precision of training products ([`Mlp::set_training_products`]).
    pub fn training_products(&self) -> Precision {
        self.training_products
    }

    /// The configuration.
    pub fn config(&self) -> &MlpConfig {
        &self.config
    }

    /// Input width.
    pub fn n_in(&self) -> usize {
        self.config.input
    }

    /// Output width.
    pub fn n_out(&self) -> usize {
        self.config.output
    }

    /// Number of hidden blocks.
    pub fn n_hidden(&self) -> usize {
        self.hidden.len()
    }

    /// The dense layer of hidden block `i`, or the output layer for `i == n_hidden()`.
    ///
    /// # Panics
    /// If `i > n_hidden()`.
    pub fn dense(&self, i: usize) -> &Dense {
        if i == self.hidden.len() {
            &self.output
        } else {
            &self.hidden[i].dense
        }
    }

    /// Mutable access to a dense layer (as [`Mlp::dense`]).
    pub fn dense_mut(&mut self, i: usize) -> &mut Dense {
        if i == self.hidden.len() {
            &mut self.output
        } else {
            &mut self.hidden[i].dense
        }
    }

    /// The batch norm of hidden block `i`.
    pub fn batch_norm(&self, i: usize) -> &BatchNorm {
        &self.hidden[i].bn
    }

    /// Mutable access to the batch norm of hidden block `i`.
    pub fn batch_norm_mut(&mut self, i: usize) -> &mut BatchNorm {
        &mut self.hidden[i].bn
    }

    /// Number of trainable scalars.
    pub fn num_params(&self) -> usize {
        self.hidden
            .iter()
            .map(|h| h.dense.num_params() + h.bn.num_params())
            .sum::<usize>()
            + self.output.num_params()
    }

    /// Runs the network on `x: [N, input]` (copied into the network's input buffer) and
    /// returns the output `[N, output]`.
    ///
    /// # Panics
    /// If `x` does not have `input` columns, or has no row in training mode.
    pub fn forward<S: RawStorage<f32, Dyn, Dyn>>(
        &mut self,
        x: &Matrix<f32, Dyn, Dyn, S>,
        mode: Mode,
    ) -> &Mat {
        assert_eq!(x.ncols(), self.config.input, "Mlp::forward: input width");
        self.buf.input_buffer(x.nrows(), x.ncols()).copy_from(x);
        self.forward_buffered(mode)
    }

    /// Runs the network in [`Mode::Inference`] on `x: [N, input]` with the caller's buffers,
    /// leaving the network untouched: the same output as [`Mlp::forward`] in inference mode.
    ///
    /// # Panics
    /// If `x` does not have `input` columns.
    pub fn infer<'s, S: RawStorage<f32, Dyn, Dyn>>(
        &self,
        x: &Matrix<f32, Dyn, Dyn, S>,
        scratch: &'s mut MlpScratch,
    ) -> &'s Mat {
        assert_eq!(x.ncols(), self.config.input, "Mlp::infer: input width");
        scratch.buf.input_buffer(x.nrows(), x.ncols()).copy_from(x);
        self.infer_buffered(scratch)
    }

    /// [`Mlp::input_buffer`] of the caller's buffers, for [`Mlp::infer_buffered`].
    pub fn scratch_input_buffer<'s>(
        &self,
        scratch: &'s mut MlpScratch,
        rows: usize,
    ) -> &'s mut Mat {
        scratch.buf.input_buffer(rows, self.config.input)
    }

    /// [`Mlp::shared_input_buffers`] of the caller's buffers, for [`Mlp::infer_buffered`].
    ///
    /// # Panics
    /// If `shared_cols` exceeds the input width or `k` is 0.
    pub fn scratch_shared_input_buffers<'s>(
        &self,
        scratch: &'s mut MlpScratch,
        rows: usize,
        k: usize,
        shared_cols: usize,
    ) -> (&'s mut Mat, &'s mut Mat) {
        scratch
            .buf
            .shared_input_buffers(rows, k, shared_cols, self.config.input)
    }

    /// [`Mlp::forward_buffered`] in [`Mode::Inference`] on the caller's buffers, from `&self`.
    pub fn infer_buffered<'s>(&self, scratch: &'s mut MlpScratch) -> &'s Mat {
        let _products = ProductPrecision::enter(Precision::F32);
        let buf = &mut scratch.buf;
        let nh = self.hidden.len();
        buf.pre.resize_with(nh, || Mat::zeros(0, 0));
        buf.act.resize_with(nh, || Mat::zeros(0, 0));
        let k = buf.shared_k;
        for (l, layer) in self.hidden.iter().enumerate() {
            let (prev, rest) = buf.act.split_at_mut(l);
            if l == 0 && k > 0 {
                let tmp = &mut buf.shared_tmp;
                layer
                    .dense
                    .forward_shared(&buf.shared, k, &buf.input, tmp, &mut buf.pre[l]);
            } else {
                let x = if l == 0 { &buf.input } else { &prev[l - 1] };
                layer.dense.forward(x, &mut buf.pre[l]);
            }
            layer.bn.infer_into(&buf.pre[l], &mut rest[0]);
            Tanh::forward_inplace(&mut rest[0]);
        }
        if nh == 0 && k > 0 {
            let tmp = &mut buf.shared_tmp;
            self.output
                .forward_shared(&buf.shared, k, &buf.input, tmp, &mut buf.output);
        } else {
            let x = if nh == 0 {
                &buf.input
            } else {
                &buf.act[nh - 1]
            };
            self.output.forward(x, &mut buf.output);
        }
        &buf.output
    }

    /// The input buffer reshaped to `[rows, input]`, for callers that assemble the input in
    /// place (e.g. `[x − x̄, ζ1]`, docs/algorithms.md §2.1) before [`Mlp::forward_buffered`].
    pub fn input_buffer(&mut self, rows: usize) -> &mut Mat {
        self.buf.input_buffer(rows, self.config.input)
    }

    /// Buffers for an input whose first `shared_cols` columns repeat every row of a
    /// `[rows, shared_cols]` block `k` times (row `r` of the input is
    /// `[shared[r / k], rest[r]]`, `rest: [rows·k, input − shared_cols]`), e.g. the second
    /// encoder's `[x − x̄, ζ1]` with k samples per image. [`Mlp::forward_buffered`] then runs
    /// the first layer's shared product once per distinct row ([`Dense::forward_shared`]);
    /// the result equals that of the repeated input. Input-gradient column ranges keep
    /// referring to the whole input's columns.
    ///
    /// # Panics
    /// If `shared_cols` exceeds the input width or `k` is 0.
    pub fn shared_input_buffers(
        &mut self,
        rows: usize,
        k: usize,
        shared_cols: usize,
    ) -> (&mut Mat, &mut Mat) {
        self.buf
            .shared_input_buffers(rows, k, shared_cols, self.config.input)
    }

    /// Runs the network on the current contents of the input buffer (see
    /// [`Mlp::input_buffer`]).
    pub fn forward_buffered(&mut self, mode: Mode) -> &Mat {
        let _products = ProductPrecision::enter(match mode {
            Mode::Train => self.training_products,
            Mode::Inference => Precision::F32,
        });
        let Self {
            hidden,
            output,
            buf,
            ..
        } = self;
        let n = buf.input.nrows();
        let nh = hidden.len();
        buf.pre.resize_with(nh, || Mat::zeros(0, 0));
        buf.act.resize_with(nh, || Mat::zeros(0, 0));
        buf.grad.resize_with(nh, || Mat::zeros(0, 0));
        let k = buf.shared_k;
        for l in 0..nh {
            let (prev, rest) = buf.act.split_at_mut(l);
            let layer = &mut hidden[l];
            if l == 0 && k > 0 {
                let tmp = &mut buf.shared_tmp;
                layer
                    .dense
                    .forward_shared(&buf.shared, k, &buf.input, tmp, &mut buf.pre[l]);
            } else {
                let x = if l == 0 { &buf.input } else { &prev[l - 1] };
                layer.dense.forward(x, &mut buf.pre[l]);
            }
            layer.bn.forward(&buf.pre[l], &mut rest[0], mode);
            Tanh::forward_inplace(&mut rest[0]);
        }
        if nh == 0 && k > 0 {
            let tmp = &mut buf.shared_tmp;
            output.forward_shared(&buf.shared, k, &buf.input, tmp, &mut buf.output);
        } else {
            let x = if nh == 0 {
                &buf.input
            } else {
                &buf.act[nh - 1]
            };
            output.forward(x, &mut buf.output);
        }
        buf.rows = Some(n);
        &buf.output
    }

    /// The output of the last forward pass.
    pub fn output(&self) -> &Mat {
        &self.buf.output
    }

    /// Backward pass for `dy = ∂loss/∂output` (`[N, output]`): accumulates every parameter
    /// gradient and returns `∂loss/∂input` (`[N, input]`).
    ///
    /// # Panics
    /// If no forward pass was run or `dy` has the wrong shape.
    pub fn backward(&mut self, dy: &Mat) -> &Mat {
        let n_in = self.config.input;
        self.backward_impl(dy, InputGrad::Cols(0, n_in));
        &self.buf.dinput
    }

    /// As [`Mlp::backward`], but returns the gradient for input columns `start .. start + len`
    /// only (`[N, len]`), e.g. the `ζ1` part of the second encoder's input `[x − x̄, ζ1]`.
    ///
    /// # Panics
    /// As [`Mlp::backward`], or if the column range exceeds the input width.
    pub fn backward_input_cols(&mut self, dy: &Mat, start: usize, len: usize) -> &Mat {
        self.backward_impl(dy, InputGrad::Cols(start, len));
        &self.buf.dinput
    }

    /// As [`Mlp::backward`] without computing the input gradient (the encoder of the data
    /// needs none), saving the first layer's `dy Wᵀ` product.
    pub fn backward_params_only(&mut self, dy: &Mat) {
        self.backward_impl(dy, InputGrad::None);
    }

    fn backward_impl(&mut self, dy: &Mat, want: InputGrad) {
        let _products = ProductPrecision::enter(self.training_products);
        let rows = self.buf.rows.expect("Mlp::backward before forward");
        assert_eq!(
            dy.shape(),
            (rows, self.config.output),
            "Mlp::backward: dy shape"
        );
        let Self {
            hidden,
            output,
            buf,
            ..
        } = self;
        let nh = hidden.len();
        let k = buf.shared_k;
        if nh == 0 && k > 0 {
            output.backward_params_shared(&buf.shared, k, &buf.input, dy, &mut buf.shared_tmp);
        } else if nh == 0 {
            output.backward_params(&buf.input, dy);
        } else {
            output.backward_params(&buf.act[nh - 1], dy);
            output.input_grad(dy, &mut buf.grad[nh - 1]);
        }
        for l in (0..nh).rev() {
            Tanh::backward_inplace(&buf.act[l], &mut buf.grad[l]);
            hidden[l].bn.backward_inplace(&mut buf.grad[l]);
            if l == 0 && k > 0 {
                let tmp = &mut buf.shared_tmp;
                hidden[l].dense.backward_params_shared(
                    &buf.shared,
                    k,
                    &buf.input,
                    &buf.grad[l],
                    tmp,
                );
            } else {
                let x = if l == 0 { &buf.input } else { &buf.act[l - 1] };
                hidden[l].dense.backward_params(x, &buf.grad[l]);
            }
            if l > 0 {
                let (lo, hi) = buf.grad.split_at_mut(l);
                hidden[l].dense.input_grad(&hi[0], &mut lo[l - 1]);
            }
        }
        if let InputGrad::Cols(start, len) = want {
            let (first, dy0) = if nh == 0 {
                (&*output, dy)
            } else {
                (&hidden[0].dense, &buf.grad[0])
            };
            first.input_grad_cols(dy0, start, len, &mut buf.dinput);
        }
    }
}

impl Trainable for Mlp {
    fn collect_params<'a>(&'a mut self, out: &mut Vec<ParamMut<'a>>) {
        for h in &mut self.hidden {
            h.dense.collect_params(out);
            h.bn.collect_params(out);
        }
        self.output.collect_params(out);
    }
}

#[derive(Serialize)]
struct MlpRef<'a> {
    config: &'a MlpConfig,
    hidden: &'a [HiddenLayer],
    output: &'a Dense,
}

#[derive(Deserialize)]
struct MlpOwned {
    config: MlpConfig,
    hidden: Vec<HiddenLayer>,
    output: Dense,
}

impl Serialize for Mlp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        MlpRef {
            config: &self.config,
            hidden: &self.hidden,
            output: &self.output,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Mlp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let o = MlpOwned::deserialize(d)?;
        o.config.validate().map_err(D::Error::custom)?;
        let c = &o.config;
        let mut ok = o.hidden.len() == c.hidden.len();
        let mut width = c.input;
        for (h, &w) in o.hidden.iter().zip(&c.hidden) {
            ok &= h.dense.n_in() == width && h.dense.n_out() == w && h.bn.dim() == w;
            width = w;
        }
        ok &= o.output.n_in() == width && o.output.n_out() == c.output;
        if !ok {
            return Err(D::Error::custom(
                "mlp: layer shapes do not match the configuration",
            ));
        }
        Ok(Mlp {
            config: o.config,
            hidden: o.hidden,
            output: o.output,
            buf: Buffers::default(),
            training_products: Precision::F32,
        })
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

    fn net(seed: u64, hidden: &[usize]) -> Mlp {
        let mut rng = gumbolt_core::rng::root_rng(seed);
        let mut m = MlpConfig::new(5, hidden.to_vec(), 2)
            .build(&mut rng)
            .unwrap();
        // Move γ, β and the biases away from their initial values so every term matters.
        let mut k = 0.0f32;
        for p in m.params_mut() {
            if p.name != "kernel" {
                for v in p.value.iter_mut() {
                    k += 1.0;
                    *v += 0.1 * (k * 0.7).sin();
                }
            }
        }
        m
    }

    /// A network of the paper's widths (200 → 200 → 784) on 64 rows: products large enough for
    /// the bf16 kernel.
    fn wide_net() -> (Mlp, Mat, Mat) {
        let mut rng = gumbolt_core::rng::root_rng(5);
        let m = MlpConfig::new(200, vec![200], 784).build(&mut rng).unwrap();
        (m, rand_mat(64, 200, 6), rand_mat(64, 784, 7))
    }

    #[test]
    fn bf16_training_products_stay_close_to_f32_and_leave_inference_alone() {
        let (base, x, dy) = wide_net();
        let run = |p: Precision, mode: Mode| {
            let mut m = base.clone();
            m.set_training_products(p);
            assert_eq!(m.training_products(), p);
            let y = m.forward(&x, mode).clone();
            m.zero_grad();
            let dx = m.backward(&dy).clone();
            let grads: Vec<Vec<f32>> = m.params_mut().iter().map(|t| t.grad.to_vec()).collect();
            (y, dx, grads)
        };
        // Inference passes are f32 whatever the setting: bit-identical outputs.
        let (y32, _, _) = run(Precision::F32, Mode::Inference);
        let (y16, _, _) = run(Precision::Bf16, Mode::Inference);
        assert_eq!(y32, y16);
        let mut scratch = MlpScratch::default();
        let mut m = base.clone();
        m.set_training_products(Precision::Bf16);
        assert_eq!(*m.infer(&x, &mut scratch), y32);
        // Training passes: bf16 keeps 8 significant bits of each operand, so outputs and
        // gradients move by well under 1 % of their scale, and only there.
        let (t32, dx32, g32) = run(Precision::F32, Mode::Train);
        let (t16, dx16, g16) = run(Precision::Bf16, Mode::Train);
        let rel = |a: &[f32], b: &[f32]| {
            let scale = a.iter().map(|v| v.abs()).fold(0.0f32, f32::max);
            let diff = a
                .iter()
                .zip(b)
                .map(|(u, v)| (u - v).abs())
                .fold(0.0f32, f32::max);
            diff / scale
        };
        for (what, a, b) in [
            ("output", t32.as_slice(), t16.as_slice()),
            ("input gradient", dx32.as_slice(), dx16.as_slice()),
        ] {
            let r = rel(a, b);
            assert!(r < 1e-2, "{what}: relative difference {r}");
            if Precision::bf16_available() {
                assert!(r > 0.0, "{what}: the bf16 kernel did not run");
            }
        }
        // The bias of a dense layer followed by batch norm has a zero gradient in exact
        // arithmetic (the normalisation removes the mean): only rounding noise is left there,
        // so it is compared against the gradients' overall scale.
        let overall = g32.iter().flatten().map(|v| v.abs()).fold(0.0f32, f32::max);
        for (i, (a, b)) in g32.iter().zip(&g16).enumerate() {
            let scale = a.iter().map(|v| v.abs()).fold(0.0f32, f32::max);
            let r = if scale < 1e-3 * overall {
                a.iter()
                    .zip(b)
                    .map(|(u, v)| (u - v).abs())
                    .fold(0.0f32, f32::max)
                    / overall
            } else {
                rel(a, b)
            };
            assert!(r < 2e-2, "parameter tensor {i}: relative difference {r}");
        }
    }

    fn check_end_to_end(hidden: &[usize], mode: Mode) {
        let base = net(41, hidden);
        let mut m = base.clone();
        let x = rand_mat(7, 5, 42) * 1.5;
        let c = rand_mat(7, 2, 43);
        m.forward(&x, mode);
        m.zero_grad();
        let dx = m.backward(&c).clone();
        let forward_loss = |p: &mut Mlp, x: &Mat| {
            let y = p.forward(x, mode);
            loss(y, &c)
        };
        let fd = fd_grad(x.len(), 1e-2, |i, h| {
            let mut p = base.clone();
            let mut xp = x.clone();
            xp.as_mut_slice()[i] += h;
            forward_loss(&mut p, &xp)
        });
        check_close(dx.as_slice(), &fd, 2e-3, 1e-3, "mlp dX");
        let n_tensors = m.params_mut().len();
        assert_eq!(n_tensors, 4 * hidden.len() + 2);
        for k in 0..n_tensors {
            let ps = m.params_mut();
            let analytic = ps[k].grad.to_vec();
            let name = ps[k].name;
            let fd = fd_grad(analytic.len(), 1e-2, |i, h| {
                let mut p = base.clone();
                p.params_mut()[k].value[i] += h;
                forward_loss(&mut p, &x)
            });
            check_close(
                &analytic,
                &fd,
                2e-3,
                1e-3,
                &format!("mlp {mode:?} tensor {k} ({name})"),
            );
        }
        // Partial input gradients are the matching columns.
        let mut m2 = base.clone();
        m2.forward(&x, mode);
        let part = m2.backward_input_cols(&c, 2, 3).clone();
        assert!((part - dx.columns(2, 3)).abs().max() < 1e-6);
    }

    #[test]
    fn two_hidden_layers_end_to_end_train_mode() {
        check_end_to_end(&[4, 3], Mode::Train);
    }

    #[test]
    fn two_hidden_layers_end_to_end_inference_mode() {
        check_end_to_end(&[4, 3], Mode::Inference);
    }

    #[test]
    fn linear_network_end_to_end() {
        check_end_to_end(&[], Mode::Train);
    }

    #[test]
    fn buffers_are_reused_and_gradients_accumulate() {
        let mut m = net(5, &[6, 6]);
        let x = rand_mat(8, 5, 6);
        let c = rand_mat(8, 2, 7);
        m.forward(&x, Mode::Train);
        m.zero_grad();
        m.backward(&c);
        let g1: Vec<Vec<f32>> = m.params_mut().iter().map(|p| p.grad.to_vec()).collect();
        let ptrs = (
            m.output().as_ptr(),
            m.buf.act[1].as_ptr(),
            m.buf.dinput.as_ptr(),
        );
        m.forward(&x, Mode::Train);
        m.backward(&c);
        assert_eq!(
            ptrs,
            (
                m.output().as_ptr(),
                m.buf.act[1].as_ptr(),
                m.buf.dinput.as_ptr()
            )
        );
        for (p, g) in m.params_mut().iter().zip(&g1) {
            for (a, b) in p.grad.iter().zip(g) {
                assert!((a - 2.0 * b).abs() <= 1e-5 * (1.0 + b.abs()));
            }
        }
        // backward_params_only accumulates the same parameter gradients.
        let mut m2 = net(5, &[6, 6]);
        m2.forward(&x, Mode::Train);
        m2.forward(&x, Mode::Train); // same moving-average history as `m`
        m2.zero_grad();
        m2.backward_params_only(&c);
        for (p, g) in m2.params_mut().iter().zip(&g1) {
            assert_eq!(p.grad, &g[..]);
        }
        // Assembling the input in place is the same as passing it.
        let mut m3 = net(5, &[6, 6]);
        m3.input_buffer(8).copy_from(&x);
        let y3 = m3.forward_buffered(Mode::Train).clone();
        let mut m4 = net(5, &[6, 6]);
        assert_eq!(&y3, m4.forward(&x, Mode::Train));
    }

    #[test]
    fn inference_on_caller_buffers_equals_the_inference_forward_pass() {
        // `infer` / `infer_buffered` from `&self` give bit for bit what `forward` and
        // `forward_buffered` give in inference mode, with plain and shared inputs, after
        // training passes moved the batch-norm averages; the network is left untouched.
        for hidden in [&[4usize, 3][..], &[]] {
            let mut a = net(11, hidden);
            let x = rand_mat(6, 5, 4);
            a.forward(&x, Mode::Train);
            a.forward(&rand_mat(6, 5, 5), Mode::Train);
            let before = a.clone();
            let mut scratch = MlpScratch::default();
            let y = a.infer(&x, &mut scratch).clone();
            assert_eq!(a, before);
            assert_eq!(&y, a.forward(&x, Mode::Inference));
            let (b, k, s) = (2, 3, 2);
            let (shared, rest) = (rand_mat(b, s, 6), rand_mat(b * k, 5 - s, 7));
            let (sh, re) = a.scratch_shared_input_buffers(&mut scratch, b, k, s);
            sh.copy_from(&shared);
            re.copy_from(&rest);
            let ys = a.infer_buffered(&mut scratch).clone();
            let (sh, re) = a.shared_input_buffers(b, k, s);
            sh.copy_from(&shared);
            re.copy_from(&rest);
            assert_eq!(&ys, a.forward_buffered(Mode::Inference));
            a.scratch_input_buffer(&mut scratch, 6).copy_from(&x);
            assert_eq!(a.infer_buffered(&mut scratch), &y);
        }
    }

    #[test]
    fn shared_input_equals_the_repeated_input() {
        // Input [shared[r / k], rest[r]]: forward outputs, parameter gradients and the input
        // gradient of the per-row columns match those of the explicitly repeated input.
        for hidden in [&[4usize, 3][..], &[]] {
            for mode in [Mode::Train, Mode::Inference] {
                let (b, k, s) = (3, 4, 2);
                let shared = rand_mat(b, s, 1);
                let rest = rand_mat(b * k, 5 - s, 2);
                let full = Mat::from_fn(b * k, 5, |r, c| {
                    if c < s {
                        shared[(r / k, c)]
                    } else {
                        rest[(r, c - s)]
                    }
                });
                let dy = rand_mat(b * k, 2, 3);
                let mut a = net(7, hidden);
                let mut m = a.clone();
                let ya = a.forward(&full, mode).clone();
                let (sh, re) = m.shared_input_buffers(b, k, s);
                sh.copy_from(&shared);
                re.copy_from(&rest);
                let ym = m.forward_buffered(mode).clone();
                let close = |x: &[f32], y: &[f32], what: &str| {
                    for (i, (p, q)) in x.iter().zip(y).enumerate() {
                        assert!(
                            (p - q).abs() <= 1e-5 * (1.0 + p.abs()),
                            "{what}[{i}]: {p} vs {q}"
                        );
                    }
                };
                close(ya.as_slice(), ym.as_slice(), "output");
                a.zero_grad();
                m.zero_grad();
                let da = a.backward_input_cols(&dy, s, 5 - s).clone();
                let dm = m.backward_input_cols(&dy, s, 5 - s).clone();
                close(da.as_slice(), dm.as_slice(), "input gradient");
                let ga: Vec<Vec<f32>> = a.params_mut().iter().map(|p| p.grad.to_vec()).collect();
                let gm: Vec<Vec<f32>> = m.params_mut().iter().map(|p| p.grad.to_vec()).collect();
                for (t, (x, y)) in ga.iter().zip(&gm).enumerate() {
                    close(x, y, &format!("gradient of tensor {t}"));
                }
                // Back to the ordinary input.
                assert_eq!(m.forward(&full, mode).as_slice(), ya.as_slice());
            }
        }
    }

    #[test]
    fn decay_flags_and_serde_roundtrip() {
        let mut m = net(9, &[4, 3]);
        let flags: Vec<(&str, bool)> = m.params_mut().iter().map(|p| (p.name, p.decay)).collect();
        assert_eq!(
            flags,
            vec![
                ("kernel", true),
                ("bias", false),
                ("gamma", true),
                ("beta", false),
                ("kernel", true),
                ("bias", false),
                ("gamma", true),
                ("beta", false),
                ("kernel", true),
                ("bias", false),
            ]
        );
        let x = rand_mat(6, 5, 10);
        m.forward(&x, Mode::Train);
        let json = serde_json::to_string(&m).unwrap();
        let mut back: Mlp = serde_json::from_str(&json).unwrap();
        let y = m.forward(&x, Mode::Inference).clone();
        assert_eq!(back.forward(&x, Mode::Inference), &y);
        assert_eq!(back.config(), m.config());
        // A configuration that does not match the layers is rejected.
        let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
        v["config"]["output"] = serde_json::json!(3);
        assert!(serde_json::from_value::<Mlp>(v).is_err());
        assert!(
            MlpConfig::new(5, [0], 2)
                .build(&mut gumbolt_core::rng::root_rng(0))
                .is_err()
        );
    }
}

//! Trainable tensors as flat slices, so one optimiser can update every tensor of a model.

/// One trainable tensor of a model: its values and gradient as flat slices of equal length,
/// and whether weight decay applies to it.
///
/// Networks hand these out through [`Trainable`]; a composite model concatenates the lists of
/// its parts (and can add tensors that live elsewhere, e.g. the RBM parameters of a prior,
/// split with `split_at_mut` so that only the coupling `W` is decayed, docs/algorithms.md §1). The
/// optimiser identifies tensors by their **position** in the list, so a model must always list
/// them in the same order.
#[derive(Debug)]
pub struct ParamMut<'a> {
    /// A short label for messages (`"kernel"`, `"bias"`, `"gamma"`, `"beta"`, ...).
    pub name: &'static str,
    /// The values θ.
    pub value: &'a mut [f32],
    /// `∂loss/∂θ`, same length as `value`.
    pub grad: &'a mut [f32],
    /// Whether the `½·λ‖θ‖²` weight-decay term applies (dense kernels and BN γ in the
    /// reference, docs/algorithms.md §9–§10; never biases, BN β or the RBM fields).
    pub decay: bool,
}

impl<'a> ParamMut<'a> {
    /// Bundles a tensor with its gradient.
    ///
    /// # Panics
    /// If the lengths differ (a programming error).
    pub fn new(name: &'static str, value: &'a mut [f32], grad: &'a mut [f32], decay: bool) -> Self {
        assert_eq!(
            value.len(),
            grad.len(),
            "ParamMut `{name}`: value and gradient lengths differ"
        );
        Self {
            name,
            value,
            grad,
            decay,
        }
    }

    /// Number of scalars.
    pub fn len(&self) -> usize {
        self.value.len()
    }

    /// Whether the tensor is empty.
    pub fn is_empty(&self) -> bool {
        self.value.is_empty()
    }
}

/// Something with trainable tensors.
pub trait Trainable {
    /// Appends every trainable tensor, in a fixed order, to `out`.
    fn collect_params<'a>(&'a mut self, out: &mut Vec<ParamMut<'a>>);

    /// Every trainable tensor, in the order of [`Trainable::collect_params`].
    fn params_mut(&mut self) -> Vec<ParamMut<'_>> {
        let mut v = Vec::new();
        self.collect_params(&mut v);
        v
    }

    /// The full gradient of the regularised loss per tensor: the stored gradient plus the
    /// weight-decay term `λθ` on tensors flagged `decay` (what [`crate::nn::Adam`] steps on).
    fn grads_with_decay(&mut self, lambda: f32) -> Vec<(&'static str, Vec<f32>)> {
        self.params_mut()
            .iter()
            .map(|p| {
                let g = p
                    .grad
                    .iter()
                    .zip(p.value.iter())
                    .map(|(&g, &v)| g + if p.decay { lambda * v } else { 0.0 })
                    .collect();
                (p.name, g)
            })
            .collect()
    }

    /// Sets every gradient to zero.
    fn zero_grad(&mut self) {
        for p in self.params_mut() {
            p.grad.fill(0.0);
        }
    }
}

/// The weight-decay term `λ·½ Σ‖θ‖²` over the tensors flagged `decay` (its gradient, `λθ`, is
/// what [`crate::nn::Adam`] adds for those tensors). Accumulated in f64.
///
/// ```
/// use gumbolt_models::nn::{ParamMut, weight_decay_loss};
/// let (mut w, mut gw, mut b, mut gb) = ([3.0f32, 4.0], [0.0f32; 2], [10.0f32], [0.0f32]);
/// let ps = [ParamMut::new("kernel", &mut w, &mut gw, true), ParamMut::new("bias", &mut b, &mut gb, false)];
/// assert!((weight_decay_loss(&ps, 1e-4) - 1e-4 * 12.5).abs() < 1e-12);
/// ```
pub fn weight_decay_loss(params: &[ParamMut<'_>], coeff: f64) -> f64 {
    let sq: f64 = params
        .iter()
        .filter(|p| p.decay)
        .flat_map(|p| p.value.iter())
        .map(|&v| (v as f64) * (v as f64))
        .sum();
    0.5 * coeff * sq
}

//! How the model trains its prior: the parameter groups (for weight decay) and the gradient of
//! `log Z` (GB Eq. 6), by sampling (PCD) or exactly (GumBolt-nW).

use gumbolt_core::prior::{EnergyGradient, EnergyParamGradient, ExactPartition, Prior};
use gumbolt_core::{Mat, Sampler};
use gumbolt_priors::{FactorialBernoulli, PolynomialMrf, Rbm, SparseBm};

use super::error::Result;

/// One contiguous group of a prior's flat parameter vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamGroup {
    /// Label (`"rbm.ab"`, `"rbm.w"`, `"bernoulli.h"`).
    pub name: &'static str,
    /// Number of scalars.
    pub len: usize,
    /// Whether the weight decay `λ·½‖·‖²` applies (docs/algorithms.md §1, §10.2: the RBM coupling W
    /// only, never the fields a, b).
    pub decay: bool,
}

/// A prior the GumBolt model can train: the energy at relaxed points (GB Eq. 7), its ζ-gradient
/// (backpropagation into the encoder, GB Eq. 11) and its θ-gradient (positive and negative
/// phase, GB Eq. 6), plus the split of θ into weight-decay groups.
///
/// **The contract a prior of your own must follow** (every method is called on batches; rows are
/// configurations, columns units):
/// - [`Prior::energy_into`] is the multilinear extension of the binary energy (GB Eq. 7,
///   Theorem 1), evaluated at relaxed points `ζ ∈ [0,1]^n`; `out` has one entry per row.
/// - [`EnergyGradient::energy_grad_into`] receives an `out` of **any shape** (the model passes a
///   `0 × 0` buffer first and reuses it): resize it to `[N, n]` when its shape differs, then
///   overwrite every entry with `∂E/∂ζ` (GB Eq. 11).
/// - [`gumbolt_core::Parametric::params`] is one flat vector; [`TrainablePrior::param_groups`]
///   covers it exactly, in order; [`EnergyParamGradient::accumulate_neg_energy_grad`] *adds*
///   `Σ_r w_r ∂(−E(ζ_r))/∂θ` in that layout.
/// - [`TrainablePrior::couples_within`] says whether an interaction joins units of a range; the
///   default (`true`) is the safe answer (the two-layer dVAE / dVAE++ KL is then refused).
///
/// The negative phase needs samples of the prior: give it
/// [`gumbolt_core::prior::ColourConditionals`] and train it with
/// [`SampledPartition`]`<`[`gumbolt_samplers::ColourPcd`]`>`
/// (`examples/examples/custom_prior_vae.rs` does this for a prior defined in the example).
pub trait TrainablePrior:
    Prior + EnergyGradient + EnergyParamGradient + Clone + Send + Sync + 'static
{
    /// The groups of [`gumbolt_core::Parametric::params`], in order, covering every scalar.
    fn param_groups(&self) -> Vec<ParamGroup>;

    /// Whether some interaction term of the energy contains two units of `units`. The two-layer
    /// dVAE / dVAE++ KL assumes no coupling inside a stochastic layer and is refused when this
    /// holds for a layer. Default: `true` (unknown).
    fn couples_within(&self, units: std::ops::Range<usize>) -> bool {
        let _ = units;
        true
    }
}

impl TrainablePrior for Rbm {
    /// `[a | b]` (not decayed) and `W` (decayed), the layout `[a | b | W column-major]`.
    fn param_groups(&self) -> Vec<ParamGroup> {
        vec![
            ParamGroup {
                name: "rbm.ab",
                len: self.n1() + self.n2(),
                decay: false,
            },
            ParamGroup {
                name: "rbm.w",
                len: self.n1() * self.n2(),
                decay: true,
            },
        ]
    }

    /// Couplings only join `z1` (units `0..n1`) to `z2`.
    fn couples_within(&self, units: std::ops::Range<usize>) -> bool {
        let n1 = self.n1();
        units.start < n1 && units.end > n1 && !units.is_empty()
    }
}

impl TrainablePrior for PolynomialMrf {
    /// One group: the coefficients of every monomial, not decayed.
    fn param_groups(&self) -> Vec<ParamGroup> {
        vec![ParamGroup {
            name: "mrf.c",
            len: self.num_monomials(),
            decay: false,
        }]
    }

    /// Whether a monomial of order ≥ 2 has two units in `units`.
    fn couples_within(&self, units: std::ops::Range<usize>) -> bool {
        (0..self.num_monomials()).any(|k| {
            self.monomial(k)
                .0
                .iter()
                .filter(|i| units.contains(i))
                .count()
                >= 2
        })
    }
}

impl TrainablePrior for SparseBm {
    /// `h` (not decayed) and the couplings `w` (decayed, like the RBM's `W`): the layout
    /// `[h | w]` of [`SparseBm`].
    fn param_groups(&self) -> Vec<ParamGroup> {
        vec![
            ParamGroup {
                name: "bm.h",
                len: self.num_units(),
                decay: false,
            },
            ParamGroup {
                name: "bm.w",
                len: self.num_edges(),
                decay: true,
            },
        ]
    }

    fn couples_within(&self, units: std::ops::Range<usize>) -> bool {
        self.has_edge_within(units)
    }
}

impl TrainablePrior for FactorialBernoulli {
    /// `h` (not decayed): GumBolt-nW keeps the fields and has no couplings (GB Table 2).
    fn param_groups(&self) -> Vec<ParamGroup> {
        vec![ParamGroup {
            name: "bernoulli.h",
            len: self.h().len(),
            decay: false,
        }]
    }

    /// No couplings at all.
    fn couples_within(&self, _units: std::ops::Range<usize>) -> bool {
        false
    }
}

/// The `log Z` part of the training loss (docs/algorithms.md §1 "Surrogate for autodiff"): a value whose
/// θ-gradient is (an estimate of) `∇θ log Z = E_p[∇θ(−E)]` (GB Eq. 6).
pub trait PartitionGradient<P: ?Sized>: Send + 'static {
    /// Prepares an iteration with the *current* θ: advances persistent chains (PCD), or
    /// computes the exact gradient. Called once per loss evaluation, before the forward pass
    /// (docs/algorithms.md §2.1 step 9).
    ///
    /// # Errors
    /// If an exact computation is intractable.
    fn advance(&mut self, prior: &P) -> Result<()>;

    /// The value of the surrogate at the current θ: `S_Z = (1/C) Σ_c −E_θ(z_c)` over detached
    /// samples (whose value is *not* `log Z`; the reference implementation's comment: "don't trust its value") or the exact
    /// `log Z`.
    fn surrogate_value(&self, prior: &P) -> f64;

    /// `grad += scale · ∇θ S_Z` in the prior's parameter layout.
    fn accumulate_grad(&self, prior: &P, scale: f32, grad: &mut [f32]);

    /// The current negative-phase samples (`[C, n]`), if this is a sampling estimator.
    fn samples(&self) -> Option<&Mat> {
        None
    }
}

/// The negative phase from the samples of any [`Sampler`] (PCD for GumBolt, GB §5.1): each
/// [`PartitionGradient::advance`] runs the sampler with the current θ and copies its `C`
/// samples, which then enter `∇θ S_Z = (1/C) Σ_c ∇θ(−E_θ(z_c))` as constants.
#[derive(Debug, Clone)]
pub struct SampledPartition<S> {
    sampler: S,
    samples: Mat,
}

impl<S> SampledPartition<S> {
    /// Wraps a sampler; there are no samples until the first `advance`.
    pub fn new(sampler: S) -> Self {
        Self {
            sampler,
            samples: Mat::zeros(0, 0),
        }
    }

    /// The sampler.
    pub fn sampler(&self) -> &S {
        &self.sampler
    }

    /// Mutable access to the sampler.
    pub fn sampler_mut(&mut self) -> &mut S {
        &mut self.sampler
    }
}

impl<P, S> PartitionGradient<P> for SampledPartition<S>
where
    P: EnergyParamGradient + ?Sized,
    S: Sampler<P> + Send + 'static,
{
    fn advance(&mut self, prior: &P) -> Result<()> {
        let s = self.sampler.sample(prior);
        if self.samples.shape() != s.shape() {
            self.samples = s.clone();
        } else {
            self.samples.copy_from(s);
        }
        Ok(())
    }

    fn surrogate_value(&self, prior: &P) -> f64 {
        let c = self.samples.nrows();
        if c == 0 {
            return 0.0;
        }
        let mut e = vec![0.0; c];
        prior.energy_into(self.samples.as_view(), &mut e);
        -e.iter().sum::<f64>() / c as f64
    }

    fn accumulate_grad(&self, prior: &P, scale: f32, grad: &mut [f32]) {
        let c = self.samples.nrows();
        if c == 0 {
            return;
        }
        let w = vec![scale / c as f32; c];
        prior.accumulate_neg_energy_grad(self.samples.as_view(), &w, grad);
    }

    fn samples(&self) -> Option<&Mat> {
        Some(&self.samples)
    }
}

/// A "sampler" that always returns the same samples: for deterministic tests of the loss and
/// its gradient (fixed negative phase), and for negative phases computed elsewhere.
#[derive(Debug, Clone, PartialEq)]
pub struct FixedSamples(pub Mat);

impl<P: ?Sized> Sampler<P> for FixedSamples {
    fn sample(&mut self, _prior: &P) -> &Mat {
        &self.0
    }
}

/// The exact `log Z` and its exact gradient (GumBolt-nW with a factorial prior: `∂log Z/∂h =
/// σ(h)`, docs/algorithms.md §2.5; or a small RBM). Recomputed at every `advance`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExactPartitionGradient {
    log_z: f64,
    grad: Vec<f64>,
}

impl ExactPartitionGradient {
    /// A fresh estimator (nothing computed before the first `advance`).
    pub fn new() -> Self {
        Self::default()
    }

    /// `log Z` at the last `advance`.
    pub fn log_z(&self) -> f64 {
        self.log_z
    }
}

impl<P: ExactPartition + ?Sized> PartitionGradient<P> for ExactPartitionGradient {
    fn advance(&mut self, prior: &P) -> Result<()> {
        self.log_z = prior.log_partition()?;
        self.grad = prior.log_partition_grad()?;
        Ok(())
    }

    /// The exact `log Z` at the current θ (computed afresh: the value must follow θ even
    /// between two `advance` calls, e.g. in finite-difference tests).
    fn surrogate_value(&self, prior: &P) -> f64 {
        prior.log_partition().unwrap_or(self.log_z)
    }

    fn accumulate_grad(&self, _prior: &P, scale: f32, grad: &mut [f32]) {
        assert_eq!(
            grad.len(),
            self.grad.len(),
            "ExactPartitionGradient: call advance before accumulate_grad"
        );
        for (g, &e) in grad.iter_mut().zip(&self.grad) {
            *g += scale * e as f32;
        }
    }
}

//! Persistent contrastive divergence (Tieleman 2008; GB §5; docs/algorithms.md §7.2).
//!
//! `C` persistent block-Gibbs chains are created once (Bernoulli(0.5), the exact distribution of
//! the zero-initialised RBM) and advanced `S` sweeps at β = 1 with the current parameters at
//! every call; the final states are the negative-phase samples of `∇θ log Z = E_p[∇θ(−E)]`
//! (GB Eq. 6).

use crate::error::{Result, ensure};
use crate::gibbs::{BlockGibbs, check_sizes};
use gumbolt_core::linalg::gemm_tn;
use gumbolt_core::prior::{BlockConditionals, ChainProducts, EnergyParamGradient};
use gumbolt_core::{Mat, Sampler};
use serde::{Deserialize, Serialize};

/// Configuration of [`Pcd`]. Validated by [`Pcd::new`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PcdConfig {
    /// Number of persistent chains `C` (≥ 1). Default 1000 (reference code: `num_samples=1000`).
    pub chains: usize,
    /// Block-Gibbs sweeps per [`Sampler::sample`] call `S` (≥ 1). Default 200 (GB §5.1).
    pub sweeps: usize,
    /// Seed of the chains' RNG streams. Default 0.
    pub seed: u64,
    /// Arithmetic of the sweeps' products of chain states with the prior's couplings
    /// ([`BlockConditionals::prepared_conditionals`]; [`Pcd`] only, the colour-class sampler
    /// always uses f32). Default f32; configurations written before this field read as f32.
    #[serde(default)]
    pub products: ChainProducts,
}

impl Default for PcdConfig {
    fn default() -> Self {
        Self {
            chains: 1000,
            sweeps: 200,
            seed: 0,
            products: ChainProducts::F32,
        }
    }
}

impl PcdConfig {
    /// Sets `chains`.
    pub fn chains(mut self, chains: usize) -> Self {
        self.chains = chains;
        self
    }

    /// Sets `sweeps`.
    pub fn sweeps(mut self, sweeps: usize) -> Self {
        self.sweeps = sweeps;
        self
    }

    /// Sets `seed`.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets `products`.
    pub fn products(mut self, products: ChainProducts) -> Self {
        self.products = products;
        self
    }

    /// Checks `chains ≥ 1` and `sweeps ≥ 1`.
    pub fn validate(&self) -> Result<()> {
        ensure(self.chains >= 1, "chains", || "must be at least 1".into())?;
        ensure(self.sweeps >= 1, "sweeps", || "must be at least 1".into())
    }
}

/// PCD sampler: `C` persistent chains, `S` block-Gibbs sweeps per call.
///
/// The chains are allocated on the first [`Sampler::sample`] call from the prior's block sizes;
/// using the sampler afterwards with a prior of other block sizes panics.
///
/// ```
/// # use gumbolt_core::prior::{Block, BlockConditionals, Prior};
/// # use gumbolt_core::{Mat, Sampler};
/// # use nalgebra::DMatrixView;
/// # #[derive(Clone, Debug)]
/// # struct Free; // E ≡ 0 over 2 + 2 units
/// # impl Prior for Free {
/// #     fn num_units(&self) -> usize { 4 }
/// #     fn energy_into(&self, _: DMatrixView<'_, f32>, out: &mut [f64]) { out.fill(0.0) }
/// # }
/// # impl BlockConditionals for Free {
/// #     fn block_sizes(&self) -> (usize, usize) { (2, 2) }
/// #     fn block_logits(&self, _: Block, _: DMatrixView<'_, f32>, out: &mut Mat) { out.fill(0.0) }
/// # }
/// use gumbolt_samplers::{Pcd, PcdConfig};
/// let mut pcd = Pcd::new(PcdConfig::default().chains(500).sweeps(2)).unwrap();
/// let z = pcd.sample(&Free);
/// assert_eq!(z.shape(), (500, 4));
/// let neg = pcd.negative_phase().unwrap();
/// assert!(neg.mean_z1.iter().all(|m| (m - 0.5).abs() < 0.1));
/// assert!(Pcd::new(PcdConfig::default().sweeps(0)).is_err());
/// ```
#[derive(Debug, Clone)]
pub struct Pcd {
    config: PcdConfig,
    gibbs: Option<BlockGibbs>,
}

impl Pcd {
    /// A PCD sampler with a validated configuration.
    ///
    /// # Errors
    /// [`SamplerError::InvalidConfig`](crate::SamplerError::InvalidConfig) if `chains` or
    /// `sweeps` is 0.
    pub fn new(config: PcdConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            config,
            gibbs: None,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &PcdConfig {
        &self.config
    }

    /// The underlying chains, once the first [`Sampler::sample`] call has created them.
    pub fn chains(&self) -> Option<&BlockGibbs> {
        self.gibbs.as_ref()
    }

    /// Mutable access to the chains (e.g. to re-seed or re-initialise them).
    pub fn chains_mut(&mut self) -> Option<&mut BlockGibbs> {
        self.gibbs.as_mut()
    }

    /// Drops the chains; the next call re-creates them Bernoulli(0.5).
    pub fn reset(&mut self) {
        self.gibbs = None;
    }

    /// Mean sufficient statistics of the current chains (`None` before the first call): the PCD
    /// estimate of `∇θ log Z` for an RBM (GB Eq. 6; docs/algorithms.md §1).
    pub fn negative_phase(&self) -> Option<NegativePhase> {
        self.gibbs
            .as_ref()
            .map(|g| NegativePhase::from_samples(g.state(), g.block_sizes().0))
    }

    /// `grad += (1/C) Σ_c ∂(−E_θ(z_c))/∂θ` over the current chains (`false` before the first
    /// call): the negative phase of any [`EnergyParamGradient`] prior, in its own parameter
    /// layout.
    pub fn accumulate_negative_phase<P: EnergyParamGradient + ?Sized>(
        &self,
        prior: &P,
        grad: &mut [f32],
    ) -> bool {
        match &self.gibbs {
            None => false,
            Some(g) => {
                let c = g.chains();
                let w = vec![1.0 / c as f32; c];
                prior.accumulate_neg_energy_grad(g.state().as_view(), &w, grad);
                true
            }
        }
    }
}

impl<P: BlockConditionals + Sync + ?Sized> Sampler<P> for Pcd {
    /// Runs `S` sweeps at β = 1 from the persistent state and returns the chains (`[C, n1+n2]`),
    /// through the prior's [prepared conditionals](BlockConditionals::prepared_conditionals)
    /// for the configured `products` when it has them.
    /// Inside a rayon pool of several threads the chains' stream groups are run as parallel
    /// tasks ([`BlockGibbs::run_parallel`]), with bit-identical results.
    fn sample(&mut self, prior: &P) -> &Mat {
        let sizes = prior.block_sizes();
        let cfg = &self.config;
        let g = self.gibbs.get_or_insert_with(|| {
            BlockGibbs::new(sizes.0, sizes.1, cfg.chains, cfg.seed)
                .expect("validated PCD configuration and non-empty blocks")
        });
        check_sizes(g.block_sizes(), sizes);
        match prior.prepared_conditionals(cfg.products) {
            Some(prepared) => g.run_parallel(&*prepared, cfg.sweeps),
            None => g.run_parallel(prior, cfg.sweeps),
        }
        g.state()
    }
}

/// Mean sufficient statistics of a batch of samples of a bipartite prior: `E[z1]`, `E[z2]` and
/// `E[z1 z2ᵀ]` — for an RBM exactly `∂log Z/∂a`, `∂log Z/∂b` and `∂log Z/∂W` (GB Eq. 6).
#[derive(Debug, Clone, PartialEq)]
pub struct NegativePhase {
    /// `(1/C) Σ_c z1_c` (length `n1`).
    pub mean_z1: Vec<f64>,
    /// `(1/C) Σ_c z2_c` (length `n2`).
    pub mean_z2: Vec<f64>,
    /// `(1/C) Σ_c z1_c z2_cᵀ` (`[n1, n2]`).
    pub mean_z1z2: Mat,
}

impl NegativePhase {
    /// Statistics of the rows of `samples` (`[C, n1 + n2]`, `z1` in the first `n1` columns).
    /// The outer product is one `Z1ᵀ·Z2` GEMM.
    pub fn from_samples(samples: &Mat, n1: usize) -> Self {
        let (c, n) = samples.shape();
        let n2 = n - n1;
        let inv = 1.0 / c.max(1) as f64;
        let means: Vec<f64> = samples
            .column_iter()
            .map(|col| col.iter().map(|&v| v as f64).sum::<f64>() * inv)
            .collect();
        let z1 = samples.columns(0, n1);
        let z2 = samples.columns(n1, n2);
        let mut m = Mat::zeros(n1, n2);
        gemm_tn(1.0, &z1, &z2, 0.0, &mut m);
        m /= c.max(1) as f32;
        Self {
            mean_z1: means[..n1].to_vec(),
            mean_z2: means[n1..].to_vec(),
            mean_z1z2: m,
        }
    }

    /// `[E z1 | E z2 | E z1z2ᵀ column-major]`: the layout of an RBM's parameters `[a | b | W]`
    /// (and of its exact `log_partition_grad()`).
    pub fn to_flat(&self) -> Vec<f64> {
        let mut v =
            Vec::with_capacity(self.mean_z1.len() + self.mean_z2.len() + self.mean_z1z2.len());
        v.extend_from_slice(&self.mean_z1);
        v.extend_from_slice(&self.mean_z2);
        v.extend(self.mean_z1z2.iter().map(|&x| x as f64));
        v
    }
}

//! Single-site Gibbs sampling of any binary MRF, vectorised over chains (docs/algorithms.md §8).
//!
//! Unit `i` is resampled from `p(z_i = 1 | z_{−i}) = σ(−β·g_i(z_{−i}))` with the energy gap
//! `g_i = E(z_i=1, z_{−i}) − E(z_i=0, z_{−i})` of [`SiteConditionals::site_energy_gaps`], for all
//! chains at once; a sweep visits the units in order `0..n`.

use crate::error::{Result, ensure};
use crate::kernels;
use gumbolt_core::numerics::sigmoid;
use gumbolt_core::prior::SiteConditionals;
use gumbolt_core::rng::{StreamRng, streams};
use gumbolt_core::{Mat, Sampler};
use serde::{Deserialize, Serialize};

/// Configuration of [`SiteGibbs`]. Validated by [`SiteGibbs::new`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiteGibbsConfig {
    /// Number of chains (≥ 1). Default 100.
    pub chains: usize,
    /// Sweeps per [`Sampler::sample`] call (≥ 1). Default 10.
    pub sweeps: usize,
    /// Inverse temperature β (finite, ≥ 0). Default 1.
    pub beta: f64,
    /// Seed of the chains' RNG streams. Default 0.
    pub seed: u64,
}

impl Default for SiteGibbsConfig {
    fn default() -> Self {
        Self {
            chains: 100,
            sweeps: 10,
            beta: 1.0,
            seed: 0,
        }
    }
}

impl SiteGibbsConfig {
    /// Checks the ranges documented on the fields.
    pub fn validate(&self) -> Result<()> {
        ensure(self.chains >= 1, "chains", || "must be at least 1".into())?;
        ensure(self.sweeps >= 1, "sweeps", || "must be at least 1".into())?;
        ensure(self.beta.is_finite() && self.beta >= 0.0, "beta", || {
            format!("must be finite and ≥ 0, got {}", self.beta)
        })
    }
}

/// Persistent single-site Gibbs chains for any [`SiteConditionals`] prior.
///
/// Chains are created Bernoulli(0.5) on the first [`Sampler::sample`] call; using the sampler
/// afterwards with a prior of another size panics.
#[derive(Debug, Clone)]
pub struct SiteGibbs {
    config: SiteGibbsConfig,
    state: Mat,
    uniforms: Vec<f32>,
    gaps: Vec<f64>,
    rngs: Vec<StreamRng>,
    groups: Vec<usize>,
}

impl SiteGibbs {
    /// A single-site Gibbs sampler with a validated configuration.
    pub fn new(config: SiteGibbsConfig) -> Result<Self> {
        config.validate()?;
        let rngs = streams(config.seed, kernels::streams_for(config.chains));
        Ok(Self {
            state: Mat::zeros(config.chains, 0),
            uniforms: Vec::new(),
            gaps: vec![0.0; config.chains],
            rngs,
            groups: kernels::uniform_groups(config.chains, kernels::CHAINS_PER_STREAM),
            config,
        })
    }

    /// The current chains `[C, n]` (zero columns before the first call).
    pub fn state(&self) -> &Mat {
        &self.state
    }

    /// One sweep over all units of all chains.
    pub fn sweep<P: SiteConditionals + ?Sized>(&mut self, prior: &P) {
        let n = prior.num_units();
        let c = self.config.chains;
        if self.state.ncols() != n {
            assert_eq!(
                self.state.ncols(),
                0,
                "sampler was built for {} units, prior has {n}",
                self.state.ncols()
            );
            self.state = Mat::zeros(c, n);
            kernels::fill_uniform_block(&mut self.rngs, &self.groups, c, self.state.as_mut_slice());
            self.state
                .iter_mut()
                .for_each(|v| *v = if *v < 0.5 { 1.0 } else { 0.0 });
            self.uniforms = vec![0.0; c * n];
        }
        kernels::fill_uniform_block(&mut self.rngs, &self.groups, c, &mut self.uniforms);
        let beta = self.config.beta;
        for i in 0..n {
            prior.site_energy_gaps(self.state.as_view(), i, &mut self.gaps);
            let u = &self.uniforms[i * c..(i + 1) * c];
            for ((z, &g), &u) in self.state.column_mut(i).iter_mut().zip(&self.gaps).zip(u) {
                *z = if (u as f64) < sigmoid(-beta * g) {
                    1.0
                } else {
                    0.0
                };
            }
        }
    }
}

impl<P: SiteConditionals + ?Sized> Sampler<P> for SiteGibbs {
    /// Runs the configured number of sweeps and returns the chains (`[C, n]`).
    fn sample(&mut self, prior: &P) -> &Mat {
        for _ in 0..self.config.sweeps {
            self.sweep(prior);
        }
        &self.state
    }
}

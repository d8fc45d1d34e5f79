//! Block Gibbs over the colour classes of any Boltzmann machine or MRF
//! ([`ColourConditionals`]), vectorised over chains, and PCD on it.
//!
//! One sweep at per-chain inverse temperatures β visits the classes in order; for class `c`
//! the logits of all its units are computed for all `C` chains at once
//! ([`ColourConditionals::colour_logits`]) and the units are drawn
//! `z_i ~ Bernoulli(σ(β·logit_i + (1 − β)·base_i))` (base 0 except in AIS). The units of a class
//! share no interaction, so this is an exact Gibbs update of the whole class (GB Eq. 10: the
//! energy is linear in each unit). An RBM's two sides are the two-class case; for RBMs the
//! two-block [`crate::BlockGibbs`] with its GEMM kernels stays the fast path.

use crate::error::{Result, ensure};
use crate::kernels::{self, CHAINS_PER_STREAM, Draw};
use crate::pcd::PcdConfig;
use gumbolt_core::prior::{ColourConditionals, EnergyParamGradient};
use gumbolt_core::rng::{StreamRng, streams};
use gumbolt_core::{Mat, Sampler};

/// A batch of `C` chains updated by colour-class Gibbs sweeps.
///
/// The state is one `[C, n]` column-major matrix of 0.0/1.0; buffers are allocated once. Uniforms
/// come from one Xoshiro256++ stream per [`CHAINS_PER_STREAM`] chains, so a seed fixes every
/// chain's trajectory.
///
/// ```
/// use gumbolt_core::prior::ColourConditionals;
/// use gumbolt_priors::SparseBm;
/// use gumbolt_samplers::ColourGibbs;
/// let bm = SparseBm::from_edges(3, &[(0, 1), (1, 2), (0, 2)]).unwrap(); // E ≡ 0
/// let mut g = ColourGibbs::for_prior(&bm, 1000, 7).unwrap();
/// g.run(&bm, 3);
/// assert!((g.state().mean() - 0.5).abs() < 0.03);
/// ```
#[derive(Debug, Clone)]
pub struct ColourGibbs {
    n: usize,
    classes: Vec<Vec<usize>>,
    state: Mat,
    beta: Vec<f32>,
    logits: Vec<Mat>,
    draw: Vec<f32>,
    uniforms: Vec<f32>,
    rngs: Vec<StreamRng>,
    groups: Vec<usize>,
}

impl ColourGibbs {
    /// `chains` chains over `n` units coloured by `classes` (a partition of `0..n`),
    /// initialised Bernoulli(0.5), all at β = 1.
    ///
    /// # Errors
    /// [`SamplerError::InvalidConfig`](crate::SamplerError::InvalidConfig) if `chains == 0` or
    /// the classes do not partition `0..n` into non-empty classes.
    pub fn new(n: usize, classes: Vec<Vec<usize>>, chains: usize, seed: u64) -> Result<Self> {
        ensure(chains >= 1, "chains", || "must be at least 1".into())?;
        let mut seen = vec![false; n];
        for c in &classes {
            ensure(!c.is_empty(), "colour_classes", || {
                "a class is empty".into()
            })?;
            for &i in c {
                ensure(i < n && !seen[i], "colour_classes", || {
                    format!("unit {i} is out of range or in two classes (n = {n})")
                })?;
                seen[i] = true;
            }
        }
        ensure(seen.iter().all(|&s| s), "colour_classes", || {
            "the classes do not cover every unit".into()
        })?;
        let mut rngs = streams(seed, kernels::streams_for(chains));
        let groups = kernels::uniform_groups(chains, CHAINS_PER_STREAM);
        let mut state = Mat::zeros(chains, n);
        kernels::fill_uniform_block(&mut rngs, &groups, chains, state.as_mut_slice());
        state
            .iter_mut()
            .for_each(|v| *v = if *v < 0.5 { 1.0 } else { 0.0 });
        let kmax = classes.iter().map(Vec::len).max().unwrap_or(0);
        Ok(Self {
            n,
            logits: classes
                .iter()
                .map(|c| Mat::zeros(chains, c.len()))
                .collect(),
            classes,
            state,
            beta: vec![1.0; chains],
            draw: vec![0.0; chains * kmax],
            uniforms: vec![0.0; chains * kmax],
            rngs,
            groups,
        })
    }

    /// Like [`ColourGibbs::new`] with the prior's size and colour classes.
    ///
    /// # Errors
    /// As [`ColourGibbs::new`].
    pub fn for_prior<P: ColourConditionals + ?Sized>(
        prior: &P,
        chains: usize,
        seed: u64,
    ) -> Result<Self> {
        Self::new(prior.num_units(), prior.colour_classes(), chains, seed)
    }

    /// Number of chains `C`.
    pub fn chains(&self) -> usize {
        self.state.nrows()
    }

    /// Number of units `n`.
    pub fn num_units(&self) -> usize {
        self.n
    }

    /// The colour classes.
    pub fn classes(&self) -> &[Vec<usize>] {
        &self.classes
    }

    /// The chains' state `[C, n]`.
    pub fn state(&self) -> &Mat {
        &self.state
    }

    /// Mutable state; entries must stay 0.0/1.0.
    pub fn state_mut(&mut self) -> &mut Mat {
        &mut self.state
    }

    /// Per-chain inverse temperatures.
    pub fn betas(&self) -> &[f32] {
        &self.beta
    }

    /// Mutable per-chain inverse temperatures.
    pub fn betas_mut(&mut self) -> &mut [f32] {
        &mut self.beta
    }

    /// Sets every chain's β.
    pub fn set_beta(&mut self, beta: f32) {
        self.beta.fill(beta);
    }

    /// Replaces the chains' random streams by those of [`ColourGibbs::new`] with `seed` (the
    /// draws `new` spends on the initial state skipped), keeping the states, and sets every β
    /// to 1: afterwards the chains move exactly as those of a sampler built with `seed` and
    /// given these states. In place, without allocating (PCD re-derives its streams every
    /// training iteration).
    ///
    /// ```
    /// use gumbolt_priors::SparseBm;
    /// use gumbolt_samplers::ColourGibbs;
    ///
    /// let bm = SparseBm::topology("chimera:1,1,4".parse().unwrap());
    /// let mut a = ColourGibbs::for_prior(&bm, 16, 1).unwrap();
    /// a.run(&bm, 3);
    /// let mut b = ColourGibbs::for_prior(&bm, 16, 2).unwrap();
    /// b.state_mut().copy_from(a.state());
    /// a.reseed(2);
    /// a.run(&bm, 3);
    /// b.run(&bm, 3);
    /// assert_eq!(a.state(), b.state());
    /// ```
    pub fn reseed(&mut self, seed: u64) {
        let chains = self.chains();
        let mut rngs = streams(seed, self.rngs.len());
        // `new` draws the [C, n] initial state column by column; each column's draws depend
        // only on the streams, so skipping them in blocks of columns is the same.
        let block = (self.uniforms.len() / chains).max(1);
        let mut left = self.n;
        while left > 0 {
            let cols = left.min(block);
            if self.uniforms.len() < chains * cols {
                self.uniforms.resize(chains * cols, 0.0);
            }
            kernels::fill_uniform_block(
                &mut rngs,
                &self.groups,
                chains,
                &mut self.uniforms[..chains * cols],
            );
            left -= cols;
        }
        self.rngs = rngs;
        self.beta.fill(1.0);
    }

    /// One sweep over the classes at each chain's β.
    pub fn sweep<P: ColourConditionals + ?Sized>(&mut self, prior: &P) {
        self.sweep_with_base(prior, None);
    }

    /// One sweep drawing `z_i ~ σ(β·logit_i + (1 − β)·base_i)`; `base` (length `n`) is AIS's
    /// factorial base field.
    pub fn sweep_with_base<P: ColourConditionals + ?Sized>(
        &mut self,
        prior: &P,
        base: Option<&[Vec<f32>]>,
    ) {
        debug_assert_eq!(prior.num_units(), self.n, "prior/sampler sizes");
        let c = self.chains();
        for (k, class) in self.classes.iter().enumerate() {
            let len = class.len();
            prior.colour_logits(k, self.state.as_view(), &mut self.logits[k]);
            let out = &mut self.draw[..c * len];
            let draw = Draw {
                logits: self.logits[k].as_slice(),
                beta: &self.beta,
                base: base.map(|b| b[k].as_slice()),
                out,
            };
            kernels::draw_block(&mut self.rngs, &self.groups, draw);
            let s = self.state.as_mut_slice();
            for (j, &i) in class.iter().enumerate() {
                s[i * c..(i + 1) * c].copy_from_slice(&out[j * c..(j + 1) * c]);
            }
        }
    }

    /// `sweeps` sweeps (under a flush-to-zero guard).
    pub fn run<P: ColourConditionals + ?Sized>(&mut self, prior: &P, sweeps: usize) {
        let _ftz = gumbolt_core::fpmode::FlushToZero::enable();
        for _ in 0..sweeps {
            self.sweep(prior);
        }
    }

    /// Draws every unit independently `z_i ~ Bernoulli(σ(field_i))` (AIS's exact base samples;
    /// `field` per class as in [`ColourGibbs::sweep_with_base`]).
    pub(crate) fn sample_from_field(&mut self, field: &[Vec<f32>]) {
        let zeros = vec![0.0; self.chains()];
        let saved = std::mem::replace(&mut self.beta, zeros);
        for l in &mut self.logits {
            l.fill(0.0);
        }
        // β = 0: σ(0·l + 1·base) = σ(base), independent of the state.
        let c = self.chains();
        for (k, class) in self.classes.iter().enumerate() {
            let len = class.len();
            let out = &mut self.draw[..c * len];
            let draw = Draw {
                logits: self.logits[k].as_slice(),
                beta: &self.beta,
                base: Some(&field[k]),
                out,
            };
            kernels::draw_block(&mut self.rngs, &self.groups, draw);
            let s = self.state.as_mut_slice();
            for (j, &i) in class.iter().enumerate() {
                s[i * c..(i + 1) * c].copy_from_slice(&out[j * c..(j + 1) * c]);
            }
        }
        self.beta = saved;
    }
}

/// PCD (GB §5; Tieleman 2008) on colour-class Gibbs chains: `C` persistent chains advanced `S`
/// sweeps at β = 1 per [`Sampler::sample`] call; their states are the negative-phase samples of
/// `∇θ log Z = E_p[∇θ(−E)]` (GB Eq. 6) for any [`ColourConditionals`] prior.
///
/// ```
/// use gumbolt_core::Sampler;
/// use gumbolt_priors::SparseBm;
/// use gumbolt_samplers::{ColourPcd, PcdConfig};
/// let bm = SparseBm::topology("zephyr:1,2".parse().unwrap());
/// let mut pcd = ColourPcd::new(PcdConfig::default().chains(100).sweeps(5)).unwrap();
/// assert_eq!(pcd.sample(&bm).shape(), (100, 24));
/// ```
#[derive(Debug, Clone)]
pub struct ColourPcd {
    config: PcdConfig,
    gibbs: Option<ColourGibbs>,
}

impl ColourPcd {
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

    /// The chains, once the first call created them.
    pub fn chains(&self) -> Option<&ColourGibbs> {
        self.gibbs.as_ref()
    }

    /// Mutable chains (e.g. to re-seed them).
    pub fn chains_mut(&mut self) -> Option<&mut ColourGibbs> {
        self.gibbs.as_mut()
    }

    /// `grad += (1/C) Σ_c ∂(−E(z_c))/∂θ` over the current chains (`false` before the first call).
    pub fn accumulate_negative_phase<P: EnergyParamGradient + ?Sized>(
        &self,
        prior: &P,
        grad: &mut [f32],
    ) -> bool {
        match &self.gibbs {
            None => false,
            Some(g) => {
                let c = g.chains();
                prior.accumulate_neg_energy_grad(
                    g.state().as_view(),
                    &vec![1.0 / c as f32; c],
                    grad,
                );
                true
            }
        }
    }
}

impl<P: ColourConditionals + ?Sized> Sampler<P> for ColourPcd {
    /// Runs `S` sweeps at β = 1 from the persistent state and returns the chains (`[C, n]`).
    fn sample(&mut self, prior: &P) -> &Mat {
        let cfg = &self.config;
        let g = self.gibbs.get_or_insert_with(|| {
            ColourGibbs::for_prior(prior, cfg.chains, cfg.seed)
                .expect("validated PCD configuration and a valid colouring")
        });
        assert_eq!(
            g.num_units(),
            prior.num_units(),
            "ColourPcd: sampler built for another prior size"
        );
        g.run(prior, cfg.sweeps);
        g.state()
    }
}

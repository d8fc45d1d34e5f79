//! Block Gibbs sampling of a bipartite prior, vectorised over chains (docs/algorithms.md §7.1).
//!
//! For an RBM (GB Eq. 4, `−E(z) = aᵀz1 + bᵀz2 + z1ᵀWz2`) one sweep at inverse temperature β is
//!
//! 1. `z2 ~ Bernoulli(σ(β(Z1·W + b)))` — one `[C, n2]` GEMM for all chains,
//! 2. `z1 ~ Bernoulli(σ(β(Z2·Wᵀ + a)))` — one `[C, n1]` GEMM,
//!
//! through [`BlockConditionals::block_logits`], so it works for any prior whose two blocks are
//! conditionally factorial. Each chain (row) has its own β, which is what parallel tempering
//! needs: the GEMM is done once and each row's logits are scaled inside the Bernoulli kernel.

use crate::error::{Result, ensure};
use crate::kernels::{self, CHAINS_PER_STREAM, Draw};
use gumbolt_core::Mat;
use gumbolt_core::prior::{Block, BlockConditionals};
use gumbolt_core::rng::{StreamRng, streams};
use nalgebra::DMatrixView;

/// A batch of `C` block-Gibbs chains over a bipartite prior with blocks of sizes `(n1, n2)`.
///
/// The state is one `[C, n1 + n2]` column-major matrix: columns `0..n1` (a contiguous
/// `[C, n1]` block) hold `z1`, columns `n1..` hold `z2`. Entries are 0.0/1.0. All buffers are
/// allocated once; a sweep allocates nothing. Uniforms come from one Xoshiro256++ stream per
/// [`CHAINS_PER_STREAM`] chains, so a seed fixes the trajectory of every chain.
///
/// ```
/// # use gumbolt_core::prior::{Block, BlockConditionals, Prior};
/// # use gumbolt_core::Mat;
/// # use nalgebra::DMatrixView;
/// # #[derive(Clone, Debug)]
/// # struct Free; // E ≡ 0 over 2 + 3 units
/// # impl Prior for Free {
/// #     fn num_units(&self) -> usize { 5 }
/// #     fn energy_into(&self, _: DMatrixView<'_, f32>, out: &mut [f64]) { out.fill(0.0) }
/// # }
/// # impl BlockConditionals for Free {
/// #     fn block_sizes(&self) -> (usize, usize) { (2, 3) }
/// #     fn block_logits(&self, _: Block, _: DMatrixView<'_, f32>, out: &mut Mat) { out.fill(0.0) }
/// # }
/// use gumbolt_samplers::BlockGibbs;
/// let mut gibbs = BlockGibbs::new(2, 3, 1000, 42).unwrap();
/// gibbs.run(&Free, 5);
/// let mean = gibbs.state().mean();
/// assert!((mean - 0.5).abs() < 0.05);
/// ```
#[derive(Debug, Clone)]
pub struct BlockGibbs {
    n1: usize,
    n2: usize,
    state: Mat,
    beta: Vec<f32>,
    logits1: Mat,
    logits2: Mat,
    uniforms: Vec<f32>,
    rngs: Vec<StreamRng>,
    groups: Vec<usize>,
    /// Scratch chains of [`BlockGibbs::run_parallel`], one per RNG stream group.
    shards: Vec<BlockGibbs>,
}

impl BlockGibbs {
    /// `chains` chains over blocks of sizes `(n1, n2)`, initialised Bernoulli(0.5) (the exact
    /// distribution of the zero-initialised RBM, docs/algorithms.md §7.2), all at β = 1.
    ///
    /// # Errors
    /// [`SamplerError::InvalidConfig`](crate::SamplerError::InvalidConfig) if `chains == 0` or a
    /// block is empty.
    pub fn new(n1: usize, n2: usize, chains: usize, seed: u64) -> Result<Self> {
        ensure(chains >= 1, "chains", || "must be at least 1".into())?;
        crate::error::ensure_blocks(n1, n2)?;
        let rngs = streams(seed, kernels::streams_for(chains));
        Ok(Self::with_streams(
            n1,
            n2,
            rngs,
            kernels::uniform_groups(chains, CHAINS_PER_STREAM),
        ))
    }

    /// Chains drawing from the given streams: stream `g` serves the `groups[g]` consecutive
    /// chains of group `g` (`Σ groups` chains in all). Initialised Bernoulli(0.5) from them.
    pub(crate) fn with_streams(
        n1: usize,
        n2: usize,
        mut rngs: Vec<StreamRng>,
        groups: Vec<usize>,
    ) -> Self {
        assert_eq!(rngs.len(), groups.len(), "one RNG stream per chain group");
        let chains: usize = groups.iter().sum();
        let n = n1 + n2;
        let mut state = Mat::zeros(chains, n);
        kernels::fill_uniform_block(&mut rngs, &groups, chains, state.as_mut_slice());
        state
            .iter_mut()
            .for_each(|v| *v = if *v < 0.5 { 1.0 } else { 0.0 });
        Self {
            n1,
            n2,
            state,
            beta: vec![1.0; chains],
            logits1: Mat::zeros(chains, n1),
            logits2: Mat::zeros(chains, n2),
            uniforms: vec![0.0; chains * n1.max(n2)],
            rngs,
            groups,
            shards: Vec::new(),
        }
    }

    /// Gives the chains the RNG streams that [`BlockGibbs::new`] with `seed` would leave them
    /// after drawing its initial state, and β = 1, keeping the current state: the same chains as
    /// a fresh sampler whose state was then overwritten with this one, without reallocating
    /// anything (PCD reseeds its chains every training iteration, so that a resumed run
    /// continues bit-exactly).
    ///
    /// ```
    /// use gumbolt_samplers::BlockGibbs;
    /// let mut a = BlockGibbs::new(3, 4, 40, 1).unwrap();
    /// let mut b = BlockGibbs::new(3, 4, 40, 7).unwrap();
    /// b.state_mut().copy_from(a.state());
    /// a.reseed(7);
    /// assert_eq!(a.state(), b.state());
    /// ```
    pub fn reseed(&mut self, seed: u64) {
        let chains = self.chains();
        let mut rngs = streams(seed, self.rngs.len());
        // `with_streams` draws the [C, n1 + n2] initial state column by column; each column's
        // draws depend only on the streams, so skipping them in blocks of columns is the same.
        for cols in [self.n1, self.n2] {
            let u = &mut self.uniforms[..chains * cols];
            kernels::fill_uniform_block(&mut rngs, &self.groups, chains, u);
        }
        self.rngs = rngs;
        self.beta.fill(1.0);
    }

    /// Like [`BlockGibbs::new`] with the block sizes of `prior`.
    pub fn for_prior<P: BlockConditionals + ?Sized>(
        prior: &P,
        chains: usize,
        seed: u64,
    ) -> Result<Self> {
        let (n1, n2) = prior.block_sizes();
        Self::new(n1, n2, chains, seed)
    }

    /// Number of chains `C`.
    pub fn chains(&self) -> usize {
        self.state.nrows()
    }

    /// `(n1, n2)`.
    pub fn block_sizes(&self) -> (usize, usize) {
        (self.n1, self.n2)
    }

    /// The chains' state `[C, n1 + n2]`, one configuration per row.
    pub fn state(&self) -> &Mat {
        &self.state
    }

    /// Mutable state (e.g. to set initial configurations); entries must stay 0.0/1.0.
    pub fn state_mut(&mut self) -> &mut Mat {
        &mut self.state
    }

    /// The `z1` block `[C, n1]` (a view, no copy).
    pub fn z1(&self) -> DMatrixView<'_, f32> {
        self.state.columns(0, self.n1)
    }

    /// The `z2` block `[C, n2]` (a view, no copy).
    pub fn z2(&self) -> DMatrixView<'_, f32> {
        self.state.columns(self.n1, self.n2)
    }

    /// Per-chain inverse temperatures β (length `C`).
    pub fn betas(&self) -> &[f32] {
        &self.beta
    }

    /// Mutable per-chain inverse temperatures.
    pub fn betas_mut(&mut self) -> &mut [f32] {
        &mut self.beta
    }

    /// Sets every chain's inverse temperature to `beta`.
    pub fn set_beta(&mut self, beta: f32) {
        self.beta.fill(beta);
    }

    /// The unscaled logits `logits(One | z2)` (`[C, n1]`) computed in the last sweep from the
    /// current `z2`. With `h2 = logits(Two | 0)` the current joint energy of each chain is
    /// `E(z) = −h2ᵀz2 − z1ᵀ·logits(One | z2)`.
    pub fn last_logits_one(&self) -> &Mat {
        &self.logits1
    }

    /// The unscaled logits `logits(Two | z1)` (`[C, n2]`) computed at the start of the last sweep
    /// from the `z1` the sweep started with.
    pub fn last_logits_two(&self) -> &Mat {
        &self.logits2
    }

    /// One sweep of every chain at its own β: `z2 | z1`, then `z1 | z2`.
    pub fn sweep<P: BlockConditionals + ?Sized>(&mut self, prior: &P) {
        self.compute_logits_two(prior);
        self.sample_two();
        self.compute_logits_one(prior);
        self.sample_one(None);
    }

    /// `sweeps` sweeps.
    pub fn run<P: BlockConditionals + ?Sized>(&mut self, prior: &P, sweeps: usize) {
        let _ftz = gumbolt_core::fpmode::FlushToZero::enable();
        for _ in 0..sweeps {
            self.sweep(prior);
        }
    }

    /// [`BlockGibbs::run`] with the chains split over the threads of the current rayon pool:
    /// each group of chains that shares an RNG stream ([`CHAINS_PER_STREAM`] chains) becomes
    /// one task that runs all `sweeps` sweeps, so idle threads of the pool pick up whole groups.
    ///
    /// The chains never interact, so for a prior whose `block_logits` computes each row from
    /// that row alone, bit for bit (every prior of the toolkit: the RBM's
    /// [`affine_unpacked`](gumbolt_core::linalg::affine_unpacked) and matrixmultiply's GEMMs
    /// do not depend on the other rows), the state, the streams and the last logits end
    /// bit-identical to [`BlockGibbs::run`] (tested), whatever the number of threads. Outside a
    /// rayon pool, or in a pool of one thread, this is [`BlockGibbs::run`].
    pub fn run_parallel<P: BlockConditionals + Sync + ?Sized>(&mut self, prior: &P, sweeps: usize) {
        if self.groups.len() < 2
            || rayon::current_thread_index().is_none()
            || rayon::current_num_threads() < 2
        {
            self.run(prior, sweeps);
            return;
        }
        self.scatter();
        rayon::scope(|s| {
            for shard in self.shards.iter_mut() {
                s.spawn(move |_| shard.run(prior, sweeps));
            }
        });
        self.gather();
    }

    /// Copies each stream group's rows, β and stream into its scratch shard.
    fn scatter(&mut self) {
        let (n1, n2) = (self.n1, self.n2);
        if self.shards.len() != self.groups.len() {
            self.shards = self
                .groups
                .iter()
                .map(|&rows| Self {
                    n1,
                    n2,
                    state: Mat::zeros(rows, n1 + n2),
                    beta: vec![1.0; rows],
                    logits1: Mat::zeros(rows, n1),
                    logits2: Mat::zeros(rows, n2),
                    uniforms: vec![0.0; rows * n1.max(n2)],
                    rngs: Vec::new(),
                    groups: vec![rows],
                    shards: Vec::new(),
                })
                .collect();
        }
        let mut start = 0;
        for (shard, rng) in self.shards.iter_mut().zip(&self.rngs) {
            let rows = shard.chains();
            copy_rows(&self.state, start, &mut shard.state, 0, rows);
            shard.beta.copy_from_slice(&self.beta[start..start + rows]);
            shard.rngs.clear();
            shard.rngs.push(rng.clone());
            start += rows;
        }
    }

    /// Copies the shards' rows, streams and last logits back (the inverse of `scatter`).
    fn gather(&mut self) {
        let mut start = 0;
        for (shard, rng) in self.shards.iter().zip(self.rngs.iter_mut()) {
            let rows = shard.chains();
            copy_rows(&shard.state, 0, &mut self.state, start, rows);
            copy_rows(&shard.logits1, 0, &mut self.logits1, start, rows);
            copy_rows(&shard.logits2, 0, &mut self.logits2, start, rows);
            *rng = shard.rngs[0].clone();
            start += rows;
        }
    }

    /// `logits2 ← logits(Two | z1)` (one GEMM).
    pub(crate) fn compute_logits_two<P: BlockConditionals + ?Sized>(&mut self, prior: &P) {
        debug_assert_eq!(
            prior.block_sizes(),
            (self.n1, self.n2),
            "prior/sampler block sizes"
        );
        let z1 = self.state.columns(0, self.n1);
        prior.block_logits(Block::Two, z1, &mut self.logits2);
    }

    /// `logits1 ← logits(One | z2)` (one GEMM).
    pub(crate) fn compute_logits_one<P: BlockConditionals + ?Sized>(&mut self, prior: &P) {
        let z2 = self.state.columns(self.n1, self.n2);
        prior.block_logits(Block::One, z2, &mut self.logits1);
    }

    /// `z2 ~ σ(β·logits2)`.
    pub(crate) fn sample_two(&mut self) {
        let c = self.chains();
        let draw = Draw {
            logits: self.logits2.as_slice(),
            beta: &self.beta,
            base: None,
            out: &mut self.state.as_mut_slice()[c * self.n1..],
        };
        kernels::draw_block(&mut self.rngs, &self.groups, draw);
    }

    /// `z1 ~ σ(β·logits1 + (1 − β)·base)` (`base` is AIS's base-model field, else 0).
    pub(crate) fn sample_one(&mut self, base: Option<&[f32]>) {
        let c = self.chains();
        let draw = Draw {
            logits: self.logits1.as_slice(),
            beta: &self.beta,
            base,
            out: &mut self.state.as_mut_slice()[..c * self.n1],
        };
        kernels::draw_block(&mut self.rngs, &self.groups, draw);
    }

    /// Draws `z1 ~ Bernoulli(σ(field))` independently for every chain (AIS's exact base
    /// samples). `field` has length `n1`.
    pub(crate) fn sample_one_from_field(&mut self, field: &[f32]) {
        let c = self.chains();
        for (j, &h) in field.iter().enumerate() {
            self.logits1.column_mut(j).fill(h);
        }
        let ones = vec![1.0f32; c];
        let draw = Draw {
            logits: self.logits1.as_slice(),
            beta: &ones,
            base: None,
            out: &mut self.state.as_mut_slice()[..c * self.n1],
        };
        kernels::draw_block(&mut self.rngs, &self.groups, draw);
    }

    /// Joint energies `E(z) = −h2ᵀz2 − z1ᵀ·logits(One | z2)` of every chain after a sweep, from
    /// the logits the sweep computed (O(C·n), no GEMM). `h2 = logits(Two | 0)`.
    pub(crate) fn energies_after_sweep(&self, h2: &[f32], out: &mut [f64]) {
        let c = self.chains();
        out.fill(0.0);
        let s = self.state.as_slice();
        kernels::rowwise_dot(&s[..c * self.n1], self.logits1.as_slice(), c, out);
        kernels::rowwise_dot_vec(&s[c * self.n1..], h2, c, out);
        out.iter_mut().for_each(|e| *e = -*e);
    }
}

/// `h = logits(side | 0)`: the field of block `side` when the other block is all zero (for an
/// RBM, `a` for [`Block::One`] and `b` for [`Block::Two`]).
pub fn block_field<P: BlockConditionals + ?Sized>(prior: &P, side: Block) -> Vec<f32> {
    let (n1, n2) = prior.block_sizes();
    let (n_side, n_other) = match side {
        Block::One => (n1, n2),
        Block::Two => (n2, n1),
    };
    let zero = Mat::zeros(1, n_other);
    let mut out = Mat::zeros(1, n_side);
    prior.block_logits(side, zero.as_view(), &mut out);
    out.as_slice().to_vec()
}

/// Copies rows `from..from + rows` of `src` to rows `to..to + rows` of `dst` (same width).
fn copy_rows(src: &Mat, from: usize, dst: &mut Mat, to: usize, rows: usize) {
    let (rs, rd) = (src.nrows(), dst.nrows());
    for (s, d) in src
        .as_slice()
        .chunks_exact(rs)
        .zip(dst.as_mut_slice().chunks_exact_mut(rd))
    {
        d[to..to + rows].copy_from_slice(&s[from..from + rows]);
    }
}

/// Asserts (programming error) that a sampler built for `have` is used with a prior of `want`.
pub(crate) fn check_sizes(have: (usize, usize), want: (usize, usize)) {
    assert_eq!(
        have, want,
        "sampler was built for block sizes {have:?} but the prior has {want:?}"
    );
}

const _: () = assert!(CHAINS_PER_STREAM > 0);

//! Priors over binary units: capability traits.
//!
//! A prior is an energy model `p_θ(z) = e^{−E_θ(z)}/Z_θ` over `n` binary units (GB Eq. 3).
//! GumBolt also evaluates the *same* polynomial energy at relaxed points `ζ ∈ [0,1]^n`
//! (GB Eq. 7); Theorem 1 shows the relaxed energy stays within the vertex extremes.
//!
//! The capabilities are separate traits so an algorithm asks only for what it uses:
//!
//! | trait | capability | used by |
//! |---|---|---|
//! | [`Prior`] | `E(ζ)` on a batch of rows | everything |
//! | [`EnergyGradient`] | `∂E/∂ζ` (GB Eq. 11) | backpropagation into the encoder |
//! | [`Parametric`] | θ as one flat vector, `∂(−E)/∂θ` | training (positive and negative phase, Eq. 6) |
//! | [`ExactPartition`] | exact `log Z` and `∇θ log Z` | tests, small models, GumBolt-nW |
//! | [`BlockConditionals`] | `p(z_side = 1 | other side)` logits | block Gibbs, PT, AIS, bridge sampling |
//! | [`SiteConditionals`] | single-site energy gaps `g_i` | single-site Gibbs of any MRF |
//! | [`ColourConditionals`] | logits of one colour class given the rest | colour-class Gibbs, PCD, PT, AIS on any graph |
//!
//! Rows of every batch are configurations; columns are units. Matrices are f32 (hot paths),
//! energies and log-partition functions f64.

use crate::Mat;
use crate::error::Result;
use nalgebra::DMatrixView;

/// An energy `E_θ(z)` over `n` binary units that can also be evaluated at relaxed points
/// `ζ ∈ [0,1]^n` (GB Eqs. 3, 7): the multilinear extension of the binary energy.
pub trait Prior: dyn_clone::DynClone + Send + Sync + std::fmt::Debug {
    /// Number of binary units `n`.
    fn num_units(&self) -> usize;

    /// Writes `E_θ(ζ_r)` for every row `ζ_r` of `zeta` (`[N, n]`) into `out` (length `N`).
    fn energy_into(&self, zeta: DMatrixView<'_, f32>, out: &mut [f64]);
}
dyn_clone::clone_trait_object!(Prior);

/// Conveniences for every [`Prior`].
pub trait PriorExt: Prior {
    /// `E_θ(ζ_r)` for every row of `zeta`, allocated.
    ///
    /// ```
    /// # use gumbolt_core::prior::{Prior, PriorExt};
    /// # use nalgebra::{DMatrix, DMatrixView};
    /// #[derive(Clone, Debug)]
    /// struct Field(f64); // E(z) = h·Σz
    /// impl Prior for Field {
    ///     fn num_units(&self) -> usize { 2 }
    ///     fn energy_into(&self, z: DMatrixView<'_, f32>, out: &mut [f64]) {
    ///         for (r, o) in out.iter_mut().enumerate() {
    ///             *o = self.0 * z.row(r).iter().map(|&v| v as f64).sum::<f64>();
    ///         }
    ///     }
    /// }
    /// let e = Field(2.0).energies(&DMatrix::from_row_slice(2, 2, &[1.0f32, 1.0, 0.5, 0.0]));
    /// assert_eq!(e, vec![4.0, 1.0]);
    /// ```
    fn energies(&self, zeta: &Mat) -> Vec<f64> {
        let mut out = vec![0.0; zeta.nrows()];
        self.energy_into(zeta.as_view(), &mut out);
        out
    }
}
impl<P: Prior + ?Sized> PriorExt for P {}

/// Gradient of the relaxed energy with respect to ζ: `∂E/∂ζ_i = g_i(ζ_{−i})` (GB Eq. 11).
///
/// **Contract.** `out` may arrive with any shape (the GumBolt model passes a `0 × 0` buffer on
/// its first call and reuses it afterwards): the implementation must resize it to `[N, n]`
/// (e.g. `if out.shape() != (n_rows, n) { *out = Mat::zeros(n_rows, n) }`) and overwrite every
/// entry.
pub trait EnergyGradient: Prior {
    /// Writes `∂E/∂ζ` at every row of `zeta` into `out`, resized to `[N, n]` if it has another
    /// shape.
    fn energy_grad_into(&self, zeta: DMatrixView<'_, f32>, out: &mut Mat);
}

/// Parameters θ of a prior, stored as one flat vector (the layout is the implementor's and is
/// documented there), and the gradient of `−E` with respect to them.
pub trait Parametric: Prior {
    /// θ as one flat slice.
    fn params(&self) -> &[f32];
    /// Mutable θ (an optimiser writes here).
    fn params_mut(&mut self) -> &mut [f32];
}

/// Gradient of the negative energy with respect to θ, weighted over rows.
///
/// With `weights = 1/C` on `C` model samples this is the PCD estimate of `∇θ log Z =
/// E_p[∇θ(−E)]` (GB Eq. 6, the negative phase); with importance weights on relaxed posterior
/// samples it is the positive (data) phase.
pub trait EnergyParamGradient: Parametric {
    /// `grad += Σ_r weights[r] · ∂(−E_θ(ζ_r))/∂θ`.
    fn accumulate_neg_energy_grad(
        &self,
        zeta: DMatrixView<'_, f32>,
        weights: &[f32],
        grad: &mut [f32],
    );
}

/// Exact log-partition function where it is tractable.
pub trait ExactPartition: Prior {
    /// `log Z_θ = log Σ_z e^{−E_θ(z)}` (GB Eq. 3), or [`crate::CoreError::Intractable`].
    fn log_partition(&self) -> Result<f64>;

    /// `∇θ log Z_θ = E_p[∇θ(−E)]` (GB Eq. 6), in the layout of [`Parametric::params`].
    /// Default: not available ([`crate::CoreError::Intractable`] with `limit` 0).
    fn log_partition_grad(&self) -> Result<Vec<f64>> {
        Err(crate::CoreError::Intractable {
            what: "log-partition gradient",
            units: self.num_units(),
            limit: 0,
        })
    }
}

/// The two blocks of a bipartite prior (GB Eq. 4: `z = [z1, z2]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Block {
    /// `z1`, units `0..n1`.
    One,
    /// `z2`, units `n1..n1+n2`.
    Two,
}

impl Block {
    /// The other block.
    pub fn other(self) -> Block {
        match self {
            Block::One => Block::Two,
            Block::Two => Block::One,
        }
    }
}

/// Conditionals of a bipartite prior, where each block is conditionally factorial given the
/// other: the capability block Gibbs, parallel tempering, AIS and bridge sampling need.
///
/// For an RBM (`−E = aᵀz1 + bᵀz2 + z1ᵀWz2`): `logits(Two | z1) = b + Wᵀz1` and
/// `logits(One | z2) = a + W z2` (docs/algorithms.md §1). The energy must be
/// `E(z) = −h1ᵀz1 − z2ᵀ logits(Two | z1)` with `h1 = logits(One | 0)`, i.e. linear in each block.
pub trait BlockConditionals: Prior {
    /// `(n1, n2)`; units `0..n1` form [`Block::One`] and `n1..n1+n2` form [`Block::Two`].
    fn block_sizes(&self) -> (usize, usize);

    /// Writes the logits of `p(z_side = 1 | other block)` at inverse temperature 1 for every
    /// row of `other` (`[C, n_other]`) into `out` (`[C, n_side]`).
    fn block_logits(&self, side: Block, other: DMatrixView<'_, f32>, out: &mut Mat);

    /// The same conditionals prepared for many sweeps with these parameters through
    /// `products` (e.g. an RBM's couplings split and packed for the matrix unit once, not at
    /// every sweep), or `None` (the default) when the prior has no such form, `products` is
    /// [`ChainProducts::F32`] or the CPU cannot run it: then `self` is used as it is. Chains
    /// with 0/1 states only: the prepared form may assume it.
    fn prepared_conditionals(
        &self,
        products: ChainProducts,
    ) -> Option<Box<dyn BlockConditionals + '_>> {
        let _ = products;
        None
    }
}

/// The arithmetic of the products of Gibbs chains' 0/1 states with a prior's couplings in
/// [`BlockConditionals::prepared_conditionals`] (the PCD negative phase's sweeps).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum ChainProducts {
    /// f32 GEMMs (the default): results identical on every CPU with the same vector width.
    #[default]
    F32,
    /// Couplings split once into three bf16 parts that sum to them exactly, so every product
    /// with a 0/1 state is exact, summed in f32 on Intel AMX
    /// ([`BinaryProductWeights`](crate::linalg::BinaryProductWeights)): an f32 GEMM's
    /// accuracy, not its bits (the sums come in another order). f32 on CPUs without AMX.
    Bf16x3,
}

impl ChainProducts {
    /// What this CPU runs when `self` is asked for: `Bf16x3` only where
    /// [`BinaryProductWeights::available`](crate::linalg::BinaryProductWeights::available).
    pub fn effective(self) -> ChainProducts {
        match self {
            ChainProducts::Bf16x3 if crate::linalg::BinaryProductWeights::available() => self,
            _ => ChainProducts::F32,
        }
    }
}

impl std::fmt::Display for ChainProducts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ChainProducts::F32 => "f32",
            ChainProducts::Bf16x3 => "bf16x3",
        })
    }
}

impl std::str::FromStr for ChainProducts {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "f32" => Ok(ChainProducts::F32),
            "bf16x3" => Ok(ChainProducts::Bf16x3),
            other => Err(format!(
                "chain products must be f32 or bf16x3, not {other:?}"
            )),
        }
    }
}

/// Single-site conditionals of a general binary MRF.
///
/// `g_i(z_{−i}) = E(z_i=1, z_{−i}) − E(z_i=0, z_{−i})`, so `p(z_i=1 | z_{−i}) = σ(−g_i)`
/// (docs/algorithms.md §8). At relaxed points `g_i(ζ_{−i}) = ∂E/∂ζ_i` (GB Eq. 11).
pub trait SiteConditionals: Prior {
    /// Writes `g_i` for every row (chain) of `z` (`[C, n]`) into `out` (length `C`).
    fn site_energy_gaps(&self, z: DMatrixView<'_, f32>, i: usize, out: &mut [f64]);
}

/// Conditionals over a proper colouring of the prior's interaction graph: the units of one
/// colour class share no interaction term, so given the other units they are independent
/// Bernoullis. Block Gibbs over the classes (one class after the other, each class for all
/// chains at once) is then a valid Gibbs sweep for any Boltzmann machine or MRF (GB §3, App. A:
/// the energy is multilinear, Eq. 10). An RBM's two sides are the two-class special case of
/// [`BlockConditionals`].
///
/// **Contract.** `colour_classes` partitions `0..n` (every unit in exactly one class, no class
/// empty) and never changes for a given prior; no interaction term of the energy contains two
/// units of one class. `colour_logits(c, z, out)` writes, for every row (chain) `r` of `z`
/// (`[C, n]`, entries 0/1) and the `k`-th unit `i` of class `c`,
/// `out[r, k] = −g_i(z_r) = E(z_i = 0, z_−i) − E(z_i = 1, z_−i)` (the logit of
/// `p(z_i = 1 | z_−i)` at β = 1); `out` arrives with shape `[C, |class c|]`. The columns of
/// class `c` of `z` may hold anything (they are not read by a correct implementation).
///
/// ```
/// # use gumbolt_core::prior::{ColourConditionals, Prior};
/// # use gumbolt_core::Mat;
/// # use nalgebra::DMatrixView;
/// /// A chain of three units, E = −z0·z1 − z1·z2: colours {0, 2} and {1}.
/// #[derive(Clone, Debug)]
/// struct Chain3;
/// impl Prior for Chain3 {
///     fn num_units(&self) -> usize { 3 }
///     fn energy_into(&self, z: DMatrixView<'_, f32>, out: &mut [f64]) {
///         for (r, o) in out.iter_mut().enumerate() {
///             *o = -((z[(r, 0)] * z[(r, 1)] + z[(r, 1)] * z[(r, 2)]) as f64);
///         }
///     }
/// }
/// impl ColourConditionals for Chain3 {
///     fn colour_classes(&self) -> Vec<Vec<usize>> { vec![vec![0, 2], vec![1]] }
///     fn colour_logits(&self, c: usize, z: DMatrixView<'_, f32>, out: &mut Mat) {
///         for r in 0..z.nrows() {
///             if c == 0 {
///                 out[(r, 0)] = z[(r, 1)];
///                 out[(r, 1)] = z[(r, 1)];
///             } else {
///                 out[(r, 0)] = z[(r, 0)] + z[(r, 2)];
///             }
///         }
///     }
/// }
/// let z = Mat::from_row_slice(1, 3, &[1.0, 0.0, 1.0]);
/// let mut out = Mat::zeros(1, 1);
/// Chain3.colour_logits(1, z.as_view(), &mut out);
/// assert_eq!(out[(0, 0)], 2.0);
/// ```
pub trait ColourConditionals: Prior {
    /// The colour classes: lists of unit indices partitioning `0..n`.
    fn colour_classes(&self) -> Vec<Vec<usize>>;

    /// Writes the logits of `p(z_i = 1 | rest)` of the units of class `class` for every row of
    /// `z` (`[C, n]`) into `out` (`[C, |class|]`), at inverse temperature 1.
    fn colour_logits(&self, class: usize, z: DMatrixView<'_, f32>, out: &mut Mat);
}

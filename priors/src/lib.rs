//! # gumbolt-priors
//!
//! Priors over binary latent units for the gumbolt toolkit (Khoshaman & Amin, *GumBolt:
//! Extending Gumbel trick to Boltzmann priors*, NeurIPS 2018), implementing the capability
//! traits of [`gumbolt_core::prior`]:
//!
//! | prior | energy | exact `log Z` |
//! |---|---|---|
//! | [`Rbm`] | `−E = aᵀz1 + bᵀz2 + z1ᵀWz2` (GB Eq. 4, docs/algorithms.md §1) | sum the larger side out, Gray-code enumerate the smaller (≤ 24 units) |
//! | [`FactorialBernoulli`] | `E = −hᵀz` | `Σ softplus(h_i)`, any size |
//! | [`PolynomialMrf`] | `E = Σ_S c_S Π_{i∈S} z_i`, any order (GB App. A, docs/algorithms.md §8) | enumeration (≤ 24 units) |
//! | [`SparseBm`] | `−E = hᵀz + Σ_(i,j)∈G w_ij z_i z_j` on any graph (Chimera, Pegasus, Zephyr: [`Topology`]) | enumeration (≤ 24 units) |
//!
//! Every energy is the multilinear extension of the binary energy, so it can be evaluated at
//! relaxed points `ζ ∈ [0,1]^n` (GB Eq. 7); Theorem 1 keeps it within its vertex extremes.
//! Batches are `[N, n]` f32 matrices (rows are configurations); energies and log-partition
//! functions are f64.
//!
//! ```
//! use gumbolt_core::prior::{ExactPartition, PriorExt};
//! use gumbolt_priors::{PolynomialMrf, Rbm};
//! let mut rng = gumbolt_core::rng::root_rng(42);
//! let rbm = Rbm::random(6, 40, 0.5, &mut rng);
//! // Exact log Z: z2 (40 units) summed out, z1 (6 units) enumerated.
//! let log_z = rbm.log_partition().unwrap();
//! // The same energy as a polynomial MRF, enumerated over all 46 units, would be intractable;
//! // on a small model the two agree.
//! let small = Rbm::random(3, 4, 0.5, &mut rng);
//! let mrf = PolynomialMrf::from(&small);
//! assert!((small.log_partition().unwrap() - mrf.log_partition().unwrap()).abs() < 1e-9);
//! // Energies at relaxed points ζ ∈ [0,1]^n (GB Eq. 7).
//! let zeta = nalgebra::DMatrix::from_element(2, 46, 0.5f32);
//! assert_eq!(rbm.energies(&zeta).len(), 2);
//! assert!(log_z.is_finite());
//! ```
#![warn(missing_docs)]

pub mod bernoulli;
mod bipartite;
pub mod error;
#[doc(hidden)]
pub mod fuzz;
mod kernels;
pub mod mrf;
pub mod rbm;
pub mod sparse;
#[cfg(test)]
mod test_util;
pub mod topology;
mod util;

pub use bernoulli::FactorialBernoulli;
pub use error::{PriorError, Result};
pub use mrf::PolynomialMrf;
pub use rbm::Rbm;
pub use sparse::SparseBm;
pub use topology::Topology;

//! Property and statistical tests of the paper's theorems and the samplers.
//!
//! This library holds the shared helpers of the integration tests in `tests/`:
//!
//! - [`quadrature`]: Gauss–Legendre rules (Newton iteration on Legendre polynomials) and their
//!   tensor products over `[0,1]^n` in log space.
//! - [`poly`]: the [`poly::Multilinear`] view of an energy, an independent reference polynomial
//!   ([`poly::PolySpec`]) and exact vertex statistics (`E_min`, `E_max`, `log Z`).
//! - [`rounding`]: the constructive vertex rounding that proves GB Theorem 1 (docs/algorithms.md §8
//!   T1b).
//! - [`points`]: random relaxed points (uniform, near-boundary, faces, projected-gradient end
//!   points) for the Theorem 1 checks.
//! - [`partition`]: the relaxed partition function `Z̃` of GB Theorem 2 by quadrature and by
//!   Monte Carlo, with the stable `φ(c) = log((e^c − 1)/c)`.
//! - [`eq8`]: tiny VAEs with exactly computable `log Z`, `log Z̃` and `log p̃(x)`, Monte-Carlo
//!   estimates of `L̃_k`, `Ľ_k` (GB Eq. 8) and `F_k` (GB Eq. 9) with the Concrete density, and
//!   a Monte-Carlo confidence interval for `Z̃` against the exact `Z` (GB Theorem 2).
//! - [`strategies`]: proptest strategies for random polynomial MRFs and RBMs.
#![warn(missing_docs)]

pub mod eq8;
pub mod partition;
pub mod points;
pub mod poly;
pub mod quadrature;
pub mod rounding;
pub mod strategies;

//! Property and statistical tests of the paper's theorems and the samplers.
//!
//! This library holds the shared helpers of the integration tests in `tests/`:
//!
//! - [`quadrature`]: Gauss–Legendre rules (Newton iteration on Legendre polynomials) and their
//!   tensor products over `[0,1]^n` in log space.
//! - [`poly`]: the [`poly::Multilinear`] view of an energy, an independent reference polynomial
//!   ([`poly::PolySpec`]) and exact vertex statistics (`E_min`, `E_max`, `log Z`).
//! - [`rounding`]: the constructive vertex rounding that proves GB Theorem 1 (algorithms §8
//!   T1b).
//! - [`points`]: random relaxed points (uniform, near-boundary, faces, projected-gradient end
//!   points) for the Theorem 1 checks.
//! - [`partition`]: the relaxed partition function `Z̃` of GB Theorem 2 by quadrature and by
//!   Monte Carlo, with the stable `φ(c) = log((e^c − 1)/c)`.
//! - [`strategies`]: proptest strategies for random polynomial MRFs and RBMs.
#![warn(missing_docs)]

pub mod partition;
pub mod points;
pub mod poly;
pub mod quadrature;
pub mod rounding;
pub mod strategies;

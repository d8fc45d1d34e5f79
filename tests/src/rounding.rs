//! Constructive rounding of a relaxed point to a vertex: the executable proof of GB Theorem 1
//! (docs/algorithms.md §8 T1b).
//!
//! A multilinear `E` is affine in each coordinate: `E(ζ) = E(ζ_i = 0, ζ_{−i}) + ζ_i g_i(ζ_{−i})`
//! (GB Eqs. 10–11, with `g_i` summed over all monomials containing `i`). Moving `ζ_i` to the
//! end of `[0,1]` that the sign of `g_i` favours therefore never increases (resp. decreases)
//! `E`. Doing this for `i = 1..n` reaches a vertex `v` with `E(v) ≤ E(ζ)` (resp. `≥`), so
//! `min_{[0,1]^n} E = min_{{0,1}^n} E` and likewise for the maximum.

use crate::poly::Multilinear;

/// Which extremum the rounding walks towards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `ζ_i ← 0` if `g_i(ζ_{−i}) > 0`, else `1`: `E` never increases.
    Down,
    /// `ζ_i ← 1` if `g_i(ζ_{−i}) > 0`, else `0`: `E` never decreases.
    Up,
}

/// The path of a rounding.
#[derive(Debug, Clone, PartialEq)]
pub struct Rounding {
    /// The end point, a vertex of `{0,1}^n`.
    pub vertex: Vec<f64>,
    /// `energies[0] = E(ζ)`, and `energies[i]` is `E` after coordinate `i − 1` was rounded
    /// (length `n + 1`; the last entry is `E(vertex)`).
    pub energies: Vec<f64>,
    /// The gaps `g_i(ζ_{−i})` at the moment coordinate `i` was rounded.
    pub gaps: Vec<f64>,
}

/// Rounds `zeta` to a vertex coordinate by coordinate (`i = 0..n`, in order), choosing each
/// end by the sign of the current gap `g_i(ζ_{−i})` as [`Direction`] says, and records `E`
/// after every step.
///
/// For [`Direction::Down`] the recorded energies are non-increasing (up to rounding error) and
/// `E(vertex) ≤ E(zeta)`; for [`Direction::Up`] they are non-decreasing and
/// `E(vertex) ≥ E(zeta)` (GB Theorem 1).
///
/// ```
/// use gumbolt_tests::poly::{Multilinear, PolySpec};
/// use gumbolt_tests::rounding::{round_to_vertex, Direction};
/// // E = ζ0 − 2 ζ0 ζ1: at (0.5, 0.5) E = 0; rounding down reaches (1, 1) with E = −1.
/// let p = PolySpec::from_terms(2, [(vec![0], 1.0), (vec![0, 1], -2.0)]);
/// let r = round_to_vertex(&p, &[0.5, 0.5], Direction::Down);
/// assert_eq!(r.vertex, vec![1.0, 1.0]);
/// assert_eq!(r.energies, vec![0.0, 0.0, -1.0]);
/// ```
pub fn round_to_vertex<M: Multilinear + ?Sized>(m: &M, zeta: &[f64], dir: Direction) -> Rounding {
    let n = m.num_units();
    assert_eq!(zeta.len(), n, "round_to_vertex: point has the wrong length");
    let mut z = zeta.to_vec();
    let mut energies = Vec::with_capacity(n + 1);
    let mut gaps = Vec::with_capacity(n);
    energies.push(m.energy(&z));
    for i in 0..n {
        let g = m.gap(&z, i);
        let positive = g > 0.0;
        z[i] = match (dir, positive) {
            (Direction::Down, true) | (Direction::Up, false) => 0.0,
            (Direction::Down, false) | (Direction::Up, true) => 1.0,
        };
        gaps.push(g);
        energies.push(m.energy(&z));
    }
    Rounding {
        vertex: z,
        energies,
        gaps,
    }
}

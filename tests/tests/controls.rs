//! Negative controls for the Theorem 1/1b/2 checks: on a *non*-multilinear energy with an
//! interior minimum (a "bowl", `E(ζ) = −4K Σ_i ζ_i(1 − ζ_i)`, which is 0 at every vertex) the
//! same harness must fail. This shows the property tests have power, and that Theorems 1–2 rest
//! on multilinearity (GB App. A: `z_i^m = z_i` makes `E` affine in each `ζ_i`, Eq. 10).

use gumbolt_core::rng::root_rng;
use gumbolt_tests::partition::log_z_tilde_tensor;
use gumbolt_tests::points::test_points;
use gumbolt_tests::poly::{Multilinear, eps_f64, vertex_stats};
use gumbolt_tests::quadrature::gauss_legendre_unit;
use gumbolt_tests::rounding::{Direction, round_to_vertex};

/// `E(ζ) = −4K Σ_i ζ_i(1 − ζ_i)`: the binary energy is `≡ 0` (so `E_min = E_max = 0`,
/// `Z = 2^n`), but the relaxed function has its minimum `−Kn` at the centre.
struct Bowl {
    n: usize,
    k: f64,
}

impl Multilinear for Bowl {
    fn num_units(&self) -> usize {
        self.n
    }
    fn energy(&self, zeta: &[f64]) -> f64 {
        -4.0 * self.k * zeta.iter().map(|z| z * (1.0 - z)).sum::<f64>()
    }
    fn gap(&self, zeta: &[f64], i: usize) -> f64 {
        -4.0 * self.k * (1.0 - 2.0 * zeta[i])
    }
    fn coeff_abs_sum(&self) -> f64 {
        8.0 * self.k * self.n as f64
    }
}

/// Control for GB Theorem 1 (docs/algorithms.md §8 T1): the random points of the T1 harness find
/// relaxed energies below the vertex minimum of the bowl.
#[test]
fn control_thm1_harness_detects_an_interior_minimum() {
    let bowl = Bowl { n: 3, k: 1.0 };
    let stats = vertex_stats(&bowl);
    assert_eq!((stats.e_min, stats.e_max), (0.0, 0.0));
    let eps = eps_f64(&bowl);
    let points = test_points(&bowl, &mut root_rng(5), 6, 300);
    let below = points
        .iter()
        .filter(|(_, z)| bowl.energy(z) < stats.e_min - eps)
        .count();
    assert!(
        below > points.len() / 2,
        "only {below} of {} points violate the bound",
        points.len()
    );
    // Projected gradient descent converges to the interior minimum −K·n.
    let deepest = points
        .iter()
        .map(|(_, z)| bowl.energy(z))
        .fold(f64::INFINITY, f64::min);
    assert!((deepest + 3.0).abs() < 1e-6, "deepest point {deepest}");
}

/// Control for docs/algorithms.md §8 T1b: with a non-affine coordinate the sign-of-gap rounding from the
/// centre raises the energy at the first step, so the monotonicity assertion would fire.
#[test]
fn control_thm1b_rounding_is_not_monotone_without_multilinearity() {
    let bowl = Bowl { n: 2, k: 1.0 };
    let r = round_to_vertex(&bowl, &[0.5, 0.5], Direction::Down);
    assert_eq!(r.energies[0], -2.0);
    assert!(
        r.energies[1] > r.energies[0] + eps_f64(&bowl),
        "{:?}",
        r.energies
    );
    assert!(r.energies[2] > r.energies[0]);
}

/// Control for GB Theorem 2 (Eq. 12): for the bowl `log Z̃ > −E_min_vertex` and even
/// `log Z̃ > log Z`, so `Z̃ ≤ Z` is not a generic fact about relaxations.
#[test]
fn control_thm2_fails_without_multilinearity() {
    let bowl = Bowl { n: 1, k: 3.0 };
    let stats = vertex_stats(&bowl);
    let log_z_tilde = log_z_tilde_tensor(&bowl, &gauss_legendre_unit(24));
    assert!(log_z_tilde > -stats.e_min + 1.0, "log Z̃ = {log_z_tilde}");
    assert!(
        log_z_tilde > stats.log_z,
        "log Z̃ = {log_z_tilde}, log Z = {}",
        stats.log_z
    );
}

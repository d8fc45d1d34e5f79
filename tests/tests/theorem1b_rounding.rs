//! GB Theorem 1, constructive form (docs/algorithms.md §8 T1b): rounding one coordinate at a time by
//! the sign of `g_i(ζ_{−i})` walks monotonically to a vertex (the executable proof of Thm 1).

use gumbolt_core::rng::root_rng;
use gumbolt_tests::points::test_points;
use gumbolt_tests::poly::{Multilinear, PolySpec, eps_f64, vertex_stats};
use gumbolt_tests::rounding::{Direction, Rounding, round_to_vertex};
use gumbolt_tests::strategies::polynomial;
use proptest::prelude::*;

fn is_vertex(v: &[f64]) -> bool {
    v.iter().all(|&x| x == 0.0 || x == 1.0)
}

/// The checks shared by both directions: `n + 1` recorded energies, consecutive steps monotone
/// in `dir` within `eps`, end point a vertex whose energy is the last recorded one.
fn check_path<M: Multilinear>(
    m: &M,
    r: &Rounding,
    dir: Direction,
    eps: f64,
) -> Result<(), TestCaseError> {
    let n = m.num_units();
    prop_assert_eq!(r.energies.len(), n + 1);
    prop_assert!(
        is_vertex(&r.vertex),
        "end point {:?} is not a vertex",
        r.vertex
    );
    for (i, w) in r.energies.windows(2).enumerate() {
        let ok = match dir {
            Direction::Down => w[1] <= w[0] + eps,
            Direction::Up => w[1] >= w[0] - eps,
        };
        prop_assert!(
            ok,
            "{:?} step {} went the wrong way: {} → {} (g = {})",
            dir,
            i,
            w[0],
            w[1],
            r.gaps[i]
        );
    }
    prop_assert!((m.energy(&r.vertex) - r.energies[n]).abs() <= eps);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Algorithms §8 T1b / GB Theorem 1: for `i = 1..n`, `ζ_i ← 0` if `g_i(ζ_{−i}) > 0` else 1
    /// never increases `E` (within `ε = 1e-9·(1 + Σ|c_S|)`) and ends at a vertex `v` with
    /// `E_min ≤ E(v) ≤ E(ζ)`, from uniform, near-boundary, face and projected-gradient points.
    #[test]
    fn thm1b_rounding_down_never_increases_energy(spec in polynomial(12), seed in any::<u64>()) {
        let mrf = spec.build();
        let eps = eps_f64(&mrf);
        let stats = vertex_stats(&mrf);
        let mut rng = root_rng(seed);
        for (kind, z) in test_points(&mrf, &mut rng, 6, 200) {
            let r = round_to_vertex(&mrf, &z, Direction::Down);
            check_path(&mrf, &r, Direction::Down, eps)?;
            let (e_z, e_v) = (r.energies[0], r.energies[spec.n]);
            prop_assert!(e_v <= e_z + eps, "{:?}: E(v) = {} > E(ζ) = {}", kind, e_v, e_z);
            prop_assert!(e_v >= stats.e_min - eps);
        }
    }

    /// Algorithms §8 T1b, symmetric version: `ζ_i ← 1` if `g_i(ζ_{−i}) > 0` else 0 never
    /// decreases `E` and ends at a vertex `v` with `E(ζ) ≤ E(v) ≤ E_max`.
    #[test]
    fn thm1b_rounding_up_never_decreases_energy(spec in polynomial(12), seed in any::<u64>()) {
        let mrf = spec.build();
        let eps = eps_f64(&mrf);
        let stats = vertex_stats(&mrf);
        let mut rng = root_rng(seed);
        for (kind, z) in test_points(&mrf, &mut rng, 6, 200) {
            let r = round_to_vertex(&mrf, &z, Direction::Up);
            check_path(&mrf, &r, Direction::Up, eps)?;
            let (e_z, e_v) = (r.energies[0], r.energies[spec.n]);
            prop_assert!(e_v >= e_z - eps, "{:?}: E(v) = {} < E(ζ) = {}", kind, e_v, e_z);
            prop_assert!(e_v <= stats.e_max + eps);
        }
    }

    /// Algorithms §8 T1b on the reference evaluator: the rounding path of
    /// `gumbolt_priors::PolynomialMrf` and of the independent [`PolySpec`] agree (same vertex
    /// whenever no gap is within `ε` of 0, where the sign test could legitimately differ).
    #[test]
    fn thm1b_rounding_agrees_with_reference(spec in polynomial(12), seed in any::<u64>()) {
        let mrf = spec.build();
        let eps = eps_f64(&mrf);
        let mut rng = root_rng(seed);
        for (_, z) in test_points(&spec, &mut rng, 4, 100) {
            for dir in [Direction::Down, Direction::Up] {
                let a = round_to_vertex(&mrf, &z, dir);
                let b = round_to_vertex(&spec, &z, dir);
                if a.gaps.iter().chain(&b.gaps).all(|g| g.abs() > eps) {
                    prop_assert_eq!(&a.vertex, &b.vertex);
                }
                for (ea, eb) in a.energies.iter().zip(&b.energies) {
                    if a.vertex == b.vertex {
                        prop_assert!((ea - eb).abs() <= eps);
                    }
                }
            }
        }
    }
}

/// Algorithms §8 T1b on the frustrated XOR energy `E = ζ0 + ζ1 − 2ζ0ζ1` from its saddle
/// `(½, ½)` (all gaps 0): rounding down still reaches a minimising vertex, rounding up a
/// maximising one, and the zero polynomial rounds to a vertex without changing `E`.
#[test]
fn thm1b_rounding_from_a_saddle_and_the_zero_polynomial() {
    let xor = PolySpec::from_terms(2, [(vec![0], 1.0), (vec![1], 1.0), (vec![0, 1], -2.0)]).build();
    let down = round_to_vertex(&xor, &[0.5, 0.5], Direction::Down);
    assert_eq!(down.gaps[0], 0.0);
    assert_eq!(down.energies, vec![0.5, 0.5, 0.0]);
    assert_eq!(down.vertex, vec![1.0, 1.0]);
    let up = round_to_vertex(&xor, &[0.5, 0.5], Direction::Up);
    assert_eq!(up.energies, vec![0.5, 0.5, 1.0]);
    assert_eq!(up.vertex, vec![0.0, 1.0]);

    let zero = PolySpec::zero(3).build();
    let r = round_to_vertex(&zero, &[0.2, 0.9, 0.5], Direction::Down);
    assert!(is_vertex(&r.vertex));
    assert!(r.energies.iter().all(|&e| e == 0.0));
}

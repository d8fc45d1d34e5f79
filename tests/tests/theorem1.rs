//! GB Theorem 1 (vertex extremum) and the multilinear structure behind it (GB Eqs. 10–11),
//! checked on random polynomial MRFs (docs/algorithms.md §8 T1).

use gumbolt_core::Mat;
use gumbolt_core::exact::enumerate;
use gumbolt_core::prior::{EnergyGradient, ExactPartition, PriorExt};
use gumbolt_core::rng::root_rng;
use gumbolt_tests::points::{test_points, uniform_point};
use gumbolt_tests::poly::{Multilinear, PolySpec, eps_f64, vertex_stats};
use gumbolt_tests::strategies::polynomial;
use proptest::prelude::*;

/// Tolerance for energies evaluated through the f32 batch API: f32 rows, and possibly f32
/// arithmetic inside the prior.
fn eps_f32(m: &impl Multilinear) -> f64 {
    1e-5 * (1.0 + m.coeff_abs_sum())
}

fn to_rows(points: &[Vec<f64>], n: usize) -> Mat {
    Mat::from_fn(points.len(), n, |r, c| points[r][c] as f32)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// GB Theorem 1 (docs/algorithms.md §8 T1): `E_min − ε ≤ E(ζ) ≤ E_max + ε` with
    /// `ε = 1e-9·(1 + Σ|c_S|)` at uniform, Beta(0.1,0.1), face and projected-gradient
    /// descent/ascent end points, `E_min/E_max` by enumerating the `2^n` vertices.
    #[test]
    fn thm1_relaxed_energy_within_vertex_extremes(spec in polynomial(12), seed in any::<u64>()) {
        let mrf = spec.build();
        let stats = vertex_stats(&mrf);
        let eps = eps_f64(&mrf);
        let mut rng = root_rng(seed);
        for (kind, z) in test_points(&mrf, &mut rng, 6, 300) {
            prop_assert!(z.iter().all(|v| (0.0..=1.0).contains(v)), "{kind:?} left the cube");
            let e = mrf.energy_f64(&z);
            prop_assert!(
                e >= stats.e_min - eps && e <= stats.e_max + eps,
                "{:?}: E(ζ) = {} outside [{}, {}] (ε = {}), ζ = {:?}",
                kind, e, stats.e_min, stats.e_max, eps, z
            );
        }
        // The extreme vertices themselves are attained points of the cube.
        prop_assert!((mrf.energy_f64(&stats.argmin) - stats.e_min).abs() <= eps);
        prop_assert!((mrf.energy_f64(&stats.argmax) - stats.e_max).abs() <= eps);
    }

    /// GB Theorem 1 through the batched trait API: `Prior::energy_into` on f32 rows stays within
    /// the vertex extremes of `gumbolt_core::exact::enumerate` (f32 tolerance
    /// `1e-5·(1 + Σ|c_S|)`), agrees with `energy_f64` at the same f32-rounded points, and the
    /// enumeration (and `ExactPartition::log_partition`, GB Eq. 3) agrees with the f64 one.
    #[test]
    fn thm1_batched_f32_energies_within_vertex_extremes(spec in polynomial(12), seed in any::<u64>()) {
        let mrf = spec.build();
        let n = spec.n;
        let tol = eps_f32(&mrf);
        let stats = vertex_stats(&mrf);
        let ex = enumerate(&mrf).expect("n ≤ 12 is enumerable");
        prop_assert!((ex.energy_min - stats.e_min).abs() <= tol);
        prop_assert!((ex.energy_max - stats.e_max).abs() <= tol);
        prop_assert!((ex.log_z - stats.log_z).abs() <= tol);
        let log_z = mrf.log_partition().expect("exact log Z");
        prop_assert!((log_z - stats.log_z).abs() <= tol, "log Z {} vs {}", log_z, stats.log_z);

        let mut rng = root_rng(seed);
        let points: Vec<Vec<f64>> =
            test_points(&mrf, &mut rng, 6, 300).into_iter().map(|(_, z)| z).collect();
        let rows = to_rows(&points, n);
        let e = mrf.energies(&rows);
        prop_assert_eq!(e.len(), points.len());
        for (r, &er) in e.iter().enumerate() {
            prop_assert!(
                er >= ex.energy_min - tol && er <= ex.energy_max + tol,
                "row {}: E = {} outside [{}, {}]", r, er, ex.energy_min, ex.energy_max
            );
            let z32: Vec<f64> = rows.row(r).iter().map(|&v| v as f64).collect();
            let e64 = mrf.energy_f64(&z32);
            prop_assert!((er - e64).abs() <= tol, "row {}: batch {} vs f64 {}", r, er, e64);
        }
    }

    /// GB Eqs. 10–11 (docs/algorithms.md §8): `E` is affine in every `ζ_i`, with slope
    /// `g_i(ζ_{−i}) = E(ζ_i=1) − E(ζ_i=0) = ∂E/∂ζ_i` summed over all monomials containing `i`;
    /// `grad_f64`, `gap_f64`, `EnergyGradient::energy_grad_into` and the independent reference
    /// evaluator all agree.
    #[test]
    fn eq11_gap_is_the_partial_derivative(spec in polynomial(12), seed in any::<u64>()) {
        let mrf = spec.build();
        let n = spec.n;
        let eps = eps_f64(&mrf);
        prop_assert_eq!(Multilinear::num_units(&mrf), n);
        prop_assert!((mrf.coeff_abs_sum() - spec.coeff_abs_sum()).abs() <= eps);
        let mut rng = root_rng(seed);
        let points: Vec<Vec<f64>> = (0..8).map(|_| uniform_point(&mut rng, n)).collect();
        for z in &points {
            let e = mrf.energy_f64(z);
            prop_assert!((e - spec.energy(z)).abs() <= eps, "energy vs reference");
            let grad = mrf.grad_f64(z);
            prop_assert_eq!(grad.len(), n);
            for i in 0..n {
                let g = mrf.gap_f64(z, i);
                prop_assert!((g - grad[i]).abs() <= eps);
                prop_assert!((g - spec.gap(z, i)).abs() <= eps, "gap vs reference at {}", i);
                let (mut z0, mut z1) = (z.clone(), z.clone());
                z0[i] = 0.0;
                z1[i] = 1.0;
                let (e0, e1) = (mrf.energy_f64(&z0), mrf.energy_f64(&z1));
                prop_assert!((e1 - e0 - g).abs() <= eps, "g_i is not E(1) − E(0)");
                prop_assert!((e0 + z[i] * g - e).abs() <= eps, "E not affine in ζ_{}", i);
            }
        }
        let rows = to_rows(&points, n);
        let mut out = Mat::zeros(points.len(), n);
        mrf.energy_grad_into(rows.as_view(), &mut out);
        let tol = eps_f32(&mrf);
        for r in 0..points.len() {
            let z32: Vec<f64> = rows.row(r).iter().map(|&v| v as f64).collect();
            let g64 = mrf.grad_f64(&z32);
            for i in 0..n {
                prop_assert!((out[(r, i)] as f64 - g64[i]).abs() <= tol, "trait gradient ({}, {})", r, i);
            }
        }
    }
}

/// GB Theorem 1 on hand-made edge cases: the zero polynomial (`E ≡ 0` everywhere), `n = 1`
/// (`E = cζ` is monotone, extremes `0` and `c`), and a frustrated quadratic whose interior
/// saddle `ζ = (½, ½)` lies strictly between the vertex extremes.
#[test]
fn thm1_edge_cases() {
    let zero = PolySpec::zero(5).build();
    let s = vertex_stats(&zero);
    assert_eq!((s.e_min, s.e_max), (0.0, 0.0));
    assert!((s.log_z - 32f64.ln()).abs() < 1e-12);
    let mut rng = root_rng(1);
    for (_, z) in test_points(&zero, &mut rng, 4, 50) {
        assert_eq!(zero.energy_f64(&z), 0.0);
    }

    for c in [-5.0, -0.3, 0.0, 2.0] {
        let one = PolySpec::from_terms(1, [(vec![0], c)]).build();
        let s = vertex_stats(&one);
        assert_eq!((s.e_min, s.e_max), (c.min(0.0), c.max(0.0)));
        for t in [0.0, 0.25, 0.5, 1.0] {
            assert!((one.energy_f64(&[t]) - c * t).abs() < 1e-15);
        }
    }

    // E = ζ0 + ζ1 − 2ζ0ζ1 (XOR): vertices {0, 1, 1, 0}; at (½, ½) E = ½, a saddle.
    let xor = PolySpec::from_terms(2, [(vec![0], 1.0), (vec![1], 1.0), (vec![0, 1], -2.0)]).build();
    let s = vertex_stats(&xor);
    assert_eq!((s.e_min, s.e_max), (0.0, 1.0));
    assert!((xor.energy_f64(&[0.5, 0.5]) - 0.5).abs() < 1e-15);
    assert!(xor.grad_f64(&[0.5, 0.5]).iter().all(|g| g.abs() < 1e-15));
}

//! The RBM as a polynomial MRF (docs/algorithms.md §8: monomials `{i}` and `{i, n1 + j}` with
//! `c = −a, −b, −W`) and GB Theorem 1 for RBMs (GB Eq. 4 evaluated at relaxed points).

use gumbolt_core::Mat;
use gumbolt_core::exact::enumerate;
use gumbolt_core::prior::{ExactPartition, Prior, PriorExt};
use gumbolt_core::rng::root_rng;
use gumbolt_priors::PolynomialMrf;
use gumbolt_tests::points::{test_points, uniform_point};
use gumbolt_tests::poly::{Multilinear, eps_f64, vertex, vertex_stats};
use gumbolt_tests::strategies::{RbmSpec, rbm};
use proptest::prelude::*;

/// `E(ζ) = −(aᵀζ1 + bᵀζ2 + ζ1ᵀWζ2)` (GB Eq. 4 with `W` stored `n1 × n2`, docs/algorithms.md §1), in
/// f64, written out independently of both implementations.
fn rbm_energy_reference(spec: &RbmSpec, z: &[f64]) -> f64 {
    let (a, b, w) = spec.to_f64();
    let (n1, n2) = (a.len(), b.len());
    let (z1, z2) = z.split_at(n1);
    let mut neg = 0.0;
    for i in 0..n1 {
        neg += a[i] * z1[i];
        for j in 0..n2 {
            neg += z1[i] * w[(i, j)] * z2[j];
        }
    }
    neg += b.iter().zip(z2).map(|(bj, zj)| bj * zj).sum::<f64>();
    -neg
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// `From<&Rbm> for PolynomialMrf` (docs/algorithms.md §8): the polynomial's f64 energy equals the
    /// reference RBM energy (GB Eq. 4) at random relaxed points and at every vertex, the
    /// RBM's own batched `Prior::energy_into` agrees at f32-rounded points, and the exact
    /// `log Z` of the RBM, of its polynomial and of vertex enumeration agree.
    #[test]
    fn rbm_as_polynomial_has_the_same_energy(spec in rbm(1..=8, 1..=8, 12), seed in any::<u64>()) {
        let prior = spec.build();
        let poly = PolynomialMrf::from(&prior);
        let n = spec.a.len() + spec.b.len();
        prop_assert_eq!(prior.num_units(), n);
        prop_assert_eq!(Multilinear::num_units(&poly), n);
        let eps = eps_f64(&poly);
        let tol32 = 1e-5 * (1.0 + spec.coeff_abs_sum());
        prop_assert!((poly.coeff_abs_sum() - spec.coeff_abs_sum()).abs() <= eps);

        let mut rng = root_rng(seed);
        let mut points: Vec<Vec<f64>> = (0..16).map(|_| uniform_point(&mut rng, n)).collect();
        points.extend(test_points(&poly, &mut rng, 2, 100).into_iter().map(|(_, z)| z));
        // f32-representable points, so all evaluators see the same ζ.
        for z in points.iter_mut() {
            z.iter_mut().for_each(|v| *v = *v as f32 as f64);
        }
        let rows = Mat::from_fn(points.len(), n, |r, c| points[r][c] as f32);
        let batch = prior.energies(&rows);
        let poly_batch = poly.energies(&rows);
        for (r, z) in points.iter().enumerate() {
            let reference = rbm_energy_reference(&spec, z);
            let e = poly.energy_f64(z);
            prop_assert!((e - reference).abs() <= eps, "polynomial {} vs reference {}", e, reference);
            prop_assert!((batch[r] - reference).abs() <= tol32, "Rbm::energy_into {} vs {}", batch[r], reference);
            prop_assert!((poly_batch[r] - reference).abs() <= tol32);
        }
        for k in 0..(1u64 << n) {
            let v = vertex(n, k);
            prop_assert!((poly.energy_f64(&v) - rbm_energy_reference(&spec, &v)).abs() <= eps);
        }
        let stats = vertex_stats(&poly);
        let log_z = prior.log_partition().expect("exact RBM log Z");
        prop_assert!((log_z - stats.log_z).abs() <= tol32, "Rbm log Z {} vs enumeration {}", log_z, stats.log_z);
        let poly_log_z = poly.log_partition().expect("exact polynomial log Z");
        prop_assert!((poly_log_z - stats.log_z).abs() <= tol32);
    }

    /// GB Theorem 1 for RBMs (`n1 + n2 ≤ 12`): the relaxed RBM energy at uniform,
    /// near-boundary, face and projected-gradient points stays within the vertex extremes,
    /// both in f64 through the polynomial (`ε = 1e-9·(1 + Σ|c_S|)`) and through the RBM's own
    /// f32 batch API against `gumbolt_core::exact::enumerate` (f32 tolerance).
    #[test]
    fn thm1_rbm_relaxed_energy_within_vertex_extremes(spec in rbm(1..=8, 1..=8, 12), seed in any::<u64>()) {
        let prior = spec.build();
        let poly = PolynomialMrf::from(&prior);
        let n = spec.a.len() + spec.b.len();
        let eps = eps_f64(&poly);
        let tol32 = 1e-5 * (1.0 + spec.coeff_abs_sum());
        let stats = vertex_stats(&poly);
        let ex = enumerate(&prior).expect("enumerable");
        prop_assert!((ex.energy_min - stats.e_min).abs() <= tol32);
        prop_assert!((ex.energy_max - stats.e_max).abs() <= tol32);

        let points = test_points(&poly, &mut root_rng(seed), 6, 300);
        for (kind, z) in &points {
            let e = poly.energy_f64(z);
            prop_assert!(
                e >= stats.e_min - eps && e <= stats.e_max + eps,
                "{:?}: E = {} outside [{}, {}]", kind, e, stats.e_min, stats.e_max
            );
        }
        let rows = Mat::from_fn(points.len(), n, |r, c| points[r].1[c] as f32);
        let mut out = vec![0.0; points.len()];
        prior.energy_into(rows.as_view(), &mut out);
        for (r, &e) in out.iter().enumerate() {
            prop_assert!(
                e >= ex.energy_min - tol32 && e <= ex.energy_max + tol32,
                "row {} ({:?}): E = {} outside [{}, {}]", r, points[r].0, e, ex.energy_min, ex.energy_max
            );
        }
    }
}

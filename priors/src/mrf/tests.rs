#![allow(clippy::needless_range_loop)] // index-heavy reference formulas

use super::*;
use crate::test_util::*;
use gumbolt_core::prior::PriorExt;

/// A fixed mixed-order example: constant, linear, pair, triple and quartic terms.
fn example() -> PolynomialMrf {
    PolynomialMrf::new(
        5,
        vec![
            (vec![], 0.7),
            (vec![0], -1.0),
            (vec![3], 0.5),
            (vec![1, 4], 2.0),
            (vec![2, 0, 4], -1.5),
            (vec![0, 1, 2, 3], 0.8),
            (vec![4, 1], -0.5), // merged with {1, 4}
        ],
    )
    .unwrap()
}

#[test]
fn construction_merges_and_indexes() {
    let m = example();
    assert_eq!(m.num_units(), 5);
    assert_eq!(m.num_monomials(), 6);
    assert_eq!(m.monomial(3), (&[1usize, 4][..], 1.5));
    assert_eq!(m.monomial(4).0, &[0, 2, 4]);
    assert_eq!(m.monomials_of_unit(4), &[3, 4]);
    assert_eq!(m.monomials_of_unit(0), &[1, 4, 5]);
    assert_eq!(m.coeff_abs_sum(), 0.7 + 1.0 + 0.5 + 1.5 + 1.5 + 0.8);
    assert_eq!(PolynomialMrf::new(m.num_units(), m.monomials()).unwrap(), m);
    assert_eq!(m.params(), &[0.7f32, -1.0, 0.5, 1.5, -1.5, 0.8]);
}

#[test]
fn constructor_rejects_invalid_monomials_clearly() {
    let err = |terms: Vec<(Vec<usize>, f64)>| PolynomialMrf::new(3, terms).unwrap_err();
    match err(vec![(vec![0], 1.0), (vec![1, 2, 1], 1.0)]) {
        e @ PriorError::InvalidMonomial { index: 1, .. } => {
            let s = e.to_string();
            assert!(
                s.contains("unit 1 appears more than once") && s.contains("[1, 2, 1]"),
                "{s}"
            );
        }
        other => panic!("{other:?}"),
    }
    let s = err(vec![(vec![0, 3], 1.0)]).to_string();
    assert!(s.contains("unit 3 is out of range for 3 units"), "{s}");
    let s = err(vec![(vec![0], f64::NAN)]).to_string();
    assert!(s.contains("not finite"), "{s}");
    // The zero polynomial and a constant are fine, also on zero units.
    let z = PolynomialMrf::new(0, vec![(vec![], 2.0)]).unwrap();
    assert_eq!(z.energy_f64(&[]), 2.0);
    assert_close(
        z.log_partition().unwrap(),
        -2.0,
        1e-15,
        "log Z of a constant on no units",
    );
}

/// Edge cases of invalid definitions (the full list of bad inputs, with the command-line ones,
/// is the corpus of `examples/tests/bad_input.rs`): the error names the offending monomial by
/// its position and units, and nothing panics, whatever the index.
#[test]
fn constructor_rejects_edge_case_monomials() {
    // (units n, monomials, index of the offending monomial, reason)
    type Terms = Vec<(Vec<usize>, f64)>;
    let cases: Vec<(usize, Terms, usize, &str)> = vec![
        (
            3,
            vec![(vec![usize::MAX], 1.0)],
            0,
            "unit 18446744073709551615 is out of range",
        ),
        (
            0,
            vec![(vec![0], 1.0)],
            0,
            "unit 0 is out of range for 0 units (valid: 0..0)",
        ),
        (
            4,
            vec![(vec![0, 1], 1.0), (vec![2], -1.0), (vec![3, 1, 3], 0.5)],
            2,
            "unit 3 appears more than once",
        ),
        (
            2,
            vec![(vec![1, 0], 1.0), (vec![], f64::INFINITY)],
            1,
            "the coefficient inf is not finite",
        ),
        (
            2,
            vec![(vec![1], f64::NEG_INFINITY)],
            0,
            "the coefficient -inf is not finite",
        ),
    ];
    for (n, terms, at, reason) in cases {
        let units = terms[at].0.clone();
        match PolynomialMrf::new(n, terms) {
            Err(e @ PriorError::InvalidMonomial { index, .. }) => {
                let s = e.to_string();
                assert_eq!(index, at, "{s}");
                assert!(s.contains(reason), "{s}");
                assert!(s.contains(&format!("monomial #{at} {units:?}")), "{s}");
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn batched_energy_gradient_and_gaps_match_the_f64_api() {
    let mut r = rng(1);
    for m in [example(), PolynomialMrf::random(7, 25, 4, 1.5, &mut rng(2))] {
        let n = m.num_units();
        let zeta = relaxed(6, n, &mut r);
        let e = m.energies(&zeta);
        let mut g = Mat::zeros(0, 0);
        m.energy_grad_into(zeta.as_view(), &mut g);
        let mut gaps = vec![0.0; 6];
        for row in 0..6 {
            let z = row_f64(&zeta, row);
            assert_close(e[row], m.energy_f64(&z), 1e-12, "energy");
            let gf = m.grad_f64(&z);
            for i in 0..n {
                assert_close(gf[i], m.gap_f64(&z, i), 1e-12, "grad = gaps");
                assert_close(
                    g[(row, i)] as f64,
                    gf[i],
                    1e-6 * (1.0 + gf[i].abs()),
                    "batched grad",
                );
            }
        }
        for i in 0..n {
            m.site_energy_gaps(zeta.as_view(), i, &mut gaps);
            for row in 0..6 {
                assert_close(
                    gaps[row],
                    m.gap_f64(&row_f64(&zeta, row), i),
                    1e-12,
                    "site gaps",
                );
            }
        }
    }
}

#[test]
fn energy_gradient_matches_finite_differences() {
    // E is affine in each ζ_i: central differences are exact up to rounding.
    let mut r = rng(3);
    for m in [example(), PolynomialMrf::random(8, 30, 5, 2.0, &mut rng(4))] {
        let n = m.num_units();
        for _ in 0..5 {
            let z = uniforms(n, 0.0, 1.0, &mut r);
            let g = m.grad_f64(&z);
            for i in 0..n {
                let (mut zp, mut zm) = (z.clone(), z.clone());
                zp[i] += 0.3;
                zm[i] -= 0.3;
                let fd = (m.energy_f64(&zp) - m.energy_f64(&zm)) / 0.6;
                assert_close(g[i], fd, 1e-12 * (1.0 + m.coeff_abs_sum()), "dE/dζ");
            }
            // At vertices the gap is the energy difference.
            let v: Vec<f64> = z.iter().map(|&x| x.round()).collect();
            for i in 0..n {
                let (mut v1, mut v0) = (v.clone(), v.clone());
                v1[i] = 1.0;
                v0[i] = 0.0;
                assert_close(
                    m.gap_f64(&v, i),
                    m.energy_f64(&v1) - m.energy_f64(&v0),
                    1e-12,
                    "gap",
                );
            }
        }
    }
}

#[test]
fn parameter_gradient_matches_finite_differences_and_params_mut_is_seen() {
    let mut r = rng(5);
    let mut m = example();
    let zeta = relaxed(5, 5, &mut r);
    let weights = [1.0f32, -0.5, 0.25, 2.0, 0.0];
    let mut grad = vec![0.0f32; m.num_monomials()];
    m.accumulate_neg_energy_grad(zeta.as_view(), &weights, &mut grad);
    let obj = |m: &PolynomialMrf| -> f64 {
        -m.energies(&zeta)
            .iter()
            .zip(&weights)
            .map(|(e, &w)| e * w as f64)
            .sum::<f64>()
    };
    for k in 0..m.num_monomials() {
        let th = m.params()[k];
        m.params_mut()[k] = th + 0.5;
        let (fp, hp) = (obj(&m), m.params()[k]);
        m.params_mut()[k] = th - 0.5;
        let (fm, hm) = (obj(&m), m.params()[k]);
        m.params_mut()[k] = th;
        assert_close(
            grad[k] as f64,
            (fp - fm) / (hp - hm) as f64,
            1e-5,
            "d(−E)/dc",
        );
    }
    // After params_mut the f32 values are authoritative everywhere.
    m.params_mut()[1] = 4.0;
    assert_eq!(m.monomial(1).1, 4.0);
    assert_eq!(
        m.energy_f64(&[1.0, 0.0, 0.0, 0.0, 0.0]),
        0.7f32 as f64 + 4.0
    );
    m.set_coefficients(&[0.1, 0.2, 0.3, 0.4, 0.5, 0.6]).unwrap();
    assert_eq!(m.monomial(1).1, 0.2);
    assert_eq!(m.params()[1], 0.2f32);
    assert!(m.set_coefficients(&[0.0]).is_err());
    assert!(m.set_coefficients(&[f64::INFINITY; 6]).is_err());
}

#[test]
fn exact_log_partition_and_gradient() {
    for m in [example(), PolynomialMrf::random(9, 30, 4, 1.0, &mut rng(6))] {
        let n = m.num_units();
        // log Z by a direct f64 sum.
        let lps: Vec<f64> = (0u32..1 << n)
            .map(|x| -m.energy_f64(&(0..n).map(|i| ((x >> i) & 1) as f64).collect::<Vec<_>>()))
            .collect();
        let lz = gumbolt_core::numerics::log_sum_exp(&lps);
        assert_close(
            m.log_partition().unwrap(),
            lz,
            1e-12 * (1.0 + lz.abs()),
            "log Z",
        );
        let (lz2, _) = m.exact_moments().unwrap();
        assert_close(lz2, lz, 1e-12 * (1.0 + lz.abs()), "log Z (moments)");
        // Gradient vs finite differences of log Z in the f64 coefficients.
        let g = m.log_partition_grad().unwrap();
        let c0 = m.coefficients();
        let mut mm = m.clone();
        for k in 0..c0.len() {
            let mut c = c0.clone();
            c[k] += 1e-4;
            mm.set_coefficients(&c).unwrap();
            let fp = mm.log_partition().unwrap();
            c[k] -= 2e-4;
            mm.set_coefficients(&c).unwrap();
            let fm = mm.log_partition().unwrap();
            assert_close(g[k], (fp - fm) / 2e-4, 1e-7, "d log Z/dc");
        }
    }
    let too_big = PolynomialMrf::new(25, vec![]).unwrap();
    assert!(too_big.log_partition().is_err() && too_big.log_partition_grad().is_err());
}

#[test]
fn rbm_as_polynomial_mrf_agrees() {
    let mut r = rng(7);
    for (n1, n2) in [(2, 3), (4, 2)] {
        let rbm = Rbm::random(n1, n2, 1.0, &mut r);
        let m = PolynomialMrf::from(&rbm);
        assert_eq!(m.num_monomials(), rbm.params().len());
        for (p, q) in m.params().iter().zip(rbm.params()) {
            assert_eq!(*p, -*q);
        }
        let zeta = relaxed(7, n1 + n2, &mut r);
        let (e1, e2) = (rbm.energies(&zeta), m.energies(&zeta));
        for k in 0..7 {
            assert_close(e1[k], e2[k], 1e-5, "energy");
        }
        let (mut g1, mut g2) = (Mat::zeros(0, 0), Mat::zeros(0, 0));
        rbm.energy_grad_into(zeta.as_view(), &mut g1);
        m.energy_grad_into(zeta.as_view(), &mut g2);
        assert!((&g1 - &g2).abs().max() < 1e-5, "dE/dζ");
        let w = vec![0.5f32; 7];
        let (mut p1, mut p2) = (
            vec![0.0f32; m.num_monomials()],
            vec![0.0f32; m.num_monomials()],
        );
        rbm.accumulate_neg_energy_grad(zeta.as_view(), &w, &mut p1);
        m.accumulate_neg_energy_grad(zeta.as_view(), &w, &mut p2);
        for (a, b) in p1.iter().zip(&p2) {
            assert_close(*a as f64, -*b as f64, 1e-5, "param gradient (c = −θ)");
        }
        assert_close(
            rbm.log_partition().unwrap(),
            m.log_partition().unwrap(),
            1e-10,
            "log Z",
        );
        let (l1, l2) = (
            rbm.log_partition_grad().unwrap(),
            m.log_partition_grad().unwrap(),
        );
        for (a, b) in l1.iter().zip(&l2) {
            assert_close(*a, -*b, 1e-10, "log Z gradient (c = −θ)");
        }
    }
}

#[test]
fn random_respects_its_arguments() {
    let mut r = rng(8);
    for (n, k, d) in [(1, 5, 4), (10, 40, 4), (4, 0, 2), (0, 3, 2)] {
        let m = PolynomialMrf::random(n, k, d, 2.0, &mut r);
        assert!(m.num_monomials() <= k);
        for (s, c) in m.monomials() {
            assert!(s.len() <= d.min(n) && (n == 0 || !s.is_empty()));
            assert!(s.windows(2).all(|w| w[0] < w[1]) && s.iter().all(|&i| i < n));
            assert!(c.is_finite());
        }
    }
    let a = PolynomialMrf::random(10, 20, 3, 1.0, &mut rng(9));
    let b = PolynomialMrf::random(10, 20, 3, 1.0, &mut rng(9));
    assert_eq!(a, b);
}

//! GB Theorem 2 (`Z̃ ≤ e^{−E_min} ≤ Z`, hence `p̌(ζ) ≤ p(ζ)`, GB Eqs. 12–13) by Monte Carlo and
//! by Gauss–Legendre quadrature (docs/algorithms.md §8 T2).

use gumbolt_core::numerics::softplus;
use gumbolt_core::prior::ExactPartition;
use gumbolt_core::rng::root_rng;
use gumbolt_tests::partition::{
    log_z_tilde_last_analytic, log_z_tilde_tensor, monte_carlo_log_z_tilde, phi, rbm_log_z_tilde,
};
use gumbolt_tests::points::std_normal;
use gumbolt_tests::poly::{Multilinear, PolySpec, eps_f64, vertex_stats};
use gumbolt_tests::quadrature::{Rule, gauss_legendre_composite, gauss_legendre_unit};
use gumbolt_tests::strategies::{RbmSpec, general_polynomial, polynomial, rbm};
use nalgebra::DMatrix;
use proptest::prelude::*;

/// Gauss–Legendre nodes per panel.
const NODES: usize = 24;
/// Largest slope of the log-integrand per panel: `e^{ct}` with `|c| ≤ 24` on one 24-node panel
/// has relative error `< 1e-20`.
const SLOPE_PER_PANEL: f64 = 24.0;
/// Budget of integrand evaluations for the full `n`-dimensional tensor product.
const TENSOR_BUDGET: usize = 1_500_000;

/// The composite 24-node rule with enough panels for log-integrand slopes up to `slope`.
fn rule_for_slope(slope: f64) -> Rule {
    let panels = ((slope / SLOPE_PER_PANEL).ceil() as usize).max(1);
    gauss_legendre_composite(NODES, panels)
}

/// Checks GB Eq. 12 with the quadrature `log Z̃`: `log Z̃ ≤ −E_min` (the proof's step, from
/// Theorem 1; `−E_min` from the vertices) and `log Z̃ ≤ log Z` with `log Z` computed
/// independently by the priors crate. (`−E_min ≤ log Z` is not checked: a log-sum-exp is never
/// below its largest term; and `p̌(ζ) ≤ p(ζ)`, GB Eq. 13, is `log Z̃ ≤ log Z` once `e^{−E(ζ)}`
/// cancels.)
fn check_thm2<M: Multilinear>(
    m: &M,
    log_z_tilde: f64,
    log_z: f64,
    tol: f64,
) -> Result<(), TestCaseError> {
    let neg_e_min = -vertex_stats(m).e_min;
    prop_assert!(
        log_z_tilde <= neg_e_min + tol,
        "log Z̃ = {} > −E_min = {}",
        log_z_tilde,
        neg_e_min
    );
    prop_assert!(
        log_z_tilde <= log_z + tol,
        "log Z̃ = {} > log Z = {}",
        log_z_tilde,
        log_z
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// GB Theorem 1's witness inside the Monte-Carlo estimate of `Z̃` (docs/algorithms.md §8 T2.2):
    /// no uniform point has `−E(ζ_s)` above `−E_min` of the vertices, and the upper
    /// 5-standard-error confidence bound of the Monte-Carlo `log Z̃` is below the exact
    /// `log Z` of the priors crate. (Larger energies: `eq8_lower_bound.rs`,
    /// `thm2_monte_carlo_upper_bound_below_exact_log_z`.)
    #[test]
    fn thm2_monte_carlo_log_z_tilde_below_log_z(spec in polynomial(12), seed in any::<u64>()) {
        let mrf = spec.build();
        let eps = eps_f64(&mrf);
        let stats = vertex_stats(&mrf);
        let mc = monte_carlo_log_z_tilde(&mrf, &mut root_rng(seed), 2000);
        prop_assert!(mc.max_neg_energy <= -stats.e_min + eps);
        let log_z = mrf.log_partition().expect("exact log Z");
        prop_assert!(
            mc.log_z_tilde + 5.0 * mc.std_err < log_z,
            "log Z̃ = {} ± {}, log Z = {}", mc.log_z_tilde, mc.std_err, log_z
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// GB Theorem 2 by quadrature (docs/algorithms.md §8 T2.3), general polynomials with `n ≤ 4`,
    /// 1–15 monomials (all the distinct monomials 4 units have), degree ≤ 4,
    /// `s ∈ {0.5, 2, 5}`: `log Z̃` by the full tensor Gauss–Legendre rule (24 nodes per panel,
    /// panels by the slope bound) and, independently, with the last axis integrated
    /// analytically through `φ` on the reference evaluator; the two agree to `1e-10`, and
    /// `log Z̃ ≤ −E_min` and `log Z̃ ≤ log Z` (vertices, agreeing with the priors crate).
    #[test]
    fn thm2_quadrature_small_polynomials(
        spec in prop_oneof![
            8 => general_polynomial(1..=4, 1..=15, 4),
            1 => polynomial(4),
        ],
    ) {
        let mrf = spec.build();
        let n = spec.n;
        let rule = rule_for_slope(spec.slope_bound());
        let analytic = log_z_tilde_last_analytic(&spec, &rule);
        if rule.nodes.len().pow(n as u32) <= TENSOR_BUDGET {
            let tensor = log_z_tilde_tensor(&mrf, &rule);
            prop_assert!(
                (tensor - analytic).abs() <= 1e-10 * (1.0 + analytic.abs()),
                "tensor {} vs analytic-last {}", tensor, analytic
            );
        }
        let stats = vertex_stats(&mrf);
        let log_z = mrf.log_partition().expect("exact log Z");
        prop_assert!((log_z - stats.log_z).abs() <= 1e-5 * (1.0 + mrf.coeff_abs_sum()));
        check_thm2(&mrf, analytic, stats.log_z, eps_f64(&mrf))?;
    }

    /// GB Theorem 2 for RBMs by quadrature over `ζ1` (`n1 ≤ 3`) with `ζ2` integrated
    /// analytically, `log Z̃ = log ∫ exp(aᵀζ1 + Σ_j φ(b_j + (Wᵀζ1)_j)) dζ1` (docs/algorithms.md §8 T2.3):
    /// `log Z̃ ≤ −E_min` and `log Z̃ ≤ log Z` with the RBM's exact `log Z`, and for
    /// `n1 + n2 ≤ 5` agreement to `1e-10` with tensor quadrature of the RBM as a polynomial.
    #[test]
    fn thm2_quadrature_rbm(spec in rbm(1..=3, 1..=8, 11)) {
        let prior = spec.build();
        let (a, b, w) = spec.to_f64();
        let poly = gumbolt_priors::PolynomialMrf::from(&prior);
        let slope = (0..a.len())
            .map(|i| a[i].abs() + w.row(i).iter().map(|v| v.abs()).sum::<f64>())
            .fold(0.0, f64::max);
        let log_z_tilde = rbm_log_z_tilde(&a, &b, &w, &rule_for_slope(slope));
        if a.len() + b.len() <= 5 {
            let poly_slope = (0..b.len())
                .map(|j| b[j].abs() + w.column(j).iter().map(|v| v.abs()).sum::<f64>())
                .fold(slope, f64::max);
            let via_poly = log_z_tilde_last_analytic(&poly, &rule_for_slope(poly_slope));
            prop_assert!(
                (via_poly - log_z_tilde).abs() <= 1e-10 * (1.0 + log_z_tilde.abs()),
                "RBM quadrature {} vs polynomial quadrature {}", log_z_tilde, via_poly
            );
        }
        let log_z = prior.log_partition().expect("exact RBM log Z");
        let tol32 = 1e-5 * (1.0 + spec.coeff_abs_sum());
        prop_assert!((log_z - vertex_stats(&poly).log_z).abs() <= tol32);
        check_thm2(&poly, log_z_tilde, log_z, tol32)?;
    }
}

/// GB Theorem 2 sanity values (docs/algorithms.md §8 T2.5): `E ≡ 0` gives `Z̃ = 1 ≤ Z = 2^n`; a single
/// bias `E = cz` gives `Z̃ = (1 − e^{−c})/c` and `Z = 1 + e^{−c}`; a sum of biases factorises.
/// Quadrature reproduces them to `1e-10`.
#[test]
fn thm2_quadrature_sanity_values() {
    let rule = gauss_legendre_unit(NODES);
    for n in 1..=4 {
        let zero = PolySpec::zero(n).build();
        assert!(log_z_tilde_tensor(&zero, &rule).abs() < 1e-10, "n={n}");
        assert!(
            log_z_tilde_last_analytic(&zero, &rule).abs() < 1e-10,
            "n={n}"
        );
        let log_z = zero.log_partition().unwrap();
        assert!((log_z - n as f64 * 2f64.ln()).abs() < 1e-10);
        assert!(0.0 <= log_z);
    }
    for c in [-20.0f64, -5.0, -1.0, -1e-3, 1e-3, 0.3, 2.0, 5.0, 20.0] {
        let one = PolySpec::from_terms(1, [(vec![0], c)]).build();
        let z_tilde = log_z_tilde_tensor(&one, &rule).exp();
        let want = -(-c).exp_m1() / c;
        assert!(
            ((z_tilde - want) / want).abs() < 1e-10,
            "c={c}: Z̃ {z_tilde} vs {want}"
        );
        assert!((log_z_tilde_last_analytic(&one, &rule) - want.ln()).abs() < 1e-10);
        let z = one.log_partition().unwrap().exp();
        assert!(((z - (1.0 + (-c).exp())) / z).abs() < 1e-10, "c={c}: Z {z}");
        assert!(z_tilde <= z && z_tilde <= (-c.min(0.0)).exp());
    }
    // E = Σ c_i z_i on 4 units: Z̃ = Π (1 − e^{−c_i})/c_i by the full 24⁴-point tensor rule.
    let cs = [1.5, -2.0, 0.7, -4.0];
    let sum = PolySpec::from_terms(4, cs.iter().enumerate().map(|(i, &c)| (vec![i], c))).build();
    let want: f64 = cs.iter().map(|&c: &f64| (-(-c).exp_m1() / c).ln()).sum();
    assert!((log_z_tilde_tensor(&sum, &rule) - want).abs() < 1e-10);
    let want_z: f64 = cs.iter().map(|&c: &f64| softplus(-c)).sum();
    assert!((sum.log_partition().unwrap() - want_z).abs() < 1e-10);
}

/// GB Theorem 2, RBM quadrature sanity (docs/algorithms.md §8 T2.3): with `W = 0` the RBM factorises,
/// `log Z̃ = Σ φ(a_i) + Σ φ(b_j)` and `log Z = Σ softplus(a_i) + Σ softplus(b_j)`.
#[test]
fn thm2_rbm_quadrature_factorises_without_couplings() {
    let a = [0.5f64, -3.0, 2.0];
    let b = [1.0f64, -0.25, 4.0, -6.0];
    let got = rbm_log_z_tilde(&a, &b, &DMatrix::zeros(3, 4), &gauss_legendre_unit(NODES));
    let want: f64 = a.iter().chain(&b).map(|&c| phi(c)).sum();
    assert!((got - want).abs() < 1e-10, "{got} vs {want}");
    let spec = RbmSpec {
        a: a.iter().map(|&v| v as f32).collect(),
        b: b.iter().map(|&v| v as f32).collect(),
        w: DMatrix::zeros(3, 4),
    };
    let log_z = spec.build().log_partition().unwrap();
    let want_z: f64 = a.iter().chain(&b).map(|&c| softplus(c)).sum();
    assert!((log_z - want_z).abs() < 1e-5, "{log_z} vs {want_z}");
    assert!(got <= want_z);
}

/// GB Theorem 2 on a 2×6 RBM, the size of the numeric check of docs/algorithms.md §8 T2.3: the
/// quadrature `log Z̃` agrees with a 10⁶-sample Monte-Carlo estimate within 5 standard errors
/// (fixed seed), and `log Z̃ ≤ −E_min`, `log Z̃ ≤ log Z` (weights drawn from `N(0, 1.5²)`).
#[test]
fn thm2_rbm_2x6_quadrature_matches_monte_carlo() {
    let mut rng = root_rng(20_180_612);
    let mut draw = |k: usize| {
        (0..k)
            .map(|_| (1.5 * std_normal(&mut rng)) as f32)
            .collect::<Vec<f32>>()
    };
    let spec = RbmSpec {
        a: draw(2),
        b: draw(6),
        w: DMatrix::from_vec(2, 6, draw(12)),
    };
    let prior = spec.build();
    let poly = gumbolt_priors::PolynomialMrf::from(&prior);
    let (a, b, w) = spec.to_f64();
    let quad = rbm_log_z_tilde(&a, &b, &w, &gauss_legendre_composite(NODES, 2));
    let mc = monte_carlo_log_z_tilde(&poly, &mut root_rng(7), 1_000_000);
    assert!(
        (quad - mc.log_z_tilde).abs() <= 5.0 * mc.std_err,
        "quadrature {quad} vs MC {} ± {}",
        mc.log_z_tilde,
        mc.std_err
    );
    assert!(
        mc.std_err < 0.01,
        "MC too noisy to be a check: {}",
        mc.std_err
    );
    let stats = vertex_stats(&poly);
    let log_z = prior.log_partition().unwrap();
    eprintln!(
        "2×6 RBM: log Z̃ quadrature {quad:.5}, MC {:.5} ± {:.5}; −E_min {:.4}; log Z {:.4}",
        mc.log_z_tilde, mc.std_err, -stats.e_min, log_z
    );
    assert!(quad <= -stats.e_min && quad <= log_z);
}

/// Negative control: `check_thm2`, given the non-multilinear bowl `E = −12 Σ ζ_i(1 − ζ_i)`
/// (0 at every vertex), reports the violation (`log Z̃ ≈ 2.3 > −E_min = 0` on one unit, and
/// `log Z̃ > log Z` on two).
#[test]
fn control_check_thm2_reports_a_non_multilinear_energy() {
    for n in [1, 2] {
        let bowl = gumbolt_tests::eq8::Bowl { n, k: 3.0 };
        let log_z_tilde = log_z_tilde_tensor(&bowl, &rule_for_slope(bowl.slope()));
        let log_z = vertex_stats(&bowl).log_z;
        let err = check_thm2(&bowl, log_z_tilde, log_z, eps_f64(&bowl))
            .expect_err("the bowl violates Eq. 12");
        assert!(err.to_string().contains("log Z̃"), "{err}");
    }
    let bowl = gumbolt_tests::eq8::Bowl { n: 2, k: 3.0 };
    let log_z_tilde = log_z_tilde_tensor(&bowl, &rule_for_slope(bowl.slope()));
    assert!(log_z_tilde > vertex_stats(&bowl).log_z + 1.0);
}

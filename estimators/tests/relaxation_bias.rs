//! The relaxations' bias shrinks as the temperature goes to 0 (issue 4): for one Bernoulli unit
//! with `q = σ(l)` and a smooth objective `f`, the exact gradient of the discrete expectation is
//! `∂/∂l [q f(1) + (1 − q) f(0)] = q(1 − q)(f(1) − f(0))`. The mean of each pathwise estimator,
//! `E_ρ[f'(ζ(l, ρ)) ∂ζ/∂l]`, is computed by midpoint quadrature over ρ with the estimators' own
//! `sample_into` and `logits_grad_into`, so no Monte-Carlo error enters; its distance to the
//! exact gradient must fall as τ (Gumbel) or 1/β (spike-and-exponential, overlapping
//! exponentials) falls.

use gumbolt_core::{Mat, PathwiseEstimator, PathwiseGrad};
use gumbolt_estimators::{GumbelRelaxation, OverlappingExp, SpikeAndExp};

/// Quadrature points over ρ ∈ (0, 1).
const POINTS: usize = 200_000;

/// A non-linear objective and its derivative.
fn f(z: f64) -> f64 {
    (z - 0.3).powi(2) + 0.5 * z
}

fn df(z: f64) -> f64 {
    2.0 * (z - 0.3) + 0.5
}

/// `E_ρ[f'(ζ) ∂ζ/∂l]` for the estimator at logit `l`.
fn mean_pathwise_gradient(est: &dyn PathwiseEstimator, l: f32) -> f64 {
    let logits = Mat::from_element(POINTS, 1, l);
    let noise = Mat::from_fn(POINTS, 1, |i, _| ((i as f64 + 0.5) / POINTS as f64) as f32);
    let mut zeta = Mat::zeros(0, 0);
    est.sample_into(&logits, &noise, &mut zeta);
    let g = zeta.map(|z| df(z as f64) as f32);
    let mut dl = Mat::zeros(0, 0);
    est.logits_grad_into(
        PathwiseGrad {
            logits: &logits,
            noise: &noise,
            sample: &zeta,
            grad_sample: &g,
        },
        &mut dl,
    );
    dl.iter().map(|&v| v as f64).sum::<f64>() / POINTS as f64
}

fn exact_gradient(l: f32) -> f64 {
    let q = 1.0 / (1.0 + (-(l as f64)).exp());
    q * (1.0 - q) * (f(1.0) - f(0.0))
}

/// Asserts that the largest `|bias|` over a grid of logits decreases strictly along
/// `temperatures` (largest first) and ends below `final_tol`. (At a single logit the bias can
/// change sign as τ falls, so it is the worst case over logits that must shrink.)
fn check_shrinks(
    name: &str,
    temperatures: &[f64],
    make: impl Fn(f64) -> Box<dyn PathwiseEstimator>,
    final_tol: f64,
) {
    let logits = [-1.5f32, -0.3, 0.0, 0.8, 2.0];
    let worst: Vec<f64> = temperatures
        .iter()
        .map(|&t| {
            let est = make(t);
            logits
                .iter()
                .map(|&l| (mean_pathwise_gradient(est.as_ref(), l) - exact_gradient(l)).abs())
                .fold(0.0, f64::max)
        })
        .collect();
    for w in worst.windows(2) {
        assert!(
            w[1] < w[0],
            "{name}: max |bias| does not shrink along τ = {temperatures:?}: {worst:?}"
        );
    }
    let last = *worst.last().unwrap();
    assert!(
        last < final_tol,
        "{name}: max |bias| {last} at the smallest τ; along τ = {temperatures:?}: {worst:?}"
    );
}

#[test]
fn gumbel_relaxation_bias_shrinks_as_tau_goes_to_zero() {
    check_shrinks(
        "Gumbel",
        &[1.0, 0.5, 0.25, 1.0 / 7.0, 0.05],
        |t| Box::new(GumbelRelaxation::new(t).unwrap()),
        0.006,
    );
}

#[test]
fn spike_and_exponential_bias_shrinks_as_beta_grows() {
    check_shrinks(
        "spike-and-exp",
        // β ≤ 8: beyond, the slope of ζ at the spike's edge (∝ e^β) is narrower than the
        // quadrature grid resolves.
        &[1.0, 0.5, 0.25, 0.125],
        |t| Box::new(SpikeAndExp::new(1.0 / t).unwrap()),
        0.06,
    );
}

#[test]
fn overlapping_exponential_bias_shrinks_as_beta_grows() {
    check_shrinks(
        "overlapping-exp",
        &[1.0, 0.5, 0.2, 0.1, 0.05],
        |t| Box::new(OverlappingExp::new(1.0 / t).unwrap()),
        0.025,
    );
}

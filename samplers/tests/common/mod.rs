//! Shared helpers of the statistical tests.
//!
//! Every Monte-Carlo assertion compares an estimate with an exact value using a tolerance of
//! `K` standard errors of the estimator, where the samples are independent (one sample per
//! independent chain), so the binomial standard error is exact. With `K = 5` a single
//! comparison fails by chance with probability 6e-7; seeds are fixed, so the tests are
//! deterministic.
#![allow(dead_code)]

use gumbolt_core::Mat;
use gumbolt_priors::Rbm;

/// Standard errors allowed.
pub const K: f64 = 5.0;

/// A random RBM (`a, b, W ~ N(0, scale²)`), reproducible from `seed`.
pub fn random_rbm(n1: usize, n2: usize, scale: f32, seed: u64) -> Rbm {
    let mut rng = gumbolt_core::rng::root_rng(seed);
    Rbm::random(n1, n2, scale, &mut rng)
}

/// Column means of 0/1 samples.
pub fn column_means(z: &Mat) -> Vec<f64> {
    z.column_iter()
        .map(|c| c.iter().map(|&v| v as f64).sum::<f64>() / z.nrows() as f64)
        .collect()
}

/// Asserts `|got_i − want_i| ≤ K·sqrt(p(1−p)/n) + 1e-9` for Bernoulli means over `n`
/// independent samples, with `p` the exact value (floored at 1/n so that near-deterministic
/// units still get a meaningful tolerance).
pub fn assert_bernoulli_means(what: &str, got: &[f64], want: &[f64], n: usize) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let nf = n as f64;
    let mut worst = 0.0f64;
    for (i, (&g, &p)) in got.iter().zip(want).enumerate() {
        let p_eff = p.clamp(1.0 / nf, 1.0 - 1.0 / nf);
        let se = (p_eff * (1.0 - p_eff) / nf).sqrt();
        let z = (g - p).abs() / se;
        worst = worst.max(z);
        assert!(
            (g - p).abs() <= K * se + 1e-9,
            "{what}[{i}]: sampled {g:.5}, exact {p:.5}, {z:.1} standard errors (se {se:.2e})"
        );
    }
    eprintln!(
        "{what}: worst deviation {worst:.2} standard errors over {} means",
        got.len()
    );
}

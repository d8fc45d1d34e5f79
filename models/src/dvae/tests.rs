//! Finite-difference check of the whole smoothed-ELBO gradient and the closed-form KL against
//! exact enumeration.

use gumbolt_core::Mat;
use gumbolt_core::prior::ExactPartition;
use gumbolt_core::rng::{fill_uniform, root_rng};
use gumbolt_priors::Rbm;

use super::*;
use crate::gumbolt::{ExactPartitionGradient, FixedSamples, SampledPartition, Structure};
use crate::nn::testutil::{check_close, fd_grad};

fn binary(rows: usize, cols: usize, seed: u64) -> Mat {
    let mut v = vec![0.0f32; rows * cols];
    fill_uniform(&mut root_rng(seed), &mut v);
    Mat::from_vec(
        rows,
        cols,
        v.into_iter().map(|u| (u < 0.4) as u8 as f32).collect(),
    )
}

fn uniforms(rows: usize, cols: usize, seed: u64) -> Mat {
    let mut v = vec![0.0f32; rows * cols];
    fill_uniform(&mut root_rng(seed), &mut v);
    Mat::from_vec(rows, cols, v)
}

/// 6 pixels, 4 latent units (a 2×2 RBM), one hidden layer of width 3, large weight decay.
fn tiny_model(smoothing: Smoothing, seed: u64) -> SmoothedElbo {
    let mut c = GumBoltConfig::new(Structure::Nonlinear, 6);
    c.latent_units = 4;
    c.hidden_units = 3;
    c.hidden_layers = 1;
    c.seed = seed;
    c.train.adam.weight_decay = 0.05;
    let means = [0.1f32, 0.35, 0.6, 0.0005, 0.9, 0.999];
    let rbm = Rbm::random(2, 2, 0.7, &mut root_rng(seed + 100));
    let mut m = SmoothedElbo::new(&c, &means, rbm, smoothing).unwrap();
    // Move every non-kernel tensor away from its initial value.
    let mut t = 0.0f32;
    for p in m.params_mut() {
        if p.name != "kernel" {
            for v in p.value.iter_mut() {
                t += 1.0;
                *v += 0.3 * (t * 0.77).sin();
            }
        }
    }
    m
}

/// Noise whose entries are kept away from the spike-and-exp kink at `ρ = 1 − q`, so that
/// finite differences do not cross it.
fn safe_noise(model: &SmoothedElbo, x: &Mat, k: usize, seed: u64) -> Mat {
    let mut noise = uniforms(x.nrows() * k, 4, seed);
    let mut m = model.clone();
    let mut part = SampledPartition::new(FixedSamples(binary(5, 4, 1)));
    m.loss_and_grad(x, &noise, &mut part, 1.0).unwrap();
    for (r, &l) in noise.iter_mut().zip(m.last_logits().iter()) {
        let edge = 1.0 - sigmoid(l as f64) as f32;
        if (*r - edge).abs() < 0.08 {
            *r = if edge > 0.5 { edge - 0.2 } else { edge + 0.2 };
        }
    }
    noise
}

fn check_whole_gradient<G: PartitionGradient<Rbm> + Clone>(
    base: &SmoothedElbo,
    part: &G,
    x: &Mat,
    noise: &Mat,
    beta: f64,
    what: &str,
) {
    let mut m = base.clone();
    let mut p = part.clone();
    let parts = m.loss_and_grad(x, noise, &mut p, beta).unwrap();
    assert!(parts.loss.is_finite());
    let again = m.loss_and_grad(x, noise, &mut p, beta).unwrap();
    assert_eq!(parts.loss, again.loss, "{what}: not deterministic");
    let lambda = base.weight_decay as f32;
    let analytic = m.grads_with_decay(lambda);
    for (t, (name, an)) in analytic.iter().enumerate() {
        let fd = fd_grad(an.len(), 1e-2, |i, h| {
            let mut mm = base.clone();
            mm.params_mut()[t].value[i] += h;
            let mut pp = part.clone();
            mm.loss_and_grad(x, noise, &mut pp, beta).unwrap().loss
        });
        check_close(an, &fd, 3e-3, 1e-3, &format!("{what}: tensor {t} ({name})"));
        let before_bn = analytic.get(t + 1).is_some_and(|(n, _)| *n == "gamma");
        assert!(
            before_bn || an.iter().any(|g| g.abs() > 1e-4),
            "{what}: tensor {t} ({name}) has an all-zero gradient"
        );
    }
}

#[test]
fn whole_gradient_matches_finite_differences() {
    for (smoothing, seed) in [
        (Smoothing::spike_exp(5.0).unwrap(), 3),
        (Smoothing::overlap_exp(4.0).unwrap(), 4),
    ] {
        let model = tiny_model(smoothing, seed);
        let x = binary(3, 6, seed + 10);
        let noise = safe_noise(&model, &x, 2, seed + 20);
        let sampled = SampledPartition::new(FixedSamples(binary(5, 4, seed + 30)));
        let what = format!("{smoothing:?}");
        check_whole_gradient(&model, &sampled, &x, &noise, 0.7, &format!("{what} PCD"));
        let exact = ExactPartitionGradient::new();
        check_whole_gradient(&model, &exact, &x, &noise, 1.0, &format!("{what} exact"));
    }
}

#[test]
fn kl_matches_exact_enumeration() {
    for smoothing in [
        Smoothing::spike_exp(5.0).unwrap(),
        Smoothing::overlap_exp(8.0).unwrap(),
    ] {
        let mut model = tiny_model(smoothing, 7);
        let x = binary(3, 6, 17);
        let noise = uniforms(3, 4, 27);
        let mut part = ExactPartitionGradient::new();
        let parts = model.loss_and_grad(&x, &noise, &mut part, 1.0).unwrap();
        let rbm = model.prior().clone();
        let log_z = rbm.log_partition().unwrap();
        assert!((parts.log_z_surrogate - log_z).abs() < 1e-9);
        let logits = model.last_logits().clone();
        let mut want_mean = 0.0;
        for r in 0..logits.nrows() {
            let mut kl = 0.0;
            for bits in 0..16u32 {
                let z: Vec<f32> = (0..4).map(|i| ((bits >> i) & 1) as f32).collect();
                let log_q: f64 = (0..4)
                    .map(|i| {
                        let l = logits[(r, i)] as f64;
                        if z[i] > 0.5 {
                            -softplus(-l)
                        } else {
                            -softplus(l)
                        }
                    })
                    .sum();
                let neg_e = rbm.a()[0] as f64 * z[0] as f64
                    + rbm.a()[1] as f64 * z[1] as f64
                    + rbm.b()[0] as f64 * z[2] as f64
                    + rbm.b()[1] as f64 * z[3] as f64
                    + (0..2)
                        .flat_map(|i| (0..2).map(move |j| (i, j)))
                        .map(|(i, j)| (rbm.w()[(i, j)] * z[i] * z[2 + j]) as f64)
                        .sum::<f64>();
                kl += log_q.exp() * (log_q - (neg_e - log_z));
            }
            let got = model.last_kl()[r];
            assert!(
                (got - kl).abs() < 1e-5 * (1.0 + kl.abs()),
                "row {r}: closed form {got} vs exact {kl}"
            );
            assert!(kl >= 0.0);
            want_mean += kl / logits.nrows() as f64;
        }
        assert!((parts.kl - want_mean).abs() < 1e-5 * (1.0 + want_mean));
    }
}

#[test]
fn shape_errors_and_two_layer_configs_are_rejected() {
    let mut model = tiny_model(Smoothing::spike_exp(5.0).unwrap(), 1);
    let mut part = ExactPartitionGradient::new();
    let x = binary(3, 6, 2);
    assert!(matches!(
        model.loss_and_grad(&x, &uniforms(4, 4, 3), &mut part, 1.0),
        Err(ModelError::Shape { .. })
    ));
    let mut c = GumBoltConfig::new(Structure::Nonlinear2, 6);
    c.latent_units = 4;
    let means = [0.5f32; 6];
    let r = SmoothedElbo::new(
        &c,
        &means,
        Rbm::zeros(2, 2),
        Smoothing::spike_exp(5.0).unwrap(),
    );
    assert!(matches!(r, Err(ModelError::InvalidConfig { .. })));
    assert!(Smoothing::overlap_exp(0.0).is_err());
}

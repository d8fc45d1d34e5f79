//! Writing your own training objective: the Gumbel-relaxed ELBO averaged over k samples.
//!
//! ```text
//! cargo run --release -p gumbolt-examples --example custom_objective
//! ```
//!
//! GumBolt trains on the importance-weighted objective of GB Eq. 9, `log (1/k) Σ_i w_i` over the
//! k relaxed samples of an image. A relaxed objective is defined by how it combines the k
//! log-weights `log w_i` of an image (a `SampleCombination`, models/src/gumbolt/combination.rs),
//! plugged into GumBolt's relaxed objective (`IwRelaxed::with_combination`,
//! models/src/gumbolt/objective/iw_relaxed.rs): the model back-propagates the combination's
//! derivatives `∂objective/∂log w_i` through every sample. This example defines, entirely here, the relaxed ELBO averaged over the samples,
//! `(1/k) Σ_i log w_i` (derivatives 1/k: no importance weighting), plugs it into the library's
//! model, trains a `~` GumBolt on the bundled MNIST for a few hundred iterations and evaluates it
//! with the library's evaluator, checking that
//!
//! - the plugged-in objective is the one trained: on the same noise its loss is at least the
//!   importance-weighted one (Jensen: the mean of the log-weights is at most their log-mean-exp),
//!   and it is not equal to it for k > 1;
//! - every loss is finite and the loss improves over training;
//! - the trained model's test NLL beats the untrained model's.

use gumbolt_datasets::load_bundled_mnist;
use gumbolt_models::eval::{EvalConfig, LogZConfig, estimate_log_z, evaluate};
use gumbolt_models::gumbolt::{
    GumBolt, GumBoltConfig, GumBoltRbm, IwRelaxed, SampleCombination, Structure,
};
use gumbolt_models::train::TrainState;
use gumbolt_samplers::PcdConfig;
use std::sync::Arc;

/// The relaxed ELBO averaged over the k samples of an image.
#[derive(Debug)]
struct AveragedElbo;

impl SampleCombination for AveragedElbo {
    fn combine(&self, log_w: &[f64], grad: &mut [f64]) -> f64 {
        let k = log_w.len() as f64;
        grad.fill(1.0 / k);
        log_w.iter().sum::<f64>() / k
    }
}

const ITERS: u64 = 400;
const K: usize = 5;
const TEST_IMAGES: usize = 500;
const SAMPLES: usize = 100;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The library's floating-point mode on this thread (the model's own threads set it too).
    gumbolt_core::fpmode::enable_flush_to_zero();
    let data = load_bundled_mnist()?;
    let (test, _) = data.test.clone().split_at(TEST_IMAGES)?;
    let config = GumBoltConfig::new(Structure::Nonlinear, data.train.dim())
        .with_k(K)
        .with_seed(3)
        .with_iterations(ITERS);
    let pcd = PcdConfig::default().chains(100).sweeps(25).seed(11);
    let mut model = GumBolt::with_pcd(config, &data.train.pixel_means(), pcd)?;

    let eval_cfg = EvalConfig::default().with_samples(SAMPLES).with_seed(5);
    let test_nll = |m: &GumBoltRbm| -> Result<f64, Box<dyn std::error::Error>> {
        let log_z = estimate_log_z(m.prior(), &LogZConfig::pt_bar(), &mut |_| {})?;
        Ok(evaluate(m, &test, &eval_cfg, &log_z, &mut |_| {})?.test_nll)
    };
    let untrained = test_nll(&model)?;

    // The plugged-in objective is what the model trains: compare both on the same noise.
    let batch: Vec<usize> = (0..100).collect();
    let x = data.train.gather(&batch);
    let noise = model.draw_noise(&mut gumbolt_core::rng::root_rng(7), x.nrows() * K);
    let iw_loss = model.clone().loss_and_grad(&x, &noise, 1.0)?.loss;
    let tau = model.config().tau;
    model.set_objective(Box::new(
        IwRelaxed::new(tau)?.with_combination(Arc::new(AveragedElbo)),
    ));
    let elbo_loss = model.clone().loss_and_grad(&x, &noise, 1.0)?.loss;
    println!(
        "same noise, k = {K}: importance-weighted loss {iw_loss:.3}, averaged ELBO loss {elbo_loss:.3}"
    );
    assert!(
        elbo_loss >= iw_loss - 1e-6 && elbo_loss - iw_loss > 1e-3,
        "the averaged ELBO must be a looser objective than GB Eq. 9 for k > 1"
    );

    let n = data.train.n();
    let mut state = TrainState::new(model.config())?;
    let mut losses = Vec::with_capacity(ITERS as usize);
    for t in 0..ITERS {
        let idx: Vec<usize> = (0..100)
            .map(|i| (t as usize * 100 + i * 7919) % n)
            .collect();
        let stats = model.train_step(&data.train.gather(&idx), t, &mut state)?;
        assert!(
            stats.parts.loss.is_finite(),
            "iteration {t}: loss {}",
            stats.parts.loss
        );
        losses.push(stats.parts.loss);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (first, last) = (mean(&losses[..50]), mean(&losses[losses.len() - 50..]));
    println!(
        "training loss (averaged ELBO, k = {K}): first 50 iterations {first:.2}, last 50 {last:.2}"
    );
    assert!(last < first, "the loss did not improve: {first} → {last}");

    let trained = test_nll(&model)?;
    println!(
        "test NLL ({SAMPLES}-sample IW bound, first {TEST_IMAGES} test images, log Z by PT + BAR): \
         untrained {untrained:.2}, after {ITERS} iterations {trained:.2}"
    );
    assert!(trained.is_finite() && trained < untrained);
    Ok(())
}

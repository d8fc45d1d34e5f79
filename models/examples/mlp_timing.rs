//! Times one forward + backward pass of the reference's non-linear encoder and decoder shapes
//! (docs/algorithms.md §9) and reports the achieved GFLOP/s of the whole pass.
//!
//! `cargo run --release -p gumbolt-models --example mlp_timing`

use std::time::Instant;

use gumbolt_core::Mat;
use gumbolt_models::nn::{Adam, AdamConfig, MlpConfig, Mode, Trainable};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut rng = gumbolt_core::rng::root_rng(0);
    for (name, cfg, rows) in [
        (
            "encoder 784-200-200-200, N=100",
            MlpConfig::new(784, [200, 200], 200),
            100,
        ),
        (
            "decoder 200-200-200-784, N=100",
            MlpConfig::new(200, [200, 200], 784),
            100,
        ),
        (
            "decoder 200-200-200-784, N=2000",
            MlpConfig::new(200, [200, 200], 784),
            2000,
        ),
    ] {
        let mut net = cfg.build(&mut rng)?;
        let mut adam = Adam::new(AdamConfig::default())?;
        let x = Mat::from_fn(rows, cfg.input, |i, j| {
            ((i * 31 + j * 17) % 7) as f32 / 7.0 - 0.4
        });
        let dy = Mat::from_fn(rows, cfg.output, |i, j| {
            ((i * 13 + j * 5) % 11) as f32 / 11.0 - 0.5
        });
        // Multiply-adds of forward (X·W) + backward (Xᵀ·dY and dY·Wᵀ), per dense layer.
        let mut widths = vec![cfg.input];
        widths.extend(&cfg.hidden);
        widths.push(cfg.output);
        let flops: f64 = widths
            .windows(2)
            .map(|w| 3.0 * 2.0 * (rows * w[0] * w[1]) as f64)
            .sum();
        let iters = if rows > 1000 { 20 } else { 200 };
        let mut best = f64::INFINITY;
        for rep in 0..3 {
            let t = Instant::now();
            for _ in 0..iters {
                net.forward(&x, Mode::Train);
                net.zero_grad();
                net.backward(&dy);
                adam.step(&mut net.params_mut(), 1e-4)?;
            }
            let dt = t.elapsed().as_secs_f64() / iters as f64;
            if rep > 0 {
                best = best.min(dt);
            }
        }
        println!(
            "{name}: {:.3} ms per forward+backward+Adam step, {:.1} GFLOP/s (GEMM flops only)",
            best * 1e3,
            flops / best / 1e9
        );
    }
    Ok(())
}

//! Wall time of [`evaluate`] for a few worker-thread counts (the noise streams are per image
//! chunk, so every setting gives the same numbers). `MATMUL_NUM_THREADS` controls
//! matrixmultiply's own GEMM threads.
//!
//! Measured on the project machine (2 cores, quiet), 1000 images × 400 samples of a
//! `nonlinear` model: 1 worker 2.95 s (matrixmultiply threading on) / 3.13 s
//! (`MATMUL_NUM_THREADS=1`); 2 workers 1.9 s / 1.62 s. Worker threads over image chunks are
//! kept; matrixmultiply's threading on top of them costs ≈ 15 %.
//!
//! `cargo run --release -p gumbolt-models --example eval_timing -- [images] [samples] [threads...]`

use std::time::Instant;

use gumbolt_datasets::load_bundled_mnist;
use gumbolt_models::eval::{EvalConfig, LogZ, evaluate};
use gumbolt_models::gumbolt::{GumBolt, GumBoltConfig, Structure};
use gumbolt_models::train::{Interval, TrainImages, Trainer, TrainerConfig};
use gumbolt_samplers::PcdConfig;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().unwrap())
        .collect();
    let images = args.first().copied().unwrap_or(500);
    let samples = args.get(1).copied().unwrap_or(400);
    let threads: Vec<usize> = if args.len() > 2 {
        args[2..].to_vec()
    } else {
        vec![1, 2]
    };
    let data = load_bundled_mnist()?;
    let config = GumBoltConfig::new(Structure::Nonlinear, data.train.dim()).with_iterations(100);
    let pcd = PcdConfig::default().chains(100).sweeps(20);
    let model = GumBolt::with_pcd(config, &data.train.pixel_means(), pcd)?;
    let tc = TrainerConfig::default().with_monitor_interval(Interval::Never);
    let mut t = Trainer::new(model, TrainImages::Binary(data.train), None, tc)?;
    t.run(u64::MAX, &mut |_| {})?;
    let model = t.into_model();
    let test = gumbolt_datasets::Dataset::from_row_major(
        data.test.images()[..images * 784].to_vec(),
        784,
    )?;
    let log_z = LogZ::new(0.0, 0.0);
    println!(
        "MATMUL_NUM_THREADS={:?}: {images} images x {samples} samples",
        std::env::var("MATMUL_NUM_THREADS").ok()
    );
    for &th in &threads {
        let cfg = EvalConfig::default().with_samples(samples).with_threads(th);
        let t0 = Instant::now();
        let r = evaluate(&model, &test, &cfg, &log_z, &mut |_| {})?;
        let dt = t0.elapsed().as_secs_f64();
        let rows = (images * samples) as f64;
        // decoder 200·200 + 200·200 + 200·784 multiply-adds per row, encoder negligible
        let flop = 2.0 * rows * (200.0 * 200.0 * 2.0 + 200.0 * 784.0);
        println!(
            "threads {th}: {dt:.2} s, {:.1} µs/row, {:.0} GFLOP/s (decoder GEMMs), nll {:.4}",
            1e6 * dt / rows,
            flop / dt / 1e9,
            r.test_nll
        );
    }
    Ok(())
}

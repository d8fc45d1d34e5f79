//! A short GumBolt run on the bundled MNIST and the wall time of one training iteration.
//!
//! 1. 50 iterations of the `nonlinear` structure (GB Table 1 `~`) with a cheap PCD (100 chains,
//!    5 sweeps), printing the loss.
//! 2. The time per iteration at batch 100 with 100 PCD chains × 200 sweeps (GB §5.1), for
//!    k = 1 and k = 5 (and `nonlinear2` for reference), split into the PCD negative phase and
//!    the rest (networks, objective, backward, Adam).
//!
//! `cargo run --release -p gumbolt-models --example gumbolt_timing [sweeps]` (default 200
//! sweeps; a small value isolates the cost of the networks).

use std::time::Instant;

use gumbolt_core::Sampler;
use gumbolt_core::rng::{root_rng, uniform_f64};
use gumbolt_datasets::{Dataset, load_bundled_mnist};
use gumbolt_models::gumbolt::{GumBolt, GumBoltConfig, Structure};
use gumbolt_models::train::TrainState;
use gumbolt_priors::Rbm;
use gumbolt_samplers::{Pcd, PcdConfig};

fn batch(data: &Dataset, rng: &mut gumbolt_core::rng::StreamRng) -> gumbolt_core::Mat {
    let idx: Vec<usize> = (0..100)
        .map(|_| (uniform_f64(rng) * data.n() as f64) as usize)
        .collect();
    data.gather(&idx)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sweeps: usize = match std::env::args().nth(1) {
        Some(a) => a.parse()?,
        None => 200,
    };
    let data = load_bundled_mnist()?;
    let means = data.train.pixel_means();
    let mut rng = root_rng(1);

    println!("== 50 iterations, nonlinear, k = 1, PCD 100 chains x 5 sweeps, T = 50 ==");
    let config = GumBoltConfig::new(Structure::Nonlinear, data.train.dim()).with_iterations(50);
    let pcd = PcdConfig::default().chains(100).sweeps(5);
    let mut m = GumBolt::with_pcd(config, &means, pcd)?;
    let mut st = TrainState::new(m.config())?;
    for t in 0..50 {
        let s = m.train_step(&batch(&data.train, &mut rng), t, &mut st)?;
        if t % 10 == 0 || t == 49 {
            let p = s.parts;
            println!(
                "t {t:3}  beta {:.2}  loss {:8.2}  -log p(x|zeta) {:7.2}  log q {:7.2}  -E {:7.2}",
                p.beta, p.loss, -p.log_px_given_zeta, p.log_q, p.neg_energy
            );
        }
    }

    println!("\n== time per iteration: batch 100, PCD 100 chains x {sweeps} sweeps ==");
    for (structure, k) in [
        (Structure::Nonlinear, 1),
        (Structure::Nonlinear, 5),
        (Structure::Nonlinear2, 1),
        (Structure::Nonlinear2, 5),
    ] {
        let config = GumBoltConfig::new(structure, data.train.dim()).with_k(k);
        let pcd_cfg = PcdConfig::default().chains(100).sweeps(sweeps);
        let mut m = GumBolt::with_pcd(config.clone(), &means, pcd_cfg.clone())?;
        let mut st = TrainState::new(m.config())?;
        let batches: Vec<_> = (0..10).map(|_| batch(&data.train, &mut rng)).collect();
        for (t, x) in batches.iter().enumerate().take(3) {
            m.train_step(x, t as u64, &mut st)?;
        }
        let iters = 30;
        let mut best = f64::INFINITY;
        let mut mean = 0.0;
        for rep in 0..3 {
            let t0 = Instant::now();
            for i in 0..iters {
                m.train_step(&batches[i % batches.len()], 1000 + i as u64, &mut st)?;
            }
            let dt = t0.elapsed().as_secs_f64() / iters as f64;
            best = best.min(dt);
            if rep > 0 {
                mean += dt / 2.0;
            }
        }
        // The PCD negative phase alone, on the trained prior.
        let (n1, n2) = config.rbm_sides();
        let rbm: Rbm = m.prior().clone();
        assert_eq!((rbm.n1(), rbm.n2()), (n1, n2));
        let mut pcd = Pcd::new(pcd_cfg)?;
        pcd.sample(&rbm);
        let t0 = Instant::now();
        for _ in 0..iters {
            pcd.sample(&rbm);
        }
        let pcd_dt = t0.elapsed().as_secs_f64() / iters as f64;
        let pcd_flop = 2.0 * 2.0 * 100.0 * sweeps as f64 * (n1 * n2) as f64;
        println!(
            "{:10} k = {k}: {:6.2} ms/iteration (best), {:6.2} ms (mean); PCD alone {:6.2} ms \
             ({:.0} GFLOP/s on its GEMMs), rest {:6.2} ms",
            structure.name(),
            best * 1e3,
            mean * 1e3,
            pcd_dt * 1e3,
            pcd_flop / pcd_dt / 1e9,
            (best - pcd_dt) * 1e3
        );
    }
    Ok(())
}

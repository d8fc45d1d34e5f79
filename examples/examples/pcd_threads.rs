//! How PCD scales over threads on this machine: one PCD step (200 block-Gibbs sweeps) of an
//! `n×n` RBM with 100 chains on one thread, the same 100 chains in a 2-thread rayon pool (their
//! stream groups of 32 chains run as tasks, as in a training step with `--threads 2`; the
//! result is bit-identical), one group of 32 chains alone, 50 chains alone, 50 + 50 chains on
//! two persistent threads, 50 + 50 with a thread spawned per step, and two independent
//! 100-chain samplers side by side.
//!
//! ```sh
//! MATMUL_NUM_THREADS=1 cargo run --release -p gumbolt-examples --example pcd_threads -- 100
//! ```
//! (The README's "Speed" section quotes it; timings need an otherwise idle machine.)

use gumbolt_core::Sampler;
use gumbolt_core::rng::root_rng;
use gumbolt_priors::Rbm;
use gumbolt_samplers::{Pcd, PcdConfig};
use std::time::Instant;

const STEPS: usize = 30;

/// Mean seconds per PCD step over `steps` steps.
fn run(pcd: &mut Pcd, rbm: &Rbm, steps: usize) -> f64 {
    let t = Instant::now();
    for _ in 0..steps {
        pcd.sample(rbm);
    }
    t.elapsed().as_secs_f64() / steps as f64
}

fn main() {
    let n: usize = match std::env::args().nth(1).map(|s| s.parse()) {
        None => 100,
        Some(Ok(n)) if n >= 1 => n,
        Some(_) => {
            eprintln!("usage: pcd_threads [N ≥ 1 units per side, default 100]");
            std::process::exit(2);
        }
    };
    let rbm = Rbm::random(n, n, 0.1, &mut root_rng(1));
    let make = |chains, seed| {
        Pcd::new(PcdConfig::default().chains(chains).sweeps(200).seed(seed))
            .expect("valid PCD settings")
    };
    let ms = |s: f64| 1e3 * s;
    let mut a = make(100, 1);
    run(&mut a, &rbm, 5);
    println!("{n}x{n} RBM, 200 sweeps per step");
    println!(
        "100 chains, one thread:            {:.2} ms",
        ms(run(&mut a, &rbm, STEPS))
    );
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .expect("two threads");
    let mut g = make(100, 1);
    pool.install(|| run(&mut g, &rbm, 5));
    println!(
        "100 chains, 2-thread pool (groups): {:.2} ms",
        ms(pool.install(|| run(&mut g, &rbm, STEPS)))
    );
    let mut q = make(32, 2);
    run(&mut q, &rbm, 5);
    println!(
        "32 chains, one thread:             {:.2} ms",
        ms(run(&mut q, &rbm, STEPS))
    );
    let mut h = make(50, 2);
    run(&mut h, &rbm, 5);
    println!(
        "50 chains, one thread:             {:.2} ms",
        ms(run(&mut h, &rbm, STEPS))
    );
    let (mut p1, mut p2) = (make(50, 3), make(50, 4));
    let t = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| run(&mut p1, &rbm, STEPS));
        s.spawn(|| run(&mut p2, &rbm, STEPS));
    });
    println!(
        "50 + 50 chains, persistent threads: {:.2} ms",
        ms(t.elapsed().as_secs_f64() / STEPS as f64)
    );
    let t = Instant::now();
    for _ in 0..STEPS {
        std::thread::scope(|s| {
            s.spawn(|| p1.sample(&rbm));
            p2.sample(&rbm);
        });
    }
    println!(
        "50 + 50 chains, thread per step:   {:.2} ms",
        ms(t.elapsed().as_secs_f64() / STEPS as f64)
    );
    let mut b = make(100, 5);
    let t = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| run(&mut a, &rbm, STEPS));
        run(&mut b, &rbm, STEPS);
    });
    println!(
        "2 × 100 chains side by side:       {:.2} ms",
        ms(t.elapsed().as_secs_f64() / STEPS as f64)
    );
}

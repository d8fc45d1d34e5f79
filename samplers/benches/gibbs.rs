//! Block-Gibbs sweep throughput (docs/algorithms.md §7.1).
//!
//! One sweep of `C` chains of an `n1×n2` RBM is two GEMMs, `[C,n1]·[n1,n2]` and
//! `[C,n2]·[n2,n1]`, each `2·C·n1·n2` flop, so
//!
//! **FLOP per sweep = 2·2·C·n1·n2** (multiply and add counted separately; the elementwise
//! Bernoulli draws, `C·(n1+n2)` uniforms and sigmoids, are not counted).
//!
//! Criterion reports the time per sweep; the `gflop` benchmark declares
//! `Throughput::Elements(4·C·n1·n2)`, so its `thrpt` line reads directly in GFLOP/s
//! ("Gelem/s"), and the `sweeps` benchmark declares one element per sweep, so its `thrpt` line
//! is sweeps/s. A summary line with both numbers from a plain timed loop is printed first.
//!
//! A colour-class Gibbs sweep of a Boltzmann machine on a D-Wave topology (Pegasus P(4): 264
//! units, 1604 edges; Zephyr Z(2,5); Chimera C(5,5,4)) visits every unit once and adds each
//! coupling twice (once per end) for every chain: **FLOP per sweep = 2·C·(2·edges)**, plus
//! `C·n` uniforms and sigmoids (not counted).
//!
//! ```text
//! cargo bench -p gumbolt-samplers --bench gibbs
//! ```

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gumbolt_priors::{Rbm, SparseBm};
use gumbolt_samplers::{BlockGibbs, ColourGibbs};
use std::hint::black_box;
use std::time::Instant;

fn flop_per_sweep(c: usize, n1: usize, n2: usize) -> u64 {
    (2 * 2 * c * n1 * n2) as u64
}

fn bench_sweep(cr: &mut Criterion, c: usize, n1: usize, n2: usize) {
    let mut rng = gumbolt_core::rng::root_rng(1);
    let rbm = Rbm::random(n1, n2, 0.1, &mut rng);
    let mut g = BlockGibbs::for_prior(&rbm, c, 7).expect("valid sizes");
    g.run(&rbm, 20);

    // Plain timed loop for a one-line summary.
    let sweeps = 2000;
    let t = Instant::now();
    g.run(&rbm, sweeps);
    let secs = t.elapsed().as_secs_f64();
    let per_s = sweeps as f64 / secs;
    println!(
        "block Gibbs {n1}x{n2}, {c} chains: {per_s:.0} sweeps/s, {:.1} GFLOP/s (2·2·C·n1·n2 = {} flop per sweep)",
        per_s * flop_per_sweep(c, n1, n2) as f64 * 1e-9,
        flop_per_sweep(c, n1, n2)
    );

    let mut group = cr.benchmark_group(format!("block_gibbs_{n1}x{n2}_C{c}"));
    group.throughput(Throughput::Elements(flop_per_sweep(c, n1, n2)));
    group.bench_function("gflop", |b| b.iter(|| g.sweep(black_box(&rbm))));
    group.throughput(Throughput::Elements(1));
    group.bench_function("sweeps", |b| b.iter(|| g.sweep(black_box(&rbm))));
    group.finish();
}

fn bench_colour_sweep(cr: &mut Criterion, c: usize, spec: &str) {
    let mut bm = SparseBm::topology(spec.parse().expect("a topology"));
    bm.randomize(0.1, 0.3, &mut gumbolt_core::rng::root_rng(1));
    let mut g = ColourGibbs::for_prior(&bm, c, 7).expect("valid colouring");
    g.run(&bm, 20);
    let flop = (2 * c * 2 * bm.num_edges()) as u64;
    let sweeps = 2000;
    let t = Instant::now();
    g.run(&bm, sweeps);
    let per_s = sweeps as f64 / t.elapsed().as_secs_f64();
    println!(
        "colour Gibbs {spec} ({} units, {} edges, {} colours), {c} chains: {per_s:.0} sweeps/s, \
         {:.2} GFLOP/s",
        bm.num_units(),
        bm.num_edges(),
        g.classes().len(),
        per_s * flop as f64 * 1e-9
    );
    let mut group = cr.benchmark_group(format!(
        "colour_gibbs_{}_C{c}",
        spec.replace([':', ','], "_")
    ));
    group.throughput(Throughput::Elements(1));
    group.bench_function("sweeps", |b| b.iter(|| g.sweep(black_box(&bm))));
    group.finish();
}

fn benches(cr: &mut Criterion) {
    bench_sweep(cr, 100, 200, 200);
    bench_sweep(cr, 100, 100, 100);
    bench_sweep(cr, 1000, 100, 100);
    bench_colour_sweep(cr, 100, "pegasus:4");
    bench_colour_sweep(cr, 100, "zephyr:2,5");
    bench_colour_sweep(cr, 100, "chimera:5,5,4");
}

criterion_group! {
    name = gibbs;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(3));
    targets = benches
}
criterion_main!(gibbs);

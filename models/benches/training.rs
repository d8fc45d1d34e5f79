//! Time of one GumBolt training iteration ([`GumBolt::train_step`]) and of one evaluation
//! batch ([`GumBolt::estimate_log_likelihood`]) on the bundled binarised MNIST, at the paper's
//! settings: batch B = 100, RBM prior with PCD, 100 chains × 200 block-Gibbs sweeps per
//! iteration (GB §5.1).
//!
//! ```text
//! cargo bench -p gumbolt-models --bench training
//! cargo bench -p gumbolt-models --bench training -- 'train_step/gumbolt_nonlinear_k1'
//! ```
//!
//! Groups and benchmark ids:
//!
//! - `train_step`: `gumbolt_{nonlinear,nonlinear2}_k1`, `gumbolt_nonlinear_k20`, each also
//!   with the suffix `_2threads` ([`TrainState::set_threads`]`(2)`: the PCD negative phase beside
//!   the networks, chain groups and large GEMMs split over two threads; results are
//!   bit-identical);
//! - `train_step_baselines`: the dVAE, dVAE++ and REINFORCE (NVIL) steps at nonlinear, k = 1,
//!   on the same networks, prior and PCD;
//! - `eval`: `iw_nll_nonlinear_100img_S100_chunk50`, the 100-sample importance-weighted
//!   `log p(x)` of 100 test images, drawn in two chunks of 50 samples per image, `log Ẑ = 0`.
//!
//! **Throughput.** The GumBolt training steps declare `Throughput::Elements(F)` with `F` the
//! nominal FLOP per iteration of `gumbolt bench` (examples/src/cli/bench.rs), so criterion's
//! `thrpt` line ("Gelem/s") reads as GFLOP/s. With B = 100, N = B·k rows, C chains, S sweeps and
//! an `n1×n2` RBM:
//!
//! - negative phase: `2·2·C·S·n1·n2`;
//! - a dense layer `in → out` on `rows` rows: `2·rows·in·out` forward, `3×` that with the
//!   backward pass; encoder layer 1 on B rows, encoder layer 2 (L = 2) and the decoder on N rows;
//! - prior terms: `8·N·n1·n2`.
//!
//! Element-wise work (batch norm, activations, relaxation, Adam) is not counted. The evaluation
//! declares the forward-only count per chunk of `c` samples: encoder layer 1 on B rows, encoder
//! layer 2 and the decoder on `B·c` rows (2 FLOP per multiply-add), the energy `2·B·c·n1·n2`.
//! The baselines declare no throughput (their backward passes differ: REINFORCE has no decoder
//! path to the encoder but an NVIL network, dVAE/dVAE++ a closed-form KL), so only their time
//! per iteration is reported.
//!
//! Slow iterations (k = 20, `~~`) use 10 flat samples. GEMM threads: as the `gumbolt` command
//! line, this bench sets `MATMUL_NUM_THREADS=1` when it is unset.

use criterion::{Criterion, SamplingMode, Throughput, criterion_group};
use gumbolt_core::Mat;
use gumbolt_datasets::{Dataset, load_bundled_mnist};
use gumbolt_models::gumbolt::{GumBolt, GumBoltConfig, GumBoltRbm, Objective, Scratch, Structure};
use gumbolt_models::train::TrainState;
use gumbolt_samplers::PcdConfig;
use std::hint::black_box;
use std::time::Duration;

/// Minibatch size (GB §5.1).
const BATCH: usize = 100;
/// PCD chains and sweeps per iteration (GB §5.1).
const PCD_CHAINS: usize = 100;
const PCD_SWEEPS: usize = 200;
/// Distinct minibatches cycled through (gathered once, outside the timing).
const BATCHES: usize = 20;
/// Untimed training steps before criterion's own warm-up (workspaces are sized on the first).
const WARMUP_STEPS: u64 = 3;
const SEED: u64 = 0;

/// `Σ 2·rows·in·out` over the dense layers `dims[i] → dims[i+1]`.
fn dense_forward_flop(rows: usize, dims: &[usize]) -> f64 {
    dims.windows(2)
        .map(|w| 2.0 * rows as f64 * w[0] as f64 * w[1] as f64)
        .sum()
}

/// The layer widths of a network `input → hidden… → output` of the configuration.
fn dims(c: &GumBoltConfig, input: usize, output: usize) -> Vec<usize> {
    let mut v = vec![input];
    v.extend(std::iter::repeat_n(c.hidden_units, c.hidden_layers));
    v.push(output);
    v
}

/// Nominal FLOP of one training iteration (the formulas of `gumbolt bench`).
fn train_flop(c: &GumBoltConfig) -> u64 {
    let (n1, n2) = c.rbm_sides();
    let (n1, n2) = (n1 as f64, n2 as f64);
    let rows = BATCH * c.k;
    let (d, u) = (c.pixels, c.latent_units);
    let pcd = 2.0 * 2.0 * PCD_CHAINS as f64 * PCD_SWEEPS as f64 * n1 * n2;
    let mut enc = dense_forward_flop(BATCH, &dims(c, d, u));
    if c.layers() == 2 {
        enc += dense_forward_flop(rows, &dims(c, d + u, u));
    }
    let dec = dense_forward_flop(rows, &dims(c, c.latent_dim(), d));
    let prior = 8.0 * rows as f64 * n1 * n2;
    (pcd + 3.0 * enc + 3.0 * dec + prior) as u64
}

/// Nominal FLOP of [`GumBolt::estimate_log_likelihood`] on `b` images with `samples` samples
/// in chunks of `chunk` (forward passes only).
fn eval_flop(c: &GumBoltConfig, b: usize, samples: usize, chunk: usize) -> u64 {
    let (n1, n2) = c.rbm_sides();
    let (d, u) = (c.pixels, c.latent_units);
    let mut total = 0.0;
    let mut done = 0;
    while done < samples {
        let k = chunk.min(samples - done);
        let rows = b * k;
        total += dense_forward_flop(b, &dims(c, d, u));
        if c.layers() == 2 {
            total += dense_forward_flop(rows, &dims(c, d + u, u));
        }
        total += dense_forward_flop(rows, &dims(c, c.latent_dim(), d));
        total += 2.0 * rows as f64 * n1 as f64 * n2 as f64;
        done += k;
    }
    total as u64
}

/// The training data: pixel means and `BATCHES` minibatches of consecutive images.
struct Data {
    means: Vec<f32>,
    batches: Vec<Mat>,
    test: Mat,
}

impl Data {
    fn load() -> Self {
        let mnist = load_bundled_mnist().expect("the bundled MNIST (data/binarized_mnist)");
        let gather = |set: &Dataset, start: usize| {
            let idx: Vec<usize> = (start..start + BATCH).collect();
            set.gather(&idx)
        };
        Self {
            means: mnist.train.pixel_means(),
            batches: (0..BATCHES)
                .map(|i| gather(&mnist.train, i * BATCH))
                .collect(),
            test: gather(&mnist.test, 0),
        }
    }
}

/// A model with the paper's PCD and its training state, after `WARMUP_STEPS` training steps.
fn model(data: &Data, config: GumBoltConfig) -> (GumBoltRbm, TrainState) {
    let pcd = PcdConfig::default()
        .chains(PCD_CHAINS)
        .sweeps(PCD_SWEEPS)
        .seed(SEED ^ 0x5043_445F_5345_4544);
    let mut m = GumBolt::with_pcd(config, &data.means, pcd).expect("a valid configuration");
    let mut st = TrainState::new(m.config()).expect("a valid optimiser");
    for it in 0..WARMUP_STEPS {
        m.train_step(&data.batches[it as usize % BATCHES], it, &mut st)
            .expect("a finite warm-up step");
    }
    (m, st)
}

/// Benchmarks `train_step` of `m` under `id`, cycling through the minibatches.
fn bench_steps(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    id: &str,
    data: &Data,
    (mut m, mut st): (GumBoltRbm, TrainState),
) {
    let mut it = WARMUP_STEPS;
    g.bench_function(id, |b| {
        b.iter(|| {
            let x = &data.batches[it as usize % BATCHES];
            let s = m
                .train_step(black_box(x), it, &mut st)
                .expect("a finite step");
            it += 1;
            s
        })
    });
}

fn train_steps(c: &mut Criterion, data: &Data) {
    let mut g = c.benchmark_group("train_step");
    g.sampling_mode(SamplingMode::Flat);
    for (structure, k) in [
        (Structure::Nonlinear, 1),
        (Structure::Nonlinear2, 1),
        (Structure::Nonlinear, 20),
    ] {
        let config = GumBoltConfig::new(structure, data.test.ncols())
            .with_k(k)
            .with_seed(SEED);
        // ~13 ms per step at nonlinear k = 1; the others are several times slower.
        g.sample_size(if structure == Structure::Nonlinear && k == 1 {
            20
        } else {
            10
        });
        // Throughput::Elements(FLOP per iteration): "Gelem/s" reads as GFLOP/s.
        g.throughput(Throughput::Elements(train_flop(&config)));
        let name = format!("gumbolt_{}_k{k}", structure.name());
        bench_steps(&mut g, &name, data, model(data, config.clone()));
        let (m, mut st) = model(data, config);
        st.set_threads(2);
        bench_steps(&mut g, &format!("{name}_2threads"), data, (m, st));
    }
    g.finish();
}

fn train_steps_baselines(c: &mut Criterion, data: &Data) {
    let mut g = c.benchmark_group("train_step_baselines");
    g.sampling_mode(SamplingMode::Flat).sample_size(20);
    for objective in [Objective::Dvae, Objective::DvaePp, Objective::Reinforce] {
        let config = GumBoltConfig::new(Structure::Nonlinear, data.test.ncols())
            .with_objective(objective)
            .with_seed(SEED);
        let name = format!("{}_nonlinear_k1", objective.name());
        bench_steps(&mut g, &name, data, model(data, config));
    }
    g.finish();
}

fn evaluation(c: &mut Criterion, data: &Data) {
    const SAMPLES: usize = 100;
    const CHUNK: usize = 50;
    let config = GumBoltConfig::new(Structure::Nonlinear, data.test.ncols()).with_seed(SEED);
    let mut g = c.benchmark_group("eval");
    g.sampling_mode(SamplingMode::Flat).sample_size(20);
    // Throughput::Elements(forward FLOP): "Gelem/s" reads as GFLOP/s.
    g.throughput(Throughput::Elements(eval_flop(
        &config,
        data.test.nrows(),
        SAMPLES,
        CHUNK,
    )));
    let (m, _) = model(data, config);
    let mut rng = gumbolt_core::rng::root_rng(SEED + 1);
    let mut scratch = Scratch::default();
    g.bench_function(
        format!(
            "iw_nll_nonlinear_{}img_S{SAMPLES}_chunk{CHUNK}",
            data.test.nrows()
        ),
        |b| {
            b.iter(|| {
                m.estimate_log_likelihood(
                    black_box(&data.test),
                    SAMPLES,
                    CHUNK,
                    0.0,
                    &mut rng,
                    &mut scratch,
                )
                .expect("a valid batch")
            })
        },
    );
    g.finish();
}

fn benches(c: &mut Criterion) {
    let data = Data::load();
    train_steps(c, &data);
    train_steps_baselines(c, &data);
    evaluation(c, &data);
}

criterion_group! {
    name = training;
    config = Criterion::default().measurement_time(Duration::from_secs(3));
    targets = benches
}

fn main() {
    if std::env::var_os("MATMUL_NUM_THREADS").is_none() {
        // SAFETY: first statement of `main`, before any thread is spawned or any GEMM reads the
        // variable (matrixmultiply reads it once, lazily), so nothing touches the environment
        // concurrently.
        unsafe { std::env::set_var("MATMUL_NUM_THREADS", "1") };
    }
    training();
    Criterion::default().configure_from_args().final_summary();
}

//! `gumbolt bench`: times GumBolt training iterations (RBM prior, PCD) on the bundled MNIST,
//! split by phase, with the achieved GFLOP/s.
//!
//! FLOP counts per iteration (B = batch size, k importance samples, N = B·k rows, C PCD chains,
//! S PCD sweeps, n1 × n2 the RBM's sides):
//!
//! - negative phase (PCD): `2·2·C·S·n1·n2` (per sweep, two block updates, each a
//!   `[C, n1] × [n1, n2]` product at 2 FLOP per multiply-add);
//! - a dense layer `in → out` on `rows` rows: `2·rows·in·out` forward and twice that backward
//!   (input and kernel gradients), so `6·rows·in·out` per iteration. Encoder layer 1 runs on the
//!   B distinct images, encoder layer 2 (L = 2) and the decoder on the N rows;
//! - prior terms: `8·N·n1·n2` (`−E(ζ)`: `2·N·n1·n2`; `∂(−E)/∂ζ`: `4·N·n1·n2`; `∂/∂W`:
//!   `2·N·n1·n2`).
//!
//! Element-wise work (batch norm, activations, relaxation, Adam) is not counted, so the
//! optimiser has no GFLOP/s. The counts are nominal: encoder layer 1 skips its input gradient,
//! so its backward cost is slightly below the formula's.

use super::dataset::{self, DatasetArg, Source};
use super::train::{DEFAULT_PCD_CHAINS, DEFAULT_PCD_STEPS, parse_structure};
use super::{int_at_least, usage_error};
use anyhow::{Context, Result};
use clap::Args;
use gumbolt_core::Mat;
use gumbolt_core::ChainProducts;
use gumbolt_core::linalg::Precision;
use gumbolt_models::gumbolt::{GumBolt, GumBoltConfig, ModelError, PhaseTimes, Structure};
use gumbolt_models::train::TrainState;
use gumbolt_samplers::PcdConfig;
use serde::Serialize;
use std::io::Write as _;
use std::time::Instant;

const SUB: &str = "bench";
/// Minibatch size of the benchmark (GB §5.1).
const BATCH: usize = 100;
/// Seconds spent measuring the core's f32 FMA peak before the warm-up.
const PEAK_SECONDS: f64 = 0.1;
/// Seconds of each sustained FMA measurement (one thread, then all threads at once).
const SUSTAINED_SECONDS: f64 = 0.25;

/// Time GumBolt training iterations on the bundled MNIST, split by phase, with GFLOP/s.
///
/// Runs --warmup untimed then --iters timed training steps (RBM prior, PCD, batch 100) and
/// prints `sec_per_iter` (median), `sec_per_iter_mean`, the mean seconds per iteration of
/// each phase (negative phase, encoder and decoder forward + backward, prior terms,
/// optimiser, other) and the achieved GFLOP/s per phase and overall, against this CPU's
/// f32 peak, measured first (0.1 s of independent FMA chains on the kernels' widest SIMD
/// path, times the threads), and against the rate the threads sustain together (0.25 s of
/// the same loop on one thread, then on all threads at once: on SMT siblings or the vCPUs of
/// a busy host this is well below the peak times the threads), with the host's load over the
/// timed iterations (the share of CPU time the hypervisor stole and other processes used, from
/// /proc/stat). FLOP counts: PCD 2·2·C·S·n1·n2 per iteration; a dense
/// layer 2·rows·in·out forward and twice that backward; prior terms 8·B·k·n1·n2 (also in
/// the JSON's `flop_formulas`). --threads T runs each step on T threads as `gumbolt train`
/// does (default: all cores); the phase times are those of the thread that runs the
/// networks, the negative phase's being the wait for it after them.
#[derive(Debug, Clone, Args)]
#[command(args_override_self = true)]
pub(crate) struct BenchArgs {
    /// Network structure (GB Table 1): linear (-), nonlinear (~), linear2 (--), nonlinear2 (~~).
    #[arg(long, value_name = "S", value_parser = parse_structure, allow_hyphen_values = true)]
    structure: Structure,

    /// Importance samples k of the training objective.
    #[arg(long, value_name = "K", value_parser = int_at_least::<1>)]
    k: usize,

    /// Timed iterations.
    #[arg(long, value_name = "N", value_parser = int_at_least::<1>, default_value_t = 100)]
    iters: usize,

    /// Untimed warm-up iterations before the timed ones.
    #[arg(long, value_name = "W", value_parser = int_at_least::<0>, default_value_t = 5)]
    warmup: usize,

    /// PCD block-Gibbs sweeps per iteration.
    #[arg(long, value_name = "N", value_parser = int_at_least::<1>,
          default_value_t = DEFAULT_PCD_STEPS)]
    pcd_steps: usize,

    /// PCD persistent chains.
    #[arg(long, value_name = "N", value_parser = int_at_least::<1>,
          default_value_t = DEFAULT_PCD_CHAINS)]
    pcd_chains: usize,

    /// Threads of a training step, as `gumbolt train --threads` [default: the number of cores].
    #[arg(long, value_name = "T", value_parser = int_at_least::<1>)]
    threads: Option<usize>,

    /// Seed of the initialisation, the noise and the PCD chains.
    #[arg(long, value_name = "N", default_value_t = 0)]
    seed: u64,

    /// Arithmetic of the networks' products, as `gumbolt train --network-products`
    /// [default: as train's, bf16 where this CPU has AMX-BF16, else f32].
    #[arg(long, value_name = "P", value_parser = super::train::parse_precision)]
    network_products: Option<Precision>,

    /// Arithmetic of the PCD sweeps' products, as `gumbolt train --chain-products`
    /// [default: as train's, bf16x3 where this CPU has AMX-BF16, else f32].
    #[arg(long, value_name = "P", value_parser = super::train::parse_chain_products)]
    chain_products: Option<ChainProducts>,

    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

/// One phase of the result.
#[derive(Debug, Serialize)]
struct PhaseResult {
    /// Mean seconds per iteration.
    sec_per_iter: f64,
    /// Nominal FLOP per iteration (`None` when not counted).
    gflop_per_iter: Option<f64>,
    /// `gflop_per_iter / sec_per_iter`.
    gflops: Option<f64>,
}

#[derive(Debug, Serialize)]
struct Phases {
    negative_phase: PhaseResult,
    encoder: PhaseResult,
    decoder: PhaseResult,
    prior: PhaseResult,
    optimizer: PhaseResult,
    other: PhaseResult,
}

/// The FLOP formulas behind the counts.
#[derive(Debug, Serialize)]
struct Formulas {
    negative_phase: &'static str,
    dense_layer: &'static str,
    prior: &'static str,
    overall: &'static str,
}

/// The output of `gumbolt bench`.
#[derive(Debug, Serialize)]
struct BenchResult {
    bench: &'static str,
    structure: &'static str,
    k: usize,
    batch_size: usize,
    iters: usize,
    warmup: usize,
    pcd_steps: usize,
    pcd_chains: usize,
    rbm_sides: (usize, usize),
    /// The CPU (`/proc/cpuinfo` model name) and the vectorised kernels' path chosen at run
    /// time: speed figures are only comparable on the same CPU.
    cpu_model: String,
    simd_path: &'static str,
    /// Threads of a training step (`--threads`).
    threads: usize,
    /// MATMUL_NUM_THREADS (matrixmultiply's own threads; 1 unless set in the environment).
    matmul_threads: Option<String>,
    /// `--network-products`, and what this CPU ran (bf16 only where AMX-BF16 runs).
    network_products: Precision,
    network_products_effective: Precision,
    /// `--chain-products`, and what this CPU ran (bf16x3 only where AMX-BF16 runs).
    chain_products: ChainProducts,
    chain_products_effective: ChainProducts,
    /// Median seconds per training step.
    sec_per_iter: f64,
    /// Mean seconds per training step.
    sec_per_iter_mean: f64,
    sec_per_iter_min: f64,
    /// Median seconds per step over the first third of the timed iterations.
    sec_per_iter_first_third: f64,
    /// Median seconds per step over the last third of the timed iterations.
    sec_per_iter_last_third: f64,
    /// `last_third / first_third − 1`: a slow-down that sets in during the run (e.g. subnormal
    /// floats once the weights have moved) shows here; the medians are robust to a few outliers.
    drift: f64,
    /// Sum of the phases' mean seconds per iteration (≤ `sec_per_iter_mean`).
    phase_sum_sec_per_iter: f64,
    phases: Phases,
    /// Nominal FLOP per iteration, all counted phases.
    gflop_per_iter: f64,
    /// `gflop_per_iter / sec_per_iter` (median).
    gflops: f64,
    /// This core's f32 peak, measured just before the warm-up by `gumbolt_core::peak::f32_fma_peak`
    /// (independent FMA chains on the kernels' widest SIMD path).
    peak_gflops_single_core_f32: f64,
    /// `peak_gflops_single_core_f32 × threads`: the ceiling of `gflops`.
    peak_gflops_threads_f32: f64,
    /// `gflops / peak_gflops_threads_f32`.
    fraction_of_peak: f64,
    /// The FMA loop's rate on one thread over 0.25 s (`gumbolt_core::peak::f32_fma_sustained`).
    sustained_gflops_one_thread_f32: f64,
    /// The FMA loop's total rate on `threads` threads at once over 0.25 s: what the threads
    /// can reach together.
    sustained_gflops_threads_f32: f64,
    /// `sustained_gflops_threads_f32 / sustained_gflops_one_thread_f32`: how far the threads
    /// scale on pure FMA work (`threads` on independent cores).
    thread_scaling_f32: f64,
    /// `gflops / sustained_gflops_threads_f32`.
    fraction_of_sustained: f64,
    /// Over the timed iterations: the fraction of all CPU time the hypervisor stole and the
    /// fraction other processes used (Linux `/proc/stat`; absent elsewhere). A busy host
    /// shows here rather than as an unexplained slow figure.
    host: Option<super::hostload::HostLoad>,
    flop_formulas: Formulas,
}

/// `Σ 2·rows·in·out` over the dense layers `dims[i] → dims[i+1]`.
fn dense_forward_flops(rows: usize, dims: &[usize]) -> f64 {
    dims.windows(2)
        .map(|w| 2.0 * rows as f64 * w[0] as f64 * w[1] as f64)
        .sum()
}

/// Nominal FLOP per iteration: (negative phase, encoders, decoder, prior).
fn flops(c: &GumBoltConfig, args: &BenchArgs) -> (f64, f64, f64, f64) {
    let (n1, n2) = c.rbm_sides();
    let (n1, n2) = (n1 as f64, n2 as f64);
    let rows = BATCH * c.k;
    let (d, u, l) = (c.pixels, c.latent_units, c.layers());
    let hidden = vec![c.hidden_units; c.hidden_layers];
    let dims = |input: usize, output: usize| {
        let mut v = vec![input];
        v.extend(&hidden);
        v.push(output);
        v
    };
    let pcd = 2.0 * 2.0 * args.pcd_chains as f64 * args.pcd_steps as f64 * n1 * n2;
    let mut enc = dense_forward_flops(BATCH, &dims(d, u));
    if l == 2 {
        enc += dense_forward_flops(rows, &dims(d + u, u));
    }
    let dec = dense_forward_flops(rows, &dims(l * u, d));
    let prior = 8.0 * rows as f64 * n1 * n2;
    // Forward plus backward (2× forward).
    (pcd, 3.0 * enc, 3.0 * dec, prior)
}

fn model_error(e: ModelError) -> anyhow::Error {
    match e {
        ModelError::InvalidConfig { name, reason } => {
            usage_error(SUB, format!("invalid value for {name}: {reason}"))
        }
        ModelError::Objective(e) => usage_error(SUB, e.to_string()),
        e => anyhow::Error::new(e),
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// Medians of the first and of the last third of `secs` (in timing order); with fewer than
/// three timings, both thirds are the whole list.
fn drift_medians(secs: &[f64]) -> (f64, f64) {
    let third = (secs.len() / 3).max(1).min(secs.len());
    let mut first = secs[..third].to_vec();
    let mut last = secs[secs.len() - third..].to_vec();
    (median(&mut first), median(&mut last))
}

/// Runs `gumbolt bench`.
pub(crate) fn run(args: BenchArgs) -> Result<()> {
    let env_threads = std::env::var("MATMUL_NUM_THREADS").ok();
    let threads = args.threads.unwrap_or_else(super::cores);
    let total = (args.warmup + args.iters) as u64;
    let peak = gumbolt_core::peak::f32_fma_peak(PEAK_SECONDS).gflops;
    let sustained_one = gumbolt_core::peak::f32_fma_sustained(1, SUSTAINED_SECONDS).gflops;
    let sustained_all = gumbolt_core::peak::f32_fma_sustained(threads, SUSTAINED_SECONDS).gflops;
    let data = dataset::load_train(DatasetArg::Mnist, &Source::Bundled, true)?;
    let images = data.train.dataset();
    let mut mc = GumBoltConfig::new(args.structure, images.dim())
        .with_k(args.k)
        .with_seed(args.seed)
        .with_iterations(total);
    mc.train.network_products = args
        .network_products
        .unwrap_or_else(super::train::default_network_products);
    mc.validate().map_err(model_error)?;
    let pcd = PcdConfig::default()
        .chains(args.pcd_chains)
        .sweeps(args.pcd_steps)
        .seed(args.seed ^ 0x5043_445F_5345_4544)
        .products(
            args.chain_products
                .unwrap_or_else(super::train::default_chain_products),
        );

    let chain_products = pcd.products;
    let mut model = GumBolt::with_pcd(mc.clone(), &data.means(), pcd).map_err(model_error)?;
    let n = images.n();
    let mut batch = Mat::zeros(0, 0);
    let mut indices = Vec::with_capacity(BATCH);
    let mut state = TrainState::new(model.config()).map_err(model_error)?;
    let mut step = |model: &mut GumBolt<_, _>, state: &mut TrainState, it: usize| -> Result<f64> {
        indices.clear();
        indices.extend((0..BATCH).map(|i| (it * BATCH + i) % n));
        images.gather_into(&indices, &mut batch);
        let t0 = Instant::now();
        model
            .train_step(&batch, it as u64, state)
            .with_context(|| format!("training step {it}"))?;
        Ok(t0.elapsed().as_secs_f64())
    };
    if !args.json {
        eprintln!(
            "bench: {} k={} — {} warm-up + {} timed iterations, batch {BATCH}, PCD {}×{}",
            args.structure.name(),
            args.k,
            args.warmup,
            args.iters,
            args.pcd_chains,
            args.pcd_steps
        );
    }
    state.set_threads(threads);
    for it in 0..args.warmup {
        step(&mut model, &mut state, it)?;
    }
    state.set_phase_timing(true);
    let mut secs = Vec::with_capacity(args.iters);
    let window = super::hostload::Window::start();
    for it in args.warmup..args.warmup + args.iters {
        secs.push(step(&mut model, &mut state, it)?);
    }
    let host = window.finish();
    let times: PhaseTimes = *state.phase_times().expect("timing is on");
    let iters = args.iters as f64;
    let mean = secs.iter().sum::<f64>() / iters;
    let min = secs.iter().copied().fold(f64::INFINITY, f64::min);
    let (first, last) = drift_medians(&secs);
    let med = median(&mut secs);

    let (f_pcd, f_enc, f_dec, f_prior) = flops(&mc, &args);
    let phase = |total_sec: f64, flop: Option<f64>| {
        let s = total_sec / iters;
        PhaseResult {
            sec_per_iter: s,
            gflop_per_iter: flop.map(|f| f * 1e-9),
            gflops: flop.map(|f| f * 1e-9 / s),
        }
    };
    let gflop = (f_pcd + f_enc + f_dec + f_prior) * 1e-9;
    let out = BenchResult {
        bench: "gumbolt train_step",
        structure: args.structure.name(),
        k: args.k,
        batch_size: BATCH,
        iters: args.iters,
        warmup: args.warmup,
        pcd_steps: args.pcd_steps,
        pcd_chains: args.pcd_chains,
        rbm_sides: mc.rbm_sides(),
        matmul_threads: env_threads,
        network_products: mc.train.network_products,
        network_products_effective: mc.train.network_products.effective(),
        chain_products,
        chain_products_effective: chain_products.effective(),
        cpu_model: super::manifest::cpu_model(),
        simd_path: gumbolt_core::numerics::simd_path(),
        threads,
        sec_per_iter: med,
        sec_per_iter_mean: mean,
        sec_per_iter_min: min,
        sec_per_iter_first_third: first,
        sec_per_iter_last_third: last,
        drift: last / first - 1.0,
        phase_sum_sec_per_iter: times.total() / iters,
        phases: Phases {
            negative_phase: phase(times.negative_phase, Some(f_pcd)),
            encoder: phase(times.encoder, Some(f_enc)),
            decoder: phase(times.decoder, Some(f_dec)),
            prior: phase(times.prior, Some(f_prior)),
            optimizer: phase(times.optimizer, None),
            other: phase(times.other, None),
        },
        gflop_per_iter: gflop,
        gflops: gflop / med,
        peak_gflops_single_core_f32: peak,
        peak_gflops_threads_f32: peak * threads as f64,
        fraction_of_peak: gflop / med / (peak * threads as f64),
        sustained_gflops_one_thread_f32: sustained_one,
        sustained_gflops_threads_f32: sustained_all,
        thread_scaling_f32: sustained_all / sustained_one,
        fraction_of_sustained: gflop / med / sustained_all,
        host,
        flop_formulas: Formulas {
            negative_phase: "2*2*C*S*n1*n2 (C chains, S sweeps, two block updates per sweep)",
            dense_layer: "2*rows*in*out forward + 2*(2*rows*in*out) backward; encoder layer 1 \
                          on B rows, encoder layer 2 and decoder on B*k rows",
            prior: "8*B*k*n1*n2 (energy 2, energy gradient wrt zeta 4, gradient wrt W 2)",
            overall: "sum of the counted phases / sec_per_iter (median); element-wise work and \
                      the optimiser are not counted",
        },
    };
    let mut stdout = std::io::stdout().lock();
    if args.json {
        writeln!(stdout, "{}", serde_json::to_string(&out)?)
    } else {
        print_table(&mut stdout, &out)
    }
    .and_then(|()| stdout.flush())
    .context("writing to stdout")
}

fn print_table(w: &mut impl std::io::Write, r: &BenchResult) -> std::io::Result<()> {
    writeln!(
        w,
        "sec_per_iter {:.4} (median), {:.4} (mean), {:.4} (min); {} thread{}",
        r.sec_per_iter,
        r.sec_per_iter_mean,
        r.sec_per_iter_min,
        r.threads,
        if r.threads == 1 { "" } else { "s" }
    )?;
    writeln!(
        w,
        "CPU: {} ({} kernels); network products {} (ran {}), chain products {} (ran {})",
        r.cpu_model,
        r.simd_path,
        r.network_products,
        r.network_products_effective,
        r.chain_products,
        r.chain_products_effective
    )?;
    writeln!(w, "{}", super::hostload::describe(r.host))?;
    writeln!(
        w,
        "drift: first third {:.4}, last third {:.4} (median s/iteration, {:+.1} %)",
        r.sec_per_iter_first_third,
        r.sec_per_iter_last_third,
        100.0 * r.drift
    )?;
    writeln!(
        w,
        "{:<15} {:>12} {:>8} {:>10} {:>9}",
        "phase", "ms/iter", "share", "GFLOP/it", "GFLOP/s"
    )?;
    let p = &r.phases;
    for (name, ph) in [
        ("negative phase", &p.negative_phase),
        ("encoder", &p.encoder),
        ("decoder", &p.decoder),
        ("prior", &p.prior),
        ("optimizer", &p.optimizer),
        ("other", &p.other),
    ] {
        writeln!(
            w,
            "{:<15} {:>12.3} {:>7.1}% {:>10} {:>9}",
            name,
            1e3 * ph.sec_per_iter,
            100.0 * ph.sec_per_iter / r.sec_per_iter_mean,
            ph.gflop_per_iter.map_or("–".into(), |g| format!("{g:.3}")),
            ph.gflops.map_or("–".into(), |g| format!("{g:.1}")),
        )?;
    }
    writeln!(
        w,
        "overall: {:.3} GFLOP/iter, {:.1} GFLOP/s ({:.1} % of the {:.0} GFLOP/s f32 peak of {} \
         core{}, measured: {:.0} GFLOP/s per core)",
        r.gflop_per_iter,
        r.gflops,
        100.0 * r.fraction_of_peak,
        r.peak_gflops_threads_f32,
        r.threads,
        if r.threads == 1 { "" } else { "s" },
        r.peak_gflops_single_core_f32
    )?;
    writeln!(
        w,
        "sustained FMA rate: {:.0} GFLOP/s on 1 thread, {:.0} GFLOP/s on {} thread{} at once \
         ({:.2}x); achieved {:.1} % of it",
        r.sustained_gflops_one_thread_f32,
        r.sustained_gflops_threads_f32,
        r.threads,
        if r.threads == 1 { "" } else { "s" },
        r.thread_scaling_f32,
        100.0 * r.fraction_of_sustained
    )
}

#[cfg(test)]
mod tests {
    use super::drift_medians;

    #[test]
    fn drift_medians_split_thirds_in_timing_order() {
        // A run that slows down 3× after its first third: the drift is visible however the
        // overall median falls.
        let secs: Vec<f64> = (0..30).map(|i| if i < 10 { 0.02 } else { 0.06 }).collect();
        assert_eq!(drift_medians(&secs), (0.02, 0.06));
        let steady = [0.05, 0.01, 0.03, 0.02, 0.04, 0.03];
        let (a, b) = drift_medians(&steady);
        assert!(
            (a - 0.03).abs() < 1e-15 && (b - 0.035).abs() < 1e-15,
            "{a} {b}"
        );
        assert_eq!(drift_medians(&[0.5]), (0.5, 0.5));
    }
}

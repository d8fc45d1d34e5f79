//! Throughput of the numeric kernels of `gumbolt-core`: the vectorised elementwise slice
//! kernels of [`gumbolt_core::numerics`] against the scalar libm versions, and the GEMM
//! helpers of [`gumbolt_core::linalg`] at the network shapes.
//!
//! ```text
//! cargo bench -p gumbolt-core --bench kernels
//! cargo bench -p gumbolt-core --bench kernels -- gemm        # only the GEMMs
//! ```
//!
//! **Elementwise kernels** run on `N = 1 000 000` f32 values spread over [−10, 10] and declare
//! `Throughput::Elements(N)`, so the `thrpt` line is elements per second. Each group puts the
//! multiversioned slice kernel (AVX-512 / AVX2+FMA / baseline picked at run time) beside a
//! plain loop over the scalar libm function (`f32::exp`, the f64 [`sigmoid`] / [`softplus`] on
//! the values widened to f64), so the speed-up is the ratio of the two `thrpt` lines. In-place
//! kernels get a fresh copy of the input per batch (`iter_batched_ref`, the copy is not timed).
//!
//! **GEMMs** declare `Throughput::Elements(2·m·k·n)` for an `[m,k]·[k,n]` product (multiply and
//! add counted separately), so criterion's `thrpt` line, printed as "elem/s", **reads directly
//! as FLOP/s**: "Gelem/s" = GFLOP/s. The benchmark ids name the shapes; the group is called
//! `gemm_gflops` as a reminder. Shapes (batch B = 100, k = 20 importance samples → 2000 rows):
//!
//! | id | product | where |
//! |---|---|---|
//! | `nn_100x784x200` | `[100,784]·[784,200]` | encoder layer 1 forward |
//! | `nn_100x200x200` | `[100,200]·[200,200]` | hidden layer forward |
//! | `nn_100x200x784` | `[100,200]·[200,784]` | decoder output forward |
//! | `nn_2000x200x200` | `[2000,200]·[200,200]` | hidden layer forward, k = 20 |
//! | `nn_2000x200x784` | `[2000,200]·[200,784]` | decoder output forward, k = 20 |
//! | `nn_2000x400x200` | `[2000,400]·[400,200]` | decoder input layer forward, L = 2, k = 20 |
//! | `tn_200x2000x784` | `Xᵀ·dY`, `X: [2000,200]`, `dY: [2000,784]` (`gemm_tn`, β = 1) | decoder output weight gradient |
//! | `nt_2000x784x200` | `dY·Wᵀ`, `dY: [2000,784]`, `W: [200,784]` (`matmul_nt`) | decoder output input gradient |
//!
//! (ids are `op_m×k×n` of the product `[m,k]·[k,n]`.)
//!
//! GEMM threads: matrixmultiply reads `MATMUL_NUM_THREADS` once; like the `gumbolt` command
//! line, this bench sets it to 1 when it is unset, so the numbers are single-core. Run with
//! `MATMUL_NUM_THREADS=2` for two threads.

use criterion::{BatchSize, Criterion, Throughput, criterion_group};
use gumbolt_core::Mat;
use gumbolt_core::linalg::{
    Op, Precision, ProductPrecision, add_row_vector, affine_unpacked, gemm_tn, matmul_nn, matmul_nt,
};
use gumbolt_core::numerics::{
    LogSumExp, exp_approx, exp_inplace, log_sum_exp, sigmoid, sigmoid_approx, sigmoid_inplace,
    sigmoid_scaled, softplus, softplus_approx, softplus_inplace, softplus_sigmoid_approx,
    tanh_inplace,
};
use std::hint::black_box;
use std::time::Duration;

/// Elements per elementwise benchmark.
const N: usize = 1_000_000;

/// Deterministic values uniform on [lo, hi).
fn uniform(n: usize, lo: f32, hi: f32, seed: u32) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            lo + (hi - lo) * ((s >> 8) as f32 / (1u32 << 24) as f32)
        })
        .collect()
}

fn bench_sigmoid(c: &mut Criterion, xs: &[f32]) {
    let mut out = vec![0.0f32; xs.len()];
    let mut g = c.benchmark_group("sigmoid_1M");
    g.throughput(Throughput::Elements(xs.len() as u64));
    g.bench_function("sigmoid_inplace (vectorised)", |b| {
        b.iter_batched_ref(
            || xs.to_vec(),
            |v| sigmoid_inplace(black_box(v)),
            BatchSize::LargeInput,
        )
    });
    g.bench_function("sigmoid_scaled (vectorised, out of place)", |b| {
        b.iter(|| sigmoid_scaled(black_box(xs), 1.0, &mut out))
    });
    g.bench_function("sigmoid_approx loop (baseline target)", |b| {
        b.iter(|| {
            for (o, &x) in out.iter_mut().zip(black_box(xs)) {
                *o = sigmoid_approx(x);
            }
        })
    });
    g.bench_function("sigmoid f64 (libm exp)", |b| {
        b.iter(|| {
            for (o, &x) in out.iter_mut().zip(black_box(xs)) {
                *o = sigmoid(f64::from(x)) as f32;
            }
        })
    });
    g.finish();
}

fn bench_softplus(c: &mut Criterion, xs: &[f32]) {
    let mut out = vec![0.0f32; xs.len()];
    let mut out2 = vec![0.0f32; xs.len()];
    let mut g = c.benchmark_group("softplus_1M");
    g.throughput(Throughput::Elements(xs.len() as u64));
    g.bench_function("softplus_inplace (vectorised)", |b| {
        b.iter_batched_ref(
            || xs.to_vec(),
            |v| softplus_inplace(black_box(v)),
            BatchSize::LargeInput,
        )
    });
    g.bench_function("softplus_approx loop (baseline target)", |b| {
        b.iter(|| {
            for (o, &x) in out.iter_mut().zip(black_box(xs)) {
                *o = softplus_approx(x);
            }
        })
    });
    g.bench_function("softplus f64 (libm exp, ln_1p)", |b| {
        b.iter(|| {
            for (o, &x) in out.iter_mut().zip(black_box(xs)) {
                *o = softplus(f64::from(x)) as f32;
            }
        })
    });
    // Both functions of a logit, as the Bernoulli log-likelihoods and their gradients need.
    g.bench_function("softplus_sigmoid_approx loop (one exp)", |b| {
        b.iter(|| {
            for ((o, o2), &x) in out.iter_mut().zip(out2.iter_mut()).zip(black_box(xs)) {
                (*o, *o2) = softplus_sigmoid_approx(x);
            }
        })
    });
    g.bench_function("softplus f64 + sigmoid f64 (libm)", |b| {
        b.iter(|| {
            for ((o, o2), &x) in out.iter_mut().zip(out2.iter_mut()).zip(black_box(xs)) {
                let x = f64::from(x);
                (*o, *o2) = (softplus(x) as f32, sigmoid(x) as f32);
            }
        })
    });
    g.finish();
}

fn bench_exp(c: &mut Criterion, xs: &[f32]) {
    let mut out = vec![0.0f32; xs.len()];
    let mut g = c.benchmark_group("exp_1M");
    g.throughput(Throughput::Elements(xs.len() as u64));
    g.bench_function("exp_inplace (vectorised)", |b| {
        b.iter_batched_ref(
            || xs.to_vec(),
            |v| exp_inplace(black_box(v)),
            BatchSize::LargeInput,
        )
    });
    g.bench_function("exp_approx loop (baseline target)", |b| {
        b.iter(|| {
            for (o, &x) in out.iter_mut().zip(black_box(xs)) {
                *o = exp_approx(x);
            }
        })
    });
    g.bench_function("f32::exp (libm)", |b| {
        b.iter(|| {
            for (o, &x) in out.iter_mut().zip(black_box(xs)) {
                *o = x.exp();
            }
        })
    });
    g.finish();
}

fn bench_tanh(c: &mut Criterion, xs: &[f32]) {
    let mut out = vec![0.0f32; xs.len()];
    let mut g = c.benchmark_group("tanh_1M");
    g.throughput(Throughput::Elements(xs.len() as u64));
    g.bench_function("tanh_inplace (vectorised)", |b| {
        b.iter_batched_ref(
            || xs.to_vec(),
            |v| tanh_inplace(black_box(v)),
            BatchSize::LargeInput,
        )
    });
    g.bench_function("f32::tanh (libm)", |b| {
        b.iter(|| {
            for (o, &x) in out.iter_mut().zip(black_box(xs)) {
                *o = x.tanh();
            }
        })
    });
    g.finish();
}

/// `log Σ exp` over N values. The library's versions are f64 with libm `exp`
/// ([`log_sum_exp`]: max pass + sum pass; [`LogSumExp`]: one streaming pass, a rescale when the
/// maximum grows). For comparison, a bench-local f32 two-pass version through [`exp_approx`]
/// (not a library function) shows what the vectorised `exp` gives here.
fn bench_log_sum_exp(c: &mut Criterion, xs: &[f32]) {
    let xd: Vec<f64> = xs.iter().map(|&x| f64::from(x)).collect();
    let mut g = c.benchmark_group("log_sum_exp_1M");
    g.throughput(Throughput::Elements(xs.len() as u64));
    g.bench_function("log_sum_exp f64 (two pass, libm)", |b| {
        b.iter(|| log_sum_exp(black_box(&xd)))
    });
    g.bench_function("LogSumExp::add f64 (streaming, libm)", |b| {
        b.iter(|| {
            let mut acc = LogSumExp::default();
            for &x in black_box(&xd) {
                acc.add(x);
            }
            acc.value()
        })
    });
    g.bench_function("two pass f32 exp_approx (bench-local)", |b| {
        b.iter(|| {
            let v = black_box(xs);
            let m = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            // Eight partial sums so the reduction vectorises without reassociation.
            let mut acc = [0.0f32; 8];
            let chunks = v.chunks_exact(8);
            let tail: f32 = chunks.remainder().iter().map(|&x| exp_approx(x - m)).sum();
            for ch in chunks {
                for (a, &x) in acc.iter_mut().zip(ch) {
                    *a += exp_approx(x - m);
                }
            }
            m + (acc.iter().sum::<f32>() + tail).ln()
        })
    });
    g.finish();
}

fn elementwise(c: &mut Criterion) {
    let xs = uniform(N, -10.0, 10.0, 12_345);
    bench_sigmoid(c, &xs);
    bench_softplus(c, &xs);
    bench_exp(c, &xs);
    bench_tanh(c, &xs);
    bench_log_sum_exp(c, &xs);
}

/// A deterministic `[rows, cols]` matrix with entries in [−0.5, 0.5).
fn matrix(rows: usize, cols: usize, seed: u32) -> Mat {
    Mat::from_vec(rows, cols, uniform(rows * cols, -0.5, 0.5, seed))
}

/// FLOP of an `[m,k]·[k,n]` product: one multiply and one add per term.
fn flop(m: usize, k: usize, n: usize) -> u64 {
    (2 * m * k * n) as u64
}

fn gemm(c: &mut Criterion) {
    // Throughput::Elements(2·m·k·n): criterion's "elem/s" is FLOP/s, "Gelem/s" is GFLOP/s.
    let mut g = c.benchmark_group("gemm_gflops");
    // `C ← A·B` (`matmul_nn`), `[m,k]·[k,n]`.
    for (m, k, n) in [
        (100, 784, 200),
        (100, 200, 200),
        (100, 200, 784),
        (2000, 200, 200),
        (2000, 200, 784),
        (2000, 400, 200),
    ] {
        let a = matrix(m, k, 1);
        let b = matrix(k, n, 2);
        let mut out = Mat::zeros(m, n);
        g.throughput(Throughput::Elements(flop(m, k, n)));
        g.bench_function(format!("nn_{m}x{k}x{n}"), |bch| {
            bch.iter(|| matmul_nn(black_box(&a), black_box(&b), &mut out))
        });
        if m >= 2000 {
            // The same product through matrixmultiply directly, the yardstick of the packed
            // AVX-512 GEMM that `matmul_nn` picks for these shapes on AVX-512 CPUs.
            g.bench_function(format!("matrixmultiply_nn_{m}x{k}x{n}"), |bch| {
                bch.iter(|| raw_matrixmultiply(black_box(&a), black_box(&b), false, &mut out))
            });
        }
    }
    // Weight gradient `dW ← Xᵀ·dY + dW` (`gemm_tn`): X: [rows, n_in], dY: [rows, n_out], so
    // the product is `[n_in, rows]·[rows, n_out]`.
    let (rows, n_in, n_out) = (2000, 200, 784);
    let x = matrix(rows, n_in, 3);
    let dy = matrix(rows, n_out, 4);
    let mut dw = Mat::zeros(n_in, n_out);
    g.throughput(Throughput::Elements(flop(n_in, rows, n_out)));
    g.bench_function(format!("tn_{n_in}x{rows}x{n_out}"), |bch| {
        bch.iter(|| gemm_tn(1.0, black_box(&x), black_box(&dy), 1.0, &mut dw))
    });
    // Input gradient `dX ← dY·Wᵀ` (`matmul_nt`): W: [n_in, n_out] (the `Dense` kernel layout),
    // so the product is `[rows, n_out]·[n_out, n_in]`.
    let w = matrix(n_in, n_out, 5);
    let mut dx = Mat::zeros(rows, n_in);
    g.throughput(Throughput::Elements(flop(rows, n_out, n_in)));
    g.bench_function(format!("nt_{rows}x{n_out}x{n_in}"), |bch| {
        bch.iter(|| matmul_nt(black_box(&dy), black_box(&w), &mut dx))
    });
    g.bench_function(format!("matrixmultiply_nt_{rows}x{n_out}x{n_in}"), |bch| {
        bch.iter(|| raw_matrixmultiply(black_box(&dy), black_box(&w), true, &mut dx))
    });
    if Precision::bf16_available() {
        // The same three products with bf16 operands on AMX (`Precision::Bf16`), packing
        // (rounding) of both operands included.
        let _bf16 = ProductPrecision::enter(Precision::Bf16);
        let a = matrix(rows, n_in, 1);
        let mut out = Mat::zeros(rows, n_out);
        g.throughput(Throughput::Elements(flop(rows, n_in, n_out)));
        g.bench_function(format!("bf16_nn_{rows}x{n_in}x{n_out}"), |bch| {
            bch.iter(|| matmul_nn(black_box(&a), black_box(&w), &mut out))
        });
        g.throughput(Throughput::Elements(flop(n_in, rows, n_out)));
        g.bench_function(format!("bf16_tn_{n_in}x{rows}x{n_out}"), |bch| {
            bch.iter(|| gemm_tn(1.0, black_box(&x), black_box(&dy), 1.0, &mut dw))
        });
        g.throughput(Throughput::Elements(flop(rows, n_out, n_in)));
        g.bench_function(format!("bf16_nt_{rows}x{n_out}x{n_in}"), |bch| {
            bch.iter(|| matmul_nt(black_box(&dy), black_box(&w), &mut dx))
        });
    }
    g.finish();
}

/// `C ← A·op(B)` through `matrixmultiply::sgemm` directly (column-major operands).
fn raw_matrixmultiply(a: &Mat, b: &Mat, transpose_b: bool, c: &mut Mat) {
    let (m, k) = a.shape();
    let n = c.ncols();
    let (rsb, csb) = if transpose_b {
        (b.nrows() as isize, 1)
    } else {
        (1, b.nrows() as isize)
    };
    // SAFETY: A is m×k, op(B) is k×n and C is m×n, all column-major and owned; C is distinct.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            1,
            m as isize,
            b.as_ptr(),
            rsb,
            csb,
            0.0,
            c.as_mut_ptr(),
            1,
            m as isize,
        )
    };
}

/// The block-Gibbs logits `Z·W + b` and `Z·Wᵀ + a` on C chains: `matmul_nn`/`matmul_nt` plus
/// `add_row_vector` (matrixmultiply, packing both operands every call) against
/// `affine_unpacked` (register tiles read in place).
fn gibbs_logits(c: &mut Criterion) {
    let mut g = c.benchmark_group("gibbs_logits_gflops");
    for (chains, n) in [(32, 100), (100, 100), (32, 200), (100, 200), (1000, 200)] {
        let z = Mat::from_vec(
            chains,
            n,
            uniform(chains * n, 0.0, 1.0, 7)
                .iter()
                .map(|&u| if u < 0.5 { 1.0 } else { 0.0 })
                .collect(),
        );
        let w = matrix(n, n, 8);
        let bias = uniform(n, -0.5, 0.5, 9);
        let mut out = Mat::zeros(chains, n);
        g.throughput(Throughput::Elements(flop(chains, n, n)));
        g.bench_function(format!("matrixmultiply_nt_{chains}x{n}x{n}"), |bch| {
            bch.iter(|| {
                matmul_nt(black_box(&z), black_box(&w), &mut out);
                add_row_vector(&mut out, &bias);
            })
        });
        g.bench_function(format!("unpacked_nn_{chains}x{n}x{n}"), |bch| {
            bch.iter(|| affine_unpacked(black_box(&z), black_box(&w), Op::N, &bias, &mut out))
        });
        g.bench_function(format!("unpacked_nt_{chains}x{n}x{n}"), |bch| {
            bch.iter(|| affine_unpacked(black_box(&z), black_box(&w), Op::T, &bias, &mut out))
        });
    }
    g.finish();
}

criterion_group! {
    name = kernels;
    config = Criterion::default().measurement_time(Duration::from_secs(3));
    targets = elementwise, gemm, gibbs_logits
}

fn main() {
    if std::env::var_os("MATMUL_NUM_THREADS").is_none() {
        // SAFETY: first statement of `main`, before any thread is spawned or any GEMM reads the
        // variable (matrixmultiply reads it once, lazily), so nothing touches the environment
        // concurrently.
        unsafe { std::env::set_var("MATMUL_NUM_THREADS", "1") };
    }
    kernels();
    Criterion::default().configure_from_args().final_summary();
}

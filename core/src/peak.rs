//! The f32 peak of this CPU core, measured rather than assumed.
//!
//! Achieved GFLOP/s only mean something against the peak of the core they ran on, and machines
//! differ (clock, turbo, one or two FMA units, AVX-512 or AVX2). [`f32_fma_peak`] measures it:
//! a loop of independent fused multiply-add chains, as wide as the widest SIMD path the kernels
//! of this crate use ([`crate::numerics::simd_path`]), with enough chains in flight to hide the
//! FMA latency. What it reports is the rate the core sustains on pure FMA work at the moment of
//! the measurement, i.e. an upper bound for any kernel, which `gumbolt bench` prints beside the
//! achieved rates.

use std::hint::black_box;
use std::time::Instant;

/// Independent accumulator vectors of the FMA loop: 2 FMA units × 4-cycle latency need at least
/// 8 in flight; 16 leave margin and still fit the 16 architectural AVX2 registers with the
/// multiplier and addend in memory operands or the remaining AVX-512 registers.
const CHAINS: usize = 16;

/// The f32 FMA rate of the calling thread's core, as measured by [`f32_fma_peak`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FmaPeak {
    /// Sustained GFLOP/s (one FMA = 2 FLOP) of the best timed repetition.
    pub gflops: f64,
    /// Lanes per FMA instruction on the measured path (16 for AVX-512, 8 for AVX2, 1 otherwise).
    pub lanes: usize,
    /// The code path measured: `avx512`, `avx2+fma` or `baseline`.
    pub path: &'static str,
}

/// Runs `iters` rounds of [`CHAINS`] independent `acc ← acc·m + a` vector chains of `lanes` f32
/// each and returns the sum of all accumulators (so the work cannot be optimised away and can
/// be checked against the scalar recurrence).
fn fma_rounds(iters: u64, m: f32, a: f32) -> (f32, usize, &'static str) {
    #[cfg(target_arch = "x86_64")]
    {
        // The same dispatch as the kernels' `multiversion!`.
        match crate::numerics::simd_path() {
            // SAFETY: `simd_path` reports AVX-512 F (with VL, DQ, BW) on this CPU.
            "avx512" => return (unsafe { x86::avx512(iters, m, a) }, 16, "avx512"),
            // SAFETY: `simd_path` reports AVX2 and FMA on this CPU.
            "avx2+fma" => return (unsafe { x86::avx2(iters, m, a) }, 8, "avx2+fma"),
            _ => {}
        }
    }
    let mut acc = [0.0f32; CHAINS];
    for (i, x) in acc.iter_mut().enumerate() {
        *x = i as f32;
    }
    for _ in 0..iters {
        for x in &mut acc {
            *x = black_box(x.mul_add(m, a));
        }
    }
    (acc.iter().sum(), 1, "baseline")
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::CHAINS;
    use std::arch::x86_64::*;

    /// Lane `l` of chain `c` starts at `c` (the same start in every lane).
    #[target_feature(enable = "avx512f")]
    pub(super) fn avx512(iters: u64, m: f32, a: f32) -> f32 {
        let (vm, va) = (_mm512_set1_ps(m), _mm512_set1_ps(a));
        let mut acc: [__m512; CHAINS] = std::array::from_fn(|c| _mm512_set1_ps(c as f32));
        for _ in 0..iters {
            for x in &mut acc {
                *x = _mm512_fmadd_ps(*x, vm, va);
            }
        }
        let mut total = _mm512_setzero_ps();
        for x in acc {
            total = _mm512_add_ps(total, x);
        }
        _mm512_reduce_add_ps(total)
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) fn avx2(iters: u64, m: f32, a: f32) -> f32 {
        let (vm, va) = (_mm256_set1_ps(m), _mm256_set1_ps(a));
        let mut acc: [__m256; CHAINS] = std::array::from_fn(|c| _mm256_set1_ps(c as f32));
        for _ in 0..iters {
            for x in &mut acc {
                *x = _mm256_fmadd_ps(*x, vm, va);
            }
        }
        let mut lanes = [0.0f32; 8];
        let mut total = _mm256_setzero_ps();
        for x in acc {
            total = _mm256_add_ps(total, x);
        }
        // SAFETY: `lanes` holds exactly 8 f32.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), total) };
        lanes.iter().sum()
    }
}

/// Measures the sustained f32 FMA rate of the calling thread's core for about `seconds`
/// (best of several repetitions of ≥ 5 ms each, so a short preemption does not lower it).
///
/// The measurement keeps the multiplier just below 1 so that no value over- or underflows and no
/// subnormal appears, whatever the floating-point mode.
///
/// ```
/// let peak = gumbolt_core::peak::f32_fma_peak(0.02);
/// assert!(peak.gflops > 0.0 && [1, 8, 16].contains(&peak.lanes));
/// ```
pub fn f32_fma_peak(seconds: f64) -> FmaPeak {
    let (m, a) = (0.999_f32, 0.001_f32);
    // Calibrate a repetition of about 5 ms.
    let mut iters = 1u64 << 12;
    let (_, lanes, path) = fma_rounds(iters, m, a);
    loop {
        let t = Instant::now();
        black_box(fma_rounds(black_box(iters), m, a));
        if t.elapsed().as_secs_f64() >= 0.005 || iters >= 1 << 34 {
            break;
        }
        iters *= 2;
    }
    let flop_per_rep = 2.0 * (CHAINS * lanes) as f64 * iters as f64;
    let start = Instant::now();
    let mut best = f64::INFINITY;
    let mut reps = 0;
    while reps < 3 || start.elapsed().as_secs_f64() < seconds {
        let t = Instant::now();
        black_box(fma_rounds(black_box(iters), m, a));
        best = best.min(t.elapsed().as_secs_f64());
        reps += 1;
    }
    FmaPeak {
        gflops: flop_per_rep / best * 1e-9,
        lanes,
        path,
    }
}

/// The f32 FMA rate that `threads` threads sustain together, as measured by
/// [`f32_fma_sustained`].
#[derive(Debug, Clone, PartialEq)]
pub struct SustainedFma {
    /// Total GFLOP/s of all threads: their FLOP over the wall time from the common start to
    /// the last thread's end.
    pub gflops: f64,
    /// Repetitions of the FMA loop each thread completed (at least one).
    pub reps_per_thread: Vec<u64>,
}

/// Measures the f32 FMA rate that `threads` threads sustain when they all run the loop of
/// [`f32_fma_peak`] at once for about `seconds` (released together by a barrier; the total
/// FLOP over the whole wall time, not the best repetition).
///
/// [`f32_fma_peak`] times one thread alone and keeps its best repetition: the core's burst
/// rate. On a machine whose cores share execution units or a power or time budget (SMT
/// siblings, a virtual machine's vCPUs on a busy host, an all-core turbo below the one-core
/// turbo) `threads` × that rate overstates what a multi-threaded kernel can reach; this
/// function measures what it can. With `threads = 1` it is the sustained rate of one thread.
///
/// ```
/// let s = gumbolt_core::peak::f32_fma_sustained(2, 0.01);
/// assert!(s.gflops > 0.0 && s.reps_per_thread.len() == 2);
/// assert!(s.reps_per_thread.iter().all(|&r| r >= 1));
/// ```
pub fn f32_fma_sustained(threads: usize, seconds: f64) -> SustainedFma {
    let threads = threads.max(1);
    let (m, a) = (0.999_f32, 0.001_f32);
    // Repetitions of about 1 ms, so that the end of the window is met closely.
    let mut iters = 1u64 << 10;
    let (_, lanes, _) = fma_rounds(iters, m, a);
    loop {
        let t = Instant::now();
        black_box(fma_rounds(black_box(iters), m, a));
        if t.elapsed().as_secs_f64() >= 0.001 || iters >= 1 << 34 {
            break;
        }
        iters *= 2;
    }
    let flop_per_rep = 2.0 * (CHAINS * lanes) as f64 * iters as f64;
    let barrier = std::sync::Barrier::new(threads);
    let (reps, elapsed): (Vec<u64>, Vec<f64>) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    let start = Instant::now();
                    let mut reps = 0u64;
                    while reps == 0 || start.elapsed().as_secs_f64() < seconds {
                        black_box(fma_rounds(black_box(iters), m, a));
                        reps += 1;
                    }
                    (reps, start.elapsed().as_secs_f64())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("the FMA loop does not panic"))
            .unzip()
    });
    let wall = elapsed.iter().copied().fold(0.0, f64::max);
    let total_reps: u64 = reps.iter().sum();
    SustainedFma {
        gflops: flop_per_rep * total_reps as f64 / wall * 1e-9,
        reps_per_thread: reps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The loop really performs `CHAINS × lanes × iters` FMAs: its result equals the scalar
    /// recurrence `x ← x·m + a` run from each chain's start value.
    #[test]
    fn fma_rounds_compute_the_recurrence() {
        let (m, a, iters) = (0.75_f32, 0.5_f32, 37_u64);
        let (got, lanes, _) = fma_rounds(iters, m, a);
        let mut want = 0.0f64;
        for c in 0..CHAINS {
            let mut x = c as f32;
            for _ in 0..iters {
                x = x.mul_add(m, a);
            }
            want += x as f64 * lanes as f64;
        }
        assert!(
            ((got as f64) - want).abs() <= 1e-5 * want.abs(),
            "{got} vs {want}"
        );
    }

    /// The measured path is the widest one the CPU offers, like the kernels' dispatch.
    #[test]
    fn measures_the_kernels_simd_width() {
        let p = f32_fma_peak(0.0);
        let want = match crate::numerics::simd_path() {
            "avx512" => 16,
            "avx2+fma" => 8,
            _ => 1,
        };
        assert_eq!(
            (p.lanes, p.path),
            (want, crate::numerics::simd_path()),
            "{p:?}"
        );
        assert!(p.gflops.is_finite() && p.gflops > 0.0);
    }
}

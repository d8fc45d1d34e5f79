//! Flush-to-zero: subnormal floats treated as zero on every thread that computes.
//!
//! The networks' passes and the samplers' kernels regularly produce results below
//! `f32::MIN_POSITIVE` (tiny gradients, `exp` of very negative logits, batch-norm variances of
//! dead units). On several x86-64 CPUs each such subnormal operand or result costs a microcode
//! assist of ~100 cycles; a 2000-row decoder pass that meets many of them runs 3× slower (the
//! README's "Speed" section has the measurement). Setting the flush-to-zero (FTZ) and
//! denormals-are-zero (DAZ) bits of MXCSR — or FPCR.FZ on aarch64 — makes the CPU treat them as
//! zero instead. The values lost are below 1.2e-38 and never matter to a log-likelihood.
//!
//! The floating-point mode is per thread. The library sets it:
//! - at the start of every thread it creates (training pools, negative-phase, evaluation and
//!   log Z workers) through [`enable_flush_to_zero`] or a rayon `start_handler` built from it;
//! - for the duration of each public entry point that computes on the caller's thread (a
//!   training step, an evaluation batch, a log Z estimate, a sampler run) through a
//!   [`FlushToZero`] guard, which restores the caller's mode when it is dropped.
//!
//! So results do not depend on the thread count or on which thread ran which task. A library
//! user who calls lower-level kernels (e.g. `linalg::gemm`) in threads of their own can call
//! [`enable_flush_to_zero`] once at the start of each such thread.
//!
//! ```
//! use gumbolt_core::fpmode::{FlushToZero, flush_to_zero_enabled};
//! let before = flush_to_zero_enabled();
//! {
//!     let _ftz = FlushToZero::enable();
//!     // On x86-64 and aarch64 a subnormal result is now flushed to zero.
//!     if cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
//!         assert!(flush_to_zero_enabled());
//!         let tiny = std::hint::black_box(f32::MIN_POSITIVE);
//!         assert_eq!(tiny * std::hint::black_box(0.5f32), 0.0);
//!     }
//! }
//! assert_eq!(flush_to_zero_enabled(), before);
//! ```

/// The bits of the floating-point control register that flush subnormals.
#[cfg(target_arch = "x86_64")]
const FTZ_BITS: u64 = (1 << 15) | (1 << 6); // MXCSR.FTZ | MXCSR.DAZ
#[cfg(target_arch = "aarch64")]
const FTZ_BITS: u64 = 1 << 24; // FPCR.FZ

#[cfg(target_arch = "x86_64")]
fn read_mode() -> u64 {
    let mut csr: u32 = 0;
    // SAFETY: `stmxcsr` stores the 32-bit MXCSR into the given, valid, writable location.
    unsafe {
        std::arch::asm!("stmxcsr [{}]", in(reg) &mut csr, options(nostack, preserves_flags));
    }
    u64::from(csr)
}

#[cfg(target_arch = "x86_64")]
fn write_mode(mode: u64) {
    // Only bits that `read_mode` returned (plus FTZ/DAZ, which every SSE2 CPU with DAZ support
    // accepts; all x86-64 CPUs since 2004 have it) are ever written.
    let csr = mode as u32;
    // SAFETY: `ldmxcsr` loads MXCSR from a valid location; only the rounding/exception-mask
    // bits read from MXCSR and the FTZ/DAZ bits are set, which changes no memory.
    unsafe {
        std::arch::asm!("ldmxcsr [{}]", in(reg) &csr, options(nostack, readonly, preserves_flags));
    }
}

#[cfg(target_arch = "aarch64")]
fn read_mode() -> u64 {
    let fpcr: u64;
    // SAFETY: reading FPCR has no side effects.
    unsafe {
        std::arch::asm!("mrs {}, fpcr", out(reg) fpcr, options(nomem, nostack, preserves_flags));
    }
    fpcr
}

#[cfg(target_arch = "aarch64")]
fn write_mode(mode: u64) {
    // SAFETY: writing FPCR with the value read from it plus the FZ bit only changes how this
    // thread's floating-point operations treat subnormals.
    unsafe {
        std::arch::asm!("msr fpcr, {}", in(reg) mode, options(nomem, nostack, preserves_flags));
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn read_mode() -> u64 {
    0
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn write_mode(_mode: u64) {}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const FTZ_BITS: u64 = 0;

/// Whether subnormal floats are flushed to zero on the current thread (always `false` on
/// architectures other than x86-64 and aarch64, where the library leaves the mode alone).
pub fn flush_to_zero_enabled() -> bool {
    FTZ_BITS != 0 && read_mode() & FTZ_BITS == FTZ_BITS
}

/// Flushes subnormal floats to zero on the current thread from now on (x86-64: MXCSR FTZ and
/// DAZ; aarch64: FPCR.FZ; elsewhere nothing). Call it at the start of a thread of your own that
/// calls the library's kernels directly; the library's own threads and entry points already do.
pub fn enable_flush_to_zero() {
    let mode = read_mode();
    if mode & FTZ_BITS != FTZ_BITS {
        write_mode(mode | FTZ_BITS);
    }
}

/// A rayon `start_handler` that enables flush-to-zero on every thread of a pool:
/// `rayon::ThreadPoolBuilder::new().start_handler(ftz_start_handler)`.
pub fn ftz_start_handler(_thread_index: usize) {
    enable_flush_to_zero();
}

/// Flush-to-zero for a scope: enabled by [`FlushToZero::enable`], the thread's previous mode
/// restored when the guard is dropped (so a library call leaves its caller's mode as it was).
#[derive(Debug)]
#[must_use = "flush-to-zero is restored as soon as the guard is dropped"]
pub struct FlushToZero {
    previous: u64,
    // The mode is per thread: the guard must be dropped on the thread that made it.
    _not_send: std::marker::PhantomData<*const ()>,
}

impl FlushToZero {
    /// Enables flush-to-zero on the current thread until the guard is dropped.
    pub fn enable() -> Self {
        let previous = read_mode();
        if previous & FTZ_BITS != FTZ_BITS {
            write_mode(previous | FTZ_BITS);
        }
        Self {
            previous,
            _not_send: std::marker::PhantomData,
        }
    }
}

impl Drop for FlushToZero {
    fn drop(&mut self) {
        if self.previous & FTZ_BITS != FTZ_BITS {
            write_mode(self.previous);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hint::black_box;

    fn subnormal_product() -> f32 {
        black_box(f32::MIN_POSITIVE) * black_box(0.25f32)
    }

    #[test]
    fn guard_flushes_and_restores() {
        if FTZ_BITS == 0 {
            return;
        }
        // A fresh thread starts with the default mode: subnormals are kept.
        std::thread::spawn(|| {
            assert!(!flush_to_zero_enabled());
            assert!(subnormal_product() > 0.0);
            {
                let _g = FlushToZero::enable();
                assert_eq!(subnormal_product(), 0.0);
                // Subnormal inputs are read as zero too (DAZ on x86-64).
                let sub = black_box(f32::from_bits(1));
                if cfg!(target_arch = "x86_64") {
                    assert_eq!(sub * black_box(2.0f32), 0.0);
                }
                // Nested guards leave the mode on until the outer one ends.
                {
                    let _inner = FlushToZero::enable();
                }
                assert!(flush_to_zero_enabled());
            }
            assert!(!flush_to_zero_enabled());
            assert!(subnormal_product() > 0.0);
            enable_flush_to_zero();
            assert_eq!(subnormal_product(), 0.0);
            // A guard on a thread that already flushes leaves it flushing.
            drop(FlushToZero::enable());
            assert!(flush_to_zero_enabled());
        })
        .join()
        .unwrap();
    }

    #[test]
    fn rayon_start_handler_sets_every_pool_thread() {
        if FTZ_BITS == 0 {
            return;
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .start_handler(ftz_start_handler)
            .build()
            .unwrap();
        let flags: Vec<bool> = pool.broadcast(|_| flush_to_zero_enabled());
        assert_eq!(flags, vec![true; 3]);
    }
}

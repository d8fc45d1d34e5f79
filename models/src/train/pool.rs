//! The thread pool of training steps (see [`super::TrainState::set_threads`]).
//!
//! A step on `T ≥ 2` threads runs inside a rayon pool of `T` persistent threads: the negative
//! phase is one task beside the forward and backward passes, the PCD chains' stream groups are
//! tasks of their own and large GEMMs are cut into blocks, so whichever thread is idle picks up
//! work. Every task computes exactly what the serial step computes, so the results do not
//! depend on `T` or on which thread ran what.

use std::sync::Arc;

/// The model's pool: built on first use, shared by clones of the model.
#[derive(Clone)]
pub(crate) struct StepPool {
    threads: usize,
    pool: Option<Arc<rayon::ThreadPool>>,
}

impl StepPool {
    /// A pool of `threads` threads (`≤ 1`: steps run on the calling thread).
    pub(crate) fn new(threads: usize) -> Self {
        Self {
            threads: threads.max(1),
            pool: None,
        }
    }

    /// The number of threads of a step.
    pub(crate) fn threads(&self) -> usize {
        self.threads
    }

    /// The pool, built on first use; `None` for one thread, or if the operating system refuses
    /// the threads (the step then runs serially, with the same results).
    pub(crate) fn get(&mut self) -> Option<Arc<rayon::ThreadPool>> {
        if self.threads < 2 {
            return None;
        }
        if self.pool.is_none() {
            let built = rayon::ThreadPoolBuilder::new()
                .num_threads(self.threads)
                .thread_name(|i| format!("gumbolt-step-{i}"))
                .start_handler(gumbolt_core::fpmode::ftz_start_handler)
                .build();
            match built {
                Ok(pool) => self.pool = Some(Arc::new(pool)),
                Err(_) => self.threads = 1,
            }
        }
        self.pool.clone()
    }
}

impl Default for StepPool {
    fn default() -> Self {
        Self::new(1)
    }
}

impl std::fmt::Debug for StepPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StepPool({} threads)", self.threads)
    }
}

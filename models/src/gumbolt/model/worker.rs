//! A persistent thread for the negative phase (see [`super::GumBolt::set_parallel_negative_phase`]).
//!
//! Spawning a thread per training step costs more than the thread creation itself: the new
//! thread starts on whichever core the scheduler picks (often the parent's, until it is
//! migrated), so both phases share one core for part of the step. A thread that lives as long as
//! the model keeps its core.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;

use crate::gumbolt::error::Result;
use crate::gumbolt::prior::PartitionGradient;

type Job<P, G> = (G, P);
type Done<G> = (G, Result<()>);

/// The worker: receives the negative phase and a copy of the prior, runs
/// [`PartitionGradient::advance`], sends the negative phase back.
pub(super) struct NegativeWorker<P, G> {
    jobs: Option<Sender<Job<P, G>>>,
    done: Receiver<Done<G>>,
    handle: Option<JoinHandle<()>>,
}

impl<P, G> NegativeWorker<P, G>
where
    P: Send + 'static,
    G: PartitionGradient<P> + 'static,
{
    pub(super) fn spawn() -> Self {
        let (jobs, job_rx) = channel::<Job<P, G>>();
        let (done_tx, done) = channel::<Done<G>>();
        let handle = std::thread::Builder::new()
            .name("gumbolt-negative-phase".into())
            .spawn(move || {
                for (mut partition, prior) in job_rx {
                    let r = partition.advance(&prior);
                    if done_tx.send((partition, r)).is_err() {
                        break;
                    }
                }
            })
            .expect("cannot spawn the negative-phase thread");
        Self {
            jobs: Some(jobs),
            done,
            handle: Some(handle),
        }
    }

    /// Starts `partition.advance(&prior)` on the worker.
    pub(super) fn start(&self, partition: G, prior: P) {
        self.jobs
            .as_ref()
            .expect("the worker is running")
            .send((partition, prior))
            .unwrap_or_else(|_| panic!("the negative-phase thread has stopped"));
    }

    /// Waits for the job started last.
    pub(super) fn finish(&self) -> Done<G> {
        match self.done.recv() {
            Ok(d) => d,
            Err(_) => {
                // The worker panicked: surface its panic here.
                panic!("the negative-phase thread panicked")
            }
        }
    }
}

impl<P, G> Drop for NegativeWorker<P, G> {
    fn drop(&mut self) {
        // Closing the job channel ends the worker's loop.
        self.jobs.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// The model's slot for a worker: cloning a model gives the clone an empty slot (it starts its
/// own worker when needed).
pub(super) struct WorkerSlot<P, G>(pub(super) Option<NegativeWorker<P, G>>);

impl<P, G> Default for WorkerSlot<P, G> {
    fn default() -> Self {
        Self(None)
    }
}

impl<P, G> Clone for WorkerSlot<P, G> {
    fn clone(&self) -> Self {
        Self(None)
    }
}

impl<P, G> std::fmt::Debug for WorkerSlot<P, G> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "WorkerSlot(running)"
        } else {
            "WorkerSlot(idle)"
        })
    }
}

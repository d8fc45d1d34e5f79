//! Progress reporting for long runs (a CLI can drive a progress bar from it; this crate stays
//! free of any terminal dependency).

/// The phase a long-running estimator is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Building the base model (AIS base-rate pilot).
    Base,
    /// Tuning the temperature ladder (PT pilot runs); `done/total` count pilot steps.
    Ladder,
    /// PT burn-in sweeps.
    BurnIn,
    /// PT production sweeps.
    Sampling,
    /// AIS annealing; `done/total` count chain-steps (chains × transitions), and `total` grows
    /// when runs are added for a target standard error.
    Annealing,
    /// Solving the bridge-sampling equations.
    Solving,
}

/// One progress report: `done` of `total` units of work of `phase` are complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// The current phase.
    pub phase: Phase,
    /// Units of work done in this phase.
    pub done: u64,
    /// Total units of work of this phase (may grow during [`Phase::Ladder`], and between the
    /// rounds of [`Phase::Sampling`] when a target standard error is set).
    pub total: u64,
}

/// Reports at most ~`STEPS` times per phase, plus at its start and end.
pub(crate) struct Reporter<'a> {
    f: &'a mut dyn FnMut(Progress),
    phase: Phase,
    total: u64,
    every: u64,
    next: u64,
}

const STEPS: u64 = 200;

impl<'a> Reporter<'a> {
    pub(crate) fn new(f: &'a mut dyn FnMut(Progress), phase: Phase, total: u64) -> Self {
        Self::new_at(f, phase, 0, total)
    }

    /// A reporter whose phase is already `done` of `total` complete (e.g. an extension round).
    pub(crate) fn new_at(
        f: &'a mut dyn FnMut(Progress),
        phase: Phase,
        done: u64,
        total: u64,
    ) -> Self {
        f(Progress { phase, done, total });
        let every = (total / STEPS).max(1);
        Self {
            f,
            phase,
            total,
            every,
            next: done + every,
        }
    }

    /// Reports `done` if a report is due (or `done == total`, once).
    #[inline]
    pub(crate) fn tick(&mut self, done: u64) {
        if done >= self.next || (done == self.total && self.next != u64::MAX) {
            (self.f)(Progress {
                phase: self.phase,
                done,
                total: self.total,
            });
            self.next = if done >= self.total {
                u64::MAX
            } else {
                done + self.every
            };
        }
    }
}

/// A callback that ignores all reports.
pub fn no_progress() -> impl FnMut(Progress) {
    |_| {}
}

/// `requested` threads, or the available parallelism when 0.
pub(crate) fn effective_threads(requested: usize) -> usize {
    if requested > 0 {
        requested
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
}

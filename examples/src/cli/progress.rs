//! Progress display for long runs, fed by the samplers' progress callback
//! ([`gumbolt_samplers::Progress`]): an indicatif bar when stderr is a terminal, otherwise a log
//! line on stderr at most every [`LOG_INTERVAL`].

use gumbolt_samplers::{Phase, Progress};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// Minimum time between two log lines when stderr is not a terminal.
const LOG_INTERVAL: Duration = Duration::from_secs(5);

/// Where progress reports go.
pub(crate) enum ProgressSink {
    Off,
    Bar {
        bar: ProgressBar,
        phase: Option<Phase>,
    },
    Log {
        label: String,
        start: Instant,
        last: Instant,
    },
}

fn phase_name(p: Phase) -> &'static str {
    match p {
        Phase::Base => "base model",
        Phase::Ladder => "ladder tuning",
        Phase::BurnIn => "burn-in",
        Phase::Sampling => "sampling",
        Phase::Annealing => "annealing",
        Phase::Solving => "bridge solve",
    }
}

impl ProgressSink {
    /// A sink for a task called `label`; [`ProgressSink::Off`] when `quiet`.
    pub(crate) fn new(label: &str, quiet: bool) -> Self {
        if quiet {
            return Self::Off;
        }
        if std::io::stderr().is_terminal() {
            // Hidden until the first report gives it a length.
            let bar = ProgressBar::hidden();
            let style = ProgressStyle::with_template(
                "{prefix} {msg:>13} [{bar:30}] {pos}/{len} {elapsed_precise} eta {eta}",
            )
            .expect("valid progress template")
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(label.to_string());
            Self::Bar { bar, phase: None }
        } else {
            let now = Instant::now();
            Self::Log {
                label: label.to_string(),
                start: now,
                last: now,
            }
        }
    }

    /// Records one report.
    pub(crate) fn update(&mut self, p: Progress) {
        match self {
            Self::Off => {}
            Self::Bar { bar, phase } => {
                let first = phase.is_none();
                if *phase != Some(p.phase) {
                    *phase = Some(p.phase);
                    bar.reset();
                    bar.set_message(phase_name(p.phase));
                }
                bar.set_length(p.total);
                bar.set_position(p.done);
                if first {
                    bar.set_draw_target(ProgressDrawTarget::stderr());
                }
            }
            Self::Log { label, start, last } => {
                let now = Instant::now();
                if now.duration_since(*last) >= LOG_INTERVAL {
                    *last = now;
                    let pct = if p.total > 0 {
                        100.0 * p.done as f64 / p.total as f64
                    } else {
                        0.0
                    };
                    eprintln!(
                        "[{:>7.1} s] {label}: {} {}/{} ({pct:.0}%)",
                        now.duration_since(*start).as_secs_f64(),
                        phase_name(p.phase),
                        p.done,
                        p.total
                    );
                }
            }
        }
    }

    /// Removes the bar, if any.
    pub(crate) fn finish(self) {
        if let Self::Bar { bar, .. } = self {
            bar.finish_and_clear();
        }
    }
}

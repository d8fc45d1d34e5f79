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

/// Progress of a counted task (training iterations, evaluated images): an indicatif bar with
/// rate and ETA when stderr is a terminal, otherwise a log line on stderr at most every
/// `log_interval`. Notes ([`TaskBar::note`]) go above the bar, or are logged as they come.
pub(crate) enum TaskBar {
    Off,
    Bar(ProgressBar),
    Log {
        label: String,
        unit: &'static str,
        start: Instant,
        last: Instant,
        interval: Duration,
        first: u64,
        pos: u64,
        total: u64,
        message: String,
    },
}

impl TaskBar {
    /// A bar for `label` counting `unit`s from `first` to `total`; [`TaskBar::Off`] when
    /// `quiet`.
    pub(crate) fn new(
        label: &str,
        unit: &'static str,
        first: u64,
        total: u64,
        log_interval: Duration,
        quiet: bool,
    ) -> Self {
        if quiet {
            return Self::Off;
        }
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(&format!(
                "{{prefix}} [{{bar:30}}] {{pos}}/{{len}} {unit} {{elapsed_precise}} eta {{eta}} {{msg}}"
            ))
            .expect("valid progress template")
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(label.to_string());
            bar.set_position(first);
            bar.reset_eta();
            Self::Bar(bar)
        } else {
            let now = Instant::now();
            Self::Log {
                label: label.to_string(),
                unit,
                start: now,
                last: now,
                interval: log_interval,
                first,
                pos: first,
                total,
                message: String::new(),
            }
        }
    }

    /// Sets the position.
    pub(crate) fn set_position(&mut self, position: u64) {
        match self {
            Self::Off => {}
            Self::Bar(bar) => bar.set_position(position),
            Self::Log {
                label,
                unit,
                start,
                last,
                interval,
                first,
                pos,
                total,
                message,
            } => {
                *pos = position;
                let now = Instant::now();
                if now.duration_since(*last) < *interval {
                    return;
                }
                *last = now;
                let elapsed = now.duration_since(*start).as_secs_f64();
                let done = position.saturating_sub(*first);
                let eta = if done > 0 {
                    let left = total.saturating_sub(position) as f64;
                    format!(", eta {}", hms(elapsed / done as f64 * left))
                } else {
                    String::new()
                };
                let msg = if message.is_empty() {
                    String::new()
                } else {
                    format!(" {message}")
                };
                eprintln!(
                    "[{:>7.1} s] {label}: {position}/{total} {unit}{eta}{msg}",
                    elapsed
                );
            }
        }
    }

    /// Sets the message shown after the bar (or in the next log line).
    pub(crate) fn set_message(&mut self, text: String) {
        match self {
            Self::Off => {}
            Self::Bar(bar) => bar.set_message(text),
            Self::Log { message, .. } => *message = text,
        }
    }

    /// Prints a line on stderr (above the bar, if any).
    pub(crate) fn note(&self, line: &str) {
        match self {
            Self::Off => {}
            Self::Bar(bar) => bar.suspend(|| eprintln!("{line}")),
            Self::Log { .. } => eprintln!("{line}"),
        }
    }

    /// Removes the bar, if any.
    pub(crate) fn finish(self) {
        if let Self::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}

/// `seconds` as `1h02m03s`, `2m03s` or `3s`.
pub(crate) fn hms(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s:02}s"),
        (h, m, s) => format!("{h}h{m:02}m{s:02}s"),
    }
}

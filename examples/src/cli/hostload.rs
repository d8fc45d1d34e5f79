//! How much of the machine a timed window really had: CPU time stolen by the hypervisor and
//! CPU time taken by other processes, from Linux's `/proc/stat` and `/proc/self/stat`.
//!
//! On a shared virtual machine a speed figure can move by tens of per cent while the program
//! does exactly the same work (the host runs other guests on the same cores; a forgotten
//! background job shares the vCPUs). `gumbolt bench` and `gumbolt train` report both fractions
//! beside their seconds per iteration, so that a slow figure says whether the machine was
//! busy. Elsewhere (no `/proc`) the fractions are absent.

/// Cumulative CPU time of the whole machine and of this process, in clock ticks.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct CpuTicks {
    /// All CPUs' time, every state of the aggregate `cpu` line (guest time is already counted
    /// in user time, so the guest columns are left out).
    total: u64,
    /// Time the hypervisor ran something else while a vCPU wanted to run (`steal`).
    steal: u64,
    /// Busy time of all CPUs: total − idle − iowait − steal.
    busy: u64,
    /// This process's user + system time (all its threads).
    own: u64,
}

/// The fractions of a window's CPU time (all CPUs) that were stolen by the hypervisor and
/// that other processes used.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub(crate) struct HostLoad {
    /// Stolen time / all CPU time in the window: 0 on a quiet host.
    pub(crate) steal_fraction: f64,
    /// Other processes' busy time / all CPU time in the window: 0 when nothing else ran.
    pub(crate) other_processes_fraction: f64,
}

/// Parses the aggregate `cpu` line of `/proc/stat` into (total, steal, busy) ticks.
fn parse_proc_stat(text: &str) -> Option<(u64, u64, u64)> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal [guest guest_nice]
    if v.len() < 8 {
        return None;
    }
    let total: u64 = v[..8].iter().sum();
    let (idle, iowait, steal) = (v[3], v[4], v[7]);
    Some((total, steal, total - idle - iowait - steal))
}

/// Parses `/proc/self/stat` into the process's utime + stime ticks (fields 14 and 15; the
/// command name in parentheses may hold spaces, so fields are counted after its `)`).
fn parse_self_stat(text: &str) -> Option<u64> {
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After ")": state is field 3, so utime (14) and stime (15) are at 11 and 12.
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

impl CpuTicks {
    /// Reads the counters now; `None` where `/proc` is absent or unreadable.
    pub(crate) fn now() -> Option<Self> {
        let (total, steal, busy) = parse_proc_stat(&std::fs::read_to_string("/proc/stat").ok()?)?;
        let own = parse_self_stat(&std::fs::read_to_string("/proc/self/stat").ok()?)?;
        Some(CpuTicks {
            total,
            steal,
            busy,
            own,
        })
    }

    /// The load of the window from `self` to `later`; `None` if no tick passed.
    pub(crate) fn load_until(&self, later: &CpuTicks) -> Option<HostLoad> {
        let total = later.total.checked_sub(self.total)?;
        if total == 0 {
            return None;
        }
        let steal = later.steal.saturating_sub(self.steal);
        let busy = later.busy.saturating_sub(self.busy);
        let own = later.own.saturating_sub(self.own);
        Some(HostLoad {
            steal_fraction: steal as f64 / total as f64,
            // Tick accounting is sampled, so `own` can exceed `busy` by a tick or two.
            other_processes_fraction: busy.saturating_sub(own) as f64 / total as f64,
        })
    }
}

/// Measures a window: call [`Window::finish`] at its end.
pub(crate) struct Window(Option<CpuTicks>);

impl Window {
    pub(crate) fn start() -> Self {
        Window(CpuTicks::now())
    }

    pub(crate) fn finish(&self) -> Option<HostLoad> {
        self.0.as_ref()?.load_until(&CpuTicks::now()?)
    }
}

/// One line for people: "host: 3.1 % of CPU time stolen, 0.4 % used by other processes".
pub(crate) fn describe(load: Option<HostLoad>) -> String {
    match load {
        Some(l) => format!(
            "host: {:.1} % of CPU time stolen by the hypervisor, {:.1} % used by other processes",
            100.0 * l.steal_fraction,
            100.0 * l.other_processes_fraction
        ),
        None => "host: CPU accounting unavailable (no /proc)".into(),
    }
}

/// A short suffix for progress lines: " | steal 3 %, others 0 %" (empty without /proc).
pub(crate) fn brief(load: Option<HostLoad>) -> String {
    load.map_or(String::new(), |l| {
        format!(
            " | steal {:.0} %, others {:.0} %",
            100.0 * l.steal_fraction,
            100.0 * l.other_processes_fraction
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT_A: &str = "cpu  100 5 20 800 10 1 2 12 0 0\ncpu0 50 2 10 400 5 0 1 6 0 0\n";
    const STAT_B: &str = "cpu  160 5 30 900 10 1 4 42 7 0\ncpu0 80 2 15 450 5 0 2 21 0 0\n";

    #[test]
    fn proc_stat_aggregate_line_is_parsed() {
        // total = 100+5+20+800+10+1+2+12 = 950; busy = 950-800-10-12 = 128.
        assert_eq!(parse_proc_stat(STAT_A), Some((950, 12, 128)));
        assert_eq!(parse_proc_stat("cpu0 1 2 3\n"), None);
        assert_eq!(parse_proc_stat("cpu  1 2 x 4 5 6 7 8\n"), None);
        assert_eq!(parse_proc_stat("cpu  1 2 3 4\n"), None);
    }

    #[test]
    fn self_stat_skips_a_command_name_with_spaces() {
        let line = "4242 (my (odd) prog) R 1 2 3 4 5 6 7 8 9 10 37 13 0 0 20 0 3";
        assert_eq!(parse_self_stat(line), Some(50));
        assert_eq!(parse_self_stat("4242 (x) R 1 2"), None);
    }

    #[test]
    fn load_of_a_window_splits_steal_and_other_processes() {
        let (t0, s0, b0) = parse_proc_stat(STAT_A).unwrap();
        let (t1, s1, b1) = parse_proc_stat(STAT_B).unwrap();
        let a = CpuTicks {
            total: t0,
            steal: s0,
            busy: b0,
            own: 40,
        };
        let b = CpuTicks {
            total: t1,
            steal: s1,
            busy: b1,
            own: 90,
        };
        // Window: total 1152-950 = 202 ticks, steal 30, busy (1152-900-10-42)-128 = 72,
        // own 50, others 22.
        let l = a.load_until(&b).unwrap();
        assert_eq!(l.steal_fraction, 30.0 / 202.0);
        assert_eq!(l.other_processes_fraction, 22.0 / 202.0);
        assert_eq!(a.load_until(&a), None);
    }

    #[test]
    fn a_busy_sibling_process_shows_as_other_load() {
        if CpuTicks::now().is_none() {
            return; // no /proc on this platform
        }
        // A child process (`yes` into /dev/null) runs flat out for 0.8 s while this thread
        // sleeps: with ~one of the CPUs busy for the whole window, well over a fifth of one
        // CPU's share of the window's time is another process's, even if it got only part of
        // a CPU.
        let w = Window::start();
        let Ok(mut child) = std::process::Command::new("yes")
            .stdout(std::process::Stdio::null())
            .spawn()
        else {
            eprintln!("skipped: `yes` (coreutils) cannot be started here");
            return;
        };
        std::thread::sleep(std::time::Duration::from_millis(800));
        child.kill().expect("child is killed");
        child.wait().expect("child ends");
        let l = w.finish().expect("ticks passed");
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        assert!(
            l.other_processes_fraction > 0.2 / cpus,
            "{l:?} on {cpus} CPUs"
        );
    }
}

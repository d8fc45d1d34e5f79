//! SIGKILL resumption (issue 6, "Reliability"): a small training run is killed with SIGKILL at
//! several moments, some of them while a checkpoint is being written, and resumed each time with
//! `gumbolt train --resume --out DIR`. At the end its checkpoint must hold bit-identical tensors
//! and the same deterministic metadata as an uninterrupted run with the same seed, and its
//! `metrics.jsonl` must hold each monitored iteration once, with the uninterrupted run's values.
//! After every kill the checkpoint on disk, if any, must be readable (never torn).
//!
//! The moments come from a fixed seed: delays drawn as fractions of the uninterrupted run's wall
//! time, and kills triggered by the checkpoint's temporary file appearing (mid-write) or by the
//! checkpoint being replaced (just after the rename). Which iteration a kill lands on depends on
//! the machine's speed; the test prints what each kill hit. `scripts/sigkill_resume.sh` does the
//! same from the shell with larger budgets.

#![cfg(unix)]

mod common;

use common::checkpoint_state;
use gumbolt_models::checkpoint;
use gumbolt_models::train::MetricsRecord;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// The run: nonlinear `~`, 300 iterations, 20 PCD sweeps, a checkpoint every 25 iterations,
/// monitoring records at 0, 150 and 300.
const RUN: &[&str] = &[
    "--structure",
    "~",
    "--iters",
    "300",
    "--pcd-steps",
    "20",
    "--checkpoint-every",
    "25",
    "--monitor-records",
    "2",
    "--seed",
    "3",
];

/// Seed of the kill moments.
const KILL_SEED: u64 = 0x5167_4b11;

/// How one kill is triggered.
#[derive(Debug, Clone, Copy)]
enum Trigger {
    /// After this fraction of the uninterrupted run's wall time.
    After(f64),
    /// When the checkpoint's temporary file appears for the `n`-th time (0-based): mid-write.
    MidWrite(u32),
    /// When `checkpoint.ckpt` has been replaced `n + 1` times: just after a rename.
    AfterRename(u32),
}

/// xorshift64*: the kill schedule's generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The schedule: an early kill (likely before the first checkpoint: the run restarts with
/// --force), then mid-write kills, timed kills and after-rename kills in turn.
fn schedule(n: usize) -> Vec<Trigger> {
    let mut rng = Rng(KILL_SEED);
    let mut v = vec![Trigger::After(0.08)];
    v.extend((1..n).map(|i| match i % 3 {
        1 => Trigger::MidWrite((rng.next() % 2) as u32),
        2 => Trigger::After(0.1 + 0.35 * rng.uniform()),
        _ => Trigger::AfterRename((rng.next() % 2) as u32),
    }));
    v
}

fn gumbolt() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gumbolt"));
    c.env("MATMUL_NUM_THREADS", "1")
        .env("RUST_BACKTRACE", "1")
        .env_remove("GUMBOLT_DATA_DIR");
    c
}

/// `train` args: the full command of a new run (with --force when a started run has no
/// checkpoint yet), or `--resume --out DIR`.
fn train_args(dir: &Path, resume: bool) -> Vec<String> {
    let mut a: Vec<String> = vec!["train".into(), "--quiet".into()];
    if resume {
        a.push("--resume".into());
    } else {
        a.extend(RUN.iter().map(|s| s.to_string()));
        a.push("--force".into());
    }
    a.push("--out".into());
    a.push(dir.to_str().unwrap().into());
    a
}

fn run_to_end(args: &[String]) -> Output {
    let out = gumbolt().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "gumbolt {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn tmp_checkpoint_present(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|rd| {
        rd.filter_map(Result::ok).any(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(".checkpoint.ckpt.tmp."))
        })
    })
}

/// Removes the temporary checkpoint files a killed writer left behind (a killed process cannot
/// clean up; they are never read).
fn remove_tmp_checkpoints(dir: &Path) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(".checkpoint.ckpt.tmp."))
        {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Identity of the current checkpoint file (changes on every atomic replacement).
fn checkpoint_id(dir: &Path) -> Option<(u64, SystemTime)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(dir.join("checkpoint.ckpt")).ok()?;
    Some((m.ino(), m.modified().ok()?))
}

/// Waits for `trigger` (or the process's end), then sends SIGKILL. Returns whether the process
/// was killed (false: it had finished) and after how long.
fn kill_at(child: &mut Child, dir: &Path, trigger: Trigger, wall: f64) -> (bool, f64) {
    let t0 = Instant::now();
    let mut seen_tmp = 0u32;
    let mut tmp_before = tmp_checkpoint_present(dir);
    let mut renames = 0u32;
    let mut id = checkpoint_id(dir);
    let limit = Duration::from_secs_f64(10.0 * wall + 30.0);
    loop {
        if child.try_wait().unwrap().is_some() {
            return (false, t0.elapsed().as_secs_f64());
        }
        let fire = match trigger {
            Trigger::After(f) => t0.elapsed().as_secs_f64() >= f * wall,
            Trigger::MidWrite(n) => {
                let now = tmp_checkpoint_present(dir);
                let appeared = now && !tmp_before;
                tmp_before = now;
                if appeared {
                    seen_tmp += 1;
                }
                appeared && seen_tmp > n
            }
            Trigger::AfterRename(n) => {
                let now = checkpoint_id(dir);
                if now.is_some() && now != id {
                    renames += 1;
                    id = now;
                }
                renames > n
            }
        };
        if fire || t0.elapsed() > limit {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            return (true, t0.elapsed().as_secs_f64());
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// The deterministic content of a metrics record: iteration, epoch, and the bits of the
/// objectives and of log Z.
type RecordKey = (u64, u64, u64, u64, Option<u64>, Option<u64>, u64);

/// The deterministic content of each metrics record (no wall times).
fn records(path: &Path) -> Vec<RecordKey> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let r: MetricsRecord =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("bad record ({e}): {l}"));
            (
                r.iteration,
                r.epoch,
                r.train_relaxed.to_bits(),
                r.train_discrete.to_bits(),
                r.valid_relaxed.map(f64::to_bits),
                r.valid_discrete.map(f64::to_bits),
                r.log_z.to_bits(),
            )
        })
        .collect()
}

fn iteration_of(dir: &Path) -> Option<u64> {
    let raw = checkpoint::read(dir.join("checkpoint.ckpt")).ok()?;
    raw.meta["iteration"].as_u64()
}

#[test]
fn sigkilled_runs_resume_to_the_uninterrupted_result() {
    let t_test = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let (reference, killed): (PathBuf, PathBuf) = (tmp.path().join("ref"), tmp.path().join("a"));

    let t0 = Instant::now();
    run_to_end(&train_args(&reference, false));
    let wall = t0.elapsed().as_secs_f64();
    println!("uninterrupted run: {wall:.2} s");

    let triggers = schedule(12);
    let mut kills = 0;
    let mut mid_write = 0;
    let mut finished_early = false;
    for (i, &trigger) in triggers.iter().enumerate() {
        let resume = killed.join("checkpoint.ckpt").exists();
        let before = iteration_of(&killed);
        let mut child = gumbolt()
            .args(train_args(&killed, resume))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let (was_killed, after) = kill_at(&mut child, &killed, trigger, wall);
        // Whatever the moment, the checkpoint on disk is whole.
        let ckpt = killed.join("checkpoint.ckpt");
        if ckpt.exists()
            && let Err(e) = checkpoint::read(&ckpt)
        {
            panic!("kill {i} ({trigger:?}) left a damaged checkpoint: {e}");
        }
        let at = iteration_of(&killed);
        let torn = tmp_checkpoint_present(&killed);
        println!(
            "kill {i}: {trigger:?}, {} after {after:.3} s{}; checkpoint at iteration {before:?} \
             → {at:?}{}",
            if was_killed {
                "SIGKILL"
            } else {
                "no kill (the run ended)"
            },
            if was_killed && torn {
                ", during a checkpoint write"
            } else {
                ""
            },
            if resume { " (resumed)" } else { " (new run)" },
        );
        mid_write += usize::from(was_killed && torn);
        // A killed writer cannot remove its temporary file; remove it so that the next
        // mid-write kill sees a new one appear.
        remove_tmp_checkpoints(&killed);
        if !was_killed {
            let status = child.wait().unwrap();
            assert!(status.success(), "invocation {i} failed: {status}");
            finished_early = true;
            break;
        }
        kills += 1;
    }
    // Resume to the end.
    let resume = killed.join("checkpoint.ckpt").exists();
    let out = run_to_end(&train_args(&killed, resume));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["finished"], true, "{summary}");
    assert_eq!(summary["iteration"].as_u64(), Some(300));

    let (ta, ma) = checkpoint_state(&killed.join("checkpoint.ckpt"));
    let (tb, mb) = checkpoint_state(&reference.join("checkpoint.ckpt"));
    assert_eq!(ta.len(), tb.len());
    let mut values = 0;
    for ((na, sa, va), (nb, sb, vb)) in ta.iter().zip(&tb) {
        assert_eq!((na, sa), (nb, sb));
        assert!(va == vb, "tensor {na} differs after {kills} SIGKILLs");
        values += va.len();
    }
    assert_eq!(ma, mb, "checkpoint metadata differs");

    let (ra, rb) = (
        records(&killed.join("metrics.jsonl")),
        records(&reference.join("metrics.jsonl")),
    );
    let its: Vec<u64> = ra.iter().map(|r| r.0).collect();
    assert_eq!(its, [0, 150, 300], "each monitored iteration once");
    assert_eq!(ra, rb, "metrics records differ");

    println!(
        "{kills} SIGKILLs ({mid_write} during a checkpoint write){}; final checkpoint equal to \
         the uninterrupted run's: {} tensors ({values} values) bit-identical, metadata equal \
         except train_seconds; metrics.jsonl iterations {its:?} with identical values; {:.1} s",
        if finished_early {
            ", the run ended before the last one"
        } else {
            ""
        },
        ta.len(),
        t_test.elapsed().as_secs_f64()
    );
    assert!(kills >= 4, "only {kills} kills landed");
}

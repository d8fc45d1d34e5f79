//! One writer per run directory (issue 16): while `gumbolt train --out R` runs, a second
//! `gumbolt train --resume --out R` and `gumbolt train --force --out R` are refused (non-zero
//! exit, an error naming the holder's pid) and the first run finishes intact; readers
//! (`gumbolt sample`) are not blocked; a lock left by a killed process does not block.

#![cfg(unix)]

mod common;

use common::{gumbolt, stderr};
use gumbolt_models::checkpoint;
use gumbolt_models::train::MetricsRecord;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Starts `gumbolt train --out dir` with `extra` options in the background.
fn spawn_train(dir: &Path, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_gumbolt"))
        .args(["train", "--out", dir.to_str().unwrap(), "--quiet"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("gumbolt train starts")
}

/// Waits until `dir` holds a checkpoint and the lock file names `pid`.
fn wait_for_checkpoint_and_lock(dir: &Path, child: &mut Child) {
    let t0 = Instant::now();
    let want = format!("pid {}", child.id());
    loop {
        let lock = std::fs::read_to_string(dir.join(".gumbolt.lock")).unwrap_or_default();
        if lock.starts_with(&want) && dir.join("checkpoint.ckpt").exists() {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the first run ended ({status}) before its first checkpoint");
        }
        assert!(
            t0.elapsed() < Duration::from_secs(300),
            "no checkpoint after 300 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_second_writer_is_refused_and_the_first_run_finishes_intact() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let d = dir.to_str().unwrap();
    let mut first = spawn_train(
        &dir,
        &[
            "--iters",
            "400",
            "--pcd-steps",
            "10",
            "--checkpoint-every",
            "5",
            "--monitor-records",
            "2",
            "--monitor-images",
            "20",
            "--monitor-k",
            "1",
            "--seed",
            "5",
        ],
    );
    wait_for_checkpoint_and_lock(&dir, &mut first);
    let pid = format!("pid {}", first.id());

    for extra in [&["--resume"][..], &["--force", "--iters", "5"][..]] {
        let mut args = vec!["train", "--out", d, "--quiet"];
        args.extend_from_slice(extra);
        let out = gumbolt(&args);
        let err = stderr(&out);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{args:?} must be refused: {err}"
        );
        assert!(
            err.contains(&pid) && err.contains("being written by another gumbolt process"),
            "{args:?}: the error must name the holder ({pid}): {err}"
        );
    }
    // A reader is not blocked.
    let png = tmp.path().join("s.png");
    let out = gumbolt(&[
        "sample",
        "--run",
        d,
        "--n",
        "4",
        "--sweeps",
        "10",
        "--out",
        png.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "sample: {}", stderr(&out));
    // The refusals happened while the first run was still training.
    assert!(
        first.try_wait().unwrap().is_none(),
        "the first run ended before the refusals were checked; lengthen it"
    );

    let out = first.wait_with_output().unwrap();
    assert!(out.status.success(), "first run: {}", stderr(&out));
    let meta = checkpoint::read(dir.join("checkpoint.ckpt")).unwrap().meta;
    assert_eq!(meta["iteration"], 400, "the first run's checkpoint: {meta}");
    let text = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
    let iters: Vec<u64> = text
        .lines()
        .map(|l| serde_json::from_str::<MetricsRecord>(l).unwrap().iteration)
        .collect();
    assert_eq!(iters, [0, 200, 400], "metrics.jsonl of the first run");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["model_config"]["train"]["total_iterations"], 400);
}

#[test]
fn a_lock_left_by_a_killed_process_does_not_block() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let d = dir.to_str().unwrap();
    let mut first = spawn_train(
        &dir,
        &[
            "--iters",
            "100000",
            "--pcd-steps",
            "5",
            "--checkpoint-every",
            "2",
            "--monitor-images",
            "20",
            "--monitor-k",
            "1",
        ],
    );
    wait_for_checkpoint_and_lock(&dir, &mut first);
    first.kill().unwrap();
    first.wait().unwrap();
    // The lock file is still there, naming the dead process; it does not block.
    assert!(dir.join(".gumbolt.lock").exists());
    let out = gumbolt(&[
        "train",
        "--out",
        d,
        "--force",
        "--iters",
        "3",
        "--pcd-steps",
        "2",
        "--monitor-images",
        "20",
        "--monitor-k",
        "1",
        "--quiet",
    ]);
    assert!(
        out.status.success(),
        "--force after a kill: {}",
        stderr(&out)
    );
    let meta = checkpoint::read(dir.join("checkpoint.ckpt")).unwrap().meta;
    assert_eq!(meta["iteration"], 3);
}

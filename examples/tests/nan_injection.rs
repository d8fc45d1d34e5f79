//! NaN injection through the command line (issue 6, "Reliability"): a diverging run stops with a
//! clear error naming the non-finite value and the iteration, exit code 1, and leaves its last
//! checkpoint untouched. `gumbolt train` has no hook to inject a NaN, so the two ways in are an
//! enormous learning rate (finite, accepted by `--lr`, but the first update overflows f32) and a
//! checkpoint whose parameters were edited to hold a NaN (a consistent file with a valid
//! checksum), which the resumed run's first loss then propagates.
//!
//! The library-level counterpart is `non_finite_loss_or_parameters_stop_the_run_and_keep_the_checkpoint`
//! in `models/src/train/tests.rs`.

use gumbolt_models::checkpoint::{self, TensorData};
use std::path::Path;
use std::process::{Command, Output};

/// A tiny run: `linear`, 2 PCD sweeps of 10 chains, monitoring every 10 iterations on 20 images,
/// a checkpoint every 5.
const TINY: &[&str] = &[
    "train",
    "--quiet",
    "--iters",
    "20",
    "--structure",
    "linear",
    "--pcd-steps",
    "2",
    "--pcd-chains",
    "10",
    "--monitor-every",
    "10",
    "--monitor-images",
    "20",
    "--monitor-k",
    "1",
    "--checkpoint-every",
    "5",
    "--seed",
    "3",
];

fn gumbolt(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gumbolt"))
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .env("MATMUL_NUM_THREADS", "1")
        .env_remove("GUMBOLT_DATA_DIR")
        .output()
        .expect("the gumbolt binary runs")
}

fn with(extra: &[&str], out: &Path) -> Vec<String> {
    TINY.iter()
        .chain(extra)
        .map(|s| s.to_string())
        .chain(["--out".to_string(), out.to_str().unwrap().to_string()])
        .collect()
}

fn run(args: &[String]) -> Output {
    gumbolt(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// Exit code 1, nothing on stdout, one `error:` line containing every `expect`, no panic.
fn assert_diverged(out: &Output, expect: &[&str]) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(err.starts_with("error: training diverged: "), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
    for e in expect {
        assert!(err.contains(e), "{err:?} does not contain {e:?}");
    }
    err
}

#[test]
fn an_overflowing_learning_rate_stops_at_the_first_update() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let out = run(&with(&["--lr", "1e300"], &dir));
    assert_diverged(
        &out,
        &[
            "non-finite parameter encoder0.0.kernel[0] at iteration 0",
            "smaller --lr",
        ],
    );
    assert!(!dir.join("checkpoint.ckpt").exists());
}

#[test]
fn a_nan_in_a_checkpoint_is_refused_and_the_checkpoint_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let out = run(&with(&["--stop-after", "10"], &dir));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ckpt = dir.join("checkpoint.ckpt");
    // Inject the NaN: one decoder bias, the file rewritten consistently (valid checksum).
    let raw = checkpoint::read(&ckpt).unwrap();
    assert_eq!(raw.meta["iteration"].as_u64(), Some(10));
    let mut tensors = raw.tensors;
    let bias = tensors
        .iter_mut()
        .find(|t| t.name == "param/decoder.1.bias")
        .expect("the linear decoder's bias");
    match &mut bias.data {
        TensorData::F32(v) => v[3] = f32::NAN,
        TensorData::U32(_) => unreachable!(),
    }
    std::fs::write(
        &ckpt,
        checkpoint::encode(&ckpt, &raw.meta, &tensors).unwrap(),
    )
    .unwrap();
    let before = std::fs::read(&ckpt).unwrap();
    let metrics_before = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();

    let d = dir.to_str().unwrap();
    // Resuming refuses the checkpoint, naming the file and the tensor; nothing is written.
    let refused = |args: &[&str]| {
        let out = gumbolt(args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            !err.contains("panicked") && !err.contains("backtrace"),
            "{err}"
        );
        for e in [ckpt.to_str().unwrap(), "param/decoder.1.bias", "not finite"] {
            assert!(err.contains(e), "{err:?} does not contain {e:?}");
        }
    };
    refused(&["train", "--quiet", "--resume", "--out", d]);
    // So do evaluation and sampling, instead of printing NaN.
    refused(&[
        "eval",
        "--quiet",
        "--run",
        d,
        "--samples",
        "2",
        "--limit",
        "10",
    ]);
    refused(&["sample", "--run", d, "--n", "1", "--sweeps", "1"]);
    assert_eq!(
        std::fs::read(&ckpt).unwrap(),
        before,
        "the checkpoint was overwritten"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap(),
        metrics_before
    );
}

/// A run that diverges before its first checkpoint says that none was written (it used to claim
/// that a checkpoint "is left intact").
#[test]
fn divergence_before_the_first_checkpoint_does_not_claim_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let out = run(&with(&["--lr", "1e300"], &dir));
    let err = assert_diverged(&out, &[]);
    assert!(!dir.join("checkpoint.ckpt").exists());
    assert!(!err.contains("is left intact"), "{err}");
}

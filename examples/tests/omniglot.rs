//! `--dataset omniglot` end to end with tiny budgets: training and evaluation on the bundled
//! rebuild, and clean errors for a bad `--data-file` or one given with MNIST.

mod common;

use common::{gumbolt, num, one_json, stderr};

use serde_json::Value;
use std::path::{Path, PathBuf};

fn temp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gumbolt-omniglot-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn train_args<'a>(out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec![
        "train",
        "--quiet",
        "--dataset",
        "omniglot",
        "--structure",
        "linear",
        "--iters",
        "10",
        "--pcd-steps",
        "2",
        "--pcd-chains",
        "10",
        "--monitor-records",
        "1",
        "--monitor-images",
        "50",
        "--monitor-k",
        "2",
        "--out",
        out,
    ];
    a.extend_from_slice(extra);
    a
}

#[test]
fn train_and_eval_on_the_bundled_rebuild() {
    let root = temp("bundled");
    let run = root.join("run");
    let run_s = run.to_str().unwrap();
    let t = one_json(&train_args(run_s, &[]));
    assert_eq!(t["finished"], true, "{t}");
    let fin = &t["final"];
    for key in [
        "train_relaxed",
        "train_discrete",
        "valid_relaxed",
        "valid_discrete",
    ] {
        assert!(num(fin, key).is_finite(), "{key} in {fin}");
    }
    let cfg: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["dataset"], "omniglot");
    assert_eq!(cfg["dataset_label"], "OMNIGLOT (rebuilt)");

    let e = one_json(&[
        "eval",
        "--quiet",
        "--json",
        "--run",
        run_s,
        "--limit",
        "30",
        "--samples",
        "10",
    ]);
    assert!(
        num(&e, "test_nll").is_finite() && num(&e, "test_nll") > 0.0,
        "{e}"
    );
    assert!(num(&e, "log_z").is_finite(), "{e}");
    assert_eq!(e["n"], 30);
    assert_eq!(e["dataset"], "OMNIGLOT (rebuilt)");
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("eval.json")).unwrap()).unwrap();
    assert_eq!(saved["dataset"], "OMNIGLOT (rebuilt)");
    let _ = std::fs::remove_dir_all(&root);
}

/// Fails with exit code `code` and a one-line error naming `needle`.
fn fails_naming(args: &[&str], code: i32, needle: &str) {
    let out = gumbolt(args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
    assert!(
        err.contains(needle),
        "{args:?}: error does not name {needle}: {err}"
    );
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    if code == 1 {
        assert_eq!(
            err.trim().lines().count(),
            1,
            "{args:?}: not one line: {err}"
        );
    }
}

#[test]
fn bad_data_files_fail_cleanly() {
    let root = temp("bad");
    let missing = root.join("no-such-chardata.mat");
    let garbage = root.join("garbage.mat");
    std::fs::write(&garbage, b"this is not a MAT-file\n").unwrap();
    for (i, file) in [&missing, &garbage].into_iter().enumerate() {
        let out = root.join(format!("run{i}"));
        let f = file.to_str().unwrap();
        fails_naming(
            &train_args(out.to_str().unwrap(), &["--data-file", f]),
            1,
            f,
        );
        assert!(!out.join("checkpoint.ckpt").exists());
    }
    let out = root.join("mnist");
    let f = garbage.to_str().unwrap();
    fails_naming(
        &[
            "train",
            "--quiet",
            "--iters",
            "5",
            "--out",
            out.to_str().unwrap(),
            "--data-file",
            f,
        ],
        2,
        "--data-file",
    );
    assert!(!Path::new(&out).join("config.json").exists());
    let _ = std::fs::remove_dir_all(&root);
}

//! End-to-end tests of `gumbolt train`, `eval` and `sample` with tiny budgets: the files of a run
//! directory, bit-exact resumption after an interruption and refusal to overwrite a run. Bad
//! inputs are in the corpus of `bad_input.rs`.

mod common;

use common::{checkpoint_state, gumbolt, num, one_json, stderr};

use gumbolt_models::train::MetricsRecord;
use serde_json::Value;
use std::path::Path;

/// A tiny but complete run: the `linear` structure, 2 PCD sweeps of 10 chains, monitoring every
/// 10 iterations on 50 images with k = 2, a checkpoint every 5 iterations.
const TINY: &[&str] = &[
    "--structure",
    "linear",
    "--k",
    "1",
    "--pcd-steps",
    "2",
    "--pcd-chains",
    "10",
    "--monitor-every",
    "10",
    "--monitor-images",
    "50",
    "--monitor-k",
    "2",
    "--checkpoint-every",
    "5",
    "--seed",
    "3",
];

/// `gumbolt train <TINY> --iters <iters> --out <dir> <extra>` (quiet), returning its JSON line.
fn train(dir: &Path, iters: u32, extra: &[&str]) -> Value {
    let iters = iters.to_string();
    let mut args = vec!["train", "--quiet", "--iters", &iters, "--out"];
    args.push(dir.to_str().unwrap());
    args.extend_from_slice(TINY);
    args.extend_from_slice(extra);
    one_json(&args)
}

fn records(path: &Path) -> Vec<MetricsRecord> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad record ({e}): {l}")))
        .collect()
}

fn png_size(path: &Path) -> (u32, u32) {
    let img = image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (img.width(), img.height())
}

#[test]
fn train_eval_sample_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let s = train(&run, 20, &[]);
    assert_eq!(s["model_kind"], "gumbolt/rbm/pcd");
    assert_eq!(s["structure"], "linear");
    assert_eq!(
        (s["iters"].as_u64(), s["iteration"].as_u64()),
        (Some(20), Some(20))
    );
    assert_eq!(s["finished"], true);
    assert_eq!(s["steps"].as_u64(), Some(20));
    assert!(
        num(&s, "sec_per_iter") > 0.0 && num(&s, "train_seconds") > 0.0,
        "{s}"
    );
    assert_eq!(s["final"]["iteration"].as_u64(), Some(20));
    assert!(num(&s["final"], "valid_discrete") < 0.0, "{s}");
    assert_eq!(s["matmul_threads"], "1");
    // Unless told: the AMX arithmetic where this CPU has it, f32 elsewhere.
    common::assert_default_products(&s);
    for f in [
        "checkpoint.ckpt",
        "config.json",
        "metrics.jsonl",
        "learning_curves.png",
        "train_summary.json",
    ] {
        assert!(run.join(f).is_file(), "{f} missing");
    }
    let recs = records(&run.join("metrics.jsonl"));
    let its: Vec<u64> = recs.iter().map(|r| r.iteration).collect();
    assert_eq!(its, [0, 10, 20]);
    assert!(recs.iter().all(|r| r.k == 2 && r.valid_images == 50));
    let cfg: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["model_config"]["structure"], "linear");
    assert_eq!(cfg["pcd"]["chains"].as_u64(), Some(10));
    assert_eq!(png_size(&run.join("learning_curves.png")), (960, 600));

    let r = run.to_str().unwrap();
    let e = one_json(&[
        "eval",
        "--run",
        r,
        "--limit",
        "50",
        "--samples",
        "20",
        "--json",
        "--quiet",
    ]);
    for key in ["test_nll", "test_nll_sem", "log_z", "log_z_std", "seconds"] {
        assert!(num(&e, key).is_finite(), "{key}: {e}");
    }
    assert!(
        num(&e, "test_nll") > 50.0 && num(&e, "test_nll") < 600.0,
        "{e}"
    );
    assert_eq!(
        (e["n"].as_u64(), e["samples"].as_u64()),
        (Some(50), Some(20))
    );
    assert_eq!(e["log_z_method"], "pt");
    assert!(e["log_z_warnings"].is_array() && e["threads"].as_u64().is_some());
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("eval.json")).unwrap()).unwrap();
    assert_eq!(saved["test_nll"], e["test_nll"]);

    // Same seed, same result, whatever the thread count; AIS gives a close log Z.
    let e1 = one_json(&[
        "eval",
        "--run",
        r,
        "--limit",
        "50",
        "--samples",
        "20",
        "--json",
        "--quiet",
        "--threads",
        "1",
    ]);
    assert_eq!(e1["log_z"], e["log_z"]);
    assert_eq!(e1["test_nll"], e["test_nll"]);

    let png = tmp.path().join("samples.png");
    let p = png.to_str().unwrap();
    let out = gumbolt(&[
        "sample", "--run", r, "--n", "16", "--out", p, "--sweeps", "20",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    // 8 columns of 28·2 px with 1 px gaps, 2 rows.
    assert_eq!(png_size(&png), (8 * 56 + 7, 2 * 56 + 1));
    let out = gumbolt(&["sample", "--run", r, "--fresh", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(png_size(&run.join("samples.png")), (8 * 56 + 7, 8 * 56 + 7));
}

#[test]
fn eval_with_ais() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    train(&run, 2, &["--monitor-every", "2"]);
    let r = run.to_str().unwrap();
    let args = [
        "eval",
        "--run",
        r,
        "--limit",
        "20",
        "--samples",
        "10",
        "--json",
        "-q",
    ];
    let pt = one_json(&args);
    let ais = one_json(&[&args[..], &["--logz", "ais"]].concat());
    assert_eq!(
        (pt["log_z_method"].as_str(), ais["log_z_method"].as_str()),
        (Some("pt"), Some("ais"))
    );
    let tol = 0.05 + 4.0 * (num(&pt, "log_z_std") + num(&ais, "log_z_std"));
    assert!(
        (num(&ais, "log_z") - num(&pt, "log_z")).abs() < tol,
        "{ais} vs {pt}"
    );
}

#[test]
fn gumbolt_nw_uses_the_exact_log_z() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("nw");
    let s = train(&run, 10, &["--model", "gumbolt-nw"]);
    assert_eq!(s["model_kind"], "gumbolt/bernoulli/exact");
    assert_eq!(s["final"]["log_z_method"], "exact");
    let r = run.to_str().unwrap();
    let e = one_json(&[
        "eval",
        "--run",
        r,
        "--limit",
        "30",
        "--samples",
        "10",
        "--json",
        "-q",
    ]);
    assert_eq!(e["log_z_method"], "exact");
    assert_eq!(num(&e, "log_z_std"), 0.0);
    assert_eq!(e["model"], "gumbolt-nw");
    let out = gumbolt(&["sample", "--run", r, "--n", "3", "--sweeps", "2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(png_size(&run.join("samples.png")), (3 * 56 + 2, 56));
}

#[test]
fn resume_after_interruption_matches_an_uninterrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    // Interrupted after 7 iterations (between checkpoints and monitoring records).
    let s = train(&a, 20, &["--stop-after", "7"]);
    assert_eq!(
        (s["iteration"].as_u64(), s["finished"].as_bool()),
        (Some(7), Some(false))
    );
    // What a run killed later might have left: a record past the checkpoint and a torn line.
    let metrics = a.join("metrics.jsonl");
    let mut recs = records(&metrics);
    assert_eq!(recs.iter().map(|r| r.iteration).collect::<Vec<_>>(), [0]);
    let mut late = recs.pop().unwrap();
    late.iteration = 10;
    let mut text = std::fs::read_to_string(&metrics).unwrap();
    text.push_str(&serde_json::to_string(&late).unwrap());
    text.push_str("\n{\"iteration\": 15, \"total_");
    std::fs::write(&metrics, text).unwrap();

    // Repeating the model options is allowed when they match.
    let r = train(&a, 20, &["--resume"]);
    assert_eq!(r["resumed_from"].as_u64(), Some(7));
    assert_eq!(
        (r["iteration"].as_u64(), r["steps"].as_u64()),
        (Some(20), Some(13))
    );
    let u = train(&b, 20, &[]);
    assert_eq!(r["final"], u["final"]);

    let (ta, ma) = checkpoint_state(&a.join("checkpoint.ckpt"));
    let (tb, mb) = checkpoint_state(&b.join("checkpoint.ckpt"));
    assert_eq!(ta.len(), tb.len());
    for ((na, sa, va), (nb, sb, vb)) in ta.iter().zip(&tb) {
        assert_eq!((na, sa), (nb, sb));
        assert!(va == vb, "tensor {na} differs after resuming");
    }
    assert_eq!(ma, mb);

    // Each monitored iteration once, with the uninterrupted run's values.
    let (ra, rb) = (records(&metrics), records(&b.join("metrics.jsonl")));
    let key = |r: &MetricsRecord| {
        (
            r.iteration,
            r.train_relaxed.to_bits(),
            r.train_discrete.to_bits(),
            r.valid_discrete.map(f64::to_bits),
            r.log_z.to_bits(),
        )
    };
    assert_eq!(
        ra.iter().map(key).collect::<Vec<_>>(),
        rb.iter().map(key).collect::<Vec<_>>()
    );
    assert_eq!(ra.len(), 3);
    assert_eq!(png_size(&a.join("learning_curves.png")), (960, 600));

    // Resuming a finished run trains nothing.
    let again = train(&a, 20, &["--resume"]);
    assert_eq!(
        (again["steps"].as_u64(), again["finished"].as_bool()),
        (Some(0), Some(true))
    );
}

#[test]
fn threads_do_not_change_training() {
    // Three stream groups of PCD chains and decoder GEMMs large enough to be split (100 images
    // × k = 5 rows): one thread and three give the same checkpoint, bit for bit.
    let tmp = tempfile::tempdir().unwrap();
    let extra = ["--pcd-chains", "70", "--k", "5", "--threads"];
    let one = tmp.path().join("one");
    let three = tmp.path().join("three");
    let a = train(&one, 6, &[&extra[..], &["1"]].concat());
    let b = train(&three, 6, &[&extra[..], &["3"]].concat());
    assert_eq!(a["final"], b["final"]);
    let (ta, ma) = checkpoint_state(&one.join("checkpoint.ckpt"));
    let (tb, mb) = checkpoint_state(&three.join("checkpoint.ckpt"));
    assert!(ta.iter().any(|(name, _, _)| name == "pcd.chains"));
    assert_eq!(ta, tb);
    assert_eq!(ma, mb);
}

#[test]
fn existing_runs_are_never_overwritten() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let r = run.to_str().unwrap();
    train(&run, 4, &[]);
    let before = std::fs::read(run.join("checkpoint.ckpt")).unwrap();

    let out = gumbolt(&["train", "--iters", "4", "--out", r, "--structure", "linear"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.starts_with("error: ") && err.trim_end().lines().count() == 1,
        "{err}"
    );
    assert!(
        err.contains(r) && err.contains("--resume") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(std::fs::read(run.join("checkpoint.ckpt")).unwrap(), before);

    // Options that differ from the run's are refused on --resume.
    let out = gumbolt(&[
        "train",
        "--resume",
        "--out",
        r,
        "--k",
        "3",
        "--structure",
        "~~",
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--k") && err.contains("--structure"), "{err}");

    // A --force that fails leaves the old run alone.
    let missing = tmp.path().join("no-data");
    let out = gumbolt(&[
        "train",
        "--force",
        "--iters",
        "4",
        "--out",
        r,
        "--data-dir",
        missing.to_str().unwrap(),
        "-q",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(std::fs::read(run.join("checkpoint.ckpt")).unwrap(), before);

    // --force starts over.
    let s = train(&run, 6, &["--force"]);
    assert_eq!(s["iteration"].as_u64(), Some(6));
    assert_eq!(
        records(&run.join("metrics.jsonl"))
            .last()
            .unwrap()
            .iteration,
        6
    );
}

//! End-to-end tests of `gumbolt reproduce`: usage errors, a smoke reproduction restricted to a
//! few cells (results, table files, skipping finished cells, recomputing a deleted one, refusing
//! other settings), sharding, `--report`, and a failing job that does not stop the others.

mod common;

use common::{gumbolt, stderr, stdout};

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;
use std::time::Instant;

/// `gumbolt reproduce --dataset mnist --budget smoke --out OUT <extra>`.
fn reproduce(out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "reproduce",
        "--dataset",
        "mnist",
        "--budget",
        "smoke",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    gumbolt(&args)
}

fn ok(out: Output, what: &str) -> Output {
    assert!(
        out.status.success(),
        "{what} failed ({:?}): {}",
        out.status,
        stderr(&out)
    );
    out
}

/// The result files in `OUT/cells`, by name.
fn cell_files(out: &Path) -> BTreeSet<String> {
    std::fs::read_dir(out.join("cells"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".json") && !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default()
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&read(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn usage_errors_name_the_option() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let o = out.to_str().unwrap();
    let base = format!("reproduce --dataset mnist --budget smoke --out {o}");
    // (extra arguments, text the error must contain)
    let cases = [
        ("--table 3", "--table"),
        ("--table 1 --budget huge", "--budget"),
        ("--table 1 --seeds 0", "--seeds"),
        ("--table 1 --jobs 0", "--jobs"),
        ("--table 1 --shard 0/2", "--shard"),
        ("--table 1 --shard 3/2", "--shard"),
        ("--table 1 --shard x/y", "--shard"),
        ("--table 1 --shard 1/0", "--shard"),
        ("--table 1 --shard 2", "--shard"),
        ("--table 2 --models dvae", "--models"),
        ("--table 2 --models dvae,dvaepp", "--models"),
        ("--table 1 --models gumbolt-nw", "--models"),
        ("--table 1 --models vae", "--models"),
        ("--table 2 --structures linear2", "--structures"),
        ("--table 1 --structures foo", "--structures"),
        ("--table 1 --iters 0", "--iters"),
        ("--table 1 --samples 0", "--samples"),
        ("--table 1 --data-file x.mat", "--data-file"),
    ];
    for (extra, option) in cases {
        let line = format!("{base} {extra}");
        let args: Vec<&str> = line.split_whitespace().collect();
        let r = gumbolt(&args);
        let err = stderr(&r);
        assert_eq!(r.status.code(), Some(2), "{line}: {err}");
        assert!(
            err.contains(option),
            "{line}: error does not name {option}: {err}"
        );
        assert!(!err.contains("panicked"), "{line}: {err}");
    }
    // A missing --table is clap's error; nothing was created for any of these.
    let r = gumbolt(&base.split_whitespace().collect::<Vec<_>>());
    assert_eq!(r.status.code(), Some(2));
    assert!(stderr(&r).contains("--table"));
    assert!(!out.exists(), "a usage error must not create --out");
}

#[test]
fn smoke_run_fills_skips_and_recomputes_cells() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("r1");
    let args = ["--table", "1", "--structures", "~", "--models", "gumbolt"];
    let expected = names(&[
        "nonlinear-gumbolt-k1-seed0.json",
        "nonlinear-gumbolt-k5-seed0.json",
        "nonlinear-gumbolt-k20-seed0.json",
    ]);

    let t0 = Instant::now();
    let first = ok(
        reproduce(&out, &[&args[..], &["--jobs", "2"]].concat()),
        "the first run",
    );
    let first_secs = t0.elapsed().as_secs_f64();
    assert_eq!(cell_files(&out), expected);
    let md = std::fs::read_to_string(out.join("table.md")).unwrap();
    assert_eq!(stdout(&first), md, "stdout is table.md");
    assert!(md.contains("| ~ nonlinear |"), "{md}");
    assert!(md.contains("(n=1) · paper 84.86"), "{md}");
    assert!(md.contains("pending · paper 90.11"), "{md}");
    assert!(md.contains("budget: smoke (30 iterations"), "{md}");
    assert!(md.contains("† one seed"), "{md}");
    let err = stderr(&first);
    assert!(
        err.contains("start 1/3: nonlinear-gumbolt-k1 seed 0"),
        "{err}"
    );
    assert!(err.contains("done  3/3"), "{err}");

    let r = json(&out.join("cells/nonlinear-gumbolt-k5-seed0.json"));
    assert_eq!(r["cell"], "nonlinear-gumbolt-k5");
    assert_eq!(r["model"], "gumbolt");
    assert_eq!(r["structure"], "nonlinear");
    assert_eq!(r["k"], 5);
    assert_eq!(r["seed"], 0);
    assert_eq!(r["iterations"], 30);
    assert_eq!(r["settings"]["budget"], "smoke");
    assert_eq!(r["settings"]["samples"], 10);
    assert_eq!(r["dataset"], "MNIST");
    assert_eq!(r["test_images"], 500);
    assert_eq!(r["paper"], 84.31);
    for key in [
        "test_nll",
        "test_nll_sem",
        "log_z",
        "log_z_std",
        "train_seconds",
        "sec_per_iter",
        "eval_seconds",
        "tau",
    ] {
        assert!(r[key].as_f64().is_some_and(f64::is_finite), "{key}: {r}");
    }
    assert!(r["gumbolt_version"].is_string());
    assert_eq!(r["tables"], serde_json::json!([1]));
    assert_eq!(
        json(&out.join("cells/nonlinear-gumbolt-k20-seed0.json"))["tables"],
        serde_json::json!([1, 2])
    );

    let table = json(&out.join("table.json"));
    let cells = table["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 20);
    let finished: Vec<&str> = cells
        .iter()
        .filter(|c| c["status"] == "finished")
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        finished,
        [
            "nonlinear-gumbolt-k1",
            "nonlinear-gumbolt-k5",
            "nonlinear-gumbolt-k20"
        ]
    );
    let k5 = cells
        .iter()
        .find(|c| c["id"] == "nonlinear-gumbolt-k5")
        .unwrap();
    assert_eq!(k5["seeds"][0]["test_nll"], r["test_nll"]);
    assert_eq!(k5["paper"], 84.31);
    let img = image::open(out.join("table.png")).unwrap();
    assert_eq!((img.width(), img.height()), (960, 600));

    // A second invocation skips every finished cell: nothing rewritten, and quickly.
    let files: Vec<_> = expected.iter().map(|n| out.join("cells").join(n)).collect();
    let before: Vec<Vec<u8>> = files.iter().map(|p| read(p)).collect();
    let ckpt = out.join("runs/nonlinear-gumbolt-k20/seed0/checkpoint.ckpt");
    let ckpt_before = read(&ckpt);
    let t0 = Instant::now();
    let second = ok(reproduce(&out, &args), "the second run");
    let second_secs = t0.elapsed().as_secs_f64();
    assert!(
        stderr(&second).contains("3 already finished, 0 to run"),
        "{}",
        stderr(&second)
    );
    assert!(!stderr(&second).contains("start "), "{}", stderr(&second));
    let after: Vec<Vec<u8>> = files.iter().map(|p| read(p)).collect();
    assert!(before == after, "finished results were rewritten");
    assert!(read(&ckpt) == ckpt_before, "a finished run was touched");
    assert!(
        second_secs < 5.0 && second_secs < first_secs,
        "the second run took {second_secs:.1} s (first {first_secs:.1} s)"
    );

    // A deleted result is recomputed, and only that one (its run is finished, so it is only
    // evaluated again, with the same seed: the same numbers).
    let k5_path = out.join("cells/nonlinear-gumbolt-k5-seed0.json");
    std::fs::remove_file(&k5_path).unwrap();
    let third = ok(reproduce(&out, &args), "the third run");
    let err = stderr(&third);
    assert!(err.contains("2 already finished, 1 to run"), "{err}");
    assert!(
        err.contains("start 1/1: nonlinear-gumbolt-k5 seed 0"),
        "{err}"
    );
    assert!(
        !err.contains("training "),
        "a finished run was trained again: {err}"
    );
    assert_eq!(cell_files(&out), expected);
    let again = json(&k5_path);
    assert_eq!(again["test_nll"], r["test_nll"]);
    assert_eq!(again["log_z"], r["log_z"]);
    for (p, b) in files.iter().zip(&before) {
        if *p != k5_path {
            assert!(read(p) == *b, "{} was rewritten", p.display());
        }
    }

    // Other settings are refused in the same --out.
    let mut other = args.to_vec();
    other.extend(["--iters", "31"]);
    let r = reproduce(&out, &other);
    assert_eq!(r.status.code(), Some(2), "{}", stderr(&r));
    assert!(stderr(&r).contains("another --out"), "{}", stderr(&r));
    assert_eq!(cell_files(&out), expected);
}

#[test]
fn shards_cover_every_job_once_and_report_merges_them() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    // Table 2's nW column on two rows, two seeds: four jobs.
    let args = [
        "--table",
        "2",
        "--models",
        "gumbolt-nw",
        "--structures",
        "-,nonlinear",
        "--seeds",
        "2",
        "--limit",
        "100",
        "-q",
    ];
    let with = |shard: &'static str, jobs: &'static str| {
        let mut v = args.to_vec();
        v.extend(["--shard", shard, "--jobs", jobs]);
        v
    };
    ok(reproduce(&a, &with("1/2", "2")), "shard 1/2");
    ok(reproduce(&b, &with("2/2", "1")), "shard 2/2");
    let (in_a, in_b) = (cell_files(&a), cell_files(&b));
    let all = names(&[
        "linear-gumbolt-nw-k20-seed0.json",
        "nonlinear-gumbolt-nw-k20-seed0.json",
        "linear-gumbolt-nw-k20-seed1.json",
        "nonlinear-gumbolt-nw-k20-seed1.json",
    ]);
    assert_eq!(in_a.len(), 2, "{in_a:?}");
    assert_eq!(in_b.len(), 2, "{in_b:?}");
    assert!(in_a.is_disjoint(&in_b), "{in_a:?} {in_b:?}");
    assert_eq!(
        in_a.union(&in_b).cloned().collect::<BTreeSet<_>>(),
        all,
        "the shards together"
    );
    let r = json(&a.join("cells/linear-gumbolt-nw-k20-seed0.json"));
    assert_eq!(
        r["settings"]["overrides"],
        serde_json::json!(["--limit 100"])
    );
    assert_eq!(r["test_images"], 100);
    assert_eq!(r["log_z_method"], "exact");

    // The jobs are listed seed by seed (linear s0, nonlinear s0, linear s1, nonlinear s1), so
    // shard 1/2 has linear at both seeds; the merged table has both cells at two seeds.
    let t = json(&a.join("table.json"));
    let ns: Vec<u64> = t["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["n"].as_u64().unwrap())
        .collect();
    // Rows linear, nonlinear, nonlinear2 × columns GumBolt, GumBolt-nW.
    assert_eq!(ns, [0, 2, 0, 0, 0, 0]);
    for name in &in_b {
        std::fs::copy(b.join("cells").join(name), a.join("cells").join(name)).unwrap();
    }
    let merged = ok(
        reproduce(&a, &[&args[..], &["--report"]].concat()),
        "--report",
    );
    let md = stdout(&merged);
    assert!(md.contains("(n=2) · paper 99.94"), "{md}");
    assert!(md.contains("(n=2) · paper 93.50"), "{md}");
    assert!(md.contains("pending · paper 88.01"), "{md}");
    assert!(md.contains("pending · paper 87.45"), "{md}");
    let t = json(&a.join("table.json"));
    let nw = t["cells"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "linear-gumbolt-nw-k20")
        .unwrap();
    assert_eq!(nw["status"], "finished");
    assert_eq!(nw["seeds"].as_array().unwrap().len(), 2);
    assert!(nw["std"].as_f64().is_some_and(|s| s >= 0.0), "{nw}");
    // --report ran nothing: no run directory of shard 2's jobs appeared in `a`.
    assert_eq!(cell_files(&a), all);
    for name in &in_b {
        let (cell, seed) = name.trim_end_matches(".json").rsplit_once("-seed").unwrap();
        let run = a.join("runs").join(cell).join(format!("seed{seed}"));
        assert!(!run.exists(), "{} was created", run.display());
    }
}

#[test]
fn a_failing_job_does_not_stop_the_others() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    // A foreign run where the job `linear-gumbolt-nw-k20 seed 0` trains: it must fail (and the
    // foreign run stay untouched); `nonlinear-gumbolt-nw-k20` must still be computed.
    let foreign = out.join("runs/linear-gumbolt-nw-k20/seed0");
    let t = gumbolt(&[
        "train",
        "--model",
        "gumbolt-nw",
        "--structure",
        "linear",
        "--k",
        "1",
        "--iters",
        "2",
        "--monitor-every",
        "2",
        "-q",
        "--out",
        foreign.to_str().unwrap(),
    ]);
    assert!(t.status.success(), "{}", stderr(&t));
    let ckpt = read(&foreign.join("checkpoint.ckpt"));
    let r = reproduce(
        &out,
        &[
            "--table",
            "2",
            "--models",
            "gumbolt-nw",
            "--structures",
            "linear,nonlinear",
            "--limit",
            "100",
            "--jobs",
            "2",
        ],
    );
    let err = stderr(&r);
    assert_eq!(r.status.code(), Some(1), "{err}");
    assert!(err.contains("FAILED"), "{err}");
    assert!(
        err.contains("1 job(s) failed: linear-gumbolt-nw-k20 seed 0"),
        "{err}"
    );
    assert!(err.contains("holds another run"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(
        cell_files(&out),
        names(&["nonlinear-gumbolt-nw-k20-seed0.json"])
    );
    assert!(read(&foreign.join("checkpoint.ckpt")) == ckpt);
    // The table is written all the same, with the failed cell pending.
    let md = std::fs::read_to_string(out.join("table.md")).unwrap();
    assert_eq!(stdout(&r), md);
    assert!(md.contains("pending · paper 99.94"), "{md}");
    assert!(md.contains("(n=1) · paper 93.50"), "{md}");
}

#[test]
fn an_interrupted_job_continues_from_its_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let args = [
        "--table",
        "2",
        "--models",
        "gumbolt-nw",
        "--structures",
        "linear",
        "--limit",
        "100",
    ];
    ok(reproduce(&a, &args), "the uninterrupted run");
    // The job's training, stopped after 10 of its 30 iterations (as if killed), first with
    // products other than the reproduction's (f32): refused, and left as it was.
    let run = b.join("runs/linear-gumbolt-nw-k20/seed0");
    let train = |products: &str| {
        gumbolt(&[
            "train",
            "--model",
            "gumbolt-nw",
            "--structure",
            "linear",
            "--k",
            "20",
            "--iters",
            "30",
            "--monitor-records",
            "1",
            "--seed",
            "0",
            "--stop-after",
            "10",
            "--network-products",
            products,
            "--force",
            "-q",
            "--out",
            run.to_str().unwrap(),
        ])
    };
    let t = train("bf16");
    assert!(t.status.success(), "{}", stderr(&t));
    let ckpt = read(&run.join("checkpoint.ckpt"));
    let r = reproduce(&b, &args);
    let err = stderr(&r);
    assert_eq!(r.status.code(), Some(1), "{err}");
    assert!(
        err.contains("holds another run") && err.contains("network products bf16"),
        "{err}"
    );
    assert!(read(&run.join("checkpoint.ckpt")) == ckpt);
    let t = train("f32");
    assert!(t.status.success(), "{}", stderr(&t));
    let r = ok(reproduce(&b, &args), "the resumed run");
    let err = stderr(&r);
    assert!(
        err.contains("resuming") && err.contains("at iteration 10 of 30"),
        "{err}"
    );
    let name = "cells/linear-gumbolt-nw-k20-seed0.json";
    let (ra, rb) = (json(&a.join(name)), json(&b.join(name)));
    assert_eq!(rb["iterations"], 30);
    // A resumed run ends with the same parameters: the same evaluation.
    assert_eq!(ra["test_nll"], rb["test_nll"]);
    assert_eq!(ra["log_z"], rb["log_z"]);
}

#[test]
fn one_column_with_a_graph_prior() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("t1");
    // GumBolt k = 1 alone (--models gumbolt --k 1) on `~` with a Chimera C(2,2,4) prior.
    let args = [
        "--table",
        "1",
        "--structures",
        "nonlinear",
        "--models",
        "gumbolt",
        "--k",
        "1",
        "--prior",
        "chimera:2,2,4",
        "--limit",
        "50",
        "--quiet",
    ];
    ok(reproduce(&out, &args), "reproduce --prior chimera");
    assert_eq!(
        cell_files(&out),
        names(&["nonlinear-gumbolt-k1-seed0.json"])
    );
    let cell = json(&out.join("cells/nonlinear-gumbolt-k1-seed0.json"));
    let text = cell.to_string();
    assert!(text.contains("--prior chimera:2,2,4"), "{text}");
    let config = json(&out.join("runs/nonlinear-gumbolt-k1/seed0/config.json")).to_string();
    assert!(config.contains("chimera"), "{config}");
    // The same OUT with the RBM is another setting: refused.
    let again = reproduce(&out, &args[..8]);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("other settings"),
        "{}",
        stderr(&again)
    );
    // bernoulli is the GumBolt-nW column's prior, not a replacement of the RBM.
    let bad = reproduce(
        &tmp.path().join("b"),
        &["--table", "1", "--prior", "bernoulli"],
    );
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("--prior"), "{}", stderr(&bad));
    // --k must name a column of the selected models.
    let bad = reproduce(
        &tmp.path().join("c"),
        &["--table", "1", "--models", "dvae", "--k", "5"],
    );
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("--k"), "{}", stderr(&bad));
}

//! End-to-end tests of the `gumbolt` binary: `gumbolt logz` against exact values and file round
//! trips. Bad inputs (files and options) are in the corpus of `bad_input.rs`.

mod common;

use common::{gumbolt, num};

use gumbolt_core::prior::ExactPartition;
use gumbolt_priors::Rbm;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A fresh directory under the system temp dir, removed on drop (no extra dependency, so the
/// workspace lock file stays untouched).
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("gumbolt-cli-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `args` split at whitespace, with every `@` replaced by `path` (which may contain spaces).
fn words(args: &str, path: &str) -> Vec<String> {
    args.split_whitespace()
        .map(|w| if w == "@" { path } else { w }.to_string())
        .collect()
}

/// Runs `gumbolt logz --json --quiet <args>` (see [`words`]), asserts success, and parses the
/// one JSON line.
fn logz_json(args: &str, path: &str) -> Value {
    let mut all = vec!["logz".to_string(), "--json".into(), "--quiet".into()];
    all.extend(words(args, path));
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let out = gumbolt(&all);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "gumbolt {all:?} failed: {stderr}");
    assert_eq!(
        stdout.lines().count(),
        1,
        "one JSON line expected, got: {stdout}"
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("invalid JSON ({e}): {stdout}"))
}

fn exact_log_z(n1: usize, n2: usize, scale: f32, seed: u64) -> f64 {
    let mut rng = gumbolt_core::rng::root_rng(seed);
    Rbm::random(n1, n2, scale, &mut rng)
        .log_partition()
        .unwrap()
}

#[test]
fn exact_json_matches_the_library() {
    let v = logz_json(
        "--random --n1 6 --n2 9 --scale 0.5 --seed 1 --method exact",
        "",
    );
    let want = exact_log_z(6, 9, 0.5, 1);
    assert_eq!(v["method"], "exact");
    assert!((num(&v, "log_z") - want).abs() < 1e-12, "{v}");
    assert_eq!(num(&v, "log_z_std"), 0.0);
    assert_eq!(num(&v, "exact"), num(&v, "log_z"));
    assert!(num(&v, "seconds") >= 0.0);
    assert_eq!((v["n1"].as_u64(), v["n2"].as_u64()), (Some(6), Some(9)));
    assert_eq!(v["runs"].as_u64(), Some(1));
    assert_eq!(v["warnings"].as_array().map(Vec::len), Some(0));
}

/// A small random RBM with a sizeable coupling scale: estimates must be within 0.05 + 4 std.
fn check_estimate(v: &Value, want: f64) {
    let (z, s) = (num(v, "log_z"), num(v, "log_z_std"));
    assert!(s > 0.0 && s < 0.05, "implausible standard error: {v}");
    let tol = 0.05 + 4.0 * s;
    assert!((z - want).abs() < tol, "log Z {z} ± {s}, exact {want}: {v}");
    assert!((num(v, "exact") - want).abs() < 1e-9, "{v}");
    assert!(num(v, "exact_seconds") >= 0.0);
}

#[test]
fn ais_is_close_to_exact() {
    let v = logz_json(
        "--random --n1 8 --n2 10 --scale 0.7 --seed 2 --method ais \
         --ais-steps 1000 --ais-chains 256 --runs 4",
        "",
    );
    assert_eq!(v["method"], "ais");
    check_estimate(&v, exact_log_z(8, 10, 0.7, 2));
    assert_eq!(v["ais_betas"].as_u64(), Some(1001));
    assert_eq!(v["ais_chains"].as_u64(), Some(256));
    assert_eq!(v["runs"].as_u64(), Some(4));
    assert_eq!(v["run_estimates"].as_array().map(Vec::len), Some(4));
}

#[test]
fn pt_is_close_to_exact() {
    // With the default target standard error (more rounds while it is not reached).
    let v = logz_json(
        "--random --n1 8 --n2 10 --scale 0.7 --seed 2 --method pt \
         --pt-burn-in 200 --pt-sweeps 3000 --pt-max-sweeps 20000 --runs 6",
        "",
    );
    assert_eq!(v["method"], "pt");
    check_estimate(&v, exact_log_z(8, 10, 0.7, 2));
    let replicas = v["pt_replicas"].as_u64().unwrap() as usize;
    assert_eq!(v["pt_betas"].as_array().unwrap().len(), replicas);
    let rates = v["pt_swap_rates"].as_array().unwrap();
    assert_eq!(rates.len(), replicas - 1);
    assert!(
        rates.iter().all(|r| r.as_f64().is_some_and(|r| r > 0.05)),
        "{v}"
    );
}

#[test]
fn human_readable_summary() {
    let out = gumbolt(&[
        "logz",
        "--random",
        "--n1",
        "4",
        "--n2",
        "5",
        "--pt-sweeps",
        "200",
        "--runs",
        "2",
    ]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let expected = ["log Z =", "exact =", "temperatures"];
    assert!(expected.iter().all(|e| text.contains(e)), "{text}");
}

#[test]
fn save_and_load_round_trip() {
    let dir = TempDir::new("roundtrip");
    let path = dir.path().join("rbm.json");
    let p = path.to_str().unwrap();
    let common = "--method pt --seed 5 --pt-sweeps 300 --pt-target-std 0 --runs 2 \
                  --pt-ladder 0,0.3,0.6,1 --threads 1";
    let saved = logz_json(
        &format!("--random --n1 5 --n2 7 --scale 0.8 --save-rbm @ {common}"),
        p,
    );
    let rbm = Rbm::load_json(&path).unwrap();
    assert_eq!((rbm.n1(), rbm.n2()), (5, 7));
    let loaded = logz_json(&format!("--rbm @ {common}"), p);
    // Same parameters and the same seed: the same estimate, bit for bit.
    assert_eq!(saved["log_z"], loaded["log_z"]);
    assert_eq!(saved["exact"], loaded["exact"]);
    assert_eq!(loaded["rbm"], p);
    assert_eq!(saved["pt_replicas"].as_u64(), Some(4));
    // Without a target standard error, exactly --pt-sweeps production steps.
    assert_eq!(saved["pt_sweeps"].as_u64(), Some(300));
}

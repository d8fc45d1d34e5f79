//! End-to-end test of `gumbolt bench`: a tiny run's JSON and bad inputs.

mod common;

use common::gumbolt;

use serde_json::Value;

#[test]
fn bench_json_phases_fit_in_the_total() {
    let out = gumbolt(&[
        "bench",
        "--structure",
        "linear",
        "--k",
        "1",
        "--iters",
        "3",
        "--warmup",
        "1",
        "--pcd-steps",
        "2",
        "--pcd-chains",
        "10",
        "--threads",
        "1",
        "--json",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench failed: {stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "one JSON line: {stdout}");
    let v: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(v["structure"], "linear");
    assert_eq!(v["k"], 1);
    assert_eq!(v["iters"], 3);
    assert_eq!(v["matmul_threads"], "1");
    assert_eq!(v["threads"], 1);
    // Unless told: the AMX arithmetic where this CPU has it, f32 elsewhere.
    common::assert_default_products(&v);
    // The peak is measured on this core; the achieved rate cannot exceed it.
    let peak = v["peak_gflops_single_core_f32"].as_f64().unwrap();
    assert_eq!(v["peak_gflops_threads_f32"].as_f64(), Some(peak));
    let fraction = v["fraction_of_peak"].as_f64().unwrap();
    assert!(fraction > 0.0 && fraction < 1.0, "{fraction} of {peak}");
    // The sustained rate is an average over 0.25 s where the peak is the best 5 ms repetition:
    // it cannot exceed the peak by more than the clock's drift between the two measurements.
    let one = v["sustained_gflops_one_thread_f32"].as_f64().unwrap();
    let all = v["sustained_gflops_threads_f32"].as_f64().unwrap();
    assert!(
        one > 0.0 && one < 1.5 * peak,
        "sustained {one} vs peak {peak}"
    );
    assert!(
        all > 0.0 && all < 1.5 * peak,
        "one thread: {all} vs peak {peak}"
    );
    let fs = v["fraction_of_sustained"].as_f64().unwrap();
    assert!(fs > 0.0 && fs.is_finite(), "{fs}");
    let median = v["sec_per_iter"].as_f64().unwrap();
    let mean = v["sec_per_iter_mean"].as_f64().unwrap();
    assert!(median > 0.0 && mean > 0.0);
    let mut sum = 0.0;
    for phase in [
        "negative_phase",
        "encoder",
        "decoder",
        "prior",
        "optimizer",
        "other",
    ] {
        let s = v["phases"][phase]["sec_per_iter"].as_f64().unwrap();
        assert!(s >= 0.0, "{phase}: {s}");
        sum += s;
    }
    // The phases are timed inside the step, so they add up to at most its mean duration.
    assert!(sum <= mean * 1.01 + 1e-6, "phases {sum} > total {mean}");
    let reported = v["phase_sum_sec_per_iter"].as_f64().unwrap();
    assert!((reported - sum).abs() <= 1e-9 + 1e-6 * sum);
    for phase in ["negative_phase", "encoder", "decoder", "prior"] {
        assert!(v["phases"][phase]["gflop_per_iter"].as_f64().unwrap() > 0.0);
    }
    // 2·2·C·S·n1·n2 = 2·2·10·2·100·100.
    let pcd = v["phases"]["negative_phase"]["gflop_per_iter"]
        .as_f64()
        .unwrap();
    assert!((pcd - 8e-4).abs() < 1e-12, "{pcd}");
    assert!(v["gflops"].as_f64().unwrap() > 0.0);
    assert!(v["flop_formulas"]["negative_phase"].is_string());
    // The host's load over the timed iterations: fractions of all CPU time (Linux only; the
    // window is short, so it may also be null when no clock tick passed).
    if cfg!(target_os = "linux") && !v["host"].is_null() {
        let steal = v["host"]["steal_fraction"].as_f64().unwrap();
        let others = v["host"]["other_processes_fraction"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&steal), "{steal}");
        assert!((0.0..=1.0).contains(&others), "{others}");
        assert!(steal + others <= 1.0 + 1e-12, "{steal} + {others}");
    }
}

#[test]
fn bench_rejects_bad_input() {
    for args in [
        "--structure linear --k 1 --iters 0",
        "--structure linear --k 0 --iters 3",
        "--structure linear --k 1 --iters 3 --threads 0",
        "--structure bogus --k 1 --iters 3",
        "--structure linear --k 1 --iters 3 --network-products f16",
        "--structure linear --k 1 --iters 3 --chain-products f32x3",
    ] {
        let mut all = vec!["bench"];
        all.extend(args.split_whitespace());
        let out = gumbolt(&all);
        assert_eq!(out.status.code(), Some(2), "{args}: {out:?}");
        assert!(out.stdout.is_empty(), "{args}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.starts_with("error:"), "{args}: {stderr}");
    }
}

#[test]
fn bench_reports_bf16_network_and_chain_products_and_what_ran() {
    let out = gumbolt(&[
        "bench",
        "--structure",
        "nonlinear",
        "--k",
        "5",
        "--iters",
        "2",
        "--warmup",
        "0",
        "--pcd-steps",
        "2",
        "--pcd-chains",
        "10",
        "--threads",
        "1",
        "--network-products",
        "bf16",
        "--chain-products",
        "bf16x3",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["network_products"], "bf16");
    let ran = v["network_products_effective"].as_str().unwrap();
    assert!(ran == "bf16" || ran == "f32", "{ran}");
    assert_eq!(v["chain_products"], "bf16x3");
    let chains_ran = v["chain_products_effective"].as_str().unwrap();
    assert!(
        chains_ran == "bf16x3" || chains_ran == "f32",
        "{chains_ran}"
    );
    assert_eq!(chains_ran == "bf16x3", ran == "bf16", "both need AMX-BF16");
    assert!(v["sec_per_iter"].as_f64().unwrap() > 0.0);
}

//! `gumbolt train --prior` with Boltzmann machines on graphs (tiny budgets: train, resume, eval,
//! sample), `gumbolt logz --bm`, and their bad inputs (a clear error, non-zero exit, no panic).

mod common;

use common::{checkpoint_state, gumbolt, num, one_json, stderr};

const TINY: &[&str] = &[
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
    "--quiet",
];

fn train(out: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["train", "--out", out];
    args.extend_from_slice(extra);
    args.extend_from_slice(TINY);
    gumbolt(&args)
}

#[test]
fn graph_prior_runs_train_resume_evaluate_and_sample() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("zephyr");
    let run = run.to_str().unwrap();
    let full = dir.path().join("zephyr-full");
    let full = full.to_str().unwrap();
    // Zephyr Z(1,2): 24 units over two layers of 12 (`linear2`), not bipartite.
    let spec = [
        "--prior",
        "zephyr:1,2",
        "--structure",
        "linear2",
        "--iters",
        "12",
    ];
    let out = train(full, &spec);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut stop = spec.to_vec();
    stop.extend_from_slice(&["--stop-after", "7"]);
    assert!(train(run, &stop).status.success());
    let out = gumbolt(&["train", "--out", run, "--resume", "--quiet"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let ckpt = |r: &str| std::path::Path::new(r).join("checkpoint.ckpt");
    assert_eq!(
        checkpoint_state(&ckpt(full)).0,
        checkpoint_state(&ckpt(run)).0
    );
    // --resume with another prior is refused.
    let out = gumbolt(&["train", "--out", run, "--resume", "--prior", "pegasus:2"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--prior"), "{}", stderr(&out));
    // 24 units: log Z is exact (enumeration), the NLL finite.
    let e = one_json(&[
        "eval",
        "--run",
        run,
        "--samples",
        "5",
        "--limit",
        "50",
        "--json",
    ]);
    assert_eq!(e["model_kind"], "gumbolt/sparse-bm/pcd");
    assert!(num(&e, "test_nll").is_finite());
    let png = dir.path().join("s.png");
    let out = gumbolt(&[
        "sample",
        "--run",
        run,
        "--n",
        "4",
        "--out",
        png.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(png.exists());
}

#[test]
fn graph_prior_from_a_file_and_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ring.json");
    // A ring of 6 with one chord: 3 units per layer of `linear2`.
    std::fs::write(
        &file,
        r#"{"h": [0, 0, 0, 0, 0, 0], "edges": [[0,1,0.5],[1,2,0],[2,3,0],[3,4,0],[4,5,0],[5,0,0],[0,2,1]]}"#,
    )
    .unwrap();
    let prior = format!("graph:{}", file.display());
    let run = dir.path().join("file");
    let out = train(
        run.to_str().unwrap(),
        &["--prior", &prior, "--structure", "linear2", "--iters", "3"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // The two-layer dVAE KL with couplings inside a layer is refused.
    let out = train(
        dir.path().join("d").to_str().unwrap(),
        &[
            "--prior",
            &prior,
            "--structure",
            "linear2",
            "--iters",
            "3",
            "--model",
            "dvae",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("inside a layer"), "{}", stderr(&out));
    // 7 nodes over two layers.
    let odd = dir.path().join("odd.json");
    std::fs::write(
        &odd,
        r#"{"h": [0, 0, 0, 0, 0, 0, 0], "edges": [[0, 1, 0.5]]}"#,
    )
    .unwrap();
    let out = train(
        dir.path().join("o").to_str().unwrap(),
        &[
            "--prior",
            &format!("graph:{}", odd.display()),
            "--structure",
            "linear2",
            "--iters",
            "3",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("split evenly"), "{}", stderr(&out));
    // Malformed files and specifications: the error names the file and the entry.
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"h": [0, 0], "edges": [[0, 1, 1], [1, 5, 2]]}"#).unwrap();
    for p in [
        format!("graph:{}", bad.display()),
        "pegasus:1".into(),
        "torus".into(),
        "chimera:2,2".into(),
        "graph:".into(),
    ] {
        let out = train(
            dir.path().join("x").to_str().unwrap(),
            &["--prior", &p, "--iters", "3"],
        );
        assert_eq!(out.status.code(), Some(2), "{p}: {}", stderr(&out));
        assert!(!stderr(&out).contains("panicked"), "{p}");
    }
    let out = train(
        dir.path().join("x").to_str().unwrap(),
        &[
            "--prior",
            &format!("graph:{}", bad.display()),
            "--iters",
            "3",
        ],
    );
    assert!(
        stderr(&out).contains("bad.json") && stderr(&out).contains("edges[1]"),
        "{}",
        stderr(&out)
    );
    let out = gumbolt(&["logz", "--bm", bad.to_str().unwrap(), "--method", "pt"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("bad.json") && stderr(&out).contains("edges[1]"),
        "{}",
        stderr(&out)
    );
    // bernoulli with a baseline, a graph with gumbolt-nw.
    let out = train(
        dir.path().join("y").to_str().unwrap(),
        &["--prior", "bernoulli", "--model", "dvae", "--iters", "3"],
    );
    assert_eq!(out.status.code(), Some(2));
    let out = train(
        dir.path().join("z").to_str().unwrap(),
        &[
            "--prior",
            "zephyr:1,2",
            "--model",
            "gumbolt-nw",
            "--iters",
            "3",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn logz_of_a_graph_file_agrees_with_enumeration() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("z12.json");
    let mut bm = gumbolt_priors::SparseBm::topology("zephyr:1,2".parse().unwrap());
    bm.randomize(0.5, 0.8, &mut gumbolt_core::rng::root_rng(3));
    bm.save_json(&file).unwrap();
    let f = file.to_str().unwrap();
    let exact = one_json(&["logz", "--bm", f, "--method", "exact", "--json"]);
    let x = num(&exact, "log_z");
    for m in ["pt", "ais"] {
        let v = one_json(&[
            "logz", "--bm", f, "--method", m, "--seed", "1", "--json", "--quiet",
        ]);
        let (z, s) = (num(&v, "log_z"), num(&v, "log_z_std"));
        assert_eq!(num(&v, "exact"), x);
        assert!((z - x).abs() < 4.0 * s + 1e-3, "{m}: {z} ± {s} vs {x}");
        assert!(num(&v, "seconds") > 0.0 && v["method"] == m);
    }
}

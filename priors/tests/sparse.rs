//! The sparse Boltzmann machine and the D-Wave topologies: reference node and edge counts,
//! edge lists against dwave-networkx's, energies, gradients and conditionals against a
//! polynomial MRF and finite differences, the JSON format and its errors.

use gumbolt_core::Mat;
use gumbolt_core::prior::{
    ColourConditionals, EnergyGradient, EnergyParamGradient, ExactPartition, Parametric, PriorExt,
    SiteConditionals,
};
use gumbolt_priors::{PolynomialMrf, SparseBm, Topology};

fn counts(spec: &str) -> (usize, usize) {
    let (n, e) = spec.parse::<Topology>().unwrap().graph();
    (n, e.len())
}

#[test]
fn topology_node_and_edge_counts_match_the_reference() {
    assert_eq!(counts("chimera:2,2,4"), (32, 80));
    assert_eq!(counts("chimera:5,5,4"), (200, 560));
    assert_eq!(counts("chimera:16,16,4"), (2048, 6016));
    assert_eq!(counts("pegasus:2"), (40, 164));
    assert_eq!(counts("pegasus:3"), (128, 704));
    assert_eq!(counts("pegasus:4"), (264, 1604));
    assert_eq!(counts("pegasus:16"), (5640, 40484));
    assert_eq!(counts("zephyr:1,2"), (24, 76));
    assert_eq!(counts("zephyr:2,4"), (160, 1224));
    assert_eq!(counts("zephyr:2,5"), (200, 1850));
    // Defaults of the command line.
    assert_eq!(counts("chimera"), (200, 560));
    assert_eq!(counts("pegasus"), (264, 1604));
    assert_eq!(counts("zephyr"), (200, 1850));
}

#[test]
fn bipartiteness_of_the_topologies() {
    let bip = |s: &str| SparseBm::topology(s.parse().unwrap()).is_bipartite();
    assert!(bip("chimera:16,16,4"));
    assert!(!bip("pegasus:4"));
    assert!(!bip("zephyr:2,5"));
    assert!(!bip("zephyr:1,2"));
}

/// Edge lists written by dwave-networkx 0.8.19 (`scripts/dnx_reference_edges.py`).
#[test]
fn edge_lists_equal_dwave_networkx() {
    for (file, spec) in [
        ("chimera2_2_4", "chimera:2,2,4"),
        ("pegasus2", "pegasus:2"),
        ("zephyr1_2", "zephyr:1,2"),
    ] {
        let path = format!("{}/tests/data/{file}.json", env!("CARGO_MANIFEST_DIR"));
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let want: Vec<(usize, usize)> = v["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e[0].as_u64().unwrap() as usize,
                    e[1].as_u64().unwrap() as usize,
                )
            })
            .collect();
        let (n, got) = spec.parse::<Topology>().unwrap().graph();
        assert_eq!(n, v["nodes"].as_u64().unwrap() as usize, "{spec}");
        assert_eq!(got, want, "{spec}");
    }
}

#[test]
fn colourings_are_proper_partitions() {
    for spec in ["chimera:3,3,4", "pegasus:3", "zephyr:2,5"] {
        let bm = SparseBm::topology(spec.parse().unwrap());
        let classes = bm.colour_classes();
        let mut colour = vec![usize::MAX; bm.num_units()];
        for (c, cl) in classes.iter().enumerate() {
            assert!(!cl.is_empty());
            for &i in cl {
                assert_eq!(colour[i], usize::MAX, "{spec}: unit {i} twice");
                colour[i] = c;
            }
        }
        assert!(colour.iter().all(|&c| c != usize::MAX), "{spec}");
        for &(i, j) in bm.edges() {
            assert_ne!(colour[i], colour[j], "{spec}: edge ({i}, {j})");
        }
        assert!(classes.len() <= 6, "{spec}: {} colours", classes.len());
    }
}

fn random_bm(spec: &str, seed: u64) -> SparseBm {
    let mut bm = SparseBm::topology(spec.parse().unwrap());
    bm.randomize(0.5, 0.8, &mut gumbolt_core::rng::root_rng(seed));
    bm
}

fn as_mrf(bm: &SparseBm) -> PolynomialMrf {
    let mut mono: Vec<(Vec<usize>, f64)> = bm
        .h()
        .iter()
        .enumerate()
        .map(|(i, &h)| (vec![i], -(h as f64)))
        .collect();
    for (&(i, j), &w) in bm.edges().iter().zip(bm.w()) {
        mono.push((vec![i, j], -(w as f64)));
    }
    PolynomialMrf::new(bm.num_units(), mono).unwrap()
}

fn random_points(rows: usize, n: usize, seed: u64, binary: bool) -> Mat {
    let mut rng = gumbolt_core::rng::root_rng(seed);
    Mat::from_fn(rows, n, |_, _| {
        let u = gumbolt_core::rng::uniform_f64(&mut rng) as f32;
        if binary { (u < 0.5) as u8 as f32 } else { u }
    })
}

#[test]
fn energy_gradient_and_conditionals_agree_with_the_polynomial_mrf() {
    let bm = random_bm("zephyr:1,2", 3);
    let mrf = as_mrf(&bm);
    let zeta = random_points(17, 24, 4, false);
    let (a, b) = (bm.energies(&zeta), mrf.energies(&zeta));
    for (x, y) in a.iter().zip(&b) {
        assert!((x - y).abs() < 1e-4 * (1.0 + y.abs()), "{x} vs {y}");
    }
    let (mut ga, mut gb) = (Mat::zeros(0, 0), Mat::zeros(0, 0));
    bm.energy_grad_into(zeta.as_view(), &mut ga);
    mrf.energy_grad_into(zeta.as_view(), &mut gb);
    assert!((&ga - &gb).amax() < 1e-4);
    let z = random_points(9, 24, 5, true);
    for (c, class) in bm.colour_classes().iter().enumerate() {
        let mut out = Mat::zeros(9, class.len());
        bm.colour_logits(c, z.as_view(), &mut out);
        let mut gap = vec![0.0; 9];
        for (k, &i) in class.iter().enumerate() {
            mrf.site_energy_gaps(z.as_view(), i, &mut gap);
            for r in 0..9 {
                assert!((out[(r, k)] as f64 + gap[r]).abs() < 1e-4);
            }
        }
    }
    assert!((bm.log_partition().unwrap() - mrf.log_partition().unwrap()).abs() < 1e-6);
}

#[test]
fn parameter_gradient_matches_finite_differences_and_exact_log_z_gradient() {
    let bm = random_bm("zephyr:1,2", 7);
    let zeta = random_points(5, 24, 8, false);
    let w = [0.3f32, -0.2, 1.0, 0.5, 0.25];
    let mut g = vec![0.0f32; bm.params().len()];
    bm.accumulate_neg_energy_grad(zeta.as_view(), &w, &mut g);
    let f = |b: &SparseBm| -> f64 {
        b.energies(&zeta)
            .iter()
            .zip(&w)
            .map(|(e, &w)| -e * w as f64)
            .sum()
    };
    for k in [0, 3, 23, 24, 50, 99] {
        let (mut p, mut m) = (bm.clone(), bm.clone());
        p.params_mut()[k] += 1e-2;
        m.params_mut()[k] -= 1e-2;
        let fd = (f(&p) - f(&m)) / 2e-2;
        assert!(
            (fd - g[k] as f64).abs() < 2e-3,
            "param {k}: {fd} vs {}",
            g[k]
        );
    }
    // ∇ log Z by enumeration against finite differences of log Z.
    let small = random_bm("chimera:1,2,2", 9);
    let grad = small.log_partition_grad().unwrap();
    for (k, &gk) in grad.iter().enumerate() {
        let (mut p, mut m) = (small.clone(), small.clone());
        p.params_mut()[k] += 1e-2;
        m.params_mut()[k] -= 1e-2;
        let fd = (p.log_partition().unwrap() - m.log_partition().unwrap()) / 2e-2;
        assert!((fd - gk).abs() < 1e-3, "param {k}: {fd} vs {}", gk);
    }
}

#[test]
fn json_round_trip_and_errors_name_the_file_and_entry() {
    let bm = random_bm("pegasus:2", 1);
    let dir = std::env::temp_dir().join(format!("gumbolt-sparse-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bm.json");
    bm.save_json(&path).unwrap();
    let back = SparseBm::load_json(&path).unwrap();
    assert_eq!(back, bm);
    let cases = [
        (r#"{"h": [0, 0], "edges": [[0, 2, 1.0]]}"#, "edges[0]"),
        (r#"{"h": [0, 0], "edges": [[1, 1, 1.0]]}"#, "self-loop"),
        (
            r#"{"h": [0, 0], "edges": [[0, 1, 1.0], [1, 0, 2.0]]}"#,
            "edges[1]",
        ),
        (r#"{"h": [0, 0], "edges": [[0, 1]]}"#, "edges[0]"),
        (r#"{"h": [0, "x"], "edges": []}"#, "h[1]"),
        (r#"{"h": [], "edges": []}"#, "empty"),
        (r#"{"h": [0], "edges": [], "w": 1}"#, "unknown key"),
        (r#"{"h": [0, 0], "edges": [[0, -1, 1]]}"#, "edges[0]"),
        (r#"{"h": [0, 0], "edges": [[0, 1, 1e999]]}"#, "line"),
        (r#"{"h": [0, 0]"#, "line"),
    ];
    for (k, (text, want)) in cases.iter().enumerate() {
        let p = dir.join(format!("bad{k}.json"));
        std::fs::write(&p, text).unwrap();
        let err = SparseBm::load_json(&p).unwrap_err().to_string();
        assert!(err.contains(&p.display().to_string()), "{err}");
        assert!(err.contains(want), "case {k}: {err}");
    }
    let missing = SparseBm::load_json(dir.join("missing.json")).unwrap_err();
    assert!(missing.to_string().contains("missing.json"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn topology_parse_errors() {
    for bad in [
        "chimera:0,1,1",
        "pegasus:1",
        "zephyr:2",
        "torus",
        "pegasus:x",
        "pegasus:1000",
    ] {
        assert!(bad.parse::<Topology>().is_err(), "{bad}");
    }
}

#![allow(clippy::needless_range_loop)] // index-heavy reference formulas

use super::*;
use crate::test_util::*;
use gumbolt_core::exact::enumerate;
use gumbolt_core::prior::PriorExt;

/// `−E` by the definition, in f64.
fn neg_energy_naive(rbm: &Rbm, z: &[f64]) -> f64 {
    let (n1, n2) = (rbm.n1(), rbm.n2());
    let w = rbm.w();
    let mut v = 0.0;
    for i in 0..n1 {
        v += rbm.a()[i] as f64 * z[i];
    }
    for j in 0..n2 {
        v += rbm.b()[j] as f64 * z[n1 + j];
        for i in 0..n1 {
            v += z[i] * w[(i, j)] as f64 * z[n1 + j];
        }
    }
    v
}

/// Exact `(log Z, E[z], E[z1 z2ᵀ])` by enumerating both sides with f64 energies.
fn brute_force(rbm: &Rbm) -> (f64, Vec<f64>, DMatrix<f64>) {
    let (n1, n2) = (rbm.n1(), rbm.n2());
    let n = n1 + n2;
    let lps: Vec<f64> = (0u64..1 << n)
        .map(|x| {
            neg_energy_naive(
                rbm,
                &(0..n).map(|i| ((x >> i) & 1) as f64).collect::<Vec<_>>(),
            )
        })
        .collect();
    let lz = gumbolt_core::numerics::log_sum_exp(&lps);
    let mut marg = vec![0.0; n];
    let mut corr = DMatrix::<f64>::zeros(n1, n2);
    for (x, lp) in lps.iter().enumerate() {
        let p = (lp - lz).exp();
        for (i, m) in marg.iter_mut().enumerate() {
            if (x >> i) & 1 == 1 {
                *m += p;
            }
        }
        for i in 0..n1 {
            for j in 0..n2 {
                if (x >> i) & 1 == 1 && (x >> (n1 + j)) & 1 == 1 {
                    corr[(i, j)] += p;
                }
            }
        }
    }
    (lz, marg, corr)
}

const SHAPES: [(usize, usize); 5] = [(1, 1), (3, 5), (5, 3), (4, 4), (2, 7)];

#[test]
fn energy_matches_definition_on_relaxed_points() {
    let mut r = rng(1);
    for (n1, n2) in SHAPES {
        let rbm = Rbm::random(n1, n2, 1.0, &mut r);
        let zeta = relaxed(9, n1 + n2, &mut r);
        let e = rbm.energies(&zeta);
        for (k, &ek) in e.iter().enumerate() {
            assert_close(
                ek,
                -neg_energy_naive(&rbm, &row_f64(&zeta, k)),
                1e-5,
                "energy",
            );
        }
        // Empty batch and a view with a column stride larger than its row count.
        assert!(rbm.energies(&Mat::zeros(0, n1 + n2)).is_empty());
        let wide = relaxed(12, n1 + n2, &mut r);
        let mut out = vec![0.0; 5];
        rbm.energy_into(wide.rows(3, 5), &mut out);
        for (k, &o) in out.iter().enumerate() {
            assert_close(
                o,
                -neg_energy_naive(&rbm, &row_f64(&wide, k + 3)),
                1e-5,
                "strided view",
            );
        }
    }
}

#[test]
fn orientation_w_ij_couples_z1_i_and_z2_j() {
    let mut w = DMatrix::zeros(2, 3);
    w[(1, 2)] = 5.0;
    let rbm = Rbm::new(vec![0.1, 0.2], vec![0.3, 0.4, 0.5], w).unwrap();
    let z = DMatrix::from_row_slice(1, 5, &[0.0f32, 1.0, 0.0, 0.0, 1.0]);
    assert_close(
        rbm.energies(&z)[0],
        -(0.2 + 0.5 + 5.0),
        1e-6,
        "E(z1_1 = z2_2 = 1)",
    );
    let json = rbm.to_json_string().unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["W"][1][2].as_f64(), Some(5.0));
    assert_eq!(v["W"].as_array().unwrap().len(), 2);
}

#[test]
fn energy_gradient_matches_finite_differences() {
    // E is affine in each ζ_i, so a central difference is exact up to rounding.
    let mut r = rng(2);
    for (n1, n2) in SHAPES {
        let rbm = Rbm::random(n1, n2, 1.0, &mut r);
        let zeta = relaxed(6, n1 + n2, &mut r);
        let mut g = Mat::zeros(1, 1); // wrong shape on purpose: resized
        rbm.energy_grad_into(zeta.as_view(), &mut g);
        assert_eq!(g.shape(), zeta.shape());
        for i in 0..n1 + n2 {
            let (mut zp, mut zm) = (zeta.clone(), zeta.clone());
            zp.column_mut(i).add_scalar_mut(0.25);
            zm.column_mut(i).add_scalar_mut(-0.25);
            let (ep, em) = (rbm.energies(&zp), rbm.energies(&zm));
            for row in 0..zeta.nrows() {
                let fd = (ep[row] - em[row]) / 0.5;
                assert_close(g[(row, i)] as f64, fd, 1e-4, "dE/dzeta");
            }
        }
    }
}

#[test]
fn param_gradient_matches_finite_differences() {
    // −E is linear in θ: a central difference is exact up to rounding.
    let mut r = rng(3);
    for (n1, n2) in SHAPES {
        let mut rbm = Rbm::random(n1, n2, 1.0, &mut r);
        let zeta = relaxed(7, n1 + n2, &mut r);
        let weights: Vec<f32> = uniforms(7, -1.0, 2.0, &mut r)
            .iter()
            .map(|&w| w as f32)
            .collect();
        let start: Vec<f32> = (0..rbm.params().len()).map(|k| k as f32 * 0.01).collect();
        let mut grad = start.clone();
        rbm.accumulate_neg_energy_grad(zeta.as_view(), &weights, &mut grad);
        let obj = |rbm: &Rbm| -> f64 {
            let e = rbm.energies(&zeta);
            -e.iter()
                .zip(&weights)
                .map(|(e, &w)| e * w as f64)
                .sum::<f64>()
        };
        for k in 0..rbm.params().len() {
            let th = rbm.params()[k];
            rbm.params_mut()[k] = th + 0.5;
            let (fp, hp) = (obj(&rbm), rbm.params()[k]);
            rbm.params_mut()[k] = th - 0.5;
            let (fm, hm) = (obj(&rbm), rbm.params()[k]);
            rbm.params_mut()[k] = th;
            let fd = (fp - fm) / (hp - hm) as f64;
            assert_close(
                (grad[k] - start[k]) as f64,
                fd,
                1e-4,
                &format!("d(-E)/dθ[{k}] ({n1}x{n2})"),
            );
        }
    }
}

#[test]
fn exact_log_partition_matches_core_enumeration_both_orientations() {
    let mut r = rng(4);
    for (n1, n2) in [(1, 1), (3, 6), (6, 3), (5, 5), (2, 9), (9, 2)] {
        for scale in [0.3f32, 2.0] {
            let rbm = Rbm::random(n1, n2, scale, &mut r);
            // Core's generic enumeration evaluates E through the f32 GEMM (~1e-7 relative);
            // the f64 brute force is the tight reference.
            let core = enumerate(&rbm).unwrap();
            let (lz, marg, _) = brute_force(&rbm);
            let got = rbm.log_partition().unwrap();
            assert_close(got, core.log_z, 1e-6 * (1.0 + lz.abs()), "log Z vs core");
            assert_close(
                got,
                lz,
                1e-12 * (1.0 + lz.abs()),
                "log Z vs f64 brute force",
            );
            let (m1, m2) = rbm.exact_marginals().unwrap();
            for (k, m) in m1.iter().chain(&m2).enumerate() {
                assert_close(*m, core.marginals[k], 1e-6, "marginal vs core");
                assert_close(*m, marg[k], 1e-12, "marginal vs f64 brute force");
            }
            // The gradient's a and b blocks are the marginals.
            let g = rbm.log_partition_grad().unwrap();
            for (k, m) in marg.iter().enumerate() {
                assert_close(g[k], *m, 1e-12, "grad a|b = marginals");
            }
        }
    }
    // Large couplings: |c| beyond the exp-space bound takes the libm path.
    let rbm = Rbm::random(4, 6, 40.0, &mut r);
    let (lz, marg, _) = brute_force(&rbm);
    assert_close(
        rbm.log_partition().unwrap(),
        lz,
        1e-12 * lz.abs(),
        "log Z, large W",
    );
    let (m1, m2) = rbm.exact_marginals().unwrap();
    for (k, m) in m1.iter().chain(&m2).enumerate() {
        assert_close(*m, marg[k], 1e-12, "marginal, large W");
    }
    // Zero RBM: log Z = (n1 + n2) log 2.
    assert_close(
        Rbm::zeros(7, 3).log_partition().unwrap(),
        10.0 * 2f64.ln(),
        1e-12,
        "uniform",
    );
}

#[test]
fn exact_gradient_matches_finite_differences_of_log_z() {
    let mut r = rng(5);
    for (n1, n2) in [(3, 5), (5, 3), (4, 4)] {
        let mut rbm = Rbm::random(n1, n2, 0.7, &mut r);
        let g = rbm.log_partition_grad().unwrap();
        // E[z1 z2ᵀ] by brute force for the W block.
        for k in 0..rbm.params().len() {
            let th = rbm.params()[k];
            rbm.params_mut()[k] = th + 1e-2;
            let (fp, hp) = (rbm.log_partition().unwrap(), rbm.params()[k]);
            rbm.params_mut()[k] = th - 1e-2;
            let (fm, hm) = (rbm.log_partition().unwrap(), rbm.params()[k]);
            rbm.params_mut()[k] = th;
            let fd = (fp - fm) / (hp - hm) as f64;
            assert_close(g[k], fd, 2e-5, &format!("d log Z/dθ[{k}] ({n1}x{n2})"));
        }
    }
}

#[test]
fn exact_gradient_w_block_matches_brute_force_correlations() {
    let mut r = rng(6);
    for (n1, n2) in [(3, 4), (4, 3)] {
        let rbm = Rbm::random(n1, n2, 1.0, &mut r);
        let (_, _, corr) = brute_force(&rbm);
        let g = rbm.log_partition_grad().unwrap();
        for j in 0..n2 {
            for i in 0..n1 {
                assert_close(g[n1 + n2 + i + j * n1], corr[(i, j)], 1e-12, "E[z1 z2ᵀ]");
            }
        }
    }
}

#[test]
fn intractable_when_the_smaller_side_is_too_large() {
    let big = Rbm::zeros(25, 30);
    match big.log_partition() {
        Err(CoreError::Intractable { units, limit, .. }) => assert_eq!((units, limit), (25, 24)),
        other => panic!("expected Intractable, got {other:?}"),
    }
    assert!(big.log_partition_grad().is_err());
    assert!(matches!(
        big.exact_marginals(),
        Err(PriorError::Core(CoreError::Intractable { .. }))
    ));
    // A large side is fine when the other side is small.
    assert_close(
        Rbm::zeros(3, 500).log_partition().unwrap(),
        503.0 * 2f64.ln(),
        1e-9,
        "3x500",
    );
}

#[test]
fn block_logits_are_minus_site_gaps_and_match_energy_differences() {
    let mut r = rng(7);
    for (n1, n2) in SHAPES {
        let rbm = Rbm::random(n1, n2, 1.0, &mut r);
        let z = binary(5, n1 + n2, &mut r);
        let mut l2 = Mat::zeros(0, 0);
        rbm.block_logits(Block::Two, z.columns(0, n1), &mut l2);
        let mut l1 = Mat::zeros(0, 0);
        rbm.block_logits(Block::One, z.columns(n1, n2), &mut l1);
        assert_eq!(rbm.block_sizes(), (n1, n2));
        let mut gap = vec![0.0; 5];
        for i in 0..n1 + n2 {
            rbm.site_energy_gaps(z.as_view(), i, &mut gap);
            let (mut z1, mut z0) = (z.clone(), z.clone());
            z1.column_mut(i).fill(1.0);
            z0.column_mut(i).fill(0.0);
            let (e1, e0) = (rbm.energies(&z1), rbm.energies(&z0));
            for row in 0..5 {
                assert_close(gap[row], e1[row] - e0[row], 1e-5, "g_i = E(1) − E(0)");
                let logit = if i < n1 {
                    l1[(row, i)]
                } else {
                    l2[(row, i - n1)]
                };
                assert_close(logit as f64, -gap[row], 1e-5, "logit = −g_i");
            }
        }
    }
}

#[test]
fn constructors_validate() {
    assert!(matches!(
        Rbm::new(vec![], vec![1.0], DMatrix::zeros(0, 1)),
        Err(PriorError::EmptySide { side: "z1" })
    ));
    assert!(matches!(
        Rbm::new(vec![1.0], vec![], DMatrix::zeros(1, 0)),
        Err(PriorError::EmptySide { side: "z2" })
    ));
    assert!(matches!(
        Rbm::new(vec![0.0; 2], vec![0.0; 3], DMatrix::zeros(2, 2)),
        Err(PriorError::Shape { .. })
    ));
    let mut w = DMatrix::zeros(2, 3);
    w[(1, 2)] = f32::NAN;
    match Rbm::new(vec![0.0; 2], vec![0.0; 3], w) {
        Err(PriorError::NonFinite { name, .. }) => assert_eq!(name, "W[1][2]"),
        other => panic!("{other:?}"),
    }
    match Rbm::new(vec![0.0, f32::INFINITY], vec![0.0], DMatrix::zeros(2, 1)) {
        Err(e @ PriorError::NonFinite { .. }) => assert!(e.to_string().contains("a[1]")),
        other => panic!("{other:?}"),
    }
    let w = DMatrix::from_fn(2, 3, |i, j| (i * 10 + j) as f32);
    let rbm = Rbm::new(vec![1.0, 2.0], vec![3.0, 4.0, 5.0], w.clone()).unwrap();
    assert_eq!(rbm.params()[..5], [1.0, 2.0, 3.0, 4.0, 5.0]);
    assert_eq!(
        &rbm.params()[5..],
        w.as_slice(),
        "W column-major after a and b"
    );
    assert_eq!(rbm.w(), w);
}

#[test]
fn random_is_reproducible_and_normal() {
    let a = Rbm::random(100, 100, 0.5, &mut rng(8));
    let b = Rbm::random(100, 100, 0.5, &mut rng(8));
    assert_eq!(a, b);
    let n = a.params().len() as f64;
    let mean = a.params().iter().map(|&x| x as f64).sum::<f64>() / n;
    let var = a
        .params()
        .iter()
        .map(|&x| (x as f64 - mean).powi(2))
        .sum::<f64>()
        / n;
    assert!(mean.abs() < 4.0 * 0.5 / n.sqrt(), "mean {mean}");
    assert!((var.sqrt() - 0.5).abs() < 0.02, "std {}", var.sqrt());
    // Odd parameter count: the last value comes from half a Box–Muller pair.
    let c = Rbm::random(1, 2, 1.0, &mut rng(9));
    assert!(c.params().iter().all(|v| v.is_finite()) && c.params()[4] != 0.0);
}

#[test]
fn serde_round_trip_and_validation() {
    let rbm = Rbm::random(3, 4, 1.0, &mut rng(10));
    let s = serde_json::to_string(&rbm).unwrap();
    assert_eq!(serde_json::from_str::<Rbm>(&s).unwrap(), rbm);
    assert!(serde_json::from_str::<Rbm>(r#"{"n1": 2, "n2": 2, "params": [0, 0, 0]}"#).is_err());
    assert!(serde_json::from_str::<Rbm>(r#"{"n1": 0, "n2": 1, "params": [0]}"#).is_err());
}

// ---------------------------------------------------------------------------------------------
// JSON files.

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("gumbolt-priors-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn json_round_trip_is_exact() {
    let mut r = rng(11);
    for (n1, n2) in SHAPES {
        let mut rbm = Rbm::random(n1, n2, 3.0, &mut r);
        rbm.params_mut()[0] = 1e-30;
        rbm.params_mut()[1] = -3.4e38;
        let s = rbm.to_json_string().unwrap();
        assert_eq!(Rbm::from_json_str(&s).unwrap(), rbm, "{s}");
    }
    let dir = temp_dir("roundtrip");
    let path = dir.join("prior.json");
    let rbm = Rbm::random(4, 6, 1.0, &mut r);
    rbm.save_json(&path).unwrap();
    // Overwrite an existing file; no temporary files are left behind.
    let rbm2 = Rbm::random(2, 3, 1.0, &mut r);
    rbm2.save_json(&path).unwrap();
    assert_eq!(Rbm::load_json(&path).unwrap(), rbm2);
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("prior.json")]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The error of parsing `text`, as a string, asserting it is a `Format` error.
fn format_error(text: &str) -> String {
    match Rbm::from_json_str(text) {
        Err(e @ PriorError::Format { .. }) => e.to_string(),
        other => panic!("expected a Format error for {text}, got {other:?}"),
    }
}

#[test]
fn json_errors_say_what_was_expected() {
    // Malformed JSON: line and column from serde_json.
    match Rbm::from_json_str("{\n  \"a\": [1, 2,\n  \"b\" [3]\n}") {
        Err(PriorError::Json {
            origin,
            line,
            column,
            message,
        }) => {
            assert_eq!(origin, "<string>");
            assert_eq!(line, 3);
            assert!(column > 0);
            assert!(!message.contains("at line"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let cases: [(&str, &[&str]); 13] = [
        (r#"[1, 2]"#, &["top-level value is an array", "JSON object"]),
        (r#"{"a": [1], "b": [2]}"#, &["missing key `W`"]),
        (r#"{"b": [2], "W": [[1]]}"#, &["missing key `a`"]),
        (
            r#"{"a": [1], "b": [2], "w": [[1]]}"#,
            &["unknown key `w`", "capital W"],
        ),
        (
            r#"{"a": [1, 2], "b": [2], "W": [[1]]}"#,
            &["`W` has 1 rows but `a` has 2 entries"],
        ),
        (
            r#"{"a": [1], "b": [2, 3], "W": [[1]]}"#,
            &["`W[0]` has 1 entries but `b` has 2"],
        ),
        (
            r#"{"a": [1], "b": [2], "W": [[1e39]]}"#,
            &["`W[0][0]`", "not finite"],
        ),
        (
            r#"{"a": [1e39], "b": [2], "W": [[1]]}"#,
            &["`a[0]`", "not finite"],
        ),
        (
            r#"{"a": [1], "b": [null], "W": [[1]]}"#,
            &["`b[0]` is null", "finite number"],
        ),
        (
            r#"{"a": ["1"], "b": [2], "W": [[1]]}"#,
            &["`a[0]` is a string"],
        ),
        (
            r#"{"a": [], "b": [2], "W": []}"#,
            &["`a` is empty", "n1 ≥ 1"],
        ),
        (
            r#"{"a": [1], "b": [], "W": [[]]}"#,
            &["`b` is empty", "n2 ≥ 1"],
        ),
        (
            r#"{"a": [1], "b": [2], "W": 3}"#,
            &["`W` is a number", "array of n1 rows"],
        ),
    ];
    for (text, needles) in cases {
        let msg = format_error(text);
        assert!(msg.starts_with("<string>: "), "{msg}");
        assert!(msg.contains("expected"), "{msg}");
        for n in needles {
            assert!(msg.contains(n), "{text}: message {msg:?} lacks {n:?}");
        }
    }
}

#[test]
fn file_errors_name_the_file() {
    let dir = temp_dir("errors");
    let missing = dir.join("does-not-exist.json");
    match Rbm::load_json(&missing) {
        Err(e @ PriorError::Io { .. }) => {
            assert!(e.to_string().contains("does-not-exist.json"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    let bad = dir.join("bad.json");
    std::fs::write(&bad, "{\"a\": [1], \"b\": [2], \"W\": [[1, 2]]}").unwrap();
    let e = Rbm::load_json(&bad).unwrap_err();
    assert!(e.to_string().starts_with(&bad.display().to_string()), "{e}");
    std::fs::write(&bad, "{\"a\": [1],,}").unwrap();
    let e = Rbm::load_json(&bad).unwrap_err();
    assert!(
        matches!(
            e,
            PriorError::Json {
                line: 1,
                column: 11,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("bad.json"), "{e}");
    // Saving into a missing directory fails with the target named.
    let e = Rbm::zeros(1, 1)
        .save_json(dir.join("no-such-dir").join("x.json"))
        .unwrap_err();
    assert!(
        matches!(e, PriorError::Io { .. }) && e.to_string().contains("x.json"),
        "{e}"
    );
    // A non-finite parameter cannot be written.
    let mut rbm = Rbm::zeros(2, 2);
    rbm.w_mut()[(1, 0)] = f32::NAN;
    match rbm.save_json(dir.join("nan.json")) {
        Err(PriorError::NonFinite { name, .. }) => assert_eq!(name, "W[1][0]"),
        other => panic!("{other:?}"),
    }
    assert!(!dir.join("nan.json").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
#[ignore = "timing probe; run with --release --ignored --nocapture"]
fn timing_exact_log_z_2_pow_20_by_200() {
    let rbm = Rbm::random(20, 200, 0.1, &mut rng(3));
    let t = std::time::Instant::now();
    let lz = rbm.log_partition().unwrap();
    eprintln!("log Z = {lz} in {:?}", t.elapsed());
    let t = std::time::Instant::now();
    let g = rbm.log_partition_grad().unwrap();
    eprintln!("grad ({} values) in {:?}", g.len(), t.elapsed());
}

//! Colour-class Gibbs, AIS and PT + bridge sampling on non-bipartite graphs, against exact
//! enumeration (≤ 24 units) and a transfer-matrix log Z on long strips.

use gumbolt_core::LogPartitionEstimator;
use gumbolt_core::exact::enumerate;
use gumbolt_core::prior::{ColourConditionals, ExactPartition, Parametric};
use gumbolt_priors::{PolynomialMrf, SparseBm};
use gumbolt_samplers::ColourGibbs;
use gumbolt_samplers::logz::{ColourAis, ColourAisConfig, ColourPtBar, ColourPtBarConfig};

fn zephyr12(seed: u64) -> SparseBm {
    let mut bm = SparseBm::topology("zephyr:1,2".parse().unwrap());
    bm.randomize(0.5, 1.0, &mut gumbolt_core::rng::root_rng(seed));
    bm
}

/// A random graph on `n` units (each pair with probability `p`), frustrated couplings.
fn random_graph(n: usize, p: f64, seed: u64) -> SparseBm {
    let mut rng = gumbolt_core::rng::root_rng(seed);
    let mut edges = Vec::new();
    for i in 0..n {
        for j in i + 1..n {
            if gumbolt_core::rng::uniform_f64(&mut rng) < p {
                edges.push((i, j));
            }
        }
    }
    let mut bm = SparseBm::from_edges(n, &edges).unwrap();
    bm.randomize(0.5, 1.0, &mut rng);
    bm
}

#[test]
fn colour_gibbs_marginals_match_enumeration() {
    for bm in [zephyr12(1), random_graph(16, 0.3, 2)] {
        assert!(!bm.is_bipartite());
        let exact = enumerate(&bm).unwrap().marginals;
        let chains = 4000;
        let mut g = ColourGibbs::for_prior(&bm, chains, 11).unwrap();
        g.run(&bm, 200);
        for (i, &m) in exact.iter().enumerate() {
            let got = g.state().column(i).mean() as f64;
            // Independent chains: s.e. of a mean of C Bernoullis.
            let se = (m * (1.0 - m) / chains as f64).sqrt();
            assert!((got - m).abs() < 4.5 * se + 1e-3, "unit {i}: {got} vs {m}");
        }
    }
}

#[test]
fn colour_gibbs_on_a_third_order_mrf_matches_enumeration_and_site_gibbs() {
    let mut rng = gumbolt_core::rng::root_rng(5);
    let mrf = PolynomialMrf::random(12, 20, 3, 0.8, &mut rng);
    let classes = mrf.colour_classes();
    assert!(classes.len() >= 2);
    let exact = enumerate(&mrf).unwrap().marginals;
    let chains = 4000;
    let mut g = ColourGibbs::for_prior(&mrf, chains, 3).unwrap();
    g.run(&mrf, 100);
    for (i, &m) in exact.iter().enumerate() {
        let got = g.state().column(i).mean() as f64;
        let se = (m * (1.0 - m) / chains as f64).sqrt();
        assert!((got - m).abs() < 4.5 * se + 1e-3, "unit {i}: {got} vs {m}");
    }
}

fn check_logz(bm: &SparseBm, what: &str) {
    let exact = bm.log_partition().unwrap();
    let pt = ColourPtBar::new(ColourPtBarConfig {
        sweeps: 4000,
        seed: 1,
        ..Default::default()
    })
    .unwrap()
    .estimate(bm)
    .unwrap();
    assert!(
        (pt.log_z - exact).abs() < 4.0 * pt.std_err,
        "{what} PT: {} ± {} vs {exact}",
        pt.log_z,
        pt.std_err
    );
    let ais = ColourAis::new(ColourAisConfig {
        steps: 1000,
        seed: 2,
        ..Default::default()
    })
    .unwrap()
    .estimate(bm)
    .unwrap();
    assert!(
        (ais.log_z - exact).abs() < 4.0 * ais.std_err,
        "{what} AIS: {} ± {} vs {exact}",
        ais.log_z,
        ais.std_err
    );
    assert!(
        pt.std_err < 0.05 && ais.std_err < 0.05,
        "{what}: {pt:?} {ais:?}"
    );
}

#[test]
fn pt_bar_and_ais_match_exact_log_z_on_frustrated_graphs() {
    check_logz(&zephyr12(3), "Z(1,2)");
    check_logz(&random_graph(20, 0.25, 4), "G(20, 0.25)");
    let mut p2 = SparseBm::from_edges(
        20,
        &[
            (0, 1),
            (1, 2),
            (2, 0),
            (2, 3),
            (3, 4),
            (4, 5),
            (5, 3),
            (5, 6),
            (6, 7),
            (7, 8),
            (8, 6),
            (8, 9),
            (9, 10),
            (10, 11),
            (11, 9),
            (11, 12),
            (12, 13),
            (13, 14),
            (14, 12),
            (14, 15),
            (15, 16),
            (16, 17),
            (17, 15),
            (17, 18),
            (18, 19),
            (19, 0),
            (0, 10),
        ],
    )
    .unwrap();
    p2.randomize(0.3, 1.5, &mut gumbolt_core::rng::root_rng(9));
    check_logz(&p2, "triangle ring");
}

/// A strip of `width × length` units: couplings along the length, across the width and on
/// one diagonal (so triangles: not bipartite). Unit `(x, y)` is `x·width + y`.
fn strip(width: usize, length: usize, seed: u64) -> SparseBm {
    let id = |x: usize, y: usize| x * width + y;
    let mut edges = Vec::new();
    for x in 0..length {
        for y in 0..width {
            if y + 1 < width {
                edges.push((id(x, y), id(x, y + 1)));
            }
            if x + 1 < length {
                edges.push((id(x, y), id(x + 1, y)));
                if y + 1 < width {
                    edges.push((id(x, y), id(x + 1, y + 1)));
                }
            }
        }
    }
    let mut bm = SparseBm::from_edges(width * length, &edges).unwrap();
    bm.randomize(0.3, 0.6, &mut gumbolt_core::rng::root_rng(seed));
    bm
}

/// Exact `log Z` of a strip by the transfer matrix over the `2^width` states of a column.
fn strip_log_z(bm: &SparseBm, width: usize, length: usize) -> f64 {
    let s = 1usize << width;
    let n = bm.num_units();
    let mut w = std::collections::HashMap::new();
    for (&(i, j), &c) in bm.edges().iter().zip(bm.w()) {
        w.insert((i.min(j), i.max(j)), c as f64);
    }
    let h = bm.h();
    let bit = |st: usize, y: usize| ((st >> y) & 1) as f64;
    // −E restricted to column x (fields and couplings inside the column).
    let inside = |x: usize, st: usize| -> f64 {
        let mut v = 0.0;
        for y in 0..width {
            v += h[x * width + y] as f64 * bit(st, y);
            if y + 1 < width {
                v += w[&(x * width + y, x * width + y + 1)] * bit(st, y) * bit(st, y + 1);
            }
        }
        v
    };
    let between = |x: usize, a: usize, b: usize| -> f64 {
        let mut v = 0.0;
        for y in 0..width {
            v += w[&(x * width + y, (x + 1) * width + y)] * bit(a, y) * bit(b, y);
            if y + 1 < width {
                v += w[&(x * width + y, (x + 1) * width + y + 1)] * bit(a, y) * bit(b, y + 1);
            }
        }
        v
    };
    let mut v: Vec<f64> = (0..s).map(|st| inside(0, st).exp()).collect();
    let mut log_scale = 0.0;
    for x in 0..length - 1 {
        let next: Vec<f64> = (0..s)
            .map(|b| {
                (0..s)
                    .map(|a| v[a] * (between(x, a, b) + inside(x + 1, b)).exp())
                    .sum()
            })
            .collect();
        let m = next.iter().cloned().fold(0.0, f64::max);
        log_scale += m.ln();
        v = next.iter().map(|x| x / m).collect();
    }
    assert_eq!(n, width * length);
    log_scale + v.iter().sum::<f64>().ln()
}

#[test]
fn transfer_matrix_agrees_with_enumeration_on_a_short_strip() {
    let bm = strip(3, 6, 1);
    let (a, b) = (strip_log_z(&bm, 3, 6), bm.log_partition().unwrap());
    assert!((a - b).abs() < 1e-5, "{a} vs {b}");
}

#[test]
fn pt_bar_matches_the_transfer_matrix_on_long_strips() {
    for (width, length, seed) in [(4, 60, 1), (3, 70, 2)] {
        let bm = strip(width, length, seed);
        assert!(bm.num_units() >= 200 && !bm.is_bipartite());
        let exact = strip_log_z(&bm, width, length);
        let pt = ColourPtBar::new(ColourPtBarConfig {
            sweeps: 10_000,
            seed: 3,
            ..Default::default()
        })
        .unwrap()
        .estimate(&bm)
        .unwrap();
        assert!(
            (pt.log_z - exact).abs() < 0.05,
            "{width}×{length}: {} ± {} vs {exact}",
            pt.log_z,
            pt.std_err
        );
    }
}

#[test]
fn bad_colourings_and_configs_are_refused() {
    assert!(ColourGibbs::new(3, vec![vec![0, 1]], 4, 0).is_err());
    assert!(ColourGibbs::new(3, vec![vec![0, 1], vec![1, 2]], 4, 0).is_err());
    assert!(ColourGibbs::new(2, vec![vec![0], vec![1]], 0, 0).is_err());
    let bad = ColourPtBarConfig {
        betas: Some(vec![0.0, 0.7, 0.5, 1.0]),
        ..Default::default()
    };
    assert!(ColourPtBar::new(bad).is_err());
    assert!(
        ColourAis::new(ColourAisConfig {
            runs: 1,
            ..Default::default()
        })
        .is_err()
    );
    let bm = zephyr12(1);
    assert_eq!(bm.params().len(), 24 + 76);
}

/// `reseed` makes chains move exactly as those of a sampler built with that seed from the same
/// states (PCD re-derives its streams in place every training iteration, without rebuilding the
/// sampler), whatever the chains' β and past draws were.
#[test]
fn reseed_equals_a_new_sampler_with_the_same_states() {
    let bm = random_graph(30, 0.2, 5);
    // 100 chains: four stream groups, the last one short.
    let mut a = ColourGibbs::for_prior(&bm, 100, 1).unwrap();
    a.set_beta(0.5);
    a.run(&bm, 7);
    let mut b = ColourGibbs::for_prior(&bm, 100, 42).unwrap();
    assert_ne!(a.state(), b.state());
    b.state_mut().copy_from(a.state());
    a.reseed(42);
    assert!(a.betas().iter().all(|&beta| beta == 1.0));
    a.run(&bm, 5);
    b.run(&bm, 5);
    assert_eq!(a.state(), b.state());
    // Another seed moves them differently.
    let before = a.state().clone();
    let mut c = a.clone();
    a.reseed(7);
    c.reseed(8);
    a.run(&bm, 5);
    c.run(&bm, 5);
    assert_ne!(a.state(), c.state());
    assert_ne!(a.state(), &before);
}

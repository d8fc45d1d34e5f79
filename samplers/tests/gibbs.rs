//! Block Gibbs, PCD and single-site Gibbs against exact enumeration.

mod common;

use common::{assert_bernoulli_means, column_means, random_rbm};
use gumbolt_core::exact::enumerate;
use gumbolt_core::prior::{Block, BlockConditionals, ExactPartition, Parametric};
use gumbolt_core::{ChainProducts, Mat, Sampler};
use gumbolt_priors::{PolynomialMrf, Rbm};
use gumbolt_samplers::{
    BlockGibbs, NegativePhase, Pcd, PcdConfig, SamplerError, SiteGibbs, SiteGibbsConfig,
};

fn exact_unit_marginals(rbm: &Rbm) -> Vec<f64> {
    let (m1, m2) = rbm.exact_marginals().unwrap();
    m1.into_iter().chain(m2).collect()
}

/// Many independent chains, one sample per chain after a burn-in far longer than the mixing
/// time of a 6×8 RBM: independent draws from (very nearly) the exact distribution.
#[test]
fn block_gibbs_marginals_match_exact() {
    let rbm = random_rbm(6, 8, 1.0, 11);
    let chains = 40_000;
    let mut g = BlockGibbs::for_prior(&rbm, chains, 1).unwrap();
    g.run(&rbm, 200);
    assert_bernoulli_means(
        "gibbs β=1",
        &column_means(g.state()),
        &exact_unit_marginals(&rbm),
        chains,
    );
}

/// Per-chain inverse temperatures: chains at β sample the RBM with parameters β·θ.
#[test]
fn per_chain_temperatures_sample_the_tempered_model() {
    let rbm = random_rbm(5, 7, 1.2, 12);
    let half = 30_000;
    let mut g = BlockGibbs::for_prior(&rbm, 2 * half, 2).unwrap();
    for (i, b) in g.betas_mut().iter_mut().enumerate() {
        *b = if i % 2 == 0 { 1.0 } else { 0.4 };
    }
    g.run(&rbm, 150);
    let mut cold = gumbolt_core::Mat::zeros(half, 12);
    let mut warm = gumbolt_core::Mat::zeros(half, 12);
    for r in 0..2 * half {
        let dst = if r % 2 == 0 { &mut cold } else { &mut warm };
        dst.row_mut(r / 2).copy_from(&g.state().row(r));
    }
    let scaled = Rbm::new(
        rbm.a().iter().map(|v| 0.4 * v).collect(),
        rbm.b().iter().map(|v| 0.4 * v).collect(),
        rbm.w().map(|v| 0.4 * v),
    )
    .unwrap();
    assert_bernoulli_means(
        "gibbs β=1",
        &column_means(&cold),
        &exact_unit_marginals(&rbm),
        half,
    );
    assert_bernoulli_means(
        "gibbs β=0.4",
        &column_means(&warm),
        &exact_unit_marginals(&scaled),
        half,
    );
}

#[test]
fn pcd_negative_phase_matches_exact_log_partition_gradient() {
    let rbm = random_rbm(6, 8, 0.8, 13);
    let chains = 40_000;
    let mut pcd = Pcd::new(PcdConfig::default().chains(chains).sweeps(100).seed(5)).unwrap();
    assert!(pcd.negative_phase().is_none());
    pcd.sample(&rbm);
    pcd.sample(&rbm); // persistent: continues from the previous state
    let neg = pcd.negative_phase().unwrap();
    let exact = rbm.log_partition_grad().unwrap();
    // Every entry is the mean of a 0/1 statistic (z1_i, z2_j or z1_i·z2_j) over independent
    // chains.
    assert_bernoulli_means("∇log Z", &neg.to_flat(), &exact, chains);

    // The generic path (EnergyParamGradient) agrees with the RBM-specific statistics.
    let mut grad = vec![0.0f32; rbm.params().len()];
    assert!(pcd.accumulate_negative_phase(&rbm, &mut grad));
    for (g, n) in grad.iter().zip(neg.to_flat()) {
        assert!((*g as f64 - n).abs() < 1e-5, "{g} vs {n}");
    }
}

#[test]
fn pcd_config_is_validated_and_state_persists() {
    assert!(matches!(
        Pcd::new(PcdConfig::default().chains(0)),
        Err(SamplerError::InvalidConfig { name: "chains", .. })
    ));
    assert!(matches!(
        Pcd::new(PcdConfig::default().sweeps(0)),
        Err(SamplerError::InvalidConfig { name: "sweeps", .. })
    ));
    let d = PcdConfig::default();
    assert_eq!((d.chains, d.sweeps), (1000, 200));

    let rbm = random_rbm(4, 5, 1.0, 14);
    let run = |seed| {
        let mut p = Pcd::new(PcdConfig::default().chains(64).sweeps(3).seed(seed)).unwrap();
        p.sample(&rbm).clone()
    };
    assert_eq!(run(1), run(1), "same seed, same chains");
    assert_ne!(run(1), run(2));
    let mut p = Pcd::new(PcdConfig::default().chains(64).sweeps(3).seed(1)).unwrap();
    let first = p.sample(&rbm).clone();
    let second = p.sample(&rbm).clone();
    assert_ne!(first, second);
    assert_eq!(first.shape(), (64, 9));
    assert!(first.iter().all(|&v| v == 0.0 || v == 1.0));
}

#[test]
fn pcd_in_a_thread_pool_is_bit_identical_to_one_thread() {
    // 100 chains = stream groups of 32, 32, 32 and 4; an RBM with uneven blocks. Several
    // calls (the streams must carry over) and a re-seeded state in between.
    // Both chain products (bf16x3 runs only where AMX does; elsewhere it is f32 again).
    let rbm = random_rbm(37, 23, 1.0, 15);
    for products in [ChainProducts::F32, ChainProducts::Bf16x3] {
        let fresh = || {
            let config = PcdConfig::default().chains(100).sweeps(7).seed(3);
            Pcd::new(config.products(products)).unwrap()
        };
        let trajectory = |pcd: &mut Pcd| -> Vec<Vec<u32>> {
            (0..4)
                .map(|_| pcd.sample(&rbm).iter().map(|v| v.to_bits()).collect())
                .collect()
        };
        let mut serial = fresh();
        let want = trajectory(&mut serial);
        let g = serial.chains().unwrap();
        let want_logits: Vec<u32> = g.last_logits_one().iter().map(|v| v.to_bits()).collect();
        for threads in [2, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut pcd = fresh();
            let got = pool.install(|| trajectory(&mut pcd));
            assert_eq!(got, want, "{products}, {threads} threads");
            let g = pcd.chains().unwrap();
            let logits: Vec<u32> = g.last_logits_one().iter().map(|v| v.to_bits()).collect();
            assert_eq!(
                logits, want_logits,
                "{products}, last logits, {threads} threads"
            );
        }
        // Distinct groups really ran: the four groups' chains differ from each other.
        let state = serial.sample(&rbm);
        assert_ne!(state.row(0), state.row(32));
    }
}

#[test]
fn bf16x3_chain_products_keep_f32_accuracy_and_the_exact_statistics() {
    if ChainProducts::Bf16x3.effective() != ChainProducts::Bf16x3 {
        eprintln!("skipped: this CPU or kernel has no AMX-BF16");
        return;
    }
    // The last sweep's logits against f32 products of the same states: the terms are exact
    // and summed in f32, so they agree to f32 rounding (n + 1 roundings of the largest partial
    // sum), but not bit for bit everywhere (the AMX kernel ran).
    let rbm = random_rbm(37, 23, 1.0, 16);
    let config = PcdConfig::default().chains(100).sweeps(5).seed(4);
    let mut pcd = Pcd::new(config.products(ChainProducts::Bf16x3)).unwrap();
    let state = pcd.sample(&rbm).clone();
    let g = pcd.chains().unwrap();
    let mut f32_logits = Mat::zeros(100, 37);
    rbm.block_logits(Block::One, g.z2(), &mut f32_logits);
    let got = g.last_logits_one();
    for i in 0..37 {
        // |a_i| + Σ_j |W_ij| bounds every partial sum of row i's logit; 24 terms.
        let magnitude = rbm.a()[i].abs() + rbm.w().row(i).iter().map(|w| w.abs()).sum::<f32>();
        let tol = 24.0 * magnitude * f32::EPSILON;
        for c in 0..100 {
            let err = (got[(c, i)] - f32_logits[(c, i)]).abs();
            assert!(err <= tol, "chain {c}, unit {i}: {err} > {tol}");
        }
    }
    assert_ne!(got, &f32_logits, "the bf16x3 kernel ran");
    assert!(state.iter().all(|&v| v == 0.0 || v == 1.0));

    // The negative phase still estimates ∇log Z without bias (as in the f32 test above).
    let rbm = random_rbm(6, 8, 0.8, 13);
    let chains = 40_000;
    let config = PcdConfig::default().chains(chains).sweeps(100).seed(6);
    let mut pcd = Pcd::new(config.products(ChainProducts::Bf16x3)).unwrap();
    pcd.sample(&rbm);
    let neg = pcd.negative_phase().unwrap();
    let exact = rbm.log_partition_grad().unwrap();
    assert_bernoulli_means("∇log Z (bf16x3)", &neg.to_flat(), &exact, chains);
}

#[test]
fn negative_phase_statistics_of_known_samples() {
    let z =
        gumbolt_core::Mat::from_row_slice(4, 3, &[1., 1., 0., 1., 0., 1., 0., 1., 1., 1., 1., 1.]);
    let s = NegativePhase::from_samples(&z, 1);
    assert_eq!(s.mean_z1, vec![0.75]);
    assert_eq!(s.mean_z2, vec![0.75, 0.75]);
    assert_eq!(s.mean_z1z2[(0, 0)], 0.5);
    assert_eq!(s.mean_z1z2[(0, 1)], 0.5);
    assert_eq!(s.to_flat(), vec![0.75, 0.75, 0.75, 0.5, 0.5]);
}

#[test]
fn site_gibbs_marginals_match_enumeration_on_a_polynomial_mrf() {
    let mut rng = gumbolt_core::rng::root_rng(21);
    let mrf = PolynomialMrf::random(9, 24, 3, 1.0, &mut rng);
    let exact = enumerate(&mrf).unwrap();
    let chains = 40_000;
    let cfg = SiteGibbsConfig {
        chains,
        sweeps: 150,
        beta: 1.0,
        seed: 3,
    };
    let mut s = SiteGibbs::new(cfg).unwrap();
    let z = s.sample(&mrf);
    assert_bernoulli_means("site gibbs", &column_means(z), &exact.marginals, chains);
}

#[test]
fn site_gibbs_on_an_rbm_agrees_with_its_exact_marginals() {
    let rbm = random_rbm(5, 6, 1.0, 15);
    let chains = 30_000;
    let mut s = SiteGibbs::new(SiteGibbsConfig {
        chains,
        sweeps: 100,
        ..Default::default()
    })
    .unwrap();
    let z = s.sample(&rbm).clone();
    assert_bernoulli_means(
        "site gibbs rbm",
        &column_means(&z),
        &exact_unit_marginals(&rbm),
        chains,
    );
    assert!(
        SiteGibbs::new(SiteGibbsConfig {
            beta: f64::NAN,
            ..Default::default()
        })
        .is_err()
    );
}

#[test]
fn log_partition_sanity_of_the_test_models() {
    // Guards the test set-up itself: the RBMs above are far from uniform.
    let rbm = random_rbm(6, 8, 1.0, 11);
    assert!((rbm.log_partition().unwrap() - 14.0 * 2f64.ln()).abs() > 1.0);
}

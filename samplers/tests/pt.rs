//! Parallel tempering: marginals at β = 1 and automatic ladder tuning.

mod common;

use common::{assert_bernoulli_means, column_means, random_rbm};
use gumbolt_core::Sampler;
use gumbolt_samplers::{Ladder, LadderConfig, ParallelTempering, Phase, PtConfig, SamplerError};

/// The cold replicas of many independent ensembles are independent samples of p (β = 1).
/// The RBM is strongly coupled (scale 2), so single-chain Gibbs would mix slowly.
#[test]
fn pt_marginals_at_beta_one_match_exact() {
    let rbm = random_rbm(6, 8, 2.0, 31);
    let (m1, m2) = rbm.exact_marginals().unwrap();
    let exact: Vec<f64> = m1.into_iter().chain(m2).collect();
    let ensembles = 20_000;
    let cfg = PtConfig {
        ensembles,
        steps_per_sample: 300,
        seed: 4,
    };
    let mut pt = ParallelTempering::for_prior(&rbm, Ladder::linear(8).unwrap(), cfg).unwrap();
    let z = pt.sample(&rbm).clone();
    assert_eq!(z.shape(), (ensembles, 14));
    assert_bernoulli_means("pt β=1", &column_means(&z), &exact, ensembles);
    // samples_at(R) is the same gather
    assert_eq!(pt.samples_at(7), z);
    let rates = pt.swap_rates();
    assert_eq!(rates.len(), 7);
    assert!(rates.iter().all(|&a| a > 0.0 && a <= 1.0), "{rates:?}");
    let st = pt.swap_stats()[0];
    assert!(st.accepted <= st.attempts && st.attempts > 0);
}

/// Every temperature is sampled correctly, not only β = 1: at β_r the model is the RBM with
/// parameters β_r·θ.
#[test]
fn pt_intermediate_temperature_matches_tempered_exact() {
    let rbm = random_rbm(5, 6, 1.5, 32);
    let beta = 0.5;
    let ensembles = 20_000;
    let ladder = Ladder::new(vec![0.0, 0.25, beta, 0.75, 1.0]).unwrap();
    let cfg = PtConfig {
        ensembles,
        steps_per_sample: 200,
        seed: 8,
    };
    let mut pt = ParallelTempering::for_prior(&rbm, ladder, cfg).unwrap();
    pt.sample(&rbm);
    let z = pt.samples_at(2);
    let tempered = gumbolt_priors::Rbm::new(
        rbm.a().iter().map(|v| 0.5 * v).collect(),
        rbm.b().iter().map(|v| 0.5 * v).collect(),
        rbm.w().map(|v| 0.5 * v),
    )
    .unwrap();
    let (m1, m2) = tempered.exact_marginals().unwrap();
    let exact: Vec<f64> = m1.into_iter().chain(m2).collect();
    assert_bernoulli_means("pt β=0.5", &column_means(&z), &exact, ensembles);
    // the β carried by every row is the ladder value of its temperature index
    let g = pt.chains();
    for (row, &r) in pt.temperature_of_row().iter().enumerate() {
        assert_eq!(g.betas()[row], pt.betas()[r] as f32);
        assert_eq!(pt.row_of(row / 5, r), row);
    }
}

#[test]
fn tuned_ladder_has_swap_rates_near_one_half() {
    let rbm = random_rbm(40, 60, 0.3, 33);
    let mut calls = 0;
    let mut last = 0;
    let t = Ladder::tune(&rbm, &LadderConfig::default(), &mut |p| {
        assert_eq!(p.phase, Phase::Ladder);
        assert!(p.done >= last && p.done <= p.total);
        last = p.done;
        calls += 1;
    })
    .unwrap();
    assert!(calls > 0);
    assert!(
        t.ladder.len() >= 4,
        "a non-trivial ladder: {:?}",
        t.ladder.betas()
    );
    assert_eq!(t.swap_rates.len(), t.ladder.len() - 1);
    // Measure the rates independently of the tuning, on fresh chains.
    let cfg = PtConfig {
        ensembles: 16,
        steps_per_sample: 1,
        seed: 99,
    };
    let mut pt = ParallelTempering::for_prior(&rbm, t.ladder.clone(), cfg).unwrap();
    pt.run(&rbm, 300);
    pt.reset_swap_stats();
    pt.run(&rbm, 2000);
    let rates = pt.swap_rates();
    eprintln!("{} temperatures, rates {rates:?}", t.ladder.len());
    assert!(
        rates.iter().all(|&a| (0.3..=0.75).contains(&a)),
        "{rates:?}"
    );
    let mean = rates.iter().sum::<f64>() / rates.len() as f64;
    assert!((0.4..=0.65).contains(&mean), "mean {mean}");
}

#[test]
fn ladders_and_configs_are_validated() {
    assert!(Ladder::new(vec![0.0]).is_err());
    assert!(Ladder::new(vec![0.0, 1.0]).is_ok());
    assert!(Ladder::new(vec![0.0, 0.7, 0.6, 1.0]).is_err());
    assert!(Ladder::new(vec![0.0, 0.5, 0.9]).is_err());
    assert!(Ladder::linear(1).is_err());
    assert_eq!(Ladder::linear(3).unwrap().betas(), &[0.0, 0.5, 1.0]);
    let bad = PtConfig {
        ensembles: 0,
        ..Default::default()
    };
    assert!(matches!(
        ParallelTempering::new(3, 3, Ladder::linear(2).unwrap(), bad),
        Err(SamplerError::InvalidConfig {
            name: "ensembles",
            ..
        })
    ));
    let bad = LadderConfig {
        target_swap_rate: 1.5,
        ..Default::default()
    };
    let rbm = random_rbm(3, 3, 1.0, 1);
    assert!(Ladder::tune(&rbm, &bad, &mut |_| {}).is_err());
}

#[test]
fn pt_is_reproducible_for_a_seed() {
    let rbm = random_rbm(8, 9, 1.0, 34);
    let run = |seed| {
        let cfg = PtConfig {
            ensembles: 3,
            steps_per_sample: 20,
            seed,
        };
        let mut pt = ParallelTempering::for_prior(&rbm, Ladder::linear(5).unwrap(), cfg).unwrap();
        (pt.sample(&rbm).clone(), pt.swap_stats().to_vec())
    };
    assert_eq!(run(5), run(5));
    assert_ne!(run(5).0, run(6).0);
}

//! log Z estimators against exact enumeration.
//!
//! Accuracy criterion: `|log Ẑ − log Z| ≤ max(0.05, 4·std_err)`, with the standard error the
//! estimator reports itself (spread over independent runs). Budgets are smaller than the
//! defaults to keep each test to a few seconds.

mod common;

use common::random_rbm;
use gumbolt_core::prior::ExactPartition;
use gumbolt_core::{LogPartitionEstimate, LogPartitionEstimator};
use gumbolt_priors::Rbm;
use gumbolt_samplers::logz::{
    Ais, AisBase, AisConfig, AisSchedule, ExactLogZ, LadderSpec, PtBar, PtBarConfig,
};
use gumbolt_samplers::{Ladder, LadderConfig, Phase, Progress, SamplerError};

fn check(what: &str, est: &LogPartitionEstimate, exact: f64) {
    let err = (est.log_z - exact).abs();
    let tol = (4.0 * est.std_err).max(0.05);
    eprintln!(
        "{what}: estimate {:.4} ± {:.4}, exact {exact:.4}, error {err:.4} (tolerance {tol:.4}), warnings {:?}",
        est.log_z, est.std_err, est.warnings
    );
    assert!(
        est.std_err.is_finite() && est.std_err > 0.0,
        "{what}: std err {}",
        est.std_err
    );
    assert!(
        err <= tol,
        "{what}: |{:.4} − {exact:.4}| = {err:.4} > {tol:.4}",
        est.log_z
    );
    assert!(
        est.std_err < 0.05,
        "{what}: imprecise, std err {}",
        est.std_err
    );
}

fn test_ais() -> Ais {
    Ais::new(AisConfig {
        chains: 128,
        runs: 8,
        schedule: AisSchedule::Adaptive {
            steps: 500,
            pilot_chains: 128,
            pilot_steps: 200,
        },
        base: AisBase::GibbsMarginals {
            chains: 128,
            sweeps: 100,
        },
        target_std_err: None,
        seed: 3,
        ..Default::default()
    })
    .unwrap()
}

fn test_pt() -> PtBar {
    PtBar::new(PtBarConfig {
        runs: 8,
        burn_in: 200,
        sweeps: 3000,
        thin: 1,
        target_std_err: None,
        seed: 3,
        ..Default::default()
    })
    .unwrap()
}

fn models() -> Vec<(&'static str, Rbm)> {
    vec![
        ("12x30 scale 0.5", random_rbm(12, 30, 0.5, 41)),
        ("20x200 scale 0.3", random_rbm(20, 200, 0.3, 42)),
    ]
}

#[test]
fn ais_matches_exact_log_z() {
    for (name, rbm) in models() {
        let exact = rbm.log_partition().unwrap();
        let mut ais = test_ais();
        let est = ais.estimate(&rbm).unwrap();
        assert_eq!(est.method, "ais");
        assert_eq!(est.runs, 8);
        check(&format!("AIS {name}"), &est, exact);
        let rep = ais.report().unwrap();
        assert_eq!(rep.betas.len(), 501);
        assert!(rep.run_ess.iter().all(|&e| e > 10.0));
    }
}

#[test]
fn ais_with_other_bases_and_schedules() {
    let rbm = random_rbm(12, 30, 0.5, 43);
    let exact = rbm.log_partition().unwrap();
    for (base, schedule) in [
        (AisBase::Uniform, AisSchedule::Linear { steps: 1000 }),
        (AisBase::PriorField, AisSchedule::Sm08 { steps: 1000 }),
        (
            AisBase::Custom(vec![0.3; 12]),
            AisSchedule::Linear { steps: 1000 },
        ),
    ] {
        let name = format!("AIS {base:?} {schedule:?}");
        let mut ais = Ais::new(AisConfig {
            chains: 256,
            runs: 8,
            schedule,
            base,
            seed: 5,
            ..Default::default()
        })
        .unwrap();
        check(&name, &ais.estimate(&rbm).unwrap(), exact);
    }
}

#[test]
fn pt_bar_matches_exact_log_z() {
    for (name, rbm) in models() {
        let exact = rbm.log_partition().unwrap();
        let mut pt = test_pt();
        let est = pt.estimate(&rbm).unwrap();
        assert_eq!(est.method, "pt");
        assert_eq!(est.runs, 8);
        check(&format!("PT+BAR {name}"), &est, exact);
        let rep = pt.report().unwrap();
        assert_eq!(rep.swap_rates.len(), rep.ladder.len() - 1);
        assert_eq!(rep.deltas.len(), rep.ladder.len() - 1);
        assert!(
            rep.swap_rates.iter().all(|&a| (0.25..=0.8).contains(&a)),
            "{:?}",
            rep.swap_rates
        );
        assert!(est.warnings.is_empty(), "{:?}", est.warnings);
        // log Ẑ = (n1 + n2) log 2 + Σ Δ_r
        let n = (rbm.n1() + rbm.n2()) as f64;
        assert!((n * 2f64.ln() + rep.deltas.iter().sum::<f64>() - est.log_z).abs() < 1e-9);
    }
}

#[test]
fn pt_bar_extends_production_until_the_target_standard_error() {
    let rbm = random_rbm(12, 30, 0.5, 48);
    let exact = rbm.log_partition().unwrap();
    let target = 0.004;
    let mut pt = PtBar::new(PtBarConfig {
        runs: 8,
        burn_in: 200,
        sweeps: 500,
        target_std_err: Some(target),
        max_sweeps: 50_000,
        seed: 9,
        ..Default::default()
    })
    .unwrap();
    let est = pt.estimate(&rbm).unwrap();
    let rep = pt.report().unwrap();
    eprintln!("{} sweeps, {} stored steps", rep.sweeps, rep.stored_steps);
    assert!(rep.sweeps > 500 && rep.sweeps <= 50_000);
    assert!(
        est.std_err <= target,
        "std err {} above target",
        est.std_err
    );
    check("PT+BAR with target", &est, exact);
}

#[test]
fn estimates_are_reproducible_for_a_seed() {
    let rbm = random_rbm(10, 12, 0.5, 44);
    let small_pt = |threads| {
        PtBar::new(PtBarConfig {
            runs: 5,
            burn_in: 10,
            sweeps: 100,
            ladder: LadderSpec::Fixed(Ladder::linear(4).unwrap()),
            threads,
            ..Default::default()
        })
        .unwrap()
    };
    let p = small_pt(1).estimate(&rbm).unwrap();
    assert_eq!(p, small_pt(1).estimate(&rbm).unwrap());
    // the number of threads does not change the result
    assert_eq!(p, small_pt(3).estimate(&rbm).unwrap());
    let small_ais = |batch, threads| {
        Ais::new(AisConfig {
            chains: 70,
            runs: 2,
            batch,
            schedule: AisSchedule::Linear { steps: 20 },
            threads,
            ..Default::default()
        })
        .unwrap()
    };
    let a = small_ais(512, 1).estimate(&rbm).unwrap();
    assert_eq!(a, small_ais(512, 1).estimate(&rbm).unwrap());
    // neither the batch size nor the number of threads changes the draws
    assert_eq!(a, small_ais(32, 1).estimate(&rbm).unwrap());
    assert_eq!(a, small_ais(32, 3).estimate(&rbm).unwrap());
}

#[test]
fn exact_estimator_wraps_the_prior() {
    let rbm = random_rbm(5, 7, 1.0, 45);
    let e = ExactLogZ.estimate(&rbm).unwrap();
    assert_eq!(e.log_z, rbm.log_partition().unwrap());
    assert_eq!((e.std_err, e.method.as_str()), (0.0, "exact"));
    let big = Rbm::zeros(30, 30);
    assert!(matches!(
        ExactLogZ.estimate(&big),
        Err(SamplerError::Core(_))
    ));
}

#[test]
fn configs_are_validated_at_construction() {
    let bad_ais = [
        AisConfig {
            runs: 1,
            ..Default::default()
        },
        AisConfig {
            chains: 0,
            ..Default::default()
        },
        AisConfig {
            schedule: AisSchedule::Custom(vec![0.0, 0.5, 0.4, 1.0]),
            ..Default::default()
        },
        AisConfig {
            schedule: AisSchedule::Linear { steps: 0 },
            ..Default::default()
        },
    ];
    for c in bad_ais {
        assert!(matches!(
            Ais::new(c),
            Err(SamplerError::InvalidConfig { .. })
        ));
    }
    let bad_pt = [
        PtBarConfig {
            runs: 1,
            ..Default::default()
        },
        PtBarConfig {
            thin: 0,
            ..Default::default()
        },
        PtBarConfig {
            ladder: LadderSpec::Auto(LadderConfig {
                pt_steps: 0,
                ..Default::default()
            }),
            ..Default::default()
        },
    ];
    for c in bad_pt {
        assert!(matches!(
            PtBar::new(c),
            Err(SamplerError::InvalidConfig { .. })
        ));
    }
    // wrong base length is a shape error at estimation time
    let rbm = random_rbm(4, 4, 1.0, 46);
    let mut ais = Ais::new(AisConfig {
        base: AisBase::Custom(vec![0.0; 3]),
        ..Default::default()
    })
    .unwrap();
    assert!(matches!(
        ais.estimate(&rbm),
        Err(SamplerError::Shape { .. })
    ));
}

#[test]
fn a_ladder_that_is_too_coarse_is_reported() {
    let rbm = random_rbm(20, 200, 0.3, 42);
    let mut pt = PtBar::new(PtBarConfig {
        runs: 2,
        burn_in: 10,
        sweeps: 200,
        ladder: LadderSpec::Fixed(Ladder::new(vec![0.0, 1.0]).unwrap()),
        target_std_err: Some(1e-4),
        max_sweeps: 400,
        ..Default::default()
    })
    .unwrap();
    let est = pt.estimate(&rbm).unwrap();
    assert!(
        est.warnings.iter().any(|w| w.contains("swap rate")),
        "{:?}",
        est.warnings
    );
}

#[test]
fn progress_is_reported_per_phase() {
    let rbm = random_rbm(10, 12, 0.5, 47);
    let mut seen: Vec<Progress> = Vec::new();
    let mut pt = PtBar::new(PtBarConfig {
        runs: 2,
        burn_in: 50,
        sweeps: 400,
        ..Default::default()
    })
    .unwrap();
    pt.estimate_with_progress(&rbm, &mut |p| seen.push(p))
        .unwrap();
    // Contiguous segments of one phase: `done` never decreases and (except for the ladder
    // pilot, whose total is an upper bound) ends at `total`. With the default target standard
    // error there may be several Sampling/Solving rounds.
    let mut segments: Vec<Vec<Progress>> = Vec::new();
    for p in &seen {
        match segments.last_mut() {
            Some(seg) if seg[0].phase == p.phase => seg.push(*p),
            _ => segments.push(vec![*p]),
        }
    }
    for phase in [
        Phase::Ladder,
        Phase::BurnIn,
        Phase::Sampling,
        Phase::Solving,
    ] {
        assert!(
            segments.iter().any(|s| s[0].phase == phase),
            "{phase:?} missing"
        );
    }
    for seg in &segments {
        let phase = seg[0].phase;
        assert!(
            seg.windows(2).all(|w| w[0].done <= w[1].done),
            "{phase:?} not monotone"
        );
        assert!(
            seg.iter().all(|p| p.done <= p.total),
            "{phase:?} beyond total"
        );
        if phase != Phase::Ladder {
            let last = seg.last().unwrap();
            assert_eq!(last.done, last.total, "{phase:?} incomplete");
        }
    }
    let mut seen: Vec<Progress> = Vec::new();
    let mut ais = Ais::new(AisConfig {
        chains: 64,
        runs: 2,
        schedule: AisSchedule::Linear { steps: 100 },
        target_std_err: None,
        ..Default::default()
    })
    .unwrap();
    ais.estimate_with_progress(&rbm, &mut |p| seen.push(p))
        .unwrap();
    let ann: Vec<_> = seen
        .iter()
        .filter(|p| p.phase == Phase::Annealing)
        .collect();
    assert!(ann.windows(2).all(|w| w[0].done <= w[1].done));
    let last = ann.last().unwrap();
    // units: chain-steps
    assert_eq!((last.done, last.total), (2 * 64 * 100, 2 * 64 * 100));
    assert!(seen.iter().any(|p| p.phase == Phase::Base));
}

#[test]
fn ais_adds_runs_until_the_target_standard_error() {
    let rbm = random_rbm(12, 30, 0.5, 49);
    let exact = rbm.log_partition().unwrap();
    let target = 0.002;
    let mut ais = Ais::new(AisConfig {
        chains: 32,
        runs: 4,
        schedule: AisSchedule::Linear { steps: 200 },
        target_std_err: Some(target),
        max_runs: 400,
        seed: 2,
        ..Default::default()
    })
    .unwrap();
    let est = ais.estimate(&rbm).unwrap();
    eprintln!("{} runs, std err {}", est.runs, est.std_err);
    assert!(est.runs > 4 && est.runs <= 400);
    assert!(
        est.std_err <= target,
        "std err {} above target",
        est.std_err
    );
    check("AIS with target", &est, exact);
}

#[test]
fn ais_warns_when_the_weights_degenerate() {
    // plain importance sampling from the uniform distribution (one step) on a coupled RBM
    let rbm = random_rbm(20, 200, 0.3, 42);
    let mut ais = Ais::new(AisConfig {
        chains: 1000,
        runs: 2,
        schedule: AisSchedule::Linear { steps: 1 },
        base: AisBase::Uniform,
        target_std_err: None,
        ..Default::default()
    })
    .unwrap();
    let est = ais.estimate(&rbm).unwrap();
    assert!(
        est.warnings
            .iter()
            .any(|w| w.contains("effective sample size")),
        "{:?}",
        est.warnings
    );
}

#[test]
fn non_finite_parameters_are_errors_not_estimates() {
    use gumbolt_core::prior::Parametric;
    let mut rbm = random_rbm(6, 7, 0.5, 50);
    rbm.params_mut()[3] = f32::NAN;
    let mut ais = Ais::new(AisConfig {
        chains: 32,
        runs: 2,
        schedule: AisSchedule::Linear { steps: 10 },
        ..Default::default()
    })
    .unwrap();
    assert!(matches!(
        ais.estimate(&rbm),
        Err(SamplerError::NonFinite(_))
    ));
    let mut pt = PtBar::new(PtBarConfig {
        runs: 2,
        sweeps: 20,
        burn_in: 5,
        ..Default::default()
    })
    .unwrap();
    assert!(matches!(pt.estimate(&rbm), Err(SamplerError::NonFinite(_))));
}

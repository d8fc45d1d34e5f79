//! Golden values: numbers this version computes for fixed seeds, pinned so that an unintended
//! change to any stage (initialisation, RNG streams, the objective, PCD, the optimiser, the log Z
//! estimators, the evaluator) shows up as a failing test rather than as a silently different
//! result a year from now (issue 6, "Reproducibility").
//!
//! The tolerances allow for floating-point reassociation on other CPUs (the f32 kernels
//! dispatch to AVX2 or AVX-512 at run time) but not for a change of algorithm: a different
//! seed, stream split or objective moves these values by far more. If a change is *meant* to
//! alter them, re-derive the values with `cargo test -p gumbolt-models --test golden --
//! --nocapture` and say why in the commit.

use gumbolt_core::prior::ExactPartition;
use gumbolt_core::rng::root_rng;
use gumbolt_core::{LogPartitionEstimator, Mat};
use gumbolt_datasets::load_bundled_mnist;
use gumbolt_models::gumbolt::{GumBolt, GumBoltConfig, Objective, Scratch, Structure};
use gumbolt_models::train::TrainState;
use gumbolt_priors::Rbm;
use gumbolt_samplers::PcdConfig;
use gumbolt_samplers::logz::{Ais, AisConfig, PtBar, PtBarConfig};

fn assert_golden(what: &str, got: f64, want: f64, rel: f64) {
    println!("{what}: {got:.10}");
    if std::env::var_os("GOLDEN_PRINT_ONLY").is_some() {
        return;
    }
    assert!(
        (got - want).abs() <= rel * want.abs().max(1.0),
        "{what}: got {got:.10}, golden {want:.10} (tolerance {rel:e} relative)"
    );
}

#[test]
fn exact_and_estimated_log_partition_of_a_seeded_rbm() {
    let rbm = Rbm::random(10, 12, 0.5, &mut root_rng(7));
    let exact = rbm.log_partition().unwrap();
    assert_golden("exact log Z", exact, GOLDEN_LOG_Z, 1e-9);
    let ais = Ais::new(AisConfig {
        runs: 4,
        target_std_err: None,
        seed: 3,
        ..AisConfig::default()
    })
    .unwrap()
    .estimate(&rbm)
    .unwrap();
    assert_golden("AIS log Z", ais.log_z, GOLDEN_AIS, 1e-6);
    let pt = PtBar::new(PtBarConfig {
        runs: 4,
        target_std_err: None,
        seed: 3,
        ..PtBarConfig::default()
    })
    .unwrap()
    .estimate(&rbm)
    .unwrap();
    assert_golden("PT+BAR log Z", pt.log_z, GOLDEN_PT, 1e-6);
}

/// Twenty training steps of each objective on the first 2000 bundled MNIST images with a small
/// PCD, then the mean loss of the last step and a 50-sample IW estimate on 20 test images.
#[test]
fn short_training_runs_of_every_objective() {
    let data = load_bundled_mnist().unwrap();
    let idx: Vec<usize> = (0..2000).collect();
    let train = data.train.gather(&idx);
    let means: Vec<f32> = (0..train.ncols()).map(|j| train.column(j).mean()).collect();
    let test = data.test.gather(&(0..20).collect::<Vec<_>>());
    for (objective, k, want_loss, want_nll) in GOLDEN_RUNS {
        let config = GumBoltConfig::new(Structure::Nonlinear, train.ncols())
            .with_objective(objective)
            .with_k(k)
            .with_seed(5)
            .with_iterations(20);
        let pcd = PcdConfig::default().chains(20).sweeps(5).seed(6);
        let mut m = GumBolt::with_pcd(config, &means, pcd).unwrap();
        let mut state = TrainState::new(m.config()).unwrap();
        let mut loss = 0.0;
        for t in 0..20u64 {
            let rows: Vec<usize> = (0..100).map(|i| (t as usize * 100 + i) % 2000).collect();
            let x = Mat::from_fn(100, train.ncols(), |r, c| train[(rows[r], c)]);
            loss = m.train_step(&x, t, &mut state).unwrap().parts.loss;
        }
        // The loss of one minibatch is the most sensitive value: with the spike-and-exponential
        // smoothing a rounding-level change can move a unit between the spike and the slab
        // (measured: a different summation order in batch norm moved the dVAE loss by 8e-4).
        assert_golden(&format!("{objective} k={k} loss"), loss, want_loss, 3e-3);
        // log p(x) + log Z: the evaluator without a log Z estimate (pinned above separately).
        let est = m
            .estimate_log_likelihood(
                &test,
                50,
                25,
                0.0,
                &mut root_rng(8),
                &mut Scratch::default(),
            )
            .unwrap();
        assert_golden(
            &format!("{objective} k={k} mean log p(x) + log Z"),
            est.mean(),
            want_nll,
            1e-4,
        );
    }
}

// Derived on 2026-11-25 (gumbolt 0.1.0, x86-64 with AVX-512); re-derived after the lane-wise
// batch-norm sums, and again after the block-Gibbs logits moved to `affine_unpacked` (bias
// first, then fused multiply-adds) and the bias gradients to lane-wise sums: only the dVAE
// values moved beyond their tolerance (the spike-and-exponential smoothing, see above).
const GOLDEN_LOG_Z: f64 = 21.0986073965;
const GOLDEN_AIS: f64 = 21.0982027111;
const GOLDEN_PT: f64 = 21.1006221097;
/// (objective, k, loss of step 20, mean log p(x) + log Z on 20 test images).
const GOLDEN_RUNS: [(Objective, usize, f64, f64); 5] = [
    (Objective::GumBolt, 1, 65.1351538959, -82.0968977729),
    (Objective::GumBolt, 5, 55.6876330942, -77.3407616311),
    (Objective::Dvae, 1, 71.4543800608, -85.3055529347),
    (Objective::DvaePp, 1, 68.1310287656, -81.6055032087),
    (Objective::Reinforce, 1, 82.2552097109, -97.3389817498),
];

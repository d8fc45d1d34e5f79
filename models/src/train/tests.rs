//! Tests of the training loop: bit-exact resumption (PCD and exact negative phases, static and
//! per-minibatch binarisation), non-finite detection, checkpoint errors at the trainer level,
//! monitoring records, and the evaluation helpers.

use std::path::Path;

use gumbolt_core::Mat;
use gumbolt_core::prior::{ExactPartition, PriorExt};
use gumbolt_core::rng::{fill_uniform, root_rng};
use gumbolt_priors::{FactorialBernoulli, Rbm};
use gumbolt_samplers::PcdConfig;
use gumbolt_samplers::logz::{AisConfig, AisSchedule};

use super::*;
use crate::checkpoint::{self, CheckpointError};
use crate::eval::{EvalConfig, GenerateConfig, LogZConfig, LogZMethod, evaluate, generate};
use crate::gumbolt::{ExactPartitionGradient, GumBoltNw, GumBoltRbm, LrSchedule, Noise, Structure};

const D: usize = 12;

/// `n` images of D pixels: noisy copies of 3 prototypes (grey levels or binarised).
fn images(n: usize, seed: u64, grey: bool) -> Dataset {
    let mut rng = root_rng(seed);
    let mut protos = vec![0.0f32; 3 * D];
    fill_uniform(&mut rng, &mut protos);
    let mut u = vec![0.0f32; n * D];
    fill_uniform(&mut rng, &mut u);
    let mut v = Vec::with_capacity(n * D);
    for i in 0..n {
        for j in 0..D {
            let p = if protos[(i % 3) * D + j] > 0.5 {
                0.85
            } else {
                0.1
            };
            v.push(if grey {
                p
            } else {
                (u[i * D + j] < p) as u8 as f32
            });
        }
    }
    Dataset::from_row_major(v, D).unwrap()
}

fn tiny_config(structure: Structure, total: u64) -> GumBoltConfig {
    let mut c = GumBoltConfig::new(structure, D)
        .with_iterations(total)
        .with_k(2)
        .with_seed(4);
    c.latent_units = 4;
    c.hidden_units = 5;
    c.tau = 0.5;
    c
}

fn pcd() -> PcdConfig {
    PcdConfig::default().chains(16).sweeps(3).seed(5)
}

fn trainer_config(monitor: Interval, checkpoint: Interval) -> TrainerConfig {
    TrainerConfig {
        batch_size: 8,
        seed: 3,
        monitor: MonitorConfig {
            interval: monitor,
            k: 3,
            train_images: 20,
            valid_images: 10,
            images_per_pass: 6,
            log_z: LogZConfig::monitoring(),
            seed: 1,
        },
        checkpoint_interval: checkpoint,
    }
}

fn rbm_trainer(train: TrainImages, valid: &Dataset, total: u64, cfg: TrainerConfig) -> RbmTrainer {
    let means = train.dataset().pixel_means();
    let model =
        GumBolt::with_pcd(tiny_config(Structure::Nonlinear2, total), &means, pcd()).unwrap();
    Trainer::new(model, train, Some(valid), cfg).unwrap()
}

/// Everything that defines the state of a trainer, for bit-exact comparisons.
fn full_state<P: GumBoltPrior, G: CheckpointPartition<P>>(
    t: &Trainer<P, G>,
) -> (Vec<Tensor>, String) {
    let mut m = t.model().clone();
    let tensors = state::export_tensors(&mut m, t.state());
    let rest = format!(
        "{:?} {:?} {} {:?} {:?} {} {} {}",
        m.objective().state(),
        t.state().noise_rng(),
        t.state().optimizer().steps(),
        t.order.order(),
        t.order.rng(),
        t.order.position(),
        t.order.epoch(),
        t.iteration()
    );
    (tensors, rest)
}

fn assert_same_state<P: GumBoltPrior, G: CheckpointPartition<P>>(
    a: &Trainer<P, G>,
    b: &Trainer<P, G>,
) {
    let (ta, ra) = full_state(a);
    let (tb, rb) = full_state(b);
    assert_eq!(ra, rb);
    assert_eq!(ta.len(), tb.len());
    for (x, y) in ta.iter().zip(&tb) {
        assert_eq!(x.name, y.name);
        let bits = |t: &Tensor| match &t.data {
            TensorData::F32(v) => v.iter().map(|f| f.to_bits()).collect::<Vec<_>>(),
            TensorData::U32(v) => v.clone(),
        };
        assert!(bits(x) == bits(y), "tensor {} differs", x.name);
    }
}

fn copy_on_checkpoint(at: u64, to: &Path) -> impl FnMut(TrainEvent<'_>) + '_ {
    move |e| {
        if let TrainEvent::Checkpoint(c) = e
            && c.iteration == at
        {
            std::fs::copy(&c.path, to).unwrap();
        }
    }
}

#[test]
fn interrupted_and_resumed_run_is_bit_identical_pcd() {
    let total = 30;
    let valid = images(16, 9, false);
    for grey in [false, true] {
        let train = || {
            let d = images(60, 8, grey);
            if grey {
                TrainImages::Grey(d)
            } else {
                TrainImages::Binary(d)
            }
        };
        // Uninterrupted, monitoring every 7 iterations, no checkpoints.
        let mut a = rbm_trainer(
            train(),
            &valid,
            total,
            trainer_config(Interval::Every(7), Interval::Never),
        );
        let mut records = Vec::new();
        let sa = a
            .run(u64::MAX, &mut |e| {
                if let TrainEvent::Metrics(m) = e {
                    records.push(m.clone());
                }
            })
            .unwrap();
        assert_eq!((sa.start_iteration, sa.end_iteration), (0, total));
        assert!(a.is_finished());
        let its: Vec<u64> = records.iter().map(|r| r.iteration).collect();
        assert_eq!(its, [0, 7, 14, 21, 28, 30]);

        // Interrupted: no monitoring, checkpoints every 10; the run "crashes" at 17 and is
        // resumed from the checkpoint at 10, then stopped again at 23 (end-of-run checkpoint)
        // and resumed once more.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.ckpt");
        let at10 = dir.path().join("at10.ckpt");
        let mut b = rbm_trainer(
            train(),
            &valid,
            total,
            trainer_config(Interval::Never, Interval::Every(10)),
        )
        .with_checkpoint_path(&path);
        let sb = b.run(17, &mut copy_on_checkpoint(10, &at10)).unwrap();
        assert_eq!(sb.checkpoints, 2); // at 10 and at the end of the call (17)
        drop(b);
        let mut c: RbmTrainer = Trainer::resume(&at10, train(), Some(&valid)).unwrap();
        assert_eq!((c.iteration(), c.epoch()), (10, 1));
        c.run(23, &mut |_| {}).unwrap();
        drop(c);
        let mut d: RbmTrainer = Trainer::resume(&at10, train(), Some(&valid)).unwrap();
        assert_eq!(d.iteration(), 23);
        d.run(u64::MAX, &mut |_| {}).unwrap();
        assert_same_state(&a, &d);
        // Running a finished trainer does nothing.
        let s = d.run(u64::MAX, &mut |_| {}).unwrap();
        assert_eq!(
            (s.start_iteration, s.end_iteration, s.checkpoints),
            (total, total, 0)
        );
    }
}

#[test]
fn interrupted_and_resumed_baseline_runs_are_bit_identical() {
    // dVAE, dVAE++ and REINFORCE (NVIL's baseline network and running statistics for k = 1,
    // VIMCO for k = 2) resume exactly like GumBolt.
    use crate::gumbolt::Objective;
    let total = 20;
    let valid = images(16, 9, false);
    for (objective, k, structure) in [
        (Objective::Dvae, 2, Structure::Nonlinear2),
        (Objective::DvaePp, 1, Structure::Linear2),
        (Objective::Reinforce, 1, Structure::Nonlinear),
        (Objective::Reinforce, 2, Structure::Nonlinear2),
    ] {
        let train = || TrainImages::Binary(images(60, 8, false));
        let make = |cfg: TrainerConfig| {
            let mut c = tiny_config(structure, total).with_k(k);
            c.objective = objective;
            let means = train().dataset().pixel_means();
            let model = GumBolt::with_pcd(c, &means, pcd()).unwrap();
            Trainer::new(model, train(), Some(&valid), cfg).unwrap()
        };
        let mut a = make(trainer_config(Interval::Never, Interval::Never));
        a.run(u64::MAX, &mut |_| {}).unwrap();
        if objective == Objective::Reinforce && k == 1 {
            let nvil = a
                .model()
                .objective()
                .downcast_ref::<crate::gumbolt::ReinforceObjective>()
                .and_then(|r| r.baseline())
                .unwrap();
            assert_eq!(nvil.stats().updates(), total);
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.ckpt");
        let at10 = dir.path().join("at10.ckpt");
        let mut b =
            make(trainer_config(Interval::Never, Interval::Every(10))).with_checkpoint_path(&path);
        b.run(13, &mut copy_on_checkpoint(10, &at10)).unwrap();
        drop(b);
        let mut c: RbmTrainer = Trainer::resume(&at10, train(), Some(&valid)).unwrap();
        assert_eq!(c.model().config().objective, objective);
        c.run(u64::MAX, &mut |_| {}).unwrap();
        assert_same_state(&a, &c);
    }
}

#[test]
fn resumed_nw_and_exact_rbm_runs_are_bit_identical() {
    let total = 16;
    let train = || TrainImages::Binary(images(40, 2, false));
    let valid = images(10, 3, false);
    let means = train().dataset().pixel_means();
    let dir = tempfile::tempdir().unwrap();

    let nw = || {
        let m: GumBoltNw = GumBolt::nw(tiny_config(Structure::Nonlinear, total), &means).unwrap();
        Trainer::new(
            m,
            train(),
            Some(&valid),
            trainer_config(Interval::Times(3), Interval::Never),
        )
        .unwrap()
    };
    let mut a = nw();
    a.run(total, &mut |_| {}).unwrap();
    let p = dir.path().join("nw.ckpt");
    let mut b = nw().with_checkpoint_path(&p);
    b.run(5, &mut |_| {}).unwrap();
    let mut b: NwTrainer = Trainer::resume(&p, train(), Some(&valid)).unwrap();
    b.run(total, &mut |_| {}).unwrap();
    assert_same_state(&a, &b);

    let exact = || {
        let c = tiny_config(Structure::Linear, total);
        let m = GumBolt::new(
            c.clone(),
            &means,
            Rbm::for_config(&c),
            ExactPartitionGradient::new(),
        )
        .unwrap();
        Trainer::new(
            m,
            train(),
            None,
            trainer_config(Interval::Never, Interval::Never),
        )
        .unwrap()
    };
    let mut a = exact();
    a.run(total, &mut |_| {}).unwrap();
    let p = dir.path().join("exact.ckpt");
    let mut b = exact().with_checkpoint_path(&p);
    b.run(9, &mut |_| {}).unwrap();
    let mut b: Trainer<Rbm, ExactPartitionGradient> = Trainer::resume(&p, train(), None).unwrap();
    b.run(total, &mut |_| {}).unwrap();
    assert_same_state(&a, &b);
    // The loaded model equals the trainer's.
    let m: GumBolt<Rbm, ExactPartitionGradient> = load_model(&p).unwrap();
    assert_eq!(m.prior(), b.model().prior());
}

#[test]
fn checkpoint_errors_at_the_trainer_level_name_the_file() {
    let total = 12;
    let valid = images(10, 3, false);
    let train = || TrainImages::Binary(images(40, 2, false));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("good.ckpt");
    let mut t = rbm_trainer(
        train(),
        &valid,
        total,
        trainer_config(Interval::Never, Interval::Never),
    )
    .with_checkpoint_path(&path);
    t.run(4, &mut |_| {}).unwrap();
    let good = std::fs::read(&path).unwrap();
    type Rt = RbmTrainer;
    let resume = |p: &Path| Rt::resume(p, train(), Some(&valid)).map(|_| ());
    let names = |e: &TrainError, f: &str| e.to_string().contains(f);

    // Truncated.
    let p = dir.path().join("trunc.ckpt");
    std::fs::write(&p, &good[..good.len() / 2]).unwrap();
    let e = resume(&p).unwrap_err();
    assert!(
        matches!(e, TrainError::Checkpoint(CheckpointError::Truncated { .. }))
            && names(&e, "trunc.ckpt"),
        "{e}"
    );
    // Corrupt (one flipped payload bit).
    let p = dir.path().join("flip.ckpt");
    let mut bad = good.clone();
    let i = bad.len() - 100;
    bad[i] ^= 1;
    std::fs::write(&p, &bad).unwrap();
    let e = resume(&p).unwrap_err();
    assert!(
        matches!(e, TrainError::Checkpoint(CheckpointError::Corrupt { .. }))
            && names(&e, "flip.ckpt"),
        "{e}"
    );
    // Not a checkpoint.
    let p = dir.path().join("text.ckpt");
    std::fs::write(&p, "hello").unwrap();
    assert!(matches!(
        resume(&p),
        Err(TrainError::Checkpoint(
            CheckpointError::NotACheckpoint { .. }
        ))
    ));
    // Wrong model kind.
    let e = NwTrainer::resume(&path, train(), Some(&valid)).unwrap_err();
    assert!(
        matches!(e, TrainError::Checkpoint(CheckpointError::WrongStructure { ref reason, .. }) if reason.contains("gumbolt/rbm/pcd")),
        "{e}"
    );
    let e = load_model::<FactorialBernoulli, ExactPartitionGradient>(&path).unwrap_err();
    assert!(
        matches!(e, CheckpointError::WrongStructure { .. }) && e.to_string().contains("good.ckpt")
    );
    // Other training data.
    let e = Rt::resume(
        &path,
        TrainImages::Binary(images(40, 77, false)),
        Some(&valid),
    )
    .unwrap_err();
    assert!(
        matches!(e, TrainError::Checkpoint(CheckpointError::WrongStructure { ref reason, .. }) if reason.contains("trained on")),
        "{e}"
    );
    let e = Rt::resume(&path, TrainImages::Grey(images(40, 2, false)), Some(&valid)).unwrap_err();
    assert!(
        matches!(
            e,
            TrainError::Checkpoint(CheckpointError::WrongStructure { .. })
        ),
        "{e}"
    );
    // A well-formed checkpoint with a missing or mis-sized tensor, or an extra one.
    let raw = checkpoint::read(&path).unwrap();
    let rewrite = |name: &str, f: &dyn Fn(&mut Vec<Tensor>)| {
        let mut tensors = raw.tensors.clone();
        f(&mut tensors);
        let p = dir.path().join(name);
        checkpoint::write_atomic(&p, &raw.meta, &tensors).unwrap();
        p
    };
    let p = rewrite("missing.ckpt", &|t| {
        t.retain(|t| t.name != "param/decoder.0.kernel")
    });
    let e = resume(&p).unwrap_err();
    assert!(
        e.to_string().contains("param/decoder.0.kernel") && names(&e, "missing.ckpt"),
        "{e}"
    );
    let p = rewrite("short.ckpt", &|t| {
        let x = t
            .iter_mut()
            .find(|t| t.name == "bn/encoder1.bn1.moving_var")
            .unwrap();
        *x = Tensor::f32(x.name.clone(), vec![1.0; 3]);
    });
    let e = resume(&p).unwrap_err();
    assert!(
        matches!(
            e,
            TrainError::Checkpoint(CheckpointError::WrongStructure { .. })
        ),
        "{e}"
    );
    assert!(e.to_string().contains("moving_var"), "{e}");
    let p = rewrite("chains.ckpt", &|t| {
        let x = t.iter_mut().find(|t| t.name == "pcd.chains").unwrap();
        *x = Tensor::f32("pcd.chains", vec![0.0; 8 * 8]).with_shape(vec![8, 8]);
    });
    let e = resume(&p).unwrap_err();
    assert!(e.to_string().contains("pcd.chains"), "{e}");
    let p = rewrite("extra.ckpt", &|t| {
        t.push(Tensor::f32("surprise", vec![1.0]))
    });
    let e = resume(&p).unwrap_err();
    assert!(e.to_string().contains("surprise"), "{e}");
    // The intact checkpoint still resumes; every configuration value round-trips exactly
    // (serde_json's `float_roundtrip`: τ = 1/7, learning rates, BN momentum, ...).
    resume(&path).unwrap();
    let meta = read_meta(&path).unwrap();
    assert_eq!(meta.iteration, 4);
    assert_eq!(&meta.model, t.model().config());
    let mut odd = tiny_config(Structure::Nonlinear2, 10);
    odd.tau = 1.0 / 7.0;
    odd.train.lr = LrSchedule::reference(3e-3 / 7.0);
    odd.train.kl_warmup_fraction = 0.1 + 0.2;
    odd.batch_norm.momentum = 0.8;
    let json = serde_json::to_string(&odd).unwrap();
    let back: GumBoltConfig = serde_json::from_str(&json).unwrap();
    assert_eq!(back, odd);
    assert_eq!(back.tau.to_bits(), (1.0f64 / 7.0).to_bits());
}

#[test]
fn non_finite_loss_or_parameters_stop_the_run_and_keep_the_checkpoint() {
    let total = 10;
    let valid = images(10, 3, false);
    let train = || TrainImages::Binary(images(40, 2, false));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.ckpt");

    // An infinite learning rate (f64::MAX becomes +inf in f32): the first loss is finite, the
    // updated parameters are not.
    let means = train().dataset().pixel_means();
    let mut cfg = tiny_config(Structure::Nonlinear, total);
    cfg.train.lr = LrSchedule::constant(f64::MAX);
    let m = GumBolt::with_pcd(cfg, &means, pcd()).unwrap();
    let mut t = Trainer::new(
        m,
        train(),
        Some(&valid),
        trainer_config(Interval::Never, Interval::Never),
    )
    .unwrap();
    let e = t.run(total, &mut |_| {}).unwrap_err();
    assert!(
        matches!(e, TrainError::NonFinite { ref what, iteration: 0 } if what.starts_with("parameter encoder0.")),
        "{e}"
    );
    assert!(e.to_string().contains("iteration 0"));

    // A model that trains, checkpoints, then gets a NaN: the error names the loss and the
    // iteration and the checkpoint is untouched; saving is refused.
    let mut t = rbm_trainer(
        train(),
        &valid,
        total,
        trainer_config(Interval::Never, Interval::Every(3)),
    )
    .with_checkpoint_path(&path);
    t.run(4, &mut |_| {}).unwrap();
    let before = std::fs::read(&path).unwrap();
    t.model_mut().decoder_mut().dense_mut(0).bias_mut()[1] = f32::NAN;
    let e = t.run(total, &mut |_| {}).unwrap_err();
    assert!(
        matches!(e, TrainError::NonFinite { ref what, iteration: 4 } if what == "loss"),
        "{e}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
    let e = t.save_checkpoint(&path).unwrap_err();
    assert!(
        matches!(e, TrainError::NonFinite { ref what, .. } if what.contains("decoder.1.bias")),
        "{e}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn monitoring_records_match_direct_objectives_and_serialise() {
    let total = 12;
    let valid = images(10, 3, false);
    let data = images(40, 2, false);
    let mut cfg = trainer_config(Interval::Times(2), Interval::Never);
    cfg.monitor.train_images = 7;
    let mut t = rbm_trainer(TrainImages::Binary(data.clone()), &valid, total, cfg);
    let mut recs = Vec::new();
    let mut steps = 0;
    let mut starts = 0;
    t.run(u64::MAX, &mut |e| match e {
        TrainEvent::Metrics(m) => recs.push(m.clone()),
        TrainEvent::Step(s) => {
            steps += 1;
            assert_eq!(s.iteration, steps);
            assert!(s.seconds > 0.0 && s.parts.loss.is_finite());
        }
        TrainEvent::MonitorStart { .. } => starts += 1,
        TrainEvent::Checkpoint(_) => panic!("no checkpoint path"),
    })
    .unwrap();
    assert_eq!(steps, total);
    assert_eq!(
        recs.iter().map(|r| r.iteration).collect::<Vec<_>>(),
        [0, 6, 12]
    );
    assert_eq!(starts, 3);
    let last = recs.last().unwrap();
    assert_eq!(
        (last.train_images, last.valid_images, last.steps_in_interval),
        (7, 10, 6)
    );
    assert_eq!(last.log_z_method, "exact");
    assert!(recs[0].mean_loss.is_none() && last.mean_loss.is_some() && last.sec_per_iter.is_some());
    // The record equals the objectives computed directly with the same noise and log Z.
    let m = t.model().clone();
    let mut sc = crate::gumbolt::Scratch::default();
    let log_z = m.prior().log_partition().unwrap();
    assert_eq!(last.log_z, log_z);
    let x = data.gather(&spread(40, 7));
    let mut rng = gumbolt_core::rng::streams(1, 2).remove(0);
    let noise6: Noise = m.draw_noise(&mut rng, 6 * 3);
    let f = m
        .relaxed_objective(&x.rows(0, 6).clone_owned(), &noise6, 0.5, log_z, &mut sc)
        .unwrap();
    let l = m
        .discrete_objective(&x.rows(0, 6).clone_owned(), &noise6, log_z, &mut sc)
        .unwrap();
    let noise1 = m.draw_noise(&mut rng, 3);
    let f1 = m
        .relaxed_objective(&x.rows(6, 1).clone_owned(), &noise1, 0.5, log_z, &mut sc)
        .unwrap();
    let l1 = m
        .discrete_objective(&x.rows(6, 1).clone_owned(), &noise1, log_z, &mut sc)
        .unwrap();
    let fm = (f.iter().sum::<f64>() + f1[0]) / 7.0;
    let lm = (l.iter().sum::<f64>() + l1[0]) / 7.0;
    assert!(
        (last.train_relaxed - fm).abs() < 1e-9,
        "{} vs {fm}",
        last.train_relaxed
    );
    assert!(
        (last.train_discrete - lm).abs() < 1e-9,
        "{} vs {lm}",
        last.train_discrete
    );
    // L_k is a lower bound on log p(x): with this tiny model it must be finite and negative.
    assert!(last.train_discrete < 0.0 && last.valid_discrete.unwrap() < 0.0);
    let line = serde_json::to_string(last).unwrap();
    assert!(!line.contains('\n'));
    let back: MetricsRecord = serde_json::from_str(&line).unwrap();
    assert_eq!(&back, last);
}

#[test]
fn trainer_configuration_errors() {
    let valid = images(10, 3, false);
    let train = images(40, 2, false);
    let means = train.pixel_means();
    let model = || GumBolt::with_pcd(tiny_config(Structure::Nonlinear, 5), &means, pcd()).unwrap();
    let mut cfg = trainer_config(Interval::Never, Interval::Never);
    cfg.batch_size = 41;
    let e = Trainer::new(
        model(),
        TrainImages::Binary(train.clone()),
        None,
        cfg.clone(),
    )
    .unwrap_err();
    assert!(matches!(
        e,
        TrainError::InvalidConfig {
            name: "batch_size",
            ..
        }
    ));
    cfg.batch_size = 8;
    cfg.monitor.k = 0;
    assert!(
        Trainer::new(
            model(),
            TrainImages::Binary(train.clone()),
            None,
            cfg.clone()
        )
        .is_err()
    );
    cfg.monitor.k = 2;
    let wide = Dataset::from_row_major(vec![0.0; 3 * (D + 1)], D + 1).unwrap();
    assert!(
        Trainer::new(
            model(),
            TrainImages::Binary(wide.clone()),
            None,
            cfg.clone()
        )
        .is_err()
    );
    assert!(
        Trainer::new(
            model(),
            TrainImages::Binary(train.clone()),
            Some(&wide),
            cfg.clone()
        )
        .is_err()
    );
    assert!(Trainer::new(model(), TrainImages::Binary(train), Some(&valid), cfg).is_ok());
    assert_eq!(Interval::Times(3).period(10), Some(4));
    assert_eq!(Interval::Times(0).period(10), None);
    assert_eq!(Interval::Every(0).period(10), Some(1));
    assert_eq!(spread(10, 4), [0, 2, 5, 7]);
    assert_eq!(spread(3, 5), [0, 1, 2]);
    assert_eq!(median(&mut [3.0, 1.0, 2.0, 10.0]), Some(2.5));
}

/// A trained tiny model whose prior (2×2 RBM) and posterior can be enumerated.
fn enumerable() -> (GumBolt<Rbm, ExactPartitionGradient>, Dataset) {
    let data = images(40, 2, false);
    let mut c = tiny_config(Structure::Nonlinear, 60);
    c.latent_units = 4;
    c.k = 1;
    let means = data.pixel_means();
    let m = GumBolt::new(
        c.clone(),
        &means,
        Rbm::for_config(&c),
        ExactPartitionGradient::new(),
    )
    .unwrap();
    let mut t = Trainer::new(
        m,
        TrainImages::Binary(data.clone()),
        None,
        trainer_config(Interval::Never, Interval::Never),
    )
    .unwrap();
    t.run(u64::MAX, &mut |_| {}).unwrap();
    (t.into_model(), data)
}

/// Exact `log p(x) = logsumexp_z [log p(x|z) − E(z)] − log Z` over all 16 latent states.
fn exact_log_px(m: &mut GumBolt<Rbm, ExactPartitionGradient>, x: &Mat) -> Vec<f64> {
    let nz = 16;
    let z = Mat::from_fn(nz, 4, |r, j| ((r >> j) & 1) as f32);
    let log_z = m.prior().log_partition().unwrap();
    let neg_e: Vec<f64> = m.prior().energies(&z).iter().map(|e| -e).collect();
    (0..x.nrows())
        .map(|i| {
            let xi = Mat::from_fn(nz, D, |_, j| x[(i, j)]);
            let lp = m.log_px_given_z(&xi, &z).unwrap();
            let terms: Vec<f64> = lp.iter().zip(&neg_e).map(|(a, b)| a + b).collect();
            gumbolt_core::numerics::log_sum_exp(&terms) - log_z
        })
        .collect()
}

#[test]
fn evaluation_matches_exact_likelihood_and_ignores_thread_count() {
    let (mut m, data) = enumerable();
    let test = images(23, 11, false);
    let log_z = crate::eval::estimate_log_z(m.prior(), &LogZConfig::pt_bar(), &mut |_| {}).unwrap();
    assert_eq!((log_z.method.as_str(), log_z.std), ("exact", 0.0));
    let cfg = EvalConfig {
        samples: 3000,
        samples_per_pass: 700,
        images_per_chunk: 4,
        threads: 1,
        seed: 5,
    };
    let mut calls = Vec::new();
    let r1 = evaluate(&m, &test, &cfg, &log_z, &mut |p| calls.push(p.done)).unwrap();
    assert_eq!(calls.first(), Some(&0));
    assert_eq!(calls.last(), Some(&23));
    assert!(calls.windows(2).all(|w| w[0] <= w[1]));
    let r3 = evaluate(&m, &test, &cfg.clone().with_threads(3), &log_z, &mut |_| {}).unwrap();
    assert_eq!(r3.threads, 3);
    let bits =
        |r: &crate::eval::EvalReport| r.log_px.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&r1), bits(&r3));
    assert_eq!(r1.test_nll.to_bits(), r3.test_nll.to_bits());
    // Against the exact log-likelihood (the IW estimate is biased low by O(1/S)).
    let exact = exact_log_px(&mut m, &test.gather(&(0..23).collect::<Vec<_>>()));
    for (i, (e, x)) in r1.log_px.iter().zip(&exact).enumerate() {
        assert!(
            (e - x).abs() < 0.05 + 5.0 * r1.mean_iw_std_err,
            "image {i}: {e} vs exact {x}"
        );
    }
    let mean_exact = -exact.iter().sum::<f64>() / 23.0;
    assert!(
        (r1.test_nll - mean_exact).abs() < 0.02,
        "{} vs {mean_exact}",
        r1.test_nll
    );
    let sd = (exact.iter().map(|v| (v + mean_exact).powi(2)).sum::<f64>() / 22.0).sqrt();
    assert!((r1.test_nll_sem - sd / 23f64.sqrt()).abs() < 0.01);
    assert_eq!(
        (r1.n, r1.samples, r1.log_z_method.as_str()),
        (23, 3000, "exact")
    );
    // Errors.
    assert!(evaluate(&m, &test, &cfg.clone().with_samples(0), &log_z, &mut |_| {}).is_err());
    let empty = Dataset::from_row_major(vec![], D).unwrap();
    assert!(evaluate(&m, &empty, &cfg, &log_z, &mut |_| {}).is_err());
    let _ = data;
}

#[test]
fn log_z_helper_methods_agree_on_a_small_rbm() {
    let mut rng = root_rng(3);
    let rbm = Rbm::random(6, 8, 0.8, &mut rng);
    let exact = rbm.log_partition().unwrap();
    let forced = |method| LogZConfig {
        method,
        prefer_exact: false,
    };
    let e = crate::eval::estimate_log_z(&rbm, &forced(LogZMethod::Exact), &mut |_| {}).unwrap();
    assert_eq!(e.value, exact);
    let ais = AisConfig {
        chains: 256,
        runs: 4,
        schedule: AisSchedule::Linear { steps: 500 },
        target_std_err: None,
        ..AisConfig::default()
    };
    let a = crate::eval::estimate_log_z(&rbm, &forced(LogZMethod::Ais(ais)), &mut |_| {}).unwrap();
    assert_eq!(a.method, "ais");
    assert!(
        (a.value - exact).abs() < 0.05 + 4.0 * a.std,
        "{} vs {exact}",
        a.value
    );
    let m =
        crate::eval::estimate_log_z(&rbm, &forced(LogZConfig::monitoring().method), &mut |_| {})
            .unwrap();
    assert!((m.value - exact).abs() < 0.1, "{} vs {exact}", m.value);
    let big = Rbm::zeros(30, 30);
    assert!(crate::eval::estimate_log_z(&big, &forced(LogZMethod::Exact), &mut |_| {}).is_err());
    let lz = crate::eval::LogZ::new(1.5, 0.1);
    assert_eq!((lz.value, lz.std), (1.5, 0.1));
}

#[test]
fn generation_decodes_binary_prior_samples() {
    let total = 6;
    let valid = images(10, 3, false);
    let mut t = rbm_trainer(
        TrainImages::Binary(images(40, 2, false)),
        &valid,
        total,
        trainer_config(Interval::Never, Interval::Never),
    );
    t.run(u64::MAX, &mut |_| {}).unwrap();
    let mut m: GumBoltRbm = t.into_model();
    for from_chains in [true, false] {
        let cfg = GenerateConfig {
            n: 37,
            sweeps: 20,
            from_chains,
            seed: 2,
        };
        let g = generate(&mut m, &cfg).unwrap();
        assert_eq!(g.latents.shape(), (37, 8));
        assert!(g.latents.iter().all(|&v| v == 0.0 || v == 1.0));
        assert_eq!(g.probabilities.shape(), (37, D));
        assert!(g.probabilities.iter().all(|&p| p > 0.0 && p < 1.0));
        let imgs = g.images();
        assert_eq!((imgs.len(), imgs[3].len()), (37, D));
        assert_eq!(imgs[3][5], g.probabilities[(3, 5)]);
        // Reproducible.
        assert_eq!(generate(&mut m, &cfg).unwrap(), g);
    }
    assert!(
        generate(
            &mut m,
            &GenerateConfig {
                n: 0,
                ..GenerateConfig::default()
            }
        )
        .is_err()
    );
}

/// A tiny model whose prior is a Boltzmann machine on a non-bipartite graph of 8 units (two
/// layers of 4): a ring with chords, so triangles join units of one layer and of both.
fn graph_config(objective: crate::gumbolt::Objective, total: u64) -> GumBoltConfig {
    let mut c = tiny_config(Structure::Nonlinear2, total);
    c.objective = objective;
    let edges = vec![
        (0, 1),
        (1, 2),
        (2, 0),
        (2, 3),
        (3, 4),
        (4, 5),
        (5, 3),
        (5, 6),
        (6, 7),
        (7, 0),
        (1, 5),
    ];
    c.prior_graph = Some(crate::gumbolt::PriorGraph::Edges {
        nodes: 8,
        edges,
        source: "test".into(),
    });
    c
}

#[test]
fn graph_prior_run_resumes_bit_identically_and_evaluates() {
    use crate::gumbolt::{GumBoltGraph, Objective};
    type GraphTrainer = Trainer<
        gumbolt_priors::SparseBm,
        crate::gumbolt::SampledPartition<gumbolt_samplers::ColourPcd>,
    >;
    let total = 20;
    let valid = images(16, 9, false);
    let train = || TrainImages::Binary(images(60, 8, false));
    let means = train().dataset().pixel_means();
    let make = |cfg| -> GraphTrainer {
        let model =
            GumBoltGraph::with_graph_pcd(graph_config(Objective::GumBolt, total), &means, pcd())
                .unwrap();
        Trainer::new(model, train(), Some(&valid), cfg).unwrap()
    };
    let mut a = make(trainer_config(Interval::Every(7), Interval::Never));
    let mut records = Vec::new();
    a.run(u64::MAX, &mut |e| {
        if let TrainEvent::Metrics(m) = e {
            records.push(m.clone());
        }
    })
    .unwrap();
    assert!(!records.is_empty());
    // The couplings moved away from zero.
    let w = &a.model().prior().w().to_vec();
    assert!(w.iter().any(|&x| x != 0.0));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.ckpt");
    let at10 = dir.path().join("at10.ckpt");
    let mut b =
        make(trainer_config(Interval::Never, Interval::Every(10))).with_checkpoint_path(&path);
    b.run(15, &mut copy_on_checkpoint(10, &at10)).unwrap();
    drop(b);
    let mut c: GraphTrainer = Trainer::resume(&at10, train(), Some(&valid)).unwrap();
    assert_eq!(c.iteration(), 10);
    c.run(u64::MAX, &mut |_| {}).unwrap();
    assert_same_state(&a, &c);
    // An RBM trainer refuses the graph checkpoint.
    assert!(
        Trainer::<Rbm, crate::gumbolt::SampledPartition<gumbolt_samplers::Pcd>>::resume(
            &at10,
            train(),
            Some(&valid)
        )
        .is_err()
    );

    // log Z: exact (8 units) against the PT and AIS estimates over colour classes.
    let prior = c.model().prior();
    let exact = prior.log_partition().unwrap();
    let forced = |method| LogZConfig {
        method,
        prefer_exact: false,
    };
    let pt = crate::eval::estimate_log_z(
        prior,
        &forced(LogZMethod::PtBar(gumbolt_samplers::PtBarConfig {
            runs: 4,
            sweeps: 2000,
            burn_in: 200,
            ..Default::default()
        })),
        &mut |_| {},
    )
    .unwrap();
    assert!(
        (pt.value - exact).abs() < 4.0 * pt.std + 1e-3,
        "{pt:?} vs {exact}"
    );
    let ais =
        crate::eval::estimate_log_z(prior, &forced(LogZConfig::monitoring().method), &mut |_| {})
            .unwrap();
    assert!(
        (ais.value - exact).abs() < 4.0 * ais.std + 1e-3,
        "{ais:?} vs {exact}"
    );
    // Evaluation and generation.
    let lz = crate::eval::estimate_log_z(prior, &LogZConfig::pt_bar(), &mut |_| {}).unwrap();
    assert_eq!(lz.method, "exact");
    let report = evaluate(
        c.model(),
        &valid,
        &EvalConfig::default().with_samples(20).with_threads(1),
        &lz,
        &mut |_| {},
    )
    .unwrap();
    assert!(report.test_nll.is_finite() && report.test_nll > 0.0);
    let mut m = c.model().clone();
    let g = generate(
        &mut m,
        &GenerateConfig {
            n: 5,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(g.latents.shape(), (5, 8));
    assert!(g.latents.iter().all(|&v| v == 0.0 || v == 1.0));
}

#[test]
fn two_layer_dvae_refuses_couplings_inside_a_layer() {
    use crate::gumbolt::{GumBoltGraph, Objective};
    let means = images(10, 1, false).pixel_means();
    for o in [Objective::Dvae, Objective::DvaePp] {
        let err = GumBoltGraph::with_graph_pcd(graph_config(o, 5), &means, pcd()).unwrap_err();
        assert!(err.to_string().contains("inside a layer"), "{err}");
    }
    // REINFORCE and GumBolt hold for any prior; one-layer dVAE's closed-form KL too.
    assert!(
        GumBoltGraph::with_graph_pcd(graph_config(Objective::Reinforce, 5), &means, pcd()).is_ok()
    );
    let mut one = graph_config(Objective::Dvae, 5);
    one.structure = Structure::Nonlinear;
    one.latent_units = 8;
    assert!(GumBoltGraph::with_graph_pcd(one, &means, pcd()).is_ok());
    // A bipartite graph whose sides are the layers is accepted by the two-layer KL.
    let mut bip = graph_config(Objective::Dvae, 5);
    bip.prior_graph = Some(crate::gumbolt::PriorGraph::Edges {
        nodes: 8,
        edges: vec![(0, 4), (1, 5), (2, 6), (3, 7), (0, 7)],
        source: "test".into(),
    });
    assert!(GumBoltGraph::with_graph_pcd(bip, &means, pcd()).is_ok());
    // The node count must be L·latent_units.
    let mut wrong = graph_config(Objective::GumBolt, 5);
    wrong.latent_units = 5;
    let err = GumBoltGraph::with_graph_pcd(wrong, &means, pcd()).unwrap_err();
    assert!(err.to_string().contains("8 nodes"), "{err}");
}

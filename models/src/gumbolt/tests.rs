//! Tests of the GumBolt model: the whole objective's gradient against finite differences, the
//! τ → 0 limit (docs/algorithms.md §8 T3), the importance-weighted estimators against exact
//! enumeration, schedules, configuration errors and a smoke run on MNIST.

use gumbolt_core::Mat;
use gumbolt_core::linalg::Precision;
use gumbolt_core::numerics::log_sum_exp;
use gumbolt_core::prior::{ExactPartition, PriorExt};
use gumbolt_core::rng::{fill_uniform, root_rng};
use gumbolt_estimators::noise_logit;
use gumbolt_priors::{FactorialBernoulli, Rbm};

use super::*;
use crate::nn::testutil::{check_close, fd_grad};
use crate::nn::{Mlp, MlpConfig, Mode, Trainable};
use crate::train::TrainState;

/// A binary `[rows, cols]` matrix with P(1) = 0.4.
pub(super) fn binary(rows: usize, cols: usize, seed: u64) -> Mat {
    let mut v = vec![0.0f32; rows * cols];
    fill_uniform(&mut root_rng(seed), &mut v);
    Mat::from_vec(
        rows,
        cols,
        v.into_iter().map(|u| (u < 0.4) as u8 as f32).collect(),
    )
}

pub(super) fn means(d: usize) -> Vec<f32> {
    (0..d)
        .map(|j| [0.1f32, 0.35, 0.6, 0.0005, 0.9, 0.999][j % 6])
        .collect()
}

/// A tiny configuration: 6 pixels, 4 latent units per layer, hidden width 3, τ = 0.5, and a
/// large weight decay so its gradient is visible in finite differences.
pub(super) fn tiny(structure: Structure, k: usize) -> GumBoltConfig {
    let mut c = GumBoltConfig::new(structure, 6);
    c.latent_units = 4;
    c.hidden_units = 3;
    c.k = k;
    c.tau = 0.5;
    c.seed = 11;
    c.train.adam.weight_decay = 0.05;
    c
}

/// Moves every non-kernel tensor (biases, BN γ and β, prior fields) away from its initial
/// value so that every term of the gradient matters.
pub(super) fn perturb<M: Trainable>(m: &mut M) {
    let mut k = 0.0f32;
    for p in m.params_mut() {
        if p.name != "kernel" {
            for v in p.value.iter_mut() {
                k += 1.0;
                *v += 0.3 * (k * 0.77).sin();
            }
        }
    }
}

pub(super) fn rbm_model(
    config: GumBoltConfig,
    seed: u64,
) -> GumBolt<Rbm, SampledPartition<FixedSamples>> {
    let (n1, n2) = config.rbm_sides();
    let mut rng = root_rng(seed);
    let rbm = Rbm::random(n1, n2, 0.5, &mut rng);
    let samples = binary(5, n1 + n2, seed + 1);
    let d = config.pixels;
    let mut m = GumBolt::new(
        config,
        &means(d),
        rbm,
        SampledPartition::new(FixedSamples(samples)),
    )
    .unwrap();
    perturb(&mut m);
    m
}

/// Compares the hand-written gradient of [`GumBolt::loss_and_grad`] (plus the weight decay λθ
/// that the optimiser adds) with central differences of the loss, tensor by tensor.
pub(super) fn check_whole_gradient<P, G>(
    base: &GumBolt<P, G>,
    x: &Mat,
    noise: &Noise,
    beta: f64,
    what: &str,
) where
    P: TrainablePrior,
    G: PartitionGradient<P> + Clone,
{
    let mut m = base.clone();
    let parts = m.loss_and_grad(x, noise, beta).unwrap();
    assert!(parts.loss.is_finite());
    // Deterministic: a second evaluation gives the same loss and gradients (no accumulation).
    let mut m2 = base.clone();
    m2.loss_and_grad(x, noise, beta).unwrap();
    let first = m2.loss_and_grad(x, noise, beta).unwrap();
    assert_eq!(first.loss, parts.loss, "{what}: loss not deterministic");
    let lambda = base.config().train.adam.weight_decay as f32;
    let analytic = m.grads_with_decay(lambda);
    let second: Vec<Vec<f32>> = m2.params_mut().iter().map(|p| p.grad.to_vec()).collect();
    let first_grads: Vec<Vec<f32>> = m.params_mut().iter().map(|p| p.grad.to_vec()).collect();
    assert_eq!(
        first_grads, second,
        "{what}: gradients accumulate across calls"
    );
    for (t, (name, an)) in analytic.iter().enumerate() {
        let fd = fd_grad(an.len(), 1e-2, |i, h| {
            let mut p = base.clone();
            p.params_mut()[t].value[i] += h;
            p.loss_and_grad(x, noise, beta).unwrap().loss
        });
        check_close(an, &fd, 3e-3, 1e-3, &format!("{what}: tensor {t} ({name})"));
        // A dense bias followed by a training-mode batch norm has an exactly zero gradient (the
        // batch mean removes it); every other tensor must have a non-trivial one.
        let before_bn = analytic.get(t + 1).is_some_and(|(n, _)| *n == "gamma");
        assert!(
            before_bn || an.iter().any(|g| g.abs() > 1e-4),
            "{what}: tensor {t} ({name}) has an all-zero gradient"
        );
    }
}

#[test]
fn whole_gradient_matches_finite_differences_rbm_all_structures() {
    for (s, seed) in [
        (Structure::Linear, 1),
        (Structure::Nonlinear, 2),
        (Structure::Linear2, 3),
        (Structure::Nonlinear2, 4),
    ] {
        let config = tiny(s, 3);
        let model = rbm_model(config, seed);
        let x = binary(4, 6, seed + 10);
        let noise = model.draw_noise(&mut root_rng(seed + 20), 4 * 3);
        check_whole_gradient(&model, &x, &noise, 0.7, s.name());
    }
}

#[test]
fn whole_gradient_matches_finite_differences_k1_beta1_and_nw() {
    // k = 1 (w̃ = 1) at β = 1 with the RBM.
    let model = rbm_model(tiny(Structure::Nonlinear2, 1), 5);
    let x = binary(5, 6, 30);
    let noise = model.draw_noise(&mut root_rng(31), 5);
    check_whole_gradient(&model, &x, &noise, 1.0, "nonlinear2 k=1");
    // GumBolt-nW: factorial prior with the exact log Z gradient σ(h).
    for s in [Structure::Nonlinear, Structure::Linear2] {
        let config = tiny(s, 2);
        let d = config.pixels;
        let mut m = GumBolt::nw(config, &means(d)).unwrap();
        perturb(&mut m);
        let x = binary(4, 6, 32);
        let noise = m.draw_noise(&mut root_rng(33), 8);
        check_whole_gradient(&m, &x, &noise, 0.4, &format!("nW {}", s.name()));
    }
}

#[test]
fn parameter_groups_and_decay_flags() {
    let mut m = rbm_model(tiny(Structure::Linear2, 1), 6);
    let flags: Vec<(&str, bool, usize)> = m
        .params_mut()
        .iter()
        .map(|p| (p.name, p.decay, p.len()))
        .collect();
    // Encoder 1 (6 → 3 → 4), encoder 2 (10 → 3 → 4), decoder (8 → 3 → 6): kernel, bias, γ, β,
    // kernel, bias each; then the RBM fields and couplings (4×4).
    let net = |i: usize, o: usize| {
        vec![
            ("kernel", true, i * 3),
            ("bias", false, 3),
            ("gamma", true, 3),
            ("beta", false, 3),
            ("kernel", true, 3 * o),
            ("bias", false, o),
        ]
    };
    let mut want = net(6, 4);
    want.extend(net(10, 4));
    want.extend(net(8, 6));
    want.push(("rbm.ab", false, 8));
    want.push(("rbm.w", true, 16));
    assert_eq!(flags, want);
    let config = tiny(Structure::Linear, 1);
    let mut nw = GumBolt::nw(config, &means(6)).unwrap();
    let last = nw.params_mut().pop().map(|p| (p.name, p.decay, p.len()));
    assert_eq!(last, Some(("bernoulli.h", false, 4)));
}

#[test]
fn first_encoder_on_distinct_images_equals_repeated_rows() {
    // The model runs encoder layer 1 on the B images and repeats its logits k times; with batch
    // norm in training mode that is the same function as running it on the N = B·k repeated
    // rows (identical batch statistics), so the outputs and the parameter gradients agree.
    let mut rng = root_rng(40);
    let base: Mlp = MlpConfig::new(6, [5, 4], 3).build(&mut rng).unwrap();
    let x = binary(4, 6, 41);
    let k = 3;
    let mut rep = Mat::zeros(0, 0);
    kernels_repeat(&x, k, &mut rep);
    let dy_n = Mat::from_fn(12, 3, |i, j| ((i * 3 + j) as f32 * 0.37).sin());
    let mut a = base.clone();
    let ya = a.forward(&rep, Mode::Train).clone();
    a.zero_grad();
    a.backward_params_only(&dy_n);
    let mut b = base.clone();
    let yb = b.forward(&x, Mode::Train).clone();
    let mut yb_rep = Mat::zeros(0, 0);
    kernels_repeat(&yb, k, &mut yb_rep);
    assert!((&ya - &yb_rep).abs().max() < 1e-5);
    let mut dy_b = Mat::zeros(4, 3);
    for r in 0..12 {
        for j in 0..3 {
            dy_b[(r / k, j)] += dy_n[(r, j)];
        }
    }
    b.zero_grad();
    b.backward_params_only(&dy_b);
    for (pa, pb) in a.params_mut().iter().zip(b.params_mut().iter()) {
        for (ga, gb) in pa.grad.iter().zip(pb.grad.iter()) {
            assert!(
                (ga - gb).abs() < 1e-4 * (1.0 + ga.abs()),
                "{}: {ga} vs {gb}",
                pa.name
            );
        }
    }
    assert_eq!(a.batch_norm(0).moving_var(), b.batch_norm(0).moving_var());
}

fn kernels_repeat(src: &Mat, k: usize, dst: &mut Mat) {
    super::kernels::repeat_rows(src, k, dst);
}

/// A few training steps so that the batch-norm moving averages and all parameters are
/// non-trivial before an evaluation test.
fn warm_up<P: TrainablePrior, G: PartitionGradient<P>>(m: &mut GumBolt<P, G>, seed: u64) {
    let d = m.config().pixels;
    let mut st = TrainState::new(m.config()).unwrap();
    for t in 0..5 {
        let x = binary(16, d, seed + t);
        m.train_step(&x, 1000 + t, &mut st).unwrap();
    }
}

#[test]
fn t3_relaxed_objective_equals_discrete_at_tiny_temperature() {
    // Algorithms §8 T3: with fixed ρ and τ = 1e-4, ζ equals the Gumbel-form z wherever
    // |l + logit ρ| ≥ 1e-2, and then F_k = L_k to 1e-6 (here on tiny and full-size models).
    let cases: Vec<(GumBoltConfig, usize, usize)> = vec![
        (tiny(Structure::Linear, 3), 40, 3),
        (tiny(Structure::Nonlinear2, 2), 40, 2),
        (tiny(Structure::Linear2, 1), 40, 1),
        (
            {
                let mut c = GumBoltConfig::new(Structure::Nonlinear, 784);
                c.train.total_iterations = 10;
                c
            },
            60,
            1,
        ),
        (
            {
                let mut c = GumBoltConfig::new(Structure::Nonlinear2, 784);
                c.latent_units = 20;
                c.train.total_iterations = 10;
                c
            },
            60,
            1,
        ),
    ];
    for (ci, (config, b, k)) in cases.into_iter().enumerate() {
        let mut m = rbm_model(config, 50 + ci as u64);
        warm_up(&mut m, 60 + ci as u64 * 10);
        let d = m.config().pixels;
        let x = binary(b, d, 70 + ci as u64);
        let noise = m.draw_noise(&mut root_rng(80 + ci as u64), b * k);
        let log_z = 3.25;
        let mut s = Scratch::default();
        let f = m
            .relaxed_objective(&x, &noise, 1e-4, log_z, &mut s)
            .unwrap();
        let zeta: Vec<Mat> = s.last_samples().to_vec();
        let l = m.discrete_objective(&x, &noise, log_z, &mut s).unwrap();
        let z: Vec<Mat> = s.last_samples().to_vec();
        let logits: Vec<Mat> = s.last_logits().to_vec();
        let mut checked = 0;
        for bi in 0..b {
            let near_boundary = (bi * k..(bi + 1) * k).any(|r| {
                logits.iter().zip(noise.layers()).any(|(lm, rho)| {
                    (0..lm.ncols()).any(|j| (lm[(r, j)] + noise_logit(rho[(r, j)])).abs() < 1e-2)
                })
            });
            if near_boundary {
                continue;
            }
            checked += 1;
            for (zl, zd) in zeta.iter().zip(&z) {
                for r in bi * k..(bi + 1) * k {
                    for j in 0..zl.ncols() {
                        assert!((zl[(r, j)] - zd[(r, j)]).abs() < 1e-30);
                    }
                }
            }
            assert!(
                (f[bi] - l[bi]).abs() < 1e-6,
                "case {ci}, image {bi}: F_k {} vs L_k {}",
                f[bi],
                l[bi]
            );
        }
        assert!(checked >= 5, "case {ci}: only {checked} images checked");
    }
}

/// All `2^n` binary configurations as rows (unit j = bit j of the row index).
fn all_configs(n: usize) -> Mat {
    Mat::from_fn(1 << n, n, |r, j| ((r >> j) & 1) as f32)
}

/// A model whose latent space can be enumerated: L = 2 with 3 units per layer (a 3×3 RBM with
/// exact log Z), 8 pixels, one hidden layer of 5 units.
fn enumerable_model(seed: u64) -> GumBolt<Rbm, ExactPartitionGradient> {
    let mut c = GumBoltConfig::new(Structure::Linear2, 8);
    c.latent_units = 3;
    c.hidden_units = 5;
    c.seed = seed;
    c.train.total_iterations = 100;
    c.train.kl_warmup_fraction = 0.0;
    let rbm = Rbm::random(3, 3, 1.0, &mut root_rng(seed + 1));
    let mut m = GumBolt::new(c, &means(8), rbm, ExactPartitionGradient::new()).unwrap();
    perturb(&mut m);
    warm_up(&mut m, seed + 2);
    m
}

/// Exact `log p(x) = log Σ_z e^{−E(z)} p(x|z) − log Z` per image by enumeration.
pub(super) fn exact_log_px(m: &mut GumBolt<Rbm, ExactPartitionGradient>, x: &Mat) -> Vec<f64> {
    let n = m.config().latent_dim();
    let zs = all_configs(n);
    let neg_e: Vec<f64> = m.prior().energies(&zs).iter().map(|e| -e).collect();
    let log_z = m.prior().log_partition().unwrap();
    (0..x.nrows())
        .map(|b| {
            let xs = Mat::from_fn(zs.nrows(), x.ncols(), |_, j| x[(b, j)]);
            let lp = m.log_px_given_z(&xs, &zs).unwrap();
            let terms: Vec<f64> = lp.iter().zip(&neg_e).map(|(a, e)| a + e).collect();
            log_sum_exp(&terms) - log_z
        })
        .collect()
}

#[test]
fn iw_estimator_matches_exact_log_likelihood() {
    let mut m = enumerable_model(90);
    let x = binary(4, 8, 91);
    let exact = exact_log_px(&mut m, &x);
    let log_z = m.prior().log_partition().unwrap();
    let est = m
        .estimate_log_likelihood(
            &x,
            40_000,
            3_000,
            log_z,
            &mut root_rng(92),
            &mut Scratch::default(),
        )
        .unwrap();
    assert_eq!(est.samples, 40_000);
    for (b, &ex) in exact.iter().enumerate() {
        let err = (est.log_px[b] - ex).abs();
        assert!(
            err < 4.0 * est.std_err[b] + 1e-4,
            "image {b}: estimate {} ± {} vs exact {}",
            est.log_px[b],
            est.std_err[b],
            ex
        );
        assert!(est.std_err[b] > 0.0 && est.std_err[b] < 0.05);
    }
    // Chunking does not change the estimator, only how the samples are drawn.
    let one = m
        .estimate_log_likelihood(&x, 7, 7, log_z, &mut root_rng(93), &mut Scratch::default())
        .unwrap();
    let chunked = m
        .estimate_log_likelihood(&x, 7, 7, log_z, &mut root_rng(93), &mut Scratch::default())
        .unwrap();
    assert_eq!(one, chunked);
}

#[test]
fn discrete_bounds_increase_with_k_towards_log_likelihood() {
    // E[L_1] ≤ E[L_2] ≤ E[L_4] ≤ E[L_8] ≤ log p(x) (Burda et al. 2015; GB Eq. 5), checked on
    // means over M independent draws with standard-error tolerances.
    let mut m = enumerable_model(100);
    let b = 3;
    let x = binary(b, 8, 101);
    let exact = exact_log_px(&mut m, &x);
    let log_z = m.prior().log_partition().unwrap();
    let draws = 4000;
    let x_big = Mat::from_fn(b * draws, 8, |r, j| x[(r / draws, j)]);
    let mut rng = root_rng(102);
    let mut stats = Vec::new();
    for k in [1usize, 2, 4, 8] {
        let noise = m.draw_noise(&mut rng, b * draws * k);
        let v = m
            .discrete_objective(&x_big, &noise, log_z, &mut Scratch::default())
            .unwrap();
        let per_image: Vec<(f64, f64)> = (0..b)
            .map(|bi| {
                let s = &v[bi * draws..(bi + 1) * draws];
                let mean = s.iter().sum::<f64>() / draws as f64;
                let var = s.iter().map(|y| (y - mean).powi(2)).sum::<f64>() / (draws - 1) as f64;
                (mean, (var / draws as f64).sqrt())
            })
            .collect();
        stats.push((k, per_image));
    }
    for bi in 0..b {
        for w in stats.windows(2) {
            let ((k1, a), (k2, c)) = (&w[0], &w[1]);
            let (m1, s1) = a[bi];
            let (m2, s2) = c[bi];
            assert!(
                m1 <= m2 + 3.0 * (s1 * s1 + s2 * s2).sqrt(),
                "image {bi}: L_{k1} = {m1} ± {s1} > L_{k2} = {m2} ± {s2}"
            );
        }
        let (m8, s8) = stats[3].1[bi];
        assert!(
            m8 <= exact[bi] + 3.0 * s8,
            "image {bi}: L_8 {m8} > log p {}",
            exact[bi]
        );
        // Not vacuous: the single-sample bound has a clear gap, and k = 8 closes part of it.
        let (m1, s1) = stats[0].1[bi];
        assert!(
            m1 < exact[bi] - 5.0 * s1,
            "image {bi}: L_1 {m1} vs log p {}",
            exact[bi]
        );
        assert!(
            m8 > m1 + 3.0 * (s1 * s1 + s8 * s8).sqrt(),
            "image {bi}: L_8 {m8} vs L_1 {m1}"
        );
    }
}

#[test]
fn schedules_are_applied_in_train_steps() {
    let mut c = tiny(Structure::Nonlinear, 2);
    c.train.total_iterations = 100;
    let mut m = rbm_model(c, 110);
    let mut st = TrainState::new(m.config()).unwrap();
    let x = binary(8, 6, 111);
    for (t, lr, beta) in [
        (0u64, 3e-3, 0.0),
        (15, 3e-3, 0.5),
        (30, 3e-3, 1.0),
        (60, 9e-4, 1.0),
        (80, 2.7e-4, 1.0),
        (95, 8.1e-5, 1.0),
    ] {
        let s = m.train_step(&x, t, &mut st).unwrap();
        assert_eq!(s.iteration, t);
        assert!(
            (s.learning_rate - lr).abs() < 1e-12,
            "t {t}: lr {}",
            s.learning_rate
        );
        assert!(
            (s.parts.beta - beta).abs() < 1e-12,
            "t {t}: beta {}",
            s.parts.beta
        );
        assert!(s.parts.loss.is_finite());
        assert!(
            (s.parts.effective_samples - 1.0) >= -1e-9 && s.parts.effective_samples <= 2.0 + 1e-9
        );
    }
    assert_eq!(st.optimizer().steps(), 6);
    let r = LrSchedule::reference(3e-3);
    assert!((r.at(0, 1000) - 3e-4).abs() < 1e-15);
    assert!((r.at(20, 1000) - 3e-3).abs() < 1e-15);
    assert!((r.at(950, 1000) - 3e-3 / 33.0).abs() < 1e-15);
}

#[test]
fn configuration_and_shape_errors() {
    let ok = tiny(Structure::Linear, 1);
    let bad = |f: &dyn Fn(&mut GumBoltConfig)| {
        let mut c = ok.clone();
        f(&mut c);
        GumBolt::nw(c, &means(6)).unwrap_err()
    };
    for e in [
        bad(&|c| c.k = 0),
        bad(&|c| c.tau = 0.0),
        bad(&|c| c.tau = f64::NAN),
        bad(&|c| c.latent_units = 0),
        bad(&|c| c.train.total_iterations = 0),
        bad(&|c| c.train.kl_warmup_fraction = 1.5),
        bad(&|c| {
            c.train.lr = LrSchedule {
                base: -1.0,
                milestones: vec![],
            }
        }),
        bad(&|c| c.train.lr.milestones = vec![(0.7, 0.3), (0.6, 0.1)]),
    ] {
        assert!(
            matches!(e, ModelError::InvalidConfig { .. } | ModelError::Core(_)),
            "{e}"
        );
    }
    assert!(matches!(
        GumBolt::nw(ok.clone(), &means(5)).unwrap_err(),
        ModelError::InvalidConfig {
            name: "pixel_means",
            ..
        }
    ));
    let wrong_prior = GumBolt::new(
        ok.clone(),
        &means(6),
        FactorialBernoulli::zeros(5),
        ExactPartitionGradient::new(),
    );
    assert!(matches!(
        wrong_prior.unwrap_err(),
        ModelError::InvalidConfig { name: "prior", .. }
    ));
    let mut m = GumBolt::nw(ok, &means(6)).unwrap();
    let mut st = TrainState::new(m.config()).unwrap();
    let e = m.train_step(&binary(3, 7, 1), 0, &mut st).unwrap_err();
    assert!(matches!(e, ModelError::Shape { .. }), "{e}");
    let x = binary(3, 6, 2);
    let bad_noise = Noise::draw(&mut root_rng(3), 4, 1, 4); // 4 rows is not a multiple of 3
    assert!(matches!(
        m.loss_and_grad(&x, &bad_noise, 1.0).unwrap_err(),
        ModelError::Shape { .. }
    ));
    let noise = Noise::draw(&mut root_rng(3), 6, 1, 4);
    assert!(matches!(
        m.relaxed_objective(&x, &noise, -1.0, 0.0, &mut Scratch::default())
            .unwrap_err(),
        ModelError::Estimator(_)
    ));
    assert!(
        m.estimate_log_likelihood(&x, 0, 1, 0.0, &mut root_rng(4), &mut Scratch::default())
            .is_err()
    );
    assert!(m.decode(&Mat::zeros(2, 3)).is_err());
    assert_eq!(m.decode(&Mat::zeros(2, 4)).unwrap().shape(), (2, 6));
    // x_bias = logit(clip(x̄, 1e-3, 0.999)).
    let xb = m.x_bias();
    assert!((xb[3] as f64 - gumbolt_core::numerics::logit(1e-3)).abs() < 1e-5);
    assert!((xb[5] as f64 - gumbolt_core::numerics::logit(0.999)).abs() < 1e-4);
    assert!((xb[1] as f64 - gumbolt_core::numerics::logit(0.35)).abs() < 1e-6);
}

#[test]
fn pcd_model_trains_and_monitors_on_mnist_smoke() {
    // 50 iterations of the `nonlinear` structure (784-200-200-200, 100×100 RBM) on MNIST with a
    // cheap PCD (100 chains, 5 sweeps) and β ≡ 1: the loss must fall.
    let data = gumbolt_datasets::load_bundled_mnist().unwrap();
    let mut c = GumBoltConfig::new(Structure::Nonlinear, data.train.dim()).with_iterations(50);
    c.train.kl_warmup_fraction = 0.0;
    let pcd = gumbolt_samplers::PcdConfig::default()
        .chains(100)
        .sweeps(5)
        .seed(3);
    let mut m = GumBolt::with_pcd(c, &data.train.pixel_means(), pcd).unwrap();
    assert_eq!((m.prior().n1(), m.prior().n2()), (100, 100));
    let mut rng = root_rng(5);
    let mut losses = Vec::new();
    let mut st = TrainState::new(m.config()).unwrap();
    for t in 0..50 {
        let idx: Vec<usize> = (0..100)
            .map(|_| (gumbolt_core::rng::uniform_f64(&mut rng) * data.train.n() as f64) as usize)
            .collect();
        let x = data.train.gather(&idx);
        let s = m.train_step(&x, t, &mut st).unwrap();
        losses.push(s.parts.loss);
    }
    let first: f64 = losses[..5].iter().sum::<f64>() / 5.0;
    let last: f64 = losses[45..].iter().sum::<f64>() / 5.0;
    assert!(
        last < first - 50.0,
        "loss did not fall: {first} -> {last} ({losses:?})"
    );
    assert_eq!(
        PartitionGradient::<Rbm>::samples(m.partition())
            .unwrap()
            .shape(),
        (100, 200)
    );
    // Monitoring objectives at τ = 1/7 and τ = 0 are finite and close to each other.
    let x = data.valid.gather(&(0..50).collect::<Vec<_>>());
    let log_z = 200.0 * 2f64.ln(); // a placeholder: both objectives subtract the same value
    let o = m
        .monitor(&x, 5, log_z, &mut root_rng(6), &mut Scratch::default())
        .unwrap();
    assert!(o.relaxed.is_finite() && o.discrete.is_finite());
}

#[test]
fn training_improves_the_exact_log_likelihood_of_a_tiny_model() {
    // End to end on an enumerable model (3 + 3 latent units, 3×3 RBM with exact log Z): a few
    // hundred train steps on a structured toy dataset raise the exact mean log p(x).
    let mut c = GumBoltConfig::new(Structure::Linear2, 8)
        .with_k(5)
        .with_iterations(400);
    c.latent_units = 3;
    c.hidden_units = 5;
    c.seed = 120;
    let (data, pixel_means) = toy_prototypes();
    let (before, after) = train_on_toy(c, &data, &pixel_means, 400);
    // The factorial start (x_bias = data logit) gives ≈ −4.2; the source's entropy is
    // log 2 + 8·H(0.1) ≈ 3.29 nats, which a model of the 64 images cannot beat by much.
    assert!(
        after > before + 0.5,
        "mean exact log p(x): {before} -> {after}"
    );
    assert!(after < -3.0, "{after}");
}

/// 64 binary images of 8 pixels: two prototypes with 10 % pixel noise, and their pixel means
/// (the structured toy data of the end-to-end tests on enumerable models).
pub(super) fn toy_prototypes() -> (Mat, Vec<f32>) {
    let d = 8;
    let protos = [
        [1.0f32, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0],
        [0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0],
    ];
    let mut u = vec![0.0f32; 64 * d];
    fill_uniform(&mut root_rng(121), &mut u);
    let data = Mat::from_fn(64, d, |i, j| {
        let p = protos[i % 2][j];
        if u[i * d + j] < 0.1 { 1.0 - p } else { p }
    });
    let means = (0..d).map(|j| data.column(j).mean()).collect();
    (data, means)
}

/// Trains a model of `config` with a 3×3 RBM prior and the exact log Z for `steps` minibatches
/// of 16 toy images; returns the exact mean log p(x) before and after.
pub(super) fn train_on_toy(
    config: GumBoltConfig,
    data: &Mat,
    pixel_means: &[f32],
    steps: u64,
) -> (f64, f64) {
    let d = data.ncols();
    let mut m = GumBolt::new(
        config,
        pixel_means,
        Rbm::zeros(3, 3),
        ExactPartitionGradient::new(),
    )
    .unwrap();
    let before = exact_log_px(&mut m, data).iter().sum::<f64>() / 64.0;
    let mut st = TrainState::new(m.config()).unwrap();
    for t in 0..steps {
        let idx: Vec<usize> = (0..16).map(|i| ((t as usize) * 16 + i) % 64).collect();
        let x = Mat::from_fn(16, d, |r, j| data[(idx[r], j)]);
        m.train_step(&x, t, &mut st).unwrap();
    }
    let after = exact_log_px(&mut m, data).iter().sum::<f64>() / 64.0;
    (before, after)
}

/// A third-order MRF prior trains through GumBolt with PCD over the colour classes of its
/// interaction hypergraph (GB §3, Theorem 1: any polynomial energy).
#[test]
fn third_order_mrf_prior_trains_with_colour_pcd() {
    use gumbolt_core::prior::Parametric;
    let mut c = tiny(Structure::Nonlinear, 2);
    c.latent_units = 6;
    let mut rng = gumbolt_core::rng::root_rng(2);
    let mrf = gumbolt_priors::PolynomialMrf::random(6, 12, 3, 0.3, &mut rng);
    assert!((0..mrf.num_monomials()).any(|k| mrf.monomial(k).0.len() == 3));
    let pcd = gumbolt_samplers::ColourPcd::new(
        gumbolt_samplers::PcdConfig::default().chains(16).sweeps(3),
    )
    .unwrap();
    let means = vec![0.4f32; 6];
    let mut m = GumBolt::new(c, &means, mrf.clone(), SampledPartition::new(pcd)).unwrap();
    let x = Mat::from_fn(8, 6, |r, j| ((r + j) % 2) as f32);
    let mut st = TrainState::new(m.config()).unwrap();
    for t in 0..5 {
        m.train_step(&x, t, &mut st).unwrap();
    }
    assert_ne!(m.prior().params(), mrf.params());
    assert!(m.prior().params().iter().all(|v| v.is_finite()));
}

#[test]
fn bf16_network_products_give_the_f32_gradient_to_bf16_accuracy() {
    // The `~` model at the paper's widths, k = 20 on 20 images (400 rows: products large enough
    // for the bf16 kernel): the loss terms and every gradient tensor under bf16 network
    // products agree with f32 to well under 1 % of their scale; the prior's own terms (f32 in
    // both) agree to rounding.
    let base = {
        let mut c = GumBoltConfig::new(Structure::Nonlinear, 784);
        c.k = 20;
        c.train.total_iterations = 10;
        c
    };
    let run = |products: Precision| {
        let mut c = base.clone();
        c.train.network_products = products;
        let mut m = rbm_model(c, 90);
        let x = binary(20, 784, 91);
        let noise = m.draw_noise(&mut root_rng(92), 20 * 20);
        let parts = m.loss_and_grad(&x, &noise, 1.0).unwrap();
        let grads: Vec<(String, Vec<f32>)> = m
            .params_mut()
            .iter()
            .map(|p| (p.name.to_string(), p.grad.to_vec()))
            .collect();
        (parts, grads)
    };
    let (p32, g32) = run(Precision::F32);
    let (p16, g16) = run(Precision::Bf16);
    let rel = (p16.objective - p32.objective).abs() / p32.objective.abs();
    assert!(
        rel < 1e-3,
        "objective {} vs {}",
        p32.objective,
        p16.objective
    );
    let overall = g32
        .iter()
        .flat_map(|(_, g)| g.iter())
        .map(|v| v.abs())
        .fold(0.0f32, f32::max);
    let mut moved = 0;
    for ((name, a), (_, b)) in g32.iter().zip(&g16) {
        let scale = a.iter().map(|v| v.abs()).fold(0.0f32, f32::max);
        let diff = a
            .iter()
            .zip(b)
            .map(|(u, v)| (u - v).abs())
            .fold(0.0f32, f32::max);
        // Tensors whose gradient vanishes up to rounding (biases before batch norm) are compared
        // against the overall scale.
        let r = diff / scale.max(1e-3 * overall);
        assert!(r < 3e-2, "{name}: relative difference {r}");
        moved += usize::from(diff > 0.0);
    }
    if Precision::bf16_available() {
        assert!(moved > 0, "the bf16 kernel did not run");
    }
}

#[test]
fn configurations_without_network_products_read_as_f32() {
    let c = GumBoltConfig::new(Structure::Nonlinear, 784);
    let mut v = serde_json::to_value(&c).unwrap();
    assert_eq!(v["train"]["network_products"], "f32");
    v["train"]
        .as_object_mut()
        .unwrap()
        .remove("network_products");
    let back: GumBoltConfig = serde_json::from_value(v).unwrap();
    assert_eq!(back.train.network_products, Precision::F32);
    let mut v = serde_json::to_value(&c).unwrap();
    v["train"]["network_products"] = "bf16".into();
    let back: GumBoltConfig = serde_json::from_value(v).unwrap();
    assert_eq!(back.train.network_products, Precision::Bf16);
}

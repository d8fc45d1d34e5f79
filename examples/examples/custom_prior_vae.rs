//! A prior of your own in a GumBolt VAE: a Boltzmann machine on a small-world graph.
//!
//! ```text
//! cargo run --release -p gumbolt-examples --example custom_prior_vae
//! ```
//!
//! The prior type is defined here, not in the library: a Boltzmann machine
//! `−E(z) = hᵀz + Σ_(i,j)∈G w_ij z_i z_j` on a Watts–Strogatz small-world graph (a ring where
//! every unit is joined to its 2 nearest neighbours on each side, each edge rewired with
//! probability 0.1). The graph has triangles, so it is not bipartite: block Gibbs runs over a
//! colouring of the graph. GumBolt's relaxation with the discrete `log Z` (GB Eq. 9) holds for any
//! BM prior (GB §3, Theorem 1).
//!
//! What a prior needs to be trained, checkpointed and evaluated by the toolkit (the contract is
//! documented on [`TrainablePrior`]):
//! - [`Prior`], [`EnergyGradient`] (resize `out`!), [`Parametric`], [`EnergyParamGradient`]:
//!   the energy at relaxed points and its gradients (GB Eqs. 6, 7, 11);
//! - [`ColourConditionals`]: colour classes and the logits of a class given the rest, which
//!   PCD ([`ColourPcd`]), AIS and PT + bridge sampling use;
//! - [`ExactPartition`] (enumeration, refused above 24 units) and [`TrainablePrior`] /
//!   [`GumBoltPrior`] (parameter groups, how to build it from a configuration, `log Z` and
//!   samples through the colour-class helpers).
//!
//! It trains a `~` GumBolt VAE with this prior (200 latent units) for 300 iterations on the
//! bundled MNIST, estimates `log Z` by PT + bridge sampling and by AIS, evaluates the test NLL on
//! 1000 test images, and asserts that training and the estimates make sense. CI runs it through
//! `cargo test` (the `#[test]` at the end).

use gumbolt_core::prior::{
    ColourConditionals, EnergyGradient, EnergyParamGradient, ExactPartition, Parametric, Prior,
};
use gumbolt_core::rng::{root_rng, uniform_f64};
use gumbolt_core::{LogPartitionEstimate, Mat};
use gumbolt_datasets::load_bundled_mnist;
use gumbolt_models::eval::{EvalConfig, LogZ, LogZConfig, LogZMethod, estimate_log_z, evaluate};
use gumbolt_models::gumbolt::{
    GumBolt, GumBoltConfig, ParamGroup, SampledPartition, Structure, TrainablePrior,
};
use gumbolt_models::train::state::{colour_log_z, colour_samples};
use gumbolt_models::train::{
    GumBoltPrior, Interval, TrainEvent, TrainImages, Trainer, TrainerConfig,
};
use gumbolt_samplers::logz::{AisConfig, PtBarConfig};
use gumbolt_samplers::{ColourPcd, PcdConfig, Progress, SamplerError};
use nalgebra::DMatrixView;

/// A Boltzmann machine on a small-world graph; θ = `[h (n) | w (one per edge)]`.
#[derive(Clone, Debug)]
struct SmallWorldBm {
    n: usize,
    edges: Vec<(usize, usize)>,
    params: Vec<f32>,
    /// Neighbours of each unit as `(neighbour, edge index)`.
    adj: Vec<Vec<(usize, usize)>>,
    classes: Vec<Vec<usize>>,
}

impl SmallWorldBm {
    /// Watts–Strogatz: ring lattice with `k` neighbours on each side, each edge `(i, i + d)`
    /// rewired to `(i, random)` with probability `p` (no self-loops or repeated pairs).
    fn watts_strogatz(n: usize, k: usize, p: f64, seed: u64) -> Self {
        let mut rng = root_rng(seed);
        let mut set = std::collections::BTreeSet::new();
        for i in 0..n {
            for d in 1..=k {
                let mut j = (i + d) % n;
                if uniform_f64(&mut rng) < p {
                    loop {
                        let c = ((uniform_f64(&mut rng) * n as f64) as usize).min(n - 1);
                        if c != i && !set.contains(&(i.min(c), i.max(c))) {
                            j = c;
                            break;
                        }
                    }
                }
                set.insert((i.min(j), i.max(j)));
            }
        }
        let edges: Vec<(usize, usize)> = set.into_iter().collect();
        let mut adj = vec![Vec::new(); n];
        for (e, &(i, j)) in edges.iter().enumerate() {
            adj[i].push((j, e));
            adj[j].push((i, e));
        }
        Self {
            n,
            params: vec![0.0; n + edges.len()],
            classes: gumbolt_priors::topology::greedy_colouring(n, &edges),
            edges,
            adj,
        }
    }

    /// `h_i + Σ_j w_ij ζ_j` for every row, into `out`.
    fn local_field(&self, z: &DMatrixView<'_, f32>, i: usize, out: &mut [f32]) {
        out.fill(self.params[i]);
        for &(j, e) in &self.adj[i] {
            let w = self.params[self.n + e];
            for (o, &x) in out.iter_mut().zip(z.column(j).iter()) {
                *o += w * x;
            }
        }
    }
}

impl Prior for SmallWorldBm {
    fn num_units(&self) -> usize {
        self.n
    }

    /// `E(ζ) = −hᵀζ − Σ w_ij ζ_i ζ_j` (multilinear, so it is its own relaxation, GB Eq. 7).
    fn energy_into(&self, z: DMatrixView<'_, f32>, out: &mut [f64]) {
        out.fill(0.0);
        for i in 0..self.n {
            let h = self.params[i] as f64;
            for (o, &x) in out.iter_mut().zip(z.column(i).iter()) {
                *o -= h * x as f64;
            }
        }
        for (e, &(i, j)) in self.edges.iter().enumerate() {
            let w = self.params[self.n + e] as f64;
            for ((o, &a), &b) in out
                .iter_mut()
                .zip(z.column(i).iter())
                .zip(z.column(j).iter())
            {
                *o -= w * (a * b) as f64;
            }
        }
    }
}

impl EnergyGradient for SmallWorldBm {
    /// `∂E/∂ζ_i = −(h_i + Σ_j w_ij ζ_j)` (GB Eq. 11). `out` may arrive with any shape.
    fn energy_grad_into(&self, z: DMatrixView<'_, f32>, out: &mut Mat) {
        if out.shape() != (z.nrows(), self.n) {
            *out = Mat::zeros(z.nrows(), self.n);
        }
        let mut buf = vec![0.0f32; z.nrows()];
        for i in 0..self.n {
            self.local_field(&z, i, &mut buf);
            for (o, &b) in out.column_mut(i).iter_mut().zip(&buf) {
                *o = -b;
            }
        }
    }
}

impl Parametric for SmallWorldBm {
    fn params(&self) -> &[f32] {
        &self.params
    }
    fn params_mut(&mut self) -> &mut [f32] {
        &mut self.params
    }
}

impl EnergyParamGradient for SmallWorldBm {
    /// `grad += Σ_r w_r [ζ_r | ζ_ri ζ_rj]`.
    fn accumulate_neg_energy_grad(
        &self,
        z: DMatrixView<'_, f32>,
        weights: &[f32],
        grad: &mut [f32],
    ) {
        for (i, g) in grad[..self.n].iter_mut().enumerate() {
            let s: f64 = z
                .column(i)
                .iter()
                .zip(weights)
                .map(|(&x, &w)| (x * w) as f64)
                .sum();
            *g += s as f32;
        }
        for (e, &(i, j)) in self.edges.iter().enumerate() {
            let s: f64 = z
                .column(i)
                .iter()
                .zip(z.column(j).iter())
                .zip(weights)
                .map(|((&a, &b), &w)| (a * b * w) as f64)
                .sum();
            grad[self.n + e] += s as f32;
        }
    }
}

impl ExactPartition for SmallWorldBm {
    /// Enumeration (refused above 24 units: the estimators are used instead).
    fn log_partition(&self) -> gumbolt_core::Result<f64> {
        Ok(gumbolt_core::exact::enumerate(self)?.log_z)
    }
}

impl ColourConditionals for SmallWorldBm {
    fn colour_classes(&self) -> Vec<Vec<usize>> {
        self.classes.clone()
    }

    fn colour_logits(&self, class: usize, z: DMatrixView<'_, f32>, out: &mut Mat) {
        let rows = z.nrows();
        for (k, &i) in self.classes[class].iter().enumerate() {
            self.local_field(&z, i, &mut out.as_mut_slice()[k * rows..(k + 1) * rows]);
        }
    }
}

impl TrainablePrior for SmallWorldBm {
    fn param_groups(&self) -> Vec<ParamGroup> {
        vec![
            ParamGroup {
                name: "sw.h",
                len: self.n,
                decay: false,
            },
            ParamGroup {
                name: "sw.w",
                len: self.edges.len(),
                decay: true,
            },
        ]
    }

    fn couples_within(&self, units: std::ops::Range<usize>) -> bool {
        self.edges
            .iter()
            .any(|(i, j)| units.contains(i) && units.contains(j))
    }
}

impl GumBoltPrior for SmallWorldBm {
    const KIND: &'static str = "small-world-bm";

    fn for_config(config: &GumBoltConfig) -> Self {
        Self::watts_strogatz(config.latent_dim(), 2, 0.1, 7)
    }

    fn exact_log_z_is_cheap(&self) -> bool {
        self.n <= 20
    }

    fn estimate_log_z_sampled(
        &self,
        ais: Option<&AisConfig>,
        pt: Option<&PtBarConfig>,
        _progress: &mut dyn FnMut(Progress),
    ) -> Result<LogPartitionEstimate, SamplerError> {
        colour_log_z(self, ais, pt)
    }

    fn gibbs_samples(
        &self,
        init: Option<&Mat>,
        n: usize,
        sweeps: usize,
        seed: u64,
    ) -> Result<Mat, SamplerError> {
        colour_samples(self, init, n, sweeps, seed)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let iters = 300;
    let data = load_bundled_mnist()?;
    let config = GumBoltConfig::new(Structure::Nonlinear, data.train.dim())
        .with_iterations(iters)
        .with_seed(0);
    let prior = SmallWorldBm::for_config(&config);
    println!(
        "small-world BM prior: {} units, {} edges, {} colour classes",
        prior.n,
        prior.edges.len(),
        prior.classes.len()
    );
    assert!(prior.classes.len() >= 3, "the graph has triangles");
    let pcd = ColourPcd::new(PcdConfig::default().chains(100).sweeps(200).seed(1))?;
    let model = GumBolt::new(
        config,
        &data.train.pixel_means(),
        prior,
        SampledPartition::new(pcd),
    )?;
    let test = data.test.split_at(1000)?.0;

    // The untrained model, for comparison: zero parameters, log Z = n log 2 exactly.
    let ecfg = EvalConfig::default().with_samples(100).with_seed(3);
    let n = model.prior().num_units() as f64;
    let before = evaluate(
        &model,
        &test,
        &ecfg,
        &LogZ::new(n * 2f64.ln(), 0.0),
        &mut |_| {},
    )?;

    let tcfg = TrainerConfig::default()
        .with_seed(0)
        .with_monitor_interval(Interval::Never)
        .with_checkpoint_interval(Interval::Never);
    let mut trainer = Trainer::new(
        model,
        TrainImages::Binary(data.train),
        Some(&data.valid),
        tcfg,
    )?;
    let mut losses = Vec::new();
    trainer.run(u64::MAX, &mut |e| {
        if let TrainEvent::Step(s) = e {
            losses.push(s.parts.loss);
        }
    })?;
    let model = trainer.into_model();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (first, last) = (mean(&losses[..30]), mean(&losses[losses.len() - 30..]));
    println!("training loss: first 30 iterations {first:.1}, last 30 {last:.1}");
    assert!(last < first - 50.0, "training lowers the loss");
    assert!(
        model.prior().params()[model.prior().n..]
            .iter()
            .any(|&w| w.abs() > 1e-3),
        "couplings are learnt"
    );

    // Lighter settings than the evaluation defaults (this runs in CI).
    let pt_cfg = LogZConfig {
        method: LogZMethod::PtBar(PtBarConfig {
            runs: 8,
            burn_in: 500,
            sweeps: 4000,
            ..PtBarConfig::default()
        }),
        prefer_exact: true,
    };
    let pt = estimate_log_z(model.prior(), &pt_cfg.with_seed(1), &mut |_| {})?;
    let ais_cfg = LogZConfig::monitoring().with_seed(2);
    let ais = estimate_log_z(model.prior(), &ais_cfg, &mut |_| {})?;
    println!(
        "log Z: PT + bridge sampling {:.3} ± {:.3} ({:.1} s), AIS {:.3} ± {:.3} ({:.1} s)",
        pt.value, pt.std, pt.seconds, ais.value, ais.std, ais.seconds
    );
    assert!(pt.method == "pt" && ais.method == "ais");
    let tol = 4.0 * (pt.std.powi(2) + ais.std.powi(2)).sqrt() + 0.02;
    assert!(
        (pt.value - ais.value).abs() < tol,
        "PT and AIS agree within {tol:.3}"
    );

    let after = evaluate(&model, &test, &ecfg, &pt, &mut |_| {})?;
    println!(
        "test NLL on {} images (S = {}): {:.2} ± {:.2} after training, {:.2} before",
        after.n, after.samples, after.test_nll, after.test_nll_sem, before.test_nll
    );
    assert!(after.test_nll.is_finite() && after.test_nll < before.test_nll - 100.0);
    Ok(())
}

#[test]
fn trains_and_evaluates_a_small_world_prior() {
    main().unwrap();
}

//! `gumbolt train`: trains GumBolt (RBM prior, PCD) or GumBolt-nW (factorial prior, exact
//! log Z) on the statically binarised MNIST or on OMNIGLOT (re-binarised per minibatch, see
//! [`super::dataset`]) with the training loop of `gumbolt-models` (GB §5.1), writing a run directory (see [`super::rundir`]): checkpoints (atomic, periodic and
//! final), `metrics.jsonl` (F_k and L_k on training and validation images, GB Fig. 2b),
//! `config.json`, `learning_curves.png` and `train_summary.json`.

use super::dataset::{self, DatasetArg, Source};
use super::prior_arg::{self, PriorArg};
use super::progress::{TaskBar, hms};
use super::registry::{self, CliPrior, GUMBOLT, ModelKind, ModelTypes, ModelVisitor, PriorKind};
use super::rundir::{
    self, CHECKPOINT, CONFIG, CURVES, METRICS, RUN_FILES, RUN_MARKERS, RunConfig, RunDir, RunLock,
    SUMMARY,
};
use super::{int_at_least, usage_error};
use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, ValueEnum};
use gumbolt_core::ChainProducts;
use gumbolt_core::linalg::Precision;
use gumbolt_datasets::Dataset;
use gumbolt_examples::plot::{self, Series};
use gumbolt_models::checkpoint::CheckpointError;
use gumbolt_models::gumbolt::{GumBoltConfig, LrSchedule, ModelError, Structure};
use gumbolt_models::train::{
    CheckpointMeta, CheckpointPartition, GumBoltPrior, Interval, MetricsRecord, MonitorConfig,
    TrainError, TrainEvent, TrainImages, Trainer, TrainerConfig,
};
use gumbolt_samplers::PcdConfig;
use serde::Serialize;
use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const SUB: &str = "train";

/// Default PCD chains (GB does not state it; the reference code uses 1000 chains × 40 sweeps).
pub(crate) const DEFAULT_PCD_CHAINS: usize = 100;
/// Default PCD block-Gibbs sweeps per iteration (GB §5.1: 200).
pub(crate) const DEFAULT_PCD_STEPS: usize = 200;
/// Default base learning rate (GB §5.1).
const DEFAULT_LR: f64 = 3e-3;
/// Mixed into `--seed` for the PCD chains' streams, so they are unrelated to the model's.
const PCD_SEED_MIX: u64 = 0x5043_445F_5345_4544;
/// Time between two progress lines when stderr is not a terminal.
const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The learning-rate schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LrScheduleArg {
    /// GB §5.1: ×0.3 at 60, 75 and 95 % of the iterations.
    Paper,
    /// The reference code's: warm-up at lr/10 for 2 %, then lr, /3, /10, /33 at 60/75/95 %.
    Reference,
    /// Constant.
    Constant,
}

impl LrScheduleArg {
    fn schedule(self, base: f64) -> LrSchedule {
        match self {
            LrScheduleArg::Paper => LrSchedule::paper(base),
            LrScheduleArg::Reference => LrSchedule::reference(base),
            LrScheduleArg::Constant => LrSchedule::constant(base),
        }
    }

    fn of(s: &LrSchedule) -> Option<Self> {
        [Self::Paper, Self::Reference, Self::Constant]
            .into_iter()
            .find(|a| a.schedule(s.base) == *s)
    }
}

const STRUCTURE_EXPECTED: &str =
    "expected linear (-), nonlinear (~), linear2 (--) or nonlinear2 (~~)";

/// Value parser of `--structure`: the names, the paper's symbols typed as `-`, `~`, `--`, `~~`,
/// and the dashes `—`, `——` of GB Table 1.
pub(crate) fn parse_structure(s: &str) -> Result<Structure, String> {
    let t = s.trim();
    match t {
        "-" => return Ok(Structure::Linear),
        "~" => return Ok(Structure::Nonlinear),
        "--" => return Ok(Structure::Linear2),
        "~~" => return Ok(Structure::Nonlinear2),
        _ => {}
    }
    if let Ok(v) = t.to_ascii_lowercase().parse::<Structure>() {
        return Ok(v);
    }
    // An unquoted `~` is expanded by the shell to the home directory.
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty());
    if home.is_some_and(|h| Path::new(&h) == Path::new(t)) {
        return Err(format!(
            "{STRUCTURE_EXPECTED}; got {t:?}, the shell's expansion of an unquoted `~`: \
             quote it (`--structure '~'`) or use `nonlinear`"
        ));
    }
    Err(format!("{STRUCTURE_EXPECTED}; got {t:?}"))
}

/// `f32` or `bf16` (`--network-products`).
pub(crate) fn parse_precision(s: &str) -> Result<Precision, String> {
    s.parse()
}

pub(crate) fn parse_chain_products(s: &str) -> Result<ChainProducts, String> {
    s.parse()
}

/// The networks' products of a new `train`, `quick` or `bench` run unless told: bf16 where
/// this CPU runs them on AMX ([`Precision::bf16_available`]), f32 elsewhere. Resolved when the
/// run is made, so the run records what ran and keeps it when resumed on another CPU. The test
/// NLL with bf16 stayed within its standard error of f32's (README, Speed); `reproduce` keeps
/// f32 so that every committed table re-runs as it was made.
pub(crate) fn default_network_products() -> Precision {
    Precision::Bf16.effective()
}

/// The PCD sweeps' chain products unless told: the exact bf16x3 products where this CPU has
/// AMX-BF16, f32 elsewhere; resolved like [`default_network_products`].
pub(crate) fn default_chain_products() -> ChainProducts {
    ChainProducts::Bf16x3.effective()
}

fn parse_tau(s: &str) -> Result<f64, String> {
    parse_positive(s, "a finite number > 0")
}

fn parse_positive(s: &str, what: &str) -> Result<f64, String> {
    let t = s.trim();
    // `1/7`, the paper's τ, is accepted as a fraction.
    let v = match t.split_once('/') {
        Some((a, b)) => a
            .trim()
            .parse::<f64>()
            .ok()
            .zip(b.trim().parse::<f64>().ok())
            .map(|(a, b)| a / b),
        None => t.parse::<f64>().ok(),
    };
    match v {
        Some(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("expected {what}")),
    }
}

fn parse_lr(s: &str) -> Result<f64, String> {
    parse_positive(s, "a finite learning rate > 0")
}

fn parse_fraction(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err("expected a fraction of the iterations in [0, 1]".into()),
    }
}

fn parse_iters(s: &str) -> Result<u64, String> {
    let v: u64 = s
        .trim()
        .parse()
        .map_err(|_| "expected an integer ≥ 1".to_string())?;
    if v == 0 {
        return Err("expected an integer ≥ 1, got 0".into());
    }
    Ok(v)
}

/// Train GumBolt, GumBolt-nW or a baseline (dVAE, dVAE++, REINFORCE) on MNIST or OMNIGLOT
/// into a run directory (checkpoints, metrics, curves).
///
/// `--dataset omniglot` trains on the bundled rebuild of OMNIGLOT (results labelled
/// "OMNIGLOT (rebuilt)"), on a rebuilt-format directory with --data-dir, or on Burda et
/// al.'s chardata.mat with --data-file; its training images are re-binarised for every
/// minibatch, the validation and test images are binarised once (seed 1).
///
/// The run directory (--out) gets `checkpoint.ckpt` (periodic and final, written
/// atomically), `metrics.jsonl` (one monitoring record per line: the objectives F_k and L_k
/// with k = --monitor-k on training and validation images, GB Fig. 2b), `config.json`,
/// `learning_curves.png` and `train_summary.json`; the summary is also printed as one JSON
/// line on stdout (`sec_per_iter` is the median over this invocation's steps). An existing
/// run is never overwritten: continue it with --resume (model options, if repeated, must
/// match the checkpoint's; monitoring and checkpoint options may change) or start over with
/// --force. A resumed run ends with the same parameters as an uninterrupted one.
///
/// Structures can be named by the symbols of GB Table 1: `-`, `~`, `--`, `~~` (quote `~`
/// against the shell's home-directory expansion: `--structure '~'`; `--structure --` and
/// `--structure=--` both work).
#[derive(Debug, Clone, Args)]
// Negative numbers are values (`--tau -1` is an invalid τ); a repeated option takes the last value.
#[command(allow_negative_numbers = true, args_override_self = true)]
pub(crate) struct TrainArgs {
    /// The run directory (created if needed).
    #[arg(long, value_name = "DIR")]
    pub(crate) out: PathBuf,

    /// Continue the interrupted run in --out from its last checkpoint.
    #[arg(long)]
    pub(crate) resume: bool,

    /// Start over, deleting the run files already in --out.
    #[arg(long, conflicts_with = "resume")]
    pub(crate) force: bool,

    /// The data set [default: mnist; with --resume: the run's].
    #[arg(long, value_enum, help_heading = "Data")]
    pub(crate) dataset: Option<DatasetArg>,

    /// Directory holding binarized_mnist_{train,valid,test}.amat[.gz] (mnist) or the rebuilt
    /// OMNIGLOT files omniglot_{train,test}_grey.amat[.gz], omniglot_{train,test}_labels.txt
    /// and alphabets.txt (omniglot) [default: the bundled copy].
    #[arg(long, value_name = "DIR", help_heading = "Data")]
    pub(crate) data_dir: Option<PathBuf>,

    /// OMNIGLOT only: Burda et al.'s chardata.mat (the paper's data) instead of the rebuild.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "data_dir",
        help_heading = "Data"
    )]
    pub(crate) data_file: Option<PathBuf>,

    /// Network structure (GB Table 1): linear (-), nonlinear (~), linear2 (--), nonlinear2 (~~)
    /// [default: nonlinear].
    #[arg(long, value_name = "S", value_parser = parse_structure, allow_hyphen_values = true,
          help_heading = "Model")]
    pub(crate) structure: Option<Structure>,

    /// The model [default: gumbolt].
    #[arg(long, value_enum, help_heading = "Model")]
    pub(crate) model: Option<ModelKind>,

    // The help text is an attribute, not a doc comment: rustdoc would read its brackets as links.
    #[arg(long, value_name = "PRIOR", value_parser = prior_arg::parse_prior,
          help_heading = "Model",
          help = "The prior: rbm, bernoulli (GumBolt-nW), or a Boltzmann machine on a graph: \
                  chimera[:M,N,T] (default 5,5,4), pegasus[:M] (default 4), zephyr[:M,T] \
                  (default 2,5), graph:FILE.json (the edges of a {\"h\": [...], \"edges\": \
                  [[i, j, w], ...]} file; training starts from zero parameters). The graph's \
                  nodes are the latent units, split evenly over the stochastic layers in node \
                  order [default: rbm]")]
    pub(crate) prior: Option<PriorArg>,

    /// Importance samples k of the training objective [default: 1].
    #[arg(long, value_name = "K", value_parser = int_at_least::<1>, help_heading = "Model")]
    pub(crate) k: Option<usize>,

    /// Temperature τ of the relaxation (GumBolt) or 1/β of the smoothing (dVAE, dVAE++), a
    /// number or a fraction such as 1/7 [default: the paper's: GumBolt 1/7, dVAE 1/5, dVAE++
    /// 1/10 on MNIST and 1/8 on OMNIGLOT].
    #[arg(long, value_name = "TAU", value_parser = parse_tau, help_heading = "Model")]
    pub(crate) tau: Option<f64>,

    /// Hidden Dense → BN → tanh blocks per network [default: the structure's: 0, 2, 1, 2].
    #[arg(long, value_name = "N", value_parser = int_at_least::<0>, help_heading = "Model")]
    pub(crate) hidden_layers: Option<usize>,

    /// Training iterations T (the schedules scale with it; GB: 10⁶). Required for a new run.
    #[arg(long, value_name = "T", value_parser = parse_iters,
          required_unless_present = "resume", help_heading = "Training")]
    pub(crate) iters: Option<u64>,

    /// Seed of the initialisation, the noise, the minibatch order and the PCD chains
    /// [default: 0].
    #[arg(long, value_name = "N", help_heading = "Training")]
    pub(crate) seed: Option<u64>,

    /// Base learning rate of Adam [default: 3e-3].
    #[arg(long, value_name = "LR", value_parser = parse_lr, help_heading = "Training")]
    pub(crate) lr: Option<f64>,

    /// Learning-rate schedule [default: paper].
    #[arg(long, value_enum, help_heading = "Training")]
    pub(crate) lr_schedule: Option<LrScheduleArg>,

    /// Fraction of the iterations over which the KL term is annealed from 0 to 1
    /// [default: 0.3].
    #[arg(long, value_name = "F", value_parser = parse_fraction, help_heading = "Training")]
    pub(crate) kl_warmup: Option<f64>,

    /// Minibatch size [default: 100].
    #[arg(long, value_name = "B", value_parser = int_at_least::<1>, help_heading = "Training")]
    pub(crate) batch_size: Option<usize>,

    /// PCD block-Gibbs sweeps per iteration (--model gumbolt) [default: 200].
    #[arg(long, value_name = "N", value_parser = int_at_least::<1>, help_heading = "Training")]
    pub(crate) pcd_steps: Option<usize>,

    /// Threads of a training step: the PCD negative phase beside the networks, PCD chain groups
    /// and large GEMMs split over them. The results are bit-identical for every T
    /// [default: the number of cores].
    #[arg(long, value_name = "T", value_parser = int_at_least::<1>, help_heading = "Training")]
    pub(crate) threads: Option<usize>,

    /// PCD persistent chains (--model gumbolt) [default: 100].
    #[arg(long, value_name = "N", value_parser = int_at_least::<1>, help_heading = "Training")]
    pub(crate) pcd_chains: Option<usize>,

    /// Arithmetic of the encoders' and decoder's products while training: f32, or bf16 (bf16
    /// operands with f32 accumulation on CPUs with AMX-BF16, f32 elsewhere; results then
    /// depend on the CPU). Evaluation, the prior and the negative phase are always f32
    /// [default for a new run: bf16 where this CPU has AMX-BF16, else f32; recorded in the run].
    #[arg(long, value_name = "P", value_parser = parse_precision, help_heading = "Training")]
    pub(crate) network_products: Option<Precision>,

    /// Arithmetic of the PCD sweeps' products of the chains' 0/1 states with the prior's
    /// couplings (--model gumbolt): f32, or bf16x3 (each coupling split into three bf16 parts
    /// that sum to it exactly, so every product is exact, summed in f32 on CPUs with AMX-BF16;
    /// f32 elsewhere; results then depend on the CPU) [default for a new run: bf16x3 where this
    /// CPU has AMX-BF16, else f32; recorded in the run].
    #[arg(long, value_name = "P", value_parser = parse_chain_products, help_heading = "Training")]
    pub(crate) chain_products: Option<ChainProducts>,

    /// Monitor every N iterations (and at 0 and T) [default: 20 records per run].
    #[arg(long, value_name = "N", value_parser = parse_iters, conflicts_with = "monitor_records",
          help_heading = "Monitoring")]
    pub(crate) monitor_every: Option<u64>,

    /// Number of monitoring records over the run (every ⌈T/N⌉ iterations, and at 0) [default: 20].
    #[arg(long, value_name = "N", value_parser = parse_iters, help_heading = "Monitoring")]
    pub(crate) monitor_records: Option<u64>,

    /// Importance samples k of the monitored objectives (GB Fig. 2b: 20) [default: 20].
    #[arg(long, value_name = "K", value_parser = int_at_least::<1>, help_heading = "Monitoring")]
    pub(crate) monitor_k: Option<usize>,

    /// Training and validation images monitored, each [default: 500].
    #[arg(long, value_name = "N", value_parser = int_at_least::<1>, help_heading = "Monitoring")]
    pub(crate) monitor_images: Option<usize>,

    /// Write a checkpoint every N iterations (and at the end) [default: 20 per run].
    #[arg(long, value_name = "N", value_parser = parse_iters, help_heading = "Monitoring")]
    pub(crate) checkpoint_every: Option<u64>,

    /// No progress display or monitoring lines on stderr.
    #[arg(long, short)]
    pub(crate) quiet: bool,

    /// Stop (with a checkpoint) after this many iterations, as if interrupted (for tests).
    #[arg(long, value_name = "N", hide = true)]
    pub(crate) stop_after: Option<u64>,
}

impl TrainArgs {
    /// Arguments for `gumbolt quick`.
    pub(crate) fn quick(out: PathBuf, iters: u64, seed: u64, quiet: bool) -> Self {
        Self {
            out,
            resume: false,
            force: false,
            dataset: None,
            data_dir: None,
            data_file: None,
            structure: None,
            model: None,
            prior: None,
            k: None,
            tau: None,
            hidden_layers: None,
            iters: Some(iters),
            seed: Some(seed),
            lr: None,
            lr_schedule: None,
            kl_warmup: None,
            batch_size: None,
            pcd_steps: None,
            pcd_chains: None,
            network_products: None,
            chain_products: None,
            monitor_every: None,
            monitor_records: None,
            monitor_k: None,
            monitor_images: None,
            checkpoint_every: None,
            quiet,
            stop_after: None,
            threads: None,
        }
    }
}

/// The CLI option behind a configuration field of the models crate.
fn option_for(name: &str) -> String {
    match name {
        "k" => "--k".into(),
        "tau" => "--tau".into(),
        "train.total_iterations" => "--iters".into(),
        "train.lr.base" | "train.lr.milestones" => "--lr".into(),
        "train.kl_warmup_fraction" => "--kl-warmup".into(),
        "train.network_products" => "--network-products".into(),
        "batch_size" => "--batch-size".into(),
        "monitor" => "--monitor-k".into(),
        "chains" => "--pcd-chains".into(),
        "sweeps" => "--pcd-steps".into(),
        "products" => "--chain-products".into(),
        other => format!("the setting `{other}`"),
    }
}

/// Configuration errors of the models crate as usage errors naming the option.
fn config_error(e: TrainError) -> anyhow::Error {
    match e {
        TrainError::InvalidConfig { name, reason }
        | TrainError::Model(ModelError::InvalidConfig { name, reason }) => usage_error(
            SUB,
            format!("invalid value for {}: {reason}", option_for(name)),
        ),
        TrainError::Model(ModelError::Sampler(gumbolt_samplers::SamplerError::InvalidConfig {
            name,
            reason,
        })) => usage_error(
            SUB,
            format!("invalid value for {}: {reason}", option_for(name)),
        ),
        TrainError::Model(ModelError::Objective(e)) => usage_error(SUB, e.to_string()),
        e => anyhow::Error::new(e),
    }
}

/// Options given with --resume must match the checkpoint's run.
fn check_resume_options(args: &TrainArgs, kind: PriorKind, meta: &CheckpointMeta) -> Result<()> {
    let m = &meta.model;
    let mut diffs: Vec<String> = Vec::new();
    let mut check = |given: bool, option: &str, stored: String| {
        if given {
            diffs.push(format!("{option} (the run has {stored})"));
        }
    };
    let model = ModelKind::of(kind, m.objective);
    check(
        args.model.is_some_and(|a| a != model),
        "--model",
        model.name.into(),
    );
    check(
        args.structure.is_some_and(|s| s != m.structure),
        "--structure",
        m.structure.name().into(),
    );
    check(args.k.is_some_and(|k| k != m.k), "--k", m.k.to_string());
    check(
        args.tau
            .is_some_and(|t| (t - m.tau).abs() > 1e-12 * m.tau.abs()),
        "--tau",
        m.tau.to_string(),
    );
    check(
        args.hidden_layers.is_some_and(|h| h != m.hidden_layers),
        "--hidden-layers",
        m.hidden_layers.to_string(),
    );
    check(
        args.iters.is_some_and(|t| t != m.train.total_iterations),
        "--iters",
        m.train.total_iterations.to_string(),
    );
    check(
        args.seed.is_some_and(|s| s != m.seed),
        "--seed",
        m.seed.to_string(),
    );
    check(
        args.lr.is_some_and(|lr| lr != m.train.lr.base),
        "--lr",
        m.train.lr.base.to_string(),
    );
    let sched = LrScheduleArg::of(&m.train.lr);
    check(
        args.lr_schedule.is_some_and(|s| Some(s) != sched),
        "--lr-schedule",
        sched.map_or("a custom schedule".into(), |s| {
            format!("{s:?}").to_ascii_lowercase()
        }),
    );
    check(
        args.kl_warmup
            .is_some_and(|f| f != m.train.kl_warmup_fraction),
        "--kl-warmup",
        m.train.kl_warmup_fraction.to_string(),
    );
    check(
        args.network_products
            .is_some_and(|p| p != m.train.network_products),
        "--network-products",
        m.train.network_products.to_string(),
    );
    check(
        args.batch_size
            .is_some_and(|b| b != meta.trainer.batch_size),
        "--batch-size",
        meta.trainer.batch_size.to_string(),
    );
    if let Some(p) = &args.prior {
        let stored = prior_arg::label_of(kind, m);
        check(p.label() != stored, "--prior", stored);
    }
    if kind.uses_pcd() {
        let pcd: Option<PcdConfig> = serde_json::from_value(meta.negative_phase.clone()).ok();
        if let Some(p) = pcd {
            check(
                args.pcd_steps.is_some_and(|s| s != p.sweeps),
                "--pcd-steps",
                p.sweeps.to_string(),
            );
            check(
                args.pcd_chains.is_some_and(|c| c != p.chains),
                "--pcd-chains",
                p.chains.to_string(),
            );
            check(
                args.chain_products.is_some_and(|c| c != p.products),
                "--chain-products",
                p.products.to_string(),
            );
        }
    }
    if diffs.is_empty() {
        return Ok(());
    }
    Err(usage_error(
        SUB,
        format!(
            "--resume continues the run in {} with its own settings; these options differ: {} \
             (leave them out, or start a new run with --force or another --out)",
            args.out.display(),
            diffs.join(", ")
        ),
    ))
}

/// Runs `gumbolt train`: [`train_run`], then the summary as one JSON line on stdout.
pub(crate) fn run(args: TrainArgs) -> Result<()> {
    let summary = train_run(args)?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", serde_json::to_string(&summary)?)
        .and_then(|()| stdout.flush())
        .context("writing to stdout")?;
    Ok(())
}

/// `gumbolt train`'s options as a [`TrainRequest`] (every option checked, errors naming it),
/// then [`train`]. Shared by `gumbolt train` and `quick`.
pub(crate) fn train_run(args: TrainArgs) -> Result<TrainSummary> {
    let t_start = Instant::now();
    let request = request_of(args)?;
    train(request, t_start)
}

/// A training run in the library's terms: the model, trainer and PCD configurations of a new
/// run, or what changes when a run is continued. `gumbolt train` parses its options into one
/// ([`train_run`]); `reproduce` builds one from its cell.
#[derive(Debug, Clone)]
pub(crate) struct TrainRequest {
    /// The run directory.
    pub(crate) out: PathBuf,
    /// A new run, or the continuation of the one in `out`.
    pub(crate) start: Start,
    /// Threads of a training step (the results do not depend on it).
    pub(crate) threads: usize,
    /// No progress display or monitoring lines on stderr.
    pub(crate) quiet: bool,
    /// Stop (with a checkpoint) after this many iterations, as if interrupted.
    pub(crate) stop_after: Option<u64>,
}

/// How a [`TrainRequest`] starts.
#[derive(Debug, Clone)]
pub(crate) enum Start {
    /// A new run. With `overwrite`, the run files already in the directory are replaced (once the
    /// new run is set up); without it, a directory holding a run is an error.
    New { run: Box<NewRun>, overwrite: bool },
    /// The run in the directory, continued from its checkpoint with its own settings.
    Resume(ResumeRun),
}

/// A new run: the data, the model kind and the library's configurations.
#[derive(Debug, Clone)]
pub(crate) struct NewRun {
    pub(crate) dataset: DatasetArg,
    pub(crate) source: Source,
    pub(crate) kind: PriorKind,
    pub(crate) model: ModelKind,
    pub(crate) config: GumBoltConfig,
    /// The negative phase's chains (models whose prior uses PCD).
    pub(crate) pcd: Option<PcdConfig>,
    pub(crate) trainer: TrainerConfig,
}

impl NewRun {
    /// `gumbolt train`'s defaults, which are the paper's settings (GB §5.1): `model` with
    /// `prior` (None: the model's own) on `structure`, k = 1, T = `iters`, the paper's τ and
    /// learning-rate schedule, PCD with [`DEFAULT_PCD_CHAINS`] chains and
    /// [`DEFAULT_PCD_STEPS`] sweeps.
    pub(crate) fn defaults(
        dataset: DatasetArg,
        source: Source,
        model: ModelKind,
        prior: Option<&PriorArg>,
        structure: Structure,
        iters: u64,
        seed: u64,
    ) -> Result<Self> {
        let kind = prior_arg::kind_of(model, prior)?;
        let mut config = GumBoltConfig::new(structure, dataset.pixels())
            .with_k(1)
            .with_seed(seed)
            .with_iterations(iters);
        config.objective = model.objective;
        config.tau = model.paper_tau(dataset == DatasetArg::Omniglot);
        config.train.lr = LrSchedule::paper(DEFAULT_LR);
        prior_arg::apply(prior, &mut config)?;
        let pcd = kind.uses_pcd().then(|| {
            PcdConfig::default()
                .chains(DEFAULT_PCD_CHAINS)
                .sweeps(DEFAULT_PCD_STEPS)
                .seed(seed ^ PCD_SEED_MIX)
        });
        Ok(Self {
            dataset,
            source,
            kind,
            model: ModelKind::of(kind, model.objective),
            config,
            pcd,
            trainer: TrainerConfig::default().with_seed(seed),
        })
    }
}

/// What may change when a run is continued (everything else is the run's own).
#[derive(Debug, Clone, Default)]
pub(crate) struct ResumeRun {
    /// Where the run's data are now [None: where its config.json says].
    pub(crate) source: Option<Source>,
    /// Changes to the monitoring settings.
    pub(crate) monitor: MonitorChanges,
    /// A new checkpoint interval.
    pub(crate) checkpoint_interval: Option<Interval>,
}

/// Changes to monitoring settings (`--monitor-every`, `--monitor-records`, `--monitor-k`,
/// `--monitor-images`); None keeps the setting.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct MonitorChanges {
    pub(crate) interval: Option<Interval>,
    pub(crate) k: Option<usize>,
    pub(crate) images: Option<usize>,
}

impl MonitorChanges {
    fn of(args: &TrainArgs) -> Self {
        Self {
            interval: args
                .monitor_records
                .map(Interval::Times)
                .or(args.monitor_every.map(Interval::Every)),
            k: args.monitor_k,
            images: args.monitor_images,
        }
    }

    /// `base` with these changes.
    fn apply(&self, base: &MonitorConfig) -> MonitorConfig {
        let mut m = base.clone();
        if let Some(i) = self.interval {
            m.interval = i;
        }
        if let Some(k) = self.k {
            m.k = k;
        }
        if let Some(n) = self.images {
            m.train_images = n;
            m.valid_images = n;
        }
        m
    }
}

/// The request of `gumbolt train`'s options: the defaults ([`NewRun::defaults`]) with the
/// options given, checked here so that errors name the option.
pub(crate) fn request_of(args: TrainArgs) -> Result<TrainRequest> {
    if args.stop_after == Some(0) {
        return Err(usage_error(
            SUB,
            "invalid value for --stop-after: expected ≥ 1",
        ));
    }
    let start = if args.resume {
        Start::Resume(resume_of(&args)?)
    } else {
        Start::New {
            run: Box::new(new_run_of(&args)?),
            overwrite: args.force,
        }
    };
    Ok(TrainRequest {
        out: args.out,
        start,
        threads: args.threads.unwrap_or_else(super::cores),
        quiet: args.quiet,
        stop_after: args.stop_after,
    })
}

fn new_run_of(args: &TrainArgs) -> Result<NewRun> {
    let iters = args
        .iters
        .ok_or_else(|| usage_error(SUB, "--iters is required for a new run"))?;
    let dataset = args.dataset.unwrap_or(DatasetArg::Mnist);
    dataset::check_data_file(SUB, dataset, args.data_file.as_deref())?;
    let source = Source::of(args.data_dir.as_deref(), args.data_file.as_deref());
    let mut run = NewRun::defaults(
        dataset,
        source,
        args.model.unwrap_or(GUMBOLT),
        args.prior.as_ref(),
        args.structure.unwrap_or(Structure::Nonlinear),
        iters,
        args.seed.unwrap_or(0),
    )?;
    if run.pcd.is_none()
        && (args.pcd_steps.is_some() || args.pcd_chains.is_some() || args.chain_products.is_some())
        && !args.quiet
    {
        eprintln!(
            "warning: --pcd-steps, --pcd-chains and --chain-products are ignored by --model {}",
            run.model.name
        );
    }
    let c = &mut run.config;
    if let Some(k) = args.k {
        c.k = k;
    }
    if let Some(t) = args.tau {
        c.tau = t;
    }
    if let Some(h) = args.hidden_layers {
        c.hidden_layers = h;
    }
    let schedule = args.lr_schedule.unwrap_or(LrScheduleArg::Paper);
    c.train.lr = schedule.schedule(args.lr.unwrap_or(DEFAULT_LR));
    if let Some(f) = args.kl_warmup {
        c.train.kl_warmup_fraction = f;
    }
    c.train.network_products = args
        .network_products
        .unwrap_or_else(default_network_products);
    c.validate()
        .map_err(|e| config_error(TrainError::Model(e)))?;
    if let Some(b) = args.batch_size {
        run.trainer.batch_size = b;
    }
    run.trainer.monitor = MonitorChanges::of(args).apply(&run.trainer.monitor);
    if let Some(n) = args.checkpoint_every {
        run.trainer.checkpoint_interval = Interval::Every(n);
    }
    if let Some(p) = &mut run.pcd {
        p.chains = args.pcd_chains.unwrap_or(p.chains);
        p.sweeps = args.pcd_steps.unwrap_or(p.sweeps);
        p.products = args.chain_products.unwrap_or_else(default_chain_products);
    }
    Ok(run)
}

fn resume_of(args: &TrainArgs) -> Result<ResumeRun> {
    let dir = RunDir::new(&args.out);
    let ckpt = dir.checkpoint();
    if ckpt.exists() {
        // Options given again must match the run's (the data set is checked on loading).
        let (kind, meta) = dir.checkpoint_meta()?;
        check_resume_options(args, kind, &meta)?;
        let run_dataset = run_dataset(&dir, &meta);
        if let Some(d) = args.dataset.filter(|d| *d != run_dataset) {
            return Err(usage_error(
                SUB,
                format!(
                    "--resume continues the run in {} on its own data set ({}); --dataset {} \
                     differs",
                    args.out.display(),
                    run_dataset.name(),
                    d.name()
                ),
            ));
        }
        dataset::check_data_file(SUB, run_dataset, args.data_file.as_deref())?;
    }
    Ok(ResumeRun {
        source: (args.data_dir.is_some() || args.data_file.is_some())
            .then(|| Source::of(args.data_dir.as_deref(), args.data_file.as_deref())),
        monitor: MonitorChanges::of(args),
        checkpoint_interval: args.checkpoint_every.map(Interval::Every),
    })
}

/// The data set of the run in `dir`: its config.json's, else what the checkpoint's training
/// images say (grey levels are OMNIGLOT's).
fn run_dataset(dir: &RunDir, meta: &CheckpointMeta) -> DatasetArg {
    let stored = dir.config().unwrap_or(None).and_then(|c| c.data());
    stored.map_or(
        if meta.data.kind == "grey" {
            DatasetArg::Omniglot
        } else {
            DatasetArg::Mnist
        },
        |(d, _)| d,
    )
}

/// Trains a new run, or continues one, in its run directory (checkpoints, `metrics.jsonl`,
/// `config.json`, `manifest.json`, `learning_curves.png`, `train_summary.json`) with the
/// library's [`Trainer`]; returns the summary (also written to `train_summary.json`).
/// `t_start` is when the invocation started (for the summary's wall time).
pub(crate) fn train(request: TrainRequest, t_start: Instant) -> Result<TrainSummary> {
    let dir = RunDir::new(&request.out);
    match &request.start {
        Start::New { run, overwrite } => fresh(&request, run, *overwrite, dir, t_start),
        Start::Resume(r) => resume(&request, r, dir, t_start),
    }
}

fn fresh(
    request: &TrainRequest,
    run: &NewRun,
    overwrite: bool,
    dir: RunDir,
    t_start: Instant,
) -> Result<TrainSummary> {
    // The run directory: never overwrite a run without --force.
    if dir.root().exists() && !dir.root().is_dir() {
        bail!(
            "--out {}: exists and is not a directory",
            dir.root().display()
        );
    }
    std::fs::create_dir_all(dir.root()).with_context(|| {
        format!(
            "--out {}: cannot create the directory",
            dir.root().display()
        )
    })?;
    // One writer per run directory (held until this function returns).
    let _lock = RunLock::acquire(dir.root(), "--out")?;
    let existing = dir.present(&RUN_MARKERS);
    if !existing.is_empty() && !overwrite {
        bail!(
            "--out {} already holds a run ({}); pass --resume to continue it or --force to \
             start over",
            dir.root().display(),
            existing
                .iter()
                .filter_map(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }

    let data = dataset::load_train(run.dataset, &run.source, request.quiet)?;
    let mut mc = run.config.clone();
    // The model's input dimension is the data's (the loaders hold every source of a data set
    // to its declared image size).
    mc.pixels = data.train.dataset().dim();
    let means = data.means();
    let ckpt = dir.checkpoint();
    let (data_dir, data_file) = run.source.absolute().paths();
    let config = RunConfig {
        writer: format!("gumbolt {}", env!("CARGO_PKG_VERSION")),
        dataset: run.dataset.name().into(),
        dataset_label: dataset::label(run.dataset, &run.source).into(),
        data_dir,
        data_file,
        model: run.model.name.into(),
        model_kind: run.kind.checkpoint_kind(),
        model_config: mc.clone(),
        pcd: run.pcd.clone(),
        trainer: run.trainer.clone(),
        command: std::env::args().collect(),
    };
    let session = Session {
        dir: &dir,
        request,
        overwrite,
        config,
        resumed_from: None,
        t_start,
    };
    registry::with_model(
        run.kind,
        Fresh {
            session,
            mc,
            means,
            pcd: run.pcd.clone().unwrap_or_default(),
            images: data.train,
            valid: &data.valid,
            tc: run.trainer.clone(),
            ckpt,
        },
    )
}

/// A new run of a model kind: the model built, the run directory set up, then trained.
struct Fresh<'a> {
    session: Session<'a>,
    mc: GumBoltConfig,
    means: Vec<f32>,
    /// Ignored by a prior without PCD.
    pcd: PcdConfig,
    images: TrainImages,
    valid: &'a Dataset,
    tc: TrainerConfig,
    ckpt: PathBuf,
}

impl ModelVisitor for Fresh<'_> {
    type Output = Result<TrainSummary>;

    fn visit<P: CliPrior, G: CheckpointPartition<P>>(self, types: ModelTypes<P, G>) -> Self::Output {
        let model = (types.fresh)(self.mc, &self.means, self.pcd)
            .map_err(|e| config_error(TrainError::Model(e)))?;
        let trainer = Trainer::new(model, self.images, Some(self.valid), self.tc)
            .map_err(config_error)?
            .with_checkpoint_path(self.ckpt);
        self.session.start_fresh()?;
        self.session.drive(trainer)
    }
}

/// A run continued from its checkpoint.
struct Resume<'a> {
    session: Session<'a>,
    changes: &'a ResumeRun,
    meta: &'a CheckpointMeta,
    images: TrainImages,
    valid: &'a Dataset,
}

impl ModelVisitor for Resume<'_> {
    type Output = Result<TrainSummary>;

    fn visit<P: CliPrior, G: CheckpointPartition<P>>(self, _: ModelTypes<P, G>) -> Self::Output {
        let mut session = self.session;
        let t = Trainer::<P, G>::resume(session.dir.checkpoint(), self.images, Some(self.valid))
            .map_err(resume_error)?;
        let t = session.prepare_resume(t, self.changes, self.meta, self.valid)?;
        session.drive(t)
    }
}

fn resume(
    request: &TrainRequest,
    changes: &ResumeRun,
    dir: RunDir,
    t_start: Instant,
) -> Result<TrainSummary> {
    let ckpt = dir.checkpoint();
    // One writer per run directory (held until this function returns).
    let _lock = if dir.root().is_dir() {
        Some(RunLock::acquire(dir.root(), "--out")?)
    } else {
        None
    };
    if !ckpt.exists() {
        bail!(
            "--resume: {} has no checkpoint to resume from ({} not found; start over with --force)",
            dir.root().display(),
            ckpt.display()
        );
    }
    let (kind, meta) = dir.checkpoint_meta()?;
    let dataset = run_dataset(&dir, &meta);
    let source = match &changes.source {
        Some(s) => s.clone(),
        None => dir
            .config()
            .unwrap_or(None)
            .and_then(|c| c.data())
            .map_or(Source::Bundled, |(_, s)| s),
    };
    let data = dataset::load_train(dataset, &source, request.quiet)?;
    let images = data.train;
    let (data_dir, data_file) = source.absolute().paths();
    let pcd = kind
        .uses_pcd()
        .then(|| serde_json::from_value(meta.negative_phase.clone()).ok())
        .flatten();
    let config = RunConfig {
        writer: format!("gumbolt {}", env!("CARGO_PKG_VERSION")),
        dataset: dataset.name().into(),
        dataset_label: dataset::label(dataset, &source).into(),
        data_dir,
        data_file,
        model: ModelKind::of(kind, meta.model.objective).name.into(),
        model_kind: kind.checkpoint_kind(),
        model_config: meta.model.clone(),
        pcd,
        trainer: meta.trainer.clone(),
        command: std::env::args().collect(),
    };
    let session = Session {
        dir: &dir,
        request,
        overwrite: false,
        config,
        resumed_from: Some(meta.iteration),
        t_start,
    };
    registry::with_model(
        kind,
        Resume {
            session,
            changes,
            meta: &meta,
            images,
            valid: &data.valid,
        },
    )
}

fn resume_error(e: TrainError) -> anyhow::Error {
    match e {
        TrainError::Checkpoint(e @ CheckpointError::WrongStructure { .. }) => anyhow::Error::new(e)
            .context("--resume: the checkpoint does not fit (another data set? pass the run's --data-dir or --data-file)"),
        e => anyhow::Error::new(e).context("--resume"),
    }
}

/// One training invocation on a run directory.
struct Session<'a> {
    dir: &'a RunDir,
    request: &'a TrainRequest,
    /// A new run replacing the one in the directory.
    overwrite: bool,
    config: RunConfig,
    resumed_from: Option<u64>,
    t_start: Instant,
}
/// The result of [`train_run`]: the final JSON line of `gumbolt train` (also
/// `train_summary.json`).
#[derive(Debug, Serialize)]
pub(crate) struct TrainSummary {
    run: String,
    model: String,
    model_kind: String,
    structure: &'static str,
    k: usize,
    tau: f64,
    seed: u64,
    /// Total iterations T.
    iters: u64,
    /// Iterations done.
    pub(crate) iteration: u64,
    finished: bool,
    resumed_from: Option<u64>,
    /// Steps taken by this invocation.
    steps: u64,
    /// Median seconds per training step of this invocation.
    pub(crate) sec_per_iter: Option<f64>,
    /// Mean seconds per training step of this invocation.
    sec_per_iter_mean: Option<f64>,
    /// Training time (steps only) of the run, all sessions.
    train_seconds: f64,
    /// Wall time of this invocation (data loading, steps, monitoring, checkpoints, plots).
    wall_seconds: f64,
    /// Time spent monitoring in this invocation.
    monitor_seconds: f64,
    /// The last monitoring record.
    #[serde(rename = "final")]
    final_values: Option<FinalValues>,
    checkpoint: String,
    metrics: String,
    learning_curves: Option<String>,
    matmul_threads: Option<String>,
    /// `train.network_products` of the run, and what this CPU ran ([`Precision::effective`]).
    network_products: Precision,
    network_products_effective: Precision,
    /// The PCD sweeps' `--chain-products` (models with PCD), and what this CPU ran
    /// ([`ChainProducts::effective`]).
    chain_products: Option<ChainProducts>,
    chain_products_effective: Option<ChainProducts>,
    /// Over this invocation's training (steps and monitoring): the fraction of all CPU time
    /// the hypervisor stole and the fraction other processes used (Linux only).
    host: Option<super::hostload::HostLoad>,
}

#[derive(Debug, Serialize)]
struct FinalValues {
    iteration: u64,
    k: usize,
    train_relaxed: f64,
    train_discrete: f64,
    valid_relaxed: Option<f64>,
    valid_discrete: Option<f64>,
    log_z: f64,
    log_z_std: f64,
    log_z_method: String,
}

impl FinalValues {
    fn of(r: &MetricsRecord) -> Self {
        Self {
            iteration: r.iteration,
            k: r.k,
            train_relaxed: r.train_relaxed,
            train_discrete: r.train_discrete,
            valid_relaxed: r.valid_relaxed,
            valid_discrete: r.valid_discrete,
            log_z: r.log_z,
            log_z_std: r.log_z_std,
            log_z_method: r.log_z_method.clone(),
        }
    }
}

impl Session<'_> {
    fn note(&self, msg: &str) {
        if !self.request.quiet {
            eprintln!("{msg}");
        }
    }

    /// A new run: with --force the old run's files removed (only now that the new run is set
    /// up, so a failing --force leaves the old run intact), then `config.json` and an empty
    /// `metrics.jsonl`.
    fn start_fresh(&self) -> Result<()> {
        if self.overwrite {
            for p in self.dir.present(&RUN_FILES) {
                std::fs::remove_file(&p)
                    .with_context(|| format!("cannot remove {}", p.display()))?;
            }
        }
        rundir::write_json_atomic(&self.dir.file(CONFIG), &self.config)?;
        rundir::write_atomic(&self.dir.file(METRICS), b"")?;
        self.write_manifest()
    }

    /// `manifest.json` of this session (build, machine, data checksums, command line).
    fn write_manifest(&self) -> Result<()> {
        super::manifest::write_train(self.dir.root(), &self.config, self.request.threads)
    }

    /// A resumed run: monitoring and checkpoint options applied, `metrics.jsonl` cut back to the
    /// records the checkpoint's state has seen (later ones are recomputed identically),
    /// `config.json` rewritten.
    fn prepare_resume<P: GumBoltPrior, G: CheckpointPartition<P>>(
        &mut self,
        mut trainer: Trainer<P, G>,
        changes: &ResumeRun,
        meta: &CheckpointMeta,
        valid: &Dataset,
    ) -> Result<Trainer<P, G>> {
        if changes.monitor != MonitorChanges::default() {
            let m = changes.monitor.apply(&trainer.config().monitor);
            trainer
                .set_monitor_config(m, Some(valid))
                .map_err(config_error)?;
        }
        if let Some(i) = changes.checkpoint_interval {
            trainer.set_checkpoint_interval(i);
        }
        self.config.trainer = trainer.config().clone();
        let at = meta.iteration;
        let path = self.dir.file(METRICS);
        let (records, bad) = rundir::read_metrics(&path)?;
        let before = records.len();
        let mut seen = std::collections::BTreeSet::new();
        let kept: Vec<&MetricsRecord> = records
            .iter()
            .filter(|r| r.iteration < at || Some(r.iteration) == meta.last_monitor)
            .filter(|r| seen.insert(r.iteration))
            .collect();
        let dropped = before - kept.len();
        let text: String = kept.iter().map(|r| rundir::metrics_line(r)).collect();
        rundir::write_atomic(&path, text.as_bytes())?;
        rundir::write_json_atomic(&self.dir.file(CONFIG), &self.config)?;
        self.write_manifest()?;
        let mut msg = format!(
            "resuming {} at iteration {at} of {}",
            self.dir.root().display(),
            trainer.total_iterations()
        );
        if dropped + bad > 0 {
            msg.push_str(&format!(
                " ({dropped} metrics record(s) after the checkpoint dropped, to be recomputed{})",
                if bad > 0 {
                    format!("; {bad} unreadable line(s) removed")
                } else {
                    String::new()
                }
            ));
        }
        self.note(&msg);
        Ok(trainer)
    }

    /// Trains to the end (or --stop-after), then writes the learning curves and the summary.
    fn drive<P: GumBoltPrior, G: CheckpointPartition<P>>(
        &self,
        mut trainer: Trainer<P, G>,
    ) -> Result<TrainSummary> {
        let args = self.request;
        trainer.state_mut().set_threads(args.threads);
        let total = trainer.total_iterations();
        let start = trainer.iteration();
        let until = args.stop_after.map_or(total, |n| n.min(total));
        let metrics_path = self.dir.file(METRICS);
        let mut metrics = OpenOptions::new()
            .append(true)
            .create(true)
            .open(&metrics_path)
            .with_context(|| format!("cannot open {}", metrics_path.display()))?;
        let mc = trainer.model().config().clone();
        let label = format!(
            "train {} {} k={}",
            self.config.model,
            mc.structure.name(),
            mc.k
        );
        if !args.quiet && start < until {
            eprintln!(
                "training {} iterations{} → {}",
                until - start,
                if start > 0 {
                    format!(" (from {start})")
                } else {
                    String::new()
                },
                self.dir.root().display()
            );
        }
        let mut bar = TaskBar::new(&label, "it", start, total, LOG_INTERVAL, args.quiet);
        let mut write_error: Option<std::io::Error> = None;
        let mut monitor_seconds = 0.0;
        let mut last_loss = f64::NAN;
        // The host's load since the previous monitoring record, shown beside its ms/it.
        let mut interval = super::hostload::Window::start();
        let mut observer = |e: TrainEvent<'_>| match e {
            TrainEvent::Step(s) => {
                last_loss = s.parts.loss;
                bar.set_message(format!("loss {:.2}", s.parts.loss));
                bar.set_position(s.iteration);
            }
            TrainEvent::MonitorStart { .. } => bar.set_message("monitoring".into()),
            TrainEvent::Metrics(r) => {
                monitor_seconds += r.monitor_seconds;
                let line = rundir::metrics_line(r);
                if let Err(e) = metrics
                    .write_all(line.as_bytes())
                    .and_then(|()| metrics.flush())
                {
                    write_error.get_or_insert(e);
                }
                let load = interval.finish();
                interval = super::hostload::Window::start();
                bar.note(&format!("{}{}", record_line(r), super::hostload::brief(load)));
                bar.set_message(format!("loss {last_loss:.2}"));
            }
            TrainEvent::Checkpoint(_) => {}
        };
        let window = super::hostload::Window::start();
        let result = trainer.run(until, &mut observer);
        let host = window.finish();
        bar.finish();
        drop(metrics);
        if let Some(e) = write_error {
            return Err(anyhow!(e).context(format!("cannot write {}", metrics_path.display())));
        }

        let kind_title = ModelKind::named(&self.config.model).map_or("GumBolt", |m| m.title);
        let curves = write_learning_curves(self.dir, kind_title, &self.config.dataset_label, &mc);
        let summary = match result {
            Ok(s) => s,
            Err(TrainError::NonFinite { what, iteration }) => {
                let last = gumbolt_models::train::read_meta(self.dir.checkpoint())
                    .ok()
                    .map(|m| m.iteration);
                match last {
                    Some(i) => bail!(
                        "training diverged: non-finite {what} at iteration {iteration}; the \
                         checkpoint {} (iteration {i}) is left intact (start a new run with a \
                         smaller --lr)",
                        self.dir.file(CHECKPOINT).display()
                    ),
                    None => bail!(
                        "training diverged: non-finite {what} at iteration {iteration}, before \
                         the first checkpoint, so none was written (start a new run with a \
                         smaller --lr)"
                    ),
                }
            }
            Err(e) => return Err(e.into()),
        };
        let curves = curves?;
        let (records, _) = rundir::read_metrics(&metrics_path)?;
        let end = trainer.iteration();
        let out = TrainSummary {
            run: self.dir.root().display().to_string(),
            model: self.config.model.clone(),
            model_kind: self.config.model_kind.clone(),
            structure: mc.structure.name(),
            k: mc.k,
            tau: mc.tau,
            seed: mc.seed,
            iters: total,
            iteration: end,
            finished: end >= total,
            resumed_from: self.resumed_from,
            steps: summary.end_iteration - summary.start_iteration,
            sec_per_iter: summary.sec_per_iter_median,
            sec_per_iter_mean: summary.sec_per_iter_mean,
            train_seconds: trainer.train_seconds(),
            wall_seconds: self.t_start.elapsed().as_secs_f64(),
            monitor_seconds,
            final_values: records.last().map(FinalValues::of),
            checkpoint: self.dir.file(CHECKPOINT).display().to_string(),
            metrics: metrics_path.display().to_string(),
            learning_curves: curves.map(|p| p.display().to_string()),
            matmul_threads: std::env::var("MATMUL_NUM_THREADS").ok(),
            network_products: mc.train.network_products,
            network_products_effective: mc.train.network_products.effective(),
            chain_products: self.config.pcd.as_ref().map(|p| p.products),
            chain_products_effective: self.config.pcd.as_ref().map(|p| p.products.effective()),
            host,
        };
        rundir::write_json_atomic(&self.dir.file(SUMMARY), &out)?;
        if !args.quiet {
            let state = if out.finished {
                "finished".to_string()
            } else {
                format!("stopped at iteration {end} of {total}; continue with --resume")
            };
            eprintln!(
                "{state}: training time {} ({} per iteration, median); {}",
                hms(out.train_seconds),
                out.sec_per_iter
                    .map_or("–".into(), |s| format!("{:.1} ms", 1e3 * s)),
                super::hostload::describe(out.host)
            );
        }
        Ok(out)
    }
}

/// A monitoring record as a progress line.
fn record_line(r: &MetricsRecord) -> String {
    let valid = match (r.valid_relaxed, r.valid_discrete) {
        (Some(f), Some(l)) => format!(" | valid F {f:.2} L {l:.2}"),
        _ => String::new(),
    };
    format!(
        "iter {:>w$}/{} (epoch {}): train F_{k} {:.2} L_{k} {:.2}{valid} | log Z {:.2} ± {:.2} ({}) | β {:.2} lr {:.1e}{}",
        r.iteration,
        r.total_iterations,
        r.epoch,
        r.train_relaxed,
        r.train_discrete,
        r.log_z,
        r.log_z_std,
        r.log_z_method,
        r.kl_beta,
        r.learning_rate,
        r.sec_per_iter
            .map_or(String::new(), |s| format!(" | {:.1} ms/it", 1e3 * s)),
        k = r.k,
        w = r.total_iterations.to_string().len(),
    )
}

/// Draws `learning_curves.png` from `metrics.jsonl` (GB Fig. 2b): −F_k and −L_k on the training
/// and validation images against the iteration, lower is better. The record at iteration 0 is
/// left out when there are later ones (the untrained model's values would flatten the curves).
/// Returns the path, or `None` when there is no record.
fn write_learning_curves(
    dir: &RunDir,
    model: &str,
    data_label: &str,
    mc: &GumBoltConfig,
) -> Result<Option<PathBuf>> {
    let (records, _) = rundir::read_metrics(&dir.file(METRICS))?;
    if records.is_empty() {
        return Ok(None);
    }
    let shown: Vec<&MetricsRecord> = if records.len() > 2 {
        records.iter().filter(|r| r.iteration > 0).collect()
    } else {
        records.iter().collect()
    };
    let k = records[0].k;
    let tau = records[0].tau;
    let pts = |f: &dyn Fn(&MetricsRecord) -> Option<f64>| -> Vec<(f64, f64)> {
        shown
            .iter()
            .map(|r| (r.iteration as f64, f(r).map_or(f64::NAN, |v| -v)))
            .collect()
    };
    // GB Fig. 2b's notation: F (Eq. 9, relaxed) and L (discrete) on training ("tr") and
    // validation ("val") images.
    let series = vec![
        Series::new(
            format!("−F_tr (Eq. 9, τ = {}, k = {k})", fmt_tau(tau)),
            pts(&|r| Some(r.train_relaxed)),
        ),
        Series::new(
            format!("−L_tr (discrete, k = {k})"),
            pts(&|r| Some(r.train_discrete)),
        ),
        Series::new(format!("−F_val (k = {k})"), pts(&|r| r.valid_relaxed)),
        Series::new(format!("−L_val (k = {k})"), pts(&|r| r.valid_discrete)),
    ];
    // The schedule's events, where the curves' kinks come from.
    let total = mc.train.total_iterations as f64;
    let mut marks = Vec::new();
    if mc.train.kl_warmup_fraction > 0.0 {
        marks.push(plot::Mark {
            x: mc.train.kl_warmup_fraction * total,
            label: "β = 1".into(),
        });
    }
    for &(f, m) in &mc.train.lr.milestones {
        marks.push(plot::Mark {
            x: f * total,
            label: format!("lr ×{m:.3}"),
        });
    }
    let title = format!(
        "{model}, {} ({}), k = {}: k = {k} objectives on {data_label}",
        mc.structure.name(),
        symbol(mc.structure),
        mc.k
    );
    let path = dir.file(CURVES);
    plot::learning_curves_with_marks(
        &series,
        &marks,
        &title,
        "−objective (nats; −L_k bounds the NLL)",
        &path,
    )
    .with_context(|| format!("cannot draw {}", path.display()))?;
    Ok(Some(path))
}

fn fmt_tau(tau: f64) -> String {
    let inv = 1.0 / tau;
    if (inv - inv.round()).abs() < 1e-9 && inv.round() > 1.0 {
        format!("1/{}", inv.round())
    } else {
        format!("{tau}")
    }
}

/// The symbol of GB Table 1.
pub(crate) fn symbol(s: Structure) -> &'static str {
    match s {
        Structure::Linear => "—",
        Structure::Nonlinear => "~",
        Structure::Linear2 => "——",
        Structure::Nonlinear2 => "~~",
    }
}

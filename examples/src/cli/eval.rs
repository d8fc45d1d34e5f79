//! `gumbolt eval`: the S-sample importance-weighted test NLL of a trained run (GB §5.1), with
//! log Z by PT + bridge sampling (the paper's method), AIS, or exactly for GumBolt-nW.

use super::dataset::{self, DatasetArg, Source};
use super::progress::{ProgressSink, TaskBar};
use super::registry::{self, CliPrior, ModelKind, ModelTypes, ModelVisitor, PriorKind};
use super::rundir::{self, EVAL, RunDir};
use super::train::symbol;
use super::{int_at_least, usage_error};
use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use gumbolt_datasets::Dataset;
use gumbolt_models::eval::{EvalConfig, EvalProgress, LogZConfig, estimate_log_z, evaluate};
use gumbolt_models::gumbolt::GumBolt;
use gumbolt_models::train::{CheckpointMeta, CheckpointPartition, GumBoltPrior, load_model};
use serde::Serialize;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Time between two progress lines when stderr is not a terminal.
const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The log Z estimator (GumBolt-nW's factorial prior always gets its exact value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogzArg {
    /// Parallel tempering + bridge sampling (GB §5.1), to a standard error of 0.01.
    Pt,
    /// Annealed importance sampling.
    Ais,
}

/// Evaluate a trained run: the S-sample importance-weighted test NLL and log Z.
///
/// Loads `checkpoint.ckpt` of --run (any model, from the checkpoint's model kind and
/// configuration), estimates log Z of its prior (PT + bridge sampling by default, AIS with
/// --logz ais, exact for GumBolt-nW), and estimates log p(x) of every test image from S
/// importance samples at τ = 0 (GB §5.1). The test set is that of the data set the run was trained on
/// (from its config.json). Prints the result (one JSON object with --json) and writes it
/// to `eval.json` in the run directory. The result depends on --seed, not on --threads.
#[derive(Debug, Clone, Args)]
#[command(allow_negative_numbers = true)]
pub(crate) struct EvalArgs {
    /// The run directory written by `gumbolt train`.
    #[arg(long, value_name = "DIR")]
    pub(crate) run: PathBuf,

    /// Importance samples S per test image (GB: 4000).
    #[arg(long, value_name = "S", value_parser = int_at_least::<1>, default_value_t = 4000)]
    pub(crate) samples: usize,

    /// Evaluate only the first N test images [default: all, 10 000 for MNIST, 8 070 for
    /// OMNIGLOT].
    #[arg(long, value_name = "N", value_parser = int_at_least::<1>)]
    pub(crate) limit: Option<usize>,

    /// The log Z estimator (GumBolt-nW: exact regardless).
    #[arg(long, value_enum, default_value_t = LogzArg::Pt)]
    pub(crate) logz: LogzArg,

    /// Seed of the log Z estimator and of the importance samples.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,

    /// Worker threads (0: all available cores); does not change the result.
    #[arg(long, value_name = "N", value_parser = int_at_least::<0>, default_value_t = 0)]
    pub(crate) threads: usize,

    /// Directory of the run's data set (binarized_mnist_test.amat[.gz], or the rebuilt
    /// OMNIGLOT files) [default: the run's --data-dir or --data-file, else the bundled copy].
    #[arg(long, value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,

    /// OMNIGLOT runs only: Burda et al.'s chardata.mat [default: the run's].
    #[arg(long, value_name = "FILE", conflicts_with = "data_dir")]
    pub(crate) data_file: Option<PathBuf>,

    /// Also write each test image's estimate, for paired comparisons of two models on the same
    /// images: FILE.npy (an [n, 3] float64 array) or FILE.csv (header `image,log_px,iw_std_err`);
    /// the columns are the image's index in the test set, log p̂(x) in nats and the Monte-Carlo
    /// standard error of that estimate (delta method over the S importance weights).
    #[arg(long, value_name = "FILE", value_parser = parse_per_image)]
    pub(crate) per_image: Option<PathBuf>,

    /// Print one JSON object on stdout instead of a summary.
    #[arg(long)]
    pub(crate) json: bool,

    /// No progress display on stderr.
    #[arg(long, short)]
    pub(crate) quiet: bool,
}

/// Value parser of `--per-image`: a path ending in `.npy` or `.csv`.
fn parse_per_image(s: &str) -> Result<PathBuf, String> {
    let p = PathBuf::from(s);
    match p.extension().and_then(|e| e.to_str()) {
        Some("npy" | "csv") => Ok(p),
        _ => Err(format!(
            "expected a file name ending in .npy or .csv, got {s:?}"
        )),
    }
}

/// Refuses (before any work) a file path whose directory does not exist, or a directory.
pub(crate) fn check_output_path(option: &str, path: &Path) -> Result<()> {
    if path.is_dir() {
        anyhow::bail!(
            "{option} {}: is a directory, expected a file",
            path.display()
        );
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        anyhow::bail!(
            "{option} {}: the directory {} does not exist",
            path.display(),
            parent.display()
        );
    }
    Ok(())
}

/// Writes the per-image estimates (`--per-image`) as `.npy` or `.csv`.
fn write_per_image(path: &Path, log_px: &[f64], std_err: &[f64]) -> Result<()> {
    let bytes = if path.extension().is_some_and(|e| e == "npy") {
        let values: Vec<f64> = log_px
            .iter()
            .zip(std_err)
            .enumerate()
            .flat_map(|(i, (&l, &e))| [i as f64, l, e])
            .collect();
        gumbolt_examples::npy::to_bytes(&values, &[log_px.len(), 3])
    } else {
        let mut text = String::from("image,log_px,iw_std_err\n");
        for (i, (l, e)) in log_px.iter().zip(std_err).enumerate() {
            // `{}` of an f64 is the shortest text that reads back to the same value.
            text.push_str(&format!("{i},{l},{e}\n"));
        }
        text.into_bytes()
    };
    rundir::write_atomic(path, &bytes).with_context(|| format!("--per-image {}", path.display()))
}

/// The result of [`evaluate_run`]: the output of `gumbolt eval` (and `eval.json`).
#[derive(Debug, Serialize)]
pub(crate) struct Evaluation {
    /// Mean test NLL in nats (GB Table 1 reports it).
    pub(crate) test_nll: f64,
    /// Its standard error over images (excluding the error of log Z, see `log_z_std`).
    pub(crate) test_nll_sem: f64,
    pub(crate) log_z: f64,
    pub(crate) log_z_std: f64,
    /// `exact`, `pt` or `ais`.
    pub(crate) log_z_method: String,
    log_z_seconds: f64,
    pub(crate) log_z_warnings: Vec<String>,
    /// Test images evaluated.
    pub(crate) n: usize,
    /// Importance samples per image.
    pub(crate) samples: usize,
    /// Mean over images of the Monte-Carlo standard error of each `log p̂(x)`.
    mean_iw_std_err: f64,
    /// Wall time of log Z and the likelihood estimate.
    pub(crate) seconds: f64,
    /// Wall time of the likelihood estimate alone.
    nll_seconds: f64,
    /// Evaluation worker threads.
    threads: usize,
    /// `MATMUL_NUM_THREADS` of the process (GEMM threads per worker).
    matmul_threads: Option<String>,
    seed: u64,
    /// The test set: `MNIST`, `OMNIGLOT (rebuilt)` or `OMNIGLOT` (chardata.mat).
    pub(crate) dataset: &'static str,
    run: String,
    model: &'static str,
    model_kind: String,
    structure: &'static str,
    symbol: &'static str,
    k: usize,
    /// Iterations of the checkpoint.
    iteration: u64,
    total_iterations: u64,
    finished: bool,
    pub(crate) warnings: Vec<String>,
}

/// Runs `gumbolt eval`: [`evaluate_run`], then the result on stdout (a summary, or one JSON object
/// with `--json`).
pub(crate) fn run(args: EvalArgs) -> Result<()> {
    let out = evaluate_run(&EvalRequest::of(&args))?;
    let text = if args.json {
        serde_json::to_string(&out)? + "\n"
    } else {
        summary(&out, &RunDir::new(&args.run).file(EVAL))
    };
    if !args.quiet && args.json {
        for w in &out.warnings {
            eprintln!("warning: {w}");
        }
    }
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .context("writing to stdout")?;
    Ok(())
}

/// An evaluation in the library's terms: the run, the test images and the configurations of the
/// library's log Z estimator and likelihood evaluator. `gumbolt eval` parses its options into
/// one; `reproduce` builds one from its budget.
#[derive(Debug, Clone)]
pub(crate) struct EvalRequest {
    /// The run directory.
    pub(crate) run: PathBuf,
    /// The likelihood estimate: samples S, threads, seed.
    pub(crate) eval: EvalConfig,
    /// The log Z estimate of the prior.
    pub(crate) log_z: LogZConfig,
    /// Evaluate only the first N test images.
    pub(crate) limit: Option<usize>,
    /// Where the test images are [None: where the run's config.json says].
    pub(crate) data_dir: Option<PathBuf>,
    pub(crate) data_file: Option<PathBuf>,
    /// Also write each test image's estimate here (`.npy` or `.csv`).
    pub(crate) per_image: Option<PathBuf>,
    /// No progress display on stderr.
    pub(crate) quiet: bool,
}

impl EvalRequest {
    /// The request of `gumbolt eval`'s options.
    fn of(args: &EvalArgs) -> Self {
        let log_z = match args.logz {
            LogzArg::Pt => LogZConfig::pt_bar(),
            LogzArg::Ais => LogZConfig::ais(),
        };
        Self::new(args.run.clone(), args.samples, log_z, args.seed, args.threads)
            .with_data(args.data_dir.clone(), args.data_file.clone())
            .with_limit(args.limit)
            .with_per_image(args.per_image.clone())
            .with_quiet(args.quiet)
    }

    /// S importance samples per test image and `log_z` (its seed and threads set to these),
    /// on all test images of the run's own data.
    pub(crate) fn new(
        run: PathBuf,
        samples: usize,
        log_z: LogZConfig,
        seed: u64,
        threads: usize,
    ) -> Self {
        Self {
            run,
            eval: EvalConfig::default()
                .with_samples(samples)
                .with_threads(threads)
                .with_seed(seed),
            log_z: log_z.with_seed(seed).with_threads(threads),
            limit: None,
            data_dir: None,
            data_file: None,
            per_image: None,
            quiet: false,
        }
    }

    /// The test images from this directory or file instead of the run's.
    pub(crate) fn with_data(mut self, dir: Option<PathBuf>, file: Option<PathBuf>) -> Self {
        self.data_dir = dir;
        self.data_file = file;
        self
    }

    /// Only the first `limit` test images.
    pub(crate) fn with_limit(mut self, limit: Option<usize>) -> Self {
        self.limit = limit;
        self
    }

    fn with_per_image(mut self, path: Option<PathBuf>) -> Self {
        self.per_image = path;
        self
    }

    pub(crate) fn with_quiet(mut self, quiet: bool) -> Self {
        self.quiet = quiet;
        self
    }
}

/// Evaluates a trained run with the library's [`estimate_log_z`] and [`evaluate`]: loads its
/// checkpoint and its data set's test images, estimates log Z and the S-sample test NLL,
/// writes `eval.json` (and the per-image file), and returns the result. Shared by
/// `gumbolt eval`, `quick` and `reproduce`.
pub(crate) fn evaluate_run(args: &EvalRequest) -> Result<Evaluation> {
    let t0 = Instant::now();
    let dir = RunDir::existing(&args.run, "--run")?;
    if let Some(p) = &args.per_image {
        check_output_path("--per-image", p)?;
    }
    let (kind, meta) = dir.checkpoint_meta()?;
    // The run's data set (config.json, else what the checkpoint's training images say:
    // grey levels are OMNIGLOT's); the test set from --data-dir / --data-file, else the run's
    // source.
    let stored = match dir.config()? {
        Some(c) => Some(c.data().with_context(|| {
            format!(
                "{}: unknown data set `{}`",
                dir.file(rundir::CONFIG).display(),
                c.dataset
            )
        })?),
        None => None,
    };
    let dataset = stored.as_ref().map_or(
        if meta.data.kind == "grey" {
            DatasetArg::Omniglot
        } else {
            DatasetArg::Mnist
        },
        |(d, _)| *d,
    );
    if dataset == DatasetArg::Mnist
        && let Some(f) = &args.data_file
    {
        return Err(usage_error(
            "eval",
            format!(
                "--data-file {} is for OMNIGLOT runs; this run was trained on MNIST",
                f.display()
            ),
        ));
    }
    let source = if args.data_dir.is_some() || args.data_file.is_some() {
        Source::of(args.data_dir.as_deref(), args.data_file.as_deref())
    } else {
        stored.map_or(Source::Bundled, |(_, s)| s)
    };
    let mut test = dataset::load_test(dataset, &source)?;
    let data_label = dataset::label(dataset, &source);
    if let Some(limit) = args.limit {
        let n = limit.min(test.n());
        test = test.split_at(n)?.0;
    }
    let report = registry::with_model(
        kind,
        EvalRun {
            ckpt: &dir.checkpoint(),
            test: &test,
            args,
        },
    )?;
    let total = meta.model.train.total_iterations;
    let mut warnings = report.log_z.warnings.clone();
    if meta.iteration < total {
        warnings.push(format!(
            "the checkpoint is at iteration {} of {total}: the run is unfinished",
            meta.iteration
        ));
    }
    if let Some(p) = &args.per_image {
        write_per_image(p, &report.eval.log_px, &report.eval.iw_std_err)?;
    }
    let mut out = build_report(args, &dir, kind, &meta, report, t0, warnings);
    out.dataset = data_label;
    rundir::write_json_atomic(&dir.file(EVAL), &out)?;
    Ok(out)
}

/// The checkpoint of a run loaded and evaluated.
struct EvalRun<'a> {
    ckpt: &'a Path,
    test: &'a Dataset,
    args: &'a EvalRequest,
}

impl ModelVisitor for EvalRun<'_> {
    type Output = Result<Parts>;

    fn visit<P: CliPrior, G: CheckpointPartition<P>>(self, _: ModelTypes<P, G>) -> Result<Parts> {
        eval_model(load_model::<P, G>(self.ckpt)?, self.test, self.args)
    }
}

struct Parts {
    eval: gumbolt_models::eval::EvalReport,
    log_z: gumbolt_models::eval::LogZ,
}

/// log Z, then the likelihood estimate, with progress displays.
fn eval_model<P, G>(model: GumBolt<P, G>, test: &Dataset, args: &EvalRequest) -> Result<Parts>
where
    P: GumBoltPrior,
    G: CheckpointPartition<P>,
{
    let mut sink = ProgressSink::new("log Z", args.quiet);
    let log_z = estimate_log_z(model.prior(), &args.log_z, &mut |p| sink.update(p))
        .context("log Z estimate failed")?;
    sink.finish();
    if !args.quiet {
        eprintln!(
            "log Z = {:.4} ± {:.4} ({}, {:.1} s)",
            log_z.value, log_z.std, log_z.method, log_z.seconds
        );
    }
    let ecfg = &args.eval;
    let mut bar = TaskBar::new(
        &format!("eval S={}", ecfg.samples),
        "images",
        0,
        test.n() as u64,
        LOG_INTERVAL,
        args.quiet,
    );
    let eval = evaluate(&model, test, ecfg, &log_z, &mut |p: EvalProgress| {
        bar.set_position(p.done as u64)
    })
    .context("evaluation failed")?;
    bar.finish();
    Ok(Parts { eval, log_z })
}

fn build_report(
    args: &EvalRequest,
    dir: &RunDir,
    kind: PriorKind,
    meta: &CheckpointMeta,
    parts: Parts,
    t0: Instant,
    warnings: Vec<String>,
) -> Evaluation {
    let Parts { eval, log_z } = parts;
    let total = meta.model.train.total_iterations;
    Evaluation {
        test_nll: eval.test_nll,
        test_nll_sem: eval.test_nll_sem,
        log_z: log_z.value,
        log_z_std: log_z.std,
        log_z_method: log_z.method.clone(),
        log_z_seconds: log_z.seconds,
        log_z_warnings: log_z.warnings.clone(),
        n: eval.n,
        samples: eval.samples,
        mean_iw_std_err: eval.mean_iw_std_err,
        seconds: t0.elapsed().as_secs_f64(),
        nll_seconds: eval.seconds,
        threads: eval.threads,
        matmul_threads: std::env::var("MATMUL_NUM_THREADS").ok(),
        seed: args.eval.seed,
        dataset: "",
        run: dir.root().display().to_string(),
        model: ModelKind::of(kind, meta.model.objective).name,
        model_kind: meta.model_kind.clone(),
        structure: meta.model.structure.name(),
        symbol: symbol(meta.model.structure),
        k: meta.model.k,
        iteration: meta.iteration,
        total_iterations: total,
        finished: meta.iteration >= total,
        warnings,
    }
}

fn summary(r: &Evaluation, file: &Path) -> String {
    let mut s = format!(
        "{} test NLL = {:.3} ± {:.3} nats (s.e. over {} images, S = {}; {} {} k = {}, iteration {})\n\
         log Z = {:.4} ± {:.4} ({}, {:.1} s); total {:.1} s with {} threads\n",
        r.dataset,
        r.test_nll,
        r.test_nll_sem,
        r.n,
        r.samples,
        r.model,
        r.structure,
        r.k,
        r.iteration,
        r.log_z,
        r.log_z_std,
        r.log_z_method,
        r.log_z_seconds,
        r.seconds,
        r.threads
    );
    for w in r.warnings.iter() {
        s.push_str(&format!("warning: {w}\n"));
    }
    s.push_str(&format!("wrote {}\n", file.display()));
    s
}

//! `gumbolt logz`: the log-partition function of an RBM, exactly (enumeration of the smaller
//! side, ≤ 24 units), by annealed importance sampling, or by parallel tempering with bridge
//! sampling (the paper's method), with the estimators of `gumbolt-samplers` (docs/algorithms.md §7).

use super::progress::ProgressSink;
use super::{int_at_least, usage_error};
use anyhow::{Context, Result};
use clap::{ArgGroup, Args, ValueEnum};
use gumbolt_core::LogPartitionEstimate;
use gumbolt_core::exact::MAX_ENUMERATION_UNITS;
use gumbolt_core::prior::ExactPartition;
use gumbolt_priors::Rbm;
use gumbolt_samplers::logz::{
    Ais, AisBase, AisConfig, AisSchedule, LadderSpec, PtBar, PtBarConfig,
};
use gumbolt_samplers::{Ladder, LadderConfig, SamplerError};
use serde::Serialize;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Instant;

const SUB: &str = "logz";

/// Scale of the random RBM's parameters when `--scale` is not given.
const DEFAULT_SCALE: f32 = 0.5;

/// The largest random RBM (`n1·n2`) the command builds; larger ones would not fit in memory
/// together with the estimators' chains.
const MAX_RANDOM_WEIGHTS: usize = 100_000_000;

/// The estimator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Method {
    /// Exact enumeration of the smaller side (at most 24 units).
    Exact,
    /// Annealed importance sampling.
    Ais,
    /// Parallel tempering + bridge sampling.
    Pt,
}

impl Method {
    fn name(self) -> &'static str {
        match self {
            Method::Exact => "exact",
            Method::Ais => "ais",
            Method::Pt => "pt",
        }
    }
}

/// The AIS β schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ScheduleArg {
    /// Spacing from a pilot run (uniform thermodynamic length).
    Adaptive,
    /// Equal steps.
    Linear,
    /// The proportions of Salakhutdinov & Murray (2008).
    Sm08,
}

/// The AIS base model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BaseArg {
    /// Base rates from a short block-Gibbs run.
    Gibbs,
    /// The uniform distribution.
    Uniform,
    /// The RBM's own z1 biases `a`.
    Field,
}

/// `--pt-ladder`: tuned automatically, or fixed.
#[derive(Debug, Clone)]
enum LadderArg {
    Auto,
    Fixed(Ladder),
}

const LADDER_EXPECTED: &str = "expected `auto`, a number of equally spaced temperatures ≥ 2, \
                               or a comma-separated increasing list of βs from 0 to 1";

fn parse_ladder(s: &str) -> Result<LadderArg, String> {
    let s = s.trim();
    if s == "auto" {
        return Ok(LadderArg::Auto);
    }
    let reason = |e: SamplerError| match e {
        SamplerError::InvalidConfig { reason, .. } => {
            format!("{LADDER_EXPECTED}; the ladder {reason}")
        }
        e => format!("{LADDER_EXPECTED}; {e}"),
    };
    if !s.contains(',') {
        return match s.parse::<usize>() {
            Ok(n) if n >= 2 => Ladder::linear(n).map(LadderArg::Fixed).map_err(reason),
            Ok(n) => Err(format!("{LADDER_EXPECTED}; got {n} temperatures")),
            Err(_) => Err(LADDER_EXPECTED.to_string()),
        };
    }
    let betas = s
        .split(',')
        .map(|t| t.trim().parse::<f64>().ok().filter(|b| b.is_finite()))
        .collect::<Option<Vec<f64>>>()
        .ok_or_else(|| LADDER_EXPECTED.to_string())?;
    Ladder::new(betas).map(LadderArg::Fixed).map_err(reason)
}

fn parse_scale(s: &str) -> Result<f32, String> {
    match s.trim().parse::<f32>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err("expected a finite number ≥ 0".into()),
    }
}

fn parse_target_std(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err("expected a finite number ≥ 0 (0: a fixed number of steps)".into()),
    }
}

fn ais_default() -> AisConfig {
    AisConfig::default()
}

fn pt_default() -> PtBarConfig {
    PtBarConfig::default()
}

/// Estimate the log-partition function log Z of an RBM (exact, AIS, or PT + bridge sampling).
//
// The RBM is read from a JSON file (`{"a": [n1 numbers], "b": [n2 numbers], "W": [[n2
// numbers] × n1 rows]}`) or drawn at random. Whenever the smaller side has at most 24 units
// the exact value is computed too (timed separately) and reported next to the estimate.
#[derive(Debug, Args)]
// Negative numbers are values, so `--runs -3` is reported as an invalid value of `--runs`.
#[command(allow_negative_numbers = true)]
#[command(group(ArgGroup::new("source").required(true).args(["rbm", "random", "bm"])))]
pub(crate) struct LogzArgs {
    /// RBM JSON file to read.
    #[arg(long, value_name = "FILE", help_heading = "RBM")]
    rbm: Option<PathBuf>,

    /// A Boltzmann machine on any graph: JSON file `{"h": [n numbers], "edges": [[i, j, w],
    /// …]}` (0-based, −E = hᵀz + Σ w_ij z_i z_j). AIS and PT run over the graph's colour
    /// classes; exact enumeration up to 24 units.
    #[arg(long, value_name = "FILE", help_heading = "RBM")]
    bm: Option<PathBuf>,

    /// Use a random RBM with a, b, W i.i.d. N(0, scale²), drawn from --seed.
    #[arg(long, requires_all = ["n1", "n2"], help_heading = "RBM")]
    random: bool,

    /// Units in z1 of the random RBM.
    #[arg(long, value_name = "N", value_parser = int_at_least::<1>, requires = "random",
          help_heading = "RBM")]
    n1: Option<usize>,

    /// Units in z2 of the random RBM.
    #[arg(long, value_name = "N", value_parser = int_at_least::<1>, requires = "random",
          help_heading = "RBM")]
    n2: Option<usize>,

    /// Standard deviation of the random RBM's parameters [default: 0.5].
    #[arg(long, value_name = "S", value_parser = parse_scale,
          requires = "random", help_heading = "RBM")]
    scale: Option<f32>,

    /// Write the RBM (e.g. the random one) to this JSON file before estimating.
    #[arg(long, value_name = "FILE", help_heading = "RBM")]
    save_rbm: Option<PathBuf>,

    /// The estimator.
    #[arg(long, value_enum, default_value_t = Method::Pt)]
    method: Method,

    /// Seed of the random RBM and of the estimator.
    #[arg(long, default_value_t = 0)]
    seed: u64,

    /// Print one JSON object on stdout instead of a summary.
    #[arg(long)]
    json: bool,

    /// No progress display on stderr.
    #[arg(long, short)]
    quiet: bool,

    /// Do not compute the exact value next to an estimate.
    #[arg(long)]
    no_exact: bool,

    /// Worker threads of the estimator (0: all available cores); does not change the result.
    #[arg(long, value_name = "N", value_parser = int_at_least::<0>,
          default_value_t = 0, help_heading = "Estimator settings")]
    threads: usize,

    #[arg(long, visible_alias = "ensembles", value_name = "N", value_parser = int_at_least::<2>,
          help = format!("Independent runs (AIS) or PT ensembles; the standard error comes from \
                          their spread [default: {} for AIS, {} for PT]",
                         ais_default().runs, pt_default().runs),
          help_heading = "Estimator settings")]
    runs: Option<usize>,

    /// AIS annealing steps K (the schedule has K + 1 βs).
    #[arg(long, value_name = "K", value_parser = int_at_least::<1>,
          default_value_t = ais_default().schedule.steps(), help_heading = "Estimator settings")]
    ais_steps: usize,

    /// AIS chains per run.
    #[arg(long, value_name = "N", value_parser = int_at_least::<1>,
          default_value_t = ais_default().chains, help_heading = "Estimator settings")]
    ais_chains: usize,

    /// AIS β schedule [default: the estimator's, adaptive].
    #[arg(long, value_enum, help_heading = "Estimator settings")]
    ais_schedule: Option<ScheduleArg>,

    /// AIS base model [default: the estimator's, gibbs].
    #[arg(long, value_enum, help_heading = "Estimator settings")]
    ais_base: Option<BaseArg>,

    /// PT burn-in steps (not used for the estimate).
    #[arg(long, value_name = "N", value_parser = int_at_least::<0>,
          default_value_t = pt_default().burn_in, help_heading = "Estimator settings")]
    pt_burn_in: usize,

    /// PT production steps of the first round (one Gibbs sweep of every replica and one swap
    /// phase each); more rounds follow while the standard error is above --pt-target-std.
    #[arg(long, value_name = "N", value_parser = int_at_least::<1>,
          default_value_t = pt_default().sweeps, help_heading = "Estimator settings")]
    pt_sweeps: usize,

    /// Target standard error of log Z: PT continues in rounds until the standard error is
    /// below it (up to --pt-max-sweeps); 0 runs exactly --pt-sweeps steps.
    #[arg(long, value_name = "X", value_parser = parse_target_std,
          default_value_t = pt_default().target_std_err.unwrap_or(0.0), help_heading = "Estimator settings")]
    pt_target_std: f64,

    /// Upper limit on the PT production steps when --pt-target-std is set.
    #[arg(long, value_name = "N", value_parser = int_at_least::<1>,
          default_value_t = pt_default().max_sweeps, help_heading = "Estimator settings")]
    pt_max_sweeps: usize,

    /// Store bridge statistics every N-th production step.
    #[arg(long, value_name = "N", value_parser = int_at_least::<1>,
          default_value_t = pt_default().thin, help_heading = "Estimator settings")]
    pt_thin: usize,

    /// PT temperature ladder: `auto` (tuned for swap rates ≈ 0.5), a number of equally spaced
    /// temperatures, or a comma-separated list of βs from 0 to 1.
    #[arg(long, value_name = "LADDER", value_parser = parse_ladder, default_value = "auto",
          help_heading = "Estimator settings")]
    pt_ladder: LadderArg,
}

/// A validated estimator.
enum Estimator {
    Exact,
    Ais(Box<Ais>),
    Pt(Box<PtBar>),
}

/// The CLI option behind a field name of the samplers' configurations.
fn option_for(name: &str) -> String {
    match name {
        "runs" => "--runs".into(),
        "chains" => "--ais-chains".into(),
        "schedule.steps" => "--ais-steps".into(),
        "sweeps" => "--pt-sweeps".into(),
        "thin" => "--pt-thin".into(),
        "target_std_err" => "--pt-target-std".into(),
        "max_sweeps" => "--pt-max-sweeps".into(),
        "threads" => "--threads".into(),
        "ladder" | "replicas" => "--pt-ladder".into(),
        other => format!("the estimator setting `{other}`"),
    }
}

/// Invalid configurations are usage errors (exit code 2) naming the option.
fn config_error(e: SamplerError) -> anyhow::Error {
    match e {
        SamplerError::InvalidConfig { name, reason } => usage_error(
            SUB,
            format!("invalid value for {}: {reason}", option_for(name)),
        ),
        e => anyhow::Error::new(e).context("invalid estimator configuration"),
    }
}

fn build_estimator(args: &LogzArgs) -> Result<Estimator> {
    match args.method {
        Method::Exact => Ok(Estimator::Exact),
        Method::Ais => {
            let mut cfg = AisConfig {
                seed: args.seed,
                chains: args.ais_chains,
                threads: args.threads,
                ..ais_default()
            };
            if let Some(r) = args.runs {
                cfg.runs = r;
            }
            let steps = args.ais_steps;
            // The estimator's pilot settings, if its default schedule is adaptive.
            let (pilot_chains, pilot_steps) = match cfg.schedule {
                AisSchedule::Adaptive {
                    pilot_chains,
                    pilot_steps,
                    ..
                } => (pilot_chains, pilot_steps),
                _ => (256, 1000),
            };
            let adaptive = AisSchedule::Adaptive {
                steps,
                pilot_chains,
                pilot_steps,
            };
            cfg.schedule = match (args.ais_schedule, cfg.schedule) {
                (Some(ScheduleArg::Adaptive), _) | (None, AisSchedule::Adaptive { .. }) => adaptive,
                (Some(ScheduleArg::Linear), _) | (None, AisSchedule::Linear { .. }) => {
                    AisSchedule::Linear { steps }
                }
                (Some(ScheduleArg::Sm08), _) | (None, AisSchedule::Sm08 { .. }) => {
                    AisSchedule::Sm08 { steps }
                }
                (None, custom @ AisSchedule::Custom(_)) => custom,
            };
            let (base_chains, base_sweeps) = match cfg.base {
                AisBase::GibbsMarginals { chains, sweeps } => (chains, sweeps),
                _ => (256, 200),
            };
            match args.ais_base {
                None => {}
                Some(BaseArg::Gibbs) => {
                    cfg.base = AisBase::GibbsMarginals {
                        chains: base_chains,
                        sweeps: base_sweeps,
                    }
                }
                Some(BaseArg::Uniform) => cfg.base = AisBase::Uniform,
                Some(BaseArg::Field) => cfg.base = AisBase::PriorField,
            }
            Ok(Estimator::Ais(Box::new(
                Ais::new(cfg).map_err(config_error)?,
            )))
        }
        Method::Pt => {
            let mut cfg = PtBarConfig {
                seed: args.seed,
                burn_in: args.pt_burn_in,
                sweeps: args.pt_sweeps,
                thin: args.pt_thin,
                target_std_err: (args.pt_target_std > 0.0).then_some(args.pt_target_std),
                max_sweeps: args.pt_max_sweeps,
                threads: args.threads,
                ..pt_default()
            };
            if let Some(r) = args.runs {
                cfg.runs = r;
            }
            cfg.ladder = match (&args.pt_ladder, cfg.ladder) {
                (LadderArg::Auto, LadderSpec::Auto(lc)) => LadderSpec::Auto(lc),
                (LadderArg::Auto, LadderSpec::Fixed(_)) => {
                    LadderSpec::Auto(LadderConfig::default())
                }
                (LadderArg::Fixed(l), _) => LadderSpec::Fixed(l.clone()),
            };
            Ok(Estimator::Pt(Box::new(
                PtBar::new(cfg).map_err(config_error)?,
            )))
        }
    }
}

/// Reads or draws the RBM; returns it, its origin (the file, or `random`) and the scale of a
/// random one.
fn load_rbm(args: &LogzArgs) -> Result<(Rbm, String, Option<f32>)> {
    if let Some(path) = &args.rbm {
        let rbm = Rbm::load_json(path)?;
        return Ok((rbm, path.display().to_string(), None));
    }
    let (Some(n1), Some(n2)) = (args.n1, args.n2) else {
        return Err(usage_error(SUB, "--random needs --n1 and --n2"));
    };
    if n1.checked_mul(n2).is_none_or(|w| w > MAX_RANDOM_WEIGHTS) {
        return Err(usage_error(
            SUB,
            format!(
                "invalid values for --n1 and --n2: {n1}×{n2} weights, expected at most {MAX_RANDOM_WEIGHTS}"
            ),
        ));
    }
    let scale = args.scale.unwrap_or(DEFAULT_SCALE);
    let mut rng = gumbolt_core::rng::root_rng(args.seed);
    let rbm = Rbm::random(n1, n2, scale, &mut rng);
    Ok((rbm, "random".into(), Some(scale)))
}

/// The JSON output (`--json`): one object on one line.
#[derive(Debug, Serialize)]
struct Report {
    method: &'static str,
    log_z: f64,
    /// Standard error (0 for exact).
    log_z_std: f64,
    /// Wall time of the estimate (excluding the exact reference).
    seconds: f64,
    /// Exact log Z when the smaller side has ≤ 24 units (else null).
    exact: Option<f64>,
    exact_seconds: Option<f64>,
    /// `log_z − exact`.
    error: Option<f64>,
    n1: usize,
    n2: usize,
    /// The RBM file, or `random`.
    rbm: String,
    /// Scale of a random RBM.
    #[serde(skip_serializing_if = "Option::is_none")]
    scale: Option<f32>,
    seed: u64,
    runs: usize,
    run_estimates: Vec<f64>,
    warnings: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ais_betas: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ais_chains: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ais_schedule: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ais_min_ess: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pt_replicas: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pt_swap_rates: Option<Vec<f64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pt_betas: Option<Vec<f64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pt_burn_in: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pt_sweeps: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pt_stored_steps: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pt_target_std: Option<f64>,
}

fn schedule_name(s: &AisSchedule) -> &'static str {
    match s {
        AisSchedule::Linear { .. } => "linear",
        AisSchedule::Sm08 { .. } => "sm08",
        AisSchedule::Adaptive { .. } => "adaptive",
        AisSchedule::Custom(_) => "custom",
    }
}

/// Runs `gumbolt logz`.
pub(crate) fn run(args: LogzArgs) -> Result<()> {
    // Validate the estimator settings before any work.
    let estimator = build_estimator(&args)?;
    if let Some(path) = &args.bm {
        return run_bm(&args, path);
    }
    let (rbm, origin, scale) = load_rbm(&args)?;
    if let Some(path) = &args.save_rbm {
        rbm.save_json(path)?;
    }
    let (n1, n2) = (rbm.n1(), rbm.n2());
    let method = args.method;
    let label = format!("logz {}", method.name());

    let mut sink = ProgressSink::new(&label, args.quiet);
    let mut on_progress = |p| sink.update(p);
    let start = Instant::now();
    let mut report_fields = Report {
        method: method.name(),
        log_z: f64::NAN,
        log_z_std: f64::NAN,
        seconds: 0.0,
        exact: None,
        exact_seconds: None,
        error: None,
        n1,
        n2,
        rbm: origin,
        scale,
        seed: args.seed,
        runs: 0,
        run_estimates: Vec::new(),
        warnings: Vec::new(),
        ais_betas: None,
        ais_chains: None,
        ais_schedule: None,
        ais_min_ess: None,
        pt_replicas: None,
        pt_swap_rates: None,
        pt_betas: None,
        pt_burn_in: None,
        pt_sweeps: None,
        pt_stored_steps: None,
        pt_target_std: None,
    };
    let est: LogPartitionEstimate = match estimator {
        Estimator::Exact => {
            let log_z = rbm
                .log_partition()
                .context("--method exact (use --method ais or pt for larger RBMs)")?;
            LogPartitionEstimate::exact(log_z)
        }
        Estimator::Ais(mut ais) => {
            let est = ais
                .estimate_with_progress(&rbm, &mut on_progress)
                .context("AIS estimate failed")?;
            let r = &mut report_fields;
            r.ais_chains = Some(ais.config().chains);
            r.ais_schedule = Some(schedule_name(&ais.config().schedule));
            if let Some(rep) = ais.report() {
                r.ais_betas = Some(rep.betas.len());
                r.ais_min_ess = Some(rep.run_ess.iter().copied().fold(f64::INFINITY, f64::min));
            }
            est
        }
        Estimator::Pt(mut pt) => {
            let est = pt
                .estimate_with_progress(&rbm, &mut on_progress)
                .context("PT estimate failed")?;
            let r = &mut report_fields;
            r.pt_burn_in = Some(pt.config().burn_in);
            r.pt_target_std = pt.config().target_std_err;
            if let Some(rep) = pt.report() {
                r.pt_replicas = Some(rep.ladder.len());
                r.pt_swap_rates = Some(rep.swap_rates.clone());
                r.pt_betas = Some(rep.ladder.betas().to_vec());
                r.pt_sweeps = Some(rep.sweeps);
                r.pt_stored_steps = Some(rep.stored_steps);
            }
            est
        }
    };
    let seconds = start.elapsed().as_secs_f64();
    sink.finish();

    let r = &mut report_fields;
    r.log_z = est.log_z;
    r.log_z_std = est.std_err;
    r.seconds = seconds;
    r.runs = est.runs;
    r.run_estimates = est.run_estimates;
    r.warnings = est.warnings;
    if method == Method::Exact {
        r.exact = Some(est.log_z);
        r.exact_seconds = Some(seconds);
    } else if !args.no_exact && n1.min(n2) <= MAX_ENUMERATION_UNITS {
        let t = Instant::now();
        let exact = rbm.log_partition().context("exact log Z")?;
        r.exact = Some(exact);
        r.exact_seconds = Some(t.elapsed().as_secs_f64());
    }
    r.error = r.exact.map(|x| r.log_z - x);

    let text = if args.json {
        serde_json::to_string(&report_fields)? + "\n"
    } else {
        summary(&report_fields)
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("writing to stdout")?;
    Ok(())
}

/// The human-readable summary.
fn summary(r: &Report) -> String {
    let mut s = String::new();
    match r.scale {
        Some(scale) => {
            let _ = writeln!(
                s,
                "RBM: {}×{}, random (scale {scale}, seed {})",
                r.n1, r.n2, r.seed
            );
        }
        None => {
            let _ = writeln!(s, "RBM: {}×{}, {}", r.n1, r.n2, r.rbm);
        }
    }
    if r.method == "exact" {
        let _ = writeln!(s, "log Z = {:.6} (exact, {:.3} s)", r.log_z, r.seconds);
        return s;
    }
    let _ = writeln!(
        s,
        "log Z = {:.4} ± {:.4} ({}, {} runs, {:.2} s)",
        r.log_z, r.log_z_std, r.method, r.runs, r.seconds
    );
    if let (Some(x), Some(err), Some(t)) = (r.exact, r.error, r.exact_seconds) {
        let z = if r.log_z_std > 0.0 {
            format!(" = {:.1} std", err / r.log_z_std)
        } else {
            String::new()
        };
        let _ = writeln!(s, "exact = {x:.4} ({t:.2} s); error {err:+.4}{z}");
    }
    if let (Some(k), Some(c)) = (r.ais_betas, r.ais_chains) {
        let _ = writeln!(
            s,
            "AIS: {k} βs ({}), {c} chains per run, smallest run ESS {:.1}",
            r.ais_schedule.unwrap_or("?"),
            r.ais_min_ess.unwrap_or(f64::NAN)
        );
    }
    if let (Some(n), Some(rates)) = (r.pt_replicas, &r.pt_swap_rates) {
        let min = rates.iter().copied().fold(f64::INFINITY, f64::min);
        let max = rates.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mean = rates.iter().sum::<f64>() / rates.len().max(1) as f64;
        let _ = writeln!(
            s,
            "PT: {n} temperatures, swap rates {min:.2}–{max:.2} (mean {mean:.2}); \
             {} burn-in + {} steps ({} stored)",
            r.pt_burn_in.unwrap_or(0),
            r.pt_sweeps.unwrap_or(0),
            r.pt_stored_steps.unwrap_or(0)
        );
    }
    for w in &r.warnings {
        let _ = writeln!(s, "warning: {w}");
    }
    s
}

/// The JSON output of `--bm` (`--json`): one object on one line.
#[derive(Debug, Serialize)]
struct BmReport {
    method: &'static str,
    log_z: f64,
    /// Standard error (0 for exact).
    log_z_std: f64,
    /// Wall time of the estimate (excluding the exact reference).
    seconds: f64,
    /// Exact log Z when the machine has ≤ 24 units (else null).
    exact: Option<f64>,
    /// `log_z − exact`.
    error: Option<f64>,
    /// The file.
    bm: String,
    units: usize,
    edges: usize,
    colours: usize,
    seed: u64,
    runs: usize,
    run_estimates: Vec<f64>,
    warnings: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pt_betas: Option<Vec<f64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pt_swap_rates: Option<Vec<f64>>,
}

/// `gumbolt logz --bm FILE`: a Boltzmann machine on any graph, by enumeration, or AIS / PT +
/// bridge sampling over the colour classes of its graph (the RBM options `--runs`,
/// `--ais-steps`, `--ais-chains`, `--pt-burn-in`, `--pt-sweeps`, `--pt-thin`, `--pt-ladder`
/// (a fixed ladder), `--threads` and `--seed` apply).
fn run_bm(args: &LogzArgs, path: &std::path::Path) -> Result<()> {
    use gumbolt_core::LogPartitionEstimator;
    use gumbolt_core::prior::ColourConditionals;
    use gumbolt_samplers::logz::{ColourAis, ColourAisConfig, ColourPtBar, ColourPtBarConfig};
    let bm = gumbolt_priors::SparseBm::load_json(path)?;
    let n = bm.num_units();
    let start = Instant::now();
    let mut betas = None;
    let mut rates = None;
    let est = match args.method {
        Method::Exact => LogPartitionEstimate::exact(bm.log_partition().with_context(|| {
            format!(
                "--method exact: {n} units (use --method ais or pt above {MAX_ENUMERATION_UNITS})"
            )
        })?),
        Method::Ais => {
            let d = ColourAisConfig::default();
            let cfg = ColourAisConfig {
                chains: args.ais_chains,
                runs: args.runs.unwrap_or(d.runs),
                steps: args.ais_steps,
                threads: args.threads,
                seed: args.seed,
                ..d
            };
            ColourAis::new(cfg)
                .map_err(config_error)?
                .estimate(&bm)
                .context("AIS estimate failed")?
        }
        Method::Pt => {
            let d = ColourPtBarConfig::default();
            let cfg = ColourPtBarConfig {
                runs: args.runs.unwrap_or(d.runs),
                betas: match &args.pt_ladder {
                    LadderArg::Auto => None,
                    LadderArg::Fixed(l) => Some(l.betas().to_vec()),
                },
                burn_in: args.pt_burn_in,
                sweeps: args.pt_sweeps,
                thin: args.pt_thin,
                threads: args.threads,
                seed: args.seed,
                ..d
            };
            let mut pt = ColourPtBar::new(cfg).map_err(config_error)?;
            let est = pt.estimate(&bm).context("PT estimate failed")?;
            if let Some(r) = pt.report() {
                betas = Some(r.betas.clone());
                rates = Some(r.swap_rates.clone());
            }
            est
        }
    };
    let seconds = start.elapsed().as_secs_f64();
    let exact = if args.method == Method::Exact {
        Some(est.log_z)
    } else if !args.no_exact && n <= MAX_ENUMERATION_UNITS {
        Some(bm.log_partition().context("exact log Z")?)
    } else {
        None
    };
    let r = BmReport {
        method: args.method.name(),
        log_z: est.log_z,
        log_z_std: est.std_err,
        seconds,
        exact,
        error: exact.map(|x| est.log_z - x),
        bm: path.display().to_string(),
        units: n,
        edges: bm.num_edges(),
        colours: bm.colour_classes().len(),
        seed: args.seed,
        runs: est.runs,
        run_estimates: est.run_estimates,
        warnings: est.warnings,
        pt_betas: betas,
        pt_swap_rates: rates,
    };
    let text = if args.json {
        serde_json::to_string(&r)? + "\n"
    } else {
        let mut s = format!(
            "Boltzmann machine: {} units, {} edges, {} colours, {}\n",
            r.units, r.edges, r.colours, r.bm
        );
        let _ = writeln!(
            s,
            "log Z = {:.4} ± {:.4} ({}, {:.2} s)",
            r.log_z, r.log_z_std, r.method, r.seconds
        );
        if let (Some(x), Some(e)) = (r.exact, r.error) {
            let _ = writeln!(s, "exact = {x:.4}; error {e:+.4}");
        }
        for w in &r.warnings {
            let _ = writeln!(s, "warning: {w}");
        }
        s
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("writing to stdout")?;
    Ok(())
}

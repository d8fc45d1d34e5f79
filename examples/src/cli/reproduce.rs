//! `gumbolt reproduce`: every cell of GB Table 1 or Table 2 as resumable (cell, seed) jobs, and
//! the table of our numbers beside the paper's.
//!
//! Layout of `--out OUT`:
//!
//! | path | content |
//! |---|---|
//! | `reproduce.json` | the settings of the reproduction (written by the first invocation); later invocations with other settings are refused |
//! | `runs/<cell>/seed<s>/` | the run directory of `gumbolt train` and `gumbolt eval` (checkpoints, curves, `eval.json`) |
//! | `cells/<cell>-seed<s>.json` | the result of one job ([`CellResult`]), written atomically once the job is finished and never overwritten |
//! | `table.md`, `table.json`, `table.png` | the table of this invocation, from all results in `cells/` |
//!
//! A job whose result file exists is skipped; a job whose run directory holds an unfinished
//! checkpoint continues it (`train --resume`), then evaluates. Cell ids are
//! `<structure>-<model>-k<k>`, e.g. `nonlinear-gumbolt-k5`; the GumBolt k = 20 cells are shared
//! by Tables 1 and 2.

use super::dataset::{self, DatasetArg, Source};
use super::eval::{self, EvalRequest};
use super::prior_arg::PriorArg;
use super::progress::hms;
use super::registry::{DVAE, DVAEPP, GUMBOLT, GUMBOLT_NW, ModelKind, PriorKind};
use super::rundir::{self, RUN_MARKERS, RunDir, SUMMARY};
use super::train::{
    self, MonitorChanges, NewRun, ResumeRun, Start, TrainRequest, parse_structure, symbol,
};
use super::{int_at_least, usage_error};
use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use gumbolt_core::ChainProducts;
use gumbolt_core::linalg::Precision;
use gumbolt_examples::plot::{self, ModelPoint, ReferencePoint};
use gumbolt_models::gumbolt::Structure;
use gumbolt_models::eval::LogZConfig;
use gumbolt_models::train::{Interval, read_meta};
use gumbolt_samplers::PcdConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

const SUB: &str = "reproduce";
const MANIFEST: &str = "reproduce.json";
const CELLS: &str = "cells";
const RUNS: &str = "runs";
const TABLE_MD: &str = "table.md";
const TABLE_JSON: &str = "table.json";
const TABLE_PNG: &str = "table.png";
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The paper's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum TableArg {
    /// Table 1: dVAE, dVAE++ (k = 1) and GumBolt (k = 1, 5, 20) on the four structures.
    #[value(name = "1")]
    One,
    /// Table 2: GumBolt and GumBolt-nW (no couplings), k = 20, structures —, ~, ~~.
    #[value(name = "2")]
    Two,
}

/// The compute budget of a reproduction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum BudgetArg {
    /// 30 iterations, 10 PCD sweeps, S = 10 on the first 500 test images, 1 seed (CI).
    Smoke,
    /// 5000 iterations, 200 PCD sweeps, S = 500 on all test images, 1 seed.
    Short,
    /// 100 000 iterations, 200 PCD sweeps, S = 1000 on all test images, 3 seeds.
    Long,
    /// The paper's protocol: 10⁶ iterations, 200 PCD sweeps, S = 4000, 5 seeds.
    Paper,
}

/// The settings of a budget.
#[derive(Debug, Clone, Copy)]
struct Budget {
    iters: u64,
    pcd_steps: usize,
    pcd_chains: usize,
    samples: usize,
    /// Test images evaluated (`None`: all).
    limit: Option<usize>,
    seeds: usize,
    /// Monitoring records of `gumbolt train` over the run.
    monitor_records: u64,
}

impl BudgetArg {
    fn name(self) -> &'static str {
        match self {
            BudgetArg::Smoke => "smoke",
            BudgetArg::Short => "short",
            BudgetArg::Long => "long",
            BudgetArg::Paper => "paper",
        }
    }

    fn settings(self) -> Budget {
        let b = |iters, pcd_steps, samples, limit, seeds, monitor_records| Budget {
            iters,
            pcd_steps,
            pcd_chains: 100,
            samples,
            limit,
            seeds,
            monitor_records,
        };
        match self {
            // Monitoring only at the start and the end: with train's default of 20 records,
            // monitoring took 9.6 s of an 11 s smoke run (k = 20, `~`).
            BudgetArg::Smoke => b(30, 10, 10, Some(500), 1, 1),
            BudgetArg::Short => b(5000, 200, 500, None, 1, 20),
            // Long runs: 50 records, so the learning curves read like GB Fig. 2b.
            BudgetArg::Long => b(100_000, 200, 1000, None, 3, 50),
            BudgetArg::Paper => b(1_000_000, 200, 4000, None, 5, 50),
        }
    }
}

/// `--shard I/N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shard {
    /// 1-based.
    index: usize,
    count: usize,
}

/// `--shard`: a fixed `I/N`, or `auto` (taken from the cluster's job-array variables).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ShardArg {
    Fixed(Shard),
    Auto,
}

fn parse_shard_arg(s: &str) -> Result<ShardArg, String> {
    if s.trim() == "auto" {
        Ok(ShardArg::Auto)
    } else {
        parse_shard(s).map(ShardArg::Fixed)
    }
}

/// The shard of this task of a job array: Slurm's `SLURM_ARRAY_TASK_ID`,
/// `SLURM_ARRAY_TASK_MIN` and `SLURM_ARRAY_TASK_COUNT` (an array `--array=A-B` with step 1:
/// shard `ID − MIN + 1` of `COUNT`), or a Kubernetes Indexed Job's `JOB_COMPLETION_INDEX`
/// (0-based) with the shard count in `GUMBOLT_SHARD_COUNT`. `var` reads the environment.
fn shard_from_env(var: impl Fn(&str) -> Option<String>) -> Result<Shard, String> {
    let num =
        |name: &str| -> Result<Option<usize>, String> {
            match var(name) {
                None => Ok(None),
                Some(v) => v.trim().parse::<usize>().map(Some).map_err(|_| {
                    format!("--shard auto: {name}={v:?} is not a non-negative integer")
                }),
            }
        };
    let (index, count, what) = if let Some(id) = num("SLURM_ARRAY_TASK_ID")? {
        let min = num("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
        let count = num("SLURM_ARRAY_TASK_COUNT")?
            .ok_or("--shard auto: SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not")?;
        if id < min {
            return Err(format!(
                "--shard auto: SLURM_ARRAY_TASK_ID={id} is below SLURM_ARRAY_TASK_MIN={min}"
            ));
        }
        (id - min + 1, count, "Slurm array task")
    } else if let Some(i) = num("JOB_COMPLETION_INDEX")? {
        let count = num("GUMBOLT_SHARD_COUNT")?.ok_or(
            "--shard auto: JOB_COMPLETION_INDEX is set but GUMBOLT_SHARD_COUNT (the number of \
             completions) is not",
        )?;
        (i + 1, count, "indexed job")
    } else {
        return Err(
            "--shard auto: not in a job array (neither SLURM_ARRAY_TASK_ID nor \
                    JOB_COMPLETION_INDEX is set); give --shard I/N instead"
                .into(),
        );
    };
    if count == 0 || index > count {
        return Err(format!(
            "--shard auto: {what} {index} of {count}: the array's indices must be one \
             contiguous range with step 1 (e.g. --array=1-4)"
        ));
    }
    Ok(Shard { index, count })
}

fn parse_shard(s: &str) -> Result<Shard, String> {
    let expected = || format!("expected I/N with integers 1 ≤ I ≤ N (e.g. 1/2), got {s:?}");
    let (a, b) = s.trim().split_once('/').ok_or_else(expected)?;
    let index: usize = a.trim().parse().map_err(|_| expected())?;
    let count: usize = b.trim().parse().map_err(|_| expected())?;
    if count == 0 || index == 0 || index > count {
        return Err(expected());
    }
    Ok(Shard { index, count })
}

fn parse_iters(s: &str) -> Result<u64, String> {
    match s.trim().parse::<u64>() {
        Ok(v) if v >= 1 => Ok(v),
        _ => Err("expected an integer ≥ 1".into()),
    }
}

/// Reproduce GB Table 1 or 2: every cell as resumable (cell, seed) jobs, then our numbers
/// beside the paper's in OUT/table.md, table.json and table.png.
///
/// Table 1: dVAE, dVAE++ (k = 1) and GumBolt (k = 1, 5, 20) on the structures —, ~, ——, ~~;
/// Table 2: GumBolt and GumBolt-nW (k = 20) on —, ~, ~~. Each (cell, seed) job trains into
/// `OUT/runs/<cell>/seed<s>/` (`gumbolt train`), evaluates it (`gumbolt eval --logz pt`, seed
/// s) and writes `OUT/cells/<cell>-seed<s>.json` (cell ids like `nonlinear-gumbolt-k5`,
/// `nonlinear2-gumbolt-nw-k20`; the GumBolt k = 20 cells are shared by both tables). A job
/// whose result exists is skipped, never recomputed or overwritten; an interrupted job
/// continues from its last checkpoint. A failed job is reported and the others go on; the
/// command then exits with status 1 listing the failed jobs.
///
/// Budgets (--iters, --samples and --limit override them; overrides are recorded):
///
/// - smoke: 30 iterations, 10 PCD sweeps × 100 chains, S = 10 importance samples on the
///   first 500 test images, 1 seed (minutes; CI);
///
/// - short: 5000 iterations, 200 sweeps × 100 chains, S = 500 on all test images, 1 seed;
///
/// - long: 100 000 iterations, 200 sweeps × 100 chains, S = 1000 on all test images,
///   3 seeds;
///
/// - paper: the paper's protocol, 1 000 000 iterations, 200 sweeps × 100 chains, S = 4000
///   on all test images, 5 seeds.
///
/// The settings are stored in OUT/reproduce.json and in every result; an OUT holding results
/// of other settings is refused (use another --out). The jobs are listed seed by seed, row by
/// row, column by column; --shard I/N runs those whose index is I−1 modulo N. With
/// --jobs J ≥ 2, J jobs run at once, each training step and evaluation with cores/J threads, and the progress
/// of train and eval is not shown. One line per job start and end goes to stderr, with an ETA; at the
/// end the table (also with pending cells) is written and printed on stdout.
#[derive(Debug, Clone, Args)]
#[command(args_override_self = true)]
pub(crate) struct ReproduceArgs {
    /// The paper's table: 1 (dVAE, dVAE++, GumBolt k = 1, 5, 20) or 2 (GumBolt and GumBolt-nW,
    /// k = 20).
    #[arg(long, value_enum, value_name = "N")]
    table: TableArg,

    /// The data set (the bundled copy unless --data-dir / --data-file).
    #[arg(long, value_enum)]
    dataset: DatasetArg,

    /// The compute budget (see the command's help).
    #[arg(long, value_enum)]
    budget: BudgetArg,

    /// The output directory (results, run directories, table.md, table.json, table.png).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,

    /// Seeds per cell, 0..N [default: the budget's].
    #[arg(long, value_name = "N", value_parser = int_at_least::<1>)]
    seeds: Option<usize>,

    /// Jobs run concurrently (each training step and evaluation then uses cores/J threads).
    #[arg(long, value_name = "J", value_parser = int_at_least::<1>, default_value_t = 1)]
    jobs: usize,

    /// Run only the jobs whose index in the job list is I−1 modulo N (1 ≤ I ≤ N), to spread a
    /// reproduction over machines; every shard must be given the same other options. `auto`
    /// takes I and N from a Slurm job array (SLURM_ARRAY_TASK_ID − SLURM_ARRAY_TASK_MIN + 1 of
    /// SLURM_ARRAY_TASK_COUNT) or a Kubernetes Indexed Job (JOB_COMPLETION_INDEX + 1 of
    /// GUMBOLT_SHARD_COUNT).
    #[arg(long, value_name = "I/N|auto", value_parser = parse_shard_arg)]
    shard: Option<ShardArg>,

    /// Only these rows (structures), comma-separated: linear (-), nonlinear (~), linear2 (--),
    /// nonlinear2 (~~) [default: all of the table's].
    #[arg(long, value_name = "S,..", value_delimiter = ',', value_parser = parse_structure,
          allow_hyphen_values = true)]
    structures: Vec<Structure>,

    /// Only these columns' models, comma-separated: gumbolt, gumbolt-nw, dvae, dvaepp
    /// [default: all of the table's].
    #[arg(long, value_name = "M,..", value_enum, value_delimiter = ',')]
    models: Vec<ModelKind>,

    /// Only the columns with these numbers of importance samples, comma-separated (with
    /// --models gumbolt --k 1: the GumBolt k = 1 column alone) [default: all of the table's].
    #[arg(long = "k", value_name = "K,..", value_delimiter = ',', value_parser = int_at_least::<1>)]
    ks: Vec<usize>,

    // The help text is an attribute, not a doc comment: rustdoc would read its brackets as links.
    #[arg(long, value_name = "PRIOR", value_parser = super::prior_arg::parse_prior,
          help = "The prior of the models with couplings (GumBolt, dVAE, dVAE++) instead of the \
                  RBM: chimera[:M,N,T], pegasus[:M], zephyr[:M,T] or graph:FILE.json, as for \
                  `gumbolt train --prior` (recorded in the results; GumBolt-nW keeps its \
                  factorial prior)")]
    prior: Option<PriorArg>,

    /// Training iterations instead of the budget's (recorded in the results).
    #[arg(long, value_name = "T", value_parser = parse_iters)]
    iters: Option<u64>,

    /// Importance samples per test image instead of the budget's (recorded in the results).
    #[arg(long, value_name = "S", value_parser = int_at_least::<1>)]
    samples: Option<usize>,

    /// Evaluate only the first N test images instead of the budget's (recorded in the results).
    #[arg(long, value_name = "N", value_parser = int_at_least::<1>)]
    limit: Option<usize>,

    /// Arithmetic of the networks' products while training, as `gumbolt train
    /// --network-products` (recorded in the results) [default: f32, unlike train's, so that every
    /// committed table re-runs as it was made].
    #[arg(long, value_name = "P", value_parser = super::train::parse_precision)]
    network_products: Option<Precision>,

    /// Arithmetic of the PCD sweeps' products while training, as `gumbolt train
    /// --chain-products` (recorded in the results) [default: f32, as --network-products].
    #[arg(long, value_name = "P", value_parser = super::train::parse_chain_products)]
    chain_products: Option<ChainProducts>,

    /// Directory of the data set (as for `gumbolt train`) [default: the bundled copy].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// OMNIGLOT only: Burda et al.'s chardata.mat (the paper's data) instead of the rebuild.
    #[arg(long, value_name = "FILE", conflicts_with = "data_dir")]
    data_file: Option<PathBuf>,

    /// Run nothing: only aggregate the results already in --out into the table (e.g. after
    /// copying the `cells/` of several shards together).
    #[arg(long)]
    report: bool,

    /// Neither job lines nor the progress of train and eval on stderr (the table is still
    /// printed on stdout).
    #[arg(long, short)]
    quiet: bool,
}

// ---------------------------------------------------------------------------------------------
// The paper's tables.

/// A column of a table: a model trained with k importance samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Column {
    model: ModelKind,
    k: usize,
}

impl Column {
    const fn new(model: ModelKind, k: usize) -> Self {
        Self { model, k }
    }

    fn id(self) -> String {
        format!("{}-k{}", self.model.name, self.k)
    }

    fn label(self) -> String {
        format!("{} k={}", self.model.title, self.k)
    }
}

const T1_COLUMNS: [Column; 5] = [
    Column::new(DVAE, 1),
    Column::new(DVAEPP, 1),
    Column::new(GUMBOLT, 1),
    Column::new(GUMBOLT, 5),
    Column::new(GUMBOLT, 20),
];
const T1_ROWS: [Structure; 4] = [
    Structure::Linear,
    Structure::Nonlinear,
    Structure::Linear2,
    Structure::Nonlinear2,
];
/// GB Table 1, test NLL (nats), rows × columns as above, as printed in the paper.
const T1_MNIST: [[&str; 5]; 4] = [
    ["90.11", "90.40", "88.88", "88.18", "87.45"],
    ["85.72", "85.41", "84.86", "84.31", "83.87"],
    ["85.71", "87.35", "85.42", "84.65", "84.46"],
    ["84.33", "84.75", "83.28", "83.01", "82.75"],
];
const T1_OMNIGLOT: [[&str; 5]; 4] = [
    ["106.83", "106.01", "105.00", "103.99", "103.69"],
    ["102.85", "101.97", "101.61", "101.02", "100.68"],
    ["101.98", "102.62", "100.62", "99.38", "99.36"],
    ["101.75", "100.70", "99.82", "99.32", "98.81"],
];
const T2_COLUMNS: [Column; 2] = [Column::new(GUMBOLT, 20), Column::new(GUMBOLT_NW, 20)];
const T2_ROWS: [Structure; 3] = [
    Structure::Linear,
    Structure::Nonlinear,
    Structure::Nonlinear2,
];
/// GB Table 2 (k = 20), as printed in the paper (107.221 included).
const T2_MNIST: [[&str; 2]; 3] = [["87.45", "99.94"], ["83.87", "93.50"], ["82.75", "88.01"]];
const T2_OMNIGLOT: [[&str; 2]; 3] = [
    ["103.69", "112.21"],
    ["100.68", "107.221"],
    ["98.81", "105.01"],
];

/// One cell of a table.
#[derive(Debug, Clone, Copy)]
struct Cell {
    structure: Structure,
    column: Column,
    /// The paper's test NLL as printed.
    paper: &'static str,
}

impl Cell {
    fn id(&self) -> String {
        format!("{}-{}", self.structure.name(), self.column.id())
    }

    fn paper_value(&self) -> f64 {
        self.paper.parse().expect("the paper's numbers parse")
    }

    /// A rough relative cost, for the ETA: k samples cost more (measured with the short budget
    /// on `~`, training and evaluation: ×1.2 at k = 5, ×2.1 at k = 20), nW has no PCD (×0.3),
    /// two stochastic layers are bigger.
    fn weight(&self) -> f64 {
        let base = if self.column.model == GUMBOLT_NW {
            0.3
        } else {
            1.0
        };
        let layers = match self.structure {
            Structure::Linear | Structure::Nonlinear => 1.0,
            Structure::Linear2 | Structure::Nonlinear2 => 1.5,
        };
        (base + 0.06 * (self.column.k as f64 - 1.0)) * layers
    }
}

impl TableArg {
    fn number(self) -> u8 {
        match self {
            TableArg::One => 1,
            TableArg::Two => 2,
        }
    }

    fn columns(self) -> &'static [Column] {
        match self {
            TableArg::One => &T1_COLUMNS,
            TableArg::Two => &T2_COLUMNS,
        }
    }

    fn rows(self) -> &'static [Structure] {
        match self {
            TableArg::One => &T1_ROWS,
            TableArg::Two => &T2_ROWS,
        }
    }

    fn paper(self, dataset: DatasetArg, row: usize, col: usize) -> &'static str {
        match (self, dataset) {
            (TableArg::One, DatasetArg::Mnist) => T1_MNIST[row][col],
            (TableArg::One, DatasetArg::Omniglot) => T1_OMNIGLOT[row][col],
            (TableArg::Two, DatasetArg::Mnist) => T2_MNIST[row][col],
            (TableArg::Two, DatasetArg::Omniglot) => T2_OMNIGLOT[row][col],
        }
    }

    /// The cells, row by row.
    fn cells(self, dataset: DatasetArg) -> Vec<Cell> {
        let mut out = Vec::new();
        for (r, &structure) in self.rows().iter().enumerate() {
            for (c, &column) in self.columns().iter().enumerate() {
                out.push(Cell {
                    structure,
                    column,
                    paper: self.paper(dataset, r, c),
                });
            }
        }
        out
    }
}

/// The tables holding a cell id.
fn tables_of(id: &str) -> Vec<u8> {
    [TableArg::One, TableArg::Two]
        .into_iter()
        .filter(|t| t.cells(DatasetArg::Mnist).iter().any(|c| c.id() == id))
        .map(TableArg::number)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Settings and results.

/// The settings every result of one output directory shares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Settings {
    /// `smoke`, `short`, `long` or `paper`.
    budget: String,
    /// `mnist` or `omniglot`.
    dataset: String,
    /// `MNIST`, `OMNIGLOT (rebuilt)` or `OMNIGLOT` (chardata.mat).
    dataset_label: String,
    /// Training iterations.
    iters: u64,
    /// PCD block-Gibbs sweeps per iteration (models with couplings).
    pcd_steps: usize,
    /// PCD persistent chains.
    pcd_chains: usize,
    /// Importance samples per test image.
    samples: usize,
    /// Test images evaluated (`null`: all).
    test_images: Option<usize>,
    /// The log Z estimator of the evaluation (`pt`: PT + bridge sampling; nW: exact).
    log_z: String,
    /// Monitoring records of training (learning curves only; no effect on the results).
    monitor_records: u64,
    /// The options that changed the budget's settings, e.g. `--iters 50`.
    overrides: Vec<String>,
    /// The training products' precision (absent from the JSON when f32, as in results written
    /// before it could be chosen).
    #[serde(default, skip_serializing_if = "is_f32")]
    network_products: Precision,
    /// The PCD sweeps' products (absent from the JSON when f32, as in results written before
    /// it could be chosen).
    #[serde(default, skip_serializing_if = "is_f32_chains")]
    chain_products: ChainProducts,
}

fn is_f32_chains(p: &ChainProducts) -> bool {
    *p == ChainProducts::F32
}

fn is_f32(p: &Precision) -> bool {
    *p == Precision::F32
}

impl Settings {
    fn describe(&self) -> String {
        let images = match self.test_images {
            Some(n) => format!("the first {n} test images"),
            None => "all test images".into(),
        };
        let overrides = if self.overrides.is_empty() {
            String::new()
        } else {
            format!("; overridden: {}", self.overrides.join(" "))
        };
        format!(
            "{} ({} iterations, {} PCD sweeps × {} chains per iteration, S = {} importance \
             samples on {images}, log Z by PT + bridge sampling{overrides})",
            self.budget, self.iters, self.pcd_steps, self.pcd_chains, self.samples
        )
    }
}

/// `reproduce.json`.
#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    settings: Settings,
    gumbolt_version: String,
    created: String,
    command: String,
}

/// `cells/<cell>-seed<s>.json`: the result of one (cell, seed) job.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CellResult {
    /// The cell id, `<structure>-<model>-k<k>`.
    cell: String,
    /// The tables holding the cell.
    tables: Vec<u8>,
    /// The row: the structure's name, and its symbol in the paper.
    row: String,
    symbol: String,
    /// The column: `<model>-k<k>`, and its title.
    column: String,
    column_label: String,
    model: String,
    structure: String,
    k: usize,
    seed: u64,
    tau: f64,
    /// The settings (budget and overrides) the result was made with.
    settings: Settings,
    /// The label of the test set.
    dataset: String,
    /// Mean test NLL (nats), its standard error over the test images, and log Z.
    test_nll: f64,
    test_nll_sem: f64,
    log_z: f64,
    log_z_std: f64,
    log_z_method: String,
    test_images: usize,
    samples: usize,
    /// Training iterations done.
    iterations: u64,
    /// Training time (steps only, all sessions).
    train_seconds: f64,
    /// Median seconds per iteration of the last training session.
    sec_per_iter: Option<f64>,
    /// `train_seconds / iterations`.
    sec_per_iter_mean: Option<f64>,
    /// Wall time of the evaluation (log Z and the likelihood).
    eval_seconds: f64,
    /// The paper's value of the cell.
    paper: f64,
    /// Warnings of the evaluation.
    warnings: Vec<String>,
    /// The run directory, relative to the output directory.
    run: String,
    finished_at: String,
    gumbolt_version: String,
    command: String,
    /// Build, machine, threads and data checksums of the job ([`super::manifest`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    manifest: Option<super::manifest::Manifest>,
}

// ---------------------------------------------------------------------------------------------
// Running.

/// One (cell, seed) job.
#[derive(Debug, Clone)]
struct Job {
    cell: Cell,
    seed: u64,
}

impl Job {
    fn name(&self) -> String {
        format!("{} seed {}", self.cell.id(), self.seed)
    }

    fn result_path(&self, out: &Path) -> PathBuf {
        out.join(CELLS)
            .join(format!("{}-seed{}.json", self.cell.id(), self.seed))
    }

    fn run_rel(&self) -> String {
        format!("{RUNS}/{}/seed{}", self.cell.id(), self.seed)
    }
}

/// What every job needs.
struct Ctx<'a> {
    args: &'a ReproduceArgs,
    settings: &'a Settings,
    /// Threads of each evaluation (0: all cores).
    eval_threads: usize,
    /// Progress of train and eval on stderr.
    progress: bool,
    command: String,
}

/// Runs `gumbolt reproduce`.
pub(crate) fn run(args: ReproduceArgs) -> Result<()> {
    let table = args.table;
    let budget = args.budget.settings();
    let seeds = args.seeds.unwrap_or(budget.seeds);
    dataset::check_data_file(SUB, args.dataset, args.data_file.as_deref())?;
    let cells = selected_cells(&args)?;
    let source = Source::of(args.data_dir.as_deref(), args.data_file.as_deref());
    let settings = settings_of(&args, &source);
    let command = command_line();

    let out = &args.out;
    if out.exists() && !out.is_dir() {
        bail!("--out {}: exists and is not a directory", out.display());
    }
    if args.report && !out.is_dir() {
        bail!(
            "--out {}: no such directory (--report only aggregates existing results)",
            out.display()
        );
    }
    check_settings(out, &settings)?;
    if !args.report {
        std::fs::create_dir_all(out.join(CELLS))
            .and_then(|()| std::fs::create_dir_all(out.join(RUNS)))
            .with_context(|| format!("--out {}: cannot create the directory", out.display()))?;
        let manifest = out.join(MANIFEST);
        if !manifest.exists() {
            rundir::write_json_atomic(
                &manifest,
                &Manifest {
                    settings: settings.clone(),
                    gumbolt_version: VERSION.into(),
                    created: utc_now(),
                    command: command.clone(),
                },
            )?;
        }
    }

    // The fixed job list (seed by seed, so that one seed of every cell is done first), then the
    // shard.
    let all: Vec<Job> = (0..seeds as u64)
        .flat_map(|seed| cells.iter().map(move |&cell| Job { cell, seed }))
        .collect();
    let shard = match args.shard {
        None => None,
        Some(ShardArg::Fixed(s)) => Some(s),
        Some(ShardArg::Auto) => {
            Some(shard_from_env(|name| std::env::var(name).ok()).map_err(|e| usage_error(SUB, e))?)
        }
    };
    let mine: Vec<Job> = match shard {
        Some(s) => all
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % s.count == s.index - 1)
            .map(|(_, j)| j)
            .collect(),
        None => all,
    };
    let pending: Vec<Job> = mine
        .iter()
        .filter(|j| !j.result_path(out).exists())
        .cloned()
        .collect();

    let mut failed: Vec<(String, String)> = Vec::new();
    if !args.report {
        let shard = shard.map_or(String::new(), |s| {
            format!(" (shard {}/{})", s.index, s.count)
        });
        log(
            &args,
            &format!(
                "gumbolt reproduce: Table {} on {}, budget {}: {} job(s){shard}, {} already \
                 finished, {} to run with {} concurrent job(s)",
                table.number(),
                settings.dataset_label,
                settings.describe(),
                mine.len(),
                mine.len() - pending.len(),
                pending.len(),
                args.jobs.min(pending.len().max(1))
            ),
        );
        let cores = super::cores();
        let ctx = Ctx {
            args: &args,
            settings: &settings,
            eval_threads: if args.jobs > 1 {
                (cores / args.jobs).max(1)
            } else {
                0
            },
            progress: !args.quiet && args.jobs == 1,
            command: command.clone(),
        };
        failed = run_jobs(&ctx, &pending);
    }

    let md = write_table(out, table, &settings, seeds, &command)?;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(md.as_bytes())
        .and_then(|()| stdout.flush())
        .context("writing to stdout")?;
    drop(stdout);
    if !failed.is_empty() {
        bail!(
            "{} job(s) failed: {}; the other results are in {} (run the same command again to \
             retry the failed jobs)",
            failed.len(),
            failed
                .iter()
                .map(|(name, e)| format!("{name} ({e})"))
                .collect::<Vec<_>>()
                .join(", "),
            out.join(TABLE_MD).display()
        );
    }
    Ok(())
}

/// The table's cells left by --structures and --models, or a usage error if none is.
fn selected_cells(args: &ReproduceArgs) -> Result<Vec<Cell>> {
    let table = args.table;
    let n = table.number();
    if args.prior == Some(PriorArg::Bernoulli) {
        return Err(usage_error(
            SUB,
            "invalid value for --prior: bernoulli is the GumBolt-nW column's prior (Table 2, \
             --models gumbolt-nw); --prior replaces the RBM of the models with couplings",
        ));
    }
    for &s in &args.structures {
        if !table.rows().contains(&s) {
            return Err(usage_error(
                SUB,
                format!(
                    "invalid value for --structures: Table {n} has no row {} ({}); its rows: {}",
                    s.name(),
                    symbol(s),
                    table
                        .rows()
                        .iter()
                        .map(|s| s.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
    for &m in &args.models {
        if !table.columns().iter().any(|c| c.model == m) {
            return Err(usage_error(
                SUB,
                format!(
                    "invalid value for --models: Table {n} has no {} column; its models: {}",
                    m.name,
                    table_models(table).join(", ")
                ),
            ));
        }
    }
    for &k in &args.ks {
        let selected = |c: &&Column| args.models.is_empty() || args.models.contains(&c.model);
        if !table.columns().iter().filter(selected).any(|c| c.k == k) {
            return Err(usage_error(
                SUB,
                format!(
                    "invalid value for --k: Table {n} has no column with k = {k} among the \
                     selected models; its columns' k: {}",
                    table
                        .columns()
                        .iter()
                        .filter(selected)
                        .map(|c| format!("{} k={}", c.model.name, c.k))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
    Ok(table
        .cells(args.dataset)
        .into_iter()
        .filter(|c| args.structures.is_empty() || args.structures.contains(&c.structure))
        .filter(|c| args.models.is_empty() || args.models.contains(&c.column.model))
        .filter(|c| args.ks.is_empty() || args.ks.contains(&c.column.k))
        .collect())
}

fn table_models(table: TableArg) -> Vec<&'static str> {
    let mut v: Vec<&'static str> = Vec::new();
    for c in table.columns() {
        if !v.contains(&c.model.name) {
            v.push(c.model.name);
        }
    }
    v
}

fn settings_of(args: &ReproduceArgs, source: &Source) -> Settings {
    let b = args.budget.settings();
    let mut overrides = Vec::new();
    let iters = args.iters.unwrap_or(b.iters);
    if iters != b.iters {
        overrides.push(format!("--iters {iters}"));
    }
    let samples = args.samples.unwrap_or(b.samples);
    if samples != b.samples {
        overrides.push(format!("--samples {samples}"));
    }
    let limit = args.limit.or(b.limit);
    if limit != b.limit {
        overrides.push(format!("--limit {}", limit.unwrap_or_default()));
    }
    if let Some(p) = args
        .prior
        .as_ref()
        .filter(|p| **p != PriorArg::Rbm)
    {
        overrides.push(format!("--prior {}", p.label()));
    }
    let network_products = args.network_products.unwrap_or_default();
    if network_products != Precision::F32 {
        overrides.push(format!("--network-products {network_products}"));
    }
    let chain_products = args.chain_products.unwrap_or_default();
    if chain_products != ChainProducts::F32 {
        overrides.push(format!("--chain-products {chain_products}"));
    }
    Settings {
        budget: args.budget.name().into(),
        dataset: args.dataset.name().into(),
        dataset_label: dataset::label(args.dataset, source).into(),
        iters,
        pcd_steps: b.pcd_steps,
        pcd_chains: b.pcd_chains,
        samples,
        test_images: limit,
        log_z: "pt".into(),
        monitor_records: b.monitor_records,
        overrides,
        network_products,
        chain_products,
    }
}

/// Refuses an output directory holding results of other settings.
fn check_settings(out: &Path, settings: &Settings) -> Result<()> {
    let refuse = |what: String, theirs: &Settings| {
        usage_error(
            SUB,
            format!(
                "--out {} holds results made with other settings ({what}: budget {} on {}); \
                 this invocation asks for budget {} on {}. Results of different settings are \
                 not mixed in one table: use another --out",
                out.display(),
                theirs.describe(),
                theirs.dataset_label,
                settings.describe(),
                settings.dataset_label
            ),
        )
    };
    let manifest = out.join(MANIFEST);
    if manifest.exists() {
        let text = std::fs::read_to_string(&manifest)
            .with_context(|| format!("cannot read {}", manifest.display()))?;
        let m: Manifest = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not a gumbolt reproduce manifest (use another --out)",
                manifest.display()
            )
        })?;
        if m.settings != *settings {
            return Err(refuse(manifest.display().to_string(), &m.settings));
        }
    }
    for (path, r) in read_results(out)?.0 {
        if r.settings != *settings {
            return Err(refuse(path.display().to_string(), &r.settings));
        }
    }
    Ok(())
}

/// The results in `OUT/cells`, and the files that could not be read (with the reason).
#[allow(clippy::type_complexity)]
fn read_results(out: &Path) -> Result<(Vec<(PathBuf, CellResult)>, Vec<(PathBuf, String)>)> {
    let dir = out.join(CELLS);
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((ok, bad)),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
            name.is_some_and(|n| !n.starts_with('.') && n.ends_with(".json"))
        })
        .collect();
    paths.sort();
    for p in paths {
        let parsed = std::fs::read_to_string(&p)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str::<CellResult>(&t).map_err(|e| e.to_string()));
        match parsed {
            Ok(r) => ok.push((p, r)),
            Err(e) => bad.push((p, e)),
        }
    }
    Ok((ok, bad))
}

fn log(args: &ReproduceArgs, line: &str) {
    if !args.quiet {
        eprintln!("{line}");
    }
}

/// Progress shared by the workers.
struct Tally {
    finished: usize,
    done_weight: f64,
    failed: Vec<(String, String)>,
}

/// Runs the jobs, `--jobs` at a time; returns the failed ones with their errors.
fn run_jobs(ctx: &Ctx<'_>, jobs: &[Job]) -> Vec<(String, String)> {
    if jobs.is_empty() {
        return Vec::new();
    }
    let t0 = Instant::now();
    let total = jobs.len();
    let total_weight: f64 = jobs.iter().map(|j| j.cell.weight()).sum();
    let next = AtomicUsize::new(0);
    let tally = Mutex::new(Tally {
        finished: 0,
        done_weight: 0.0,
        failed: Vec::new(),
    });
    let stamp = || format!("[{:>8}]", hms(t0.elapsed().as_secs_f64()));
    let worker = || {
        loop {
            let i = next.fetch_add(1, Ordering::SeqCst);
            let Some(job) = jobs.get(i) else { break };
            let n = i + 1;
            let j0 = Instant::now();
            log(
                ctx.args,
                &format!("{} start {n}/{total}: {}", stamp(), job.name()),
            );
            let outcome =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_job(ctx, job)))
                    .unwrap_or_else(|p| {
                        let msg = p
                            .downcast_ref::<&str>()
                            .map(|s| s.to_string())
                            .or_else(|| p.downcast_ref::<String>().cloned())
                            .unwrap_or_else(|| "unknown panic".into());
                        Err(anyhow::anyhow!("panicked: {msg}"))
                    });
            let secs = j0.elapsed().as_secs_f64();
            let mut t = tally.lock().unwrap_or_else(|e| e.into_inner());
            t.finished += 1;
            let line = match outcome {
                Ok(r) => {
                    t.done_weight += job.cell.weight();
                    let left = total - t.finished;
                    let eta = if left == 0 {
                        String::new()
                    } else {
                        let remaining = (total_weight - t.done_weight).max(0.0);
                        let rate = t0.elapsed().as_secs_f64() / t.done_weight;
                        format!(", ETA {}", hms(rate * remaining))
                    };
                    format!(
                        "{} done  {}/{total}: {}: test NLL {:.2} ± {:.2} (paper {}) in {}; {left} \
                         left{eta}",
                        stamp(),
                        t.finished,
                        job.name(),
                        r.test_nll,
                        r.test_nll_sem,
                        job.cell.paper,
                        hms(secs)
                    )
                }
                Err(e) => {
                    let msg = error_text(&e);
                    t.failed.push((job.name(), msg.clone()));
                    format!(
                        "{} FAILED {}/{total}: {} after {}: {msg}",
                        stamp(),
                        t.finished,
                        job.name(),
                        hms(secs)
                    )
                }
            };
            drop(t);
            // Failures are reported even with --quiet.
            if line.contains(" FAILED ") {
                eprintln!("{line}");
            } else {
                log(ctx.args, &line);
            }
        }
    };
    let threads = ctx.args.jobs.min(total);
    if threads <= 1 {
        worker();
    } else {
        std::thread::scope(|s| {
            for w in 0..threads {
                std::thread::Builder::new()
                    .name(format!("reproduce-{w}"))
                    .stack_size(8 << 20)
                    .spawn_scoped(s, || {
                        gumbolt_core::fpmode::enable_flush_to_zero();
                        worker()
                    })
                    .expect("a worker thread starts");
            }
        });
    }
    let t = tally.into_inner().unwrap_or_else(|e| e.into_inner());
    t.failed
}

/// An error on one line (a usage error of train or eval without its usage text).
fn error_text(e: &anyhow::Error) -> String {
    if let Some(c) = e.downcast_ref::<clap::Error>() {
        let text = c.to_string();
        let first = text.lines().next().unwrap_or_default();
        return first.strip_prefix("error: ").unwrap_or(first).to_string();
    }
    super::one_line(e)
}

/// The fields of `train_summary.json` a result needs (of a run trained by an earlier
/// invocation).
#[derive(Debug, Deserialize)]
struct TrainOut {
    iteration: u64,
    sec_per_iter: Option<f64>,
}

/// The new run of a cell's job: `gumbolt train`'s defaults (the paper's settings) with the
/// column's model and k and the budget's iterations, PCD and monitoring; `prior` replaces the
/// RBM of the models that have one.
fn cell_run(
    dataset: DatasetArg,
    source: Source,
    prior: Option<&PriorArg>,
    col: Column,
    structure: Structure,
    seed: u64,
    s: &Settings,
) -> Result<NewRun> {
    let prior = prior.filter(|_| col.model.prior == PriorKind::Rbm);
    let mut run = NewRun::defaults(dataset, source, col.model, prior, structure, s.iters, seed)?;
    run.config.k = col.k;
    run.config.train.network_products = s.network_products;
    if let Some(p) = &mut run.pcd {
        p.sweeps = s.pcd_steps;
        p.chains = s.pcd_chains;
        p.products = s.chain_products;
    }
    run.trainer.monitor.interval = Interval::Times(s.monitor_records);
    if let Some(i) = checkpoint_interval(s) {
        run.trainer.checkpoint_interval = i;
    }
    Ok(run)
}

/// Long runs checkpoint every 1 % (a stopped job loses at most that much work).
fn checkpoint_interval(s: &Settings) -> Option<Interval> {
    (s.iters >= 100_000).then_some(Interval::Every(s.iters / 100))
}

/// Trains (or continues) and evaluates one job, and writes its result.
fn run_job(ctx: &Ctx<'_>, job: &Job) -> Result<CellResult> {
    let s = ctx.settings;
    let out = &ctx.args.out;
    let path = job.result_path(out);
    let dir = RunDir::new(out.join(job.run_rel()));
    let col = job.cell.column;
    let ckpt = dir.checkpoint();
    let finished = if ckpt.exists() {
        let (kind, meta) = dir.checkpoint_meta()?;
        let m = &meta.model;
        let model = ModelKind::of(kind, m.objective);
        // The PCD settings of a model with PCD (`None` for the others).
        let pcd: Option<PcdConfig> = kind
            .uses_pcd()
            .then(|| serde_json::from_value(meta.negative_phase.clone()).ok())
            .flatten();
        let other_pcd = pcd.as_ref().is_some_and(|p| {
            (p.sweeps, p.chains, p.products) != (s.pcd_steps, s.pcd_chains, s.chain_products)
        });
        if m.structure != job.cell.structure
            || m.k != col.k
            || m.seed != job.seed
            || m.train.total_iterations != s.iters
            || model != col.model
            || m.train.network_products != s.network_products
            || other_pcd
        {
            let pcd = pcd.map_or(String::new(), |p| {
                format!(
                    ", {} PCD sweeps × {} chains, chain products {}",
                    p.sweeps, p.chains, p.products
                )
            });
            bail!(
                "{} holds another run ({} {} k={} seed {}, {} iterations, network products {}{pcd}); \
                 move it away",
                dir.root().display(),
                model.name,
                m.structure.name(),
                m.k,
                m.seed,
                m.train.total_iterations,
                m.train.network_products
            );
        }
        meta.iteration >= m.train.total_iterations
    } else {
        false
    };
    let trained = if !finished {
        let given = ctx.args.data_dir.is_some() || ctx.args.data_file.is_some();
        let source = Source::of(ctx.args.data_dir.as_deref(), ctx.args.data_file.as_deref());
        let start = if ckpt.exists() {
            Start::Resume(ResumeRun {
                source: given.then_some(source),
                monitor: MonitorChanges {
                    interval: Some(Interval::Times(s.monitor_records)),
                    ..MonitorChanges::default()
                },
                checkpoint_interval: checkpoint_interval(s),
            })
        } else {
            let run = cell_run(
                ctx.args.dataset,
                source,
                ctx.args.prior.as_ref(),
                col,
                job.cell.structure,
                job.seed,
                s,
            )?;
            // Started but stopped before its first checkpoint: nothing to keep.
            let overwrite = !dir.present(&RUN_MARKERS).is_empty();
            Start::New {
                run: Box::new(run),
                overwrite,
            }
        };
        let request = TrainRequest {
            out: dir.root().to_path_buf(),
            start,
            // Concurrent jobs share the cores.
            threads: (super::cores() / ctx.args.jobs).max(1),
            quiet: !ctx.progress,
            stop_after: None,
        };
        Some(train::train(request, Instant::now())?)
    } else {
        None
    };
    let meta = read_meta(&ckpt).with_context(|| format!("cannot read {}", ckpt.display()))?;
    if meta.iteration < meta.model.train.total_iterations {
        bail!(
            "training stopped at iteration {} of {}",
            meta.iteration,
            meta.model.train.total_iterations
        );
    }
    let ev = eval::evaluate_run(
        &EvalRequest::new(
            dir.root().to_path_buf(),
            s.samples,
            LogZConfig::pt_bar(),
            job.seed,
            ctx.eval_threads,
        )
        .with_limit(s.test_images)
        .with_data(ctx.args.data_dir.clone(), ctx.args.data_file.clone())
        .with_quiet(!ctx.progress),
    )?;
    // The last session's median time per step, when that session trained to the end: this
    // invocation's, else the one whose summary the run directory keeps.
    let summary = match trained {
        Some(t) => Some((t.iteration, t.sec_per_iter)),
        None => read_json::<TrainOut>(&dir.file(SUMMARY))
            .ok()
            .map(|t| (t.iteration, t.sec_per_iter)),
    };
    let sec_per_iter = summary
        .filter(|&(iteration, _)| iteration == meta.iteration)
        .and_then(|(_, s)| s);
    let iterations = meta.iteration;
    let mut warnings = ev.warnings;
    for w in ev.log_z_warnings {
        if !warnings.contains(&w) {
            warnings.push(w);
        }
    }
    let result = CellResult {
        cell: job.cell.id(),
        tables: tables_of(&job.cell.id()),
        row: job.cell.structure.name().into(),
        symbol: symbol(job.cell.structure).into(),
        column: col.id(),
        column_label: col.label(),
        model: col.model.name.into(),
        structure: job.cell.structure.name().into(),
        k: col.k,
        seed: job.seed,
        tau: meta.model.tau,
        settings: s.clone(),
        dataset: ev.dataset.into(),
        test_nll: ev.test_nll,
        test_nll_sem: ev.test_nll_sem,
        log_z: ev.log_z,
        log_z_std: ev.log_z_std,
        log_z_method: ev.log_z_method,
        test_images: ev.n,
        samples: ev.samples,
        iterations,
        train_seconds: meta.train_seconds,
        sec_per_iter,
        sec_per_iter_mean: (iterations > 0).then(|| meta.train_seconds / iterations as f64),
        eval_seconds: ev.seconds,
        paper: job.cell.paper_value(),
        warnings,
        run: job.run_rel(),
        finished_at: utc_now(),
        gumbolt_version: VERSION.into(),
        command: ctx.command.clone(),
        manifest: Some(super::manifest::Manifest::new(
            &super::manifest::data_files(
                ctx.args.dataset,
                &Source::of(ctx.args.data_dir.as_deref(), ctx.args.data_file.as_deref()),
            ),
            &[
                ("jobs", ctx.args.jobs),
                ("train_threads", (super::cores() / ctx.args.jobs).max(1)),
                (
                    "eval_threads",
                    match ctx.eval_threads {
                        0 => super::cores(),
                        t => t,
                    },
                ),
            ],
        )?),
    };
    // Never overwrite a finished cell (e.g. one written meanwhile by another process).
    if path.exists() {
        bail!(
            "{} appeared while the job ran (another process?); kept it, this result is dropped",
            path.display()
        );
    }
    rundir::write_json_atomic(&path, &result)?;
    Ok(result)
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is malformed", path.display()))
}

// ---------------------------------------------------------------------------------------------
// The table.

/// One seed's values in `table.json`.
#[derive(Debug, Serialize)]
struct SeedValue {
    seed: u64,
    test_nll: f64,
    test_nll_sem: f64,
    log_z: f64,
    log_z_std: f64,
    train_seconds: f64,
    sec_per_iter: Option<f64>,
    eval_seconds: f64,
    warnings: Vec<String>,
}

/// One cell of `table.json`.
#[derive(Debug, Serialize)]
struct TableCell {
    id: String,
    row: String,
    symbol: String,
    column: String,
    column_label: String,
    model: String,
    k: usize,
    paper: f64,
    /// `finished` (all requested seeds), `partial` or `pending`.
    status: &'static str,
    n: usize,
    /// Mean test NLL over the seeds.
    mean: Option<f64>,
    /// Sample standard deviation over the seeds (n ≥ 2).
    std: Option<f64>,
    /// With one seed: the standard error of its test NLL over the test images.
    sem: Option<f64>,
    /// `mean − paper`.
    diff: Option<f64>,
    seeds: Vec<SeedValue>,
}

/// `table.json`.
#[derive(Debug, Serialize)]
struct TableJson {
    table: u8,
    dataset: String,
    dataset_label: String,
    settings: Settings,
    seeds_requested: usize,
    date: String,
    command: String,
    gumbolt_version: String,
    columns: Vec<serde_json::Value>,
    rows: Vec<serde_json::Value>,
    cells: Vec<TableCell>,
    /// Result files that could not be read.
    unreadable: Vec<String>,
}

fn mean_std(v: &[f64]) -> (f64, Option<f64>) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let std = (v.len() >= 2)
        .then(|| (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt());
    (mean, std)
}

/// Writes `table.md`, `table.json` and `table.png` from all results in `out/cells`; returns
/// the markdown.
fn write_table(
    out: &Path,
    table: TableArg,
    settings: &Settings,
    seeds: usize,
    command: &str,
) -> Result<String> {
    let (results, bad) = read_results(out)?;
    let mut by_cell: BTreeMap<String, BTreeMap<u64, CellResult>> = BTreeMap::new();
    for (_, r) in results {
        by_cell
            .entry(r.cell.clone())
            .or_default()
            .entry(r.seed)
            .or_insert(r);
    }
    let dataset = DatasetArg::from_name(&settings.dataset).unwrap_or(DatasetArg::Mnist);
    let cells = table.cells(dataset);
    let mut tcells = Vec::new();
    for c in &cells {
        let rs: Vec<&CellResult> = by_cell
            .get(&c.id())
            .map(|m| m.values().collect())
            .unwrap_or_default();
        let vals: Vec<f64> = rs.iter().map(|r| r.test_nll).collect();
        let n = vals.len();
        let (mean, std) = if n > 0 {
            let (m, s) = mean_std(&vals);
            (Some(m), s)
        } else {
            (None, None)
        };
        tcells.push(TableCell {
            id: c.id(),
            row: c.structure.name().into(),
            symbol: symbol(c.structure).into(),
            column: c.column.id(),
            column_label: c.column.label(),
            model: c.column.model.name.into(),
            k: c.column.k,
            paper: c.paper_value(),
            status: match n {
                0 => "pending",
                n if n >= seeds => "finished",
                _ => "partial",
            },
            n,
            mean,
            std,
            sem: (n == 1).then(|| rs[0].test_nll_sem),
            diff: mean.map(|m| m - c.paper_value()),
            seeds: rs
                .iter()
                .map(|r| SeedValue {
                    seed: r.seed,
                    test_nll: r.test_nll,
                    test_nll_sem: r.test_nll_sem,
                    log_z: r.log_z,
                    log_z_std: r.log_z_std,
                    train_seconds: r.train_seconds,
                    sec_per_iter: r.sec_per_iter,
                    eval_seconds: r.eval_seconds,
                    warnings: r.warnings.clone(),
                })
                .collect(),
        });
    }
    let date = utc_now();
    let md = markdown(table, settings, seeds, command, &date, &tcells, &bad);
    rundir::write_atomic(&out.join(TABLE_MD), md.as_bytes())?;
    let json = TableJson {
        table: table.number(),
        dataset: settings.dataset.clone(),
        dataset_label: settings.dataset_label.clone(),
        settings: settings.clone(),
        seeds_requested: seeds,
        date,
        command: command.into(),
        gumbolt_version: VERSION.into(),
        columns: table
            .columns()
            .iter()
            .map(|c| {
                serde_json::json!({"id": c.id(), "label": c.label(), "model": c.model.name,
                                   "k": c.k})
            })
            .collect(),
        rows: table
            .rows()
            .iter()
            .map(|s| serde_json::json!({"structure": s.name(), "symbol": symbol(*s)}))
            .collect(),
        cells: tcells,
        unreadable: bad.iter().map(|(p, _)| p.display().to_string()).collect(),
    };
    rundir::write_json_atomic(&out.join(TABLE_JSON), &json)?;
    draw_table(out, table, settings, &json.cells)?;
    Ok(md)
}

fn fmt_cell(c: &TableCell) -> String {
    match (c.mean, c.std, c.sem) {
        (None, ..) => format!("pending · paper {}", paper_text(c)),
        (Some(m), Some(s), _) => format!("{m:.2} ± {s:.2} (n={}) · paper {}", c.n, paper_text(c)),
        (Some(m), None, sem) => format!(
            "{m:.2} ± {:.2}† (n={}) · paper {}",
            sem.unwrap_or(f64::NAN),
            c.n,
            paper_text(c)
        ),
    }
}

/// The paper's number as printed (two decimals, 107.221 kept).
fn paper_text(c: &TableCell) -> String {
    let s = format!("{:.2}", c.paper);
    if (s.parse::<f64>().unwrap_or(f64::NAN) - c.paper).abs() > 1e-9 {
        c.paper.to_string()
    } else {
        s
    }
}

fn markdown(
    table: TableArg,
    settings: &Settings,
    seeds: usize,
    command: &str,
    date: &str,
    cells: &[TableCell],
    bad: &[(PathBuf, String)],
) -> String {
    let n = table.number();
    let what = match table {
        TableArg::One => "GumBolt against dVAE and dVAE++",
        TableArg::Two => "GumBolt with and without couplings, k = 20",
    };
    let mut s = format!("# GB Table {n} ({what}): {}\n\n", settings.dataset_label);
    s.push_str(&format!(
        "Test NLL (−log p(x) in nats, lower is better): ours as mean ± standard deviation over \
         seeds (n = number of seeds), beside the paper's (GB Table {n}: 10⁶ iterations, 4000 \
         importance samples, mean of 5 runs).\n\n"
    ));
    s.push_str(&format!("- data: {}\n", settings.dataset_label));
    s.push_str(&format!(
        "- budget: {}; seeds requested: {seeds}\n",
        settings.describe()
    ));
    s.push_str(&format!("- date: {date}\n"));
    s.push_str(&format!("- command: `{command}`\n"));
    s.push_str(&format!("- gumbolt {VERSION}\n"));
    let finished = cells.iter().filter(|c| c.status == "finished").count();
    let runs: usize = cells.iter().map(|c| c.n.min(seeds)).sum();
    s.push_str(&format!(
        "- finished: {finished} of {} cells ({runs} of {} seed runs)\n\n",
        cells.len(),
        cells.len() * seeds
    ));
    s.push_str("| structure |");
    for c in table.columns() {
        s.push_str(&format!(" {} |", c.label()));
    }
    s.push_str("\n|---|");
    for _ in table.columns() {
        s.push_str("---|");
    }
    s.push('\n');
    for &row in table.rows() {
        s.push_str(&format!("| {} {} |", symbol(row), row.name()));
        for col in table.columns() {
            let cell = cells
                .iter()
                .find(|c| c.row == row.name() && c.column == col.id());
            s.push_str(&format!(" {} |", cell.map_or(String::new(), fmt_cell)));
        }
        s.push('\n');
    }
    s.push('\n');
    if cells.iter().any(|c| c.n == 1) {
        s.push_str(
            "† one seed: ± is the standard error of the test NLL over the test images, not a \
             spread over seeds.\n\n",
        );
    }
    if settings.dataset == "omniglot" && settings.dataset_label != "OMNIGLOT" {
        s.push_str(&format!(
            "The paper's numbers are for the original OMNIGLOT (Burda et al.'s chardata.mat); \
             ours are on {}, which is not the same data.\n\n",
            settings.dataset_label
        ));
    }
    if settings.budget != "paper" || !settings.overrides.is_empty() {
        s.push_str(
            "With a budget below the paper's protocol the numbers are not expected to reach the \
             paper's.\n\n",
        );
    }
    for (p, e) in bad {
        s.push_str(&format!(
            "warning: {} could not be read and is left out: {e}\n\n",
            p.display()
        ));
    }
    s.push_str(
        "Per-seed values: `table.json`; per-job results: `cells/<cell>-seed<s>.json`; run \
         directories (checkpoints, learning curves, eval.json): `runs/<cell>/seed<s>/`.\n",
    );
    s
}

fn draw_table(out: &Path, table: TableArg, settings: &Settings, cells: &[TableCell]) -> Result<()> {
    let groups: Vec<(String, Vec<ModelPoint>, Vec<ReferencePoint>)> = table
        .rows()
        .iter()
        .map(|&row| {
            let in_row: Vec<&TableCell> = cells.iter().filter(|c| c.row == row.name()).collect();
            let ours = in_row
                .iter()
                .filter_map(|c| {
                    let err = c.std.or(c.sem).unwrap_or(0.0);
                    c.mean.map(|m| (c.column_label.clone(), m, err))
                })
                .collect();
            let paper = in_row
                .iter()
                .map(|c| (c.column_label.clone(), c.paper))
                .collect();
            (format!("{} {}", symbol(row), row.name()), ours, paper)
        })
        .collect();
    let title = format!(
        "GB Table {}, {}: ours (budget {}) vs paper",
        table.number(),
        settings.dataset_label,
        settings.budget
    );
    let path = out.join(TABLE_PNG);
    plot::grouped_points_with_reference(
        &groups,
        "paper",
        "test NLL (nats, lower is better)",
        &title,
        &path,
    )
    .with_context(|| format!("cannot draw {}", path.display()))
}

// ---------------------------------------------------------------------------------------------
// Small helpers.

/// The command line, quoted for a POSIX shell where needed.
fn command_line() -> String {
    let mut args = std::env::args();
    let mut words = vec!["gumbolt".to_string()];
    args.next();
    for a in args {
        let plain = !a.is_empty()
            && a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./=,:+@%".contains(c));
        words.push(if plain && !a.starts_with('~') {
            a
        } else {
            format!("'{}'", a.replace('\'', r"'\''"))
        });
    }
    words.join(" ")
}

/// The current UTC time as `YYYY-MM-DD HH:MM UTC`.
fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rem / 3600,
        rem / 60 % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cell's job trains exactly what `gumbolt train` makes of the same options: the model,
    /// PCD and trainer configurations are equal, so that a cell can be re-run by hand.
    #[test]
    fn a_cell_trains_what_gumbolt_train_makes_of_the_same_options() {
        use clap::Parser;
        #[derive(Parser)]
        struct Reproduce {
            #[command(flatten)]
            args: ReproduceArgs,
        }
        #[derive(Parser)]
        struct Train {
            #[command(flatten)]
            args: super::super::train::TrainArgs,
        }
        let r = Reproduce::try_parse_from([
            "reproduce", "--table", "1", "--dataset", "mnist", "--budget", "long", "--out",
            "unused",
        ])
        .unwrap()
        .args;
        let s = settings_of(&r, &Source::Bundled);
        assert_eq!(s.iters, 100_000);
        for col in T1_COLUMNS {
            let cell = cell_run(
                DatasetArg::Mnist,
                Source::Bundled,
                None,
                col,
                Structure::Nonlinear2,
                2,
                &s,
            )
            .unwrap();
            let options = format!(
                "train --out unused --model {} --k {} --structure nonlinear2 --iters {} --seed 2 \
                 --pcd-steps {} --pcd-chains {} --monitor-records {} --checkpoint-every {} --quiet \
                 --network-products f32 --chain-products f32",
                col.model.name,
                col.k,
                s.iters,
                s.pcd_steps,
                s.pcd_chains,
                s.monitor_records,
                s.iters / 100
            );
            // (reproduce's products are f32 unless told; train's are the AMX ones where the
            // CPU has them.)
            let t = Train::try_parse_from(options.split_whitespace()).unwrap().args;
            let Start::New { run, overwrite } = super::super::train::request_of(t).unwrap().start
            else {
                panic!("a new run expected");
            };
            assert!(!overwrite);
            assert_eq!((cell.kind, cell.model), (run.kind, run.model), "{}", col.id());
            assert_eq!(json(&cell.config), json(&run.config), "{}", col.id());
            assert_eq!(json(&cell.pcd), json(&run.pcd), "{}", col.id());
            assert_eq!(json(&cell.trainer), json(&run.trainer), "{}", col.id());
            assert_eq!(cell.config.k, col.k);
            assert_eq!(
                cell.trainer.checkpoint_interval,
                Interval::Every(s.iters / 100)
            );
        }
    }

    /// A configuration as JSON, for comparing configurations.
    fn json<T: Serialize>(v: &T) -> serde_json::Value {
        serde_json::to_value(v).unwrap()
    }

    #[test]
    fn shard_auto_reads_job_arrays() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        let slurm = env(&[
            ("SLURM_ARRAY_TASK_ID", "3"),
            ("SLURM_ARRAY_TASK_MIN", "0"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ]);
        assert_eq!(shard_from_env(slurm), Ok(Shard { index: 4, count: 4 }));
        let from_one = env(&[
            ("SLURM_ARRAY_TASK_ID", "1"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ]);
        assert_eq!(shard_from_env(from_one), Ok(Shard { index: 1, count: 4 }));
        let k8s = env(&[("JOB_COMPLETION_INDEX", "0"), ("GUMBOLT_SHARD_COUNT", "2")]);
        assert_eq!(shard_from_env(k8s), Ok(Shard { index: 1, count: 2 }));
        // A stepped array (--array=1-7:2) cannot be mapped onto contiguous shards.
        let stepped = env(&[
            ("SLURM_ARRAY_TASK_ID", "7"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ]);
        assert!(shard_from_env(stepped).unwrap_err().contains("contiguous"));
        assert!(
            shard_from_env(env(&[]))
                .unwrap_err()
                .contains("--shard I/N")
        );
        let bad = env(&[
            ("SLURM_ARRAY_TASK_ID", "x"),
            ("SLURM_ARRAY_TASK_COUNT", "2"),
        ]);
        assert!(
            shard_from_env(bad)
                .unwrap_err()
                .contains("SLURM_ARRAY_TASK_ID=\"x\"")
        );
        let no_count = env(&[("JOB_COMPLETION_INDEX", "1")]);
        assert!(
            shard_from_env(no_count)
                .unwrap_err()
                .contains("GUMBOLT_SHARD_COUNT")
        );
        assert_eq!(parse_shard_arg("auto"), Ok(ShardArg::Auto));
        assert_eq!(
            parse_shard_arg("2/3"),
            Ok(ShardArg::Fixed(Shard { index: 2, count: 3 }))
        );
    }

    #[test]
    fn shards_parse_and_validate() {
        assert_eq!(parse_shard("1/2"), Ok(Shard { index: 1, count: 2 }));
        assert_eq!(parse_shard(" 2 / 2 "), Ok(Shard { index: 2, count: 2 }));
        for bad in ["0/2", "3/2", "x/y", "1/0", "2", "", "1/2/3", "-1/2"] {
            assert!(parse_shard(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cell_ids_and_tables() {
        let t1 = TableArg::One.cells(DatasetArg::Mnist);
        assert_eq!(t1.len(), 20);
        let ids: Vec<String> = t1.iter().map(Cell::id).collect();
        assert!(ids.contains(&"nonlinear-gumbolt-k5".to_string()));
        assert!(ids.contains(&"linear2-dvaepp-k1".to_string()));
        let t2 = TableArg::Two.cells(DatasetArg::Omniglot);
        assert_eq!(t2.len(), 6);
        assert_eq!(t2[3].id(), "nonlinear-gumbolt-nw-k20");
        assert_eq!(t2[3].paper, "107.221");
        assert_eq!(tables_of("nonlinear-gumbolt-k20"), [1, 2]);
        assert_eq!(tables_of("nonlinear2-gumbolt-nw-k20"), [2]);
        assert_eq!(tables_of("linear2-gumbolt-k1"), [1]);
        // Table 2's GumBolt numbers are Table 1's k = 20 column.
        for d in [DatasetArg::Mnist, DatasetArg::Omniglot] {
            let t1 = TableArg::One.cells(d);
            for c in TableArg::Two.cells(d) {
                if let Some(same) = t1.iter().find(|o| o.id() == c.id()) {
                    assert_eq!(same.paper, c.paper);
                }
            }
        }
    }

    #[test]
    fn dates_and_statistics() {
        let d = utc_now();
        assert_eq!(d.len(), "2025-01-01 00:00 UTC".len(), "{d}");
        assert!(d.starts_with("20"));
        let (m, s) = mean_std(&[1.0, 2.0, 3.0]);
        assert_eq!(m, 2.0);
        assert_eq!(s, Some(1.0));
        assert_eq!(mean_std(&[4.0]), (4.0, None));
    }
}

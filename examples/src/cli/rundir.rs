//! The run directory written by `gumbolt train` and read by `gumbolt eval` and `gumbolt sample`.
//!
//! | file | written by | content |
//! |---|---|---|
//! | `checkpoint.ckpt` | train (periodically and at the end, atomically) | the full training state ([`gumbolt_models::checkpoint`] format) |
//! | `config.json` | train (at the start of every session) | [`RunConfig`]: the model, trainer and data settings |
//! | `metrics.jsonl` | train (one line per monitoring record) | [`MetricsRecord`] JSON, each iteration once |
//! | `learning_curves.png` | train (at the end of every session) | F_k and L_k on the training and validation images |
//! | `train_summary.json` | train (at the end of every session) | the final JSON line of `gumbolt train` |
//! | `eval.json` | eval | the JSON object of `gumbolt eval` |
//! | `manifest.json` | train (every session) | [`super::manifest`]: build, machine, data checksums, command line |
//! | `.gumbolt.lock` | train (held for the process's life) | the pid and command line of the process writing the run |
//!
//! One process at a time writes a run directory: `gumbolt train` holds an exclusive advisory lock
//! on `.gumbolt.lock` ([`RunLock`]) from before it touches the run's files until it exits.
//! Readers (`eval`, `sample`, `export`) do not take it.

use super::dataset::{DatasetArg, Source};
use super::registry::{PRIOR_KINDS, PriorKind};
use anyhow::{Context, Result, bail};
use gumbolt_models::gumbolt::GumBoltConfig;
use gumbolt_models::train::{CheckpointMeta, MetricsRecord, TrainerConfig, read_meta};
use gumbolt_samplers::PcdConfig;
use serde::{Deserialize, Serialize};
use std::io::Write as _;
use std::path::{Path, PathBuf};

pub(crate) const CHECKPOINT: &str = "checkpoint.ckpt";
pub(crate) const CONFIG: &str = "config.json";
pub(crate) const METRICS: &str = "metrics.jsonl";
pub(crate) const CURVES: &str = "learning_curves.png";
pub(crate) const SUMMARY: &str = "train_summary.json";
pub(crate) const EVAL: &str = "eval.json";

/// The files whose presence means a run was started in a directory.
pub(crate) const RUN_MARKERS: [&str; 4] = [CHECKPOINT, CONFIG, METRICS, SUMMARY];

/// The files `gumbolt train --force` removes before starting over.
pub(crate) const RUN_FILES: [&str; 7] = [
    CHECKPOINT,
    CONFIG,
    METRICS,
    CURVES,
    SUMMARY,
    EVAL,
    super::manifest::MANIFEST,
];

/// `config.json`: everything that defines the run, for people and for `eval` (data directory).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RunConfig {
    /// `gumbolt <version>` that wrote it.
    pub writer: String,
    /// `mnist` or `omniglot`.
    pub dataset: String,
    /// How results on the data are labelled: `MNIST`, `OMNIGLOT (rebuilt)` or `OMNIGLOT`
    /// (Burda et al.'s `chardata.mat`).
    #[serde(default)]
    pub dataset_label: String,
    /// The data directory given with `--data-dir`; `null`: the bundled copy (or `data_file`).
    pub data_dir: Option<PathBuf>,
    /// The data file given with `--data-file` (OMNIGLOT's `chardata.mat`).
    #[serde(default)]
    pub data_file: Option<PathBuf>,
    /// The model kind's `--model` name (`super::registry::MODELS`).
    pub model: String,
    /// The checkpoint's model kind.
    pub model_kind: String,
    /// The model's configuration.
    pub model_config: GumBoltConfig,
    /// The PCD settings (GumBolt with an RBM prior).
    pub pcd: Option<PcdConfig>,
    /// The training loop's settings.
    pub trainer: TrainerConfig,
    /// The command line of the session that wrote the file.
    pub command: Vec<String>,
}

impl RunConfig {
    /// The data set and its source, if the data set is one this version knows.
    pub(crate) fn data(&self) -> Option<(DatasetArg, Source)> {
        let dataset = DatasetArg::from_name(&self.dataset)?;
        Some((
            dataset,
            Source::of(self.data_dir.as_deref(), self.data_file.as_deref()),
        ))
    }
}

/// A run directory.
#[derive(Debug, Clone)]
pub(crate) struct RunDir {
    root: PathBuf,
}

impl RunDir {
    pub(crate) fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// A directory holding a checkpoint (for `eval` and `sample`), with the error naming what
    /// is missing.
    pub(crate) fn existing(root: &Path, option: &str) -> Result<Self> {
        match std::fs::metadata(root) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => bail!("{option} {}: not a directory", root.display()),
            Err(e) => bail!("{option} {}: {e}", root.display()),
        }
        let dir = Self::new(root);
        let ckpt = dir.checkpoint();
        if !ckpt.exists() {
            bail!(
                "{option} {}: no checkpoint ({} not found; train first with `gumbolt train --out {}`)",
                root.display(),
                ckpt.display(),
                root.display()
            );
        }
        Ok(dir)
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn file(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    pub(crate) fn checkpoint(&self) -> PathBuf {
        self.file(CHECKPOINT)
    }

    /// The run files present in the directory.
    pub(crate) fn present(&self, names: &[&str]) -> Vec<PathBuf> {
        names
            .iter()
            .map(|n| self.file(n))
            .filter(|p| p.exists())
            .collect()
    }

    /// `config.json`, if present and readable.
    pub(crate) fn config(&self) -> Result<Option<RunConfig>> {
        let path = self.file(CONFIG);
        if !path.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let cfg = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a gumbolt run configuration", path.display()))?;
        Ok(Some(cfg))
    }

    /// The checkpoint's prior kind and metadata.
    pub(crate) fn checkpoint_meta(&self) -> Result<(PriorKind, CheckpointMeta)> {
        let path = self.checkpoint();
        let meta = read_meta(&path)?;
        let kind = PriorKind::from_checkpoint_kind(&meta.model_kind).with_context(|| {
            let mut known: Vec<String> = PRIOR_KINDS
                .iter()
                .map(|k| format!("`{}`", k.checkpoint_kind()))
                .collect();
            let last = known.pop().unwrap_or_default();
            format!(
                "checkpoint {} holds a `{}` model; this command reads {} and {last}",
                path.display(),
                meta.model_kind,
                known.join(", ")
            )
        })?;
        Ok((kind, meta))
    }
}

/// The name of the lock file of a run directory.
pub(crate) const LOCK: &str = ".gumbolt.lock";

/// The exclusive lock of a run directory, held while the value lives.
///
/// An advisory lock (`flock` on Unix, `LockFileEx` on Windows) on [`LOCK`]: the operating system
/// releases it when the process ends however it ends (a run killed by SIGKILL never leaves a
/// stale lock behind). The file holds the holder's pid and command line, for the error message
/// of a second writer; the file itself stays in the directory.
#[derive(Debug)]
pub(crate) struct RunLock {
    _file: std::fs::File,
}

impl RunLock {
    /// Takes the lock of the existing directory `root` without waiting; `option` names the
    /// directory in the error (`--out`). A directory locked by another process is an error
    /// naming the holder's pid.
    pub(crate) fn acquire(root: &Path, option: &str) -> Result<Self> {
        let path = root.join(LOCK);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| {
                format!(
                    "{option} {}: cannot open {}",
                    root.display(),
                    path.display()
                )
            })?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default();
                let holder = holder.trim();
                let who = if holder.is_empty() {
                    "another process (pid not yet recorded)".to_string()
                } else {
                    holder.replace('\n', " ")
                };
                bail!(
                    "{option} {} is being written by another gumbolt process: {who}; wait for it \
                     to finish or stop it (the lock is {})",
                    root.display(),
                    path.display()
                );
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| {
                    format!(
                        "{option} {}: cannot lock {}",
                        root.display(),
                        path.display()
                    )
                });
            }
        }
        let args: Vec<String> = std::env::args().collect();
        let text = format!("pid {} (`{}`)\n", std::process::id(), args.join(" "));
        (|| -> std::io::Result<()> {
            file.set_len(0)?;
            file.write_all(text.as_bytes())?;
            file.flush()
        })()
        .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(Self { _file: file })
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, flushed to disk,
/// then renamed over `path`.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path
        .file_name()
        .with_context(|| format!("{} is not a file path", path.display()))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("cannot write {}", path.display()))
}

/// Writes `value` as pretty JSON (with a final newline) to `path` atomically.
pub(crate) fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    write_atomic(path, text.as_bytes())
}

/// The records of a metrics file and the number of lines that are not records (e.g. a line
/// cut short when a run was killed while writing it).
pub(crate) fn read_metrics(path: &Path) -> Result<(Vec<MetricsRecord>, usize)> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let mut records = Vec::new();
    let mut bad = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str::<MetricsRecord>(line) {
            Ok(r) => records.push(r),
            Err(_) => bad += 1,
        }
    }
    Ok((records, bad))
}

/// One record as a JSON line (with its newline).
pub(crate) fn metrics_line(record: &MetricsRecord) -> String {
    let mut line = serde_json::to_string(record).expect("metrics records serialise");
    line.push('\n');
    line
}

//! `manifest.json`: what produced a run directory or a reproduce result, so that runs can be
//! compared and re-run: the git commit and dirty flag of the build (captured at build time by
//! `build.rs`, `unknown` outside a git checkout), the compiler, the CPU and the SIMD path the
//! kernels picked at run time, the thread counts, the sha256 of every data file read, and the
//! full command line.
//!
//! A resumed run keeps the manifests of its earlier sessions under `earlier_sessions`.

use super::dataset::{DatasetArg, Source};
use super::rundir::{self, RunConfig};
use anyhow::{Context, Result};
use gumbolt_datasets::{binarized_mnist_dir, find_split, omniglot_rebuilt_dir};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};

/// The file name in a run directory.
pub(crate) const MANIFEST: &str = "manifest.json";

/// One data file read, with its checksum.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct DataFile {
    pub path: PathBuf,
    pub bytes: u64,
    pub sha256: String,
}

/// The content of `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Manifest {
    /// `gumbolt <version>`.
    pub writer: String,
    /// The commit the binary was built from, or `unknown`.
    pub git_commit: String,
    /// Whether tracked files differed from that commit at build time (`true`, `false`,
    /// `unknown`).
    pub git_dirty: String,
    /// `rustc --version` of the build.
    pub rustc: String,
    /// `debug` or `release`.
    pub profile: String,
    /// Target triple parts: architecture and operating system.
    pub target: String,
    /// The CPU's model name (`/proc/cpuinfo` on Linux), or `unknown`.
    pub cpu_model: String,
    /// Logical cores available to the process.
    pub cores: usize,
    /// The path of the vectorised kernels ([`gumbolt_core::numerics::simd_path`]).
    pub simd_path: String,
    /// Thread counts of the command (e.g. `train_threads`) and `MATMUL_NUM_THREADS`.
    pub threads: BTreeMap<String, String>,
    /// Every data file read, with its sha256.
    pub data_files: Vec<DataFile>,
    /// The full command line.
    pub command: Vec<String>,
    /// The working directory of the command.
    pub cwd: Option<PathBuf>,
    /// Seconds since the Unix epoch when the manifest was written.
    pub unix_time: u64,
    /// The manifests of the earlier sessions of a resumed run, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub earlier_sessions: Vec<serde_json::Value>,
}

impl Manifest {
    /// The manifest of this process, with the data files `files` (hashed now) and the thread
    /// counts `threads`.
    pub(crate) fn new(files: &[PathBuf], threads: &[(&str, usize)]) -> Result<Self> {
        let mut t: BTreeMap<String, String> = threads
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        t.insert(
            "MATMUL_NUM_THREADS".into(),
            std::env::var("MATMUL_NUM_THREADS").unwrap_or_else(|_| "unset".into()),
        );
        let data_files = files
            .iter()
            .map(|p| hash_file(p))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            writer: format!("gumbolt {}", env!("CARGO_PKG_VERSION")),
            git_commit: env!("GUMBOLT_GIT_COMMIT").into(),
            git_dirty: env!("GUMBOLT_GIT_DIRTY").into(),
            rustc: env!("GUMBOLT_RUSTC_VERSION").into(),
            profile: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            }
            .into(),
            target: format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS),
            cpu_model: cpu_model(),
            cores: super::cores(),
            simd_path: gumbolt_core::numerics::simd_path().into(),
            threads: t,
            data_files,
            command: std::env::args().collect(),
            cwd: std::env::current_dir().ok(),
            unix_time: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            earlier_sessions: Vec::new(),
        })
    }

    /// Writes the manifest to `dir/manifest.json` atomically, keeping the sessions of a manifest
    /// already there (a resumed run) under `earlier_sessions`.
    pub(crate) fn write_into(mut self, dir: &Path) -> Result<()> {
        let path = dir.join(MANIFEST);
        if let Ok(text) = std::fs::read_to_string(&path)
            && let Ok(mut old) = serde_json::from_str::<serde_json::Value>(&text)
        {
            if let Some(obj) = old.as_object_mut()
                && let Some(serde_json::Value::Array(earlier)) = obj.remove("earlier_sessions")
            {
                self.earlier_sessions.extend(earlier);
            }
            self.earlier_sessions.push(old);
        }
        rundir::write_json_atomic(&path, &self)
    }
}

/// The sha256 and size of a file.
fn hash_file(path: &Path) -> Result<DataFile> {
    let mut f =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut bytes = 0u64;
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        bytes += n as u64;
    }
    let sha256 = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    Ok(DataFile {
        path,
        bytes,
        sha256,
    })
}

/// The CPU's model name.
pub(crate) fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// The files the data loaders read for `dataset` from `source` (training, validation and test
/// splits). A file that cannot be found is left out (the loader has already reported it).
pub(crate) fn data_files(dataset: DatasetArg, source: &Source) -> Vec<PathBuf> {
    match (dataset, source) {
        (_, Source::File(f)) => vec![f.clone()],
        (DatasetArg::Mnist, s) => {
            let dir = match s {
                Source::Dir(d) => d.clone(),
                _ => binarized_mnist_dir(),
            };
            ["train", "valid", "test"]
                .iter()
                .filter_map(|split| find_split(&dir, &format!("binarized_mnist_{split}")).ok())
                .collect()
        }
        (DatasetArg::Omniglot, s) => {
            let dir = match s {
                Source::Dir(d) => d.clone(),
                _ => omniglot_rebuilt_dir(),
            };
            let mut v = vec![dir.join("alphabets.txt")];
            for split in ["train", "test"] {
                v.extend(find_split(&dir, &format!("omniglot_{split}_grey")).ok());
                v.push(dir.join(format!("omniglot_{split}_labels.txt")));
                v.extend(find_split(&dir, &format!("omniglot_{split}")).ok());
            }
            v.into_iter().filter(|p| p.is_file()).collect()
        }
    }
}

/// Writes the manifest of a `gumbolt train` session into its run directory.
pub(crate) fn write_train(dir: &Path, config: &RunConfig, train_threads: usize) -> Result<()> {
    let files = config
        .data()
        .map(|(d, s)| data_files(d, &s))
        .unwrap_or_default();
    Manifest::new(&files, &[("train_threads", train_threads)])?.write_into(dir)
}

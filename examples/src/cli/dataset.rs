//! The data sets of `gumbolt train` and `gumbolt eval`: the statically binarised MNIST, and
//! OMNIGLOT with the paper's protocol (training images re-binarised for every minibatch,
//! validation and test binarised once), from the bundled rebuild, a rebuilt-format directory
//! (`--data-dir`) or Burda et al.'s `chardata.mat` (`--data-file`).

use anyhow::{Context, Result, bail};
use clap::ValueEnum;
use gumbolt_datasets::{
    AmatSpec, Dataset, MNIST_DIM, MNIST_SPLIT_SIZES, OmniglotSplits, find_data_dir, load_amat,
    load_binarized_mnist, load_omniglot_mat, load_omniglot_rebuilt,
};
use gumbolt_models::train::TrainImages;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum DatasetArg {
    /// Statically binarised MNIST (Larochelle & Murray 2011), 50k/10k/10k.
    Mnist,
    /// OMNIGLOT, 23k/1345/8070, training images re-binarised per minibatch [default source:
    /// the bundled rebuild, "OMNIGLOT (rebuilt)"].
    Omniglot,
}

impl DatasetArg {
    /// The name in `config.json` (`mnist`, `omniglot`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            DatasetArg::Mnist => "mnist",
            DatasetArg::Omniglot => "omniglot",
        }
    }

    /// The size of its images ([`MNIST_DIM`] values, 28×28, for both): every source of the data
    /// set is loaded with this width or refused.
    pub(crate) fn pixels(self) -> usize {
        match self {
            DatasetArg::Mnist | DatasetArg::Omniglot => MNIST_DIM,
        }
    }

    /// The data set named `s` in a `config.json`.
    pub(crate) fn from_name(s: &str) -> Option<Self> {
        [DatasetArg::Mnist, DatasetArg::Omniglot]
            .into_iter()
            .find(|d| d.name() == s)
    }
}

/// Where the data come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    /// The copy bundled with the repository.
    Bundled,
    /// A directory (`--data-dir`).
    Dir(PathBuf),
    /// A single file (`--data-file`, OMNIGLOT's `chardata.mat`).
    File(PathBuf),
}

impl Source {
    /// From the `--data-dir` and `--data-file` options (at most one given).
    pub(crate) fn of(dir: Option<&Path>, file: Option<&Path>) -> Self {
        match (dir, file) {
            (_, Some(f)) => Source::File(f.to_path_buf()),
            (Some(d), None) => Source::Dir(d.to_path_buf()),
            (None, None) => Source::Bundled,
        }
    }

    /// The source with its path made absolute (for `config.json`).
    pub(crate) fn absolute(&self) -> Self {
        let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        match self {
            Source::Bundled => Source::Bundled,
            Source::Dir(d) => Source::Dir(abs(d)),
            Source::File(f) => Source::File(abs(f)),
        }
    }

    /// `(data_dir, data_file)` for `config.json`.
    pub(crate) fn paths(&self) -> (Option<PathBuf>, Option<PathBuf>) {
        match self {
            Source::Bundled => (None, None),
            Source::Dir(d) => (Some(d.clone()), None),
            Source::File(f) => (None, Some(f.clone())),
        }
    }
}

/// The label of results on `dataset` from `source` (config.json, eval.json, plot titles).
/// `--data-file` (the original OMNIGLOT's `chardata.mat`) is refused with MNIST: a usage error
/// of subcommand `sub`.
pub(crate) fn check_data_file(
    sub: &str,
    dataset: DatasetArg,
    data_file: Option<&Path>,
) -> Result<()> {
    if dataset == DatasetArg::Mnist
        && let Some(f) = data_file
    {
        return Err(super::usage_error(
            sub,
            format!(
                "--data-file {} is for --dataset omniglot (chardata.mat); MNIST is read from \
                 --data-dir",
                f.display()
            ),
        ));
    }
    Ok(())
}

pub(crate) fn label(dataset: DatasetArg, source: &Source) -> &'static str {
    match (dataset, source) {
        (DatasetArg::Mnist, _) => "MNIST",
        (DatasetArg::Omniglot, Source::File(_)) => "OMNIGLOT",
        (DatasetArg::Omniglot, _) => "OMNIGLOT (rebuilt)",
    }
}

/// The training data: the training images and the validation set.
pub(crate) struct TrainData {
    pub(crate) train: TrainImages,
    pub(crate) valid: Dataset,
}

impl TrainData {
    /// The pixel means of the training images (the decoder's initial bias).
    pub(crate) fn means(&self) -> Vec<f32> {
        self.train.dataset().pixel_means()
    }
}

fn load_omniglot(source: &Source) -> Result<OmniglotSplits> {
    match source {
        Source::Bundled => {
            let dir = bundled_dir("omniglot_rebuilt")?;
            load_omniglot_rebuilt(&dir).with_context(|| {
                format!(
                    "cannot load the bundled OMNIGLOT (rebuilt) from {}",
                    dir.display()
                )
            })
        }
        Source::Dir(d) => load_omniglot_rebuilt(d).with_context(|| {
            format!(
                "--data-dir {}: cannot load OMNIGLOT (rebuilt format)",
                d.display()
            )
        }),
        Source::File(f) => load_omniglot_mat(f)
            .with_context(|| format!("--data-file {}: cannot load OMNIGLOT", f.display())),
    }
}

/// `name` under the data root, which is searched for at run time (`GUMBOLT_DATA_DIR`, beside
/// the executable, the working directory; see `gumbolt_datasets::data_dir_candidates`).
fn bundled_dir(name: &str) -> Result<PathBuf> {
    Ok(find_data_dir()?.join(name))
}

fn mnist_dir(source: &Source) -> Result<(PathBuf, &'static str)> {
    match source {
        Source::Bundled => Ok((bundled_dir("binarized_mnist")?, "the bundled data")),
        Source::Dir(d) => Ok((d.clone(), "--data-dir")),
        Source::File(f) => bail!(
            "--data-file {}: only OMNIGLOT is read from a single file (use --data-dir for MNIST)",
            f.display()
        ),
    }
}

/// Loads the training and validation data.
pub(crate) fn load_train(dataset: DatasetArg, source: &Source, quiet: bool) -> Result<TrainData> {
    let t0 = Instant::now();
    let (data, test_n, from) = match dataset {
        DatasetArg::Mnist => {
            let (dir, _) = mnist_dir(source)?;
            let d = load_binarized_mnist(&dir).with_context(|| match source {
                Source::Bundled => format!("cannot load the bundled MNIST from {}", dir.display()),
                _ => format!("--data-dir {}: cannot load MNIST", dir.display()),
            })?;
            let test_n = d.test.n();
            let data = TrainData {
                train: TrainImages::Binary(d.train),
                valid: d.valid,
            };
            (data, test_n, dir)
        }
        DatasetArg::Omniglot => {
            let s = load_omniglot(source)?;
            let from = match source {
                Source::Bundled => bundled_dir("omniglot_rebuilt")?,
                Source::Dir(p) | Source::File(p) => p.clone(),
            };
            let test_n = s.test.n();
            let data = TrainData {
                train: TrainImages::Grey(s.train_grey),
                valid: s.valid,
            };
            (data, test_n, from)
        }
    };
    if !quiet {
        eprintln!(
            "loaded {} ({} / {} / {} images) from {} in {:.1} s",
            label(dataset, source),
            data.train.dataset().n(),
            data.valid.n(),
            test_n,
            from.display(),
            t0.elapsed().as_secs_f64()
        );
    }
    Ok(data)
}

/// Loads the (fixed-binarised) test set.
pub(crate) fn load_test(dataset: DatasetArg, source: &Source) -> Result<Dataset> {
    match dataset {
        DatasetArg::Mnist => {
            let (dir, origin) = mnist_dir(source)?;
            let stem = "binarized_mnist_test";
            let spec = AmatSpec::binary_mnist().with_rows(MNIST_SPLIT_SIZES[2]);
            gumbolt_datasets::find_split(&dir, stem)
                .and_then(|path| load_amat(&path, &spec))
                .with_context(|| {
                    format!("{origin} {}: cannot load the MNIST test set", dir.display())
                })
        }
        DatasetArg::Omniglot => Ok(load_omniglot(source)?.test),
    }
}

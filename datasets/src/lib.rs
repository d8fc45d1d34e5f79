//! # gumbolt-datasets
//!
//! The image data sets of the GumBolt paper (GB §5.1) for gumbolt, independent of any model:
//! the [`Dataset`] type and minibatch gathering, loaders for the `.amat` text layout (binarised
//! MNIST), OMNIGLOT ([`omniglot`]) and the MATLAB v5 reader behind it ([`matfile`]), and the
//! run-time search for the data directory ([`find_data_dir`]). A model takes its input
//! dimension from [`Dataset::dim`] when it is built; nothing here depends on a model.
//!
//! # Image datasets in the `.amat` text layout
//!
//! An `.amat` file holds one image per line as whitespace-separated values (784 for the 28×28
//! images of MNIST and OMNIGLOT, row-major pixels). The files may be gzip-compressed
//! (`.amat.gz`); compression is detected from the gzip magic bytes, so both the bundled
//! `.amat.gz` files and the plain upstream `.amat` files load (see `data/README.md` at the
//! workspace root).
//!
//! The statically binarised MNIST of Larochelle & Murray (2011) with its 50 000 / 10 000 /
//! 10 000 split is the MNIST data of the GumBolt paper and the reference code (docs/algorithms.md §9
//! "Data"); [`load_binarized_mnist`] loads it and checks the split sizes.
//!
//! # OMNIGLOT
//!
//! 28×28 OMNIGLOT with the paper's protocol (docs/algorithms.md §9 "Data", §10 item 11): the last
//! 1 345 of the 24 345 training images validate, training images are re-binarised for every
//! minibatch ([`Dataset::gather_binarized_into`], [`binarize_into`]), validation and test
//! images are binarised once with seed 1. Two sources give the same [`OmniglotSplits`]:
//!
//! - [`load_omniglot_rebuilt`] / [`load_bundled_omniglot`]: the rebuild vendored in
//!   `data/omniglot_rebuilt/` (results must be labelled "OMNIGLOT (rebuilt)"; not comparable
//!   with the paper's OMNIGLOT column, see `data/README.md`);
//! - [`load_omniglot_mat`]: Burda et al.'s `chardata.mat` (the paper's data, not vendored),
//!   read by the MATLAB v5 reader of [`matfile`]; its column-major images are transposed to
//!   the row-major layout below.
//!
//! # Layout
//!
//! A [`Dataset`] stores its images **row-major** in one `Vec<f32>` (`n × dim`, image `i` is the
//! contiguous slice `images()[i·dim .. (i+1)·dim]`). Gathering a random minibatch into the
//! column-major `[B, dim]` matrices of the networks ([`Dataset::gather_into`]) then reads each
//! selected image as one contiguous block, instead of `dim` scattered reads per image that a
//! column-major `[n, dim]` matrix would need. The same buffer seen column-major is the
//! `[dim, n]` matrix whose columns are images ([`Dataset::as_columns`]); a contiguous range of
//! images can therefore enter a GEMM as `op = T` without any copy (`gumbolt_core::linalg::gemm`).
//!
//! # Errors
//!
//! Loading never panics: every problem is a [`DataError`] naming the file and, where it applies,
//! the 1-based line and value (column) number.

#![warn(missing_docs)]

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use gumbolt_core::Mat;
use nalgebra::DMatrixView;
use rand::Rng;
use thiserror::Error;

#[doc(hidden)]
pub mod fuzz;
pub mod matfile;
pub mod omniglot;
#[cfg(test)]
mod testutil;

pub use omniglot::{
    OMNIGLOT_EVAL_SEED, OMNIGLOT_N_ALPHABETS, OMNIGLOT_TEST_SIZE, OMNIGLOT_TRAIN_SIZE,
    OMNIGLOT_VALID_SIZE, OmniglotFixedSplits, OmniglotProtocol, OmniglotSplits, binarize_dataset,
    binarize_in_place, binarize_into, load_bundled_omniglot, load_omniglot_mat,
    load_omniglot_mat_with, load_omniglot_rebuilt, load_omniglot_rebuilt_fixed,
    load_omniglot_rebuilt_with, omniglot_rebuilt_dir,
};

/// Number of pixels of a 28×28 MNIST / OMNIGLOT image.
pub const MNIST_DIM: usize = 784;

/// Images in the (train, valid, test) splits of the binarised MNIST (Larochelle & Murray 2011).
pub const MNIST_SPLIT_SIZES: [usize; 3] = [50_000, 10_000, 10_000];

/// The environment variable that overrides the data root returned by [`data_dir`].
pub const DATA_DIR_ENV: &str = "GUMBOLT_DATA_DIR";

/// Errors of the data loaders. Each names the file; line and value numbers are 1-based.
#[derive(Debug, Error)]
pub enum DataError {
    /// No data root was found (see [`data_dir_candidates`]).
    #[error(
        "the bundled data directory was not found (searched {}); set {DATA_DIR_ENV} or pass \
         --data-dir",
        display_paths(.tried)
    )]
    DataDirNotFound {
        /// Every directory searched.
        tried: Vec<PathBuf>,
    },
    /// None of the candidate files exists.
    #[error("data file not found (tried {})", display_paths(.tried))]
    Missing {
        /// Every path that was tried, in order.
        tried: Vec<PathBuf>,
    },
    /// The path exists but is a directory (or another non-regular file).
    #[error("{} is not a regular file (a directory?); expected a data file", .path.display())]
    NotAFile {
        /// The offending path.
        path: PathBuf,
    },
    /// An I/O error other than a gzip decoding error (permissions, device errors, ...).
    #[error("cannot read {}: {source}", .path.display())]
    Io {
        /// The file being read.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The gzip stream is corrupt or truncated (or a `.gz` file is not gzip at all).
    #[error("corrupt or truncated gzip data in {} at line {line}: {source}", .path.display())]
    Gzip {
        /// The file being read.
        path: PathBuf,
        /// The line being read when decoding failed.
        line: usize,
        /// The decoder's error.
        source: io::Error,
    },
    /// A line holds the wrong number of values.
    #[error("{}:{line}: expected {expected} values per line, found {found}", .path.display())]
    WrongWidth {
        /// The file.
        path: PathBuf,
        /// The line.
        line: usize,
        /// Values per line expected (the image dimension).
        expected: usize,
        /// Values found on the line.
        found: usize,
    },
    /// A token is not a number.
    #[error("{}:{line}: value {column} is not a number: {token:?}", .path.display())]
    NotNumeric {
        /// The file.
        path: PathBuf,
        /// The line.
        line: usize,
        /// The position of the value on its line.
        column: usize,
        /// The offending text (at most 32 bytes, lossily decoded).
        token: String,
    },
    /// Binary data holds a value other than 0 or 1.
    #[error("{}:{line}: value {column} is {value}, but binary data must be 0 or 1", .path.display())]
    NotBinary {
        /// The file.
        path: PathBuf,
        /// The line.
        line: usize,
        /// The position of the value on its line.
        column: usize,
        /// The value found.
        value: f32,
    },
    /// Grey-level data holds a value outside `[0, 1]` (or NaN).
    ///
    /// For a matrix read from a MAT-file ([`load_omniglot_mat`]), `line` is the 1-based image
    /// (the column of the MATLAB matrix) and `column` the 1-based row of that matrix (the pixel
    /// in the file's column-major order, before the transposition to row-major).
    #[error("{}:{line}: value {column} is {value}, but grey levels must lie in [0, 1]", .path.display())]
    OutOfRange {
        /// The file.
        path: PathBuf,
        /// The line.
        line: usize,
        /// The position of the value on its line.
        column: usize,
        /// The value found.
        value: f32,
    },
    /// The file holds no image (no bytes, or only whitespace).
    #[error("{} is empty: no image found", .path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// The number of items differs from what is required: images in a split of known size,
    /// labels in a label file (one per image), names in `alphabets.txt`.
    #[error("{}: expected {expected} {what}, found {found}", .path.display())]
    WrongCount {
        /// The file.
        path: PathBuf,
        /// What is counted (`images`, `labels (one per image)`, `alphabet names`).
        what: &'static str,
        /// Items expected.
        expected: usize,
        /// Items found.
        found: usize,
    },
    /// An argument is invalid (e.g. an image dimension of 0 or a buffer that is not a whole
    /// number of images).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The file is not a MATLAB Level 5 (v5 / v6 / v7) MAT-file: too short for its 128-byte
    /// header, no `IM`/`MI` endian indicator, or another header version (MAT v7.3 files are
    /// HDF5 files and are not supported; see [`matfile`]).
    #[error("{} is not a MATLAB v5 MAT-file: {reason}", .path.display())]
    NotMat {
        /// The file.
        path: PathBuf,
        /// What is wrong with the header.
        reason: String,
    },
    /// The MAT-file ends inside the element (variable) that starts at byte `offset`.
    #[error(
        "{} is truncated: the MAT-file element at byte {offset} needs {needed} bytes, but only \
         {available} remain",
        .path.display()
    )]
    MatTruncated {
        /// The file.
        path: PathBuf,
        /// Byte offset of the top-level element.
        offset: u64,
        /// Bytes the element needs (its 8-byte tag included).
        needed: u64,
        /// Bytes left in the file from `offset`.
        available: u64,
    },
    /// A MAT-file element is inconsistent: sub-element sizes or types that do not fit, a data
    /// size that does not match the dimensions, corrupt zlib data in a compressed element.
    #[error("{}: malformed MAT-file element at byte {offset}: {reason}", .path.display())]
    MatCorrupt {
        /// The file.
        path: PathBuf,
        /// Byte offset of the top-level element concerned.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A requested MAT-file variable is not a real 2-D numeric matrix (a char array, cell,
    /// struct, sparse or complex matrix, an N-D array, ...).
    #[error("{}: variable `{name}` cannot be read: {reason}", .path.display())]
    MatUnsupported {
        /// The file.
        path: PathBuf,
        /// The variable.
        name: String,
        /// Why it cannot be read.
        reason: String,
    },
    /// A requested variable is not in the MAT-file.
    #[error(
        "{}: no variable `{name}` (the file holds: {})",
        .path.display(),
        display_names(.available)
    )]
    MissingKey {
        /// The file.
        path: PathBuf,
        /// The missing variable.
        name: String,
        /// The names of the variables the file does hold, in file order.
        available: Vec<String>,
    },
    /// A matrix has the wrong shape (`None` in `expected_*`: any size is accepted).
    #[error(
        "{}: variable `{name}` is {rows}×{cols}, expected {}×{}",
        .path.display(),
        display_dim(.expected_rows),
        display_dim(.expected_cols)
    )]
    WrongShape {
        /// The file.
        path: PathBuf,
        /// The variable.
        name: String,
        /// Rows expected, if fixed.
        expected_rows: Option<usize>,
        /// Columns expected, if fixed.
        expected_cols: Option<usize>,
        /// Rows found.
        rows: usize,
        /// Columns found.
        cols: usize,
    },
    /// A class label is invalid: not below the number of classes, not a one-hot column, or
    /// an empty class name. `index` is the 1-based line of a text file, or the 1-based image
    /// (column) of a one-hot MAT-file matrix.
    #[error("{}: label {index}: {reason}", .path.display())]
    BadLabel {
        /// The file.
        path: PathBuf,
        /// The 1-based line or image.
        index: usize,
        /// What is wrong.
        reason: String,
    },
}

fn display_names(names: &[String]) -> String {
    if names.is_empty() {
        return "no variable".into();
    }
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn display_dim(d: &Option<usize>) -> String {
    d.map_or_else(|| "any".into(), |d| d.to_string())
}

fn display_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The kind of pixel values a file must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelKind {
    /// Every value is 0 or 1 (binarised images).
    Binary,
    /// Every value is a grey level in `[0, 1]`.
    Grey,
}

/// What an `.amat` file is expected to contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AmatSpec {
    /// Values per line (image dimension).
    pub dim: usize,
    /// Allowed pixel values.
    pub kind: PixelKind,
    /// The number of images, if known (e.g. the size of a standard split).
    pub expected_rows: Option<usize>,
}

impl AmatSpec {
    /// Binary 784-pixel images, any count.
    pub fn binary_mnist() -> Self {
        Self {
            dim: MNIST_DIM,
            kind: PixelKind::Binary,
            expected_rows: None,
        }
    }

    /// The same spec requiring exactly `n` images.
    pub fn with_rows(mut self, n: usize) -> Self {
        self.expected_rows = Some(n);
        self
    }
}

/// A set of `n` images of `dim` values each, stored row-major (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    images: Vec<f32>,
    n: usize,
    dim: usize,
}

impl Dataset {
    /// Wraps a row-major buffer of `images.len() / dim` images.
    ///
    /// # Errors
    /// [`DataError::InvalidArgument`] if `dim == 0` or `images.len()` is not a multiple of `dim`.
    ///
    /// ```
    /// use gumbolt_datasets::Dataset;
    /// let d = Dataset::from_row_major(vec![0.0, 1.0, 1.0, 1.0, 0.0, 0.0], 3).unwrap();
    /// assert_eq!((d.n(), d.dim()), (2, 3));
    /// assert_eq!(d.row(1), &[1.0, 0.0, 0.0]);
    /// ```
    pub fn from_row_major(images: Vec<f32>, dim: usize) -> Result<Self, DataError> {
        if dim == 0 {
            return Err(DataError::InvalidArgument(
                "image dimension must be positive".into(),
            ));
        }
        if (images.len() / dim) * dim != images.len() {
            return Err(DataError::InvalidArgument(format!(
                "buffer of {} values is not a whole number of {dim}-value images",
                images.len()
            )));
        }
        Ok(Self {
            n: images.len() / dim,
            images,
            dim,
        })
    }

    /// Number of images.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Values per image.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Whether the dataset holds no image.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// All values, row-major (`n × dim`).
    pub fn images(&self) -> &[f32] {
        &self.images
    }

    /// Image `i` as a contiguous slice of `dim` values.
    ///
    /// # Panics
    /// If `i >= n`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.images[i * self.dim..(i + 1) * self.dim]
    }

    /// The buffer seen as the column-major `[dim, n]` matrix whose column `i` is image `i`
    /// (zero-copy). Use it with `Op::T` in `gumbolt_core::linalg::gemm` to multiply the
    /// `[n, dim]` data matrix without transposing anything.
    pub fn as_columns(&self) -> DMatrixView<'_, f32> {
        DMatrixView::from_slice(&self.images, self.dim, self.n)
    }

    /// Images `start .. start + len` as a `[dim, len]` column view (zero-copy).
    ///
    /// # Panics
    /// If the range is out of bounds.
    pub fn columns_range(&self, start: usize, len: usize) -> DMatrixView<'_, f32> {
        DMatrixView::from_slice(
            &self.images[start * self.dim..(start + len) * self.dim],
            self.dim,
            len,
        )
    }

    /// Copies the images `indices` into `out` as the rows of a column-major `[B, dim]` matrix,
    /// `B = indices.len()`. `out` is reshaped if needed (reusing its allocation), so a training
    /// loop that keeps one `out` allocates nothing after the first batch.
    ///
    /// # Panics
    /// If an index is `>= n`.
    ///
    /// ```
    /// use gumbolt_datasets::Dataset;
    /// let d = Dataset::from_row_major(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 2).unwrap();
    /// let mut batch = gumbolt_core::Mat::zeros(0, 0);
    /// d.gather_into(&[2, 0], &mut batch);
    /// assert_eq!(batch, nalgebra::DMatrix::from_row_slice(2, 2, &[5.0, 6.0, 1.0, 2.0]));
    /// ```
    pub fn gather_into(&self, indices: &[usize], out: &mut Mat) {
        let b = indices.len();
        if out.shape() != (b, self.dim) {
            // Every value is written below: no need to keep or clear the old ones.
            *out = Mat::zeros(b, self.dim);
        }
        let dst = out.as_mut_slice();
        for (r, &i) in indices.iter().enumerate() {
            assert!(
                i < self.n,
                "gather_into: index {i} out of range for {} images",
                self.n
            );
            let src = &self.images[i * self.dim..(i + 1) * self.dim];
            for (j, &v) in src.iter().enumerate() {
                dst[r + j * b] = v;
            }
        }
    }

    /// [`Dataset::gather_into`] followed by an independent Bernoulli draw per value with the
    /// gathered grey level as probability ([`binarize_in_place`] on `out`'s column-major
    /// storage): the per-minibatch dynamic binarisation of OMNIGLOT's training images
    /// (docs/algorithms.md §10 item 11).
    ///
    /// ```
    /// use gumbolt_datasets::Dataset;
    /// let grey = Dataset::from_row_major(vec![0.0, 1.0, 0.5, 0.25], 2).unwrap();
    /// let mut rng = gumbolt_core::rng::root_rng(3);
    /// let mut x = gumbolt_core::Mat::zeros(0, 0);
    /// grey.gather_binarized_into(&[1, 0], &mut rng, &mut x);
    /// assert_eq!(x.shape(), (2, 2));
    /// assert_eq!((x[(1, 0)], x[(1, 1)]), (0.0, 1.0)); // grey levels 0 and 1 are kept
    /// ```
    ///
    /// # Panics
    /// If an index is `>= n`.
    pub fn gather_binarized_into<R: Rng + ?Sized>(
        &self,
        indices: &[usize],
        rng: &mut R,
        out: &mut Mat,
    ) {
        self.gather_into(indices, out);
        binarize_in_place(out.as_mut_slice(), rng);
    }

    /// The images `indices` as a new `[B, dim]` matrix (see [`Dataset::gather_into`]).
    pub fn gather(&self, indices: &[usize]) -> Mat {
        let mut out = Mat::zeros(0, 0);
        self.gather_into(indices, &mut out);
        out
    }

    /// The per-pixel mean over all images (`x̄` of docs/algorithms.md §2.1, accumulated in f64).
    pub fn pixel_means(&self) -> Vec<f32> {
        let mut acc = vec![0.0f64; self.dim];
        for row in self.images.chunks_exact(self.dim) {
            for (a, &v) in acc.iter_mut().zip(row) {
                *a += v as f64;
            }
        }
        let n = self.n.max(1) as f64;
        acc.into_iter().map(|a| (a / n) as f32).collect()
    }

    /// The mean of all values (f64 accumulation); 0 for an empty dataset.
    pub fn mean(&self) -> f64 {
        if self.images.is_empty() {
            return 0.0;
        }
        self.images.iter().map(|&v| v as f64).sum::<f64>() / self.images.len() as f64
    }

    /// Splits into the first `mid` images and the rest (e.g. OMNIGLOT's last 1345 training
    /// images as the validation set, docs/algorithms.md §9).
    ///
    /// # Errors
    /// [`DataError::InvalidArgument`] if `mid > n`.
    pub fn split_at(mut self, mid: usize) -> Result<(Dataset, Dataset), DataError> {
        if mid > self.n {
            return Err(DataError::InvalidArgument(format!(
                "cannot split {} images at {mid}",
                self.n
            )));
        }
        let tail = self.images.split_off(mid * self.dim);
        let dim = self.dim;
        let rest = Dataset {
            n: self.n - mid,
            images: tail,
            dim,
        };
        self.n = mid;
        Ok((self, rest))
    }
}

/// The three splits of the binarised MNIST.
#[derive(Debug, Clone, PartialEq)]
pub struct MnistSplits {
    /// 50 000 training images.
    pub train: Dataset,
    /// 10 000 validation images.
    pub valid: Dataset,
    /// 10 000 test images.
    pub test: Dataset,
}

/// The places searched for the data root, in order (see [`data_dir`]).
///
/// `$GUMBOLT_DATA_DIR` alone when it is set (and non-empty); otherwise `data/` in the
/// directory of the running executable and in each of its ancestors (so `target/release/gumbolt`
/// and the test binaries under `target/` of a checkout find the checkout's `data/`, and an
/// installed `bin/gumbolt` finds `share/../data` beside it), then `data/` in the working
/// directory and each of its ancestors. Nothing is compiled in: a binary copied elsewhere looks
/// around itself and where it is run.
pub fn data_dir_candidates() -> Vec<PathBuf> {
    if let Some(d) = std::env::var_os(DATA_DIR_ENV).filter(|d| !d.is_empty()) {
        return vec![PathBuf::from(d)];
    }
    let mut out: Vec<PathBuf> = Vec::new();
    let mut push_ancestors = |start: &Path| {
        for dir in start.ancestors() {
            let cand = dir.join("data");
            if !out.contains(&cand) {
                out.push(cand);
            }
        }
    };
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        push_ancestors(dir);
    }
    if let Ok(cwd) = std::env::current_dir() {
        push_ancestors(&cwd);
    }
    out
}

/// Whether `dir` looks like gumbolt's data root: it holds `binarized_mnist/` or
/// `omniglot_rebuilt/`.
fn is_data_root(dir: &Path) -> bool {
    dir.join("binarized_mnist").is_dir() || dir.join("omniglot_rebuilt").is_dir()
}

/// The data root, found at run time: the first of [`data_dir_candidates`] that holds
/// `binarized_mnist/` or `omniglot_rebuilt/` (with `$GUMBOLT_DATA_DIR` set, that directory
/// whatever it holds).
///
/// # Errors
/// [`DataError::DataDirNotFound`] listing every place searched.
pub fn find_data_dir() -> std::result::Result<PathBuf, DataError> {
    let tried = data_dir_candidates();
    if std::env::var_os(DATA_DIR_ENV).is_some_and(|d| !d.is_empty()) {
        return Ok(tried[0].clone());
    }
    tried
        .iter()
        .find(|d| is_data_root(d))
        .cloned()
        .ok_or(DataError::DataDirNotFound { tried })
}

/// Like [`find_data_dir`], but infallible: when no data root is found, the first candidate
/// (whose loaders then report the missing files, naming the paths).
pub fn data_dir() -> PathBuf {
    find_data_dir().unwrap_or_else(|_| {
        data_dir_candidates()
            .into_iter()
            .next()
            .unwrap_or_else(|| PathBuf::from("data"))
    })
}

/// The directory of the bundled binarised MNIST: `data_dir()/binarized_mnist` (overridable
/// through [`DATA_DIR_ENV`]; any other directory can be passed to [`load_binarized_mnist`]).
pub fn binarized_mnist_dir() -> PathBuf {
    data_dir().join("binarized_mnist")
}

/// Loads `binarized_mnist_{train,valid,test}.amat` (or `.amat.gz`) from `dir`, requiring 784
/// binary values per line and the standard 50 000 / 10 000 / 10 000 images.
///
/// The uncompressed `.amat` is used when both exist. The training split is parsed on the
/// calling thread while the validation and test splits are parsed on a second one.
///
/// # Errors
/// Any [`DataError`]; the training split's error is reported first.
pub fn load_binarized_mnist(dir: impl AsRef<Path>) -> Result<MnistSplits, DataError> {
    let dir = dir.as_ref();
    let spec = AmatSpec::binary_mnist();
    let [n_train, n_valid, n_test] = MNIST_SPLIT_SIZES;
    let load = |split: &str, n: usize| {
        find_split(dir, &format!("binarized_mnist_{split}"))
            .and_then(|p| load_amat(p, &spec.with_rows(n)))
    };
    let (train, (valid, test)) = std::thread::scope(|scope| {
        let other = scope.spawn(|| (load("valid", n_valid), load("test", n_test)));
        let train = load("train", n_train);
        let rest = other
            .join()
            .unwrap_or_else(|payload| std::panic::resume_unwind(payload));
        (train, rest)
    });
    Ok(MnistSplits {
        train: train?,
        valid: valid?,
        test: test?,
    })
}

/// [`load_binarized_mnist`] on `binarized_mnist/` in the data root found at run time.
///
/// # Errors
/// [`DataError::DataDirNotFound`] listing every place searched ([`find_data_dir`]), or the
/// loader's error.
pub fn load_bundled_mnist() -> Result<MnistSplits, DataError> {
    load_binarized_mnist(find_data_dir()?.join("binarized_mnist"))
}

/// The metadata of `path`, which must be an existing regular file (symbolic links followed):
/// [`DataError::Missing`], [`DataError::NotAFile`] or [`DataError::Io`] otherwise.
pub(crate) fn open_regular_file(path: &Path) -> Result<std::fs::Metadata, DataError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(DataError::Missing {
                tried: vec![path.to_path_buf()],
            });
        }
        Err(source) => {
            return Err(DataError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    if !meta.is_file() {
        return Err(DataError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    Ok(meta)
}

/// `dir/stem.amat` if it exists, else `dir/stem.amat.gz` if it exists, else
/// [`DataError::Missing`] naming both.
pub fn find_split(dir: &Path, stem: &str) -> Result<PathBuf, DataError> {
    let candidates = [
        dir.join(format!("{stem}.amat")),
        dir.join(format!("{stem}.amat.gz")),
    ];
    for c in &candidates {
        // `symlink_metadata` would not follow links; `metadata` does, which is what we want.
        if std::fs::metadata(c).is_ok() {
            return Ok(c.clone());
        }
    }
    Err(DataError::Missing {
        tried: candidates.to_vec(),
    })
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const READ_BUFFER: usize = 1 << 18;

/// Loads one `.amat` or `.amat.gz` file (gzip is detected from the magic bytes; a file named
/// `*.gz` must be gzip).
///
/// ```no_run
/// use gumbolt_datasets::{load_amat, AmatSpec, binarized_mnist_dir};
/// let test = load_amat(
///     binarized_mnist_dir().join("binarized_mnist_test.amat.gz"),
///     &AmatSpec::binary_mnist().with_rows(10_000),
/// )?;
/// assert_eq!(test.dim(), 784);
/// # Ok::<(), gumbolt_datasets::DataError>(())
/// ```
///
/// # Errors
/// Any [`DataError`] naming `path`.
pub fn load_amat(path: impl AsRef<Path>, spec: &AmatSpec) -> Result<Dataset, DataError> {
    let path = path.as_ref();
    if spec.dim == 0 {
        return Err(DataError::InvalidArgument(
            "image dimension must be positive".into(),
        ));
    }
    open_regular_file(path)?;
    let file = File::open(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let capacity = spec.expected_rows.unwrap_or(0).saturating_mul(spec.dim);
    decode_amat(
        BufReader::with_capacity(READ_BUFFER, file),
        spec,
        path,
        capacity,
    )
}

/// Parses the bytes of an `.amat` or `.amat.gz` file held in memory, exactly as [`load_amat`]
/// parses the file `path` (gzip detected from the magic bytes; a `path` named `*.gz` must be
/// gzip). `path` is only used in error messages.
///
/// ```
/// use gumbolt_datasets::{amat_from_bytes, AmatSpec, PixelKind};
/// let spec = AmatSpec { dim: 3, kind: PixelKind::Binary, expected_rows: None };
/// let d = amat_from_bytes("x.amat".as_ref(), b"0 1 1\n1 0 0\n", &spec).unwrap();
/// assert_eq!((d.n(), d.dim()), (2, 3));
/// let e = amat_from_bytes("x.amat".as_ref(), b"0 1\n", &spec).unwrap_err();
/// assert_eq!(e.to_string(), "x.amat:1: expected 3 values per line, found 2");
/// ```
///
/// # Errors
/// As [`load_amat`], without the file-system errors.
pub fn amat_from_bytes(path: &Path, bytes: &[u8], spec: &AmatSpec) -> Result<Dataset, DataError> {
    if spec.dim == 0 {
        return Err(DataError::InvalidArgument(
            "image dimension must be positive".into(),
        ));
    }
    decode_amat(bytes, spec, path, 0)
}

/// Gzip detection and parsing of an `.amat[.gz]` stream (`capacity`: values to reserve).
fn decode_amat<R: BufRead>(
    mut raw: R,
    spec: &AmatSpec,
    path: &Path,
    capacity: usize,
) -> Result<Dataset, DataError> {
    let head = raw.fill_buf().map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let is_gzip = head.starts_with(&GZIP_MAGIC);
    let named_gz = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"));
    if named_gz && !is_gzip {
        return Err(DataError::Gzip {
            path: path.to_path_buf(),
            line: 1,
            source: io::Error::new(
                io::ErrorKind::InvalidData,
                "missing gzip header (magic bytes)",
            ),
        });
    }
    if is_gzip {
        let reader = BufReader::with_capacity(READ_BUFFER, MultiGzDecoder::new(raw));
        parse_amat(reader, spec, path, true, capacity)
    } else {
        parse_amat(raw, spec, path, false, capacity)
    }
}

/// Parses `.amat` text from any buffered reader (`path` is used in error messages only).
///
/// # Errors
/// As [`load_amat`]; read errors are reported as [`DataError::Io`].
pub fn read_amat<R: BufRead>(
    reader: R,
    spec: &AmatSpec,
    path: &Path,
) -> Result<Dataset, DataError> {
    if spec.dim == 0 {
        return Err(DataError::InvalidArgument(
            "image dimension must be positive".into(),
        ));
    }
    parse_amat(reader, spec, path, false, 0)
}

/// A problem on one line, before the path and line number are attached.
enum LineError {
    Width(usize),
    NotNumeric(usize, String),
    NotBinary(usize, f32),
    OutOfRange(usize, f32),
}

fn parse_amat<R: Read + BufRead>(
    mut reader: R,
    spec: &AmatSpec,
    path: &Path,
    gzip: bool,
    capacity: usize,
) -> Result<Dataset, DataError> {
    let dim = spec.dim;
    // Do not trust a huge expected count blindly: cap the up-front reservation.
    let mut images: Vec<f32> = Vec::with_capacity(capacity.min(1 << 28));
    let mut line = Vec::with_capacity(4 * dim + 64);
    let mut line_no = 0usize;
    let mut first_blank: Option<usize> = None;
    let mut n = 0usize;
    loop {
        line.clear();
        let read = reader.read_until(b'\n', &mut line).map_err(|source| {
            if gzip {
                DataError::Gzip {
                    path: path.to_path_buf(),
                    line: line_no + 1,
                    source,
                }
            } else {
                DataError::Io {
                    path: path.to_path_buf(),
                    source,
                }
            }
        })?;
        if read == 0 {
            break;
        }
        line_no += 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            // Blank lines are allowed only at the end of the file.
            first_blank.get_or_insert(line_no);
            continue;
        }
        if let Some(blank) = first_blank {
            return Err(DataError::WrongWidth {
                path: path.to_path_buf(),
                line: blank,
                expected: dim,
                found: 0,
            });
        }
        let start = images.len();
        if let Err(e) = parse_line(&line, dim, spec.kind, &mut images) {
            images.truncate(start);
            if gzip {
                // Damaged compressed data often decodes to garbage before the checksum at the
                // end is reached: check the rest of the stream and report the corruption, the
                // root cause, rather than the garbage.
                if let Err(source) = io::copy(&mut reader, &mut io::sink()) {
                    return Err(DataError::Gzip {
                        path: path.to_path_buf(),
                        line: line_no,
                        source,
                    });
                }
            }
            let path = path.to_path_buf();
            let line = line_no;
            return Err(match e {
                LineError::Width(found) => DataError::WrongWidth {
                    path,
                    line,
                    expected: dim,
                    found,
                },
                LineError::NotNumeric(column, token) => DataError::NotNumeric {
                    path,
                    line,
                    column,
                    token,
                },
                LineError::NotBinary(column, value) => DataError::NotBinary {
                    path,
                    line,
                    column,
                    value,
                },
                LineError::OutOfRange(column, value) => DataError::OutOfRange {
                    path,
                    line,
                    column,
                    value,
                },
            });
        }
        n += 1;
    }
    if n == 0 {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
        });
    }
    if let Some(expected) = spec.expected_rows.filter(|&e| e != n) {
        return Err(DataError::WrongCount {
            path: path.to_path_buf(),
            what: "images",
            expected,
            found: n,
        });
    }
    images.shrink_to_fit();
    Ok(Dataset { images, n, dim })
}

/// Parses one non-blank line into `out` (exactly `dim` values on success).
#[inline]
fn parse_line(
    line: &[u8],
    dim: usize,
    kind: PixelKind,
    out: &mut Vec<f32>,
) -> Result<(), LineError> {
    // Fast path for the canonical binary layout "v v v ... v" with single-character values.
    let body = trim_ascii_end(line);
    if body.len() == 2 * dim - 1 && fast_binary_line(body, out) {
        return Ok(());
    }
    let mut count = 0usize;
    let mut pending: Option<LineError> = None;
    for tok in line
        .split(|b| b.is_ascii_whitespace())
        .filter(|t| !t.is_empty())
    {
        count += 1;
        if count > dim || pending.is_some() {
            continue; // keep counting to report the width
        }
        let value = match parse_number(tok) {
            Some(v) => v,
            None => {
                let shown = &tok[..tok.len().min(32)];
                pending = Some(LineError::NotNumeric(
                    count,
                    String::from_utf8_lossy(shown).into_owned(),
                ));
                continue;
            }
        };
        let ok = match kind {
            PixelKind::Binary => value == 0.0 || value == 1.0,
            PixelKind::Grey => (0.0..=1.0).contains(&value),
        };
        if !ok {
            pending = Some(match kind {
                PixelKind::Binary => LineError::NotBinary(count, value),
                PixelKind::Grey => LineError::OutOfRange(count, value),
            });
            continue;
        }
        // `+ 0.0` turns a parsed −0 into +0.
        out.push(value + 0.0);
    }
    // A wrong width is reported in preference to a bad value: it usually means a damaged line.
    if count != dim {
        return Err(LineError::Width(count));
    }
    match pending {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn trim_ascii_end(s: &[u8]) -> &[u8] {
    let mut end = s.len();
    while end > 0 && s[end - 1].is_ascii_whitespace() {
        end -= 1;
    }
    &s[..end]
}

/// If `body` is exactly `c ␣ c ␣ … c` with every `c` in {'0','1'}, appends the values and
/// returns true; otherwise appends nothing and returns false. Branch-free over the line so it
/// vectorises.
#[inline]
fn fast_binary_line(body: &[u8], out: &mut Vec<f32>) -> bool {
    // Check: digits at even positions are '0'/'1', odd positions are spaces.
    let mut bad = 0u8;
    let mut pairs = body.chunks_exact(2);
    for p in &mut pairs {
        bad |= (p[0] & !1) ^ b'0';
        bad |= p[1] ^ b' ';
    }
    for &c in pairs.remainder() {
        bad |= (c & !1) ^ b'0';
    }
    if bad != 0 {
        return false;
    }
    out.extend(body.iter().step_by(2).map(|&c| (c - b'0') as f32));
    true
}

const POW10: [f64; 19] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18,
];

/// Parses a decimal number. Plain `[+-]digits[.digits]` with at most 18 digits is parsed by
/// hand (an exact integer mantissa divided by an exact power of ten); anything else (exponents,
/// long mantissas, `inf`, `nan`) falls back to `str::parse::<f32>`.
#[inline]
fn parse_number(tok: &[u8]) -> Option<f32> {
    match tok {
        b"0" => return Some(0.0),
        b"1" => return Some(1.0),
        _ => {}
    }
    let (neg, digits) = match tok.first() {
        Some(b'-') => (true, &tok[1..]),
        Some(b'+') => (false, &tok[1..]),
        _ => (false, tok),
    };
    let mut mantissa = 0u64;
    let mut n_digits = 0usize;
    let mut frac_digits = 0usize;
    let mut seen_dot = false;
    let mut simple = !digits.is_empty();
    for &c in digits {
        match c {
            b'0'..=b'9' => {
                mantissa = mantissa.wrapping_mul(10).wrapping_add((c - b'0') as u64);
                n_digits += 1;
                if seen_dot {
                    frac_digits += 1;
                }
            }
            b'.' if !seen_dot => seen_dot = true,
            _ => {
                simple = false;
                break;
            }
        }
    }
    if simple && n_digits > 0 && n_digits <= 18 {
        let v = mantissa as f64 / POW10[frac_digits];
        return Some(if neg { -v } else { v } as f32);
    }
    std::str::from_utf8(tok).ok()?.parse::<f32>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use std::io::Write;

    fn spec(dim: usize, kind: PixelKind) -> AmatSpec {
        AmatSpec {
            dim,
            kind,
            expected_rows: None,
        }
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn parses_plain_and_gzip_with_odd_whitespace() {
        let dir = tempfile::tempdir().unwrap();
        let text = b"0 1 1\n1\t0 0\r\n  0 0 1  \n\n\n";
        for (name, bytes) in [("a.amat", text.to_vec()), ("a.amat.gz", gz(text))] {
            let p = write(dir.path(), name, &bytes);
            let d = load_amat(&p, &spec(3, PixelKind::Binary)).unwrap();
            assert_eq!(d.n(), 3);
            assert_eq!(d.images(), &[0., 1., 1., 1., 0., 0., 0., 0., 1.]);
        }
        // No trailing newline, and values written as decimals.
        let p = write(dir.path(), "b.amat", b"0.0 1.000 0\n1 1 -0");
        let d = load_amat(&p, &spec(3, PixelKind::Binary)).unwrap();
        assert_eq!(d.images(), &[0., 1., 0., 1., 1., 0.]);
        assert!(d.images()[5].is_sign_positive());
    }

    #[test]
    fn grey_values_parse_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "g.amat",
            b"0.1234 1 0.5e-1 0.3\n0 .25 1.0 0.99999\n",
        );
        let d = load_amat(&p, &spec(4, PixelKind::Grey)).unwrap();
        let want = [0.1234f32, 1.0, 0.05, 0.3, 0.0, 0.25, 1.0, 0.99999];
        assert_eq!(d.images(), &want);
    }

    #[test]
    fn missing_file_and_directory() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("nope.amat");
        match load_amat(&p, &spec(3, PixelKind::Binary)) {
            Err(DataError::Missing { tried }) => assert_eq!(tried, vec![p.clone()]),
            other => panic!("{other:?}"),
        }
        let sub = dir.path().join("sub.amat");
        std::fs::create_dir(&sub).unwrap();
        let e = load_amat(&sub, &spec(3, PixelKind::Binary)).unwrap_err();
        assert!(
            matches!(&e, DataError::NotAFile { path } if *path == sub),
            "{e:?}"
        );
        assert!(e.to_string().contains("sub.amat"));
        // The split loader reports both candidate names, and a directory in place of a split.
        let e = load_binarized_mnist(dir.path()).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, DataError::Missing { .. }));
        assert!(
            msg.contains("binarized_mnist_train.amat")
                && msg.contains("binarized_mnist_train.amat.gz"),
            "{msg}"
        );
        std::fs::create_dir(dir.path().join("binarized_mnist_train.amat.gz")).unwrap();
        let e = load_binarized_mnist(dir.path()).unwrap_err();
        assert!(matches!(e, DataError::NotAFile { .. }), "{e:?}");
    }

    fn lines(n: usize, dim: usize) -> Vec<u8> {
        let mut s = String::new();
        for i in 0..n {
            let row: Vec<String> = (0..dim)
                .map(|j| ((i * 7 + j * 3) % 2).to_string())
                .collect();
            s.push_str(&row.join(" "));
            s.push('\n');
        }
        s.into_bytes()
    }

    #[test]
    fn truncated_and_corrupt_gzip() {
        let dir = tempfile::tempdir().unwrap();
        let full = gz(&lines(2000, 50));
        let p = write(dir.path(), "t.amat.gz", &full[..full.len() / 2]);
        let e = load_amat(&p, &spec(50, PixelKind::Binary)).unwrap_err();
        assert!(
            matches!(&e, DataError::Gzip { path, line, .. } if *path == p && *line > 1),
            "{e:?}"
        );
        // Only the 8-byte trailer (CRC32 + size) missing.
        let p = write(dir.path(), "t2.amat.gz", &full[..full.len() - 8]);
        let e = load_amat(&p, &spec(50, PixelKind::Binary)).unwrap_err();
        assert!(matches!(&e, DataError::Gzip { .. }), "{e:?}");
        // Flipped bytes in the middle of the deflate stream: reported as gzip corruption (the
        // checksum fails), not as the garbage lines the damaged stream may decode to.
        let mut bad = full.clone();
        let mid = bad.len() / 2;
        for b in &mut bad[mid..mid + 16] {
            *b ^= 0x5a;
        }
        let p = write(dir.path(), "c.amat.gz", &bad);
        let e = load_amat(&p, &spec(50, PixelKind::Binary)).unwrap_err();
        assert!(matches!(&e, DataError::Gzip { .. }), "{e:?}");
        assert!(e.to_string().contains("c.amat.gz"));
        // A `.gz` name on a plain-text file.
        let p = write(dir.path(), "plain.amat.gz", b"0 1\n");
        let e = load_amat(&p, &spec(2, PixelKind::Binary)).unwrap_err();
        assert!(matches!(&e, DataError::Gzip { line: 1, .. }), "{e:?}");
    }

    #[test]
    fn wrong_width_names_line_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "w.amat", b"0 1 1\n1 0\n0 0 1\n");
        let e = load_amat(&p, &spec(3, PixelKind::Binary)).unwrap_err();
        assert!(
            matches!(
                &e,
                DataError::WrongWidth {
                    line: 2,
                    expected: 3,
                    found: 2,
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            format!("{}:2: expected 3 values per line, found 2", p.display())
        );
        let p = write(dir.path(), "w2.amat", b"0 1 1\n1 0 1 1 0\n");
        let e = load_amat(&p, &spec(3, PixelKind::Binary)).unwrap_err();
        assert!(
            matches!(
                &e,
                DataError::WrongWidth {
                    line: 2,
                    found: 5,
                    ..
                }
            ),
            "{e:?}"
        );
        // A blank line in the middle is a line of 0 values.
        let p = write(dir.path(), "w3.amat", b"0 1 1\n\n1 0 1\n");
        let e = load_amat(&p, &spec(3, PixelKind::Binary)).unwrap_err();
        assert!(
            matches!(
                &e,
                DataError::WrongWidth {
                    line: 2,
                    found: 0,
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn bad_values() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "v.amat", b"0 1 1\n1 2 0\n");
        let e = load_amat(&p, &spec(3, PixelKind::Binary)).unwrap_err();
        assert!(
            matches!(&e, DataError::NotBinary { line: 2, column: 2, value, .. } if *value == 2.0),
            "{e:?}"
        );
        let p = write(dir.path(), "v2.amat", b"0 1 0.5\n");
        let e = load_amat(&p, &spec(3, PixelKind::Binary)).unwrap_err();
        assert!(
            matches!(
                &e,
                DataError::NotBinary {
                    line: 1,
                    column: 3,
                    ..
                }
            ),
            "{e:?}"
        );
        // The same value is fine as a grey level; 1.5, -0.1 and NaN are not.
        assert!(load_amat(&p, &spec(3, PixelKind::Grey)).is_ok());
        for (text, col) in [
            (&b"0 1.5 0\n"[..], 2),
            (b"-0.1 0 0\n", 1),
            (b"0 0 nan\n", 3),
        ] {
            let p = write(dir.path(), "g.amat", text);
            let e = load_amat(&p, &spec(3, PixelKind::Grey)).unwrap_err();
            assert!(
                matches!(&e, DataError::OutOfRange { line: 1, column, .. } if *column == col),
                "{e:?}"
            );
        }
        // Content errors inside an intact gzip stream are reported as such.
        let p = write(dir.path(), "v3.amat.gz", &gz(b"0 1 1\n1 2 0\n"));
        let e = load_amat(&p, &spec(3, PixelKind::Binary)).unwrap_err();
        assert!(
            matches!(
                &e,
                DataError::NotBinary {
                    line: 2,
                    column: 2,
                    ..
                }
            ),
            "{e:?}"
        );
        let p = write(dir.path(), "n.amat", b"0 1 1\n0 1 1\n1 x0 0\n");
        let e = load_amat(&p, &spec(3, PixelKind::Binary)).unwrap_err();
        assert!(
            matches!(&e, DataError::NotNumeric { line: 3, column: 2, token, .. } if token == "x0"),
            "{e:?}"
        );
        assert!(e.to_string().contains("n.amat:3: value 2 is not a number"));
        let p = write(dir.path(), "n2.amat", b"0 1 1..0\n");
        let e = load_amat(&p, &spec(3, PixelKind::Grey)).unwrap_err();
        assert!(
            matches!(&e, DataError::NotNumeric { column: 3, .. }),
            "{e:?}"
        );
    }

    #[test]
    fn empty_files_and_wrong_count() {
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes) in [
            ("e.amat", Vec::new()),
            ("e2.amat", b"\n  \n\t\n".to_vec()),
            ("e3.amat.gz", gz(b"")),
        ] {
            let p = write(dir.path(), name, &bytes);
            let e = load_amat(&p, &spec(3, PixelKind::Binary)).unwrap_err();
            assert!(
                matches!(&e, DataError::Empty { path } if *path == p),
                "{name}: {e:?}"
            );
        }
        let p = write(dir.path(), "c.amat", b"0 1 1\n1 0 0\n");
        let e = load_amat(&p, &spec(3, PixelKind::Binary).with_rows(3)).unwrap_err();
        assert!(
            matches!(
                &e,
                DataError::WrongCount {
                    expected: 3,
                    found: 2,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(load_amat(&p, &spec(3, PixelKind::Binary).with_rows(2)).is_ok());
        let e = load_amat(&p, &spec(0, PixelKind::Binary)).unwrap_err();
        assert!(matches!(e, DataError::InvalidArgument(_)));
    }

    #[test]
    fn mnist_split_sizes_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let small = gz(&lines(3, MNIST_DIM));
        for s in ["train", "valid", "test"] {
            write(dir.path(), &format!("binarized_mnist_{s}.amat.gz"), &small);
        }
        let e = load_binarized_mnist(dir.path()).unwrap_err();
        assert!(
            matches!(&e, DataError::WrongCount { expected: 50_000, found: 3, path, .. } if path.ends_with("binarized_mnist_train.amat.gz")),
            "{e:?}"
        );
    }

    #[test]
    fn dataset_views_gather_and_split() {
        let d = Dataset::from_row_major((0..12).map(|v| v as f32).collect(), 4).unwrap();
        assert_eq!(d.as_columns()[(1, 2)], 9.0);
        assert_eq!(d.columns_range(1, 2)[(3, 1)], 11.0);
        let mut b = Mat::from_element(5, 5, -1.0);
        d.gather_into(&[1, 1, 0], &mut b);
        assert_eq!(b.shape(), (3, 4));
        assert_eq!(
            b.row(0).iter().copied().collect::<Vec<_>>(),
            vec![4., 5., 6., 7.]
        );
        assert_eq!(
            b.row(2).iter().copied().collect::<Vec<_>>(),
            vec![0., 1., 2., 3.]
        );
        assert_eq!(d.pixel_means(), vec![4., 5., 6., 7.]);
        assert!((d.mean() - 5.5).abs() < 1e-12);
        let (a, c) = d.clone().split_at(2).unwrap();
        assert_eq!((a.n(), c.n()), (2, 1));
        assert_eq!(c.row(0), &[8., 9., 10., 11.]);
        assert!(d.split_at(4).is_err());
        assert!(Dataset::from_row_major(vec![0.0; 5], 2).is_err());
        assert!(Dataset::from_row_major(vec![], 0).is_err());
    }

    #[test]
    fn bundled_dir_is_in_the_workspace() {
        let d = binarized_mnist_dir();
        assert!(d.ends_with("data/binarized_mnist"), "{}", d.display());
    }

    /// The real bundled data: counts and mean pixel (data/README.md). Run in release to time
    /// it: `cargo test --release -p gumbolt-models bundled_mnist -- --nocapture`.
    #[test]
    fn bundled_mnist_loads_with_known_statistics() {
        let t0 = std::time::Instant::now();
        let s = load_bundled_mnist().unwrap();
        let dt = t0.elapsed();
        println!("loaded bundled MNIST (3 splits) in {dt:?}");
        for (d, n, mean) in [
            (&s.train, 50_000, 0.1306),
            (&s.valid, 10_000, 0.1311),
            (&s.test, 10_000, 0.1325),
        ] {
            assert_eq!(d.n(), n);
            assert_eq!(d.dim(), 784);
            assert!(
                (d.mean() - mean).abs() < 5e-5,
                "mean {} vs {mean}",
                d.mean()
            );
            assert!(d.images().iter().all(|&v| v == 0.0 || v == 1.0));
        }
    }
}

//! 28×28 OMNIGLOT with the GumBolt paper's protocol (docs/algorithms.md §9 "Data", §10 item 11).
//!
//! # Sources
//!
//! - [`load_omniglot_mat`]: the `chardata.mat` of Burda et al. (IWAE) used by the paper
//!   (MATLAB v5 file, read with [`matfile`](super::matfile)). It is **not** in the repository.
//! - [`load_omniglot_rebuilt`]: the rebuild from B. Lake's original 105×105 drawings vendored in
//!   `data/omniglot_rebuilt/` (see `data/README.md`): same image counts and alphabets, but
//!   different pixel values, so results on it must be labelled **"OMNIGLOT (rebuilt)"** and are
//!   not comparable with the paper's OMNIGLOT column.
//!
//! Both return the same [`OmniglotSplits`], with images in the crate's row-major 28×28 layout
//! (pixel `(r, c)` at index `28·r + c` of an image, as in the `.amat` files).
//!
//! # Protocol ([`OmniglotProtocol::PAPER`])
//!
//! - The training file holds 24 345 images. Its **last 1 345** form the validation set, leaving
//!   23 000 for training; the test set has 8 070 images. (In the rebuilt data the last 1 345
//!   training images are the drawings of the last three alphabets, not a random sample.)
//! - Training images are kept as grey levels and **re-binarised for every minibatch**: draw
//!   each pixel from a Bernoulli with the grey level as probability
//!   ([`Dataset::gather_binarized_into`], [`binarize_into`], [`binarize_in_place`]). The
//!   reference serves the first epoch unshuffled and shuffles later epochs (a training-loop
//!   concern).
//! - Validation and test are **binarised once, with seed 1** ([`OMNIGLOT_EVAL_SEED`]): the
//!   validation images with stream 0 and the test images with stream 1 of
//!   `gumbolt_core::rng::streams(1, 2)`, each over its images in order (row-major, one uniform
//!   per pixel, see [`binarize_into`]). The two binarisations are therefore reproducible and
//!   independent of each other (changing the validation size does not change the test
//!   binarisation). They cannot match the reference's numpy draws bit for bit.
//! - The data mean `x̄` of docs/algorithms.md §10 item 1 is computed on the training grey levels:
//!   `splits.train_grey.pixel_means()`.

use std::path::{Path, PathBuf};

use gumbolt_core::rng::{fill_uniform, streams};
use rand::Rng;

use super::matfile::{MatMatrix, read_mat_matrices};
use super::{
    AmatSpec, DataError, Dataset, MNIST_DIM, PixelKind, data_dir, find_split, load_amat,
    open_regular_file,
};

/// Images in the OMNIGLOT training file (`data` of `chardata.mat`), before the validation
/// images are split off.
pub const OMNIGLOT_TRAIN_SIZE: usize = 24_345;
/// The last `OMNIGLOT_VALID_SIZE` training images are the validation set (23 000 remain).
pub const OMNIGLOT_VALID_SIZE: usize = 1_345;
/// Images in the OMNIGLOT test set.
pub const OMNIGLOT_TEST_SIZE: usize = 8_070;
/// Number of alphabets (classes of the labels).
pub const OMNIGLOT_N_ALPHABETS: usize = 50;
/// The seed of the one-off binarisation of the validation and test images.
pub const OMNIGLOT_EVAL_SEED: u64 = 1;

/// Side of the square images.
const SIDE: usize = 28;

/// Split sizes and the evaluation seed; [`OmniglotProtocol::PAPER`] is the paper's protocol,
/// other values are for tests and experiments on subsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OmniglotProtocol {
    /// How many of the last training images form the validation set (must leave at least one
    /// training image).
    pub n_valid: usize,
    /// The required number of images in the training file (`None`: any).
    pub train_size: Option<usize>,
    /// The required number of test images (`None`: any).
    pub test_size: Option<usize>,
    /// Seed of the one-off binarisation of validation and test images.
    pub eval_seed: u64,
}

impl OmniglotProtocol {
    /// The paper's protocol: 24 345 training images of which the last 1 345 validate, 8 070
    /// test images, validation and test binarised with seed 1.
    pub const PAPER: Self = Self {
        n_valid: OMNIGLOT_VALID_SIZE,
        train_size: Some(OMNIGLOT_TRAIN_SIZE),
        test_size: Some(OMNIGLOT_TEST_SIZE),
        eval_seed: OMNIGLOT_EVAL_SEED,
    };
}

impl Default for OmniglotProtocol {
    fn default() -> Self {
        Self::PAPER
    }
}

/// OMNIGLOT split by the paper's protocol (see the [module docs](self)). Every [`Dataset`]
/// holds 784-value images, row-major 28×28; labels are alphabet indices in
/// `0..OMNIGLOT_N_ALPHABETS`.
#[derive(Debug, Clone, PartialEq)]
pub struct OmniglotSplits {
    /// The training images (23 000 under the paper's protocol) as grey levels in `[0, 1]`;
    /// binarise them afresh for every minibatch.
    pub train_grey: Dataset,
    /// Alphabet of each training image.
    pub train_labels: Vec<usize>,
    /// The validation images (the last 1 345 of the training file) as grey levels.
    pub valid_grey: Dataset,
    /// `valid_grey` binarised once (seed [`OMNIGLOT_EVAL_SEED`], stream 0).
    pub valid: Dataset,
    /// Alphabet of each validation image.
    pub valid_labels: Vec<usize>,
    /// The test images (8 070) as grey levels.
    pub test_grey: Dataset,
    /// `test_grey` binarised once (seed [`OMNIGLOT_EVAL_SEED`], stream 1).
    pub test: Dataset,
    /// Alphabet of each test image.
    pub test_labels: Vec<usize>,
    /// Alphabet names, indexed by label (`alphabets.txt` of the rebuilt data; `None` for
    /// `chardata.mat`, which has no names).
    pub alphabets: Option<Vec<String>>,
}

/// The fixed (static) binarisation shipped with the rebuilt data
/// ([`load_omniglot_rebuilt_fixed`]), split like [`OmniglotSplits`]. Not the paper's protocol,
/// which binarises the training images dynamically.
#[derive(Debug, Clone, PartialEq)]
pub struct OmniglotFixedSplits {
    /// The first 23 000 images of `omniglot_train.amat.gz`.
    pub train: Dataset,
    /// Its last 1 345 images.
    pub valid: Dataset,
    /// The 8 070 images of `omniglot_test.amat.gz`.
    pub test: Dataset,
}

/// Writes into `out` one independent Bernoulli draw per grey level of `grey` (`out[i]` is 1
/// with probability `grey[i]`, else 0). The layout of the buffers does not matter; `grey` may
/// be a row-major image range (`Dataset::images`) or a gathered minibatch matrix's storage.
///
/// The draws are exactly those of `gumbolt_core::rng::fill_uniform(rng, u)` over a buffer of
/// `grey.len()` uniforms `u` on the 2⁻²⁴ grid of (0, 1), followed by `out[i] = (u[i] <
/// grey[i])`: grey level 0 always gives 0 and 1 always gives 1. Values outside `[0, 1]` act as
/// 0 or 1 and NaN as 0 (the loaders reject such grey levels).
///
/// ```
/// use gumbolt_datasets::binarize_into;
/// let mut rng = gumbolt_core::rng::root_rng(0);
/// let grey = [0.0, 1.0, 0.5];
/// let mut x = [0.0f32; 3];
/// binarize_into(&grey, &mut rng, &mut x);
/// assert_eq!((x[0], x[1]), (0.0, 1.0));
/// assert!(x[2] == 0.0 || x[2] == 1.0);
/// ```
///
/// # Panics
/// If `grey.len() != out.len()`.
pub fn binarize_into<R: Rng + ?Sized>(grey: &[f32], rng: &mut R, out: &mut [f32]) {
    assert_eq!(
        grey.len(),
        out.len(),
        "binarize_into: {} grey levels but {} outputs",
        grey.len(),
        out.len()
    );
    fill_uniform(rng, out);
    for (o, &p) in out.iter_mut().zip(grey) {
        *o = if *o < p { 1.0 } else { 0.0 };
    }
}

/// [`binarize_into`] in place: replaces each grey level by a Bernoulli draw with that
/// probability. It consumes `rng` exactly as [`binarize_into`] does, so both give the same
/// values from the same generator state.
pub fn binarize_in_place<R: Rng + ?Sized>(x: &mut [f32], rng: &mut R) {
    // An even chunk length keeps the uniforms identical to one `fill_uniform` over all of `x`.
    const CHUNK: usize = 512;
    let mut u = [0.0f32; CHUNK];
    for chunk in x.chunks_mut(CHUNK) {
        let u = &mut u[..chunk.len()];
        fill_uniform(rng, u);
        for (v, &u) in chunk.iter_mut().zip(u.iter()) {
            *v = if u < *v { 1.0 } else { 0.0 };
        }
    }
}

/// A binarised copy of a grey-level dataset ([`binarize_into`] over all its values, in
/// row-major order).
pub fn binarize_dataset<R: Rng + ?Sized>(grey: &Dataset, rng: &mut R) -> Dataset {
    let mut images = vec![0.0f32; grey.images.len()];
    binarize_into(&grey.images, rng, &mut images);
    Dataset {
        images,
        n: grey.n,
        dim: grey.dim,
    }
}

/// The directory of the bundled rebuilt OMNIGLOT: `data_dir()/omniglot_rebuilt`.
pub fn omniglot_rebuilt_dir() -> PathBuf {
    data_dir().join("omniglot_rebuilt")
}

/// [`load_omniglot_rebuilt`] on `omniglot_rebuilt/` in the data root found at run time.
///
/// # Errors
/// [`DataError::DataDirNotFound`] listing every place searched
/// ([`find_data_dir`](super::find_data_dir)), or the loader's error.
pub fn load_bundled_omniglot() -> Result<OmniglotSplits, DataError> {
    load_omniglot_rebuilt(super::find_data_dir()?.join("omniglot_rebuilt"))
}

/// Loads the rebuilt OMNIGLOT from `dir` with the paper's protocol
/// ([`OmniglotProtocol::PAPER`]).
///
/// `dir` must hold `omniglot_{train,test}_grey.amat` or `.amat.gz` (784 grey levels in
/// `[0, 1]` per line; the uncompressed file is used when both exist),
/// `omniglot_{train,test}_labels.txt` (one alphabet index per line, as many lines as images)
/// and `alphabets.txt` (the 50 alphabet names, one per line). Results on this data must be
/// labelled "OMNIGLOT (rebuilt)".
///
/// ```no_run
/// let s = gumbolt_datasets::load_bundled_omniglot()?;
/// assert_eq!((s.train_grey.n(), s.valid.n(), s.test.n()), (23_000, 1_345, 8_070));
/// # Ok::<(), gumbolt_datasets::DataError>(())
/// ```
///
/// # Errors
/// Any [`DataError`] of [`load_amat`] (with [`PixelKind::Grey`] and the split sizes), and for
/// the label files [`DataError::NotNumeric`], [`DataError::WrongWidth`] (more than one value on
/// a line), [`DataError::BadLabel`] (an index not below the number of alphabets, an empty
/// alphabet name) and [`DataError::WrongCount`] (not one label per image, not 50 alphabets).
pub fn load_omniglot_rebuilt(dir: impl AsRef<Path>) -> Result<OmniglotSplits, DataError> {
    load_omniglot_rebuilt_with(dir, &OmniglotProtocol::PAPER)
}

/// [`load_omniglot_rebuilt`] with another protocol.
///
/// # Errors
/// As [`load_omniglot_rebuilt`]; [`DataError::InvalidArgument`] if `protocol.n_valid` does
/// not leave a training image.
pub fn load_omniglot_rebuilt_with(
    dir: impl AsRef<Path>,
    protocol: &OmniglotProtocol,
) -> Result<OmniglotSplits, DataError> {
    let dir = dir.as_ref();
    let alphabets = read_alphabets(&dir.join("alphabets.txt"))?;
    let load =
        |split: &str, n: Option<usize>| -> Result<(Dataset, Vec<usize>, PathBuf), DataError> {
            let path = find_split(dir, &format!("omniglot_{split}_grey"))?;
            let spec = AmatSpec {
                dim: MNIST_DIM,
                kind: PixelKind::Grey,
                expected_rows: n,
            };
            let grey = load_amat(&path, &spec)?;
            let labels = read_labels(
                &dir.join(format!("omniglot_{split}_labels.txt")),
                alphabets.len(),
                grey.n(),
            )?;
            Ok((grey, labels, path))
        };
    let (train, test) = std::thread::scope(|scope| {
        let other = scope.spawn(|| load("test", protocol.test_size));
        let train = load("train", protocol.train_size);
        let test = other
            .join()
            .unwrap_or_else(|payload| std::panic::resume_unwind(payload));
        (train, test)
    });
    let (train, train_labels, train_path) = train?;
    let (test, test_labels, _) = test?;
    assemble(
        train,
        train_labels,
        test,
        test_labels,
        Some(alphabets),
        protocol,
        &train_path,
    )
}

/// Loads the fixed binarisation shipped with the rebuilt data,
/// `omniglot_{train,test}.amat(.gz)` (binary values, 24 345 and 8 070 images), and splits off
/// the last 1 345 training images as validation set. For experiments with a static
/// binarisation only; the paper's protocol is [`load_omniglot_rebuilt`].
///
/// # Errors
/// Any [`DataError`] of [`load_amat`] with [`PixelKind::Binary`] and the split sizes.
pub fn load_omniglot_rebuilt_fixed(
    dir: impl AsRef<Path>,
) -> Result<OmniglotFixedSplits, DataError> {
    let dir = dir.as_ref();
    let load = |split: &str, n: usize| {
        find_split(dir, &format!("omniglot_{split}")).and_then(|p| {
            load_amat(
                p,
                &AmatSpec {
                    dim: MNIST_DIM,
                    kind: PixelKind::Binary,
                    expected_rows: Some(n),
                },
            )
        })
    };
    let train = load("train", OMNIGLOT_TRAIN_SIZE)?;
    let test = load("test", OMNIGLOT_TEST_SIZE)?;
    let (train, valid) = train.split_at(OMNIGLOT_TRAIN_SIZE - OMNIGLOT_VALID_SIZE)?;
    Ok(OmniglotFixedSplits { train, valid, test })
}

/// Loads Burda et al.'s `chardata.mat` with the paper's protocol ([`OmniglotProtocol::PAPER`]).
///
/// The file must hold the real matrices `data` (784 × 24 345 grey levels in `[0, 1]`),
/// `testdata` (784 × 8 070), and the one-hot alphabet matrices `target` (50 × 24 345) and
/// `testtarget` (50 × 8 070), of any numeric class (MATLAB v5 / v7 file, compressed or not;
/// see [`matfile`](super::matfile)). Other variables are ignored.
///
/// **Orientation.** Each column of `data` is one image whose 784 pixels are stored
/// column-major: a Fortran-order reshape of the column gives the 28×28 image, i.e. pixel
/// `(r, c)` is entry `r + 28·c` of the column. The loader transposes every image to the
/// row-major layout of the `.amat` files and the rest of the crate (pixel `(r, c)` at index
/// `28·r + c`), so `chardata.mat` and an `.amat` file of the same images load identically.
///
/// # Errors
/// The errors of [`read_mat_matrices`] (not a MAT-file, truncated or corrupt element,
/// unsupported variable, [`DataError::MissingKey`]), [`DataError::WrongShape`] (not 784 rows,
/// not the split size, targets not `50 × n`), [`DataError::OutOfRange`] (a grey level outside
/// `[0, 1]` or NaN) and [`DataError::BadLabel`] (a target column that is not one-hot).
pub fn load_omniglot_mat(path: impl AsRef<Path>) -> Result<OmniglotSplits, DataError> {
    load_omniglot_mat_with(path, &OmniglotProtocol::PAPER)
}

/// [`load_omniglot_mat`] with another protocol.
///
/// # Errors
/// As [`load_omniglot_mat`]; [`DataError::InvalidArgument`] if `protocol.n_valid` does not
/// leave a training image.
pub fn load_omniglot_mat_with(
    path: impl AsRef<Path>,
    protocol: &OmniglotProtocol,
) -> Result<OmniglotSplits, DataError> {
    let path = path.as_ref();
    let m = read_mat_matrices(path, &OMNIGLOT_MAT_VARIABLES)?;
    omniglot_from_mat(path, m, protocol)
}

/// The variables of `chardata.mat` that [`load_omniglot_mat`] reads, in the order
/// [`omniglot_from_mat`] takes them.
pub const OMNIGLOT_MAT_VARIABLES: [&str; 4] = ["data", "testdata", "target", "testtarget"];

/// The OMNIGLOT splits from the matrices [`OMNIGLOT_MAT_VARIABLES`] of a `chardata.mat` (as
/// returned by [`read_mat_matrices`] or
/// [`read_mat_matrices_from_bytes`](super::matfile::read_mat_matrices_from_bytes)), with the
/// checks and the protocol of [`load_omniglot_mat_with`]. `path` is only used in error
/// messages.
///
/// # Errors
/// As [`load_omniglot_mat_with`] after reading; [`DataError::InvalidArgument`] if `m` does not
/// hold four matrices.
pub fn omniglot_from_mat(
    path: &Path,
    mut m: Vec<MatMatrix>,
    protocol: &OmniglotProtocol,
) -> Result<OmniglotSplits, DataError> {
    if m.len() != OMNIGLOT_MAT_VARIABLES.len() {
        return Err(DataError::InvalidArgument(format!(
            "expected the {} matrices {OMNIGLOT_MAT_VARIABLES:?}, got {}",
            OMNIGLOT_MAT_VARIABLES.len(),
            m.len()
        )));
    }
    let testtarget = m.pop().expect("four matrices");
    let target = m.pop().expect("four matrices");
    let testdata = m.pop().expect("four matrices");
    let data = m.pop().expect("four matrices");
    let train = mat_images(path, data, protocol.train_size)?;
    let test = mat_images(path, testdata, protocol.test_size)?;
    let train_labels = one_hot_labels(path, &target, train.n())?;
    let test_labels = one_hot_labels(path, &testtarget, test.n())?;
    assemble(train, train_labels, test, test_labels, None, protocol, path)
}

fn wrong_shape(
    path: &Path,
    m: &MatMatrix,
    expected_rows: Option<usize>,
    expected_cols: Option<usize>,
) -> DataError {
    DataError::WrongShape {
        path: path.to_path_buf(),
        name: m.name.clone(),
        expected_rows,
        expected_cols,
        rows: m.rows,
        cols: m.cols,
    }
}

/// Checks a `784 × n` grey-level matrix and turns it into a row-major image dataset.
fn mat_images(path: &Path, m: MatMatrix, n: Option<usize>) -> Result<Dataset, DataError> {
    if m.rows != MNIST_DIM || n.is_some_and(|n| n != m.cols) || m.cols == 0 {
        return Err(wrong_shape(path, &m, Some(MNIST_DIM), n));
    }
    if let Some(i) = m.data.iter().position(|v| !(0.0..=1.0).contains(v)) {
        return Err(DataError::OutOfRange {
            path: path.to_path_buf(),
            line: i / m.rows + 1,
            column: i % m.rows + 1,
            value: m.data[i],
        });
    }
    let mut images = m.data;
    for img in images.chunks_exact_mut(MNIST_DIM) {
        transpose_square(img, SIDE);
        for v in img.iter_mut() {
            *v += 0.0; // −0 → +0, as the `.amat` parser does
        }
    }
    Ok(Dataset {
        images,
        n: m.cols,
        dim: MNIST_DIM,
    })
}

/// Transposes a `side × side` block in place (column-major ⇄ row-major).
fn transpose_square(img: &mut [f32], side: usize) {
    for r in 0..side {
        for c in r + 1..side {
            img.swap(r * side + c, c * side + r);
        }
    }
}

/// The row index of the single 1 in each column of a `50 × n` one-hot matrix.
fn one_hot_labels(path: &Path, m: &MatMatrix, n: usize) -> Result<Vec<usize>, DataError> {
    if m.rows != OMNIGLOT_N_ALPHABETS || m.cols != n {
        return Err(wrong_shape(path, m, Some(OMNIGLOT_N_ALPHABETS), Some(n)));
    }
    let bad = |c: usize, reason: String| DataError::BadLabel {
        path: path.to_path_buf(),
        index: c + 1,
        reason: format!("column {} of `{}` is not one-hot: {reason}", c + 1, m.name),
    };
    let mut labels = Vec::with_capacity(n);
    for c in 0..m.cols {
        let mut label = None;
        for (r, &v) in m.column(c).iter().enumerate() {
            if v == 1.0 {
                if let Some(first) = label {
                    return Err(bad(c, format!("1 in rows {} and {}", first + 1, r + 1)));
                }
                label = Some(r);
            } else if v != 0.0 {
                return Err(bad(c, format!("value {v} in row {}", r + 1)));
            }
        }
        labels.push(label.ok_or_else(|| bad(c, "no 1".into()))?);
    }
    Ok(labels)
}

/// Splits off the validation images, binarises validation and test once.
fn assemble(
    train: Dataset,
    mut train_labels: Vec<usize>,
    test_grey: Dataset,
    test_labels: Vec<usize>,
    alphabets: Option<Vec<String>>,
    protocol: &OmniglotProtocol,
    train_path: &Path,
) -> Result<OmniglotSplits, DataError> {
    let n = train.n();
    if protocol.n_valid >= n {
        return Err(DataError::InvalidArgument(format!(
            "cannot hold out {} validation images from the {n} training images of {}",
            protocol.n_valid,
            train_path.display()
        )));
    }
    let mid = n - protocol.n_valid;
    let (train_grey, valid_grey) = train.split_at(mid)?;
    let valid_labels = train_labels.split_off(mid);
    let mut rngs = streams(protocol.eval_seed, 2);
    let valid = binarize_dataset(&valid_grey, &mut rngs[0]);
    let test = binarize_dataset(&test_grey, &mut rngs[1]);
    Ok(OmniglotSplits {
        train_grey,
        train_labels,
        valid_grey,
        valid,
        valid_labels,
        test_grey,
        test,
        test_labels,
        alphabets,
    })
}

/// Reads a small text file whole.
fn read_text(path: &Path) -> Result<Vec<u8>, DataError> {
    open_regular_file(path)?;
    std::fs::read(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// The non-blank lines of `text` with their 1-based numbers; blank lines are allowed only at
/// the end (a blank line before a non-blank one is reported as a line of 0 values).
fn content_lines(path: &Path, text: &str) -> Result<Vec<(usize, String)>, DataError> {
    let mut out = Vec::new();
    let mut first_blank = None;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            first_blank.get_or_insert(i + 1);
            continue;
        }
        if let Some(blank) = first_blank {
            return Err(DataError::WrongWidth {
                path: path.to_path_buf(),
                line: blank,
                expected: 1,
                found: 0,
            });
        }
        out.push((i + 1, line.to_string()));
    }
    Ok(out)
}

/// `alphabets.txt`: exactly [`OMNIGLOT_N_ALPHABETS`] names, one per line.
fn read_alphabets(path: &Path) -> Result<Vec<String>, DataError> {
    parse_alphabets(path, &read_text(path)?)
}

/// Parses the contents of a rebuilt-format `alphabets.txt` (exactly [`OMNIGLOT_N_ALPHABETS`]
/// non-empty names, one per line; blank lines only at the end; invalid UTF-8 replaced). `path`
/// is only used in error messages.
///
/// # Errors
/// [`DataError::BadLabel`] for an empty name, [`DataError::WrongCount`] for another number of
/// names.
pub fn parse_alphabets(path: &Path, bytes: &[u8]) -> Result<Vec<String>, DataError> {
    let text = String::from_utf8_lossy(bytes);
    let names: Vec<String> = content_lines(path, &text)
        .map_err(|e| match e {
            DataError::WrongWidth { path, line, .. } => DataError::BadLabel {
                path,
                index: line,
                reason: "empty alphabet name".into(),
            },
            e => e,
        })?
        .into_iter()
        .map(|(_, l)| l)
        .collect();
    if names.len() != OMNIGLOT_N_ALPHABETS {
        return Err(DataError::WrongCount {
            path: path.to_path_buf(),
            what: "alphabet names",
            expected: OMNIGLOT_N_ALPHABETS,
            found: names.len(),
        });
    }
    Ok(names)
}

/// A label file: one index in `0..n_classes` per line, `expected` lines.
fn read_labels(path: &Path, n_classes: usize, expected: usize) -> Result<Vec<usize>, DataError> {
    parse_labels(path, &read_text(path)?, n_classes, expected)
}

/// Parses the contents of a rebuilt-format label file `omniglot_{train,test}_labels.txt`: one
/// alphabet index in `0..n_classes` per line, `expected` lines (blank lines only at the end;
/// invalid UTF-8 replaced). `path` is only used in error messages.
///
/// ```
/// use gumbolt_datasets::omniglot::parse_labels;
/// let p = "labels.txt".as_ref();
/// assert_eq!(parse_labels(p, b"3\n0\n", 50, 2).unwrap(), vec![3, 0]);
/// let e = parse_labels(p, b"3\n50\n", 50, 2).unwrap_err();
/// assert_eq!(e.to_string(), "labels.txt: label 2: alphabet index 50 is not in 0..50");
/// ```
///
/// # Errors
/// [`DataError::NotNumeric`], [`DataError::WrongWidth`] (not one value on a line),
/// [`DataError::BadLabel`] (an index not in `0..n_classes`), [`DataError::WrongCount`].
pub fn parse_labels(
    path: &Path,
    bytes: &[u8],
    n_classes: usize,
    expected: usize,
) -> Result<Vec<usize>, DataError> {
    let text = String::from_utf8_lossy(bytes);
    let mut labels = Vec::with_capacity(expected.min(1 << 20));
    for (line, content) in content_lines(path, &text)? {
        let toks: Vec<&str> = content.split_ascii_whitespace().collect();
        if toks.len() != 1 {
            return Err(DataError::WrongWidth {
                path: path.to_path_buf(),
                line,
                expected: 1,
                found: toks.len(),
            });
        }
        let v: i64 = toks[0].parse().map_err(|_| DataError::NotNumeric {
            path: path.to_path_buf(),
            line,
            column: 1,
            token: toks[0].chars().take(32).collect(),
        })?;
        if v < 0 || v as u64 >= n_classes as u64 {
            return Err(DataError::BadLabel {
                path: path.to_path_buf(),
                index: line,
                reason: format!("alphabet index {v} is not in 0..{n_classes}"),
            });
        }
        labels.push(v as usize);
    }
    if labels.len() != expected {
        return Err(DataError::WrongCount {
            path: path.to_path_buf(),
            what: "labels (one per image)",
            expected,
            found: labels.len(),
        });
    }
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;
    use gumbolt_core::Mat;
    use gumbolt_core::rng::root_rng;

    const N_TRAIN: usize = 7;
    const N_TEST: usize = 3;

    fn tiny() -> OmniglotProtocol {
        OmniglotProtocol {
            n_valid: 2,
            train_size: Some(N_TRAIN),
            test_size: Some(N_TEST),
            eval_seed: OMNIGLOT_EVAL_SEED,
        }
    }

    /// The synthetic images as a `chardata.mat`-style file.
    fn chardata(big: bool, compressed: bool, storage: Storage) -> Vec<u8> {
        let mut w = MatWriter::new(big);
        let class = match storage {
            Storage::F64 => CLASS_DOUBLE,
            Storage::F32 => CLASS_SINGLE,
            Storage::U8 => CLASS_UINT8,
        };
        let vars = [
            w.chars("__note", "ignored"),
            w.numeric(
                "data",
                class,
                storage,
                784,
                N_TRAIN,
                &chardata_block(0, N_TRAIN),
            ),
            w.numeric(
                "testdata",
                class,
                storage,
                784,
                N_TEST,
                &chardata_block(N_TRAIN, N_TEST),
            ),
            // One-hot doubles stored as uint8, as MATLAB does.
            w.numeric(
                "target",
                CLASS_DOUBLE,
                Storage::U8,
                50,
                N_TRAIN,
                &one_hot_block(0, N_TRAIN),
            ),
            w.numeric(
                "testtarget",
                CLASS_DOUBLE,
                Storage::F64,
                50,
                N_TEST,
                &one_hot_block(N_TRAIN, N_TEST),
            ),
        ];
        for v in &vars {
            w.add(v, compressed);
        }
        w.buf
    }

    /// The same images as a rebuilt-OMNIGLOT directory.
    fn rebuilt_dir(dir: &Path) {
        std::fs::write(dir.join("omniglot_train_grey.amat"), amat_block(0, N_TRAIN)).unwrap();
        std::fs::write(
            dir.join("omniglot_test_grey.amat"),
            amat_block(N_TRAIN, N_TEST),
        )
        .unwrap();
        let labels =
            |r: std::ops::Range<usize>| r.map(|i| format!("{}\n", alphabet(i))).collect::<String>();
        std::fs::write(dir.join("omniglot_train_labels.txt"), labels(0..N_TRAIN)).unwrap();
        std::fs::write(
            dir.join("omniglot_test_labels.txt"),
            labels(N_TRAIN..N_TRAIN + N_TEST),
        )
        .unwrap();
        let names: String = (0..50).map(|a| format!("alphabet_{a}\n")).collect();
        std::fs::write(dir.join("alphabets.txt"), names).unwrap();
    }

    /// Orientation, labels, split and binarisation of the synthetic splits.
    fn check_synthetic(s: &OmniglotSplits) {
        assert_eq!(
            (s.train_grey.n(), s.valid_grey.n(), s.test_grey.n()),
            (5, 2, 3)
        );
        assert_eq!((s.valid.n(), s.test.n()), (2, 3));
        for (d, first) in [
            (&s.train_grey, 0),
            (&s.valid_grey, 5),
            (&s.test_grey, N_TRAIN),
        ] {
            assert_eq!(d.dim(), 784);
            for k in 0..d.n() {
                for r in 0..28 {
                    for c in 0..28 {
                        assert_eq!(d.row(k)[28 * r + c], grey(first + k, r, c), "{r} {c}");
                    }
                }
            }
        }
        assert_eq!(s.train_labels, (0..5).map(alphabet).collect::<Vec<_>>());
        assert_eq!(s.valid_labels, vec![alphabet(5), alphabet(6)]);
        assert_eq!(s.test_labels, (7..10).map(alphabet).collect::<Vec<_>>());
        // Validation and test binarised once, seed 1, streams 0 and 1.
        let mut r = streams(OMNIGLOT_EVAL_SEED, 2);
        assert_eq!(s.valid, binarize_dataset(&s.valid_grey, &mut r[0]));
        assert_eq!(s.test, binarize_dataset(&s.test_grey, &mut r[1]));
        for (b, g) in [(&s.valid, &s.valid_grey), (&s.test, &s.test_grey)] {
            for (&x, &p) in b.images().iter().zip(g.images()) {
                assert!(x == 0.0 || x == 1.0);
                if p == 0.0 {
                    assert_eq!(x, 0.0);
                }
                if p == 1.0 {
                    assert_eq!(x, 1.0);
                }
            }
        }
    }

    #[test]
    fn mat_and_amat_forms_load_identically() {
        let dir = tempfile::tempdir().unwrap();
        rebuilt_dir(dir.path());
        let amat = load_omniglot_rebuilt_with(dir.path(), &tiny()).unwrap();
        check_synthetic(&amat);
        let names = amat.alphabets.as_ref().unwrap();
        assert_eq!((names.len(), names[3].as_str()), (50, "alphabet_3"));
        for big in [false, true] {
            for compressed in [false, true] {
                for storage in [Storage::F64, Storage::F32] {
                    let p = dir.path().join("chardata.mat");
                    std::fs::write(&p, chardata(big, compressed, storage)).unwrap();
                    let m = load_omniglot_mat_with(&p, &tiny()).unwrap();
                    check_synthetic(&m);
                    assert_eq!(m.alphabets, None);
                    let m = OmniglotSplits {
                        alphabets: amat.alphabets.clone(),
                        ..m
                    };
                    assert_eq!(m, amat, "big {big} compressed {compressed} {storage:?}");
                }
            }
        }
    }

    /// `chardata.mat`'s layout written by scipy (testdata/make_mat_fixtures.py): 4 training
    /// and 3 test images.
    #[test]
    fn scipy_written_chardata_layout_is_transposed_to_row_major() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/testdata/scipy_chardata_zlib.mat");
        let protocol = OmniglotProtocol {
            n_valid: 1,
            train_size: Some(4),
            test_size: Some(3),
            eval_seed: 1,
        };
        let s = load_omniglot_mat_with(&p, &protocol).unwrap();
        for (d, first) in [(&s.train_grey, 0), (&s.valid_grey, 3), (&s.test_grey, 4)] {
            for k in 0..d.n() {
                for px in 0..784 {
                    assert_eq!(d.row(k)[px], grey(first + k, px / 28, px % 28));
                }
            }
        }
        assert_eq!(s.train_labels, vec![0, 7, 14]);
        assert_eq!(s.valid_labels, vec![21]);
        assert_eq!(s.test_labels, vec![28, 35, 42]);
        // The paper's protocol needs 24 345 training images.
        let e = load_omniglot_mat(&p).unwrap_err();
        assert!(
            matches!(&e, DataError::WrongShape { name, expected_rows: Some(784), expected_cols: Some(24_345), rows: 784, cols: 4, .. } if name == "data"),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .contains("`data` is 784×4, expected 784×24345"),
            "{e}"
        );
    }

    fn mat_with(edit: impl Fn(&MatWriter, &mut Vec<Var>)) -> Vec<u8> {
        let mut w = MatWriter::new(false);
        let mut vars = vec![
            w.numeric(
                "data",
                CLASS_DOUBLE,
                Storage::F64,
                784,
                N_TRAIN,
                &chardata_block(0, N_TRAIN),
            ),
            w.numeric(
                "testdata",
                CLASS_DOUBLE,
                Storage::F64,
                784,
                N_TEST,
                &chardata_block(N_TRAIN, N_TEST),
            ),
            w.numeric(
                "target",
                CLASS_DOUBLE,
                Storage::F64,
                50,
                N_TRAIN,
                &one_hot_block(0, N_TRAIN),
            ),
            w.numeric(
                "testtarget",
                CLASS_DOUBLE,
                Storage::F64,
                50,
                N_TEST,
                &one_hot_block(N_TRAIN, N_TEST),
            ),
        ];
        edit(&w, &mut vars);
        for v in &vars {
            w.add(v, true);
        }
        w.buf
    }

    #[test]
    fn mat_protocol_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("chardata.mat");
        let load = |bytes: Vec<u8>| {
            std::fs::write(&p, bytes).unwrap();
            load_omniglot_mat_with(&p, &tiny())
        };
        let any = OmniglotProtocol {
            train_size: None,
            test_size: None,
            ..tiny()
        };
        // Missing key.
        let e = load(mat_with(|_, v| {
            v.remove(3);
        }))
        .unwrap_err();
        assert!(
            matches!(&e, DataError::MissingKey { name, .. } if name == "testtarget"),
            "{e:?}"
        );
        // 783 pixels per image.
        let e = load(mat_with(|w, v| {
            v[1] = w.numeric("testdata", CLASS_DOUBLE, Storage::F64, 783, 1, &[0.0; 783]);
        }))
        .unwrap_err();
        assert!(
            matches!(&e, DataError::WrongShape { name, rows: 783, cols: 1, expected_rows: Some(784), expected_cols: Some(3), .. } if name == "testdata"),
            "{e:?}"
        );
        // Targets with 49 alphabets, and with a column count that differs from the images.
        let e = load(mat_with(|w, v| {
            v[2] = w.numeric(
                "target",
                CLASS_DOUBLE,
                Storage::F64,
                49,
                N_TRAIN,
                &vec![0.0; 49 * N_TRAIN],
            );
        }))
        .unwrap_err();
        assert!(
            e.to_string().contains("`target` is 49×7, expected 50×7"),
            "{e}"
        );
        let e = load(mat_with(|w, v| {
            v[3] = w.numeric(
                "testtarget",
                CLASS_DOUBLE,
                Storage::F64,
                50,
                2,
                &one_hot_block(0, 2),
            );
        }))
        .unwrap_err();
        assert!(
            matches!(
                &e,
                DataError::WrongShape {
                    cols: 2,
                    expected_cols: Some(3),
                    ..
                }
            ),
            "{e:?}"
        );
        // Grey level out of range: image 2, stored pixel 10.
        let e = load(mat_with(|w, v| {
            let mut d = chardata_block(0, N_TRAIN);
            d[784 + 9] = 1.5;
            v[0] = w.numeric("data", CLASS_DOUBLE, Storage::F64, 784, N_TRAIN, &d);
        }))
        .unwrap_err();
        assert!(
            matches!(&e, DataError::OutOfRange { line: 2, column: 10, value, .. } if *value == 1.5),
            "{e:?}"
        );
        let e = load(mat_with(|w, v| {
            let mut d = chardata_block(N_TRAIN, N_TEST);
            d[5] = f64::NAN;
            v[1] = w.numeric("testdata", CLASS_DOUBLE, Storage::F64, 784, N_TEST, &d);
        }))
        .unwrap_err();
        assert!(
            matches!(
                &e,
                DataError::OutOfRange {
                    line: 1,
                    column: 6,
                    ..
                }
            ),
            "{e:?}"
        );
        // Labels that are not one-hot.
        for (row, value, needle) in [
            (10, 1.0, "1 in rows"),
            (10, 0.5, "value 0.5 in row 11"),
            (usize::MAX, 0.0, "no 1"),
        ] {
            let e = load(mat_with(|w, v| {
                let mut t = one_hot_block(0, N_TRAIN);
                let col = 3;
                if row == usize::MAX {
                    t[alphabet(col) + 50 * col] = 0.0;
                } else {
                    t[row + 50 * col] = value;
                }
                v[2] = w.numeric("target", CLASS_DOUBLE, Storage::F64, 50, N_TRAIN, &t);
            }))
            .unwrap_err();
            assert!(matches!(&e, DataError::BadLabel { index: 4, .. }), "{e:?}");
            assert!(
                e.to_string().contains(needle) && e.to_string().contains("`target`"),
                "{e}"
            );
        }
        // Holding out every training image.
        std::fs::write(&p, mat_with(|_, _| {})).unwrap();
        let all = OmniglotProtocol {
            n_valid: N_TRAIN,
            ..any
        };
        let e = load_omniglot_mat_with(&p, &all).unwrap_err();
        assert!(matches!(e, DataError::InvalidArgument(_)), "{e:?}");
        assert!(load_omniglot_mat_with(&p, &any).is_ok());
        // Not a MAT-file, and a truncated one.
        let e = load(b"0 1 0\n".repeat(50)).unwrap_err();
        assert!(matches!(e, DataError::NotMat { .. }), "{e:?}");
        let bytes = mat_with(|_, _| {});
        let e = load(bytes[..bytes.len() - 10].to_vec()).unwrap_err();
        assert!(matches!(e, DataError::MatTruncated { .. }), "{e:?}");
    }

    #[test]
    fn rebuilt_file_errors() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        rebuilt_dir(d);
        let load = || load_omniglot_rebuilt_with(d, &tiny());
        let labels = d.join("omniglot_train_labels.txt");
        let good = std::fs::read_to_string(&labels).unwrap();
        for (text, check) in [
            (
                "0\n1\n2\n3\n4\n50\n6\n",
                "label 6: alphabet index 50 is not in 0..50",
            ),
            ("0\n1\n2\n3\n4\n-1\n6\n", "label 6: alphabet index -1"),
            ("0\n1\nx\n3\n4\n5\n6\n", "3: value 1 is not a number"),
            (
                "0\n1\n2 3\n3\n4\n5\n6\n",
                "3: expected 1 values per line, found 2",
            ),
            (
                "0\n1\n\n3\n4\n5\n6\n",
                "3: expected 1 values per line, found 0",
            ),
            (
                "0\n1\n2\n3\n4\n5\n",
                "expected 7 labels (one per image), found 6",
            ),
        ] {
            std::fs::write(&labels, text).unwrap();
            let e = load().unwrap_err();
            assert!(e.to_string().contains(check), "{text:?}: {e}");
            assert!(e.to_string().contains("omniglot_train_labels.txt"), "{e}");
        }
        // Trailing blank lines and CRLF are fine.
        std::fs::write(&labels, good.replace('\n', "\r\n") + "\n\n").unwrap();
        assert_eq!(
            load().unwrap().train_labels,
            (0..5).map(alphabet).collect::<Vec<_>>()
        );
        std::fs::remove_file(&labels).unwrap();
        assert!(matches!(load(), Err(DataError::Missing { .. })));
        std::fs::write(&labels, good).unwrap();
        // Alphabets.
        let alphabets = d.join("alphabets.txt");
        std::fs::write(&alphabets, "a\nb\n").unwrap();
        assert!(matches!(
            load(),
            Err(DataError::WrongCount {
                expected: 50,
                found: 2,
                ..
            })
        ));
        // The message counts names, not images (regression: it said "expected 50 images").
        let msg = load().unwrap_err().to_string();
        assert!(
            msg.ends_with("alphabets.txt: expected 50 alphabet names, found 2"),
            "{msg}"
        );
        let names: String = (0..51)
            .map(|a| {
                if a == 7 {
                    "\n".into()
                } else {
                    format!("n{a}\n")
                }
            })
            .collect();
        std::fs::write(&alphabets, names).unwrap();
        assert!(matches!(load(), Err(DataError::BadLabel { index: 8, .. })));
        rebuilt_dir(d);
        // Grey levels outside [0, 1] and wrong sizes.
        let grey = d.join("omniglot_test_grey.amat");
        let bad = amat_block(N_TRAIN, N_TEST).replacen("0.0625", "1.0625", 1);
        std::fs::write(&grey, bad).unwrap();
        assert!(
            matches!(load(), Err(DataError::OutOfRange { .. })),
            "{:?}",
            load()
        );
        std::fs::write(&grey, amat_block(N_TRAIN, 2)).unwrap();
        assert!(matches!(
            load(),
            Err(DataError::WrongCount {
                expected: 3,
                found: 2,
                ..
            })
        ));
        std::fs::remove_file(&grey).unwrap();
        let e = load().unwrap_err();
        assert!(e.to_string().contains("omniglot_test_grey.amat.gz"), "{e}");
    }

    #[test]
    fn binarisation_is_bernoulli_and_reproducible() {
        let n = 100_000;
        let grey: Vec<f32> = (0..n).map(|i| [0.0, 1.0, 0.3, 0.9][i % 4]).collect();
        let mut out = vec![0.5f32; n];
        binarize_into(&grey, &mut root_rng(5), &mut out);
        let mut inplace = grey.clone();
        binarize_in_place(&mut inplace, &mut root_rng(5));
        assert_eq!(out, inplace);
        let mut other = vec![0.0f32; n];
        binarize_into(&grey, &mut root_rng(6), &mut other);
        assert_ne!(out, other);
        for (k, p) in [0.0f64, 1.0, 0.3, 0.9].into_iter().enumerate() {
            let xs: Vec<f32> = out.iter().skip(k).step_by(4).copied().collect();
            assert!(xs.iter().all(|&x| x == 0.0 || x == 1.0));
            let mean = xs.iter().map(|&x| x as f64).sum::<f64>() / xs.len() as f64;
            let se = (p * (1.0 - p) / xs.len() as f64).sqrt();
            assert!((mean - p).abs() <= 5.0 * se + 1e-12, "p {p}: mean {mean}");
        }
        // Odd lengths and lengths that are not a multiple of the internal chunk.
        for len in [1, 3, 511, 513, 1025] {
            let mut a = vec![0.0f32; len];
            binarize_into(&grey[..len], &mut root_rng(9), &mut a);
            let mut b = grey[..len].to_vec();
            binarize_in_place(&mut b, &mut root_rng(9));
            assert_eq!(a, b, "len {len}");
        }
        // A minibatch: gathered then binarised in the matrix's storage order.
        let d = Dataset::from_row_major(grey[..40].to_vec(), 4).unwrap();
        let mut x = Mat::zeros(0, 0);
        d.gather_binarized_into(&[2, 0, 9], &mut root_rng(1), &mut x);
        let mut want = d.gather(&[2, 0, 9]);
        binarize_in_place(want.as_mut_slice(), &mut root_rng(1));
        assert_eq!(x, want);
        assert_eq!(
            x.column(0).iter().copied().collect::<Vec<_>>(),
            vec![0.0; 3]
        );
        assert_eq!(
            x.column(1).iter().copied().collect::<Vec<_>>(),
            vec![1.0; 3]
        );
    }

    #[test]
    #[should_panic(expected = "3 grey levels but 2 outputs")]
    fn binarize_into_checks_lengths() {
        binarize_into(&[0.5; 3], &mut root_rng(0), &mut [0.0; 2]);
    }

    #[test]
    fn bundled_dir_is_in_the_workspace() {
        assert!(omniglot_rebuilt_dir().ends_with("data/omniglot_rebuilt"));
        assert_eq!(OmniglotProtocol::default(), OmniglotProtocol::PAPER);
    }

    /// A real `chardata.mat`, which is not in the repository:
    /// `GUMBOLT_CHARDATA_MAT=/path/to/chardata.mat cargo test --release -p gumbolt-models
    /// chardata_mat -- --ignored --nocapture`.
    #[test]
    #[ignore = "needs a chardata.mat named by GUMBOLT_CHARDATA_MAT"]
    fn chardata_mat_from_env() {
        let Some(p) = std::env::var_os("GUMBOLT_CHARDATA_MAT") else {
            println!("GUMBOLT_CHARDATA_MAT is not set; nothing to check");
            return;
        };
        let t0 = std::time::Instant::now();
        let s = load_omniglot_mat(&p).unwrap();
        println!("loaded {} in {:?}", Path::new(&p).display(), t0.elapsed());
        assert_eq!(
            (s.train_grey.n(), s.valid.n(), s.test.n()),
            (23_000, 1_345, 8_070)
        );
        for (name, d) in [
            ("train", &s.train_grey),
            ("valid", &s.valid_grey),
            ("test", &s.test_grey),
        ] {
            println!("{name}: mean grey level {:.6}", d.mean());
        }
        println!(
            "binarised valid / test means {:.6} / {:.6}",
            s.valid.mean(),
            s.test.mean()
        );
        if std::env::var_os("GUMBOLT_CHARDATA_IS_REBUILT").is_some() {
            // The file was made from the vendored rebuilt data: both loaders must agree.
            let r = load_bundled_omniglot().unwrap();
            assert_eq!(
                OmniglotSplits {
                    alphabets: r.alphabets.clone(),
                    ..s
                },
                r
            );
            println!("identical to the bundled rebuilt OMNIGLOT");
        }
    }

    /// The vendored rebuilt OMNIGLOT: counts, means and labels (data/README.md). Time it with
    /// `cargo test --release -p gumbolt-models bundled_omniglot -- --nocapture`.
    #[test]
    fn bundled_omniglot_loads_with_known_statistics() {
        let t0 = std::time::Instant::now();
        let s = load_bundled_omniglot().unwrap();
        println!("loaded bundled OMNIGLOT (rebuilt) in {:?}", t0.elapsed());
        assert_eq!(
            (s.train_grey.n(), s.valid_grey.n(), s.test_grey.n()),
            (23_000, 1_345, 8_070)
        );
        assert_eq!((s.valid.n(), s.test.n()), (1_345, 8_070));
        assert_eq!(
            (
                s.train_labels.len(),
                s.valid_labels.len(),
                s.test_labels.len()
            ),
            (23_000, 1_345, 8_070)
        );
        for (d, mean) in [
            (&s.train_grey, 0.083858),
            (&s.valid_grey, 0.068609),
            (&s.test_grey, 0.082026),
        ] {
            assert_eq!(d.dim(), 784);
            assert!(
                (d.mean() - mean).abs() < 5e-6,
                "mean {} vs {mean}",
                d.mean()
            );
        }
        // One-off binarisations: binary, and mean close to the grey mean (≥ 1M pixels each).
        for (b, g) in [(&s.valid, &s.valid_grey), (&s.test, &s.test_grey)] {
            assert!(b.images().iter().all(|&x| x == 0.0 || x == 1.0));
            assert!(
                (b.mean() - g.mean()).abs() < 2e-3,
                "{} vs {}",
                b.mean(),
                g.mean()
            );
        }
        let names = s.alphabets.as_ref().unwrap();
        assert_eq!(names.len(), 50);
        assert_eq!(
            (names[0].as_str(), names[49].as_str()),
            ("Alphabet_of_the_Magi", "ULOG")
        );
        // The validation images are the drawings of the last three alphabets.
        assert!(s.valid_labels.iter().all(|&l| (47..50).contains(&l)));
        let mut seen = [false; 50];
        for &l in s
            .train_labels
            .iter()
            .chain(&s.valid_labels)
            .chain(&s.test_labels)
        {
            seen[l] = true;
        }
        assert!(seen.iter().all(|&b| b));
        // The fixed binarisation shipped alongside.
        let f = load_omniglot_rebuilt_fixed(omniglot_rebuilt_dir()).unwrap();
        assert_eq!(
            (f.train.n(), f.valid.n(), f.test.n()),
            (23_000, 1_345, 8_070)
        );
        assert!(
            (f.valid.mean() - 0.068516).abs() < 5e-6,
            "{}",
            f.valid.mean()
        );
        assert!((f.test.mean() - 0.082022).abs() < 5e-6, "{}", f.test.mean());
    }
}

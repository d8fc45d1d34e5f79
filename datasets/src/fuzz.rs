//! Entry points of the fuzz targets of this crate's parsers (`fuzz/` at the workspace root,
//! cargo-fuzz on nightly): the `.amat` text parser, the rebuilt OMNIGLOT text files, and the
//! MATLAB v5 reader with the `chardata.mat` checks (the checkpoint decoder's target is in
//! `gumbolt-models`). Each takes
//! arbitrary bytes, must never panic, and checks what must hold of a successful parse. The
//! stable tests below run each on its seed corpus (`fuzz/seeds/<target>/`) and on thousands of
//! deterministic mutations (`gumbolt_priors::fuzz::Mutator`), so that CI exercises the
//! parsers without nightly. Not part of the stable API.

use std::path::Path;

use super::matfile::{mat_variables_from_bytes, read_mat_matrices_from_bytes};
use super::omniglot::{
    OMNIGLOT_MAT_VARIABLES, OmniglotProtocol, omniglot_from_mat, parse_alphabets, parse_labels,
};
use super::{AmatSpec, Dataset, MNIST_DIM, PixelKind, amat_from_bytes};

/// Checks a parsed dataset against its spec.
fn check_dataset(d: &Dataset, spec: &AmatSpec) {
    assert!(d.n() >= 1, "a parsed file holds an image");
    assert_eq!(d.dim(), spec.dim);
    assert_eq!(d.images().len(), d.n() * d.dim());
    if let Some(n) = spec.expected_rows {
        assert_eq!(d.n(), n);
    }
    for &v in d.images() {
        match spec.kind {
            PixelKind::Binary => assert!(v.to_bits() == 0 || v == 1.0, "{v}"),
            PixelKind::Grey => {
                assert!((0.0..=1.0).contains(&v) && v.to_bits() != (-0.0f32).to_bits())
            }
        }
    }
}

/// The `amat` target: [`amat_from_bytes`] with MNIST's spec (784 binary values per line), grey
/// levels, and small widths, under a plain and a `.gz` name.
pub fn amat(data: &[u8]) {
    let specs = [
        (MNIST_DIM, PixelKind::Binary, None),
        (MNIST_DIM, PixelKind::Grey, None),
        (3, PixelKind::Binary, None),
        (3, PixelKind::Grey, Some(2)),
        (1, PixelKind::Binary, None),
    ];
    for (dim, kind, expected_rows) in specs {
        let spec = AmatSpec {
            dim,
            kind,
            expected_rows,
        };
        for name in ["fuzz.amat", "fuzz.amat.gz"] {
            match amat_from_bytes(Path::new(name), data, &spec) {
                Ok(d) => check_dataset(&d, &spec),
                Err(e) => assert!(e.to_string().contains(name), "{e}"),
            }
        }
    }
}

/// The `omniglot_rebuilt` target: the input split at NUL bytes into the contents of
/// `alphabets.txt`, of a grey-level `.amat` file and of a label file, each parsed as
/// [`load_omniglot_rebuilt`](super::load_omniglot_rebuilt) does.
pub fn omniglot_rebuilt(data: &[u8]) {
    let mut parts = data.splitn(3, |&b| b == 0);
    let (alphabets, grey, labels) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let named = |e: &super::DataError, name: &str| {
        assert!(e.to_string().contains(name), "{e}");
    };
    let a = Path::new("alphabets.txt");
    match parse_alphabets(a, alphabets) {
        Ok(names) => {
            assert_eq!(names.len(), super::OMNIGLOT_N_ALPHABETS);
            assert!(names.iter().all(|n| !n.is_empty() && n.trim() == n));
        }
        Err(e) => named(&e, "alphabets.txt"),
    }
    let mut images = None;
    for dim in [MNIST_DIM, 4] {
        let spec = AmatSpec {
            dim,
            kind: PixelKind::Grey,
            expected_rows: None,
        };
        let g = Path::new("omniglot_test_grey.amat");
        match amat_from_bytes(g, grey, &spec) {
            Ok(d) => {
                check_dataset(&d, &spec);
                images.get_or_insert(d.n());
            }
            Err(e) => named(&e, "omniglot_test_grey.amat"),
        }
    }
    let lines = String::from_utf8_lossy(labels)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count();
    let l = Path::new("omniglot_test_labels.txt");
    for (classes, expected) in [(50, images.unwrap_or(lines)), (3, lines)] {
        match parse_labels(l, labels, classes, expected) {
            Ok(v) => {
                assert_eq!(v.len(), expected);
                assert!(v.iter().all(|&c| c < classes));
            }
            Err(e) => named(&e, "omniglot_test_labels.txt"),
        }
    }
}

/// The `matfile` target: the variables of a MAT-file, the `chardata.mat` matrices and the
/// OMNIGLOT splits made of them (any split sizes, one validation image), and the matrices of
/// the generic test fixtures.
pub fn matfile(data: &[u8]) {
    let path = Path::new("fuzz.mat");
    let named = |e: &super::DataError| assert!(e.to_string().contains("fuzz.mat"), "{e}");
    match mat_variables_from_bytes(path, data) {
        Ok(vars) => {
            for v in vars {
                assert!(v.offset >= 128 && v.offset < data.len() as u64);
            }
        }
        Err(e) => named(&e),
    }
    match read_mat_matrices_from_bytes(path, data, &OMNIGLOT_MAT_VARIABLES) {
        Ok(m) => {
            for (m, name) in m.iter().zip(OMNIGLOT_MAT_VARIABLES) {
                assert_eq!(m.name, name);
                assert_eq!(m.data.len(), m.rows * m.cols);
            }
            let protocol = OmniglotProtocol {
                n_valid: 1,
                train_size: None,
                test_size: None,
                eval_seed: 1,
            };
            match omniglot_from_mat(path, m, &protocol) {
                Ok(s) => {
                    assert_eq!(s.valid.n(), 1);
                    assert_eq!(s.train_labels.len(), s.train_grey.n());
                    assert_eq!(s.test_labels.len(), s.test.n());
                    assert!(s.test_grey.images().iter().all(|v| (0.0..=1.0).contains(v)));
                }
                Err(e) => named(&e),
            }
        }
        Err(e) => named(&e),
    }
    match read_mat_matrices_from_bytes(path, data, &["a", "single", "bytes"]) {
        Ok(m) => assert!(m.iter().all(|m| m.data.len() == m.rows * m.cols)),
        Err(e) => named(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gumbolt_priors::fuzz::run_seeds_and_mutations;
    use std::path::PathBuf;

    /// `fuzz/seeds/<target>` at the workspace root.
    fn seeds(target: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fuzz/seeds")
            .join(target)
    }

    #[test]
    fn amat_seeds_and_mutations_never_panic() {
        run_seeds_and_mutations(&seeds("amat"), amat, 3000, 0x616d6174);
    }

    #[test]
    fn omniglot_rebuilt_seeds_and_mutations_never_panic() {
        run_seeds_and_mutations(
            &seeds("omniglot_rebuilt"),
            omniglot_rebuilt,
            3000,
            0x6f6d6e69,
        );
    }

    #[test]
    fn matfile_seeds_and_mutations_never_panic() {
        run_seeds_and_mutations(&seeds("matfile"), matfile, 5000, 0x6d617466);
    }

    /// The seeds reach the deep code: a loadable `chardata.mat` and rebuilt OMNIGLOT files
    /// (otherwise the fuzzers rarely get there).
    #[test]
    fn seeds_reach_the_success_paths() {
        let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds");
        for f in ["chardata_le.mat", "chardata_be_zlib.mat"] {
            let p = seeds.join("matfile").join(f);
            let m = read_mat_matrices_from_bytes(
                &p,
                &std::fs::read(&p).unwrap(),
                &OMNIGLOT_MAT_VARIABLES,
            )
            .unwrap();
            let protocol = OmniglotProtocol {
                n_valid: 1,
                train_size: None,
                test_size: None,
                eval_seed: 1,
            };
            let s = omniglot_from_mat(&p, m, &protocol).unwrap();
            assert_eq!((s.train_grey.n(), s.valid.n(), s.test.n()), (1, 1, 1));
        }
        let p = seeds.join("omniglot_rebuilt/bundled_head");
        let bytes = std::fs::read(&p).unwrap();
        let parts: Vec<&[u8]> = bytes.splitn(3, |&b| b == 0).collect();
        assert_eq!(parse_alphabets(&p, parts[0]).unwrap().len(), 50);
        assert_eq!(parse_labels(&p, parts[2], 50, 2).unwrap().len(), 2);
    }
}

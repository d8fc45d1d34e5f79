//! Fuzzing support: the entry point of the `rbm_json` fuzz target (`fuzz/` at the workspace
//! root, cargo-fuzz on nightly), and [`Mutator`], the deterministic byte mutator with which the
//! stable tests of this crate and of `gumbolt-models` run every fuzz target's entry point on its
//! seeds and on thousands of mutations of them, so that CI exercises the parsers without
//! nightly. Not part of the stable API.

use crate::Rbm;

/// The `rbm_json` fuzz target: [`Rbm::from_json_str`] on arbitrary bytes (invalid UTF-8
/// replaced). It must never panic; a successful parse must give a valid RBM that survives a
/// round trip through [`Rbm::to_json_string`], and an error must name its origin.
pub fn rbm_json(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match Rbm::from_json_str(&text) {
        Ok(rbm) => {
            assert!(rbm.n1() >= 1 && rbm.n2() >= 1);
            assert!(rbm.a().iter().chain(rbm.b()).all(|v| v.is_finite()));
            assert!(rbm.w().iter().all(|v| v.is_finite()));
            let back = rbm.to_json_string().expect("finite parameters serialise");
            assert_eq!(Rbm::from_json_str(&back).expect("own output parses"), rbm);
        }
        Err(e) => assert!(e.to_string().contains("<string>"), "{e}"),
    }
}

/// A deterministic mutator of byte strings (xorshift64* generator): bit flips, byte
/// replacements with interesting values, insertions, deletions, duplications, truncations,
/// splices of two inputs and ASCII edits (digits, signs, separators) for text formats.
#[derive(Debug, Clone)]
pub struct Mutator {
    state: u64,
}

impl Mutator {
    /// A mutator with a fixed seed (any value; 0 is remapped).
    pub fn new(seed: u64) -> Self {
        Self { state: seed.max(1) }
    }

    /// The next raw 64-bit value.
    pub fn next_u64(&mut self) -> u64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in `0..n` (`n ≥ 1`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// A mutation of `seeds[i]` for a random `i` (1 to 4 stacked edits).
    ///
    /// # Panics
    /// If `seeds` is empty.
    pub fn mutate(&mut self, seeds: &[Vec<u8>]) -> Vec<u8> {
        let mut v = seeds[self.below(seeds.len())].clone();
        for _ in 0..1 + self.below(4) {
            self.edit(&mut v, seeds);
        }
        v
    }

    fn edit(&mut self, v: &mut Vec<u8>, seeds: &[Vec<u8>]) {
        const INTERESTING: [u8; 12] = [
            0, 1, 0x7f, 0x80, 0xff, b'\n', b' ', b'0', b'1', b'-', b'.', b'e',
        ];
        const TEXT: &[u8] = b"0123456789 \t\n\r.,-+eE[]{}\":naif";
        let len = v.len();
        match self.below(10) {
            0 if len > 0 => {
                let i = self.below(len);
                v[i] ^= 1 << self.below(8);
            }
            1 if len > 0 => {
                let i = self.below(len);
                v[i] = INTERESTING[self.below(INTERESTING.len())];
            }
            2 if len > 0 => {
                let i = self.below(len);
                v[i] = TEXT[self.below(TEXT.len())];
            }
            3 => {
                let i = self.below(len + 1);
                let b = if self.below(2) == 0 {
                    TEXT[self.below(TEXT.len())]
                } else {
                    self.next_u64() as u8
                };
                v.insert(i, b);
            }
            4 if len > 0 => {
                let i = self.below(len);
                let n = 1 + self.below((len - i).min(64));
                v.drain(i..i + n);
            }
            5 if len > 0 => {
                let i = self.below(len);
                let n = 1 + self.below((len - i).min(64));
                let chunk = v[i..i + n].to_vec();
                let at = self.below(len + 1);
                v.splice(at..at, chunk);
            }
            6 if len > 0 => v.truncate(self.below(len)),
            7 => {
                let other = &seeds[self.below(seeds.len())];
                let cut = self.below(len + 1);
                let from = self.below(other.len() + 1);
                v.truncate(cut);
                v.extend_from_slice(&other[from..]);
            }
            8 if len >= 4 => {
                // A little-endian word set to an extreme (lengths, counts, dimensions).
                let i = self.below(len - 3);
                let w: u32 = [0, 1, 0x7fff_ffff, 0xffff_ffff, 0x8000_0000, 0x100][self.below(6)];
                v[i..i + 4].copy_from_slice(&w.to_le_bytes());
            }
            _ => {
                let i = self.below(len + 1);
                let n = self.below(8);
                let b = TEXT[self.below(TEXT.len())];
                v.splice(i..i, std::iter::repeat_n(b, n));
            }
        }
    }
}

/// The files of `dir`, sorted by name (the seed corpus of a fuzz target).
///
/// # Panics
/// If `dir` cannot be read or holds no file.
pub fn seed_files(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no seed in {}", dir.display());
    v
}

/// Runs `target` on every seed in `dir` (`fuzz/seeds/<target>` at the workspace root, named by
/// the caller's test) and on `mutations` mutations of them (seed `seed`); a panic names the
/// input that caused it (and writes it to the temporary directory to reproduce it).
///
/// # Panics
/// If `target` panics on an input, or `dir` holds no seed.
pub fn run_seeds_and_mutations(
    dir: &std::path::Path,
    target: fn(&[u8]),
    mutations: usize,
    seed: u64,
) {
    let name = dir.file_name().map_or_else(
        || dir.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let seeds = seed_files(dir);
    let check = |label: &str, input: &[u8]| {
        if std::panic::catch_unwind(|| target(input)).is_err() {
            let path = std::env::temp_dir().join(format!("gumbolt-fuzz-{name}-crash"));
            let _ = std::fs::write(&path, input);
            panic!(
                "fuzz target {name} panicked on {label} ({} bytes, written to {})",
                input.len(),
                path.display()
            );
        }
    };
    for (file, bytes) in &seeds {
        check(&format!("seed {file}"), bytes);
    }
    let inputs: Vec<Vec<u8>> = seeds.into_iter().map(|(_, b)| b).collect();
    let mut m = Mutator::new(seed);
    for i in 0..mutations {
        let input = m.mutate(&inputs);
        check(&format!("mutation {i} (seed {seed})"), &input);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rbm_json_seeds_and_mutations_never_panic() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/rbm_json");
        run_seeds_and_mutations(&dir, rbm_json, 5000, 0x52424d);
    }

    #[test]
    fn mutator_is_deterministic() {
        let seeds = vec![b"{\"a\": [1]}".to_vec(), vec![]];
        let (mut a, mut b) = (Mutator::new(7), Mutator::new(7));
        for _ in 0..100 {
            assert_eq!(a.mutate(&seeds), b.mutate(&seeds));
        }
    }
}

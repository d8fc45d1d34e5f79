//! A versioned, checksummed binary container for training checkpoints.
//!
//! # Format (version 1)
//!
//! All integers are little-endian.
//!
//! | bytes | content |
//! |---|---|
//! | 12 | magic [`MAGIC`] = `\x89GUMBOLT\r\n\x1a\n` (PNG-style: catches text-mode line-ending mangling and truncation to 7 bits) |
//! | 4 | format version `u32` ([`FORMAT_VERSION`]) |
//! | 8 | header length `H` (`u64`) |
//! | 8 | payload length `P` (`u64`) |
//! | H | header: UTF-8 JSON `{"format": "gumbolt-checkpoint", "meta": …, "tensors": [{"name", "dtype", "shape"}, …]}` |
//! | P | payload: the tensors in the order of `tensors`, contiguous, each as raw little-endian `f32` or `u32` |
//! | 4 | CRC-32 (IEEE) of every preceding byte |
//!
//! `meta` is free-form JSON owned by the writer (for training checkpoints: the configuration,
//! iteration counter, RNG states, …; see [`crate::train`]). Tensors are flat buffers with a
//! shape for validation; a tensor of `f32` is stored bit-exactly, so a restored run continues
//! bit-identically.
//!
//! # Atomicity
//!
//! [`write_atomic`] writes to a temporary file in the destination's directory, `fsync`s it,
//! renames it over the destination and `fsync`s the directory. A crash at any point leaves
//! either the previous file or the new one, never a mixture; a torn or truncated file is
//! detected by [`read`] (length and checksum checks) and reported as a typed
//! [`CheckpointError`] naming the file.
//!
//! Not bincode (abandoned), not serde-JSON for the tensors (slow and 2–3x larger): the
//! payload of a `nonlinear` model with its Adam moments is ≈ 7 MB and is written in a few ms.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The 12 magic bytes that open every checkpoint.
pub const MAGIC: [u8; 12] = *b"\x89GUMBOLT\r\n\x1a\n";
/// The format version this crate writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// The `format` field of the JSON header.
pub const FORMAT_NAME: &str = "gumbolt-checkpoint";

const PREFIX_LEN: usize = 12 + 4 + 8 + 8;
const CRC_LEN: usize = 4;

/// Errors of reading, writing and restoring checkpoints; every variant names the file.
#[derive(Debug, Error)]
pub enum CheckpointError {
    /// The file could not be read or written.
    #[error("checkpoint {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The file does not start with the checkpoint magic bytes.
    #[error("{path} is not a gumbolt checkpoint (bad magic bytes)")]
    NotACheckpoint {
        /// The file.
        path: PathBuf,
    },
    /// The file was written by another format version.
    #[error("checkpoint {path} has format version {found}; this build reads version {supported}")]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version in the file.
        found: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// The file is shorter than its own header says (e.g. a copy interrupted mid-way).
    #[error("checkpoint {path} is truncated: {found} bytes, expected {expected}")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// The length the header implies (or the minimum length).
        expected: u64,
        /// The actual length.
        found: u64,
    },
    /// The contents are damaged: checksum mismatch, unreadable header, inconsistent tensor
    /// table.
    #[error("checkpoint {path} is corrupt: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The checkpoint is intact but does not fit what it is restored into (another model
    /// kind or structure, other data, a missing or mis-sized tensor).
    #[error("checkpoint {path} does not match: {reason}")]
    WrongStructure {
        /// The file.
        path: PathBuf,
        /// What does not match.
        reason: String,
    },
}

impl CheckpointError {
    /// A [`CheckpointError::WrongStructure`] for `path`.
    pub fn wrong_structure(path: &Path, reason: impl Into<String>) -> Self {
        CheckpointError::WrongStructure {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }

    fn corrupt(path: &Path, reason: impl Into<String>) -> Self {
        CheckpointError::Corrupt {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }

    fn io(path: &Path, source: io::Error) -> Self {
        CheckpointError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Element type of a stored tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    /// IEEE-754 binary32, little-endian.
    F32,
    /// Unsigned 32-bit integer, little-endian.
    U32,
}

/// The values of a tensor.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    /// `f32` values.
    F32(Vec<f32>),
    /// `u32` values.
    U32(Vec<u32>),
}

impl TensorData {
    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            TensorData::F32(v) => v.len(),
            TensorData::U32(v) => v.len(),
        }
    }

    /// Whether there is no value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        match self {
            TensorData::F32(_) => DType::F32,
            TensorData::U32(_) => DType::U32,
        }
    }
}

/// A named tensor: a flat buffer and its shape (`Π shape = len`).
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Unique name within the checkpoint.
    pub name: String,
    /// Shape, for validation (the data is flat).
    pub shape: Vec<usize>,
    /// The values.
    pub data: TensorData,
}

impl Tensor {
    /// An `f32` tensor of shape `[len]`.
    pub fn f32(name: impl Into<String>, values: Vec<f32>) -> Self {
        let shape = vec![values.len()];
        Self {
            name: name.into(),
            shape,
            data: TensorData::F32(values),
        }
    }

    /// A `u32` tensor of shape `[len]`.
    pub fn u32(name: impl Into<String>, values: Vec<u32>) -> Self {
        let shape = vec![values.len()];
        Self {
            name: name.into(),
            shape,
            data: TensorData::U32(values),
        }
    }

    /// Sets the shape (its product must be the length).
    ///
    /// # Panics
    /// If the product of `shape` is not the number of values (a programming error).
    pub fn with_shape(mut self, shape: Vec<usize>) -> Self {
        assert_eq!(
            shape.iter().product::<usize>(),
            self.data.len(),
            "Tensor `{}`: shape {shape:?} does not match {} values",
            self.name,
            self.data.len()
        );
        self.shape = shape;
        self
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TensorInfo {
    name: String,
    dtype: DType,
    shape: Vec<usize>,
}

#[derive(Serialize)]
struct HeaderRef<'a, M: Serialize> {
    format: &'static str,
    meta: &'a M,
    tensors: Vec<TensorInfo>,
}

#[derive(Deserialize)]
struct HeaderOwned {
    format: String,
    meta: serde_json::Value,
    tensors: Vec<TensorInfo>,
}

/// The encoded bytes of a checkpoint (see the module docs for the layout).
///
/// # Errors
/// [`CheckpointError::Corrupt`] if `meta` cannot be serialised or a tensor's shape does not
/// match its length (`path` is only used for the message).
pub fn encode<M: Serialize>(
    path: &Path,
    meta: &M,
    tensors: &[Tensor],
) -> Result<Vec<u8>, CheckpointError> {
    let mut infos = Vec::with_capacity(tensors.len());
    let mut payload_len = 0usize;
    for t in tensors {
        if t.shape.iter().product::<usize>() != t.data.len() {
            return Err(CheckpointError::corrupt(
                path,
                format!(
                    "tensor `{}` has shape {:?} but {} values",
                    t.name,
                    t.shape,
                    t.data.len()
                ),
            ));
        }
        infos.push(TensorInfo {
            name: t.name.clone(),
            dtype: t.data.dtype(),
            shape: t.shape.clone(),
        });
        payload_len += 4 * t.data.len();
    }
    let header = serde_json::to_vec(&HeaderRef {
        format: FORMAT_NAME,
        meta,
        tensors: infos,
    })
    .map_err(|e| CheckpointError::corrupt(path, format!("cannot serialise the header: {e}")))?;
    let mut out = Vec::with_capacity(PREFIX_LEN + header.len() + payload_len + CRC_LEN);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(&(payload_len as u64).to_le_bytes());
    out.extend_from_slice(&header);
    for t in tensors {
        match &t.data {
            TensorData::F32(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            TensorData::U32(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        }
    }
    let crc = crc32(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// A decoded checkpoint: the writer's `meta` JSON and the tensors, in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct RawCheckpoint {
    /// The file it was read from (for error messages of later restoring steps).
    pub path: PathBuf,
    /// The writer's metadata.
    pub meta: serde_json::Value,
    /// The tensors.
    pub tensors: Vec<Tensor>,
}

impl RawCheckpoint {
    /// Removes and returns the tensor `name`.
    ///
    /// # Errors
    /// [`CheckpointError::WrongStructure`] if there is no such tensor.
    pub fn take(&mut self, name: &str) -> Result<Tensor, CheckpointError> {
        match self.tensors.iter().position(|t| t.name == name) {
            Some(i) => Ok(self.tensors.remove(i)),
            None => Err(CheckpointError::wrong_structure(
                &self.path,
                format!("tensor `{name}` is missing"),
            )),
        }
    }

    /// Removes the tensor `name` if present.
    pub fn take_optional(&mut self, name: &str) -> Option<Tensor> {
        self.tensors
            .iter()
            .position(|t| t.name == name)
            .map(|i| self.tensors.remove(i))
    }

    /// Removes the `f32` tensor `name` and checks that it has `len` values.
    ///
    /// # Errors
    /// [`CheckpointError::WrongStructure`] if it is missing, not `f32`, or of another length.
    pub fn take_f32(&mut self, name: &str, len: usize) -> Result<Vec<f32>, CheckpointError> {
        let t = self.take(name)?;
        match t.data {
            TensorData::F32(v) if v.len() == len => Ok(v),
            TensorData::F32(v) => Err(CheckpointError::wrong_structure(
                &self.path,
                format!(
                    "tensor `{name}` has {} values, the model needs {len}",
                    v.len()
                ),
            )),
            TensorData::U32(_) => Err(CheckpointError::wrong_structure(
                &self.path,
                format!("tensor `{name}` is u32, expected f32"),
            )),
        }
    }

    /// Parses the metadata into `M`.
    ///
    /// # Errors
    /// [`CheckpointError::WrongStructure`] if the metadata does not have the shape of `M`.
    pub fn meta_as<M: for<'de> Deserialize<'de>>(&self) -> Result<M, CheckpointError> {
        M::deserialize(&self.meta).map_err(|e| {
            CheckpointError::wrong_structure(&self.path, format!("unexpected metadata: {e}"))
        })
    }
}

/// Decodes checkpoint bytes, validating magic, version, lengths, checksum and the tensor
/// table, in that order (`path` is used in the errors).
///
/// # Errors
/// [`CheckpointError::NotACheckpoint`], [`CheckpointError::UnsupportedVersion`],
/// [`CheckpointError::Truncated`] or [`CheckpointError::Corrupt`].
pub fn decode(path: &Path, bytes: &[u8]) -> Result<RawCheckpoint, CheckpointError> {
    let found = bytes.len() as u64;
    if bytes.len() < MAGIC.len() {
        return Err(if MAGIC.starts_with(bytes) {
            CheckpointError::Truncated {
                path: path.to_path_buf(),
                expected: PREFIX_LEN as u64,
                found,
            }
        } else {
            CheckpointError::NotACheckpoint {
                path: path.to_path_buf(),
            }
        });
    }
    if bytes[..MAGIC.len()] != MAGIC {
        return Err(CheckpointError::NotACheckpoint {
            path: path.to_path_buf(),
        });
    }
    if bytes.len() < PREFIX_LEN {
        return Err(CheckpointError::Truncated {
            path: path.to_path_buf(),
            expected: PREFIX_LEN as u64,
            found,
        });
    }
    let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().expect("4 bytes"));
    let u64_at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().expect("8 bytes"));
    let version = u32_at(12);
    if version != FORMAT_VERSION {
        return Err(CheckpointError::UnsupportedVersion {
            path: path.to_path_buf(),
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    let (h_len, p_len) = (u64_at(16), u64_at(24));
    let expected = (PREFIX_LEN as u64)
        .checked_add(h_len)
        .and_then(|v| v.checked_add(p_len))
        .and_then(|v| v.checked_add(CRC_LEN as u64))
        .ok_or_else(|| {
            CheckpointError::corrupt(
                path,
                format!(
                    "impossible section lengths (header {h_len} + payload {p_len} bytes exceed \
                     any file size)"
                ),
            )
        })?;
    if found < expected {
        return Err(CheckpointError::Truncated {
            path: path.to_path_buf(),
            expected,
            found,
        });
    }
    if found > expected {
        return Err(CheckpointError::corrupt(
            path,
            format!("{} unexpected trailing bytes", found - expected),
        ));
    }
    let body = expected as usize - CRC_LEN;
    let stored = u32_at(body);
    let actual = crc32(&bytes[..body]);
    if stored != actual {
        return Err(CheckpointError::corrupt(
            path,
            format!("checksum mismatch (stored {stored:08x}, computed {actual:08x})"),
        ));
    }
    let (h_len, p_len) = (h_len as usize, p_len as usize);
    let header: HeaderOwned = serde_json::from_slice(&bytes[PREFIX_LEN..PREFIX_LEN + h_len])
        .map_err(|e| CheckpointError::corrupt(path, format!("unreadable header: {e}")))?;
    if header.format != FORMAT_NAME {
        return Err(CheckpointError::corrupt(
            path,
            format!(
                "header format is {:?}, expected {FORMAT_NAME:?}",
                header.format
            ),
        ));
    }
    let mut payload = &bytes[PREFIX_LEN + h_len..PREFIX_LEN + h_len + p_len];
    let mut tensors = Vec::with_capacity(header.tensors.len());
    for info in header.tensors {
        let n = info
            .shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .filter(|&n| n.checked_mul(4).is_some_and(|b| b <= payload.len()))
            .ok_or_else(|| {
                CheckpointError::corrupt(
                    path,
                    format!(
                        "tensor `{}` of shape {:?} overruns the payload",
                        info.name, info.shape
                    ),
                )
            })?;
        let (raw, rest) = payload.split_at(4 * n);
        payload = rest;
        let words = raw.chunks_exact(4).map(|c| [c[0], c[1], c[2], c[3]]);
        let data = match info.dtype {
            DType::F32 => TensorData::F32(words.map(f32::from_le_bytes).collect()),
            DType::U32 => TensorData::U32(words.map(u32::from_le_bytes).collect()),
        };
        if tensors.iter().any(|t: &Tensor| t.name == info.name) {
            return Err(CheckpointError::corrupt(
                path,
                format!("tensor `{}` appears twice", info.name),
            ));
        }
        tensors.push(Tensor {
            name: info.name,
            shape: info.shape,
            data,
        });
    }
    if !payload.is_empty() {
        return Err(CheckpointError::corrupt(
            path,
            format!("{} payload bytes belong to no tensor", payload.len()),
        ));
    }
    Ok(RawCheckpoint {
        path: path.to_path_buf(),
        meta: header.meta,
        tensors,
    })
}

/// Reads and decodes the checkpoint at `path` (see [`decode`]).
///
/// # Errors
/// [`CheckpointError::Io`] if the file cannot be read, otherwise as [`decode`].
pub fn read(path: impl AsRef<Path>) -> Result<RawCheckpoint, CheckpointError> {
    let path = path.as_ref();
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| CheckpointError::io(path, e))?;
    decode(path, &bytes)
}

/// Writes a checkpoint atomically: encode, write to `.<name>.tmp.<pid>` in the destination's
/// directory, `fsync` it, rename it over `path`, `fsync` the directory (Unix). On error the
/// temporary file is removed and `path` is untouched.
///
/// Returns the number of bytes written.
///
/// # Errors
/// [`CheckpointError::Io`] naming `path` (or [`encode`]'s errors).
pub fn write_atomic<M: Serialize>(
    path: impl AsRef<Path>,
    meta: &M,
    tensors: &[Tensor],
) -> Result<u64, CheckpointError> {
    let path = path.as_ref();
    let bytes = encode(path, meta, tensors)?;
    let file_name = path.file_name().ok_or_else(|| {
        CheckpointError::io(
            path,
            io::Error::new(io::ErrorKind::InvalidInput, "not a file path"),
        )
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(".tmp.{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = (|| -> io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        sync_dir(&dir)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(CheckpointError::io(path, e));
    }
    Ok(bytes.len() as u64)
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

pub(crate) fn crc32(bytes: &[u8]) -> u32 {
    let mut c = flate2::Crc::new();
    c.update(bytes);
    c.sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (serde_json::Value, Vec<Tensor>) {
        let meta = serde_json::json!({"iteration": 7, "name": "x"});
        let tensors = vec![
            Tensor::f32("w", vec![1.0, -0.0, f32::MIN_POSITIVE, 3.5, 1e-40, 7.0])
                .with_shape(vec![2, 3]),
            Tensor::u32("order", vec![3, 0, u32::MAX]),
            Tensor::f32("empty", vec![]),
        ];
        (meta, tensors)
    }

    #[test]
    fn round_trip_is_bit_exact_and_atomic_write_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.ckpt");
        let (meta, tensors) = sample();
        let n = write_atomic(&path, &meta, &tensors).unwrap();
        assert_eq!(n, fs::metadata(&path).unwrap().len());
        let back = read(&path).unwrap();
        assert_eq!(back.meta, meta);
        assert_eq!(back.tensors, tensors);
        // -0.0 and the subnormal survive bit-exactly.
        if let TensorData::F32(v) = &back.tensors[0].data {
            assert_eq!(v[1].to_bits(), (-0.0f32).to_bits());
            assert_eq!(v[4].to_bits(), 1e-40f32.to_bits());
        }
        // Overwrite: the new contents replace the old, no temporary file is left behind.
        let meta2 = serde_json::json!({"iteration": 8});
        write_atomic(&path, &meta2, &tensors[1..]).unwrap();
        assert_eq!(read(&path).unwrap().meta, meta2);
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn failed_write_leaves_previous_checkpoint_intact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.ckpt");
        let (meta, tensors) = sample();
        write_atomic(&path, &meta, &tensors).unwrap();
        // An unencodable tensor fails before anything is written.
        let bad = Tensor {
            name: "bad".into(),
            shape: vec![5],
            data: TensorData::F32(vec![1.0]),
        };
        assert!(matches!(
            write_atomic(&path, &meta, &[bad]),
            Err(CheckpointError::Corrupt { .. })
        ));
        // A rename that cannot happen (destination is a non-empty directory) fails with an
        // I/O error naming the destination and removes its temporary file.
        let blocked = dir.path().join("blocked");
        fs::create_dir(&blocked).unwrap();
        fs::write(blocked.join("x"), b"x").unwrap();
        let e = write_atomic(&blocked, &meta, &tensors).unwrap_err();
        assert!(
            matches!(e, CheckpointError::Io { ref path, .. } if path == &blocked),
            "{e}"
        );
        assert_eq!(read(&path).unwrap().tensors, tensors);
        let left: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.contains(".tmp."))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn damaged_files_give_typed_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.ckpt");
        let (meta, tensors) = sample();
        let good = encode(&path, &meta, &tensors).unwrap();
        let named = |e: &CheckpointError| e.to_string().contains("c.ckpt");

        // Truncated anywhere: inside the magic, the prefix, the header, the payload, the CRC.
        for cut in [0usize, 5, 20, 40, good.len() - 30, good.len() - 1] {
            let e = decode(&path, &good[..cut]).unwrap_err();
            assert!(
                matches!(e, CheckpointError::Truncated { .. }),
                "cut {cut}: {e}"
            );
            assert!(named(&e), "{e}");
        }
        // Not a checkpoint.
        let e = decode(&path, b"{\"json\": true}").unwrap_err();
        assert!(
            matches!(e, CheckpointError::NotACheckpoint { .. }) && named(&e),
            "{e}"
        );
        // Another version.
        let mut v2 = good.clone();
        v2[12..16].copy_from_slice(&2u32.to_le_bytes());
        let e = decode(&path, &v2).unwrap_err();
        assert!(
            matches!(
                e,
                CheckpointError::UnsupportedVersion {
                    found: 2,
                    supported: 1,
                    ..
                }
            ),
            "{e}"
        );
        // Any flipped bit after the version is caught by the checksum (or the length checks).
        for pos in [30usize, 60, good.len() - 20, good.len() - 2] {
            let mut bad = good.clone();
            bad[pos] ^= 0x10;
            let e = decode(&path, &bad).unwrap_err();
            assert!(
                matches!(
                    e,
                    CheckpointError::Corrupt { .. } | CheckpointError::Truncated { .. }
                ),
                "pos {pos}: {e}"
            );
            assert!(named(&e), "{e}");
        }
        // Section lengths whose sum overflows: the message gives them.
        let mut huge = good.clone();
        huge[16..32].copy_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0x80, 0, 0, 0, 0, 0, 0, 0, 0x80]);
        let e = decode(&path, &huge).unwrap_err();
        assert!(
            matches!(e, CheckpointError::Corrupt { ref reason, .. }
                if reason.contains("impossible section lengths (header 9223372036854775808 + payload 9223372036854775808")),
            "{e}"
        );
        // Trailing garbage.
        let mut long = good.clone();
        long.push(0);
        assert!(matches!(
            decode(&path, &long),
            Err(CheckpointError::Corrupt { .. })
        ));
        // A consistent file (valid CRC) whose tensor table overruns the payload.
        let mut liar = good.clone();
        let h_len = u64::from_le_bytes(liar[16..24].try_into().unwrap()) as usize;
        let header = String::from_utf8(liar[32..32 + h_len].to_vec()).unwrap();
        let header = header.replacen("[2,3]", "[9,3]", 1);
        assert_eq!(header.len(), h_len);
        liar[32..32 + h_len].copy_from_slice(header.as_bytes());
        let body = liar.len() - 4;
        let crc = crc32(&liar[..body]);
        liar[body..].copy_from_slice(&crc.to_le_bytes());
        let e = decode(&path, &liar).unwrap_err();
        assert!(
            matches!(e, CheckpointError::Corrupt { ref reason, .. } if reason.contains("overruns")),
            "{e}"
        );
        // A missing file is an I/O error naming it.
        let e = read(dir.path().join("missing.ckpt")).unwrap_err();
        assert!(matches!(e, CheckpointError::Io { .. }) && e.to_string().contains("missing.ckpt"));
    }

    #[test]
    fn typed_accessors() {
        let path = Path::new("t.ckpt");
        let (meta, tensors) = sample();
        let mut raw = decode(path, &encode(path, &meta, &tensors).unwrap()).unwrap();
        assert!(matches!(
            raw.take_f32("w", 5),
            Err(CheckpointError::WrongStructure { .. })
        ));
        assert_eq!(raw.take_f32("empty", 0).unwrap(), Vec::<f32>::new());
        assert!(matches!(
            raw.take_f32("order", 3),
            Err(CheckpointError::WrongStructure { .. })
        ));
        assert!(raw.take("nope").is_err());
        assert!(raw.take_optional("nope").is_none());
        #[derive(Deserialize)]
        struct M {
            iteration: u64,
        }
        assert_eq!(raw.meta_as::<M>().unwrap().iteration, 7);
        assert!(raw.meta_as::<Vec<u8>>().is_err());
    }
}

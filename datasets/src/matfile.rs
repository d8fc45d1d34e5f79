//! A reader for the numeric matrices of MATLAB v5 / v7 `.mat` files (Level 5 MAT-file format).
//!
//! Written for the `chardata.mat` OMNIGLOT file of Burda et al. (see
//! [`load_omniglot_mat`](super::load_omniglot_mat)), but general: it reads what a MATLAB v5
//! writer (MATLAB's `save -v6`/`-v7`, `scipy.io.savemat` with or without
//! `do_compression=True`) produces for **real 2-D numeric matrices**.
//!
//! # What is supported
//!
//! - The 128-byte header of a Level 5 file (version `0x0100`), little- **and** big-endian
//!   (endian indicator `IM` / `MI` at bytes 126–127).
//! - Top-level `miMATRIX` elements (type 14) and zlib-compressed `miCOMPRESSED` elements
//!   (type 15, MAT v7; each holds one `miMATRIX`). The Adler-32 checksum of a compressed
//!   element is verified when its matrix is read.
//! - Array classes `double`, `single`, `int8` … `uint64` (and `logical`, stored as `uint8`).
//!   The storage type of the data may differ from the class — MATLAB stores e.g. an
//!   integer-valued `double` array as `miUINT8` — and any numeric storage type is accepted.
//! - Small data elements (≤ 4 bytes packed into the tag), e.g. names of up to four characters
//!   such as `data`, or a 1×1 `single`.
//!
//! Values are converted to `f32` (`double` and 64-bit integer data are rounded to the nearest
//! `f32`) and returned **column-major**, as MATLAB stores them: element `(r, c)` of an
//! `rows × cols` matrix is `data[r + rows·c]` ([`MatMatrix::get`]).
//!
//! Variables of other kinds (char arrays, cells, structs, objects, sparse or complex matrices,
//! arrays of more than two dimensions) are skipped when they are not requested, and reported as
//! [`DataError::MatUnsupported`] when they are. MAT v4 files and MAT v7.3 (HDF5) files are not
//! Level 5 files and are rejected with [`DataError::NotMat`].
//!
//! # Errors
//!
//! Every error names the file; structural errors also give the byte offset of the top-level
//! element (variable) concerned: [`DataError::NotMat`] (bad header),
//! [`DataError::MatTruncated`] (the file ends inside an element), [`DataError::MatCorrupt`]
//! (inconsistent element sizes or types, corrupt zlib data), [`DataError::MatUnsupported`],
//! [`DataError::MissingKey`] (with the names the file does hold).

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use flate2::read::ZlibDecoder;

use super::{DataError, open_regular_file};

/// Size of the Level 5 header.
const HEADER_LEN: u64 = 128;

// Data types (the `mi*` constants of the MAT-file format).
pub(super) const MI_INT8: u32 = 1;
pub(super) const MI_UINT8: u32 = 2;
pub(super) const MI_INT16: u32 = 3;
pub(super) const MI_UINT16: u32 = 4;
pub(super) const MI_INT32: u32 = 5;
pub(super) const MI_UINT32: u32 = 6;
pub(super) const MI_SINGLE: u32 = 7;
pub(super) const MI_DOUBLE: u32 = 9;
pub(super) const MI_INT64: u32 = 12;
pub(super) const MI_UINT64: u32 = 13;
pub(super) const MI_MATRIX: u32 = 14;
pub(super) const MI_COMPRESSED: u32 = 15;
pub(super) const MI_UTF8: u32 = 16;

// Array flags.
const FLAG_COMPLEX: u32 = 0x0800;
const FLAG_LOGICAL: u32 = 0x0200;

/// The class of a MATLAB array (`mxCLASS`), from its array-flags sub-element.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatClass {
    /// `cell` (1).
    Cell,
    /// `struct` (2).
    Struct,
    /// `object` (3).
    Object,
    /// `char` (4).
    Char,
    /// `sparse` (5).
    Sparse,
    /// `double` (6).
    Double,
    /// `single` (7).
    Single,
    /// `int8` (8).
    Int8,
    /// `uint8` (9); also the class of `logical` arrays.
    Uint8,
    /// `int16` (10).
    Int16,
    /// `uint16` (11).
    Uint16,
    /// `int32` (12).
    Int32,
    /// `uint32` (13).
    Uint32,
    /// `int64` (14).
    Int64,
    /// `uint64` (15).
    Uint64,
    /// Any other class code (function handles, opaque objects, ...).
    Other(u8),
}

impl MatClass {
    fn from_code(code: u8) -> Self {
        match code {
            1 => Self::Cell,
            2 => Self::Struct,
            3 => Self::Object,
            4 => Self::Char,
            5 => Self::Sparse,
            6 => Self::Double,
            7 => Self::Single,
            8 => Self::Int8,
            9 => Self::Uint8,
            10 => Self::Int16,
            11 => Self::Uint16,
            12 => Self::Int32,
            13 => Self::Uint32,
            14 => Self::Int64,
            15 => Self::Uint64,
            c => Self::Other(c),
        }
    }

    /// Whether arrays of this class are plain numeric arrays this reader can return.
    pub fn is_numeric(self) -> bool {
        matches!(
            self,
            Self::Double
                | Self::Single
                | Self::Int8
                | Self::Uint8
                | Self::Int16
                | Self::Uint16
                | Self::Int32
                | Self::Uint32
                | Self::Int64
                | Self::Uint64
        )
    }
}

/// What the header of one variable says (see [`mat_variables`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatVarInfo {
    /// The variable's name.
    pub name: String,
    /// Its class.
    pub class: MatClass,
    /// Its dimensions (MATLAB always stores at least two).
    pub dims: Vec<usize>,
    /// Whether it has an imaginary part.
    pub complex: bool,
    /// Whether it is a `logical` array.
    pub logical: bool,
    /// Whether it is stored in a zlib-compressed (`miCOMPRESSED`) element.
    pub compressed: bool,
    /// Byte offset of its top-level element in the file.
    pub offset: u64,
}

/// A real 2-D numeric matrix read from a MAT-file, values converted to `f32`, column-major.
#[derive(Debug, Clone, PartialEq)]
pub struct MatMatrix {
    /// The variable's name.
    pub name: String,
    /// Its MATLAB class (the values are `f32` whatever the class).
    pub class: MatClass,
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
    /// `rows · cols` values, column-major: `(r, c)` is `data[r + rows·c]`.
    pub data: Vec<f32>,
}

impl MatMatrix {
    /// Element `(r, c)`.
    ///
    /// # Panics
    /// If `r >= rows` or `c >= cols`.
    pub fn get(&self, r: usize, c: usize) -> f32 {
        assert!(r < self.rows && c < self.cols, "({r}, {c}) out of bounds");
        self.data[r + self.rows * c]
    }

    /// Column `c` as a contiguous slice of `rows` values.
    ///
    /// # Panics
    /// If `c >= cols`.
    pub fn column(&self, c: usize) -> &[f32] {
        &self.data[c * self.rows..(c + 1) * self.rows]
    }
}

/// The headers of every variable in a MAT-file, in file order (data is not decoded; compressed
/// elements are only inflated as far as their headers).
///
/// # Errors
/// As described in the [module docs](self).
pub fn mat_variables(path: impl AsRef<Path>) -> Result<Vec<MatVarInfo>, DataError> {
    Ok(scan(path.as_ref(), &[])?.0)
}

/// [`mat_variables`] of a MAT-file held in memory (`path` is only used in error messages).
///
/// # Errors
/// As [`mat_variables`], without the file-system errors.
pub fn mat_variables_from_bytes(path: &Path, bytes: &[u8]) -> Result<Vec<MatVarInfo>, DataError> {
    let len = bytes.len() as u64;
    Ok(scan_reader(path, &mut io::Cursor::new(bytes), len, &[])?.0)
}

/// Reads the named real 2-D numeric matrices, returned in the order of `names`.
///
/// The file is scanned in order and reading stops once every name has been found; if two
/// variables share a name, the first one is used.
///
/// ```no_run
/// use gumbolt_datasets::matfile::read_mat_matrices;
/// let m = read_mat_matrices("chardata.mat", &["data", "target"])?;
/// assert_eq!((m[0].rows, m[0].cols), (784, 24_345));
/// # Ok::<(), gumbolt_datasets::DataError>(())
/// ```
///
/// # Errors
/// [`DataError::MissingKey`] if a name is absent, [`DataError::MatUnsupported`] if a named
/// variable is not a real 2-D numeric matrix, and the errors of the [module docs](self).
pub fn read_mat_matrices(
    path: impl AsRef<Path>,
    names: &[&str],
) -> Result<Vec<MatMatrix>, DataError> {
    let path = path.as_ref();
    let (infos, found) = scan(path, names)?;
    collect_found(path, names, infos, found)
}

/// [`read_mat_matrices`] on a MAT-file held in memory (`path` is only used in error messages).
///
/// # Errors
/// As [`read_mat_matrices`], without the file-system errors.
pub fn read_mat_matrices_from_bytes(
    path: &Path,
    bytes: &[u8],
    names: &[&str],
) -> Result<Vec<MatMatrix>, DataError> {
    let len = bytes.len() as u64;
    let (infos, found) = scan_reader(path, &mut io::Cursor::new(bytes), len, names)?;
    collect_found(path, names, infos, found)
}

/// The requested matrices in the order of `names`, or [`DataError::MissingKey`].
fn collect_found(
    path: &Path,
    names: &[&str],
    infos: Vec<MatVarInfo>,
    found: Vec<Option<MatMatrix>>,
) -> Result<Vec<MatMatrix>, DataError> {
    found
        .into_iter()
        .zip(names)
        .map(|(m, name)| {
            m.ok_or_else(|| DataError::MissingKey {
                path: path.to_path_buf(),
                name: (*name).to_string(),
                available: infos.iter().map(|i| i.name.clone()).collect(),
            })
        })
        .collect()
}

/// Byte order of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endian {
    Little,
    Big,
}

/// A failure inside one element, before the path and offset are attached.
enum Fail {
    /// Inconsistent structure.
    Corrupt(String),
    /// The underlying stream ended early.
    Eof,
    /// Any other read error.
    Io(io::Error),
    /// A requested variable of a kind this reader does not return.
    Unsupported(String, String),
}

impl From<io::Error> for Fail {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            Fail::Eof
        } else {
            Fail::Io(e)
        }
    }
}

/// A data-element tag.
struct Tag {
    ty: u32,
    /// Number of data bytes (excluding padding).
    n: u32,
    /// The payload of a small data element (≤ 4 bytes packed into the tag).
    small: Option<[u8; 4]>,
}

/// A reader bounded by the byte count of its enclosing element.
struct Sub<'a, R: Read> {
    r: &'a mut R,
    left: u64,
    endian: Endian,
}

impl<R: Read> Sub<'_, R> {
    fn bytes(&mut self, buf: &mut [u8]) -> Result<(), Fail> {
        if buf.len() as u64 > self.left {
            return Err(Fail::Corrupt(format!(
                "a sub-element needs {} more bytes than its matrix element holds",
                buf.len() as u64 - self.left
            )));
        }
        self.r.read_exact(buf)?;
        self.left -= buf.len() as u64;
        Ok(())
    }

    fn u32_from(&self, b: [u8; 4]) -> u32 {
        match self.endian {
            Endian::Little => u32::from_le_bytes(b),
            Endian::Big => u32::from_be_bytes(b),
        }
    }

    fn tag(&mut self) -> Result<Tag, Fail> {
        let mut b = [0u8; 8];
        self.bytes(&mut b)?;
        let first = self.u32_from([b[0], b[1], b[2], b[3]]);
        if first >> 16 != 0 {
            // Small data element: byte count in the upper half, type in the lower half.
            let n = first >> 16;
            if n > 4 {
                return Err(Fail::Corrupt(format!(
                    "small data element claims {n} bytes (at most 4 fit)"
                )));
            }
            Ok(Tag {
                ty: first & 0xffff,
                n,
                small: Some([b[4], b[5], b[6], b[7]]),
            })
        } else {
            Ok(Tag {
                ty: first,
                n: self.u32_from([b[4], b[5], b[6], b[7]]),
                small: None,
            })
        }
    }

    /// The payload of a (small or regular) element, with the padding to 8 bytes consumed.
    fn payload(&mut self, tag: &Tag) -> Result<Vec<u8>, Fail> {
        match tag.small {
            Some(b) => Ok(b[..tag.n as usize].to_vec()),
            None => {
                if tag.n as u64 > self.left {
                    return Err(Fail::Corrupt(format!(
                        "a sub-element of {} bytes is larger than the {} bytes left in its \
                         matrix element",
                        tag.n, self.left
                    )));
                }
                // Read through `take` so that a corrupt size cannot allocate more than the
                // stream actually delivers.
                let mut v = Vec::new();
                (&mut *self.r).take(tag.n as u64).read_to_end(&mut v)?;
                if v.len() != tag.n as usize {
                    return Err(Fail::Eof);
                }
                self.left -= tag.n as u64;
                self.pad(tag.n as u64)?;
                Ok(v)
            }
        }
    }

    /// Consumes the padding after `n` data bytes of a regular element.
    fn pad(&mut self, n: u64) -> Result<(), Fail> {
        let pad = (8 - n % 8) % 8;
        // The last sub-element of a matrix may omit its padding at the end of the element.
        let pad = pad.min(self.left);
        let mut b = [0u8; 8];
        self.bytes(&mut b[..pad as usize])
    }
}

/// The header sub-elements of an `miMATRIX`: flags, dimensions, name.
struct Header {
    class: MatClass,
    complex: bool,
    logical: bool,
    dims: Vec<usize>,
    name: String,
}

fn read_header<R: Read>(s: &mut Sub<'_, R>) -> Result<Header, Fail> {
    let tag = s.tag()?;
    if tag.ty != MI_UINT32 || tag.n != 8 || tag.small.is_some() {
        return Err(Fail::Corrupt(format!(
            "expected the array-flags sub-element (type {MI_UINT32}, 8 bytes), found type {} \
             with {} bytes",
            tag.ty, tag.n
        )));
    }
    let p = s.payload(&tag)?;
    let flags = s.u32_from([p[0], p[1], p[2], p[3]]);
    let tag = s.tag()?;
    if tag.ty != MI_INT32 || tag.n % 4 != 0 || tag.n < 8 {
        return Err(Fail::Corrupt(format!(
            "expected the dimensions sub-element (type {MI_INT32}, at least 2 values), found \
             type {} with {} bytes",
            tag.ty, tag.n
        )));
    }
    let p = s.payload(&tag)?;
    let mut dims = Vec::with_capacity(p.len() / 4);
    for c in p.chunks_exact(4) {
        let d = s.u32_from([c[0], c[1], c[2], c[3]]) as i32;
        if d < 0 {
            return Err(Fail::Corrupt(format!("negative dimension {d}")));
        }
        dims.push(d as usize);
    }
    let tag = s.tag()?;
    if !matches!(tag.ty, MI_INT8 | MI_UINT8 | MI_UTF8) {
        return Err(Fail::Corrupt(format!(
            "expected the array-name sub-element (type {MI_INT8}), found type {}",
            tag.ty
        )));
    }
    let name = String::from_utf8_lossy(&s.payload(&tag)?).into_owned();
    Ok(Header {
        class: MatClass::from_code((flags & 0xff) as u8),
        complex: flags & FLAG_COMPLEX != 0,
        logical: flags & FLAG_LOGICAL != 0,
        dims,
        name,
    })
}

/// Bytes per value of a numeric data type, `None` for non-numeric types.
fn value_size(ty: u32) -> Option<usize> {
    match ty {
        MI_INT8 | MI_UINT8 => Some(1),
        MI_INT16 | MI_UINT16 => Some(2),
        MI_INT32 | MI_UINT32 | MI_SINGLE => Some(4),
        MI_DOUBLE | MI_INT64 | MI_UINT64 => Some(8),
        _ => None,
    }
}

/// Appends the values of `src` (whole values of type `ty`) to `out` as `f32`.
fn convert(ty: u32, endian: Endian, src: &[u8], out: &mut Vec<f32>) {
    macro_rules! conv {
        ($t:ty, $n:expr) => {{
            let it = src.chunks_exact($n).map(|c| {
                let b: [u8; $n] = c.try_into().unwrap();
                match endian {
                    Endian::Little => <$t>::from_le_bytes(b),
                    Endian::Big => <$t>::from_be_bytes(b),
                }
            });
            out.extend(it.map(|v| v as f32));
        }};
    }
    match ty {
        MI_INT8 => out.extend(src.iter().map(|&b| b as i8 as f32)),
        MI_UINT8 => out.extend(src.iter().map(|&b| b as f32)),
        MI_INT16 => conv!(i16, 2),
        MI_UINT16 => conv!(u16, 2),
        MI_INT32 => conv!(i32, 4),
        MI_UINT32 => conv!(u32, 4),
        MI_SINGLE => conv!(f32, 4),
        MI_DOUBLE => conv!(f64, 8),
        MI_INT64 => conv!(i64, 8),
        MI_UINT64 => conv!(u64, 8),
        _ => unreachable!("convert called with non-numeric type {ty}"),
    }
}

/// Reads the real-part data sub-element of a matrix of `count` values.
fn read_real<R: Read>(s: &mut Sub<'_, R>, count: usize) -> Result<Vec<f32>, Fail> {
    let tag = s.tag()?;
    let size = value_size(tag.ty).ok_or_else(|| {
        Fail::Corrupt(format!(
            "the data sub-element has type {}, which is not numeric",
            tag.ty
        ))
    })?;
    let n = tag.n as usize;
    if !n.is_multiple_of(size) || n / size != count {
        return Err(Fail::Corrupt(format!(
            "the data sub-element holds {n} bytes of {size}-byte values, but the dimensions \
             need {count} values"
        )));
    }
    // Do not trust a huge declared size blindly: reserve at most 2^20 values up front, then
    // grow with the values actually read (at most doubling). A compressed element's declared
    // size is not bounded by the file's: reserving all of it once 2^20 values had been read let
    // a 2 KB file request a 16 GiB buffer (abort).
    const FIRST_RESERVE: usize = 1 << 20;
    let mut out = Vec::with_capacity(count.min(FIRST_RESERVE));
    if let Some(b) = tag.small {
        convert(tag.ty, s.endian, &b[..n], &mut out);
        return Ok(out);
    }
    if n as u64 > s.left {
        return Err(Fail::Corrupt(format!(
            "the data sub-element of {n} bytes is larger than the {} bytes left in its matrix \
             element",
            s.left
        )));
    }
    let mut buf = vec![0u8; 1 << 16];
    let mut rest = n;
    while rest > 0 {
        let k = rest.min(buf.len());
        s.bytes(&mut buf[..k])?;
        if out.len() + k / size > out.capacity() {
            out.reserve(out.len().min(count - out.len()));
        }
        convert(tag.ty, s.endian, &buf[..k], &mut out);
        rest -= k;
    }
    s.pad(n as u64)?;
    Ok(out)
}

/// Parses one `miMATRIX` body (`s` bounded by its byte count). Returns its header info and,
/// if its name is in `wanted` (and not already found), its data.
fn parse_matrix<R: Read>(
    s: &mut Sub<'_, R>,
    wanted: &[&str],
    found: &[Option<MatMatrix>],
) -> Result<(Header, Option<(usize, MatMatrix)>), Fail> {
    let h = read_header(s)?;
    let slot = wanted
        .iter()
        .enumerate()
        .position(|(i, w)| *w == h.name && found[i].is_none());
    let Some(slot) = slot else {
        return Ok((h, None));
    };
    let unsupported = |reason: String| Err(Fail::Unsupported(h.name.clone(), reason));
    if !h.class.is_numeric() {
        return unsupported(format!(
            "it is a {:?} array; only real numeric matrices can be read",
            h.class
        ));
    }
    if h.complex {
        return unsupported("it is complex; only real matrices can be read".into());
    }
    if h.dims.len() != 2 {
        return unsupported(format!(
            "it has {} dimensions ({:?}); only 2-D matrices can be read",
            h.dims.len(),
            h.dims
        ));
    }
    let (rows, cols) = (h.dims[0], h.dims[1]);
    let count = rows
        .checked_mul(cols)
        .ok_or_else(|| Fail::Corrupt(format!("dimensions {rows}×{cols} overflow")))?;
    let data = read_real(s, count)?;
    let m = MatMatrix {
        name: h.name.clone(),
        class: h.class,
        rows,
        cols,
        data,
    };
    Ok((h, Some((slot, m))))
}

/// Every variable's header seen, and the requested matrices.
type Scanned = (Vec<MatVarInfo>, Vec<Option<MatMatrix>>);

/// Scans the file; returns every variable's header seen and the requested matrices.
fn scan(path: &Path, wanted: &[&str]) -> Result<Scanned, DataError> {
    let len = open_regular_file(path)?.len();
    let mut file = File::open(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    scan_reader(path, &mut file, len, wanted)
}

/// [`scan`] on any seekable reader of `len` bytes (`path` is used in the errors).
fn scan_reader<R: Read + Seek>(
    path: &Path,
    file: &mut R,
    len: u64,
    wanted: &[&str],
) -> Result<Scanned, DataError> {
    let io_err = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let not_mat = |reason: String| DataError::NotMat {
        path: path.to_path_buf(),
        reason,
    };
    let mut head = Vec::with_capacity(HEADER_LEN as usize);
    (&mut *file)
        .take(HEADER_LEN)
        .read_to_end(&mut head)
        .map_err(io_err)?;
    if head.starts_with(b"\x89HDF") {
        return Err(not_mat(
            "it is an HDF5 file (MAT v7.3?); re-save it as a v7 (or v6) MAT-file".into(),
        ));
    }
    if head.len() < HEADER_LEN as usize {
        return Err(not_mat(format!(
            "it has only {} bytes, less than the 128-byte MAT v5 header",
            head.len()
        )));
    }
    let endian = match &head[126..128] {
        b"IM" => Endian::Little,
        b"MI" => Endian::Big,
        other => {
            return Err(not_mat(format!(
                "bytes 126–127 are {other:02x?}, not the endian indicator \"IM\" or \"MI\" of a \
                 MAT v5 file (a MAT v4 file or not a MAT-file?)"
            )));
        }
    };
    let version = match endian {
        Endian::Little => u16::from_le_bytes([head[124], head[125]]),
        Endian::Big => u16::from_be_bytes([head[124], head[125]]),
    };
    if version != 0x0100 {
        let hint = if version == 0x0200 {
            " (MAT v7.3, an HDF5 file; re-save it as a v7 or v6 MAT-file)"
        } else {
            ""
        };
        return Err(not_mat(format!(
            "header version is {version:#06x}, not 0x0100{hint}"
        )));
    }

    let mut infos = Vec::new();
    let mut found: Vec<Option<MatMatrix>> = vec![None; wanted.len()];
    let mut pos = HEADER_LEN;
    while pos < len && (wanted.is_empty() || found.iter().any(Option::is_none)) {
        let truncated = |needed: u64| DataError::MatTruncated {
            path: path.to_path_buf(),
            offset: pos,
            needed,
            available: len - pos,
        };
        if len - pos < 8 {
            return Err(truncated(8));
        }
        file.seek(SeekFrom::Start(pos)).map_err(io_err)?;
        let mut reader = BufReader::with_capacity(1 << 16, &mut *file);
        let mut outer = Sub {
            r: &mut reader,
            left: 8,
            endian,
        };
        let tag = outer.tag().map_err(|_| truncated(8))?;
        if tag.small.is_some() {
            pos += 8;
            continue;
        }
        let end = pos + 8 + tag.n as u64;
        if end > len {
            return Err(truncated(8 + tag.n as u64));
        }
        let corrupt = |reason: String| DataError::MatCorrupt {
            path: path.to_path_buf(),
            offset: pos,
            reason,
        };
        let compressed = tag.ty == MI_COMPRESSED;
        let map_fail = |f: Fail| match f {
            Fail::Corrupt(reason) => corrupt(reason),
            Fail::Eof if compressed => {
                corrupt("the compressed stream ends before the matrix it holds is complete".into())
            }
            Fail::Eof => corrupt("unexpected end of file inside the element".into()),
            Fail::Io(e)
                if compressed
                    && matches!(
                        e.kind(),
                        io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput
                    ) =>
            {
                corrupt(format!("corrupt zlib data: {e}"))
            }
            Fail::Io(source) => DataError::Io {
                path: path.to_path_buf(),
                source,
            },
            Fail::Unsupported(name, reason) => DataError::MatUnsupported {
                path: path.to_path_buf(),
                name,
                reason,
            },
        };
        let parsed = match tag.ty {
            MI_MATRIX => {
                let mut s = Sub {
                    r: &mut reader,
                    left: tag.n as u64,
                    endian,
                };
                parse_matrix(&mut s, wanted, &found).map_err(map_fail)?
            }
            MI_COMPRESSED => {
                let mut dec = ZlibDecoder::new((&mut reader).take(tag.n as u64));
                let (h, m) = {
                    let mut s = Sub {
                        r: &mut dec,
                        left: 8,
                        endian,
                    };
                    let inner = s.tag().map_err(map_fail)?;
                    if inner.ty != MI_MATRIX || inner.small.is_some() {
                        return Err(corrupt(format!(
                            "the compressed element holds data type {}, expected a matrix \
                             ({MI_MATRIX})",
                            inner.ty
                        )));
                    }
                    let mut s = Sub {
                        r: &mut dec,
                        left: inner.n as u64,
                        endian,
                    };
                    parse_matrix(&mut s, wanted, &found).map_err(map_fail)?
                };
                if m.is_some() {
                    // Inflate to the end of the stream so that its checksum is verified.
                    io::copy(&mut dec, &mut io::sink()).map_err(|e| map_fail(e.into()))?;
                }
                (h, m)
            }
            _ => {
                pos = end;
                continue;
            }
        };
        let (h, m) = parsed;
        infos.push(MatVarInfo {
            name: h.name,
            class: h.class,
            dims: h.dims,
            complex: h.complex,
            logical: h.logical,
            compressed,
            offset: pos,
        });
        if let Some((slot, m)) = m {
            found[slot] = Some(m);
        }
        pos = end;
    }
    Ok((infos, found))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;
    use std::path::PathBuf;

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    /// A file with assorted variables; returns its bytes.
    fn assorted(big: bool, compressed: bool) -> Vec<u8> {
        let mut w = MatWriter::new(big);
        let vars = [
            w.numeric(
                "a",
                CLASS_DOUBLE,
                Storage::F64,
                3,
                2,
                &[1.5, 0.25, 7.0, -2.0, 3.0, -0.5],
            ),
            w.chars("note", "skipped"),
            w.numeric(
                "single",
                CLASS_SINGLE,
                Storage::F32,
                2,
                3,
                &[0.125, 0.5, 0.25, 0.625, 0.375, 0.75],
            ),
            w.numeric(
                "bytes",
                CLASS_UINT8,
                Storage::U8,
                2,
                2,
                &[0.0, 7.0, 255.0, 128.0],
            ),
            // MATLAB stores integer-valued doubles in a compact type.
            w.numeric(
                "target",
                CLASS_DOUBLE,
                Storage::U8,
                3,
                2,
                &[0.0, 1.0, 0.0, 1.0, 0.0, 0.0],
            ),
            // 1×1 single: 4 data bytes, a small data element.
            w.numeric("s1", CLASS_SINGLE, Storage::F32, 1, 1, &[0.75]),
            w.numeric("empty", CLASS_DOUBLE, Storage::F64, 0, 0, &[]),
        ];
        for v in &vars {
            w.add(v, compressed);
        }
        w.buf
    }

    fn check_assorted(p: &Path, compressed: bool) {
        let names = ["single", "a", "bytes", "target", "s1", "empty"];
        let m = read_mat_matrices(p, &names).unwrap();
        let got: Vec<&str> = m.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(got, names);
        let [single, a, bytes, target, s1, empty] = &m[..] else {
            unreachable!()
        };
        assert_eq!((a.rows, a.cols, a.class), (3, 2, MatClass::Double));
        assert_eq!(a.data, vec![1.5, 0.25, 7.0, -2.0, 3.0, -0.5]);
        assert_eq!((a.get(0, 1), a.get(2, 0)), (-2.0, 7.0));
        assert_eq!(a.column(1), &[-2.0, 3.0, -0.5]);
        assert_eq!(
            (single.rows, single.cols, single.class),
            (2, 3, MatClass::Single)
        );
        assert_eq!(single.get(1, 2), 0.75);
        assert_eq!(
            (bytes.class, bytes.get(0, 1), bytes.get(1, 1)),
            (MatClass::Uint8, 255.0, 128.0)
        );
        assert_eq!(
            (target.class, target.column(0)),
            (MatClass::Double, &[0.0, 1.0, 0.0][..])
        );
        assert_eq!((s1.rows, s1.cols, s1.data.as_slice()), (1, 1, &[0.75][..]));
        assert_eq!((empty.rows, empty.cols, empty.data.len()), (0, 0, 0));
        let info = mat_variables(p).unwrap();
        let names: Vec<&str> = info.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(
            names,
            ["a", "note", "single", "bytes", "target", "s1", "empty"]
        );
        assert_eq!(info[1].class, MatClass::Char);
        assert_eq!(info[1].dims, vec![1, 7]);
        assert!(info.iter().all(|i| i.compressed == compressed));
        assert_eq!(info[0].offset, 128);
    }

    #[test]
    fn reads_numeric_matrices_in_both_byte_orders_with_and_without_compression() {
        let dir = tempfile::tempdir().unwrap();
        for big in [false, true] {
            for compressed in [false, true] {
                let name = format!("v_{big}_{compressed}.mat");
                let p = write(dir.path(), &name, &assorted(big, compressed));
                check_assorted(&p, compressed);
            }
        }
    }

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/testdata")
            .join(name)
    }

    /// Files written by `scipy.io.savemat` (testdata/make_mat_fixtures.py).
    #[test]
    fn reads_files_written_by_scipy() {
        for (file, compressed) in [("scipy_plain.mat", false), ("scipy_zlib.mat", true)] {
            let p = fixture(file);
            let m = read_mat_matrices(&p, &["a", "single", "bytes", "x", "s1", "lg"]).unwrap();
            assert_eq!((m[0].rows, m[0].cols), (3, 2));
            assert_eq!(m[0].data, vec![1.5, 0.25, 7.0, -2.0, 3.0, -0.5]);
            assert_eq!((m[1].rows, m[1].cols, m[1].class), (2, 3, MatClass::Single));
            // np.arange(1, 7).reshape(2, 3) / 8, stored column-major.
            assert_eq!(m[1].data, vec![0.125, 0.5, 0.25, 0.625, 0.375, 0.75]);
            assert_eq!(m[2].class, MatClass::Uint8);
            assert_eq!(m[2].data, vec![0.0, 7.0, 255.0, 128.0]);
            assert_eq!(m[3].data, vec![42.0]);
            assert_eq!(m[4].data, vec![0.75]);
            assert_eq!(
                (m[5].rows, m[5].cols, m[5].data.as_slice()),
                (1, 3, &[1.0, 0.0, 1.0][..])
            );
            let info = mat_variables(&p).unwrap();
            let names: Vec<&str> = info.iter().map(|i| i.name.as_str()).collect();
            assert_eq!(
                names,
                [
                    "a", "single", "bytes", "x", "s1", "lg", "txt", "cel", "st", "cpx", "nd"
                ]
            );
            let class = |n: &str| info.iter().find(|i| i.name == n).unwrap();
            assert!(class("lg").logical);
            assert_eq!(class("txt").class, MatClass::Char);
            assert_eq!(class("cel").class, MatClass::Cell);
            assert_eq!(class("st").class, MatClass::Struct);
            assert!(class("cpx").complex);
            assert_eq!(class("nd").dims, vec![2, 2, 2]);
            assert!(info.iter().all(|i| i.compressed == compressed));
            for (name, what) in [
                ("txt", "Char"),
                ("cel", "Cell"),
                ("st", "Struct"),
                ("cpx", "complex"),
                ("nd", "3 dimensions"),
            ] {
                let e = read_mat_matrices(&p, &[name]).unwrap_err();
                assert!(
                    matches!(&e, DataError::MatUnsupported { name: n, .. } if n == name),
                    "{e:?}"
                );
                assert!(e.to_string().contains(what), "{e}");
            }
        }
    }

    #[test]
    fn missing_key_lists_the_variables() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "m.mat", &assorted(false, true));
        let e = read_mat_matrices(&p, &["a", "data"]).unwrap_err();
        match &e {
            DataError::MissingKey {
                path,
                name,
                available,
            } => {
                assert_eq!(path, &p);
                assert_eq!(name, "data");
                assert_eq!(available.len(), 7);
            }
            other => panic!("{other:?}"),
        }
        let msg = e.to_string();
        assert!(
            msg.contains("m.mat") && msg.contains("`data`") && msg.contains("`single`"),
            "{msg}"
        );
        // A header-only file holds no variable.
        let p = write(dir.path(), "h.mat", &MatWriter::new(false).buf);
        assert!(mat_variables(&p).unwrap().is_empty());
        let e = read_mat_matrices(&p, &["data"]).unwrap_err();
        assert!(e.to_string().contains("no variable"), "{e}");
    }

    #[test]
    fn bad_headers_are_not_mat_files() {
        let dir = tempfile::tempdir().unwrap();
        let good = assorted(false, false);
        let mut v73 = good.clone();
        v73[124..126].copy_from_slice(&0x0200u16.to_le_bytes());
        let mut v4 = good.clone();
        v4[126..128].copy_from_slice(b"\0\0");
        let mut hdf5 = b"\x89HDF\r\n\x1a\n".to_vec();
        hdf5.resize(1024, 0);
        for (name, bytes, needle) in [
            ("short.mat", good[..100].to_vec(), "128-byte"),
            ("empty.mat", Vec::new(), "only 0 bytes"),
            ("text.mat", b"0 1 1 0\n".repeat(40), "endian indicator"),
            ("v4.mat", v4, "endian indicator"),
            ("v73.mat", v73, "7.3"),
            ("hdf5.mat", hdf5, "HDF5"),
        ] {
            let p = write(dir.path(), name, &bytes);
            let e = read_mat_matrices(&p, &["a"]).unwrap_err();
            assert!(
                matches!(&e, DataError::NotMat { path, .. } if *path == p),
                "{name}: {e:?}"
            );
            let msg = e.to_string();
            assert!(msg.contains(name) && msg.contains(needle), "{msg}");
        }
        let p = dir.path().join("none.mat");
        assert!(matches!(
            read_mat_matrices(&p, &["a"]),
            Err(DataError::Missing { .. })
        ));
        assert!(matches!(
            mat_variables(dir.path()),
            Err(DataError::NotAFile { .. })
        ));
    }

    #[test]
    fn truncated_files_are_reported_not_panicking() {
        let dir = tempfile::tempdir().unwrap();
        for compressed in [false, true] {
            let full = assorted(false, compressed);
            // Inside the first element (variable `a`, at byte 128).
            let p = write(dir.path(), "t.mat", &full[..200]);
            let e = read_mat_matrices(&p, &["a"]).unwrap_err();
            assert!(
                matches!(
                    &e,
                    DataError::MatTruncated {
                        offset: 128,
                        available: 72,
                        ..
                    }
                ),
                "{e:?}"
            );
            assert!(e.to_string().contains("t.mat") && e.to_string().contains("truncated"));
            // Inside a tag.
            let p = write(dir.path(), "t.mat", &full[..132]);
            let e = read_mat_matrices(&p, &["a"]).unwrap_err();
            assert!(
                matches!(
                    &e,
                    DataError::MatTruncated {
                        offset: 128,
                        needed: 8,
                        available: 4,
                        ..
                    }
                ),
                "{e:?}"
            );
            // Every cut: an error (or the variables before the cut), never a panic.
            for cut in 0..full.len() {
                let p = write(dir.path(), "t.mat", &full[..cut]);
                match read_mat_matrices(&p, &["empty"]) {
                    Err(
                        DataError::NotMat { .. }
                        | DataError::MatTruncated { .. }
                        | DataError::MissingKey { .. },
                    ) => {}
                    other => panic!("cut at {cut}: {other:?}"),
                }
            }
        }
    }

    /// Regression (found reviewing the fuzz targets' allocations): a compressed element that
    /// declares a 65536 × 65535 `uint8` matrix (4 GiB of data, 16 GiB as f32) but delivers
    /// 2 MiB used to reserve the whole 16 GiB once 2^20 values had been read, aborting the
    /// process. Now the buffer grows with the data read and the short stream is an error.
    #[test]
    fn declared_sizes_of_compressed_data_are_not_trusted() {
        use flate2::Compression;
        use flate2::write::ZlibEncoder;
        use std::io::Write;
        let le = |v: u32| v.to_le_bytes();
        let (rows, cols) = (65_536u32, 65_535u32);
        let n = rows * cols;
        let mut m = Vec::new();
        m.extend(le(MI_UINT32));
        m.extend(le(8));
        m.extend(le(CLASS_DOUBLE as u32));
        m.extend(le(0));
        m.extend(le(MI_INT32));
        m.extend(le(8));
        m.extend(le(rows));
        m.extend(le(cols));
        m.extend(le(MI_INT8));
        m.extend(le(4));
        m.extend(b"data\0\0\0\0");
        m.extend(le(MI_UINT8));
        m.extend(le(n));
        let mut inner = Vec::new();
        inner.extend(le(MI_MATRIX));
        inner.extend(le(m.len() as u32 + n));
        inner.extend(&m);
        inner.extend(vec![0u8; 2 << 20]);
        let mut z = ZlibEncoder::new(Vec::new(), Compression::best());
        z.write_all(&inner).unwrap();
        let z = z.finish().unwrap();
        let mut file = MatWriter::new(false).buf;
        file.extend(le(MI_COMPRESSED));
        file.extend(le(z.len() as u32));
        file.extend(&z);
        assert!(file.len() < 16 << 10, "{} bytes", file.len());
        let path = Path::new("bomb.mat");
        let e = read_mat_matrices_from_bytes(path, &file, &["data"]).unwrap_err();
        assert!(
            matches!(&e, DataError::MatCorrupt { reason, .. } if reason.contains("ends before")),
            "{e:?}"
        );
        assert!(e.to_string().contains("bomb.mat"), "{e}");
    }

    #[test]
    fn corrupt_elements_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let w = MatWriter::new(false);
        // Data size that does not match the dimensions.
        let mut v = w.numeric("a", CLASS_DOUBLE, Storage::F64, 2, 2, &[1.0, 2.0, 3.0, 4.0]);
        v.dims = vec![2, 3];
        for compressed in [false, true] {
            let mut w = MatWriter::new(false);
            w.add(&v, compressed);
            let p = write(dir.path(), "c.mat", &w.buf);
            let e = read_mat_matrices(&p, &["a"]).unwrap_err();
            assert!(
                matches!(&e, DataError::MatCorrupt { offset: 128, reason, .. } if reason.contains("need 6 values")),
                "{e:?}"
            );
        }
        // A matrix whose first sub-element is not the array flags.
        let mut bytes = w.buf.clone();
        bytes.extend_from_slice(&w.u32b(MI_MATRIX));
        bytes.extend_from_slice(&w.u32b(16));
        bytes.extend(w.element(MI_DOUBLE, &w.f64s(&[1.0])));
        let p = write(dir.path(), "f.mat", &bytes);
        let e = read_mat_matrices(&p, &["a"]).unwrap_err();
        assert!(e.to_string().contains("array-flags"), "{e}");
        // A sub-element larger than its matrix element.
        let mut w2 = MatWriter::new(false);
        w2.add(
            &w.numeric("a", CLASS_DOUBLE, Storage::F64, 1, 2, &[1.0, 2.0]),
            false,
        );
        let n = w2.buf.len();
        let body = (n - 136) as u32;
        w2.buf[132..136].copy_from_slice(&(body - 8).to_le_bytes());
        w2.buf.truncate(n - 8);
        let p = write(dir.path(), "o.mat", &w2.buf);
        let e = read_mat_matrices(&p, &["a"]).unwrap_err();
        assert!(matches!(&e, DataError::MatCorrupt { .. }), "{e:?}");
        // Damaged compressed data: zlib error or checksum mismatch, never garbage values.
        let big: Vec<f64> = (0..4000).map(|i| (i % 17) as f64 / 16.0).collect();
        let mut w3 = MatWriter::new(false);
        w3.add(
            &w3.numeric("a", CLASS_DOUBLE, Storage::F64, 40, 100, &big),
            true,
        );
        let clean = w3.buf.clone();
        let p = write(dir.path(), "z.mat", &clean);
        assert_eq!(read_mat_matrices(&p, &["a"]).unwrap()[0].data.len(), 4000);
        let mut flips = 0;
        for at in (150..clean.len()).step_by(7) {
            let mut bad = clean.clone();
            bad[at] ^= 0x5a;
            let p = write(dir.path(), "z.mat", &bad);
            match read_mat_matrices(&p, &["a"]) {
                Err(DataError::MatCorrupt { .. }) => flips += 1,
                Ok(m) => panic!("flip at {at} went unnoticed: {:?}", &m[0].data[..4]),
                Err(e) => panic!("flip at {at}: {e:?}"),
            }
        }
        assert!(flips > 10);
        // Not a matrix inside a compressed element.
        let mut w4 = MatWriter::new(false);
        let mut e = ZlibEncoderHelper::new();
        e.write(&w4.element(MI_DOUBLE, &w4.f64s(&[1.0])));
        let z = e.finish();
        let mut bytes = w4.u32b(MI_COMPRESSED).to_vec();
        bytes.extend_from_slice(&w4.u32b(z.len() as u32));
        bytes.extend(z);
        w4.buf.extend(bytes);
        let p = write(dir.path(), "nm.mat", &w4.buf);
        let e = read_mat_matrices(&p, &["a"]).unwrap_err();
        assert!(e.to_string().contains("expected a matrix"), "{e}");
    }

    struct ZlibEncoderHelper(flate2::write::ZlibEncoder<Vec<u8>>);
    impl ZlibEncoderHelper {
        fn new() -> Self {
            Self(flate2::write::ZlibEncoder::new(
                Vec::new(),
                flate2::Compression::default(),
            ))
        }
        fn write(&mut self, b: &[u8]) {
            std::io::Write::write_all(&mut self.0, b).unwrap();
        }
        fn finish(self) -> Vec<u8> {
            self.0.finish().unwrap()
        }
    }

    #[test]
    fn unsupported_requested_variables() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = MatWriter::new(false);
        let mut cpx = w.numeric("cpx", CLASS_DOUBLE, Storage::F64, 1, 1, &[1.0]);
        cpx.flags = 0x0800;
        cpx.extra = w.element(MI_DOUBLE, &w.f64s(&[2.0]));
        let mut nd = w.numeric("nd", CLASS_DOUBLE, Storage::F64, 1, 2, &[1.0, 2.0]);
        nd.dims = vec![1, 1, 2];
        let mut sparse = w.numeric("sp", 5, Storage::F64, 1, 1, &[1.0]);
        sparse.data = (MI_INT32, w.u32b(0).to_vec());
        let mut chars_as_numbers = w.chars("ch", "ab");
        chars_as_numbers.class = CLASS_DOUBLE; // a numeric class with non-numeric data
        chars_as_numbers.data.0 = 16;
        for v in [&cpx, &nd, &sparse] {
            w.add(v, false);
        }
        w.add(&chars_as_numbers, true);
        let p = write(dir.path(), "u.mat", &w.buf);
        for (name, needle) in [("cpx", "complex"), ("nd", "3 dimensions"), ("sp", "Sparse")] {
            let e = read_mat_matrices(&p, &[name]).unwrap_err();
            assert!(matches!(&e, DataError::MatUnsupported { .. }), "{e:?}");
            assert!(e.to_string().contains(needle), "{e}");
        }
        let e = read_mat_matrices(&p, &["ch"]).unwrap_err();
        assert!(
            matches!(&e, DataError::MatCorrupt { reason, .. } if reason.contains("not numeric")),
            "{e:?}"
        );
        assert_eq!(mat_variables(&p).unwrap().len(), 4);
    }
}

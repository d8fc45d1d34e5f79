//! A minimal MATLAB v5 MAT-file writer for the tests (little- or big-endian, with or without
//! `miCOMPRESSED` elements), and the synthetic OMNIGLOT images shared by the tests and
//! `testdata/make_mat_fixtures.py`.

use std::io::Write;

use flate2::Compression;
use flate2::write::ZlibEncoder;

pub(super) use super::matfile::{
    MI_COMPRESSED, MI_DOUBLE, MI_INT8, MI_INT32, MI_MATRIX, MI_SINGLE, MI_UINT8, MI_UINT16,
    MI_UINT32,
};

pub(crate) const CLASS_CHAR: u8 = 4;
pub(crate) const CLASS_DOUBLE: u8 = 6;
pub(crate) const CLASS_SINGLE: u8 = 7;
pub(crate) const CLASS_UINT8: u8 = 9;

/// How a variable's real data is stored.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Storage {
    F64,
    F32,
    U8,
}

/// One variable to write.
pub(crate) struct Var {
    pub name: String,
    pub class: u8,
    pub flags: u32,
    pub dims: Vec<u32>,
    /// (data type, encoded bytes) of the real part.
    pub data: (u32, Vec<u8>),
    /// Raw extra sub-elements after the real part (e.g. an imaginary part).
    pub extra: Vec<u8>,
}

pub(crate) struct MatWriter {
    pub big: bool,
    pub buf: Vec<u8>,
}

impl MatWriter {
    pub fn new(big: bool) -> Self {
        let mut w = Self {
            big,
            buf: Vec::with_capacity(4096),
        };
        w.buf
            .extend_from_slice(b"MATLAB 5.0 MAT-file, written by the gumbolt-models tests");
        w.buf.resize(116, b' ');
        w.buf.extend_from_slice(&[0u8; 8]);
        let version = w.u16b(0x0100);
        w.buf.extend_from_slice(&version);
        w.buf.extend_from_slice(if big { b"MI" } else { b"IM" });
        w
    }

    fn u16b(&self, v: u16) -> [u8; 2] {
        if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    pub fn u32b(&self, v: u32) -> [u8; 4] {
        if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    pub fn f64s(&self, v: &[f64]) -> Vec<u8> {
        v.iter()
            .flat_map(|x| {
                if self.big {
                    x.to_be_bytes()
                } else {
                    x.to_le_bytes()
                }
            })
            .collect()
    }

    pub fn f32s(&self, v: &[f32]) -> Vec<u8> {
        v.iter()
            .flat_map(|x| {
                if self.big {
                    x.to_be_bytes()
                } else {
                    x.to_le_bytes()
                }
            })
            .collect()
    }

    /// Encodes `values` with the given storage (`U8` rounds).
    pub fn encode(&self, storage: Storage, values: &[f64]) -> (u32, Vec<u8>) {
        match storage {
            Storage::F64 => (MI_DOUBLE, self.f64s(values)),
            Storage::F32 => (
                MI_SINGLE,
                self.f32s(&values.iter().map(|&v| v as f32).collect::<Vec<_>>()),
            ),
            Storage::U8 => (MI_UINT8, values.iter().map(|&v| v as u8).collect()),
        }
    }

    /// A data element: the small format for 1–4 bytes, otherwise tag + data + padding to 8.
    pub fn element(&self, ty: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        if (1..=4).contains(&payload.len()) {
            out.extend_from_slice(&self.u32b(((payload.len() as u32) << 16) | ty));
            let mut p = [0u8; 4];
            p[..payload.len()].copy_from_slice(payload);
            out.extend_from_slice(&p);
        } else {
            out.extend_from_slice(&self.u32b(ty));
            out.extend_from_slice(&self.u32b(payload.len() as u32));
            out.extend_from_slice(payload);
            out.resize(out.len().div_ceil(8) * 8, 0);
        }
        out
    }

    /// The full `miMATRIX` element (tag included) of `v`.
    pub fn matrix(&self, v: &Var) -> Vec<u8> {
        let mut body = Vec::new();
        let mut flags = self.u32b(v.flags | v.class as u32).to_vec();
        flags.extend_from_slice(&[0u8; 4]);
        body.extend(self.element(MI_UINT32, &flags));
        let dims: Vec<u8> = v.dims.iter().flat_map(|&d| self.u32b(d)).collect();
        body.extend(self.element(MI_INT32, &dims));
        body.extend(self.element(MI_INT8, v.name.as_bytes()));
        body.extend(self.element(v.data.0, &v.data.1));
        body.extend_from_slice(&v.extra);
        let mut out = self.u32b(MI_MATRIX).to_vec();
        out.extend_from_slice(&self.u32b(body.len() as u32));
        out.extend(body);
        out
    }

    /// Appends `v`, zlib-compressed in an `miCOMPRESSED` element if `compressed`.
    pub fn add(&mut self, v: &Var, compressed: bool) {
        let m = self.matrix(v);
        if compressed {
            let mut e = ZlibEncoder::new(Vec::new(), Compression::default());
            e.write_all(&m).unwrap();
            let z = e.finish().unwrap();
            let mut out = self.u32b(MI_COMPRESSED).to_vec();
            out.extend_from_slice(&self.u32b(z.len() as u32));
            out.extend(z);
            self.buf.extend(out);
        } else {
            self.buf.extend(m);
        }
    }

    /// A real 2-D numeric matrix from column-major `values`.
    pub fn numeric(
        &self,
        name: &str,
        class: u8,
        storage: Storage,
        rows: usize,
        cols: usize,
        values: &[f64],
    ) -> Var {
        assert_eq!(values.len(), rows * cols);
        Var {
            name: name.into(),
            class,
            flags: 0,
            dims: vec![rows as u32, cols as u32],
            data: self.encode(storage, values),
            extra: Vec::new(),
        }
    }

    /// A char row vector (UTF-16 code units, as MATLAB writes them).
    pub fn chars(&self, name: &str, text: &str) -> Var {
        let units: Vec<u8> = text
            .encode_utf16()
            .flat_map(|u| {
                if self.big {
                    u.to_be_bytes()
                } else {
                    u.to_le_bytes()
                }
            })
            .collect();
        Var {
            name: name.into(),
            class: CLASS_CHAR,
            flags: 0,
            dims: vec![1, text.len() as u32],
            data: (MI_UINT16, units),
            extra: Vec::new(),
        }
    }
}

/// Grey level of pixel `(r, c)` of synthetic image `i`: `((5i + 3r + 7c) mod 65) / 64`, a
/// multiple of 1/64 in `[0, 1]` (exact in f32), asymmetric under transposition.
pub(crate) fn grey(i: usize, r: usize, c: usize) -> f32 {
    ((5 * i + 3 * r + 7 * c) % 65) as f32 / 64.0
}

/// Alphabet of synthetic image `i`.
pub(crate) fn alphabet(i: usize) -> usize {
    (7 * i) % 50
}

/// Images `first .. first + n` as the `784 × n` column-major matrix of `chardata.mat`
/// (each column Fortran-ordered: pixel `(r, c)` at `r + 28c`).
pub(crate) fn chardata_block(first: usize, n: usize) -> Vec<f64> {
    let mut v = Vec::with_capacity(784 * n);
    for i in first..first + n {
        for c in 0..28 {
            for r in 0..28 {
                v.push(grey(i, r, c) as f64);
            }
        }
    }
    v
}

/// The one-hot `50 × n` target matrix of images `first .. first + n`, column-major.
pub(crate) fn one_hot_block(first: usize, n: usize) -> Vec<f64> {
    let mut v = vec![0.0; 50 * n];
    for (k, i) in (first..first + n).enumerate() {
        v[alphabet(i) + 50 * k] = 1.0;
    }
    v
}

/// Images `first .. first + n` as `.amat` text (row-major pixels).
pub(crate) fn amat_block(first: usize, n: usize) -> String {
    let mut s = String::new();
    for i in first..first + n {
        let row: Vec<String> = (0..784)
            .map(|k| format!("{}", grey(i, k / 28, k % 28)))
            .collect();
        s.push_str(&row.join(" "));
        s.push('\n');
    }
    s
}

//! NumPy `.npy` files (format version 1.0) of little-endian `f32` or `f64` arrays in C
//! (row-major) order: written by `gumbolt eval --per-image` and `gumbolt sample --npy`, read
//! back by the tests. `numpy.load(path)` reads them.

use std::fmt::Write as _;

/// An element type of a `.npy` array.
pub trait Element: Copy {
    /// The NumPy `descr` (`<f4`, `<f8`).
    const DESCR: &'static str;
    /// Appends the little-endian bytes of `self`.
    fn put(self, out: &mut Vec<u8>);
    /// The value of 8 or 4 little-endian bytes.
    fn get(bytes: &[u8]) -> Self;
}

impl Element for f32 {
    const DESCR: &'static str = "<f4";
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn get(bytes: &[u8]) -> Self {
        f32::from_le_bytes(bytes.try_into().expect("4 bytes"))
    }
}

impl Element for f64 {
    const DESCR: &'static str = "<f8";
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn get(bytes: &[u8]) -> Self {
        f64::from_le_bytes(bytes.try_into().expect("8 bytes"))
    }
}

const MAGIC: &[u8] = b"\x93NUMPY\x01\x00";

/// The bytes of a `.npy` file holding `values` as an array of `shape`, row-major.
///
/// # Panics
/// If `values.len()` is not the product of `shape`.
///
/// ```
/// let bytes = gumbolt_examples::npy::to_bytes(&[1.0f64, 2.0, 3.0, 4.0], &[2, 2]);
/// let (shape, values) = gumbolt_examples::npy::from_bytes::<f64>(&bytes).unwrap();
/// assert_eq!(shape, [2, 2]);
/// assert_eq!(values, [1.0, 2.0, 3.0, 4.0]);
/// ```
pub fn to_bytes<T: Element>(values: &[T], shape: &[usize]) -> Vec<u8> {
    assert_eq!(
        values.len(),
        shape.iter().product::<usize>(),
        "npy::to_bytes: shape"
    );
    let mut dims = String::new();
    for d in shape {
        write!(dims, "{d}, ").expect("writing to a String");
    }
    let dims = if shape.len() == 1 {
        dims.trim_end_matches(' ').to_string()
    } else {
        dims.trim_end_matches(", ").to_string()
    };
    let mut header = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': ({dims}), }}",
        T::DESCR
    );
    // Magic (8) + header length (2) + header, padded with spaces to a multiple of 64 bytes,
    // the last one a newline.
    let unpadded = MAGIC.len() + 2 + header.len() + 1;
    header.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    header.push('\n');
    let mut out = Vec::with_capacity(MAGIC.len() + 2 + header.len() + 8 * values.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for &v in values {
        v.put(&mut out);
    }
    out
}

/// The shape and values of a `.npy` file written by [`to_bytes`] (C order, element type `T`),
/// or a description of what is wrong.
pub fn from_bytes<T: Element>(bytes: &[u8]) -> Result<(Vec<usize>, Vec<T>), String> {
    if bytes.len() < 10 || &bytes[..8] != MAGIC {
        return Err("not a .npy file of version 1.0".into());
    }
    let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = bytes
        .get(10..10 + hlen)
        .and_then(|h| std::str::from_utf8(h).ok())
        .ok_or("truncated header")?;
    if !header.contains(&format!("'descr': '{}'", T::DESCR))
        || !header.contains("'fortran_order': False")
    {
        return Err(format!("expected a C-order {} array: {header}", T::DESCR));
    }
    let dims = header
        .split_once("'shape': (")
        .and_then(|(_, r)| r.split_once(')'))
        .ok_or("no shape in the header")?
        .0;
    let shape = dims
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|e| format!("shape: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let size = std::mem::size_of::<T>();
    let data = &bytes[10 + hlen..];
    let n: usize = shape.iter().product();
    if data.len() != n * size {
        return Err(format!(
            "expected {n} values of {size} bytes, found {} bytes",
            data.len()
        ));
    }
    Ok((shape, data.chunks_exact(size).map(T::get).collect()))
}

//! A Boltzmann machine on any sparse graph (GB §2.3 Eq. 3 without the bipartite restriction
//! of Eq. 4; GB §3 and Theorem 1 hold for it):
//!
//! `−E(z) = Σ_i h_i z_i + Σ_(i,j)∈G w_ij z_i z_j`, `z ∈ {0,1}^n`,
//!
//! and its multilinear extension at relaxed points `ζ ∈ [0,1]^n` (GB Eq. 7). Built from an edge
//! list, a JSON file, or a D-Wave topology ([`crate::topology::Topology`]: Chimera, Pegasus,
//! Zephyr). Block Gibbs runs over a colouring of the graph ([`ColourConditionals`]).
//!
//! # Parameters
//! θ = `[h (n) | w (m)]`, the fields then one coupling per edge in the order of
//! [`SparseBm::edges`].
//!
//! # File format
//! `{"h": [n numbers], "edges": [[i, j, w], …]}`: 0-based units, `i ≠ j`, each unordered pair at
//! most once. A malformed file gets an error naming the file and the offending entry.

// The multiversioned kernels take the CSR arrays one by one.
#![allow(clippy::too_many_arguments)]

use crate::error::{PriorError, Result};
use crate::topology::{Topology, greedy_colouring};
use crate::util::ensure_shape;
use gumbolt_core::Mat;
use gumbolt_core::prior::{
    ColourConditionals, EnergyGradient, EnergyParamGradient, ExactPartition, Parametric, Prior,
    SiteConditionals,
};
use nalgebra::DMatrixView;
use std::path::Path;

/// A Boltzmann machine on a sparse graph: fields `h`, one coupling per edge.
///
/// ```
/// use gumbolt_core::prior::{ColourConditionals, ExactPartition, Parametric, PriorExt};
/// use gumbolt_priors::SparseBm;
/// // A triangle (not bipartite): three colour classes.
/// let mut bm = SparseBm::from_edges(3, &[(0, 1), (1, 2), (0, 2)]).unwrap();
/// bm.params_mut().copy_from_slice(&[0.5, -0.5, 0.0, 1.0, -1.0, 0.25]);
/// assert_eq!(bm.colour_classes().len(), 3);
/// let z = nalgebra::DMatrix::from_row_slice(1, 3, &[1.0f32, 1.0, 0.0]);
/// assert_eq!(bm.energies(&z), vec![-(0.5 - 0.5 + 1.0)]);
/// assert!(bm.log_partition().unwrap().is_finite());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SparseBm {
    n: usize,
    edges: Vec<(usize, usize)>,
    /// `[h | w]`.
    params: Vec<f32>,
    /// CSR adjacency: the neighbours of `i` are `adj[adj_start[i]..adj_start[i + 1]]` as
    /// `(neighbour, edge index)`.
    adj_start: Vec<usize>,
    adj: Vec<(usize, usize)>,
    classes: Vec<Vec<usize>>,
}

impl SparseBm {
    /// A zero-parameter machine on `n` units with the given edges.
    ///
    /// # Errors
    /// [`PriorError::Format`] for `n = 0`, a unit out of range, a self-loop or a repeated pair.
    pub fn from_edges(n: usize, edges: &[(usize, usize)]) -> Result<Self> {
        let origin = "<edge list>";
        if n == 0 {
            return Err(format_err(origin, "no units".into(), "n ≥ 1"));
        }
        let mut seen = std::collections::HashSet::new();
        for (k, &(i, j)) in edges.iter().enumerate() {
            check_edge(origin, k, i, j, n, &mut seen)?;
        }
        let mut adj_lists = vec![Vec::new(); n];
        for (e, &(i, j)) in edges.iter().enumerate() {
            adj_lists[i].push((j, e));
            adj_lists[j].push((i, e));
        }
        let mut adj_start = Vec::with_capacity(n + 1);
        let mut adj = Vec::with_capacity(2 * edges.len());
        for l in adj_lists {
            adj_start.push(adj.len());
            adj.extend(l);
        }
        adj_start.push(adj.len());
        Ok(Self {
            n,
            edges: edges.to_vec(),
            params: vec![0.0; n + edges.len()],
            adj_start,
            adj,
            classes: greedy_colouring(n, edges),
        })
    }

    /// A zero-parameter machine on a D-Wave topology (node order: [`crate::topology`]).
    ///
    /// ```
    /// use gumbolt_priors::{SparseBm, topology::Topology};
    /// let bm = SparseBm::topology(Topology::Zephyr { m: 1, t: 2 });
    /// assert_eq!((bm.num_units(), bm.num_edges()), (24, 76));
    /// ```
    pub fn topology(topology: Topology) -> Self {
        let (n, edges) = topology.graph();
        Self::from_edges(n, &edges).expect("topologies have valid edge lists")
    }

    /// Fields and couplings drawn `N(0, scale²)` (for tests and examples).
    pub fn randomize(&mut self, field_scale: f32, coupling_scale: f32, rng: &mut impl rand::Rng) {
        let n = self.n;
        for (k, p) in self.params.iter_mut().enumerate() {
            let (g, _) = crate::util::std_normal_pair(rng);
            let s = if k < n { field_scale } else { coupling_scale };
            *p = (g * s as f64) as f32;
        }
    }

    /// Number of units `n`.
    pub fn num_units(&self) -> usize {
        self.n
    }

    /// Number of edges `m`.
    pub fn num_edges(&self) -> usize {
        self.edges.len()
    }

    /// The edges `(i, j)`, in parameter order.
    pub fn edges(&self) -> &[(usize, usize)] {
        &self.edges
    }

    /// The fields `h`.
    pub fn h(&self) -> &[f32] {
        &self.params[..self.n]
    }

    /// The couplings `w`, one per edge.
    pub fn w(&self) -> &[f32] {
        &self.params[self.n..]
    }

    /// Neighbours of unit `i` as `(neighbour, edge index)`.
    pub fn neighbours(&self, i: usize) -> &[(usize, usize)] {
        &self.adj[self.adj_start[i]..self.adj_start[i + 1]]
    }

    /// Whether some edge joins two units of `units` (a range of unit indices).
    pub fn has_edge_within(&self, units: std::ops::Range<usize>) -> bool {
        self.edges
            .iter()
            .any(|&(i, j)| units.contains(&i) && units.contains(&j))
    }

    /// Whether the graph is bipartite (then the colouring has two classes, or one).
    pub fn is_bipartite(&self) -> bool {
        self.classes.len() <= 2
    }

    /// `E_p[z_i]` and `E_p[z_i z_j]` per edge by enumeration (`n ≤ 24`), with `log Z`.
    fn exact_moments(&self) -> gumbolt_core::Result<(f64, Vec<f64>)> {
        let n = self.n;
        if n > gumbolt_core::exact::MAX_ENUMERATION_UNITS {
            return Err(gumbolt_core::CoreError::Intractable {
                what: "enumeration",
                units: n,
                limit: gumbolt_core::exact::MAX_ENUMERATION_UNITS,
            });
        }
        let log_z = gumbolt_core::exact::enumerate(self)?.log_z;
        let total = 1u64 << n;
        let chunk = 4096u64.min(total);
        let mut grad = vec![0.0f64; n + self.edges.len()];
        let mut start = 0u64;
        let mut batch = Mat::zeros(chunk as usize, n);
        let mut e = vec![0.0; chunk as usize];
        while start < total {
            let rows = (total - start).min(chunk) as usize;
            if rows != batch.nrows() {
                batch = Mat::zeros(rows, n);
                e = vec![0.0; rows];
            }
            for j in 0..n {
                for (r, v) in batch.column_mut(j).iter_mut().enumerate() {
                    *v = (((start + r as u64) >> j) & 1) as f32;
                }
            }
            self.energy_into(batch.as_view(), &mut e);
            for (r, &er) in e.iter().enumerate() {
                let p = (-er - log_z).exp();
                for i in 0..n {
                    grad[i] += p * batch[(r, i)] as f64;
                }
                for (k, &(i, j)) in self.edges.iter().enumerate() {
                    grad[n + k] += p * (batch[(r, i)] * batch[(r, j)]) as f64;
                }
            }
            start += rows as u64;
        }
        Ok((log_z, grad))
    }

    fn check_rows(&self, z: &DMatrixView<'_, f32>, what: &str) {
        assert_eq!(
            z.ncols(),
            self.n,
            "SparseBm::{what}: rows of {} units expected, got {}",
            self.n,
            z.ncols()
        );
    }

    /// Parses the JSON format of the [module docs](self); `origin` names the source in errors.
    fn parse(text: &str, origin: &str) -> Result<Self> {
        let v: serde_json::Value = serde_json::from_str(text).map_err(|e| PriorError::Json {
            origin: origin.into(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
        let expected = r#"{"h": [n numbers], "edges": [[i, j, w], …]} with 0-based i ≠ j < n"#;
        let obj = v
            .as_object()
            .ok_or_else(|| format_err(origin, "the top level is not an object".into(), expected))?;
        if let Some(k) = obj.keys().find(|k| *k != "h" && *k != "edges") {
            return Err(format_err(origin, format!("unknown key {k:?}"), expected));
        }
        let h = obj
            .get("h")
            .and_then(|h| h.as_array())
            .ok_or_else(|| format_err(origin, "missing array \"h\"".into(), expected))?;
        let mut fields = Vec::with_capacity(h.len());
        for (i, x) in h.iter().enumerate() {
            let f = x
                .as_f64()
                .filter(|f| f.is_finite() && f.abs() <= f32::MAX as f64);
            fields.push(f.ok_or_else(|| {
                format_err(
                    origin,
                    format!("h[{i}] = {x} is not a finite number"),
                    expected,
                )
            })? as f32);
        }
        let n = fields.len();
        if n == 0 {
            return Err(format_err(origin, "\"h\" is empty".into(), expected));
        }
        let edges = obj
            .get("edges")
            .and_then(|e| e.as_array())
            .ok_or_else(|| format_err(origin, "missing array \"edges\"".into(), expected))?;
        let mut pairs = Vec::with_capacity(edges.len());
        let mut weights = Vec::with_capacity(edges.len());
        let mut seen = std::collections::HashSet::new();
        for (k, e) in edges.iter().enumerate() {
            let bad = |why: &str| format_err(origin, format!("edges[{k}] = {e}: {why}"), expected);
            let a = e
                .as_array()
                .filter(|a| a.len() == 3)
                .ok_or_else(|| bad("not a list [i, j, w]"))?;
            let unit = |x: &serde_json::Value| x.as_u64().map(|u| u as usize);
            let (i, j) = match (unit(&a[0]), unit(&a[1])) {
                (Some(i), Some(j)) => (i, j),
                _ => return Err(bad("i and j must be non-negative integers")),
            };
            let w = a[2]
                .as_f64()
                .filter(|f| f.is_finite() && f.abs() <= f32::MAX as f64)
                .ok_or_else(|| bad("w is not a finite number"))?;
            check_edge(origin, k, i, j, n, &mut seen)?;
            pairs.push((i, j));
            weights.push(w as f32);
        }
        let mut bm = Self::from_edges(n, &pairs)?;
        bm.params[..n].copy_from_slice(&fields);
        bm.params[n..].copy_from_slice(&weights);
        Ok(bm)
    }

    /// Parses the JSON format from a string (errors name `<string>`).
    ///
    /// ```
    /// use gumbolt_priors::SparseBm;
    /// let bm = SparseBm::from_json_str(r#"{"h": [0, 1, -1], "edges": [[0, 1, 0.5], [1, 2, -2]]}"#).unwrap();
    /// assert_eq!(bm.w(), &[0.5, -2.0]);
    /// let err = SparseBm::from_json_str(r#"{"h": [0, 1], "edges": [[0, 0, 1]]}"#).unwrap_err();
    /// assert!(err.to_string().contains("edges[0]"));
    /// ```
    ///
    /// # Errors
    /// [`PriorError::Json`] or [`PriorError::Format`] naming the offending entry.
    pub fn from_json_str(s: &str) -> Result<Self> {
        Self::parse(s, "<string>")
    }

    /// Reads the JSON format from a file.
    ///
    /// # Errors
    /// [`PriorError::Io`], [`PriorError::Json`] or [`PriorError::Format`], naming the file.
    pub fn load_json(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| PriorError::Io {
            path: path.to_path_buf(),
            action: "reading",
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// The JSON format as a string.
    pub fn to_json_string(&self) -> String {
        let edges: Vec<serde_json::Value> = self
            .edges
            .iter()
            .zip(self.w())
            .map(|(&(i, j), &w)| serde_json::json!([i, j, w]))
            .collect();
        serde_json::json!({"h": self.h(), "edges": edges}).to_string()
    }

    /// Writes the JSON format to a file (atomically: a temporary file renamed into place).
    ///
    /// # Errors
    /// [`PriorError::Io`] naming the file.
    pub fn save_json(&self, path: impl AsRef<Path>) -> Result<()> {
        crate::rbm::atomic_write(path.as_ref(), self.to_json_string().as_bytes())
    }

    /// `out[:, k] = h_i + Σ_j w_ij z[:, j]` for the units `units` (f32, vectorised over rows).
    fn local_fields_into(&self, z: &DMatrixView<'_, f32>, units: &[usize], out: &mut [f32]) {
        let (data, ld) = column_major(z);
        let n = self.n;
        local_fields_kernel(
            data,
            ld,
            z.nrows(),
            units,
            &self.params[..n],
            &self.params[n..],
            &self.adj_start,
            &self.adj,
            out,
        );
    }
}

/// The column-major data of `z` and its column stride: column `j` is
/// `data[j·ld..j·ld + rows]` (no copy).
fn column_major<'a>(z: &'a DMatrixView<'_, f32>) -> (&'a [f32], usize) {
    let (rows, cols) = z.shape();
    if rows == 0 || cols == 0 {
        return (&[], rows);
    }
    let ld = z.strides().1;
    let len = (cols - 1) * ld + rows;
    // SAFETY: a view with unit row stride stores element (r, j) at offset r + j·ld from its
    // first element, so every offset below `len` up to the last element is inside the storage.
    (
        unsafe { std::slice::from_raw_parts(nalgebra::RawStorage::ptr(&z.data), len) },
        ld,
    )
}

/// Rows per register block of the kernels.
const BLOCK: usize = 16;

gumbolt_core::multiversion! {
    /// `out[k·rows + r] = h_i + Σ_(j,e)∈adj(i) w_e·z[j·ld + r]` for the `k`-th unit `i` of
    /// `units` (column-major `z` of `rows` rows, column stride `ld`): blocks of 16 rows stay in registers while the
    /// neighbours are added in adjacency order.
    fn local_fields_kernel(
        z: &[f32],
        ld: usize,
        rows: usize,
        units: &[usize],
        h: &[f32],
        w: &[f32],
        adj_start: &[usize],
        adj: &[(usize, usize)],
        out: &mut [f32],
    ) {
        for (k, &i) in units.iter().enumerate() {
            let o = &mut out[k * rows..(k + 1) * rows];
            let nb = &adj[adj_start[i]..adj_start[i + 1]];
            let hi = h[i];
            let mut r0 = 0;
            while r0 + BLOCK <= rows {
                let mut acc = [hi; BLOCK];
                for &(j, e) in nb {
                    let we = w[e];
                    let zj: &[f32; BLOCK] = z[j * ld + r0..j * ld + r0 + BLOCK]
                        .try_into()
                        .expect("a block");
                    for t in 0..BLOCK {
                        acc[t] += we * zj[t];
                    }
                }
                o[r0..r0 + BLOCK].copy_from_slice(&acc);
                r0 += BLOCK;
            }
            if r0 < rows {
                let o = &mut o[r0..];
                o.fill(hi);
                for &(j, e) in nb {
                    let we = w[e];
                    for (a, &x) in o.iter_mut().zip(&z[j * ld + r0..j * ld + rows]) {
                        *a += we * x;
                    }
                }
            }
        }
    }
}

gumbolt_core::multiversion! {
    /// `out[r] = −Σ_i z_ri·(h_i + Σ_{j>i} w_ij z_rj)`: per unit an f32 block sum, added to the
    /// f64 energies.
    fn energy_kernel(
        z: &[f32],
        ld: usize,
        rows: usize,
        h: &[f32],
        w: &[f32],
        adj_start: &[usize],
        adj: &[(usize, usize)],
        out: &mut [f64],
    ) {
        out.fill(0.0);
        for (i, &hi) in h.iter().enumerate() {
            let nb = &adj[adj_start[i]..adj_start[i + 1]];
            let zi = &z[i * ld..i * ld + rows];
            let mut r0 = 0;
            while r0 + BLOCK <= rows {
                let mut acc = [hi; BLOCK];
                for &(j, e) in nb {
                    if j < i {
                        continue;
                    }
                    let we = w[e];
                    let zj: &[f32; BLOCK] = z[j * ld + r0..j * ld + r0 + BLOCK]
                        .try_into()
                        .expect("a block");
                    for t in 0..BLOCK {
                        acc[t] += we * zj[t];
                    }
                }
                for t in 0..BLOCK {
                    out[r0 + t] -= (acc[t] * zi[r0 + t]) as f64;
                }
                r0 += BLOCK;
            }
            for r in r0..rows {
                let mut a = hi;
                for &(j, e) in nb {
                    if j > i {
                        a += w[e] * z[j * ld + r];
                    }
                }
                out[r] -= (a * zi[r]) as f64;
            }
        }
    }
}

fn format_err(origin: &str, reason: String, expected: &str) -> PriorError {
    PriorError::Format {
        origin: origin.into(),
        reason,
        expected: expected.into(),
    }
}

fn check_edge(
    origin: &str,
    k: usize,
    i: usize,
    j: usize,
    n: usize,
    seen: &mut std::collections::HashSet<(usize, usize)>,
) -> Result<()> {
    let expected = "edges [i, j] with 0-based i ≠ j < n, each pair at most once";
    if i >= n || j >= n {
        return Err(format_err(
            origin,
            format!("edges[{k}] = ({i}, {j}): unit out of range (n = {n})"),
            expected,
        ));
    }
    if i == j {
        return Err(format_err(
            origin,
            format!("edges[{k}] = ({i}, {j}): a self-loop"),
            expected,
        ));
    }
    if !seen.insert((i.min(j), i.max(j))) {
        return Err(format_err(
            origin,
            format!("edges[{k}] = ({i}, {j}): the pair is listed twice"),
            expected,
        ));
    }
    Ok(())
}

impl Prior for SparseBm {
    fn num_units(&self) -> usize {
        self.n
    }

    /// `E(ζ_r) = −(hᵀζ_r + Σ_(i,j) w_ij ζ_ri ζ_rj)` per row (f32 sums per unit, accumulated
    /// in f64).
    fn energy_into(&self, zeta: DMatrixView<'_, f32>, out: &mut [f64]) {
        self.check_rows(&zeta, "energy_into");
        assert_eq!(
            out.len(),
            zeta.nrows(),
            "SparseBm::energy_into: output length"
        );
        let (z, ld) = column_major(&zeta);
        let n = self.n;
        energy_kernel(
            z,
            ld,
            zeta.nrows(),
            &self.params[..n],
            &self.params[n..],
            &self.adj_start,
            &self.adj,
            out,
        );
    }
}

impl EnergyGradient for SparseBm {
    /// `∂E/∂ζ_i = −(h_i + Σ_j w_ij ζ_j)` (GB Eq. 11); `out` resized to `[N, n]`.
    fn energy_grad_into(&self, zeta: DMatrixView<'_, f32>, out: &mut Mat) {
        self.check_rows(&zeta, "energy_grad_into");
        let rows = zeta.nrows();
        ensure_shape(out, rows, self.n);
        let all: Vec<usize> = (0..self.n).collect();
        self.local_fields_into(&zeta, &all, out.as_mut_slice());
        out.iter_mut().for_each(|v| *v = -*v);
    }
}

impl Parametric for SparseBm {
    /// θ = `[h | w]` (module docs).
    fn params(&self) -> &[f32] {
        &self.params
    }

    fn params_mut(&mut self) -> &mut [f32] {
        &mut self.params
    }
}

impl EnergyParamGradient for SparseBm {
    /// `∂(−E)/∂h_i = ζ_i`, `∂(−E)/∂w_ij = ζ_i ζ_j`, weighted over rows (f64 sums).
    fn accumulate_neg_energy_grad(
        &self,
        zeta: DMatrixView<'_, f32>,
        weights: &[f32],
        grad: &mut [f32],
    ) {
        self.check_rows(&zeta, "accumulate_neg_energy_grad");
        assert_eq!(weights.len(), zeta.nrows(), "SparseBm: one weight per row");
        assert_eq!(grad.len(), self.params.len(), "SparseBm: gradient length");
        let n = self.n;
        let mut wz = vec![vec![0.0f32; 0]; n];
        for (i, g) in grad[..n].iter_mut().enumerate() {
            let zi = zeta.column(i);
            let v: Vec<f32> = zi.iter().zip(weights).map(|(&z, &w)| z * w).collect();
            *g += v.iter().map(|&x| x as f64).sum::<f64>() as f32;
            wz[i] = v;
        }
        for (g, &(i, j)) in grad[n..].iter_mut().zip(&self.edges) {
            let zj = zeta.column(j);
            let s: f64 = wz[i]
                .iter()
                .zip(zj.iter())
                .map(|(&a, &b)| (a * b) as f64)
                .sum();
            *g += s as f32;
        }
    }
}

impl ExactPartition for SparseBm {
    /// Exact `log Z` by enumeration (`n ≤ 24`).
    fn log_partition(&self) -> gumbolt_core::Result<f64> {
        Ok(gumbolt_core::exact::enumerate(self)?.log_z)
    }

    /// `∇θ log Z = E_p[[z | z_i z_j]]` (GB Eq. 6) by enumeration (`n ≤ 24`).
    fn log_partition_grad(&self) -> gumbolt_core::Result<Vec<f64>> {
        Ok(self.exact_moments()?.1)
    }
}

impl SiteConditionals for SparseBm {
    /// `g_i = −(h_i + Σ_j w_ij z_j)`.
    fn site_energy_gaps(&self, z: DMatrixView<'_, f32>, i: usize, out: &mut [f64]) {
        self.check_rows(&z, "site_energy_gaps");
        let mut buf = vec![0.0f32; z.nrows()];
        self.local_fields_into(&z, &[i], &mut buf);
        for (o, &b) in out.iter_mut().zip(&buf) {
            *o = -(b as f64);
        }
    }
}

impl ColourConditionals for SparseBm {
    /// The colouring of [`greedy_colouring`] (two classes for a bipartite graph such as
    /// Chimera).
    fn colour_classes(&self) -> Vec<Vec<usize>> {
        self.classes.clone()
    }

    /// `h_i + Σ_j w_ij z_j` for the units of the class: one sparse pass over the class's
    /// adjacency, each term an axpy over all chains.
    fn colour_logits(&self, class: usize, z: DMatrixView<'_, f32>, out: &mut Mat) {
        self.local_fields_into(&z, &self.classes[class], out.as_mut_slice());
    }
}

//! Graphs of Boltzmann machines: the D-Wave hardware topologies Chimera, Pegasus and Zephyr
//! (following dwave-networkx's published definitions), and greedy graph colouring.
//!
//! Node order: every topology numbers its nodes by dwave-networkx's *linear index*
//! (Chimera `((i·N + j)·2 + u)·T + k`, Pegasus `((u·M + w)·12 + k)·(M − 1) + z`, Zephyr
//! `(((u·(2M + 1) + w)·T + k)·2 + j)·M + z`), renumbered `0..n` in increasing order; for
//! Pegasus only the nodes of the fabric (the largest connected component, dwave-networkx's
//! default `fabric_only=True`) exist. `priors/tests/data/*.json` holds dwave-networkx's own edge
//! lists for small sizes, which the tests compare with.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// A D-Wave hardware topology.
///
/// ```
/// use gumbolt_priors::topology::Topology;
/// let t: Topology = "pegasus:2".parse().unwrap();
/// let (n, edges) = t.graph();
/// assert_eq!((n, edges.len()), (40, 164));
/// assert_eq!("chimera".parse::<Topology>().unwrap(), Topology::Chimera { m: 5, n: 5, t: 4 });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Topology {
    /// Chimera C(M, N, T): an M × N grid of complete bipartite K_{T,T} cells (bipartite).
    Chimera {
        /// Rows of cells.
        m: usize,
        /// Columns of cells.
        n: usize,
        /// Half the cell size.
        t: usize,
    },
    /// Pegasus P(M), fabric only, offsets index 0 (not bipartite: odd couplers).
    Pegasus {
        /// Size parameter (≥ 2).
        m: usize,
    },
    /// Zephyr Z(M, T) (not bipartite).
    Zephyr {
        /// Size parameter.
        m: usize,
        /// Tile parameter.
        t: usize,
    },
}

impl Topology {
    /// Number of nodes and the edge list `(i, j)` with `i < j`, sorted.
    pub fn graph(&self) -> (usize, Vec<(usize, usize)>) {
        match *self {
            Topology::Chimera { m, n, t } => chimera(m, n, t),
            Topology::Pegasus { m } => pegasus(m),
            Topology::Zephyr { m, t } => zephyr(m, t),
        }
    }

    /// The command-line form, e.g. `chimera:5,5,4`.
    pub fn spec(&self) -> String {
        match *self {
            Topology::Chimera { m, n, t } => format!("chimera:{m},{n},{t}"),
            Topology::Pegasus { m } => format!("pegasus:{m}"),
            Topology::Zephyr { m, t } => format!("zephyr:{m},{t}"),
        }
    }
}

impl std::fmt::Display for Topology {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.spec())
    }
}

impl std::str::FromStr for Topology {
    type Err = String;

    /// `chimera[:M,N,T]` (default 5,5,4), `pegasus[:M]` (default 4), `zephyr[:M,T]` (default
    /// 2,5). Sizes are limited to at most 100 000 nodes.
    fn from_str(s: &str) -> Result<Self, String> {
        let (name, args) = match s.split_once(':') {
            Some((a, b)) => (a, Some(b)),
            None => (s, None),
        };
        let nums = |want: usize, default: &[usize]| -> Result<Vec<usize>, String> {
            let Some(a) = args else {
                return Ok(default.to_vec());
            };
            let v: Vec<usize> = a
                .split(',')
                .map(|x| {
                    x.trim()
                        .parse::<usize>()
                        .map_err(|_| format!("{s:?}: {x:?} is not a non-negative integer"))
                })
                .collect::<Result<_, _>>()?;
            if v.len() != want {
                return Err(format!(
                    "{s:?}: expected {want} size parameter(s) after ':', got {}",
                    v.len()
                ));
            }
            Ok(v)
        };
        let topo = match name {
            "chimera" => {
                let v = nums(3, &[5, 5, 4])?;
                Topology::Chimera {
                    m: v[0],
                    n: v[1],
                    t: v[2],
                }
            }
            "pegasus" => Topology::Pegasus {
                m: nums(1, &[4])?[0],
            },
            "zephyr" => {
                let v = nums(2, &[2, 5])?;
                Topology::Zephyr { m: v[0], t: v[1] }
            }
            _ => {
                return Err(format!(
                    "unknown topology {name:?}: expected chimera[:M,N,T], pegasus[:M] or zephyr[:M,T]"
                ));
            }
        };
        let nodes = match topo {
            Topology::Chimera { m, n, t } => {
                if m == 0 || n == 0 || t == 0 {
                    return Err(format!("{s:?}: M, N and T must be at least 1"));
                }
                (m as u128) * (n as u128) * 2 * (t as u128)
            }
            Topology::Pegasus { m } => {
                if m < 2 {
                    return Err(format!("{s:?}: Pegasus needs M ≥ 2 (P(1) has no nodes)"));
                }
                24 * (m as u128) * (m as u128 - 1)
            }
            Topology::Zephyr { m, t } => {
                if m == 0 || t == 0 {
                    return Err(format!("{s:?}: M and T must be at least 1"));
                }
                4 * (t as u128) * (2 * m as u128 + 1) * (m as u128)
            }
        };
        if nodes > 100_000 {
            return Err(format!(
                "{s:?}: {nodes} nodes, at most 100000 are supported"
            ));
        }
        Ok(topo)
    }
}

/// Sorted, deduplicated `(min, max)` pairs.
fn normalise(edges: impl IntoIterator<Item = (usize, usize)>) -> Vec<(usize, usize)> {
    let set: BTreeSet<(usize, usize)> = edges
        .into_iter()
        .map(|(a, b)| (a.min(b), a.max(b)))
        .collect();
    set.into_iter().collect()
}

/// Chimera C(m, n, t) (dwave-networkx `chimera_graph`): node `(i, j, u, k)` has linear index
/// `((i·n + j)·2 + u)·t + k`; internal edges `(i,j,0,k)–(i,j,1,k')`, vertical external
/// `(i,j,0,k)–(i+1,j,0,k)`, horizontal external `(i,j,1,k)–(i,j+1,1,k)`.
fn chimera(m: usize, n: usize, t: usize) -> (usize, Vec<(usize, usize)>) {
    let q = |i: usize, j: usize, u: usize, k: usize| ((i * n + j) * 2 + u) * t + k;
    let mut e = Vec::new();
    for i in 0..m {
        for j in 0..n {
            for k in 0..t {
                for k2 in 0..t {
                    e.push((q(i, j, 0, k), q(i, j, 1, k2)));
                }
                if i + 1 < m {
                    e.push((q(i, j, 0, k), q(i + 1, j, 0, k)));
                }
                if j + 1 < n {
                    e.push((q(i, j, 1, k), q(i, j + 1, 1, k)));
                }
            }
        }
    }
    (m * n * 2 * t, normalise(e))
}

/// Pegasus P(m), fabric only, offsets index 0 (dwave-networkx `pegasus_graph(m)`).
#[allow(clippy::needless_range_loop)] // the loops follow dwave-networkx's index ranges
fn pegasus(m: usize) -> (usize, Vec<(usize, usize)>) {
    const OFF0: [usize; 12] = [2, 2, 2, 2, 10, 10, 10, 10, 6, 6, 6, 6];
    const OFF1: [usize; 12] = [6, 6, 6, 6, 2, 2, 2, 2, 10, 10, 10, 10];
    let m1 = m - 1;
    let label = |u: usize, w: usize, k: usize, z: usize| ((u * m + w) * 12 + k) * m1 + z;
    // fabric_start = (min S1, min S0), fabric_end = (12 − max S1, 12 − max S0).
    let start = [2usize, 2];
    let end = [2usize, 2];
    let mut e = Vec::new();
    for u in 0..2 {
        for w in 0..m {
            let k0 = if w == 0 { start[u] } else { 0 };
            let k1 = 12 - if w == m1 { end[u] } else { 0 };
            // external
            for k in k0..k1 {
                for z in 0..m1.saturating_sub(1) {
                    e.push((label(u, w, k, z), label(u, w, k, z + 1)));
                }
            }
            // odd
            for k in (k0..k1).step_by(2) {
                for z in 0..m1 {
                    e.push((label(u, w, k, z), label(u, w, k + 1, z)));
                }
            }
        }
    }
    let qfilter = |u: usize, w: usize, k: usize| {
        if w == 0 {
            k >= start[u]
        } else if w == m1 {
            k < 12 - end[u]
        } else {
            true
        }
    };
    for w in 0..m {
        for kk in 0..12 {
            let lo = if w > 0 { 0 } else { OFF1[kk] };
            let hi = if w < m1 { 12 } else { OFF1[kk] };
            for k in lo..hi {
                for z in 0..m1 {
                    let (w1, k1) = (z + usize::from(kk < OFF0[k]), kk);
                    let z1 = w - usize::from(k < OFF1[kk]);
                    if qfilter(0, w, k) && qfilter(1, w1, k1) {
                        e.push((label(0, w, k, z), label(1, w1, k1, z1)));
                    }
                }
            }
        }
    }
    relabel(e)
}

/// Zephyr Z(m, t) (dwave-networkx `zephyr_graph(m, t)`).
fn zephyr(m: usize, t: usize) -> (usize, Vec<(usize, usize)>) {
    let mm = 2 * m + 1;
    let label =
        |u: usize, w: usize, k: usize, j: usize, z: usize| (((u * mm + w) * t + k) * 2 + j) * m + z;
    let mut e = Vec::new();
    for u in 0..2 {
        for w in 0..mm {
            for k in 0..t {
                for j in 0..2 {
                    for z in 0..m.saturating_sub(1) {
                        e.push((label(u, w, k, j, z), label(u, w, k, j, z + 1)));
                    }
                }
                for a in 0..2 {
                    for z in a..m {
                        e.push((label(u, w, k, 0, z), label(u, w, k, 1, z - a)));
                    }
                }
            }
        }
    }
    for w in 0..m {
        for z in 0..m {
            for h in 0..t {
                for k in 0..t {
                    for i in 0..2 {
                        for j in 0..2 {
                            for a in 0..2 {
                                for b in 0..2 {
                                    let w0 = (2 * w + 1 + a * 2 * i) - a;
                                    let w1 = (2 * z + 1 + b * 2 * j) - b;
                                    e.push((label(0, w0, k, j, z), label(1, w1, h, i, w)));
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    (4 * t * mm * m, normalise(e))
}

/// Renumbers the nodes that occur in `edges` as `0..n` in increasing order.
fn relabel(edges: Vec<(usize, usize)>) -> (usize, Vec<(usize, usize)>) {
    let nodes: BTreeSet<usize> = edges.iter().flat_map(|&(a, b)| [a, b]).collect();
    let index: std::collections::HashMap<usize, usize> =
        nodes.iter().enumerate().map(|(i, &v)| (v, i)).collect();
    (
        nodes.len(),
        normalise(edges.into_iter().map(|(a, b)| (index[&a], index[&b]))),
    )
}

/// A proper colouring of the graph on `n` nodes with the given edges: classes of nodes no two
/// of which are joined. A bipartite graph gets its two sides (by breadth-first search; an
/// isolated node joins class 0); any other graph gets DSatur's greedy colouring (Brélaz 1979).
/// Classes are sorted lists; no class is empty.
///
/// ```
/// use gumbolt_priors::topology::greedy_colouring;
/// let triangle = greedy_colouring(3, &[(0, 1), (1, 2), (0, 2)]);
/// assert_eq!(triangle.len(), 3);
/// let square = greedy_colouring(4, &[(0, 1), (1, 2), (2, 3), (3, 0)]);
/// assert_eq!(square, vec![vec![0, 2], vec![1, 3]]);
/// ```
pub fn greedy_colouring(n: usize, edges: &[(usize, usize)]) -> Vec<Vec<usize>> {
    let mut adj = vec![Vec::new(); n];
    for &(a, b) in edges {
        adj[a].push(b);
        adj[b].push(a);
    }
    let colour = two_colouring(&adj).unwrap_or_else(|| dsatur(&adj));
    let k = colour.iter().copied().max().map_or(0, |c| c + 1);
    let mut classes = vec![Vec::new(); k];
    for (i, &c) in colour.iter().enumerate() {
        classes[c].push(i);
    }
    classes.retain(|c| !c.is_empty());
    classes
}

fn two_colouring(adj: &[Vec<usize>]) -> Option<Vec<usize>> {
    let n = adj.len();
    let mut colour = vec![usize::MAX; n];
    let mut queue = std::collections::VecDeque::new();
    for s in 0..n {
        if colour[s] != usize::MAX {
            continue;
        }
        colour[s] = 0;
        queue.push_back(s);
        while let Some(v) = queue.pop_front() {
            for &u in &adj[v] {
                if colour[u] == usize::MAX {
                    colour[u] = 1 - colour[v];
                    queue.push_back(u);
                } else if colour[u] == colour[v] {
                    return None;
                }
            }
        }
    }
    Some(colour)
}

fn dsatur(adj: &[Vec<usize>]) -> Vec<usize> {
    let n = adj.len();
    let mut colour = vec![usize::MAX; n];
    let mut seen: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); n];
    // Max-heap on (saturation, degree, −index).
    let mut heap: std::collections::BinaryHeap<(usize, usize, std::cmp::Reverse<usize>)> = (0..n)
        .map(|i| (0, adj[i].len(), std::cmp::Reverse(i)))
        .collect();
    while let Some((sat, deg, std::cmp::Reverse(v))) = heap.pop() {
        if colour[v] != usize::MAX || sat != seen[v].len() {
            continue; // stale entry
        }
        let _ = deg;
        let c = (0..).find(|c| !seen[v].contains(c)).expect("a free colour");
        colour[v] = c;
        for &u in &adj[v] {
            if colour[u] == usize::MAX && seen[u].insert(c) {
                heap.push((seen[u].len(), adj[u].len(), std::cmp::Reverse(u)));
            }
        }
    }
    colour
}

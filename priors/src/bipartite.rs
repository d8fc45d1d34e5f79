//! Exact moments of a bipartite binary model with one side summed out analytically and the
//! other enumerated in Gray-code order (docs/algorithms.md §1 "free energy", §7.3).
//!
//! The model: `log p̃(z_e, z_o) = h_eᵀz_e + z_oᵀ(h_o + Σ_k z_e,k u_k)` with `z_e ∈ {0,1}^m`
//! (enumerated) and `z_o ∈ {0,1}^{n_o}` (summed out):
//! `log p̃(z_e) = h_eᵀz_e + Σ_j softplus(c_j)` with `c = h_o + Σ_k z_e,k u_k`.
//!
//! Gray-code order flips one unit per step, so `c` is updated in `O(n_o)`. When every `|c_j|`
//! is provably at most 80 (`|h_o,j| + Σ_k |u_kj| ≤ 80`), the state is `e_j = e^{c_j}` instead,
//! updated by multiplying or dividing by `e^{u_kj}` (division, not multiplication by
//! `e^{−u_kj}`, so rounding does not drift systematically), and
//! `Σ_j softplus(c_j) = log Π_j (1 + e_j)` costs no transcendental per unit
//! ([`log_prod_1p`]); otherwise `c` is kept and libm `softplus` is used.
//!
//! The state is recomputed from scratch every [`FRESH`] steps and at the start of each range
//! of configurations (bounding the drift of the incremental update and making ranges
//! independent, hence parallel). The ranges are fixed by `m` alone and merged in order, so
//! results do not depend on the number of threads.

use crate::kernels::{PROD_BOUND, log_prod_1p, softplus_sum, softplus_sum_sigmoid};
use nalgebra::{DMatrixView, DMatrixViewMut};

/// What to compute besides `log Z`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Level {
    /// `log Z` only.
    LogZ,
    /// `log Z`, `E[z_e]`, `E[σ(c)] = E[z_o]`.
    Marginals,
    /// Also `E[σ(c) z_eᵀ]` (`n_o × m`, column-major).
    Full,
}

/// Exact results of [`enumerate`].
#[derive(Debug, Clone)]
pub(crate) struct Moments {
    pub log_z: f64,
    /// `E[z_e]` (length `m`; empty at [`Level::LogZ`]).
    pub e_z: Vec<f64>,
    /// `E[z_o] = E[σ(c)]` (length `n_o`; empty at [`Level::LogZ`]).
    pub e_s: Vec<f64>,
    /// `E[z_o z_eᵀ]` as an `n_o × m` column-major matrix: entry `(j, k)` at `j + k·n_o`
    /// (empty unless [`Level::Full`]).
    pub e_zs: Vec<f64>,
}

/// Configurations per block of the weighted accumulation.
const BLOCK: usize = 128;
/// Below this many configurations, one range; otherwise [`RANGES`].
const SPLIT_MIN: u64 = 4096;
const RANGES: u64 = 64;
/// Work (`2^m · (n_o + 1)`) above which threads are used.
const PARALLEL_WORK: u64 = 1 << 20;
/// Steps between recomputations of the incremental state.
const FRESH: u64 = 1024;

struct Problem<'a> {
    h_e: &'a [f64],
    h_o: &'a [f64],
    /// `m` rows of length `n_o`: row `k` is `u_k`.
    u: &'a [f64],
    /// `e^{u}` (same layout), present when the exp-space fast path is valid.
    exp_u: Option<Vec<f64>>,
    level: Level,
}

/// Max-shifted weighted sums: every sum is scaled by `e^{−max}`.
struct Acc {
    max: f64,
    sum: f64,
    ez: Vec<f64>,
    es: Vec<f64>,
    ezs: Vec<f64>,
}

impl Acc {
    fn new(m: usize, n_o: usize, level: Level) -> Self {
        let (a, b, c) = match level {
            Level::LogZ => (0, 0, 0),
            Level::Marginals => (m, n_o, 0),
            Level::Full => (m, n_o, m * n_o),
        };
        Acc {
            max: f64::NEG_INFINITY,
            sum: 0.0,
            ez: vec![0.0; a],
            es: vec![0.0; b],
            ezs: vec![0.0; c],
        }
    }

    fn rescale(&mut self, new_max: f64) {
        if new_max <= self.max {
            return;
        }
        let f = if self.max == f64::NEG_INFINITY {
            0.0
        } else {
            (self.max - new_max).exp()
        };
        self.sum *= f;
        for v in self
            .ez
            .iter_mut()
            .chain(self.es.iter_mut())
            .chain(self.ezs.iter_mut())
        {
            *v *= f;
        }
        self.max = new_max;
    }

    fn merge(&mut self, other: &Acc) {
        if other.max == f64::NEG_INFINITY {
            return;
        }
        self.rescale(other.max);
        let f = (other.max - self.max).exp();
        self.sum += f * other.sum;
        for (d, s) in self.ez.iter_mut().zip(&other.ez) {
            *d += f * s;
        }
        for (d, s) in self.es.iter_mut().zip(&other.es) {
            *d += f * s;
        }
        for (d, s) in self.ezs.iter_mut().zip(&other.ezs) {
            *d += f * s;
        }
    }
}

/// Enumerates `z_e ∈ {0,1}^m` (`m = h_e.len() ≤ 63`) and returns the exact moments.
pub(crate) fn enumerate(h_e: &[f64], h_o: &[f64], u: &[f64], level: Level) -> Moments {
    let m = h_e.len();
    let n_o = h_o.len();
    assert!(m < 64, "bipartite enumeration of {m} units");
    assert_eq!(u.len(), m * n_o, "bipartite enumeration: coupling length");
    let bound = (0..n_o)
        .map(|j| h_o[j].abs() + (0..m).map(|k| u[k * n_o + j].abs()).sum::<f64>())
        .fold(0.0, f64::max);
    let exp_u = (bound <= PROD_BOUND).then(|| u.iter().map(|x| x.exp()).collect());
    let p = Problem {
        h_e,
        h_o,
        u,
        exp_u,
        level,
    };
    let total: u64 = 1u64 << m;
    let ranges = if total < SPLIT_MIN { 1 } else { RANGES };
    let len = total.div_ceil(ranges);
    let bounds: Vec<(u64, u64)> = (0..ranges)
        .map(|r| (r * len, ((r + 1) * len).min(total)))
        .filter(|(s, e)| s < e)
        .collect();
    let work = total.saturating_mul(n_o as u64 + 1);
    let threads = if work >= PARALLEL_WORK {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(bounds.len())
    } else {
        1
    };
    let accs: Vec<Acc> = if threads <= 1 {
        bounds
            .iter()
            .map(|&(s, e)| process_range(&p, s, e))
            .collect()
    } else {
        let mut slots: Vec<Option<Acc>> = (0..bounds.len()).map(|_| None).collect();
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let p = &p;
                    let bounds = &bounds;
                    scope.spawn(move || {
                        gumbolt_core::fpmode::enable_flush_to_zero();
                        bounds
                            .iter()
                            .enumerate()
                            .skip(t)
                            .step_by(threads)
                            .map(|(i, &(s, e))| (i, process_range(p, s, e)))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            for h in handles {
                for (i, acc) in h.join().expect("enumeration thread panicked") {
                    slots[i] = Some(acc);
                }
            }
        });
        slots
            .into_iter()
            .map(|a| a.expect("every range processed"))
            .collect()
    };
    let mut total_acc = Acc::new(m, n_o, level);
    for a in &accs {
        total_acc.merge(a);
    }
    let s = total_acc.sum;
    let norm = |v: Vec<f64>| v.into_iter().map(|x| x / s).collect::<Vec<_>>();
    Moments {
        log_z: total_acc.max + s.ln(),
        e_z: norm(total_acc.ez),
        e_s: norm(total_acc.es),
        e_zs: norm(total_acc.ezs),
    }
}

/// The running state of a Gray-code walk.
struct Walk {
    z: Vec<bool>,
    lin: f64,
    /// `c` (slow path) or `e^{c}` (fast path).
    state: Vec<f64>,
}

impl Walk {
    /// The state at Gray-code index `t`, computed from scratch.
    fn fresh(p: &Problem<'_>, t: u64) -> Walk {
        let m = p.h_e.len();
        let n_o = p.h_o.len();
        let gray = t ^ (t >> 1);
        let z: Vec<bool> = (0..m).map(|k| (gray >> k) & 1 == 1).collect();
        let mut c = p.h_o.to_vec();
        let mut lin = 0.0;
        for k in (0..m).filter(|&k| z[k]) {
            lin += p.h_e[k];
            for (cj, &uj) in c.iter_mut().zip(&p.u[k * n_o..(k + 1) * n_o]) {
                *cj += uj;
            }
        }
        if p.exp_u.is_some() {
            c.iter_mut().for_each(|x| *x = x.exp());
        }
        Walk { z, lin, state: c }
    }

    /// Flips unit `k`.
    fn flip(&mut self, p: &Problem<'_>, k: usize) {
        let n_o = p.h_o.len();
        let range = k * n_o..(k + 1) * n_o;
        self.z[k] = !self.z[k];
        let on = self.z[k];
        self.lin += if on { p.h_e[k] } else { -p.h_e[k] };
        match (&p.exp_u, on) {
            (Some(eu), true) => self
                .state
                .iter_mut()
                .zip(&eu[range])
                .for_each(|(e, f)| *e *= f),
            (Some(eu), false) => self
                .state
                .iter_mut()
                .zip(&eu[range])
                .for_each(|(e, f)| *e /= f),
            (None, true) => self
                .state
                .iter_mut()
                .zip(&p.u[range])
                .for_each(|(c, u)| *c += u),
            (None, false) => self
                .state
                .iter_mut()
                .zip(&p.u[range])
                .for_each(|(c, u)| *c -= u),
        }
    }

    /// `log p̃(z_e)`, and `σ(c)` into `sig` if given.
    fn log_weight(&self, p: &Problem<'_>, sig: Option<&mut [f64]>) -> f64 {
        self.lin
            + match (&p.exp_u, sig) {
                (Some(_), sig) => log_prod_1p(&self.state, sig),
                (None, Some(sig)) => softplus_sum_sigmoid(&self.state, sig),
                (None, None) => softplus_sum(&self.state),
            }
    }
}

/// Processes Gray-code indices `start..end`.
fn process_range(p: &Problem<'_>, start: u64, end: u64) -> Acc {
    let m = p.h_e.len();
    let n_o = p.h_o.len();
    let mut acc = Acc::new(m, n_o, p.level);
    let moments = p.level >= Level::Marginals;
    let mut walk = Walk::fresh(p, start);
    let mut lp = vec![0.0; BLOCK];
    let mut sig = if moments {
        vec![0.0; n_o * BLOCK]
    } else {
        Vec::new()
    };
    let mut zb = if moments {
        vec![0.0; BLOCK * m]
    } else {
        Vec::new()
    };
    let mut slot = 0;
    for t in start..end {
        if t > start {
            if (t - start).is_multiple_of(FRESH) {
                walk = Walk::fresh(p, t);
            } else {
                walk.flip(p, t.trailing_zeros() as usize);
            }
        }
        if moments {
            let col = &mut sig[slot * n_o..(slot + 1) * n_o];
            lp[slot] = walk.log_weight(p, Some(col));
            for (k, &on) in walk.z.iter().enumerate() {
                zb[slot + k * BLOCK] = if on { 1.0 } else { 0.0 };
            }
        } else {
            lp[slot] = walk.log_weight(p, None);
        }
        slot += 1;
        if slot == BLOCK || t + 1 == end {
            flush(p, &mut acc, &mut lp[..slot], &mut sig, &zb);
            slot = 0;
        }
    }
    acc
}

/// Adds a block of `nb = lp.len()` configurations to `acc`.
fn flush(p: &Problem<'_>, acc: &mut Acc, lp: &mut [f64], sig: &mut [f64], zb: &[f64]) {
    let nb = lp.len();
    let m = p.h_e.len();
    let n_o = p.h_o.len();
    let block_max = lp.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    acc.rescale(block_max);
    // lp becomes the weights e^{lp − max}.
    for w in lp.iter_mut() {
        *w = (*w - acc.max).exp();
        acc.sum += *w;
    }
    if p.level == Level::LogZ {
        return;
    }
    for (k, e) in acc.ez.iter_mut().enumerate() {
        let col = &zb[k * BLOCK..k * BLOCK + nb];
        *e += col.iter().zip(lp.iter()).map(|(z, w)| z * w).sum::<f64>();
    }
    for (r, &w) in lp.iter().enumerate() {
        let col = &mut sig[r * n_o..(r + 1) * n_o];
        for (e, s) in acc.es.iter_mut().zip(col.iter_mut()) {
            *s *= w;
            *e += *s;
        }
    }
    if p.level == Level::Full && m > 0 && n_o > 0 {
        let s = DMatrixView::from_slice(&sig[..n_o * nb], n_o, nb);
        let z = DMatrixView::from_slice_with_strides(&zb[..(m - 1) * BLOCK + nb], nb, m, 1, BLOCK);
        let mut g = DMatrixViewMut::from_slice(&mut acc.ezs, n_o, m);
        // Plain (untransposed) f64 product: nalgebra dispatches it to matrixmultiply::dgemm.
        g.gemm(1.0, &s, &z, 1.0);
    }
}

#[cfg(test)]
#[allow(clippy::needless_range_loop)] // index-heavy reference formulas
mod tests {
    use super::*;
    use gumbolt_core::numerics::{log_sum_exp, sigmoid};

    fn lcg(n: usize, seed: u64, scale: f64) -> Vec<f64> {
        let mut s = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                ((s >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 2.0 * scale
            })
            .collect()
    }

    /// Brute force over both sides in natural order.
    fn brute(h_e: &[f64], h_o: &[f64], u: &[f64]) -> (f64, Vec<f64>, Vec<f64>, Vec<f64>) {
        let m = h_e.len();
        let n_o = h_o.len();
        let mut lps = Vec::new();
        let mut confs = Vec::new();
        for x in 0u64..(1 << m) {
            for y in 0u64..(1 << n_o) {
                let mut v = 0.0;
                for k in 0..m {
                    if (x >> k) & 1 == 1 {
                        v += h_e[k];
                    }
                }
                for j in 0..n_o {
                    if (y >> j) & 1 == 1 {
                        v += h_o[j];
                        for k in 0..m {
                            if (x >> k) & 1 == 1 {
                                v += u[k * n_o + j];
                            }
                        }
                    }
                }
                lps.push(v);
                confs.push((x, y));
            }
        }
        let lz = log_sum_exp(&lps);
        let mut ez = vec![0.0; m];
        let mut es = vec![0.0; n_o];
        let mut ezs = vec![0.0; m * n_o];
        for (&v, &(x, y)) in lps.iter().zip(&confs) {
            let p = (v - lz).exp();
            for k in 0..m {
                if (x >> k) & 1 == 1 {
                    ez[k] += p;
                    for j in 0..n_o {
                        if (y >> j) & 1 == 1 {
                            ezs[j + k * n_o] += p;
                        }
                    }
                }
            }
            for j in 0..n_o {
                if (y >> j) & 1 == 1 {
                    es[j] += p;
                }
            }
        }
        (lz, ez, es, ezs)
    }

    #[test]
    fn gray_code_enumeration_matches_brute_force() {
        for (m, n_o, seed, scale) in [
            (0, 3, 1, 1.0),
            (1, 4, 2, 1.0),
            (3, 5, 3, 1.0),
            (6, 4, 4, 1.0),
            (7, 7, 5, 1.0),
            (5, 0, 6, 1.0),
            (6, 5, 7, 30.0), // |c| can exceed 80: the libm path
        ] {
            let h_e = lcg(m, seed, 1.5 * scale);
            let h_o = lcg(n_o, seed + 100, 1.5 * scale);
            let u = lcg(m * n_o, seed + 200, 2.0 * scale);
            let (lz, ez, es, ezs) = brute(&h_e, &h_o, &u);
            let got = enumerate(&h_e, &h_o, &u, Level::Full);
            let tol = 1e-12 * (1.0 + lz.abs());
            assert!(
                (got.log_z - lz).abs() < tol,
                "m={m} n_o={n_o}: {} vs {lz}",
                got.log_z
            );
            let all = got.e_z.iter().zip(&ez).chain(got.e_s.iter().zip(&es));
            for (a, b) in all.chain(got.e_zs.iter().zip(&ezs)) {
                assert!((a - b).abs() < 1e-12, "m={m} n_o={n_o}: {a} vs {b}");
            }
            let lz_only = enumerate(&h_e, &h_o, &u, Level::LogZ);
            assert!((lz_only.log_z - lz).abs() < tol);
            let marg = enumerate(&h_e, &h_o, &u, Level::Marginals);
            assert_eq!(
                (marg.e_z.clone(), marg.e_s.clone()),
                (got.e_z.clone(), got.e_s.clone())
            );
        }
    }

    #[test]
    fn split_ranges_and_threads_agree_with_single_pass_formula() {
        // m = 13 > log2(SPLIT_MIN): 64 ranges, threaded. Compare to a direct natural-order sum.
        let (m, n_o) = (13, 40);
        let h_e = lcg(m, 7, 0.5);
        let h_o = lcg(n_o, 8, 0.5);
        let u = lcg(m * n_o, 9, 0.3);
        let got = enumerate(&h_e, &h_o, &u, Level::Full);
        let mut lps = Vec::with_capacity(1 << m);
        for x in 0u64..(1 << m) {
            let mut v = 0.0;
            let mut c = h_o.clone();
            for k in 0..m {
                if (x >> k) & 1 == 1 {
                    v += h_e[k];
                    for j in 0..n_o {
                        c[j] += u[k * n_o + j];
                    }
                }
            }
            v += c
                .iter()
                .map(|&cj| gumbolt_core::numerics::softplus(cj))
                .sum::<f64>();
            lps.push(v);
        }
        let lz = log_sum_exp(&lps);
        assert!(
            (got.log_z - lz).abs() < 1e-12 * lz.abs(),
            "{} vs {lz}",
            got.log_z
        );
        // E[σ(c_0)] and E[z_3 σ(c_5)] directly.
        let (mut es0, mut ezs) = (0.0, 0.0);
        for x in 0u64..(1 << m) {
            let p = (lps[x as usize] - lz).exp();
            let mut c0 = h_o[0];
            let mut c5 = h_o[5];
            for k in 0..m {
                if (x >> k) & 1 == 1 {
                    c0 += u[k * n_o];
                    c5 += u[k * n_o + 5];
                }
            }
            es0 += p * sigmoid(c0);
            if (x >> 3) & 1 == 1 {
                ezs += p * sigmoid(c5);
            }
        }
        assert!((got.e_s[0] - es0).abs() < 1e-12);
        assert!((got.e_zs[5 + 3 * n_o] - ezs).abs() < 1e-12);
    }
}

//! Exact answers by enumerating all `2^n` configurations of any [`Prior`].
//!
//! Slow (`O(2^n · cost of E)`) but generic: it is the reference every sampler, estimator and
//! specialised exact method is tested against, and it gives users' own priors an exact `log Z`.

use crate::Mat;
use crate::error::{CoreError, Result};
use crate::numerics::LogSumExp;
use crate::prior::Prior;

/// The largest number of units [`enumerate`] accepts (2²⁴ ≈ 1.7·10⁷ configurations).
pub const MAX_ENUMERATION_UNITS: usize = 24;

/// Exact summary statistics of `p(z) = e^{−E(z)}/Z` over `{0,1}^n`.
#[derive(Debug, Clone, PartialEq)]
pub struct Enumeration {
    /// `log Z`.
    pub log_z: f64,
    /// `E_p[z_i]` for every unit.
    pub marginals: Vec<f64>,
    /// `min_z E(z)` over the vertices.
    pub energy_min: f64,
    /// `max_z E(z)` over the vertices.
    pub energy_max: f64,
}

const CHUNK: usize = 4096;

/// Enumerates all configurations of `prior` (unit `i` is bit `i` of the configuration index).
///
/// ```
/// use gumbolt_core::exact::enumerate;
/// # use gumbolt_core::prior::Prior;
/// # use nalgebra::DMatrixView;
/// #[derive(Clone, Debug)]
/// struct Free(usize); // E ≡ 0
/// impl Prior for Free {
///     fn num_units(&self) -> usize { self.0 }
///     fn energy_into(&self, _: DMatrixView<'_, f32>, out: &mut [f64]) { out.fill(0.0) }
/// }
/// let e = enumerate(&Free(3)).unwrap();
/// assert!((e.log_z - 8f64.ln()).abs() < 1e-12);
/// assert!(e.marginals.iter().all(|&m| (m - 0.5).abs() < 1e-12));
/// ```
pub fn enumerate<P: Prior + ?Sized>(prior: &P) -> Result<Enumeration> {
    let n = prior.num_units();
    if n > MAX_ENUMERATION_UNITS {
        return Err(CoreError::Intractable {
            what: "enumeration",
            units: n,
            limit: MAX_ENUMERATION_UNITS,
        });
    }
    let total: u64 = 1 << n;
    let mut lse = LogSumExp::default();
    let mut energy_min = f64::INFINITY;
    let mut energy_max = f64::NEG_INFINITY;
    let mut all_e: Vec<(u64, f64)> = Vec::new();
    let mut batch = Mat::zeros(CHUNK.min(total as usize), n);
    let mut e = vec![0.0; batch.nrows()];
    let mut start = 0u64;
    while start < total {
        let rows = (total - start).min(CHUNK as u64) as usize;
        if rows != batch.nrows() {
            batch = Mat::zeros(rows, n);
            e = vec![0.0; rows];
        }
        for j in 0..n {
            let col = batch.column_mut(j);
            for (r, v) in col.into_iter().enumerate() {
                *v = (((start + r as u64) >> j) & 1) as f32;
            }
        }
        prior.energy_into(batch.as_view(), &mut e);
        for (r, &er) in e.iter().enumerate() {
            lse.add(-er);
            energy_min = energy_min.min(er);
            energy_max = energy_max.max(er);
            all_e.push((start + r as u64, er));
        }
        start += rows as u64;
    }
    let log_z = lse.value();
    let mut marginals = vec![0.0; n];
    for &(idx, er) in &all_e {
        let p = (-er - log_z).exp();
        for (j, m) in marginals.iter_mut().enumerate() {
            if (idx >> j) & 1 == 1 {
                *m += p;
            }
        }
    }
    Ok(Enumeration {
        log_z,
        marginals,
        energy_min,
        energy_max,
    })
}

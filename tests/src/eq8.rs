//! The harness of the Eq. 8 checks: tiny VAEs whose relaxed objective `L̃_k`, its lower bound
//! `Ľ_k` (GB Eq. 8), the trained objective `F_k` (GB Eq. 9) and the relaxed model's marginal
//! likelihood `log p̃(x)` can all be computed, and a Monte-Carlo confidence interval for the
//! relaxed partition function `Z̃` of GB Theorem 2 on energies too large for quadrature.
//!
//! A tiny VAE is one data point `x ∈ {0,1}^D`, an encoder output `l = l(x) ∈ ℝ^n` (the
//! factorial Concrete posterior `q(ζ|x) = Π_i q(ζ_i | l_i, τ)`, GB Eq. 2), a prior energy `E`
//! over `n ≤ 4` units and a logistic decoder `p(x|ζ) = Π_d σ((2x_d − 1)(c_d + W_d·ζ))`
//! evaluated at the relaxed ζ. With `w(ζ) = e^{−E(ζ)} p(x|ζ) / q(ζ|x)`:
//!
//! - `L̃_k = E[log (1/k) Σ_i w(ζ^i)] − log Z̃` (the relaxed model's IW bound, GB §3);
//! - `Ľ_k = E[log (1/k) Σ_i w(ζ^i)] − log Z` (GB Eq. 8);
//! - `F_k = E[log (1/k) Σ_i e^{−E(ζ^i)} p(x|ζ^i) / q̌(ζ^i|x)] − log Z` (GB Eq. 9, with the
//!   Bernoulli proxy `log q̌(ζ|x) = Σ_i ζ_i log q̄_i + (1 − ζ_i) log(1 − q̄_i)`, `q̄ = σ(l)`, as
//!   the library's [`BernoulliPosterior`] computes it for training);
//! - `log p̃(x) = log ∫ e^{−E(ζ)} p(x|ζ) dζ − log Z̃`, by tensor Gauss–Legendre quadrature.
//!
//! `Z̃` is integrated by the full tensor rule and `Z` by enumerating the vertices, through the
//! [`Multilinear`] view only: nothing here assumes multilinearity, so a non-multilinear energy
//! (the negative controls' [`Bowl`]) goes through exactly the same code.

use crate::poly::{Multilinear, vertex, vertex_stats};
use crate::quadrature::{Rule, gauss_legendre_composite};
use gumbolt_core::Mat;
use gumbolt_core::Posterior;
use gumbolt_core::exact::enumerate;
use gumbolt_core::numerics::{LogSumExp, log_mean_exp, log_sigmoid};
use gumbolt_core::prior::Prior;
use gumbolt_core::rng::{fill_uniform, root_rng, uniform_f64};
use gumbolt_estimators::BernoulliPosterior;
use gumbolt_estimators::concrete::{BinaryConcrete, factorial_log_density_at_logits};
use nalgebra::{DMatrix, DMatrixView};

/// Gauss–Legendre nodes per panel of the tiny-VAE quadratures.
pub const NODES: usize = 16;
/// Largest slope of the log-integrand per 16-node panel: `e^{ct}`, `|c| ≤ 12`, has relative
/// error below `1e-10` on one panel (far below the Monte-Carlo tolerances it is compared with).
pub const SLOPE_PER_PANEL: f64 = 12.0;

/// The number of standard errors of every one-sided Monte-Carlo tolerance (`P ≈ 3·10⁻⁷` per
/// comparison under the normal approximation).
pub const Z_SCORE: f64 = 5.0;

/// The composite rule for log-integrands whose slope along every axis is at most `slope`.
pub fn rule_for_slope(slope: f64) -> Rule {
    gauss_legendre_composite(NODES, ((slope / SLOPE_PER_PANEL).ceil() as usize).max(1))
}

/// Which density divides the importance weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proposal {
    /// The true Concrete density `q(ζ|x)` (Maddison et al. 2017): `L̃_k` and `Ľ_k`.
    Concrete,
    /// GumBolt's Bernoulli proxy `q̌(ζ|x)` (GB Eq. 9): `F_k`.
    BernoulliProxy,
    /// A deliberate defect for a negative control: the density of the logistic variable
    /// `t = logit ζ` used as if it were the density of ζ (the Jacobian `ζ(1 − ζ)` forgotten).
    /// It is not a density on `[0,1]^n`, and the weights overshoot.
    MissingJacobian,
}

/// A tiny VAE at one data point (see the module documentation).
#[derive(Debug, Clone)]
pub struct TinyVae<'a, M: Multilinear + ?Sized> {
    /// The prior energy `E(ζ)`.
    pub prior: &'a M,
    /// A bound on `|∂E/∂ζ_i|` over the cube for every `i` (sets the quadrature panels).
    pub prior_slope: f64,
    /// Encoder logits `l(x)`, one per latent unit.
    pub logits: Vec<f64>,
    /// Relaxation temperature τ.
    pub tau: f64,
    /// Decoder weights, `D × n`.
    pub w: DMatrix<f64>,
    /// Decoder biases, length `D`.
    pub c: Vec<f64>,
    /// The data point, `x_d ∈ {0, 1}`.
    pub x: Vec<bool>,
}

/// A Monte-Carlo estimate `E[log (1/k) Σ_i w(ζ^i)]` from independent replicates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IwEstimate {
    /// Mean over replicates of `log (1/k) Σ_i w(ζ^i)`.
    pub mean: f64,
    /// Its standard error, `sd / √replicates`.
    pub std_err: f64,
}

/// Exact (enumerated or integrated) quantities of a tiny VAE.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TinyVaeExact {
    /// `log Z` over the vertices.
    pub log_z: f64,
    /// `log Z̃` by tensor quadrature.
    pub log_z_tilde: f64,
    /// `log ∫ e^{−E(ζ)} p(x|ζ) dζ` by tensor quadrature.
    pub log_joint_integral: f64,
    /// The discrete model's `log p(x) = log Σ_z e^{−E(z)} p(x|z) − log Z` (the τ = 0 limit).
    pub log_p_x: f64,
}

impl TinyVaeExact {
    /// `log p̃(x)`, the relaxed model's marginal likelihood.
    pub fn log_p_tilde_x(&self) -> f64 {
        self.log_joint_integral - self.log_z_tilde
    }
}

/// The Eq. 8 chain at one `k`, estimated from independent Monte-Carlo replicates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Eq8Estimates {
    /// Importance samples per replicate.
    pub k: usize,
    /// `L̃_k` (its own replicates).
    pub l_tilde: IwEstimate,
    /// `Ľ_k` (GB Eq. 8; replicates independent of `l_tilde`'s).
    pub l_check: IwEstimate,
    /// `F_k` (GB Eq. 9; its own replicates).
    pub f: IwEstimate,
}

/// A violated inequality, with the numbers that violate it.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    /// What was asserted.
    pub what: &'static str,
    /// The left-hand side estimate.
    pub lhs: f64,
    /// The right-hand side estimate.
    pub rhs: f64,
    /// The tolerance (`Z_SCORE` combined standard errors).
    pub tol: f64,
}

/// `lhs ≤ rhs + tol`, or the violation.
pub fn check_le(what: &'static str, lhs: f64, rhs: f64, tol: f64) -> Result<(), Violation> {
    if lhs <= rhs + tol {
        Ok(())
    } else {
        Err(Violation {
            what,
            lhs,
            rhs,
            tol,
        })
    }
}

/// `Z_SCORE·√(a² + b²)`: the tolerance of a difference of two independent estimates.
pub fn combined_tol(a: f64, b: f64) -> f64 {
    Z_SCORE * (a * a + b * b).sqrt()
}

impl<M: Multilinear + ?Sized> TinyVae<'_, M> {
    /// Number of latent units `n`.
    pub fn num_units(&self) -> usize {
        self.logits.len()
    }

    /// `log p(x|ζ) = Σ_d log σ((2x_d − 1)(c_d + W_d·ζ))`.
    pub fn log_decoder(&self, zeta: &[f64]) -> f64 {
        (0..self.c.len())
            .map(|d| {
                let a = self.c[d]
                    + (0..zeta.len())
                        .map(|j| self.w[(d, j)] * zeta[j])
                        .sum::<f64>();
                log_sigmoid(if self.x[d] { a } else { -a })
            })
            .sum()
    }

    /// A bound on the slope of `−E(ζ) + log p(x|ζ)` along any axis.
    pub fn joint_slope(&self) -> f64 {
        let dec = (0..self.num_units())
            .map(|j| self.w.column(j).iter().map(|v| v.abs()).sum::<f64>())
            .fold(0.0, f64::max);
        self.prior_slope + dec
    }

    /// `log Z`, `log Z̃` and `log ∫ e^{−E} p(x|ζ) dζ` (vertices; tensor quadrature).
    ///
    /// # Panics
    /// If the prior and the encoder disagree on `n`.
    pub fn exact(&self) -> TinyVaeExact {
        let n = self.num_units();
        assert_eq!(self.prior.num_units(), n, "prior and encoder disagree on n");
        let log_z = vertex_stats(self.prior).log_z;
        let log_z_tilde =
            rule_for_slope(self.prior_slope).log_integral_cube(n, |z| -self.prior.energy(z));
        let log_joint_integral = rule_for_slope(self.joint_slope())
            .log_integral_cube(n, |z| -self.prior.energy(z) + self.log_decoder(z));
        let mut joint = LogSumExp::default();
        for index in 0..(1u64 << n) {
            let z = vertex(n, index);
            joint.add(-self.prior.energy(&z) + self.log_decoder(&z));
        }
        TinyVaeExact {
            log_z,
            log_z_tilde,
            log_joint_integral,
            log_p_x: joint.value() - log_z,
        }
    }

    /// `log w(ζ)` at `ζ = σ(t)` for the given proposal density.
    fn log_weight(&self, t: &[f64], scratch: &mut Scratch, proposal: Proposal) -> f64 {
        for (z, &ti) in scratch.zeta.iter_mut().zip(t) {
            *z = 1.0 / (1.0 + (-ti).exp());
        }
        let log_q = match proposal {
            Proposal::Concrete => factorial_log_density_at_logits(&self.logits, self.tau, t),
            Proposal::BernoulliProxy => {
                for (j, &z) in scratch.zeta.iter().enumerate() {
                    scratch.zeta32[(0, j)] = z as f32;
                }
                BernoulliPosterior.log_prob_into(
                    &scratch.logits32,
                    &scratch.zeta32,
                    &mut scratch.out,
                );
                scratch.out[0]
            }
            Proposal::MissingJacobian => {
                factorial_log_density_at_logits(&self.logits, self.tau, t)
                    + t.iter()
                        .map(|&ti| log_sigmoid(ti) + log_sigmoid(-ti))
                        .sum::<f64>()
            }
        };
        -self.prior.energy(&scratch.zeta) + self.log_decoder(&scratch.zeta) - log_q
    }

    /// The per-unit Concrete laws `q(ζ_i | l_i, τ)`.
    fn concretes(&self) -> Vec<BinaryConcrete> {
        self.logits
            .iter()
            .map(|&l| BinaryConcrete::new(l, self.tau).expect("finite logits, τ > 0"))
            .collect()
    }

    fn scratch(&self) -> Scratch {
        let n = self.num_units();
        Scratch {
            zeta: vec![0.0; n],
            zeta32: Mat::zeros(1, n),
            logits32: Mat::from_fn(1, n, |_, j| self.logits[j] as f32),
            out: vec![0.0],
        }
    }

    /// `E[log (1/k) Σ_i w(ζ^i)]` over `replicates` independent replicates of `k` samples
    /// `ζ = σ((l + logit ρ)/τ)` (GB Eq. 2, in f64), from the generator seeded with `seed`.
    ///
    /// # Panics
    /// If `k == 0` or `replicates < 2`.
    pub fn iw_estimate(
        &self,
        k: usize,
        replicates: usize,
        seed: u64,
        proposal: Proposal,
    ) -> IwEstimate {
        assert!(k >= 1 && replicates >= 2);
        let mut rng = root_rng(seed);
        let concretes = self.concretes();
        let (mut t, mut scratch) = (vec![0.0; concretes.len()], self.scratch());
        let mut log_w = vec![0.0; k];
        let values: Vec<f64> = (0..replicates)
            .map(|_| {
                for lw in log_w.iter_mut() {
                    for (ti, q) in t.iter_mut().zip(&concretes) {
                        *ti = q.sample_logit(uniform_f64(&mut rng));
                    }
                    *lw = self.log_weight(&t, &mut scratch, proposal);
                }
                log_mean_exp(&log_w)
            })
            .collect();
        mean_and_std_err(&values)
    }

    /// `L̃_k`, `Ľ_k` and `F_k` from three independent sets of `replicates` replicates (seeds
    /// `seed`, `seed + 1`, `seed + 2`).
    pub fn eq8_estimates(
        &self,
        exact: &TinyVaeExact,
        k: usize,
        replicates: usize,
        seed: u64,
    ) -> Eq8Estimates {
        let shift = |e: IwEstimate, by: f64| IwEstimate {
            mean: e.mean - by,
            std_err: e.std_err,
        };
        let tilde = self.iw_estimate(k, replicates, seed, Proposal::Concrete);
        let check = self.iw_estimate(k, replicates, seed.wrapping_add(1), Proposal::Concrete);
        let f = self.iw_estimate(
            k,
            replicates,
            seed.wrapping_add(2),
            Proposal::BernoulliProxy,
        );
        Eq8Estimates {
            k,
            l_tilde: shift(tilde, exact.log_z_tilde),
            l_check: shift(check, exact.log_z),
            f: shift(f, exact.log_z),
        }
    }

    /// The unbiasedness of the importance weights under `proposal`: the mean of `w(ζ)` over
    /// `samples` draws against `∫ e^{−E} p(x|ζ) dζ` (quadrature), which holds iff the proposal
    /// is the normalised density of the samples. Returns `(log mean, std_err of the log mean)`
    /// (delta method).
    pub fn weight_mean(&self, samples: usize, seed: u64, proposal: Proposal) -> (f64, f64) {
        let mut rng = root_rng(seed);
        let concretes = self.concretes();
        let (mut t, mut scratch) = (vec![0.0; concretes.len()], self.scratch());
        let log_w: Vec<f64> = (0..samples)
            .map(|_| {
                for (ti, q) in t.iter_mut().zip(&concretes) {
                    *ti = q.sample_logit(uniform_f64(&mut rng));
                }
                self.log_weight(&t, &mut scratch, proposal)
            })
            .collect();
        log_mean_with_std_err(&log_w)
    }
}

/// Buffers of [`TinyVae::log_weight`].
struct Scratch {
    zeta: Vec<f64>,
    zeta32: Mat,
    logits32: Mat,
    out: Vec<f64>,
}

/// The Eq. 8 assertions of one tiny VAE at one `k`: `Ľ_k ≤ L̃_k` (independent estimates) and
/// `L̃_k ≤ log p̃(x)` (quadrature), each with a tolerance of [`Z_SCORE`] standard errors.
pub fn check_eq8_chain(exact: &TinyVaeExact, est: &Eq8Estimates) -> Result<(), Violation> {
    check_le(
        "Ľ_k ≤ L̃_k (GB Eq. 8)",
        est.l_check.mean,
        est.l_tilde.mean,
        combined_tol(est.l_check.std_err, est.l_tilde.std_err),
    )?;
    check_le(
        "L̃_k ≤ log p̃(x)",
        est.l_tilde.mean,
        exact.log_p_tilde_x(),
        Z_SCORE * est.l_tilde.std_err,
    )
}

/// The importance weights are unbiased for `∫ e^{−E} p(x|ζ) dζ` (so `E_q[w]/Z̃ = p̃(x)`), which
/// holds iff the proposal density is the normalised law of the samples: the log of the mean of
/// `samples` weights within [`Z_SCORE`] (delta-method) standard errors of the quadrature value,
/// both ways.
pub fn check_weights_unbiased<M: Multilinear + ?Sized>(
    vae: &TinyVae<'_, M>,
    exact: &TinyVaeExact,
    samples: usize,
    seed: u64,
    proposal: Proposal,
) -> Result<(), Violation> {
    let (log_mean, se) = vae.weight_mean(samples, seed, proposal);
    let tol = Z_SCORE * se;
    check_le(
        "log mean w ≤ log ∫ e^{−E} p(x|ζ) dζ",
        log_mean,
        exact.log_joint_integral,
        tol,
    )?;
    check_le(
        "log ∫ e^{−E} p(x|ζ) dζ ≤ log mean w",
        exact.log_joint_integral,
        log_mean,
        tol,
    )
}

/// `L̃_k` non-decreasing along the given estimates (ascending `k`, independent replicates).
pub fn check_monotone_in_k(ests: &[Eq8Estimates]) -> Result<(), Violation> {
    for pair in ests.windows(2) {
        check_le(
            "L̃_k ≤ L̃_k' for k < k'",
            pair[0].l_tilde.mean,
            pair[1].l_tilde.mean,
            combined_tol(pair[0].l_tilde.std_err, pair[1].l_tilde.std_err),
        )?;
    }
    Ok(())
}

/// `(mean, sd/√N)` of `values`.
pub fn mean_and_std_err(values: &[f64]) -> IwEstimate {
    let s = values.len() as f64;
    let mean = values.iter().sum::<f64>() / s;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (s - 1.0);
    IwEstimate {
        mean,
        std_err: (var / s).sqrt(),
    }
}

/// `log mean(e^{x_s})` and its delta-method standard error `sd(e^x)/(√N·mean(e^x))`.
pub fn log_mean_with_std_err(log_values: &[f64]) -> (f64, f64) {
    let max = log_values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let scaled: Vec<f64> = log_values.iter().map(|&v| (v - max).exp()).collect();
    let est = mean_and_std_err(&scaled);
    (max + est.mean.ln(), est.std_err / est.mean)
}

/// `log Z̃` by Monte Carlo against the exact `log Z` (GB Theorem 2 beyond quadrature).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ZTildeVsZ {
    /// `log Z` by enumerating the vertices ([`gumbolt_core::exact::enumerate`]).
    pub log_z: f64,
    /// `log mean_s e^{−E(ζ_s)}`, `ζ_s ∼ U[0,1]^n`.
    pub log_z_tilde: f64,
    /// Delta-method standard error of `log_z_tilde`.
    pub std_err: f64,
}

/// The verdict of [`ZTildeVsZ`] on `Z̃ ≤ Z`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The upper confidence bound `log Z̃ + Z_SCORE·se` is below `log Z`.
    Holds,
    /// The lower confidence bound `log Z̃ − Z_SCORE·se` is above `log Z`: `Z̃ > Z`.
    Violated,
    /// Neither.
    Inconclusive,
}

impl ZTildeVsZ {
    /// `log Z̃ + Z_SCORE·se`.
    pub fn upper(&self) -> f64 {
        self.log_z_tilde + Z_SCORE * self.std_err
    }
    /// `log Z̃ − Z_SCORE·se`.
    pub fn lower(&self) -> f64 {
        self.log_z_tilde - Z_SCORE * self.std_err
    }
    /// [`Verdict::Holds`] if `upper < log Z`, [`Verdict::Violated`] if `lower > log Z`.
    pub fn verdict(&self) -> Verdict {
        if self.upper() < self.log_z {
            Verdict::Holds
        } else if self.lower() > self.log_z {
            Verdict::Violated
        } else {
            Verdict::Inconclusive
        }
    }
}

/// `log Z` of any [`Prior`] by enumeration (`n ≤ 24`) and `log Z̃` by `samples` uniform points
/// evaluated through [`Prior::energy_into`] in batches of 4096 f32 rows (the library's own
/// relaxed energy).
///
/// # Panics
/// If the prior has more than 24 units.
pub fn z_tilde_vs_z<P: Prior + ?Sized>(prior: &P, samples: usize, seed: u64) -> ZTildeVsZ {
    let n = prior.num_units();
    let log_z = enumerate(prior).expect("n ≤ 24 can be enumerated").log_z;
    let mut rng = root_rng(seed);
    let mut neg_e = Vec::with_capacity(samples);
    let mut left = samples;
    let mut buf = vec![0.0f32; 4096 * n];
    let mut e = vec![0.0f64; 4096];
    while left > 0 {
        let rows = left.min(4096);
        fill_uniform(&mut rng, &mut buf[..rows * n]);
        let batch = Mat::from_column_slice(rows, n, &buf[..rows * n]);
        prior.energy_into(batch.as_view(), &mut e[..rows]);
        neg_e.extend(e[..rows].iter().map(|&v| -v));
        left -= rows;
    }
    let (log_z_tilde, std_err) = log_mean_with_std_err(&neg_e);
    ZTildeVsZ {
        log_z,
        log_z_tilde,
        std_err,
    }
}

/// A non-multilinear energy with an interior minimum, for the negative controls:
/// `E(ζ) = −4K Σ_i ζ_i(1 − ζ_i)`. It is 0 at every vertex (`Z = 2^n`), but
/// `Z̃ = (∫_0^1 e^{4Kt(1−t)} dt)^n`, which exceeds `2^n` for `K ≥ 2`: Theorem 2's `Z̃ ≤ Z`
/// fails, and with it Eq. 8.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bowl {
    /// Units.
    pub n: usize,
    /// Depth: the minimum is `−K n` at the centre.
    pub k: f64,
}

impl Bowl {
    /// `max_i sup |∂E/∂ζ_i| = 4K`.
    pub fn slope(&self) -> f64 {
        4.0 * self.k
    }
}

impl Multilinear for Bowl {
    fn num_units(&self) -> usize {
        self.n
    }
    fn energy(&self, zeta: &[f64]) -> f64 {
        -4.0 * self.k * zeta.iter().map(|z| z * (1.0 - z)).sum::<f64>()
    }
    fn gap(&self, zeta: &[f64], i: usize) -> f64 {
        -4.0 * self.k * (1.0 - 2.0 * zeta[i])
    }
    fn coeff_abs_sum(&self) -> f64 {
        8.0 * self.k * self.n as f64
    }
}

impl Prior for Bowl {
    fn num_units(&self) -> usize {
        self.n
    }
    fn energy_into(&self, zeta: DMatrixView<'_, f32>, out: &mut [f64]) {
        for (r, o) in out.iter_mut().enumerate() {
            *o = -4.0
                * self.k
                * zeta
                    .row(r)
                    .iter()
                    .map(|&z| z as f64 * (1.0 - z as f64))
                    .sum::<f64>();
        }
    }
}

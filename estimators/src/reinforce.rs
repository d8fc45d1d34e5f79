//! Score-function (REINFORCE) estimation for Bernoulli posteriors, with the NVIL and VIMCO
//! baselines (docs/algorithms.md §6).
//!
//! For a factorial Bernoulli posterior `q(z|l)` with logits `l`,
//! `∂ log q(z|l)/∂l = z − σ(l)` (docs/algorithms.md §6, Scores), so for any learning signal `ℓ(z)`
//! that does not depend on `l` at fixed z,
//!
//! `∂ E_q[ℓ]/∂l = E_q[ℓ(z)·(z − σ(l))]`.
//!
//! This module works at the estimator level: the learning signal
//! `ℓ(x,z) = log p(x|z) − E(z) − log q(z|x)` (docs/algorithms.md §6, Learning signal) and the learned
//! input-dependent baseline `C_ψ(x)` are computed by the model layer and passed in.
//!
//! | item | what |
//! |---|---|
//! | [`Reinforce`] | discrete sampling `z = 1[l + logit ρ > 0]` and the backward `−signal·(z − σ(l))` |
//! | [`NvilBaseline`] | NVIL's running mean `c` and variance `v` of `ℓ − C_ψ(x)` (decay 0.8) and the centred, normalised signal |
//! | [`vimco_signals`] | VIMCO's leave-one-out signals `L̂ − L̂_{−j}` and normalised weights `w̃_j` for k samples of one data point |

use crate::EstimatorError;
use gumbolt_core::{GradientEstimator, Mat, Posterior, ScoreFunctionEstimator, ScoreGrad};
use serde::{Deserialize, Serialize};

use crate::BernoulliPosterior;
use crate::gumbel::Discrete;

/// The score-function (REINFORCE) estimator for a Bernoulli layer (docs/algorithms.md §6).
///
/// * [`GradientEstimator::sample_into`] draws the discrete sample exactly as [`Discrete`]:
///   `z = 1[l + logit ρ > 0]`, so `P(z = 1) = σ(l)`.
/// * [`ScoreFunctionEstimator::logits_grad_into`] writes, for row r and unit i,
///   `∂loss/∂l_{ri} = −s_r · (z_{ri} − σ(l_{ri}))`, where `s_r` is
///   [`ScoreGrad::learning_signal`]`[r]`.
///
/// **Sign convention.** The learning signal is an *objective* to maximise (the ELBO-like
/// `ℓ = log p(x|z) − E(z) − log q(z|x)`, possibly centred by a baseline), while gradients in
/// gumbolt are gradients of the *loss* `= −objective`. Hence the minus sign: descending along
/// the written gradient increases `E_q[s]`. The per-row estimate is unbiased for
/// `−∂E_q[s]/∂l` whenever `s` does not depend on the sample it multiplies (a constant or
/// leave-one-out baseline keeps it unbiased, [`NvilBaseline`], [`vimco_signals`]).
///
/// The direct dependence of the signal on `l` at fixed z (e.g. `−log q(z|l)` inside ℓ, whose
/// gradient has zero expectation for k = 1, or the `Σ_j w̃_j ∇f_j` term of VIMCO) is the
/// caller's to add.
///
/// ```
/// use gumbolt_core::{GradientEstimator, Mat, ScoreFunctionEstimator, ScoreGrad};
/// use gumbolt_estimators::Reinforce;
/// let l = Mat::from_row_slice(1, 2, &[0.0f32, 0.0]);
/// let rho = Mat::from_row_slice(1, 2, &[0.6f32, 0.4]);
/// let mut z = Mat::zeros(1, 2);
/// Reinforce.sample_into(&l, &rho, &mut z);
/// assert_eq!(z.as_slice(), &[1.0, 0.0]);
/// let mut g = Mat::zeros(1, 2);
/// let signal = [2.0];
/// Reinforce.logits_grad_into(
///     ScoreGrad {
///         logits: &l,
///         sample: &z,
///         learning_signal: &signal,
///     },
///     &mut g,
/// );
/// // −2·(1 − 0.5) and −2·(0 − 0.5)
/// assert_eq!(g.as_slice(), &[-1.0, 1.0]);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reinforce;

impl GradientEstimator for Reinforce {
    /// `out = 1[l + logit ρ > 0]` as 0.0/1.0 (identical to [`Discrete`]).
    ///
    /// # Panics
    /// If `logits` and `noise` differ in shape.
    fn sample_into(&self, logits: &Mat, noise: &Mat, out: &mut Mat) {
        Discrete.sample_into(logits, noise, out);
    }
}

impl ScoreFunctionEstimator for Reinforce {
    /// `out[r, i] = −s_r · (z[r, i] − σ(l[r, i]))` with `s = grad.learning_signal` (the
    /// gradient of the loss `−s`; see the type-level docs for the sign convention). The score
    /// is [`BernoulliPosterior`]'s ([`Posterior::score_into`]); the product is taken in f32.
    ///
    /// # Panics
    /// Passing the learning signal is a programming contract of score-function estimators, not
    /// user input: this panics if its length differs from the number of rows, or if `logits`
    /// and `sample` differ in shape.
    fn logits_grad_into(&self, grad: ScoreGrad<'_>, out: &mut Mat) {
        let signal = grad.learning_signal;
        let rows = grad.logits.nrows();
        assert_eq!(
            signal.len(),
            rows,
            "Reinforce::logits_grad_into: learning_signal must have one value per row"
        );
        BernoulliPosterior.score_into(grad.logits, grad.sample, out);
        // Column-major storage: column j holds unit j of every row.
        if rows == 0 {
            return;
        }
        for col in out.as_mut_slice().chunks_exact_mut(rows) {
            for (v, &s) in col.iter_mut().zip(signal) {
                *v *= (-s) as f32;
            }
        }
    }
}

/// NVIL's signal centring and variance normalisation (Mnih & Gregor 2014; docs/algorithms.md §6,
/// NVIL):
///
/// `s = (ℓ − c − C_ψ(x)) / max(1, √v)`,
///
/// where `c` and `v` are running (exponentially decayed, α = 0.8 by default) mean and variance
/// of `ℓ − C_ψ(x)` over minibatches: `c ← α c + (1−α) mean_b`, `v ← α v + (1−α) var_b`. The
/// moving `c` absorbs the drifting `log Z` of an RBM prior. `C_ψ(x)` is an input here; the
/// network and its regression loss `(ℓ − c − C_ψ(x))²` belong to the model layer.
///
/// **Ordering.** [`NvilBaseline::centred_signal`] centres and normalises with the state
/// *before* the current minibatch and then updates it. The statistics then do not depend on
/// the samples they multiply, so `s · score` is exactly unbiased for
/// `∇E_q[ℓ − C_ψ(x)] / max(1, √v)` (NVIL's Algorithm 1 updates first, which adds an
/// O((1−α)/batch) bias). The first minibatch initialises `c` and `v` to its own mean and
/// variance instead of decaying from zero; before it, `c = 0` and `v = 0`.
///
/// Serialisable for checkpoints; deserialisation re-validates the decay and the state.
///
/// ```
/// use gumbolt_estimators::NvilBaseline;
/// let mut nvil = NvilBaseline::new(0.8).unwrap();
/// let s = nvil.centred_signal(&[10.0, 12.0], &[1.0, 1.0]);
/// assert_eq!(s, vec![9.0, 11.0]); // first batch: c = 0, v = 0
/// assert_eq!((nvil.mean(), nvil.variance()), (10.0, 1.0));
/// let s = nvil.centred_signal(&[11.0, 13.0], &[0.0, 2.0]);
/// assert_eq!(s, vec![1.0, 1.0]);
/// assert!(NvilBaseline::new(1.0).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "NvilState", into = "NvilState")]
pub struct NvilBaseline {
    decay: f64,
    mean: f64,
    var: f64,
    updates: u64,
}

#[derive(Serialize, Deserialize)]
struct NvilState {
    decay: f64,
    mean: f64,
    var: f64,
    updates: u64,
}

impl TryFrom<NvilState> for NvilBaseline {
    type Error = EstimatorError;
    fn try_from(s: NvilState) -> crate::Result<Self> {
        let mut b = NvilBaseline::new(s.decay)?;
        if !(s.mean.is_finite() && s.var.is_finite() && s.var >= 0.0) {
            return Err(EstimatorError::InvalidBaselineState {
                mean: s.mean,
                var: s.var,
            });
        }
        b.mean = s.mean;
        b.var = s.var;
        b.updates = s.updates;
        Ok(b)
    }
}

impl From<NvilBaseline> for NvilState {
    fn from(b: NvilBaseline) -> Self {
        NvilState {
            decay: b.decay,
            mean: b.mean,
            var: b.var,
            updates: b.updates,
        }
    }
}

impl Default for NvilBaseline {
    /// Decay α = [`NvilBaseline::DEFAULT_DECAY`] (0.8), empty state.
    fn default() -> Self {
        Self {
            decay: Self::DEFAULT_DECAY,
            mean: 0.0,
            var: 0.0,
            updates: 0,
        }
    }
}

impl NvilBaseline {
    /// The decay α = 0.8 of NVIL's running averages (docs/algorithms.md §6).
    pub const DEFAULT_DECAY: f64 = 0.8;

    /// An empty running state with decay `decay`.
    ///
    /// # Errors
    /// [`EstimatorError::InvalidDecay`] unless `0 < decay < 1`.
    pub fn new(decay: f64) -> crate::Result<Self> {
        if decay > 0.0 && decay < 1.0 {
            Ok(Self {
                decay,
                ..Self::default()
            })
        } else {
            Err(EstimatorError::InvalidDecay { decay })
        }
    }

    /// The decay α.
    pub fn decay(&self) -> f64 {
        self.decay
    }

    /// The running mean `c` of `ℓ − C_ψ(x)`.
    pub fn mean(&self) -> f64 {
        self.mean
    }

    /// The running variance `v` of `ℓ − C_ψ(x)`.
    pub fn variance(&self) -> f64 {
        self.var
    }

    /// `max(1, √v)`, the divisor the next call of [`NvilBaseline::centred_signal`] applies.
    pub fn normaliser(&self) -> f64 {
        self.var.sqrt().max(1.0)
    }

    /// How many minibatches have updated the state.
    pub fn updates(&self) -> u64 {
        self.updates
    }

    /// Returns `(ℓ_r − c − C_r) / max(1, √v)` for every row r (with the state before this
    /// call), then folds the minibatch mean and (population) variance of `ℓ − C` into `c` and
    /// `v`.
    ///
    /// An empty minibatch returns an empty vector and leaves the state unchanged; so does a
    /// minibatch whose statistics are not finite (the returned values then carry the
    /// non-finite inputs, but the running state is not poisoned).
    ///
    /// # Panics
    /// If `signals` and `baseline` differ in length (a programming error).
    pub fn centred_signal(&mut self, signals: &[f64], baseline: &[f64]) -> Vec<f64> {
        assert_eq!(
            signals.len(),
            baseline.len(),
            "NvilBaseline::centred_signal: one baseline value per signal"
        );
        if signals.is_empty() {
            return Vec::new();
        }
        let norm = self.normaliser();
        let d: Vec<f64> = signals.iter().zip(baseline).map(|(&l, &c)| l - c).collect();
        let out = d.iter().map(|&x| (x - self.mean) / norm).collect();
        let n = d.len() as f64;
        let m = d.iter().sum::<f64>() / n;
        let var = d.iter().map(|&x| (x - m) * (x - m)).sum::<f64>() / n;
        if m.is_finite() && var.is_finite() {
            if self.updates == 0 {
                self.mean = m;
                self.var = var;
            } else {
                let a = self.decay;
                self.mean = a * self.mean + (1.0 - a) * m;
                self.var = a * self.var + (1.0 - a) * var;
            }
            self.updates += 1;
        }
        out
    }
}

/// `log(e^a + e^b)` without overflow.
fn lse2(a: f64, b: f64) -> f64 {
    let m = a.max(b);
    if m == f64::NEG_INFINITY {
        return m;
    }
    m + ((a - m).exp() + (b - m).exp()).ln()
}

/// VIMCO's per-sample learning signals for the k samples of one data point (Mnih & Rezende
/// 2016; docs/algorithms.md §6, VIMCO).
///
/// With `f_j = ℓ(x, z^j)` and `L̂ = logsumexp_j f_j − log k`, returns
///
/// * `L̂ − L̂_{−j}`, where `L̂_{−j} = log[(Σ_{i≠j} e^{f_i} + e^{f̂_{−j}})/k]` replaces `f_j` by
///   the geometric-mean substitute `f̂_{−j} = mean_{i≠j} f_i`; it does not depend on `z^j`, so
///   `Σ_j (L̂ − L̂_{−j}) ∇ log q(z^j|x)` stays unbiased;
/// * `w̃_j = e^{f_j} / Σ_i e^{f_i}`, the weights of the pathwise term `Σ_j w̃_j ∇f_j`.
///
/// The unbiased gradient of `E[L̂]` is `Σ_j (L̂ − L̂_{−j}) ∇ log q(z^j|x) + Σ_j w̃_j ∇f_j`
/// (for [`Reinforce`], pass `L̂ − L̂_{−j}` as the learning signal of row j).
///
/// **Shift invariance.** Both outputs are unchanged when every `f_j` is shifted by the same
/// constant, so an unknown `log Z` of the prior inside `ℓ` cancels exactly \[DER\]. Everything
/// is computed in f64 with log-sum-exp: `Σ_{i≠j} e^{f_i}` comes from prefix and suffix
/// log-sum-exps (no cancellation of `Σ_i e^{f_i} − e^{f_j}`), O(k) overall. Inputs are
/// expected finite.
///
/// **Degenerate k.** For k = 1 the leave-one-out baseline is undefined; this returns
/// `(vec![f_0], vec![1.0])`, i.e. plain REINFORCE with no baseline — still unbiased, but *not*
/// shift invariant (use [`NvilBaseline`] for k = 1, as docs/algorithms.md §6 prescribes). For k = 0
/// both vectors are empty.
///
/// ```
/// use gumbolt_estimators::vimco_signals;
/// let (d, w) = vimco_signals(&[0.0, 0.0, 0.0]);
/// assert!(d.iter().all(|v| v.abs() < 1e-15)); // equal f: no sample is better
/// assert!(w.iter().all(|v| (v - 1.0 / 3.0).abs() < 1e-15));
/// let (d2, _) = vimco_signals(&[1e4 + 1.0, 1e4 - 2.0, 1e4 + 0.5]);
/// let (d3, _) = vimco_signals(&[1.0, -2.0, 0.5]);
/// assert!(d2.iter().zip(&d3).all(|(a, b)| (a - b).abs() < 1e-9));
/// ```
pub fn vimco_signals(f: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let k = f.len();
    match k {
        0 => return (Vec::new(), Vec::new()),
        1 => return (vec![f[0]], vec![1.0]),
        _ => {}
    }
    // prefix[j] = lse(f[..j]), suffix[j] = lse(f[j..]).
    let mut prefix = vec![f64::NEG_INFINITY; k + 1];
    for j in 0..k {
        prefix[j + 1] = lse2(prefix[j], f[j]);
    }
    let mut suffix = vec![f64::NEG_INFINITY; k + 1];
    for j in (0..k).rev() {
        suffix[j] = lse2(suffix[j + 1], f[j]);
    }
    let lse_all = prefix[k];
    // Centre before summing so that f̂_{−j} does not lose digits to a large common offset.
    let shift = f[0];
    let centred_sum: f64 = f.iter().map(|&x| x - shift).sum();
    let mut signals = Vec::with_capacity(k);
    let mut weights = Vec::with_capacity(k);
    for j in 0..k {
        let f_hat = shift + (centred_sum - (f[j] - shift)) / (k - 1) as f64;
        let lse_minus = lse2(lse2(prefix[j], suffix[j + 1]), f_hat);
        // L̂ − L̂_{−j}: the −log k terms cancel.
        signals.push(lse_all - lse_minus);
        weights.push((f[j] - lse_all).exp());
    }
    (signals, weights)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gumbolt_core::numerics::sigmoid;
    use gumbolt_core::rng::{fill_uniform, root_rng};

    const L: [f64; 3] = [0.4, -0.7, 1.1];
    const TABLE: [f64; 8] = [0.3, -1.2, 2.0, 0.7, -0.4, 1.5, -2.2, 0.9];

    fn index(z: &[f64]) -> usize {
        z.iter().enumerate().map(|(i, &v)| (v as usize) << i).sum()
    }

    fn config(idx: usize, n: usize) -> Vec<f64> {
        (0..n).map(|i| ((idx >> i) & 1) as f64).collect()
    }

    fn log_q(z: &[f64], l: &[f64]) -> f64 {
        z.iter()
            .zip(l)
            .map(|(&zi, &li)| zi * li - gumbolt_core::numerics::softplus(li))
            .sum()
    }

    /// Exact `∂E_q[f]/∂l_i = Σ_z f(z) q(z) (z_i − σ(l_i))`.
    fn exact_grad(f: &[f64; 8]) -> [f64; 3] {
        let mut g = [0.0; 3];
        for (idx, &fv) in f.iter().enumerate() {
            let z = config(idx, 3);
            let q = log_q(&z, &L).exp();
            for i in 0..3 {
                g[i] += fv * q * (z[i] - sigmoid(L[i]));
            }
        }
        g
    }

    /// Draws `rows` discrete samples at the logits [`L`].
    fn draw(rows: usize, seed: u64) -> (Mat, Mat, Mat) {
        let l = Mat::from_fn(rows, 3, |_, j| L[j] as f32);
        let mut v = vec![0.0f32; rows * 3];
        fill_uniform(&mut root_rng(seed), &mut v);
        let rho = Mat::from_vec(rows, 3, v);
        let mut z = Mat::zeros(0, 0);
        Reinforce.sample_into(&l, &rho, &mut z);
        (l, rho, z)
    }

    fn backward(l: &Mat, _rho: &Mat, z: &Mat, s: &[f64]) -> Mat {
        let mut g = Mat::zeros(0, 0);
        Reinforce.logits_grad_into(
            ScoreGrad {
                logits: l,
                sample: z,
                learning_signal: s,
            },
            &mut g,
        );
        g
    }

    /// Per-column mean and variance of `−g` (the objective's gradient estimate).
    fn column_stats(g: &Mat) -> Vec<(f64, f64)> {
        let n = g.nrows() as f64;
        (0..g.ncols())
            .map(|j| {
                let m = g.column(j).iter().map(|&v| -(v as f64)).sum::<f64>() / n;
                let var = g
                    .column(j)
                    .iter()
                    .map(|&v| (-(v as f64) - m).powi(2))
                    .sum::<f64>()
                    / (n - 1.0);
                (m, var)
            })
            .collect()
    }

    fn row_f(z: &Mat, f: &[f64; 8]) -> Vec<f64> {
        (0..z.nrows())
            .map(|r| {
                let zr: Vec<f64> = (0..3).map(|j| z[(r, j)] as f64).collect();
                f[index(&zr)]
            })
            .collect()
    }

    #[test]
    fn reinforce_is_unbiased_on_an_enumerable_model() {
        let n = 200_000;
        let (l, rho, z) = draw(n, 11);
        let s = row_f(&z, &TABLE);
        let g = backward(&l, &rho, &z, &s);
        let exact = exact_grad(&TABLE);
        for (i, (m, var)) in column_stats(&g).into_iter().enumerate() {
            let se = (var / n as f64).sqrt();
            assert!(
                (m - exact[i]).abs() < 4.0 * se,
                "unit {i}: estimate {m} vs exact {exact:?} (se {se})"
            );
        }
    }

    #[test]
    fn nvil_centring_stays_unbiased_and_cuts_variance() {
        // f with a large offset and small spread (Var f < 1, so max(1, √v) = 1).
        let mut f = [0.0; 8];
        for (o, t) in f.iter_mut().zip(TABLE) {
            *o = 1000.0 + 0.3 * t;
        }
        let exact = exact_grad(&f);
        let (batch, batches) = (100, 2001);
        let (l, rho, z) = draw(batch * batches, 12);
        let raw = row_f(&z, &f);
        let mut nvil = NvilBaseline::default();
        let zero = vec![0.0; batch];
        let mut centred = Vec::with_capacity(raw.len());
        for b in 0..batches {
            assert_eq!(nvil.normaliser(), 1.0);
            centred.extend(nvil.centred_signal(&raw[b * batch..(b + 1) * batch], &zero));
        }
        assert!((nvil.mean() - 1000.0).abs() < 1.0, "c = {}", nvil.mean());
        // Drop the warm-up batch (centred with c = 0); the rest uses c from earlier batches.
        let rows = batch * (batches - 1);
        let tail = |m: &Mat| m.rows(batch, rows).into_owned();
        let (l, rho, z) = (tail(&l), tail(&rho), tail(&z));
        let g_nvil = backward(&l, &rho, &z, &centred[batch..]);
        let g_plain = backward(&l, &rho, &z, &raw[batch..]);
        let (nv, pl) = (column_stats(&g_nvil), column_stats(&g_plain));
        for i in 0..3 {
            let (m, var) = nv[i];
            let se = (var / rows as f64).sqrt();
            assert!(
                (m - exact[i]).abs() < 4.0 * se,
                "unit {i}: NVIL {m} vs exact {} (se {se})",
                exact[i]
            );
            assert!(
                var * 1e4 < pl[i].1,
                "unit {i}: NVIL variance {var} vs plain {}",
                pl[i].1
            );
        }
    }

    #[test]
    fn nvil_updates_normalises_and_roundtrips() {
        let mut b = NvilBaseline::new(0.5).unwrap();
        assert_eq!(b.centred_signal(&[], &[]), Vec::<f64>::new());
        assert_eq!(b.updates(), 0);
        // First batch: d = ℓ − C = [0, 8], mean 4, var 16.
        let s = b.centred_signal(&[1.0, 10.0], &[1.0, 2.0]);
        assert_eq!(s, vec![0.0, 8.0]);
        assert_eq!((b.mean(), b.variance(), b.normaliser()), (4.0, 16.0, 4.0));
        // Second batch: centred with c = 4, divided by √16; then c = 0.5·4 + 0.5·6, v = 8 + 0.5.
        let s = b.centred_signal(&[6.0, 8.0], &[1.0, 1.0]);
        assert_eq!(s, vec![0.25, 0.75]);
        assert_eq!((b.mean(), b.variance()), (5.0, 8.5));
        // Non-finite minibatches do not poison the state.
        let s = b.centred_signal(&[f64::NAN], &[0.0]);
        assert!(s[0].is_nan());
        assert_eq!((b.mean(), b.variance(), b.updates()), (5.0, 8.5, 2));

        let json = serde_json::to_string(&b).unwrap();
        let back: NvilBaseline = serde_json::from_str(&json).unwrap();
        assert_eq!(back, b);
        for decay in [0.0, 1.0, -0.1, f64::NAN] {
            let e = NvilBaseline::new(decay).unwrap_err();
            assert!(matches!(e, EstimatorError::InvalidDecay { .. }), "{e}");
        }
        let bad = r#"{"decay":0.8,"mean":0.0,"var":-1.0,"updates":3}"#;
        assert!(serde_json::from_str::<NvilBaseline>(bad).is_err());
        let bad = r#"{"decay":1.5,"mean":0.0,"var":1.0,"updates":3}"#;
        assert!(serde_json::from_str::<NvilBaseline>(bad).is_err());
    }

    #[test]
    #[should_panic(expected = "one value per row")]
    fn short_signal_panics_with_a_clear_message() {
        let (l, _, z) = draw(2, 1);
        let mut g = Mat::zeros(0, 0);
        Reinforce.logits_grad_into(
            ScoreGrad {
                logits: &l,
                sample: &z,
                learning_signal: &[1.0],
            },
            &mut g,
        );
    }

    /// Naive O(k²) reference of `L̂ − L̂_{−j}` and `w̃`.
    fn vimco_naive(f: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let k = f.len();
        let lse = |xs: &[f64]| gumbolt_core::numerics::log_sum_exp(xs);
        let all = lse(f);
        let d = (0..k)
            .map(|j| {
                let others: Vec<f64> = (0..k).filter(|&i| i != j).map(|i| f[i]).collect();
                let fhat = others.iter().sum::<f64>() / (k - 1) as f64;
                let mut terms = others;
                terms.push(fhat);
                all - lse(&terms)
            })
            .collect();
        let w = f.iter().map(|&x| (x - all).exp()).collect();
        (d, w)
    }

    #[test]
    fn vimco_matches_naive_is_shift_invariant_and_handles_small_k() {
        let f = [1.3, -0.2, 4.0, 0.0, -3.5];
        let (d, w) = vimco_signals(&f);
        let (dn, wn) = vimco_naive(&f);
        for j in 0..f.len() {
            assert!((d[j] - dn[j]).abs() < 1e-12 && (w[j] - wn[j]).abs() < 1e-12);
        }
        assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        for shift in [-1e5, -700.0, 3.0, 800.0, 1e6] {
            let g: Vec<f64> = f.iter().map(|&x| x + shift).collect();
            let (ds, ws) = vimco_signals(&g);
            for j in 0..f.len() {
                let tol = 1e-9 * (1.0 + shift.abs() * 1e-3);
                assert!((ds[j] - d[j]).abs() < tol, "shift {shift}: {ds:?} vs {d:?}");
                assert!((ws[j] - w[j]).abs() < tol, "shift {shift}: {ws:?} vs {w:?}");
            }
        }
        // A dominant sample: no cancellation in Σ_{i≠j} e^{f_i}.
        let (d, _) = vimco_signals(&[0.0, 60.0, 0.5]);
        let (dn, _) = vimco_naive(&[0.0, 60.0, 0.5]);
        for j in 0..3 {
            assert!((d[j] - dn[j]).abs() < 1e-12, "{d:?} vs {dn:?}");
        }
        assert_eq!(vimco_signals(&[2.5]), (vec![2.5], vec![1.0]));
        assert_eq!(vimco_signals(&[]), (vec![], vec![]));
        let (d, w) = vimco_signals(&[1.0, 3.0]);
        // k = 2: f̂_{−0} = f_1, so L̂_{−0} = log(2e^{f_1}/2) = 3, L̂_{−1} = 1, L̂ = lme(f).
        let all = gumbolt_core::numerics::log_mean_exp(&[1.0, 3.0]);
        assert!((d[0] - (all - 3.0)).abs() < 1e-14 && (d[1] - (all - 1.0)).abs() < 1e-14);
        assert!((w[0] + w[1] - 1.0).abs() < 1e-15);
    }

    /// `f(z, l) = g(z) − log q(z|l)`, the shape of the ELBO learning signal.
    fn vimco_f(z: &[f64], l: &[f64]) -> f64 {
        TABLE[index(z)] - log_q(z, l)
    }

    /// `E_{z^1..z^k ~ q}[log (1/k) Σ_j e^{f(z^j, l)}]` by enumerating all 8^k tuples.
    fn vimco_objective(l: &[f64], k: usize) -> f64 {
        let mut total = 0.0;
        for t in 0..8usize.pow(k as u32) {
            let zs: Vec<Vec<f64>> = (0..k).map(|j| config((t >> (3 * j)) & 7, 3)).collect();
            let lq: f64 = zs.iter().map(|z| log_q(z, l)).sum();
            let fs: Vec<f64> = zs.iter().map(|z| vimco_f(z, l)).collect();
            total += lq.exp() * gumbolt_core::numerics::log_mean_exp(&fs);
        }
        total
    }

    #[test]
    fn vimco_gradient_is_unbiased_on_an_enumerable_model() {
        let k = 3;
        let h = 1e-5;
        let exact: Vec<f64> = (0..3)
            .map(|i| {
                let (mut lp, mut lm) = (L, L);
                lp[i] += h;
                lm[i] -= h;
                (vimco_objective(&lp, k) - vimco_objective(&lm, k)) / (2.0 * h)
            })
            .collect();
        let reps = 100_000;
        let (l, rho, z) = draw(reps * k, 13);
        let mut sum = [0.0f64; 3];
        let mut sum2 = [0.0f64; 3];
        let mut signal = vec![0.0; reps * k];
        let mut weights = vec![0.0; reps * k];
        for r in 0..reps {
            let fs: Vec<f64> = (0..k)
                .map(|j| {
                    let zr: Vec<f64> = (0..3).map(|c| z[(r * k + j, c)] as f64).collect();
                    vimco_f(&zr, &L)
                })
                .collect();
            let (d, w) = vimco_signals(&fs);
            signal[r * k..(r + 1) * k].copy_from_slice(&d);
            weights[r * k..(r + 1) * k].copy_from_slice(&w);
        }
        // Score term through Reinforce (loss gradient: negate).
        let g = backward(&l, &rho, &z, &signal);
        for r in 0..reps {
            let mut est = [0.0f64; 3];
            for j in 0..k {
                let row = r * k + j;
                for (c, e) in est.iter_mut().enumerate() {
                    let score = z[(row, c)] as f64 - sigmoid(L[c]);
                    // −g is (L̂ − L̂_{−j})·score; ∇_l f_j at fixed z is −score.
                    *e += -(g[(row, c)] as f64) - weights[row] * score;
                }
            }
            for c in 0..3 {
                sum[c] += est[c];
                sum2[c] += est[c] * est[c];
            }
        }
        let n = reps as f64;
        for c in 0..3 {
            let m = sum[c] / n;
            let var = (sum2[c] / n - m * m) * n / (n - 1.0);
            let se = (var / n).sqrt();
            assert!(
                (m - exact[c]).abs() < 4.0 * se,
                "unit {c}: VIMCO {m} vs exact {} (se {se})",
                exact[c]
            );
        }
    }
}

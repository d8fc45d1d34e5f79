//! Temperature ladders for parallel tempering and their automatic tuning (docs/algorithms.md §7.5).
//!
//! For Gaussian energy histograms of standard deviation `σ_E(β)`, the swap acceptance between
//! neighbours `Δβ` apart is `A ≈ erfc(Δβ·σ_E/2)`; `A = 0.5` gives `Δβ ≈ 0.954/σ_E(β)`.
//! [`Ladder::tune`] implements the pilot procedure:
//!
//! 1. start at β = 1 and estimate `σ_E(β)` from a short multi-chain block-Gibbs run;
//! 2. step down by `Δβ = 0.954/σ_E` (for the configured target rate) until β ≤ 0, and set the
//!    last β to 0;
//! 3. run a short PT, measure the pair swap rates `A_r`, and re-space the βs so that the
//!    cumulative `Σ −log A_r` is uniform along the ladder, adding replicas if the mean rate is
//!    below `min_mean_swap_rate` (and removing some if it is well above the target);
//! 4. iterate (default 3 re-spacings) until every rate is within `tolerance` of the target.
//!
//! Step 3 measures distances between neighbours by `x_r = 2·erfc⁻¹(A_r)` (the Gaussian-model
//! distance `Δβ·σ_E`), which is additive along the ladder, so the piecewise-linear
//! interpolation of the cumulative distance is consistent; equal `x_r` is the same condition as
//! equal `−log A_r`.

use crate::error::{Result, SamplerError, ensure};
use crate::gibbs::{BlockGibbs, block_field};
use crate::progress::{Phase, Progress};
use crate::pt::{ParallelTempering, PtConfig};
use gumbolt_core::prior::{Block, BlockConditionals};
use serde::{Deserialize, Serialize};

/// An inverse-temperature ladder `0 = β_0 < β_1 < … < β_R = 1` (R ≥ 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ladder {
    betas: Vec<f64>,
}

impl Ladder {
    /// Validates `0 = β_0 < … < β_R = 1` with at least two temperatures.
    ///
    /// ```
    /// use gumbolt_samplers::Ladder;
    /// assert!(Ladder::new(vec![0.0, 0.5, 1.0]).is_ok());
    /// assert!(Ladder::new(vec![0.0, 0.5, 0.5, 1.0]).is_err());
    /// assert!(Ladder::new(vec![0.1, 1.0]).is_err());
    /// ```
    pub fn new(betas: Vec<f64>) -> Result<Self> {
        ensure(betas.len() >= 2, "ladder", || {
            format!("needs at least two temperatures, got {}", betas.len())
        })?;
        ensure(
            betas[0] == 0.0 && *betas.last().unwrap() == 1.0,
            "ladder",
            || "must start at β = 0 and end at β = 1".into(),
        )?;
        ensure(betas.windows(2).all(|w| w[0] < w[1]), "ladder", || {
            "inverse temperatures must be strictly increasing".into()
        })?;
        Ok(Self { betas })
    }

    /// `replicas` equally spaced inverse temperatures from 0 to 1 (`replicas ≥ 2`).
    pub fn linear(replicas: usize) -> Result<Self> {
        ensure(replicas >= 2, "replicas", || "must be at least 2".into())?;
        let r = (replicas - 1) as f64;
        let mut betas: Vec<f64> = (0..replicas).map(|i| i as f64 / r).collect();
        betas[replicas - 1] = 1.0;
        Self::new(betas)
    }

    /// The inverse temperatures, ascending.
    pub fn betas(&self) -> &[f64] {
        &self.betas
    }

    /// Number of temperatures `R + 1`.
    pub fn len(&self) -> usize {
        self.betas.len()
    }

    /// Always false (a ladder has at least two temperatures).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Tunes a ladder for `prior` by the pilot procedure of the module documentation.
    pub fn tune<P: BlockConditionals + ?Sized>(
        prior: &P,
        config: &LadderConfig,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<LadderTuning> {
        config.validate()?;
        let (n1, n2) = prior.block_sizes();
        crate::error::ensure_blocks(n1, n2)?;
        tune(prior, config, progress)
    }
}

/// Configuration of [`Ladder::tune`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LadderConfig {
    /// Chains of the `σ_E(β)` Gibbs pilot (≥ 2). Default 64.
    pub pilot_chains: usize,
    /// Sweeps before measuring at each new β (the state is carried over from the previous,
    /// colder β; the first β = 1 gets twice as many). Default 50.
    pub pilot_burn_in: usize,
    /// Sweeps measured at each β (≥ 1). Default 50.
    pub pilot_sweeps: usize,
    /// Ensembles of each pilot PT run (≥ 1). Default 8.
    pub pt_ensembles: usize,
    /// Burn-in steps of each pilot PT run. Default 200.
    pub pt_burn_in: usize,
    /// Measured steps of each pilot PT run (≥ 2). Default 800.
    pub pt_steps: usize,
    /// Maximum number of re-spacings (pilot PT runs = re-spacings + 1). Default 3.
    pub iterations: usize,
    /// Target swap rate of every pair, in (0, 1). Default 0.5 (GB §5.1).
    pub target_swap_rate: f64,
    /// The ladder is accepted when every pair's rate is within `target ± tolerance`. Default 0.15.
    pub tolerance: f64,
    /// Replicas are added when the mean swap rate is below this. Default 0.45.
    pub min_mean_swap_rate: f64,
    /// Replicas are removed when the mean swap rate is above this. Default 0.6.
    pub max_mean_swap_rate: f64,
    /// Upper limit on the number of temperatures. Default 1000.
    pub max_replicas: usize,
    /// Seed of the pilot runs. Default 0.
    pub seed: u64,
}

impl Default for LadderConfig {
    fn default() -> Self {
        Self {
            pilot_chains: 64,
            pilot_burn_in: 50,
            pilot_sweeps: 50,
            pt_ensembles: 8,
            pt_burn_in: 200,
            pt_steps: 800,
            iterations: 3,
            target_swap_rate: 0.5,
            tolerance: 0.15,
            min_mean_swap_rate: 0.45,
            max_mean_swap_rate: 0.6,
            max_replicas: 1000,
            seed: 0,
        }
    }
}

impl LadderConfig {
    /// Checks the ranges documented on the fields.
    pub fn validate(&self) -> Result<()> {
        ensure(self.pilot_chains >= 2, "pilot_chains", || {
            "must be at least 2".into()
        })?;
        ensure(self.pilot_sweeps >= 1, "pilot_sweeps", || {
            "must be at least 1".into()
        })?;
        ensure(self.pt_ensembles >= 1, "pt_ensembles", || {
            "must be at least 1".into()
        })?;
        ensure(self.pt_steps >= 2, "pt_steps", || {
            "must be at least 2".into()
        })?;
        ensure(
            self.target_swap_rate > 0.0 && self.target_swap_rate < 1.0,
            "target_swap_rate",
            || format!("must be in (0, 1), got {}", self.target_swap_rate),
        )?;
        ensure(self.tolerance > 0.0, "tolerance", || {
            "must be positive".into()
        })?;
        ensure(
            self.min_mean_swap_rate < self.max_mean_swap_rate,
            "min_mean_swap_rate",
            || "must be below max_mean_swap_rate".into(),
        )?;
        ensure(self.max_replicas >= 2, "max_replicas", || {
            "must be at least 2".into()
        })
    }
}

/// The result of [`Ladder::tune`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LadderTuning {
    /// The tuned ladder.
    pub ladder: Ladder,
    /// Swap rates per adjacent pair measured on `ladder` by the last pilot PT run (empty if the
    /// last re-spacing was not measured because the iteration limit was reached).
    pub swap_rates: Vec<f64>,
    /// Number of temperatures of the initial `Δβ = 0.954/σ_E` ladder.
    pub initial_replicas: usize,
    /// Number of pilot PT runs made.
    pub pilot_runs: usize,
}

fn tune<P: BlockConditionals + ?Sized>(
    prior: &P,
    cfg: &LadderConfig,
    progress: &mut dyn FnMut(Progress),
) -> Result<LadderTuning> {
    let x_target = 2.0 * erfc_inv(cfg.target_swap_rate);
    let mut betas = initial_ladder(prior, cfg, x_target)?;
    let initial_replicas = betas.len();
    let mut pilot_runs = 0;
    let pt_work = (cfg.pt_burn_in + cfg.pt_steps) as u64;
    let mut done = 0u64;
    let mut total = pt_work * (cfg.iterations as u64 + 1);
    loop {
        let ladder = Ladder::new(betas.clone())?;
        let pt_cfg = PtConfig {
            ensembles: cfg.pt_ensembles,
            steps_per_sample: 1,
            seed: cfg.seed.wrapping_add(1 + pilot_runs as u64),
        };
        let mut pt = ParallelTempering::for_prior(prior, ladder.clone(), pt_cfg)?;
        let mut advance = |pt: &mut ParallelTempering, steps: usize| {
            let mut left = steps;
            while left > 0 {
                let n = left.min(50);
                pt.run(prior, n);
                left -= n;
                done += n as u64;
                progress(Progress {
                    phase: Phase::Ladder,
                    done,
                    total,
                });
            }
        };
        advance(&mut pt, cfg.pt_burn_in);
        pt.reset_swap_stats();
        advance(&mut pt, cfg.pt_steps);
        pilot_runs += 1;
        let rates = pt.swap_rates();
        if rates.iter().any(|r| !r.is_finite()) {
            return Err(SamplerError::NonFinite("pilot swap rates"));
        }
        let mean = rates.iter().sum::<f64>() / rates.len() as f64;
        let ok = rates
            .iter()
            .all(|r| (r - cfg.target_swap_rate).abs() <= cfg.tolerance)
            && mean >= cfg.min_mean_swap_rate;
        if ok || pilot_runs > cfg.iterations {
            return Ok(LadderTuning {
                ladder,
                swap_rates: rates,
                initial_replicas,
                pilot_runs,
            });
        }
        betas = respace(
            &betas,
            &rates,
            x_target,
            cfg.min_mean_swap_rate,
            cfg.max_mean_swap_rate,
        );
        if betas.len() > cfg.max_replicas {
            return Err(SamplerError::Ladder(format!(
                "re-spacing needs {} temperatures, more than max_replicas = {}",
                betas.len(),
                cfg.max_replicas
            )));
        }
        total = total.max(done + pt_work);
    }
}

/// Steps down from β = 1 by `Δβ = x_target/σ_E(β)`.
fn initial_ladder<P: BlockConditionals + ?Sized>(
    prior: &P,
    cfg: &LadderConfig,
    x_target: f64,
) -> Result<Vec<f64>> {
    let (n1, n2) = prior.block_sizes();
    let h2 = block_field(prior, Block::Two);
    let mut g = BlockGibbs::new(n1, n2, cfg.pilot_chains, cfg.seed)?;
    let mut energies = vec![0.0; cfg.pilot_chains];
    let mut betas = vec![1.0];
    let mut beta = 1.0f64;
    g.set_beta(1.0);
    g.run(prior, 2 * cfg.pilot_burn_in);
    loop {
        let (mut s1, mut s2, mut n) = (0.0f64, 0.0f64, 0.0f64);
        for _ in 0..cfg.pilot_sweeps {
            g.sweep(prior);
            g.energies_after_sweep(&h2, &mut energies);
            for &e in &energies {
                s1 += e;
                s2 += e * e;
                n += 1.0;
            }
        }
        let mean = s1 / n;
        let sd = ((s2 / n - mean * mean).max(0.0) * n / (n - 1.0)).sqrt();
        if !sd.is_finite() {
            return Err(SamplerError::NonFinite("pilot energies"));
        }
        beta -= x_target / sd.max(1e-12);
        if beta <= 0.0 {
            betas.push(0.0);
            break;
        }
        betas.push(beta);
        if betas.len() >= cfg.max_replicas {
            return Err(SamplerError::Ladder(format!(
                "more than max_replicas = {} temperatures needed (σ_E = {sd:.3} at β = {beta:.4})",
                cfg.max_replicas
            )));
        }
        g.set_beta(beta as f32);
        g.run(prior, cfg.pilot_burn_in);
    }
    betas.reverse();
    Ok(betas)
}

/// Re-spaces `betas` so that the Gaussian-model distance `x_r = 2·erfc⁻¹(A_r)` is the same for
/// every pair, with a new number of pairs when the mean rate is outside `[min_mean, max_mean]`.
pub(crate) fn respace(
    betas: &[f64],
    rates: &[f64],
    x_target: f64,
    min_mean: f64,
    max_mean: f64,
) -> Vec<f64> {
    let r = rates.len();
    debug_assert_eq!(betas.len(), r + 1);
    let x: Vec<f64> = rates
        .iter()
        .map(|&a| 2.0 * erfc_inv(a.clamp(1e-4, 1.0 - 1e-9)))
        .collect();
    let mut cum = Vec::with_capacity(r + 1);
    cum.push(0.0);
    for &xi in &x {
        cum.push(cum.last().unwrap() + xi);
    }
    let total = cum[r];
    let mean = rates.iter().sum::<f64>() / r as f64;
    let wanted = (total / x_target).ceil().max(1.0) as usize;
    let pairs = if mean < min_mean {
        wanted.max(r + 1)
    } else if mean > max_mean {
        wanted.min(r.saturating_sub(1)).max(1)
    } else {
        r
    };
    let mut out = Vec::with_capacity(pairs + 1);
    out.push(0.0);
    let mut k = 0;
    for m in 1..pairs {
        let t = total * m as f64 / pairs as f64;
        while k + 1 < r && cum[k + 1] < t {
            k += 1;
        }
        let frac = ((t - cum[k]) / x[k]).clamp(0.0, 1.0);
        let b = betas[k] + frac * (betas[k + 1] - betas[k]);
        if b > *out.last().unwrap() && b < 1.0 {
            out.push(b);
        }
    }
    out.push(1.0);
    out
}

/// The complementary error function and its inverse, from statrs (accurate to double
/// precision; the Gaussian model of the swap rates only needs a few digits).
pub(crate) use statrs::function::erf::erfc_inv;

#[cfg(test)]
mod tests {
    use super::*;
    use statrs::function::erf::erfc;

    #[test]
    fn erfc_and_inverse() {
        // statrs' erfc is accurate to ~1e-11 here (1.2e-7 for the rational approximation it
        // replaced).
        assert!((erfc(0.0) - 1.0).abs() < 1e-10);
        assert!((erfc(1.0) - 0.157_299_207_050_285_1).abs() < 1e-10);
        assert!((erfc(-1.0) - 1.842_700_792_949_715).abs() < 1e-10);
        // A = 0.5 ⇔ Δβ·σ = 2·erfc⁻¹(0.5) ≈ 0.954 (docs/algorithms.md §7.5)
        assert!((2.0 * erfc_inv(0.5) - 0.953_872_552_408_939_7).abs() < 1e-12);
        for a in [1e-4, 0.1, 0.5, 1.0, 1.7] {
            assert!(
                (erfc(erfc_inv(a)) - a).abs() < 1e-10 * a.max(1e-3),
                "a = {a}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn respacing_always_gives_a_valid_ladder(
            gaps in proptest::collection::vec(0.001f64..1.0, 1..40),
            rates in proptest::collection::vec(0.0f64..=1.0, 40),
        ) {
            let total: f64 = gaps.iter().sum();
            let mut betas = vec![0.0];
            for g in &gaps {
                betas.push(betas.last().unwrap() + g / total);
            }
            *betas.last_mut().unwrap() = 1.0;
            proptest::prop_assume!(betas.windows(2).all(|w| w[0] < w[1]));
            let r = &rates[..gaps.len()];
            let new = respace(&betas, r, 2.0 * erfc_inv(0.5), 0.45, 0.6);
            proptest::prop_assert!(Ladder::new(new.clone()).is_ok(), "{:?}", new);
        }
    }

    #[test]
    fn respacing_equalises_distances() {
        let betas = [0.0, 0.1, 0.2, 0.6, 1.0];
        // the top pair is hard, the bottom pairs easy
        let rates = [0.9, 0.9, 0.5, 0.1];
        let x_t = 2.0 * erfc_inv(0.5);
        let new = respace(&betas, &rates, x_t, 0.45, 0.6);
        // mean 0.6 is inside [0.45, 0.6]: same number of pairs, more of them near β = 1
        assert_eq!(new.len(), 5);
        assert!(new.windows(2).all(|w| w[0] < w[1]));
        assert!(new[3] > 0.6);
        let more = respace(&betas, &[0.3, 0.3, 0.3, 0.3], x_t, 0.45, 0.6);
        assert!(more.len() > 5);
        let fewer = respace(&betas, &[0.95, 0.95, 0.95, 0.95], x_t, 0.45, 0.6);
        assert!(fewer.len() < 5 && fewer[0] == 0.0 && *fewer.last().unwrap() == 1.0);
    }
}

//! Weight initialisation (docs/algorithms.md §9).
//!
//! The reference builds its dense layers with `tf.layers.dense(kernel_initializer=
//! slim.variance_scaling_initializer())`, whose defaults (factor 2, mode `FAN_IN`, not uniform)
//! draw a **truncated normal** with `std = √(1.3·factor/fan_in) = √(2.6/fan_in)`; TF's
//! truncated normal redraws every value beyond two standard deviations. The factor 1.3 makes the
//! *truncated* distribution's standard deviation ≈ `√(2/fan_in)` (He initialisation):
//! a normal truncated at ±2σ has standard deviation `0.8796·σ`, so the result is `1.0029·√(2/fan_in)`. Biases start at 0.

use gumbolt_core::rng::uniform_f64;
use rand::Rng;

/// slim's `variance_scaling_initializer` default factor.
pub const VARIANCE_SCALING_FACTOR: f64 = 2.0;

/// Truncation point of TF's truncated normal, in standard deviations.
pub const TRUNCATION: f64 = 2.0;

/// Standard deviation of a standard normal truncated at ±2: `√(1 − 2·2φ(2)/(Φ(2) − Φ(−2)))`.
pub const TRUNCATED_STD_RATIO: f64 = 0.879_625_661_034_239_8;

/// The pre-truncation standard deviation `√(1.3·2/fan_in)` of the variance-scaling init.
///
/// ```
/// let s = gumbolt_models::nn::init::variance_scaling_std(784);
/// assert!((s - (2.6f64 / 784.0).sqrt()).abs() < 1e-15);
/// ```
pub fn variance_scaling_std(fan_in: usize) -> f64 {
    (1.3 * VARIANCE_SCALING_FACTOR / fan_in as f64).sqrt()
}

/// A standard normal draw (Box–Muller on two uniforms from the open interval (0, 1)).
pub fn standard_normal<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    let u1 = uniform_f64(rng);
    let u2 = uniform_f64(rng);
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A draw of `N(0, std²)` conditioned on `|x| ≤ 2·std` (rejection, as TF's
/// `truncated_normal`; the acceptance rate is 95.4 %).
pub fn truncated_normal<R: Rng + ?Sized>(rng: &mut R, std: f64) -> f64 {
    loop {
        let z = standard_normal(rng);
        if z.abs() <= TRUNCATION {
            return z * std;
        }
    }
}

/// Fills `out` with variance-scaling truncated-normal values for a layer of fan-in `fan_in`.
pub fn fill_variance_scaling<R: Rng + ?Sized>(rng: &mut R, fan_in: usize, out: &mut [f32]) {
    let std = variance_scaling_std(fan_in);
    for o in out.iter_mut() {
        *o = truncated_normal(rng, std) as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variance_scaling_statistics() {
        let mut rng = gumbolt_core::rng::root_rng(11);
        let fan_in = 784;
        let mut w = vec![0.0f32; fan_in * 200];
        fill_variance_scaling(&mut rng, fan_in, &mut w);
        let s = variance_scaling_std(fan_in);
        let n = w.len() as f64;
        let mean = w.iter().map(|&v| v as f64).sum::<f64>() / n;
        let sd = (w.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n).sqrt();
        assert!(w.iter().all(|&v| (v as f64).abs() <= 2.0 * s + 1e-7));
        // s.e. of the mean: 0.88·s/√n ≈ 2.2e-3·s; of the sd: ≈ 1.2e-3 relative.
        assert!(mean.abs() < 1e-2 * s, "mean {mean}");
        let want = TRUNCATED_STD_RATIO * s;
        assert!((sd / want - 1.0).abs() < 6e-3, "sd {sd} vs {want}");
        // ≈ He init: √(2/fan_in).
        assert!((sd / (2.0 / fan_in as f64).sqrt() - 1.0).abs() < 1e-2);
    }
}

//! Branch-free f32 kernels of the Bernoulli log-probability that LLVM vectorises.
//!
//! libm's `log1pf` is a scalar call; these use [`gumbolt_core::numerics::exp_approx`] and a
//! short `atanh` series instead, so loops over `[N, n]` logits (the posterior's `log q`, the
//! decoder's Bernoulli likelihood) run at SIMD speed. (They would fit in
//! `gumbolt_core::numerics`; they live here until they move there.)

use gumbolt_core::numerics::exp_approx;

/// `log(1 + e)` for `e ∈ [0, 1]`: `2·atanh(s)` with `s = e/(2 + e) ∈ [0, 1/3]`, summed to
/// `s¹⁵` (relative truncation error < 2e-9; accurate for tiny `e`, where `1 + e` would round).
///
/// ```
/// let v = gumbolt_estimators::kernels::log1p_unit(0.5);
/// assert!((v - 1.5f32.ln()).abs() < 1e-7);
/// assert_eq!(gumbolt_estimators::kernels::log1p_unit(1e-30), 1e-30);
/// ```
#[inline(always)]
pub fn log1p_unit(e: f32) -> f32 {
    let s = e / (2.0 + e);
    let s2 = s * s;
    let mut p = 1.0 / 15.0;
    p = p * s2 + 1.0 / 13.0;
    p = p * s2 + 1.0 / 11.0;
    p = p * s2 + 1.0 / 9.0;
    p = p * s2 + 1.0 / 7.0;
    p = p * s2 + 1.0 / 5.0;
    p = p * s2 + 1.0 / 3.0;
    p = p * s2 + 1.0;
    2.0 * s * p
}

/// `softplus(l) = max(l, 0) + log1p(e^{−|l|})` (absolute error < 3e-7 below 1, relative
/// 3e-7 above; tiny values keep their relative accuracy).
#[inline(always)]
pub fn softplus_f32(l: f32) -> f32 {
    l.max(0.0) + log1p_unit(exp_approx(-l.abs()))
}

/// σ(l) without cancellation: with `e = e^{−|l|}`, `1/(1+e)` for `l ≥ 0`, `e/(1+e)` otherwise.
#[inline(always)]
pub fn sigmoid_f32(l: f32) -> f32 {
    let e = exp_approx(-l.abs());
    let r = 1.0 / (1.0 + e);
    if l >= 0.0 { r } else { e * r }
}

/// `(softplus(l), σ(l))` from one `exp`.
///
/// ```
/// let (sp, s) = gumbolt_estimators::kernels::softplus_sigmoid_f32(0.0);
/// assert!((sp - 2f32.ln()).abs() < 1e-7 && s == 0.5);
/// ```
#[inline(always)]
pub fn softplus_sigmoid_f32(l: f32) -> (f32, f32) {
    let e = exp_approx(-l.abs());
    let sp = l.max(0.0) + log1p_unit(e);
    let r = 1.0 / (1.0 + e);
    (sp, if l >= 0.0 { r } else { e * r })
}

#[cfg(test)]
mod tests {
    use super::*;
    use gumbolt_core::numerics as nm;

    #[test]
    fn kernels_match_f64() {
        let mut l = -60.0f32;
        while l < 60.0 {
            let (sp, sig) = softplus_sigmoid_f32(l);
            let (rsp, rsig) = (nm::softplus(l as f64), nm::sigmoid(l as f64));
            assert!(
                (sp as f64 - rsp).abs() <= 3e-7 * rsp.max(1.0),
                "softplus({l}): {sp} vs {rsp}"
            );
            if l < -20.0 {
                assert!(
                    (sp as f64 - rsp).abs() <= 1e-6 * rsp,
                    "softplus({l}) relative"
                );
            }
            assert!((sig as f64 - rsig).abs() < 2e-7, "sigmoid({l})");
            assert_eq!(softplus_f32(l), sp);
            assert_eq!(sigmoid_f32(l), sig);
            l += 0.01713;
        }
        for e in [0.0f32, 1e-30, 1e-8, 1e-3, 0.3, 0.999, 1.0] {
            let want = (e as f64).ln_1p();
            assert!(
                ((log1p_unit(e) as f64) - want).abs() <= 2e-7 * want.max(1e-38),
                "log1p({e})"
            );
        }
    }
}

//! Bennett's acceptance ratio (Bennett 1976; Meng & Wong 1996; Shirts & Chodera 2008) for one
//! pair of distributions (docs/algorithms.md §7.5).

use gumbolt_core::numerics::{log_mean_exp, sigmoid};

/// The solution of Bennett's equation for `Δ = log(Z_1/Z_0)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BarSolution {
    /// `Δ = log(Z_1/Z_0)`.
    pub delta: f64,
    /// The forward importance-sampling estimate `log mean_{x~p_0} e^{ℓ(x)}` (the starting
    /// point of the solver).
    pub forward: f64,
    /// The reverse importance-sampling estimate `−log mean_{y~p_1} e^{−ℓ(y)}`.
    pub reverse: f64,
    /// Newton/bisection iterations used.
    pub iterations: usize,
}

/// Solves `Σ_{x∈S_0} σ(ℓ(x) + M − Δ) = Σ_{y∈S_1} σ(Δ − ℓ(y) − M)` for Δ, with
/// `ℓ = log q_1 − log q_0` evaluated on samples `fwd` of `p_0` and `rev` of `p_1`, and
/// `M = log(n_1/n_0)`. The left side decreases and the right side increases in Δ, so the root
/// is unique; it is found by Newton's method safeguarded by bisection, in f64, starting from
/// the forward importance-sampling estimate. `None` if either sample set is empty.
///
/// ```
/// use gumbolt_samplers::logz::bar::bar;
/// // q_0(x) = 1 and q_1(x) = e^x on x ∈ {0, 1}, so Z_1/Z_0 = (1 + e)/2 and ℓ(x) = x.
/// let fwd: Vec<f32> = [0.0f32, 1.0].repeat(1000); // p_0 = (1/2, 1/2)
/// let mut rev = vec![0.0f32; 1000]; // p_1 ∝ (1, e), in exact proportions
/// rev.extend(vec![1.0f32; 2718]);
/// let s = bar(&fwd, &rev).unwrap();
/// assert!((s.delta - ((1.0 + std::f64::consts::E) / 2.0).ln()).abs() < 1e-3);
/// ```
pub fn bar(fwd: &[f32], rev: &[f32]) -> Option<BarSolution> {
    if fwd.is_empty() || rev.is_empty() {
        return None;
    }
    let m = (rev.len() as f64 / fwd.len() as f64).ln();
    let fwd64: Vec<f64> = fwd.iter().map(|&v| v as f64).collect();
    let neg_rev: Vec<f64> = rev.iter().map(|&v| -(v as f64)).collect();
    let forward = log_mean_exp(&fwd64);
    let reverse = -log_mean_exp(&neg_rev);
    // g(Δ) = Σ_x σ(ℓx + M − Δ) − Σ_y σ(Δ − ℓy − M), normalised by the total count.
    let norm = 1.0 / (fwd.len() + rev.len()) as f64;
    let g = |d: f64| -> (f64, f64) {
        let (mut v, mut dv) = (0.0, 0.0);
        for &l in &fwd64 {
            let s = sigmoid(l + m - d);
            v += s;
            dv -= s * (1.0 - s);
        }
        for &nl in &neg_rev {
            let s = sigmoid(d + nl - m);
            v -= s;
            dv -= s * (1.0 - s);
        }
        (v * norm, dv * norm)
    };
    let (lmin, lmax) = fwd64
        .iter()
        .copied()
        .chain(neg_rev.iter().map(|v| -v))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
            (a.min(x), b.max(x))
        });
    let mut lo = lmin + m - 50.0;
    let mut hi = lmax + m + 50.0;
    let mut d = if forward.is_finite() {
        forward.clamp(lo, hi)
    } else {
        0.5 * (lo + hi)
    };
    let mut iterations = 0;
    for it in 1..=200 {
        iterations = it;
        let (v, dv) = g(d);
        if v > 0.0 {
            lo = d;
        } else {
            hi = d;
        }
        if v == 0.0 {
            break;
        }
        let newton = d - v / dv;
        let next = if dv < 0.0 && newton.is_finite() && newton > lo && newton < hi {
            newton
        } else {
            0.5 * (lo + hi)
        };
        let step = (next - d).abs();
        d = next;
        if step < 1e-11 * (1.0 + d.abs()) || hi - lo < 1e-12 {
            break;
        }
    }
    Some(BarSolution {
        delta: d,
        forward,
        reverse,
        iterations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Adding a constant c to log q_1 multiplies Z_1 by e^c: Δ shifts by exactly c, and
        /// the solution satisfies Bennett's equation.
        #[test]
        fn solution_is_shift_equivariant_and_solves_the_equation(
            fwd in proptest::collection::vec(-5.0f32..5.0, 1..200),
            rev in proptest::collection::vec(-5.0f32..5.0, 1..200),
            c in -20.0f32..20.0,
        ) {
            let s = bar(&fwd, &rev).unwrap();
            let f2: Vec<f32> = fwd.iter().map(|v| v + c).collect();
            let r2: Vec<f32> = rev.iter().map(|v| v + c).collect();
            let s2 = bar(&f2, &r2).unwrap();
            proptest::prop_assert!((s2.delta - s.delta - c as f64).abs() < 1e-4, "{} {} {}", s.delta, s2.delta, c);
            let m = (rev.len() as f64 / fwd.len() as f64).ln();
            let lhs: f64 = fwd.iter().map(|&l| sigmoid(l as f64 + m - s.delta)).sum();
            let rhs: f64 = rev.iter().map(|&l| sigmoid(s.delta - l as f64 - m)).sum();
            proptest::prop_assert!((lhs - rhs).abs() < 1e-6 * (fwd.len() + rev.len()) as f64);
        }
    }

    #[test]
    fn identical_distributions_give_the_log_ratio_of_constants() {
        // q_1 = 2·q_0 exactly: ℓ ≡ log 2 on every sample.
        let fwd = vec![2f32.ln(); 100];
        let rev = vec![2f32.ln(); 50];
        let s = bar(&fwd, &rev).unwrap();
        assert!((s.delta - 2f64.ln()).abs() < 1e-6, "{s:?}");
        assert!(bar(&[], &rev).is_none());
    }

    #[test]
    fn discrete_example_is_exact_with_exact_samples() {
        // p_0 uniform on {0,1}, q_1(x) = e^{x}: Z_1/Z_0 = (1 + e)/2. Exact "samples": both
        // states in proportion (p_1 = (1, e)/(1+e) approximated by counts 1000 : 2718).
        let fwd: Vec<f32> = [0.0f32, 1.0].repeat(1000);
        let mut rev = vec![0.0f32; 1000];
        rev.extend(std::iter::repeat_n(1.0f32, 2718));
        let s = bar(&fwd, &rev).unwrap();
        let want = ((1.0 + std::f64::consts::E) / 2.0).ln();
        assert!((s.delta - want).abs() < 1e-4, "{} vs {want}", s.delta);
    }
}

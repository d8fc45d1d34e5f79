//! Random relaxed points `ζ ∈ [0,1]^n` for the Theorem 1 checks (docs/algorithms.md §8 T1): uniform
//! interior points, Beta(α, α) points that crowd the boundary, points on faces, and the end
//! points of projected gradient descent/ascent.

use crate::poly::Multilinear;
use crate::rounding::Direction;
use gumbolt_core::rng::uniform_f64;
use rand::Rng;

/// A standard normal draw (Box–Muller on two open-interval uniforms).
pub fn std_normal<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    let u1 = uniform_f64(rng);
    let u2 = uniform_f64(rng);
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// A point uniform on `(0,1)^n`.
pub fn uniform_point<R: Rng + ?Sized>(rng: &mut R, n: usize) -> Vec<f64> {
    (0..n).map(|_| uniform_f64(rng)).collect()
}

/// A Beta(α, α) draw by Jöhnk's algorithm in log space (exact for any `α > 0`; for `α < 1` the
/// mass piles up near 0 and 1, which is what probes the boundary of the cube).
pub fn beta_symmetric<R: Rng + ?Sized>(rng: &mut R, alpha: f64) -> f64 {
    loop {
        let lx = uniform_f64(rng).ln() / alpha;
        let ly = uniform_f64(rng).ln() / alpha;
        // Accept when X + Y ≤ 1, i.e. logaddexp(lx, ly) ≤ 0.
        let m = lx.max(ly);
        let lsum = m + ((lx - m).exp() + (ly - m).exp()).ln();
        if lsum <= 0.0 {
            return (lx - lsum).exp().clamp(0.0, 1.0);
        }
    }
}

/// A point with i.i.d. Beta(α, α) coordinates.
pub fn beta_point<R: Rng + ?Sized>(rng: &mut R, n: usize, alpha: f64) -> Vec<f64> {
    (0..n).map(|_| beta_symmetric(rng, alpha)).collect()
}

/// A point on a face of the cube: each coordinate is pinned to 0 or 1 with probability `1/2`
/// (the end chosen by a fair coin), and is uniform otherwise.
pub fn face_point<R: Rng + ?Sized>(rng: &mut R, n: usize) -> Vec<f64> {
    (0..n)
        .map(|_| {
            let u = uniform_f64(rng);
            if u < 0.25 {
                0.0
            } else if u < 0.5 {
                1.0
            } else {
                uniform_f64(rng)
            }
        })
        .collect()
}

/// Projected gradient descent ([`Direction::Down`]) or ascent ([`Direction::Up`]) of `E` on
/// `[0,1]^n` from `start`, for `steps` steps.
///
/// Each step moves `ζ ← clamp(ζ ∓ η ∇E(ζ), 0, 1)` with a backtracking step size (halved until
/// the step does not go the wrong way, then grown by 1.5), so the energy sequence is monotone
/// and the run needs no Lipschitz constant. Returns the end point.
pub fn projected_gradient<M: Multilinear + ?Sized>(
    m: &M,
    start: &[f64],
    dir: Direction,
    steps: usize,
) -> Vec<f64> {
    let sign = match dir {
        Direction::Down => -1.0,
        Direction::Up => 1.0,
    };
    let mut z = start.to_vec();
    let mut e = m.energy(&z);
    let mut eta = 1.0 / (1.0 + m.coeff_abs_sum());
    let mut trial = z.clone();
    for _ in 0..steps {
        let g = m.grad(&z);
        let mut accepted = false;
        for _ in 0..40 {
            for ((t, &zi), &gi) in trial.iter_mut().zip(&z).zip(&g) {
                *t = (zi + sign * eta * gi).clamp(0.0, 1.0);
            }
            let et = m.energy(&trial);
            if sign * (et - e) >= 0.0 {
                std::mem::swap(&mut z, &mut trial);
                e = et;
                eta *= 1.5;
                accepted = true;
                break;
            }
            eta *= 0.5;
        }
        if !accepted {
            break; // stationary to machine precision
        }
    }
    z
}

/// The kinds of relaxed points the Theorem 1 checks draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointKind {
    /// [`uniform_point`].
    Uniform,
    /// [`beta_point`] with `α = 0.1`.
    NearBoundary,
    /// [`face_point`].
    Face,
    /// [`projected_gradient`] descent from a uniform start.
    DescentEnd,
    /// [`projected_gradient`] ascent from a uniform start.
    AscentEnd,
}

/// `per_kind` points of every [`PointKind`] (descent/ascent runs take `pgd_steps` steps),
/// each tagged with its kind.
pub fn test_points<M: Multilinear + ?Sized, R: Rng + ?Sized>(
    m: &M,
    rng: &mut R,
    per_kind: usize,
    pgd_steps: usize,
) -> Vec<(PointKind, Vec<f64>)> {
    let n = m.num_units();
    let mut out = Vec::with_capacity(5 * per_kind);
    for _ in 0..per_kind {
        out.push((PointKind::Uniform, uniform_point(rng, n)));
        out.push((PointKind::NearBoundary, beta_point(rng, n, 0.1)));
        out.push((PointKind::Face, face_point(rng, n)));
        let s = uniform_point(rng, n);
        out.push((
            PointKind::DescentEnd,
            projected_gradient(m, &s, Direction::Down, pgd_steps),
        ));
        let s = uniform_point(rng, n);
        out.push((
            PointKind::AscentEnd,
            projected_gradient(m, &s, Direction::Up, pgd_steps),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::poly::PolySpec;
    use gumbolt_core::rng::root_rng;

    #[test]
    fn beta_points_crowd_the_boundary_and_are_symmetric() {
        let mut rng = root_rng(11);
        let xs: Vec<f64> = (0..20_000).map(|_| beta_symmetric(&mut rng, 0.1)).collect();
        assert!(xs.iter().all(|x| (0.0..=1.0).contains(x)));
        let near =
            xs.iter().filter(|&&x| !(0.01..=0.99).contains(&x)).count() as f64 / xs.len() as f64;
        // P(X < 0.01 or X > 0.99) for Beta(0.1, 0.1) is about 0.63.
        assert!(
            near > 0.55 && near < 0.72,
            "fraction near the boundary {near}"
        );
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        assert!((mean - 0.5).abs() < 0.02, "mean {mean}");
        // α = 1 is uniform: variance 1/12.
        let ys: Vec<f64> = (0..20_000).map(|_| beta_symmetric(&mut rng, 1.0)).collect();
        let m = ys.iter().sum::<f64>() / ys.len() as f64;
        let v = ys.iter().map(|y| (y - m).powi(2)).sum::<f64>() / ys.len() as f64;
        assert!((v - 1.0 / 12.0).abs() < 3e-3, "variance {v}");
    }

    #[test]
    fn projected_gradient_reaches_the_box_optimum_of_a_linear_energy() {
        // E = 2ζ0 − 3ζ1: minimum at (0, 1), maximum at (1, 0).
        let p = PolySpec::from_terms(2, [(vec![0], 2.0), (vec![1], -3.0)]);
        let lo = projected_gradient(&p, &[0.5, 0.5], Direction::Down, 100);
        let hi = projected_gradient(&p, &[0.5, 0.5], Direction::Up, 100);
        assert_eq!(lo, vec![0.0, 1.0]);
        assert_eq!(hi, vec![1.0, 0.0]);
    }
}

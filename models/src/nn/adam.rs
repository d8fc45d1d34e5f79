//! The Adam optimiser in the reference's TF1 form, with coupled weight decay.

use gumbolt_core::{CoreError, parallel};
use serde::{Deserialize, Serialize};

use super::param::ParamMut;

/// Hyper-parameters of [`Adam`]. The defaults are the reference's (docs/algorithms.md §9):
/// β1 = 0.9, β2 = 0.999, ε = 1e-3, weight decay λ = 1e-4.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdamConfig {
    /// Decay of the first-moment average.
    pub beta1: f64,
    /// Decay of the second-moment average.
    pub beta2: f64,
    /// ε of TF1's "ε-hat" form (added to `√v`, after bias correction moved into the step).
    pub eps: f64,
    /// λ of the penalty `λ·½‖θ‖²` on tensors flagged [`ParamMut::decay`].
    pub weight_decay: f64,
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-3,
            weight_decay: 1e-4,
        }
    }
}

impl AdamConfig {
    /// Checks `β1, β2 ∈ [0, 1)`, `ε > 0` and `λ ≥ 0`.
    ///
    /// # Errors
    /// [`CoreError::InvalidConfig`] naming the field.
    pub fn validate(&self) -> Result<(), CoreError> {
        let bad = |name, reason: &str| {
            Err(CoreError::InvalidConfig {
                name,
                reason: reason.to_string(),
            })
        };
        if !(0.0..1.0).contains(&self.beta1) {
            return bad("adam.beta1", "must lie in [0, 1)");
        }
        if !(0.0..1.0).contains(&self.beta2) {
            return bad("adam.beta2", "must lie in [0, 1)");
        }
        if !(self.eps > 0.0 && self.eps.is_finite()) {
            return bad("adam.eps", "must be positive and finite");
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return bad("adam.weight_decay", "must be non-negative and finite");
        }
        Ok(())
    }
}

/// Adam as TF1's `AdamOptimizer` computes it (the reference's optimiser, docs/algorithms.md §9):
///
/// ```text
/// g  = ∂loss/∂θ + λθ        (λθ only for tensors flagged `decay`)
/// m ← β1·m + (1 − β1)·g
/// v ← β2·v + (1 − β2)·g²
/// t ← t + 1,  lr_t = lr·√(1 − β2ᵗ)/(1 − β1ᵗ)
/// θ ← θ − lr_t · m/(√v + ε)
/// ```
///
/// The weight decay is the gradient of the penalty `λ·½‖θ‖²` added to the loss (coupled, not
/// decoupled as in AdamW); its value is [`super::weight_decay_loss`]. The gradient buffers are
/// read, not modified.
///
/// The optimiser keeps one `(m, v)` pair per tensor and identifies tensors by their position in
/// the list given to [`Adam::step`]; the state is created on the first step. All state
/// (configuration, step count, moments) is serialisable for checkpoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Adam {
    config: AdamConfig,
    t: u64,
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
}

impl Adam {
    /// A fresh optimiser (step count 0, no moments yet).
    ///
    /// # Errors
    /// As [`AdamConfig::validate`].
    pub fn new(config: AdamConfig) -> Result<Self, CoreError> {
        config.validate()?;
        Ok(Self {
            config,
            t: 0,
            m: Vec::new(),
            v: Vec::new(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &AdamConfig {
        &self.config
    }

    /// Number of steps taken.
    pub fn steps(&self) -> u64 {
        self.t
    }

    /// The first moments, one vector per tensor.
    pub fn first_moments(&self) -> &[Vec<f32>] {
        &self.m
    }

    /// The second moments, one vector per tensor.
    pub fn second_moments(&self) -> &[Vec<f32>] {
        &self.v
    }

    /// Replaces the whole state: step count `t` and the moments, one `(m, v)` pair per tensor
    /// in the order of [`Adam::step`]'s list (used to restore checkpoints; the configuration is
    /// kept). With `t = 0` and no moments the optimiser is fresh again.
    ///
    /// # Errors
    /// [`CoreError::Shape`] if the two lists differ in length or a pair differs in size, or
    /// if `t > 0` without moments (nothing is changed then).
    pub fn restore_state(
        &mut self,
        t: u64,
        m: Vec<Vec<f32>>,
        v: Vec<Vec<f32>>,
    ) -> Result<(), CoreError> {
        let sizes_match = m.len() == v.len() && m.iter().zip(&v).all(|(a, b)| a.len() == b.len());
        if !sizes_match || (t > 0 && m.is_empty()) {
            return Err(CoreError::Shape {
                context: "Adam::restore_state",
                expected: "one (m, v) pair of equal sizes per tensor".into(),
                got: format!(
                    "{} first and {} second moments at step {t}",
                    m.len(),
                    v.len()
                ),
            });
        }
        self.t = t;
        self.m = m;
        self.v = v;
        Ok(())
    }

    /// One update of every tensor with learning rate `lr` (schedules are the caller's).
    ///
    /// ```
    /// use gumbolt_models::nn::{Adam, AdamConfig, ParamMut};
    /// let mut adam = Adam::new(AdamConfig::default()).unwrap();
    /// let (mut w, mut g) = ([1.0f32], [0.5f32]);
    /// adam.step(&mut [ParamMut::new("w", &mut w, &mut g, false)], 0.1).unwrap();
    /// assert!(w[0] < 1.0);
    /// ```
    ///
    /// # Errors
    /// [`CoreError::Shape`] if the number or the sizes of the tensors differ from those of the
    /// first step (nothing is updated then).
    pub fn step(&mut self, params: &mut [ParamMut<'_>], lr: f32) -> Result<(), CoreError> {
        if self.t == 0 && self.m.is_empty() {
            self.m = params.iter().map(|p| vec![0.0; p.len()]).collect();
            self.v = self.m.clone();
        }
        if params.len() != self.m.len() {
            return Err(CoreError::Shape {
                context: "Adam::step (number of tensors)",
                expected: self.m.len().to_string(),
                got: params.len().to_string(),
            });
        }
        for (k, (p, m)) in params.iter().zip(&self.m).enumerate() {
            if p.len() != m.len() {
                return Err(CoreError::Shape {
                    context: "Adam::step (tensor size)",
                    expected: format!("tensor {k} of {} values", m.len()),
                    got: format!("`{}` of {} values", p.name, p.len()),
                });
            }
        }
        self.t += 1;
        let c = &self.config;
        let t = self.t.min(i32::MAX as u64) as i32;
        let lr_t = (lr as f64 * (1.0 - c.beta2.powi(t)).sqrt() / (1.0 - c.beta1.powi(t))) as f32;
        let (b1, b2, eps) = (c.beta1 as f32, c.beta2 as f32, c.eps as f32);
        let wd = c.weight_decay as f32;
        // Element-wise, so every tensor may be cut into parts for the calling pool's threads
        // (gumbolt_core::parallel): each element gets the same operations on any thread.
        let total: usize = params.iter().map(|p| p.len()).sum();
        let parts = parallel::parts_for(total);
        let mut work = Vec::new();
        for ((p, m), v) in params.iter_mut().zip(&mut self.m).zip(&mut self.v) {
            let coeffs = Coefficients {
                lr_t,
                b1,
                b2,
                eps,
                lambda: if p.decay { wd } else { 0.0 },
            };
            let ranges = parallel::ranges(p.len(), 16, parts);
            let xs = parallel::split_mut(p.value, &ranges, 1);
            let ms = parallel::split_mut(m, &ranges, 1);
            let vs = parallel::split_mut(v, &ranges, 1);
            for (((x, r), m), v) in xs.into_iter().zip(&ranges).zip(ms).zip(vs) {
                work.push((x, &p.grad[r.clone()], m, v, coeffs));
            }
        }
        if parts > 1 {
            parallel::for_each_part(work, &|(x, g, m, v, c)| update(x, g, m, v, c));
        } else {
            for (x, g, m, v, c) in work {
                update(x, g, m, v, c);
            }
        }
        Ok(())
    }
}

/// The per-tensor constants of one Adam step.
#[derive(Clone, Copy)]
struct Coefficients {
    /// The bias-corrected learning rate.
    lr_t: f32,
    b1: f32,
    b2: f32,
    eps: f32,
    /// The weight-decay coefficient of this tensor (0 without decay).
    lambda: f32,
}

gumbolt_core::multiversion! {
/// `θ ← θ − lr_t·m/(√v + ε)` after `m ← β1·m + (1 − β1)·g`, `v ← β2·v + (1 − β2)·g²` with
/// `g = ∂loss/∂θ + λθ`, element by element (vectorised; the same operations at every width).
fn update(x: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], c: Coefficients) {
    let Coefficients { lr_t, b1, b2, eps, lambda } = c;
    for (((x, &g), m), v) in x.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        let g = g + lambda * *x;
        *m = b1 * *m + (1.0 - b1) * g;
        *v = b2 * *v + (1.0 - b2) * g * g;
        *x -= lr_t * *m / (v.sqrt() + eps);
    }
}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_step_matches_hand_computation() {
        let cfg = AdamConfig::default();
        let mut adam = Adam::new(cfg).unwrap();
        let mut w = [1.0f32, -2.0, 0.5];
        let mut gw = [0.3f32, -1.0, 0.0];
        let mut b = [0.25f32];
        let mut gb = [2.0f32];
        let (w0, b0) = (w, b);
        let lr = 3e-3f64;
        adam.step(
            &mut [
                ParamMut::new("kernel", &mut w, &mut gw, true),
                ParamMut::new("bias", &mut b, &mut gb, false),
            ],
            lr as f32,
        )
        .unwrap();
        // t = 1: m = 0.1 g, v = 0.001 g², lr_1 = lr·√0.001/0.1.
        let lr1 = lr * 0.001f64.sqrt() / 0.1;
        let step = |theta: f64, g: f64, decay: bool| {
            let g = g + if decay { 1e-4 * theta } else { 0.0 };
            theta - lr1 * (0.1 * g) / ((0.001 * g * g).sqrt() + 1e-3)
        };
        for i in 0..3 {
            let want = step(w0[i] as f64, gw[i] as f64, true);
            assert!(
                (w[i] as f64 - want).abs() < 1e-7,
                "w[{i}] {} vs {want}",
                w[i]
            );
        }
        assert!((b[0] as f64 - step(b0[0] as f64, 2.0, false)).abs() < 1e-7);
        // The zero gradient still moves a decayed tensor (by the decay term only).
        assert!(w[2] < 0.5);
        // Gradients are not modified.
        assert_eq!(gw, [0.3, -1.0, 0.0]);
        assert_eq!(adam.steps(), 1);
    }

    #[test]
    fn steps_split_over_a_pool_are_bit_identical() {
        // Two tensors large enough to be cut into parts on a pool of two or three threads,
        // and a small one that is not; three steps each, compared bit for bit.
        let sizes = [300_001usize, 70_000, 5];
        let run = |threads: Option<usize>| {
            let mut values: Vec<Vec<f32>> = sizes
                .iter()
                .map(|&n| {
                    (0..n)
                        .map(|i| ((i * 7 % 113) as f32 - 56.0) * 0.01)
                        .collect()
                })
                .collect();
            let mut adam = Adam::new(AdamConfig::default()).unwrap();
            for t in 0..3 {
                let mut grads: Vec<Vec<f32>> = sizes
                    .iter()
                    .map(|&n| {
                        (0..n)
                            .map(|i| ((i * 13 + t) % 31) as f32 * 0.1 - 1.5)
                            .collect()
                    })
                    .collect();
                let mut params: Vec<ParamMut<'_>> = values
                    .iter_mut()
                    .zip(&mut grads)
                    .enumerate()
                    .map(|(k, (v, g))| ParamMut::new("kernel", v, g, k != 1))
                    .collect();
                match threads {
                    Some(n) => rayon::ThreadPoolBuilder::new()
                        .num_threads(n)
                        .build()
                        .unwrap()
                        .install(|| adam.step(&mut params, 3e-3)),
                    None => adam.step(&mut params, 3e-3),
                }
                .unwrap();
            }
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            let moments: Vec<_> = adam
                .first_moments()
                .iter()
                .chain(adam.second_moments())
                .map(|m| bits(m))
                .collect();
            (values.iter().map(|v| bits(v)).collect::<Vec<_>>(), moments)
        };
        let one = run(None);
        for threads in [2, 3] {
            // The update is cut into parts on such a pool.
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            assert!(pool.install(|| parallel::parts_for(sizes.iter().sum())) >= 2);
            assert!(run(Some(threads)) == one, "{threads} threads");
        }
    }

    #[test]
    fn converges_on_a_quadratic() {
        // loss = ½ Σ a_i (θ_i − c_i)², no decay.
        let a = [1.0f32, 10.0, 0.1, 3.0];
        let c = [1.0f32, -2.0, 0.5, 3.0];
        let mut theta = [0.0f32; 4];
        let mut g = [0.0f32; 4];
        let cfg = AdamConfig {
            eps: 1e-8,
            ..AdamConfig::default()
        };
        let mut adam = Adam::new(cfg).unwrap();
        for it in 0..5000 {
            for i in 0..4 {
                g[i] = a[i] * (theta[i] - c[i]);
            }
            let lr = if it < 3000 { 0.05 } else { 0.005 };
            adam.step(&mut [ParamMut::new("theta", &mut theta, &mut g, false)], lr)
                .unwrap();
        }
        for i in 0..4 {
            assert!((theta[i] - c[i]).abs() < 1e-3, "theta[{i}] = {}", theta[i]);
        }
        // With weight decay λ the minimum moves to a c / (a + λ).
        let cfg = AdamConfig {
            eps: 1e-8,
            weight_decay: 0.5,
            ..AdamConfig::default()
        };
        let mut adam = Adam::new(cfg).unwrap();
        let mut theta = [0.0f32; 4];
        for it in 0..5000 {
            for i in 0..4 {
                g[i] = a[i] * (theta[i] - c[i]);
            }
            let lr = if it < 3000 { 0.05 } else { 0.005 };
            adam.step(&mut [ParamMut::new("theta", &mut theta, &mut g, true)], lr)
                .unwrap();
        }
        for i in 0..4 {
            let want = a[i] * c[i] / (a[i] + 0.5);
            assert!(
                (theta[i] - want).abs() < 2e-3,
                "theta[{i}] = {} vs {want}",
                theta[i]
            );
        }
    }

    #[test]
    fn shape_changes_are_errors_and_state_serialises() {
        let mut adam = Adam::new(AdamConfig::default()).unwrap();
        let mut w = [1.0f32, 2.0];
        let mut g = [0.1f32, 0.2];
        adam.step(&mut [ParamMut::new("w", &mut w, &mut g, true)], 0.01)
            .unwrap();
        let mut w3 = [0.0f32; 3];
        let mut g3 = [0.0f32; 3];
        let e = adam
            .step(&mut [ParamMut::new("w", &mut w3, &mut g3, true)], 0.01)
            .unwrap_err();
        assert!(matches!(e, CoreError::Shape { .. }));
        assert!(adam.step(&mut [], 0.01).is_err());
        assert_eq!(adam.steps(), 1);
        // A restored optimiser continues bit-identically.
        let mut restored: Adam =
            serde_json::from_str(&serde_json::to_string(&adam).unwrap()).unwrap();
        assert_eq!(restored, adam);
        let mut w2 = w;
        adam.step(&mut [ParamMut::new("w", &mut w, &mut g, true)], 0.01)
            .unwrap();
        restored
            .step(&mut [ParamMut::new("w", &mut w2, &mut g, true)], 0.01)
            .unwrap();
        assert_eq!(w, w2);
        assert!(
            Adam::new(AdamConfig {
                beta1: 1.0,
                ..AdamConfig::default()
            })
            .is_err()
        );
        assert!(
            Adam::new(AdamConfig {
                eps: 0.0,
                ..AdamConfig::default()
            })
            .is_err()
        );
    }
}

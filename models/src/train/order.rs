//! Epoch-wise minibatch order: a seeded Fisher–Yates shuffle per epoch.

use gumbolt_core::rng::{StreamRng, root_rng};
use rand::Rng;

/// Serves the images of a training set in minibatches, epoch after epoch.
///
/// - Every epoch (the first included) is a fresh permutation of `0..n` drawn by a Fisher–Yates
///   (Durstenfeld) shuffle from the order's own Xoshiro256++ stream; the index `j ∈ 0..=i` is
///   drawn without bias by Lemire's multiply-and-reject method on `next_u64`, so the
///   permutation depends only on the seed (not on a rand version's `random_range`).
/// - Minibatches are consecutive slices of the permutation; the `n mod B` images left at the
///   end of an epoch are skipped (50 000 MNIST images make exactly 500 batches of 100).
/// - The state (permutation, position, epoch, stream) is small and checkpointed, so a resumed
///   run serves exactly the batches an uninterrupted one would.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochOrder {
    order: Vec<usize>,
    pos: usize,
    epoch: u64,
    rng: StreamRng,
}

impl EpochOrder {
    /// Epoch 0 of `n` images, shuffled from `root_rng(seed)`.
    pub fn new(n: usize, seed: u64) -> Self {
        let mut s = Self {
            order: (0..n).collect(),
            pos: 0,
            epoch: 0,
            rng: root_rng(seed),
        };
        shuffle(&mut s.order, &mut s.rng);
        s
    }

    /// Restores a saved state.
    ///
    /// # Errors
    /// A message if `order` is not a permutation of `0..order.len()` or `pos` is past its end.
    pub fn from_parts(
        order: Vec<usize>,
        pos: usize,
        epoch: u64,
        rng: StreamRng,
    ) -> Result<Self, String> {
        let n = order.len();
        let mut seen = vec![false; n];
        for &i in &order {
            if i >= n || std::mem::replace(&mut seen[i], true) {
                return Err(format!(
                    "the saved image order is not a permutation of 0..{n}"
                ));
            }
        }
        if pos > n {
            return Err(format!("position {pos} is past the {n} images of an epoch"));
        }
        Ok(Self {
            order,
            pos,
            epoch,
            rng,
        })
    }

    /// The next `b` indices, starting a new (reshuffled) epoch first when fewer than `b`
    /// remain in the current one.
    ///
    /// # Panics
    /// If `b` is 0 or larger than the number of images.
    pub fn next_batch(&mut self, b: usize) -> &[usize] {
        assert!(
            b >= 1 && b <= self.order.len(),
            "batch of {b} from {} images",
            self.order.len()
        );
        if self.pos + b > self.order.len() {
            shuffle(&mut self.order, &mut self.rng);
            self.pos = 0;
            self.epoch += 1;
        }
        let s = &self.order[self.pos..self.pos + b];
        self.pos += b;
        s
    }

    /// The current permutation.
    pub fn order(&self) -> &[usize] {
        &self.order
    }

    /// Position of the next batch within the permutation.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The current epoch (from 0).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The shuffling stream (positioned after the current epoch's shuffle).
    pub fn rng(&self) -> &StreamRng {
        &self.rng
    }
}

/// Durstenfeld's Fisher–Yates shuffle: for `i = n−1 … 1`, swap `v[i]` with `v[j]`,
/// `j` uniform on `0..=i`.
pub fn shuffle<T, R: Rng + ?Sized>(v: &mut [T], rng: &mut R) {
    for i in (1..v.len()).rev() {
        let j = uniform_below(rng, i as u64 + 1) as usize;
        v.swap(i, j);
    }
}

/// A uniform integer on `0..n` (`n ≥ 1`) by Lemire's multiply-and-reject (unbiased).
fn uniform_below<R: Rng + ?Sized>(rng: &mut R, n: u64) -> u64 {
    let threshold = n.wrapping_neg() % n;
    loop {
        let m = (rng.next_u64() as u128) * (n as u128);
        if (m as u64) >= threshold {
            return (m >> 64) as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_are_permutations_and_reproducible() {
        let mut a = EpochOrder::new(10, 3);
        let mut b = EpochOrder::new(10, 3);
        let mut seen = Vec::new();
        for _ in 0..3 {
            seen.extend_from_slice(a.next_batch(3));
            b.next_batch(3);
        }
        // 10 = 3·3 + 1: the fourth batch starts epoch 1.
        assert_eq!(a.epoch(), 0);
        let mut first: Vec<usize> = seen.clone();
        first.sort();
        first.dedup();
        assert_eq!(first.len(), 9);
        a.next_batch(3);
        b.next_batch(3);
        assert_eq!(a.epoch(), 1);
        assert_eq!(a, b);
        let restored =
            EpochOrder::from_parts(a.order().to_vec(), a.position(), a.epoch(), a.rng().clone())
                .unwrap();
        let mut r = restored;
        for _ in 0..20 {
            assert_eq!(a.next_batch(4), r.next_batch(4));
        }
        assert!(EpochOrder::from_parts(vec![0, 0, 1], 0, 0, root_rng(0)).is_err());
        assert!(EpochOrder::from_parts(vec![0, 1], 3, 0, root_rng(0)).is_err());
    }

    #[test]
    fn shuffle_is_uniform_on_small_sets() {
        // All 6 permutations of 3 items, 60 000 shuffles: chi-square with 5 d.o.f.
        let mut rng = root_rng(9);
        let mut counts = std::collections::HashMap::new();
        let n = 60_000;
        for _ in 0..n {
            let mut v = [0u8, 1, 2];
            shuffle(&mut v, &mut rng);
            *counts.entry(v).or_insert(0usize) += 1;
        }
        assert_eq!(counts.len(), 6);
        let e = n as f64 / 6.0;
        let chi2: f64 = counts.values().map(|&c| (c as f64 - e).powi(2) / e).sum();
        // P(χ²₅ > 20.5) ≈ 0.001.
        assert!(chi2 < 20.5, "chi2 {chi2}");
        assert!((0..1000).all(|_| uniform_below(&mut rng, 7) < 7));
    }
}

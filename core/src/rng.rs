//! Seeded, reproducible random-number streams.
//!
//! Every chain, replica or worker gets its own [`StreamRng`] (Xoshiro256++, named explicitly
//! because `StdRng`/`SmallRng` are not value-stable across rand versions). Streams are derived
//! from one seed by successive `jump()`s, each of which skips 2¹²⁸ draws, so they never overlap.

use rand::{Rng, SeedableRng};
pub use rand_xoshiro::Xoshiro256PlusPlus as StreamRng;

/// A root generator for `seed` (SplitMix64 seeding, as `seed_from_u64` documents).
///
/// ```
/// use rand::Rng;
/// let mut a = gumbolt_core::rng::root_rng(7);
/// let mut b = gumbolt_core::rng::root_rng(7);
/// assert_eq!(a.next_u64(), b.next_u64());
/// ```
pub fn root_rng(seed: u64) -> StreamRng {
    StreamRng::seed_from_u64(seed)
}

/// `n` non-overlapping streams derived from `seed`: stream `i` is the root advanced by
/// `i + 1` jumps.
///
/// ```
/// use rand::Rng;
/// let mut s = gumbolt_core::rng::streams(1, 3);
/// assert_eq!(s.len(), 3);
/// assert_ne!(s[0].next_u64(), s[1].next_u64());
/// ```
pub fn streams(seed: u64, n: usize) -> Vec<StreamRng> {
    let mut r = root_rng(seed);
    (0..n)
        .map(|_| {
            r.jump();
            r.clone()
        })
        .collect()
}

const INV_2_24: f32 = 1.0 / 16_777_216.0;

/// Fills `out` with uniforms on the open interval (0, 1), two per `next_u64`.
///
/// Each value is `(m + 0.5)·2⁻²⁴` for a 24-bit integer m, so it is never 0 or 1 and
/// `logit(u)` is always finite (GB Eq. 2 takes σ⁻¹(ρ)).
///
/// ```
/// let mut rng = gumbolt_core::rng::root_rng(0);
/// let mut u = vec![0.0f32; 5];
/// gumbolt_core::rng::fill_uniform(&mut rng, &mut u);
/// assert!(u.iter().all(|&x| x > 0.0 && x < 1.0));
/// ```
pub fn fill_uniform<R: Rng + ?Sized>(rng: &mut R, out: &mut [f32]) {
    // Draw a chunk of words in a tight loop (the generator's serial dependency chain is then
    // the only bound), then convert the chunk in one vectorised pass. The values and their
    // order are those of converting each word as it is drawn.
    let mut words = [0u64; UNIFORM_CHUNK / 2];
    let mut chunks = out.chunks_exact_mut(UNIFORM_CHUNK);
    for chunk in &mut chunks {
        for w in words.iter_mut() {
            *w = rng.next_u64();
        }
        words_to_uniforms(&words, chunk);
    }
    let rest = chunks.into_remainder();
    let n = rest.len().div_ceil(2);
    for w in words[..n].iter_mut() {
        *w = rng.next_u64();
    }
    words_to_uniforms(&words[..n], rest);
}

/// The next `words.len()` words of `rng`, in order (a tight loop: the generator's serial
/// dependency chain is its only bound). [`uniforms_from_words`] turns them into the uniforms
/// [`fill_uniform`] would have drawn.
///
/// ```
/// use rand::Rng;
/// let (mut a, mut b) = (gumbolt_core::rng::root_rng(1), gumbolt_core::rng::root_rng(1));
/// let mut w = [0u64; 4];
/// gumbolt_core::rng::fill_words(&mut a, &mut w);
/// assert_eq!(w[0], b.next_u64());
/// ```
#[inline]
pub fn fill_words(rng: &mut StreamRng, words: &mut [u64]) {
    for w in words.iter_mut() {
        *w = rng.next_u64();
    }
}

/// Uniforms per chunk of [`fill_uniform`].
const UNIFORM_CHUNK: usize = 64;

crate::multiversion! {
    /// [`uniforms_from_words`] on one chunk (dispatched to the CPU's vector path).
    fn words_to_uniforms(words: &[u64], out: &mut [f32]) {
        uniforms_from_words(words, out);
    }
}

/// The uniforms of [`fill_uniform`] from words already drawn: `out[2i] ← (w_i >> 40)`,
/// `out[2i + 1] ← (w_i >> 8) & 0xFFFFFF` for the first `out.len()` slots (so `out.len()` is at
/// most `2·words.len()`), each 24-bit integer m mapped to `(m + 0.5)·2⁻²⁴`. Every step is
/// exact in f32, so vector code gives the scalar values bit for bit. Inlined into the caller,
/// which can loop over many blocks inside one `multiversion!` function.
///
/// ```
/// use rand::Rng;
/// let (mut a, mut b) = (gumbolt_core::rng::root_rng(3), gumbolt_core::rng::root_rng(3));
/// let words: Vec<u64> = (0..3).map(|_| a.next_u64()).collect();
/// let mut u = [0.0f32; 5];
/// gumbolt_core::rng::uniforms_from_words(&words, &mut u);
/// let mut v = [0.0f32; 5];
/// gumbolt_core::rng::fill_uniform(&mut b, &mut v);
/// assert_eq!(u, v);
/// ```
#[inline(always)]
pub fn uniforms_from_words(words: &[u64], out: &mut [f32]) {
    assert!(
        out.len() <= 2 * words.len(),
        "uniforms_from_words: too few words"
    );
    for (part, w) in out
        .chunks_mut(UNIFORM_CHUNK)
        .zip(words.chunks(UNIFORM_CHUNK / 2))
    {
        let mut ints = [[0u32; 2]; UNIFORM_CHUNK / 2];
        for (p, &x) in ints.iter_mut().zip(w) {
            *p = [(x >> 40) as u32, ((x >> 8) & 0xFF_FFFF) as u32];
        }
        for (o, &m) in part.iter_mut().zip(ints.as_flattened()) {
            *o = (m as f32 + 0.5) * INV_2_24;
        }
    }
}

/// One uniform on (0, 1) in f64 with 53 random bits.
pub fn uniform_f64<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    (((rng.next_u64() >> 11) as f64) + 0.5) * (1.0 / (1u64 << 53) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scalar definition [`fill_uniform`] must reproduce: each word converted as drawn.
    fn fill_uniform_reference(rng: &mut StreamRng, out: &mut [f32]) {
        let mut chunks = out.chunks_exact_mut(2);
        for pair in &mut chunks {
            let x = rng.next_u64();
            pair[0] = (((x >> 40) as u32) as f32 + 0.5) * INV_2_24;
            pair[1] = ((((x >> 8) & 0xFF_FFFF) as u32) as f32 + 0.5) * INV_2_24;
        }
        if let [last] = chunks.into_remainder() {
            let x = rng.next_u64();
            *last = (((x >> 40) as u32) as f32 + 0.5) * INV_2_24;
        }
    }

    #[test]
    fn chunked_fill_equals_the_word_by_word_definition() {
        for len in (0..200).chain([1000, 4097]) {
            let (mut a, mut b) = (root_rng(len as u64), root_rng(len as u64));
            let mut got = vec![0.0f32; len];
            fill_uniform(&mut a, &mut got);
            let mut want = vec![0.0f32; len];
            fill_uniform_reference(&mut b, &mut want);
            assert_eq!(got, want, "length {len}");
            assert_eq!(a.next_u64(), b.next_u64(), "length {len}: stream position");
        }
    }

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let mut a = streams(42, 4);
        let mut b = streams(42, 4);
        for (x, y) in a.iter_mut().zip(b.iter_mut()) {
            assert_eq!(x.next_u64(), y.next_u64());
        }
        let firsts: Vec<u64> = streams(42, 4).iter_mut().map(|r| r.next_u64()).collect();
        for i in 0..4 {
            for j in 0..i {
                assert_ne!(firsts[i], firsts[j]);
            }
        }
    }

    #[test]
    fn uniforms_have_mean_half_and_variance_one_twelfth() {
        let mut r = root_rng(3);
        let mut u = vec![0.0f32; 200_001];
        fill_uniform(&mut r, &mut u);
        let n = u.len() as f64;
        let mean = u.iter().map(|&x| x as f64).sum::<f64>() / n;
        let var = u.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
        // standard error of the mean: sqrt(1/12/n) ~ 6.5e-4; allow 5 s.e.
        assert!(
            (mean - 0.5).abs() < 5.0 * (1.0 / 12.0 / n).sqrt(),
            "mean {mean}"
        );
        assert!((var - 1.0 / 12.0).abs() < 2e-3, "var {var}");
        assert!(u.iter().all(|&x| x > 0.0 && x < 1.0));
    }
}

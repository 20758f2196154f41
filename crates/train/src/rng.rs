//! A small seeded random generator (SplitMix64).
//!
//! Every random choice of a run (initialisation, shuffling, mixing, dropout) is drawn from a
//! generator derived from the seed and the choice's coordinates (epoch, step, sequence...), so
//! a resumed run needs no saved generator state to make the same choices again.

/// SplitMix64: tiny, fast, statistically good enough for shuffling and initialisation.
#[derive(Debug, Clone)]
pub(crate) struct Rng {
    state: u64,
}

const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    /// A generator for the random choices identified by `coordinates` under `seed`.
    pub(crate) fn derived(seed: u64, coordinates: &[u64]) -> Self {
        let state = coordinates.iter().fold(mix(seed), |acc, &c| {
            mix(acc ^ mix(c.wrapping_add(GOLDEN_GAMMA)))
        });
        Self { state }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        mix(self.state)
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    pub(crate) fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `0..n` (`n > 0`); the modulo bias is negligible for the sizes used here.
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Fisher-Yates shuffle.
    pub(crate) fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

/// Tags that keep the streams of different kinds of choices apart.
pub(crate) mod stream {
    pub(crate) const INIT: u64 = 1;
    pub(crate) const SHUFFLE: u64 = 2;
    pub(crate) const MIX: u64 = 3;
    pub(crate) const DROPOUT: u64 = 4;
    pub(crate) const SPLIT: u64 = 5;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_coordinates_same_stream_and_different_otherwise() {
        let draw = |c: &[u64]| {
            let mut r = Rng::derived(7, c);
            (0..4).map(|_| r.next_u64()).collect::<Vec<_>>()
        };
        assert_eq!(draw(&[1, 2]), draw(&[1, 2]));
        assert_ne!(draw(&[1, 2]), draw(&[2, 1]));
        assert_ne!(draw(&[1]), draw(&[1, 0]));
    }

    #[test]
    fn shuffle_is_a_permutation_and_floats_are_in_range() {
        let mut r = Rng::derived(1, &[]);
        let mut v: Vec<usize> = (0..100).collect();
        r.shuffle(&mut v);
        assert_ne!(v, (0..100).collect::<Vec<_>>());
        v.sort_unstable();
        assert_eq!(v, (0..100).collect::<Vec<_>>());
        let mean = (0..10_000).map(|_| r.next_f64()).sum::<f64>() / 10_000.0;
        assert!((mean - 0.5).abs() < 0.02, "{mean}");
    }
}

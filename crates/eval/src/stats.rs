//! The statistics behind the reports and the promotion gate: Wilson intervals for one accuracy,
//! and paired tests for two runs over the same items (exact McNemar, paired bootstrap). Paired,
//! because both runs answer the same questions: most of the noise cancels, and only the items
//! on which they disagree carry information.

/// The normal quantile for a two-sided 95% interval.
const Z95: f64 = 1.959_963_984_540_054;

/// The 95% Wilson score interval of `successes` out of `n`, clamped to `[0, 1]`. Unlike the
/// normal approximation it stays inside `[0, 1]` and is sensible for small `n` and for
/// accuracies near 0 or 1. With `n = 0` nothing is known: `[0, 1]`.
pub fn wilson(successes: usize, n: usize) -> [f64; 2] {
    if n == 0 {
        return [0.0, 1.0];
    }
    let n_f = n as f64;
    let p = successes.min(n) as f64 / n_f;
    let z2 = Z95 * Z95;
    let denominator = 1.0 + z2 / n_f;
    let centre = (p + z2 / (2.0 * n_f)) / denominator;
    let half = Z95 / denominator * (p * (1.0 - p) / n_f + z2 / (4.0 * n_f * n_f)).sqrt();
    [(centre - half).max(0.0), (centre + half).min(1.0)]
}

/// Two-sided exact McNemar test: the p-value of `b` items right only in the first run and `c`
/// right only in the second, under "either is equally likely" (a binomial with p = 1/2 on the
/// `b + c` discordant items). No discordant items: 1.
pub fn mcnemar_exact(b: usize, c: usize) -> f64 {
    let n = b + c;
    if n == 0 {
        return 1.0;
    }
    let tail = binomial_half_cdf(b.min(c), n);
    (2.0 * tail).min(1.0)
}

/// P(X <= k) for X ~ Binomial(n, 1/2), summed in log space so that large `n` neither
/// overflows the binomial coefficients nor underflows 2^-n.
fn binomial_half_cdf(k: usize, n: usize) -> f64 {
    let ln_half_n = -(n as f64) * std::f64::consts::LN_2;
    // ln C(n, 0) = 0; ln C(n, i + 1) = ln C(n, i) + ln(n - i) - ln(i + 1).
    let mut ln_terms = Vec::with_capacity(k + 1);
    let mut ln_choose = 0.0;
    for i in 0..=k {
        if i > 0 {
            ln_choose += ((n - i + 1) as f64).ln() - (i as f64).ln();
        }
        ln_terms.push(ln_choose + ln_half_n);
    }
    let max = ln_terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let sum: f64 = ln_terms.iter().map(|t| (t - max).exp()).sum();
    (max + sum.ln()).exp().min(1.0)
}

/// A small, fast, seedable generator (SplitMix64, Steele et al. 2014): the bootstrap must give
/// the same interval for the same seed on every machine, and needs nothing stronger.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform index below `n` (`n > 0`), by multiply-shift; the bias, at most n / 2^64, is
    /// far below anything a bootstrap could notice.
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

/// The 95% percentile-bootstrap interval of `mean(candidate) - mean(baseline)` over paired
/// outcomes `(baseline correct, candidate correct)`: items are resampled with replacement, as
/// pairs, `iterations` times. Deterministic for a given `seed`. With no pairs or no iterations
/// the difference can be anything: `[-1, 1]`.
pub fn paired_bootstrap(pairs: &[(bool, bool)], iterations: usize, seed: u64) -> [f64; 2] {
    if pairs.is_empty() || iterations == 0 {
        return [-1.0, 1.0];
    }
    // Only the sign of each item's difference matters: -1, 0 or +1.
    let diffs: Vec<i64> = pairs
        .iter()
        .map(|&(base, cand)| i64::from(cand) - i64::from(base))
        .collect();
    let n = diffs.len();
    let mut rng = SplitMix64::new(seed);
    let mut deltas: Vec<f64> = (0..iterations)
        .map(|_| {
            let total: i64 = (0..n).map(|_| diffs[rng.below(n)]).sum();
            total as f64 / n as f64
        })
        .collect();
    deltas.sort_by(f64::total_cmp);
    [quantile(&deltas, 0.025), quantile(&deltas, 0.975)]
}

/// The `q` quantile of sorted, non-empty `values`, interpolated linearly between the closest
/// ranks (numpy's default method).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let position = q * (sorted.len() - 1) as f64;
    let below = position.floor() as usize;
    let above = position.ceil() as usize;
    let fraction = position - below as f64;
    sorted[below] + (sorted[above] - sorted[below]) * fraction
}

/// The standard error of a mean as lm-eval reports it (`acc_stderr`): the sample standard
/// deviation (n - 1 in the denominator) over sqrt(n). `None` below two values, where lm-eval
/// would divide by zero.
pub fn stderr(values: &[f64]) -> Option<f64> {
    let n = values.len();
    if n < 2 {
        return None;
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    Some(variance.sqrt() / (n as f64).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tolerance: f64) -> bool {
        (a - b).abs() < tolerance
    }

    #[test]
    fn wilson_matches_hand_computed_values() {
        // p = 0.7, z^2/n = 0.064025: centre 0.687970, half-width 0.113057.
        let [lo, hi] = wilson(42, 60);
        assert!(
            close(lo, 0.574913, 1e-6) && close(hi, 0.801018, 1e-6),
            "{lo} {hi}"
        );
        let [lo, hi] = wilson(0, 10);
        assert!(lo == 0.0 && close(hi, 0.277533, 1e-6), "{lo} {hi}");
        let [lo, hi] = wilson(10, 10);
        assert!(close(lo, 0.722467, 1e-6) && hi <= 1.0, "{lo} {hi}");
        assert_eq!(wilson(0, 0), [0.0, 1.0]);
    }

    #[test]
    fn mcnemar_exact_p_values() {
        // 2 * (C(12,0) + C(12,1) + C(12,2)) / 2^12 = 2 * 79 / 4096.
        assert!(close(mcnemar_exact(10, 2), 158.0 / 4096.0, 1e-12));
        assert_eq!(mcnemar_exact(2, 10), mcnemar_exact(10, 2));
        assert_eq!(mcnemar_exact(0, 0), 1.0);
        assert_eq!(mcnemar_exact(5, 5), 1.0);
        // 2 * 2^-5 = 0.0625: five discordant items one way are not enough at alpha 0.05.
        assert!(close(mcnemar_exact(5, 0), 0.0625, 1e-12));
        // Large n stays finite and tiny rather than 0/0.
        let p = mcnemar_exact(3000, 2000);
        assert!(p > 0.0 && p < 1e-40, "{p}");
    }

    #[test]
    fn splitmix_is_the_reference_sequence() {
        // First outputs of SplitMix64 seeded with 0 (Vigna's reference implementation).
        let mut rng = SplitMix64::new(0);
        assert_eq!(rng.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(rng.next_u64(), 0x6e78_9e6a_a1b9_65f4);
        let mut rng = SplitMix64::new(7);
        assert!((0..1000).all(|_| rng.below(3) < 3));
    }

    #[test]
    fn bootstrap_is_deterministic_and_brackets_the_difference() {
        // 100 items: 20 only the candidate gets right, 5 only the baseline: delta = +0.15.
        let mut pairs = vec![(false, true); 20];
        pairs.extend(vec![(true, false); 5]);
        pairs.extend(vec![(true, true); 50]);
        pairs.extend(vec![(false, false); 25]);
        let ci = paired_bootstrap(&pairs, 2000, 42);
        assert_eq!(ci, paired_bootstrap(&pairs, 2000, 42));
        assert_ne!(ci, paired_bootstrap(&pairs, 2000, 43));
        // Normal approximation: sd of diffs = sqrt(0.25 - 0.0225) = 0.477, se = 0.0477,
        // so about [0.057, 0.243].
        assert!(
            ci[0] > 0.03 && ci[0] < 0.09 && ci[1] > 0.21 && ci[1] < 0.27,
            "{ci:?}"
        );
        let same = vec![(true, true); 10];
        assert_eq!(paired_bootstrap(&same, 100, 1), [0.0, 0.0]);
        assert_eq!(paired_bootstrap(&[], 100, 1), [-1.0, 1.0]);
    }

    #[test]
    fn quantile_interpolates_like_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert!(close(quantile(&v, 0.5), 2.5, 1e-12));
        assert!(close(quantile(&v, 0.025), 1.075, 1e-12));
    }

    #[test]
    fn stderr_uses_the_sample_deviation() {
        // [1, 0, 1, 1]: mean 0.75, sample variance 0.25, se = 0.5 / 2.
        assert!(close(
            stderr(&[1.0, 0.0, 1.0, 1.0]).unwrap_or(f64::NAN),
            0.25,
            1e-12
        ));
        assert_eq!(stderr(&[1.0]), None);
    }
}

//! Summary statistics computed the way `vllm bench serve` computes them with numpy, so numbers
//! from the two tools can be compared: `np.mean`, `np.median`, `np.std` (population, `ddof=0`)
//! and `np.percentile` with its default linear interpolation. An empty sample summarises to
//! zeros, as vLLM's `np.mean(x or 0)` does.

/// Mean, median, standard deviation and the 90th and 99th percentiles of one metric.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Summary {
    /// Arithmetic mean.
    pub mean: f64,
    /// 50th percentile.
    pub median: f64,
    /// Population standard deviation.
    pub std: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
}

impl Summary {
    /// Summarises `values` (any order; NaNs are dropped, as they can only come from a bug and
    /// would poison every statistic).
    pub fn of(values: &[f64]) -> Self {
        let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
        if sorted.is_empty() {
            return Self::default();
        }
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len() as f64;
        let mean = sorted.iter().sum::<f64>() / n;
        let variance = sorted.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        Self {
            mean,
            median: percentile(&sorted, 50.0),
            std: variance.sqrt(),
            p90: percentile(&sorted, 90.0),
            p99: percentile(&sorted, 99.0),
        }
    }

    /// The same summary with every value multiplied by `factor` (seconds → milliseconds).
    pub fn scaled(self, factor: f64) -> Self {
        Self {
            mean: self.mean * factor,
            median: self.median * factor,
            std: self.std * factor,
            p90: self.p90 * factor,
            p99: self.p99 * factor,
        }
    }
}

/// The `p`-th percentile (0-100) of ascending `sorted`, interpolating linearly between the two
/// nearest ranks (numpy's default `method="linear"`); 0 for an empty slice.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    let Some(last) = sorted.len().checked_sub(1) else {
        return 0.0;
    };
    let rank = (p.clamp(0.0, 100.0) / 100.0) * last as f64;
    let lower = rank.floor() as usize;
    let upper = rank.ceil() as usize;
    let fraction = rank - lower as f64;
    sorted[lower] + (sorted[upper] - sorted[lower]) * fraction
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn percentiles_match_numpy_linear_interpolation() {
        // np.percentile([1, 2, 3, 4], [0, 25, 50, 90, 99, 100])
        //   -> [1., 1.75, 2.5, 3.7, 3.97, 4.]
        let sorted = [1.0, 2.0, 3.0, 4.0];
        for (p, expected) in [
            (0.0, 1.0),
            (25.0, 1.75),
            (50.0, 2.5),
            (90.0, 3.7),
            (99.0, 3.97),
            (100.0, 4.0),
        ] {
            assert!(close(percentile(&sorted, p), expected), "p{p}");
        }
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }

    #[test]
    fn summary_matches_numpy() {
        // x = [10, 1, 4, 3, 2]: mean 4, median 3, np.std 3.1622776601683795,
        // np.percentile(x, 90) 7.6, np.percentile(x, 99) 9.76
        let s = Summary::of(&[10.0, 1.0, 4.0, 3.0, 2.0]);
        assert!(close(s.mean, 4.0));
        assert!(close(s.median, 3.0));
        assert!(close(s.std, 3.162_277_660_168_379_5));
        assert!(close(s.p90, 7.6));
        assert!(close(s.p99, 9.76));
        let ms = s.scaled(1000.0);
        assert!(close(ms.p99, 9760.0));
    }

    #[test]
    fn empty_and_nan_samples_are_zero_not_nan() {
        assert_eq!(Summary::of(&[]), Summary::default());
        assert_eq!(Summary::of(&[f64::NAN]), Summary::default());
        let s = Summary::of(&[f64::NAN, 2.0]);
        assert_eq!((s.mean, s.std), (2.0, 0.0));
    }
}

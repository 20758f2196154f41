//! Open-loop arrivals, as `vllm bench serve` draws them: gaps between requests from a gamma
//! distribution with shape `burstiness` and mean `1 / rate`. Burstiness 1 is the exponential
//! distribution, i.e. Poisson arrivals; below 1 requests come in bursts, above 1 more evenly.

use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Gamma};

use crate::error::{EvalError, Result};

use super::workload::{rng, Purpose};

/// Seeded gaps between request arrivals.
#[derive(Debug, Clone)]
pub(crate) struct Arrivals {
    rng: ChaCha8Rng,
    /// `None` for an infinite rate: every request is due at once.
    gaps: Option<Gamma<f64>>,
}

impl Arrivals {
    /// Arrivals at `rate` requests per second (finite and positive, or `+inf`).
    pub(crate) fn new(rate: f64, burstiness: f64, seed: u64) -> Result<Self> {
        if rate.is_nan() || rate <= 0.0 {
            return Err(EvalError::BadSetting {
                setting: "request-rate".into(),
                reason: format!("must be a positive number of requests per second, not {rate}"),
            });
        }
        if !burstiness.is_finite() || burstiness <= 0.0 {
            return Err(EvalError::BadSetting {
                setting: "burstiness".into(),
                reason: format!("must be a positive number, not {burstiness}"),
            });
        }
        let gaps = if rate.is_infinite() {
            None
        } else {
            let scale = 1.0 / (rate * burstiness);
            Some(
                Gamma::new(burstiness, scale).map_err(|e| EvalError::BadSetting {
                    setting: "request-rate".into(),
                    reason: format!("rate {rate} with burstiness {burstiness}: {e}"),
                })?,
            )
        };
        Ok(Self {
            rng: rng(seed, Purpose::Arrivals, 0),
            gaps,
        })
    }

    /// Seconds from this arrival to the next.
    pub(crate) fn next_gap(&mut self) -> f64 {
        self.gaps
            .as_ref()
            .map_or(0.0, |gamma| gamma.sample(&mut self.rng))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gaps(rate: f64, burstiness: f64, seed: u64, n: usize) -> Vec<f64> {
        let mut arrivals = Arrivals::new(rate, burstiness, seed).expect("valid");
        (0..n).map(|_| arrivals.next_gap()).collect()
    }

    #[test]
    fn poisson_gaps_average_one_over_the_rate() {
        let n = 20_000;
        let g = gaps(4.0, 1.0, 11, n);
        let mean = g.iter().sum::<f64>() / n as f64;
        // Exponential: sd = mean = 0.25, so the sample mean's sd is 0.25 / sqrt(n) ≈ 0.0018.
        assert!((mean - 0.25).abs() < 0.01, "mean gap {mean}");
        let var = g.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        // Poisson arrivals: coefficient of variation 1.
        assert!(
            (var.sqrt() / mean - 1.0).abs() < 0.05,
            "cv {}",
            var.sqrt() / mean
        );
        assert!(g.iter().all(|&x| x >= 0.0));
    }

    #[test]
    fn burstiness_keeps_the_mean_and_changes_the_spread() {
        let n = 20_000;
        let even = gaps(2.0, 4.0, 5, n);
        let mean = even.iter().sum::<f64>() / n as f64;
        assert!((mean - 0.5).abs() < 0.02, "mean gap {mean}");
        let cv = (even.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64).sqrt() / mean;
        // Gamma with shape k: cv = 1 / sqrt(k) = 0.5.
        assert!((cv - 0.5).abs() < 0.05, "cv {cv}");
    }

    #[test]
    fn schedules_are_seeded() {
        assert_eq!(gaps(3.0, 1.0, 1, 20), gaps(3.0, 1.0, 1, 20));
        assert_ne!(gaps(3.0, 1.0, 1, 20), gaps(3.0, 1.0, 2, 20));
        assert_eq!(gaps(f64::INFINITY, 1.0, 1, 3), [0.0, 0.0, 0.0]);
    }

    #[test]
    fn zero_negative_and_nan_rates_are_refused() {
        for rate in [0.0, -1.0, f64::NAN] {
            let err = Arrivals::new(rate, 1.0, 0).expect_err("refused");
            assert!(err.to_string().starts_with("--request-rate"), "{err}");
        }
        assert!(Arrivals::new(1.0, 0.0, 0).is_err());
    }
}

//! Waiting between HTTP retries: what `Retry-After` asks (seconds or an HTTP date), else
//! exponential backoff with jitter, both capped, a capped number of times.

use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, SystemTime};

/// How the teacher client backs off from 408, 429, 5xx and connection errors.
#[derive(Debug, Clone, PartialEq)]
pub struct BackoffPolicy {
    /// Retries after the first request; then the run stops with an error (and resumes later).
    pub max_retries: u32,
    /// The first wait; doubled per retry.
    pub initial: Duration,
    /// The longest wait, `Retry-After` included (a server asking for an hour is not obeyed).
    pub max: Duration,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        Self {
            max_retries: 6,
            initial: Duration::from_millis(500),
            max: Duration::from_secs(60),
        }
    }
}

impl BackoffPolicy {
    /// The wait before retry number `retry` (0-based). `retry_after` (the server's ask) wins,
    /// capped at `max`; otherwise `initial * 2^retry`, capped, scaled by `jitter` (in
    /// `[0, 1]`) into its upper half, so clients that failed together do not retry together.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>, jitter: f64) -> Duration {
        if let Some(asked) = retry_after {
            return asked.min(self.max);
        }
        let exponential = self
            .initial
            .saturating_mul(1u32 << retry.min(20))
            .min(self.max);
        exponential.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
    }
}

/// A `Retry-After` value: whole or fractional seconds, or an HTTP date (a date in the past is
/// no wait). `None` when it is neither.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// A number in `[0, 1)` that differs per call: std's randomly keyed hasher, so no RNG crate is
/// needed for jitter.
pub fn jitter() -> f64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_seconds_or_an_http_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(parse_retry_after("1", now), Some(Duration::from_secs(1)));
        assert_eq!(
            parse_retry_after(" 0.5 ", now),
            Some(Duration::from_millis(500))
        );
        // RFC 9110's example date is 784111777 seconds after the epoch.
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:30 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn delays_grow_exponentially_with_jitter_and_are_capped() {
        let policy = BackoffPolicy {
            max_retries: 5,
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        assert_eq!(policy.delay(0, None, 1.0), Duration::from_millis(100));
        assert_eq!(policy.delay(0, None, 0.0), Duration::from_millis(50));
        assert_eq!(policy.delay(2, None, 1.0), Duration::from_millis(400));
        assert_eq!(policy.delay(9, None, 1.0), Duration::from_secs(1));
        assert_eq!(policy.delay(40, None, 1.0), Duration::from_secs(1));
        assert_eq!(
            policy.delay(0, Some(Duration::from_millis(700)), 0.0),
            Duration::from_millis(700)
        );
        assert_eq!(
            policy.delay(0, Some(Duration::from_secs(3600)), 0.0),
            Duration::from_secs(1)
        );
        let j = jitter();
        assert!((0.0..1.0).contains(&j));
    }
}

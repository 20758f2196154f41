//! The metrics of a set of measured requests, defined as `vllm bench serve` defines them and
//! serialized under its result keys, so dashboards and scripts written for it read ours.

use std::collections::BTreeMap;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use super::request::Timing;
use super::stats::Summary;

/// One measured request.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestRecord {
    /// The model it named (the adapter, or the base model).
    pub model: String,
    /// Seconds from the start of the measured phase to sending it.
    pub start: f64,
    /// Seconds from the start of the measured phase to its end (success or failure).
    pub end: f64,
    /// Prompt tokens intended (calibrated count, or the estimate).
    pub prompt_tokens: usize,
    /// Timings, or the failure message.
    pub outcome: Result<Timing, String>,
}

impl RequestRecord {
    /// Generated tokens: the server's usage count, else one per text chunk.
    fn output_tokens(timing: &Timing) -> u64 {
        timing
            .usage
            .and_then(|u| u.completion_tokens)
            .unwrap_or(timing.content_chunks as u64)
    }

    /// Prompt tokens: the server's usage count, else the intended length.
    fn input_tokens(&self, timing: &Timing) -> u64 {
        timing
            .usage
            .and_then(|u| u.prompt_tokens)
            .unwrap_or(self.prompt_tokens as u64)
    }
}

/// Latency summaries in milliseconds; serialized as vLLM's flat keys (`mean_ttft_ms`,
/// `median_ttft_ms`, `std_ttft_ms`, `p90_ttft_ms`, `p99_ttft_ms`, then tpot, itl, e2el).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Latencies {
    /// Time to first token.
    pub ttft: Summary,
    /// Time per output token after the first: `(e2el - ttft) / (output_tokens - 1)`.
    pub tpot: Summary,
    /// Gaps between consecutive text chunks.
    pub itl: Summary,
    /// End-to-end latency.
    pub e2el: Summary,
}

impl Serialize for Latencies {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(20))?;
        for (name, s) in [
            ("ttft", self.ttft),
            ("tpot", self.tpot),
            ("itl", self.itl),
            ("e2el", self.e2el),
        ] {
            for (stat, value) in [
                ("mean", s.mean),
                ("median", s.median),
                ("std", s.std),
                ("p90", s.p90),
                ("p99", s.p99),
            ] {
                map.serialize_entry(&format!("{stat}_{name}_ms"), &value)?;
            }
        }
        map.end()
    }
}

/// The metrics of a set of requests (all of them, or one adapter's).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metrics {
    /// Seconds the measured phase took (the same for every adapter).
    pub duration: f64,
    /// Requests that finished.
    pub completed: usize,
    /// Requests that failed.
    pub failed: usize,
    /// Prompt tokens of the completed requests.
    pub total_input_tokens: u64,
    /// Generated tokens of the completed requests.
    pub total_output_tokens: u64,
    /// Completed requests per second.
    pub request_throughput: f64,
    /// Generated tokens per second.
    pub output_throughput: f64,
    /// Prompt and generated tokens per second.
    pub total_token_throughput: f64,
    /// Generated tokens in the busiest one-second window (windows from the first send).
    pub max_output_tokens_per_s: f64,
    /// Most requests in flight at one moment.
    pub max_concurrent_requests: usize,
    /// TTFT, TPOT, ITL and E2EL summaries in milliseconds.
    #[serde(flatten)]
    pub latency: Latencies,
    /// Failure message → how many requests failed with it.
    pub errors: BTreeMap<String, usize>,
}

impl Metrics {
    /// The metrics of `records`, over a measured phase of `duration` seconds.
    pub fn of<'a>(records: impl IntoIterator<Item = &'a RequestRecord>, duration: f64) -> Self {
        let records: Vec<&RequestRecord> = records.into_iter().collect();
        let mut errors = BTreeMap::new();
        let (mut input, mut output) = (0u64, 0u64);
        let (mut ttft, mut tpot, mut itl, mut e2el) = (vec![], vec![], vec![], vec![]);
        for record in &records {
            let timing = match &record.outcome {
                Ok(timing) => timing,
                Err(message) => {
                    *errors.entry(message.clone()).or_insert(0) += 1;
                    continue;
                }
            };
            let out = RequestRecord::output_tokens(timing);
            input += record.input_tokens(timing);
            output += out;
            e2el.push(timing.latency);
            itl.extend_from_slice(&timing.itl);
            if let Some(first) = timing.ttft {
                ttft.push(first);
                // One token has no "per output token" time after the first (vLLM skips it too).
                if out > 1 {
                    tpot.push((timing.latency - first) / (out - 1) as f64);
                }
            }
        }
        let completed = records.len() - errors.values().sum::<usize>();
        let per_s = |x: f64| if duration > 0.0 { x / duration } else { 0.0 };
        Self {
            duration,
            completed,
            failed: records.len() - completed,
            total_input_tokens: input,
            total_output_tokens: output,
            request_throughput: per_s(completed as f64),
            output_throughput: per_s(output as f64),
            total_token_throughput: per_s((input + output) as f64),
            max_output_tokens_per_s: peak_tokens_per_second(&records),
            max_concurrent_requests: peak_concurrency(&records),
            latency: Latencies {
                ttft: Summary::of(&ttft).scaled(1000.0),
                tpot: Summary::of(&tpot).scaled(1000.0),
                itl: Summary::of(&itl).scaled(1000.0),
                e2el: Summary::of(&e2el).scaled(1000.0),
            },
            errors,
        }
    }
}

/// vLLM's peak output throughput: tokens are placed at their chunks' arrival times (first
/// send + TTFT + the ITL gaps) and counted in one-second buckets from the first send. The
/// request's output tokens are spread over its chunks, so servers that send several tokens
/// per chunk are not undercounted (vLLM counts one per chunk: the same for one-token chunks).
fn peak_tokens_per_second(records: &[&RequestRecord]) -> f64 {
    let ok: Vec<(&RequestRecord, &Timing)> = records
        .iter()
        .filter_map(|r| r.outcome.as_ref().ok().map(|t| (*r, t)))
        .collect();
    let Some(first) = ok.iter().map(|(r, _)| r.start).min_by(f64::total_cmp) else {
        return 0.0;
    };
    let last = ok.iter().map(|(r, _)| r.end).fold(first, f64::max);
    let mut buckets = vec![0.0; (last - first).ceil() as usize + 1];
    for (record, timing) in ok {
        let Some(ttft) = timing.ttft else { continue };
        let (tokens, chunks) = (
            RequestRecord::output_tokens(timing),
            timing.itl.len() as u64 + 1,
        );
        let mut at = record.start + ttft;
        for (k, gap) in std::iter::once(&0.0).chain(&timing.itl).enumerate() {
            at += gap;
            // Whole tokens per chunk that add up to exactly `tokens` (chunk k holds the
            // tokens between the k-th and (k+1)-th chunk-th fraction of the total).
            let share = |k: u64| (tokens * k + chunks / 2) / chunks;
            let here = share(k as u64 + 1) - share(k as u64);
            if let Some(bucket) = buckets.get_mut(((at - first).max(0.0)) as usize) {
                *bucket += here as f64;
            }
        }
    }
    buckets.into_iter().fold(0.0, f64::max)
}

/// The most requests in flight at once, by a sweep over starts and ends (an end at the same
/// instant as a start is counted first: the slot was handed over, not shared).
fn peak_concurrency(records: &[&RequestRecord]) -> usize {
    let mut events: Vec<(f64, i32)> = records
        .iter()
        .flat_map(|r| [(r.start, 1), (r.end, -1)])
        .collect();
    events.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let (mut now, mut peak) = (0i64, 0i64);
    for (_, change) in events {
        now += i64::from(change);
        peak = peak.max(now);
    }
    peak as usize
}

#[cfg(test)]
mod tests {
    use super::super::sse::Usage;
    use super::*;

    fn ok(model: &str, start: f64, ttft: f64, itl: &[f64], tokens: u64) -> RequestRecord {
        let latency = ttft + itl.iter().sum::<f64>();
        RequestRecord {
            model: model.into(),
            start,
            end: start + latency,
            prompt_tokens: 16,
            outcome: Ok(Timing {
                ttft: Some(ttft),
                itl: itl.to_vec(),
                latency,
                content_chunks: itl.len() + 1,
                usage: Some(Usage {
                    prompt_tokens: Some(17),
                    completion_tokens: Some(tokens),
                }),
            }),
        }
    }

    fn failed(start: f64, message: &str) -> RequestRecord {
        RequestRecord {
            model: "b".into(),
            start,
            end: start + 0.01,
            prompt_tokens: 16,
            outcome: Err(message.into()),
        }
    }

    #[test]
    fn metrics_follow_vllms_definitions() {
        let records = [
            ok("a", 0.0, 0.1, &[0.05, 0.05, 0.1], 4),
            ok("a", 0.1, 0.2, &[0.1], 2),
            failed(0.2, "HTTP 500: boom"),
            failed(0.3, "HTTP 500: boom"),
        ];
        let m = Metrics::of(&records, 2.0);
        assert_eq!((m.completed, m.failed), (2, 2));
        assert_eq!((m.total_input_tokens, m.total_output_tokens), (34, 6));
        assert_eq!(m.request_throughput, 1.0);
        assert_eq!(m.output_throughput, 3.0);
        assert_eq!(m.total_token_throughput, 20.0);
        assert_eq!(m.errors.get("HTTP 500: boom"), Some(&2));
        // TPOT: (0.3 - 0.1) / 3 and (0.3 - 0.2) / 1.
        assert!((m.latency.tpot.mean - (200.0 / 3.0 + 100.0) / 2.0).abs() < 1e-9);
        assert!((m.latency.ttft.median - 150.0).abs() < 1e-9);
        assert_eq!(
            m.latency.itl,
            Summary::of(&[0.05, 0.05, 0.1, 0.1]).scaled(1000.0)
        );
        assert!((m.latency.e2el.mean - 300.0).abs() < 1e-9);
        // All six tokens arrive within the first second.
        assert_eq!(m.max_output_tokens_per_s, 6.0);
        assert_eq!(m.max_concurrent_requests, 3);
    }

    #[test]
    fn requests_without_usage_count_chunks() {
        let mut record = ok("a", 0.0, 0.1, &[0.1, 0.1], 99);
        if let Ok(timing) = &mut record.outcome {
            timing.usage = None;
        }
        let m = Metrics::of([&record], 1.0);
        assert_eq!((m.total_output_tokens, m.total_input_tokens), (3, 16));
    }

    #[test]
    fn multi_token_chunks_spread_their_tokens_for_the_peak() {
        // 10 tokens in 3 chunks (3, 4, 3) at 0.5 s, 0.75 s and 1.25 s.
        let record = ok("a", 0.0, 0.5, &[0.25, 0.5], 10);
        assert_eq!(Metrics::of([&record], 2.0).max_output_tokens_per_s, 7.0);
    }

    #[test]
    fn back_to_back_requests_do_not_overlap() {
        let records = [ok("a", 0.0, 0.5, &[], 1), ok("a", 0.5, 0.5, &[], 1)];
        assert_eq!(Metrics::of(&records, 1.0).max_concurrent_requests, 1);
        // A one-token request has no TPOT.
        assert_eq!(Metrics::of(&records, 1.0).latency.tpot, Summary::default());
    }

    #[test]
    fn keys_are_vllms() {
        let m = Metrics::of(&[ok("a", 0.0, 0.1, &[0.1], 2)], 1.0);
        let json = serde_json::to_value(&m).expect("serializes");
        for key in [
            "duration",
            "completed",
            "failed",
            "total_input_tokens",
            "total_output_tokens",
            "request_throughput",
            "output_throughput",
            "total_token_throughput",
            "max_output_tokens_per_s",
            "max_concurrent_requests",
            "errors",
        ] {
            assert!(json.get(key).is_some(), "missing {key}");
        }
        for metric in ["ttft", "tpot", "itl", "e2el"] {
            for stat in ["mean", "median", "std", "p90", "p99"] {
                let key = format!("{stat}_{metric}_ms");
                assert!(json[&key].is_f64(), "missing {key}");
            }
        }
        assert_eq!(json.as_object().map(|o| o.len()), Some(31));
    }
}

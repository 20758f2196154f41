//! The result of a benchmark run: the settings that produced it (the arrival process
//! included, as vLLM records it), the overall metrics under vLLM's keys, and the same metrics
//! per adapter; written as JSON for tools (the table for people is in `table`).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::summary::{Metrics, RequestRecord};
use super::{AdapterMix, BenchConfig, Load};

/// A benchmark run's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchReport {
    /// When the measured phase ended, UTC, in vLLM's `%Y%m%d-%H%M%S` form.
    pub date: String,
    /// vLLM's backend name for the endpoint: `openai` (completions) or `openai-chat`.
    pub backend: String,
    /// The server root.
    pub base_url: String,
    /// The path requests were sent to.
    pub endpoint: String,
    /// The model sent when no adapter is, and the one the tokenizer was asked about.
    pub model_id: String,
    /// The adapters requests were spread over (empty: all went to `model_id`).
    pub adapters: Vec<String>,
    /// How: `single`, `uniform`, `round-robin` or `weighted`.
    pub mix: String,
    /// The weights of a weighted mix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adapter_weights: Option<BTreeMap<String, f64>>,
    /// `closed` (a fixed number of requests in flight) or `open` (arrivals on a schedule).
    pub load: String,
    /// Measured requests asked for (`None`: until `max_duration`).
    pub num_prompts: Option<usize>,
    /// Seconds after which no new request was sent (`None`: until `num_prompts`).
    pub max_duration: Option<f64>,
    /// Requests sent before measuring, not counted.
    pub warmup: usize,
    /// Open loop: requests per second; closed loop: `"inf"` (vLLM's value for "as fast as
    /// the concurrency allows").
    pub request_rate: Value,
    /// Shape of the gamma inter-arrival distribution (1: Poisson).
    pub burstiness: f64,
    /// The cap on requests in flight (closed loop: its concurrency).
    pub max_concurrency: Option<usize>,
    /// Seed of prompts, adapter picks and arrivals.
    pub seed: u64,
    /// Prompt tokens asked for.
    pub input_len: usize,
    /// `max_tokens` of every request.
    pub output_len: usize,
    /// Whether `ignore_eos` was sent.
    pub ignore_eos: bool,
    /// Sampling temperature.
    pub temperature: f64,
    /// `exact` when prompts were cut with the server's `/tokenize`, else `approximate`.
    pub prompt_lengths: String,
    /// Where output token counts came from: `usage` (the server's final chunk), `chunks` (one
    /// per text chunk, when the server sent no usage) or `usage+chunks`.
    pub output_token_counts: String,
    /// Caveats about how the numbers were obtained.
    pub notes: Vec<String>,
    /// The metrics of every measured request.
    #[serde(flatten)]
    pub overall: Metrics,
    /// The same metrics for each model requests named.
    pub per_adapter: BTreeMap<String, Metrics>,
}

/// How prompts came to be and what is worth saying about them.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct PromptInfo {
    pub exact: bool,
    pub notes: Vec<String>,
}

impl BenchReport {
    pub(crate) fn new(
        config: &BenchConfig,
        base_url: &str,
        model: &str,
        prompts: PromptInfo,
        records: &[RequestRecord],
        duration: f64,
    ) -> Self {
        let mut per_model: BTreeMap<&str, Vec<&RequestRecord>> = BTreeMap::new();
        for record in records {
            per_model.entry(&record.model).or_default().push(record);
        }
        let per_adapter = per_model
            .into_iter()
            .map(|(name, group)| (name.to_string(), Metrics::of(group, duration)))
            .collect();
        let (with_usage, without) =
            records
                .iter()
                .filter_map(|r| r.outcome.as_ref().ok())
                .fold((0, 0), |(yes, no), t| {
                    if t.usage.and_then(|u| u.completion_tokens).is_some() {
                        (yes + 1, no)
                    } else {
                        (yes, no + 1)
                    }
                });
        let mut notes = prompts.notes;
        if without > 0 {
            notes.push(format!(
                "{without} completed requests had no usage chunk: their output tokens are \
                 counted as one per text chunk"
            ));
        }
        let (request_rate, burstiness, max_concurrency) = match config.load {
            Load::Closed { concurrency } => (Value::from("inf"), 1.0, Some(concurrency)),
            Load::Open {
                rate,
                burstiness,
                max_concurrency,
            } => (
                if rate.is_finite() {
                    Value::from(rate)
                } else {
                    Value::from("inf")
                },
                burstiness,
                max_concurrency,
            ),
        };
        Self {
            date: utc_date(std::time::SystemTime::now()),
            load: match config.load {
                Load::Closed { .. } => "closed",
                Load::Open { .. } => "open",
            }
            .to_string(),
            backend: config.endpoint.backend().to_string(),
            base_url: base_url.to_string(),
            endpoint: config.endpoint.path().to_string(),
            model_id: model.to_string(),
            adapters: config.mix.adapters(),
            mix: config.mix.label().to_string(),
            adapter_weights: match &config.mix {
                AdapterMix::Weighted(weights) => Some(weights.iter().cloned().collect()),
                _ => None,
            },
            num_prompts: config.num_prompts,
            max_duration: config.duration.map(|d| d.as_secs_f64()),
            warmup: config.warmup,
            request_rate,
            burstiness,
            max_concurrency,
            seed: config.seed,
            input_len: config.input_len,
            output_len: config.output_len,
            ignore_eos: config.ignore_eos,
            temperature: config.temperature,
            prompt_lengths: if prompts.exact {
                "exact"
            } else {
                "approximate"
            }
            .to_string(),
            output_token_counts: match (with_usage, without) {
                (_, 0) => "usage",
                (0, _) => "chunks",
                _ => "usage+chunks",
            }
            .to_string(),
            notes,
            overall: Metrics::of(records, duration),
            per_adapter,
        }
    }

    /// A scenario name from the settings, for Prometheus labels:
    /// `completions-golden-a+golden-b-in16-out8-c4` or `chat-base-in512-out128-r2.5-mc32`.
    pub fn default_scenario(&self) -> String {
        let endpoint = if self.backend == "openai-chat" {
            "chat"
        } else {
            "completions"
        };
        let target = if self.adapters.is_empty() {
            self.model_id.clone()
        } else {
            self.adapters.join("+")
        };
        let load = match (self.is_closed(), self.max_concurrency) {
            (true, Some(c)) => format!("c{c}"),
            (_, Some(c)) => format!("r{}-mc{c}", rate_text(&self.request_rate)),
            (_, None) => format!("r{}", rate_text(&self.request_rate)),
        };
        format!(
            "{endpoint}-{target}-in{}-out{}-{load}",
            self.input_len, self.output_len
        )
    }

    pub(super) fn is_closed(&self) -> bool {
        self.load == "closed"
    }
}

/// `2.5`, `40` (not JSON's `40.0`) or `inf`.
pub(super) fn rate_text(rate: &Value) -> String {
    match (rate, rate.as_f64()) {
        (_, Some(number)) => number.to_string(),
        (Value::String(s), _) => s.clone(),
        (other, _) => other.to_string(),
    }
}

/// `%Y%m%d-%H%M%S` in UTC (days to civil date by Howard Hinnant's algorithm; no date crate
/// is worth pulling in for one timestamp).
pub(crate) fn utc_date(time: std::time::SystemTime) -> String {
    let secs = time
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    use super::super::request::Timing;
    use super::super::sse::Usage;
    use super::super::Endpoint;
    use super::*;

    pub(crate) fn config(mix: AdapterMix, load: Load) -> BenchConfig {
        BenchConfig {
            url: "http://127.0.0.1:8080".into(),
            endpoint: Endpoint::Completions,
            model: None,
            mix,
            api_key: None,
            load,
            num_prompts: Some(3),
            duration: None,
            warmup: 0,
            input_len: 16,
            output_len: 2,
            ignore_eos: true,
            temperature: 0.0,
            seed: 0,
            timeout: Duration::from_secs(5),
        }
    }

    pub(crate) fn record(model: &str, start: f64, ok: bool) -> RequestRecord {
        RequestRecord {
            model: model.into(),
            start,
            end: start + 0.375,
            prompt_tokens: 16,
            outcome: if ok {
                // Binary fractions, so that values survive ms/s conversions exactly.
                Ok(Timing {
                    ttft: Some(0.125),
                    itl: vec![0.25],
                    latency: 0.375,
                    content_chunks: 2,
                    usage: Some(Usage {
                        prompt_tokens: Some(16),
                        completion_tokens: Some(2),
                    }),
                })
            } else {
                Err("HTTP 404: The model `c` does not exist.".into())
            },
        }
    }

    pub(crate) fn sample_report() -> BenchReport {
        let mix = AdapterMix::RoundRobin(vec!["a".into(), "b".into()]);
        let records = [
            record("a", 0.0, true),
            record("b", 0.1, true),
            record("a", 0.2, false),
        ];
        let info = PromptInfo {
            exact: true,
            notes: vec![],
        };
        let cfg = config(mix, Load::Closed { concurrency: 2 });
        BenchReport::new(&cfg, "http://127.0.0.1:8080", "base", info, &records, 1.0)
    }

    #[test]
    fn report_has_vllms_keys_settings_and_per_adapter_metrics() {
        let report = sample_report();
        let json = serde_json::to_value(&report).expect("serializes");
        assert_eq!(json["completed"], 2);
        assert_eq!(json["failed"], 1);
        assert_eq!(json["total_output_tokens"], 4);
        assert_eq!(json["request_rate"], "inf");
        assert_eq!(json["burstiness"], 1.0);
        assert_eq!(json["max_concurrency"], 2);
        assert_eq!(json["seed"], 0);
        assert_eq!(json["endpoint"], "/v1/completions");
        assert_eq!(json["prompt_lengths"], "exact");
        assert_eq!(json["output_token_counts"], "usage");
        assert_eq!(json["errors"]["HTTP 404: The model `c` does not exist."], 1);
        assert_eq!(json["per_adapter"]["a"]["completed"], 1);
        assert_eq!(json["per_adapter"]["a"]["failed"], 1);
        assert_eq!(json["per_adapter"]["b"]["completed"], 1);
        for key in [
            "mean_ttft_ms",
            "p99_e2el_ms",
            "std_itl_ms",
            "median_tpot_ms",
        ] {
            assert!(json[key].is_f64(), "{key}");
            assert!(json["per_adapter"]["b"][key].is_f64(), "{key}");
        }
        assert!((json["p99_ttft_ms"].as_f64().unwrap_or(0.0) - 125.0).abs() < 1e-9);
        assert_eq!(report.default_scenario(), "completions-a+b-in16-out2-c2");
    }

    #[test]
    fn open_loop_settings_are_recorded() {
        let load = Load::Open {
            rate: 2.5,
            burstiness: 1.0,
            max_concurrency: Some(8),
        };
        let report = BenchReport::new(
            &config(AdapterMix::Single, load),
            "http://h",
            "base",
            PromptInfo::default(),
            &[],
            1.0,
        );
        let json = serde_json::to_value(&report).expect("serializes");
        assert_eq!(json["request_rate"], 2.5);
        assert_eq!(json["max_concurrency"], 8);
        assert_eq!(json["load"], "open");
        assert_eq!(json["prompt_lengths"], "approximate");
        assert_eq!(
            report.default_scenario(),
            "completions-base-in16-out2-r2.5-mc8"
        );
        assert_eq!(json["completed"], 0);
        assert_eq!(json["mean_ttft_ms"], 0.0);
    }

    #[test]
    fn the_table_shows_overall_per_adapter_and_errors() {
        let table = sample_report().table();
        for expected in [
            "Successful requests:                     2",
            "Failed requests:                         1",
            "Load:                                    closed loop, concurrency 2",
            "Mean TTFT (ms):                          125.00",
            "adapter",
            "\na       ",
            "\nb       ",
            "1 × HTTP 404: The model `c` does not exist.",
        ] {
            assert!(table.contains(expected), "missing {expected:?} in\n{table}");
        }
    }

    #[test]
    fn dates_are_utc_civil_time() {
        let at = |secs| std::time::UNIX_EPOCH + Duration::from_secs(secs);
        assert_eq!(utc_date(at(0)), "19700101-000000");
        // 2024-02-29T23:59:59Z (a leap day).
        assert_eq!(utc_date(at(1_709_251_199)), "20240229-235959");
        assert_eq!(utc_date(at(1_709_251_200)), "20240301-000000");
    }
}

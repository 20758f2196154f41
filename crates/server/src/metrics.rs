//! Prometheus metrics, all prefixed `switchboard_`, with an `adapter` label wherever a request is
//! involved (`base` for the base model).
//!
//! The recorder is process-global (the `metrics` facade allows one), so every server in a process
//! shares it; [`install_metrics`] is idempotent.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::state::AppState;

/// The `adapter` label of requests on the base model.
pub const BASE_LABEL: &str = "base";

const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];
const TOKEN_LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.5,
];

const RETRIEVAL_BUCKETS: &[f64] = &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05];
const CONFIDENCE_BUCKETS: &[f64] = &[0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the global Prometheus recorder (once per process) and returns its handle; `None` if
/// another recorder was installed first.
pub fn install_metrics() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("switchboard_inter_token_latency_seconds".into()),
                    TOKEN_LATENCY_BUCKETS,
                )
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("switchboard_rag_retrieval_seconds".into()),
                        RETRIEVAL_BUCKETS,
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("switchboard_router_confidence".into()),
                        CONFIDENCE_BUCKETS,
                    )
                })
                .and_then(|b| b.set_buckets(LATENCY_BUCKETS));
            let recorder = match builder {
                Ok(builder) => builder.build_recorder(),
                Err(e) => {
                    tracing::error!(error = %e, "cannot configure the Prometheus recorder");
                    return None;
                }
            };
            let handle = recorder.handle();
            match metrics::set_global_recorder(recorder) {
                Ok(()) => {
                    describe();
                    Some(handle)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "a metrics recorder is already installed");
                    None
                }
            }
        })
        .clone()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        "switchboard_requests_total",
        "HTTP requests by route, status and adapter"
    );
    describe_histogram!(
        "switchboard_time_to_first_token_seconds",
        Unit::Seconds,
        "Time from request to its first generated token"
    );
    describe_histogram!(
        "switchboard_inter_token_latency_seconds",
        Unit::Seconds,
        "Time between consecutive generated tokens of a choice"
    );
    describe_histogram!(
        "switchboard_e2e_request_latency_seconds",
        Unit::Seconds,
        "Time from request to its last token"
    );
    describe_counter!(
        "switchboard_prompt_tokens_total",
        "Prompt tokens of finished requests"
    );
    describe_counter!("switchboard_generation_tokens_total", "Tokens generated");
    describe_gauge!("switchboard_queue_depth", "Requests waiting for admission");
    describe_gauge!("switchboard_running_requests", "Requests being generated");
    describe_gauge!(
        "switchboard_running_sequences",
        "Sequences (choices) being generated"
    );
    describe_gauge!(
        "switchboard_kv_cache_usage_ratio",
        "KV-cache budget reserved, 0 to 1"
    );
    describe_gauge!(
        "switchboard_kv_cache_allocated_bytes",
        "Bytes held by KV caches"
    );
    describe_counter!(
        "switchboard_adapter_loads_total",
        "Adapter loads (including reloads after eviction)"
    );
    describe_counter!(
        "switchboard_adapter_unloads_total",
        "Adapter unloads over HTTP"
    );
    describe_counter!(
        "switchboard_adapter_evictions_total",
        "Adapters evicted from memory (LRU)"
    );
    describe_histogram!(
        "switchboard_adapter_load_duration_seconds",
        Unit::Seconds,
        "Time to load an adapter over HTTP"
    );
    describe_gauge!(
        "switchboard_adapters_loaded",
        "Adapters whose weights are in memory"
    );
    describe_counter!(
        "switchboard_requests_cancelled_total",
        "Requests dropped by their client"
    );
}

/// The `adapter` label value for a request.
pub fn adapter_label(adapter: Option<&str>) -> String {
    adapter.unwrap_or(BASE_LABEL).to_string()
}

pub(crate) fn record_request(route: &str, status: u16, adapter: &str) {
    counter!(
        "switchboard_requests_total",
        "route" => route.to_string(),
        "status" => status.to_string(),
        "adapter" => adapter.to_string()
    )
    .increment(1);
}

/// Per-request timing, fed as tokens stream out.
pub(crate) struct RequestTimer {
    adapter: String,
    started: std::time::Instant,
    first_token: bool,
    last_token: Vec<Option<std::time::Instant>>,
}

impl RequestTimer {
    pub fn new(adapter: String, started: std::time::Instant) -> Self {
        Self {
            adapter,
            started,
            first_token: false,
            last_token: Vec::new(),
        }
    }

    /// `count` new tokens of choice `choice` arrived now.
    pub fn tokens(&mut self, choice: usize, count: usize) {
        if count == 0 {
            return;
        }
        let now = std::time::Instant::now();
        if !self.first_token {
            self.first_token = true;
            histogram!("switchboard_time_to_first_token_seconds", "adapter" => self.adapter.clone())
                .record(now.duration_since(self.started).as_secs_f64());
        }
        if self.last_token.len() <= choice {
            self.last_token.resize(choice + 1, None);
        }
        if let Some(previous) = self.last_token[choice] {
            let gap = now.duration_since(previous).as_secs_f64() / count as f64;
            let itl = histogram!("switchboard_inter_token_latency_seconds", "adapter" => self.adapter.clone());
            for _ in 0..count {
                itl.record(gap);
            }
        }
        self.last_token[choice] = Some(now);
        counter!("switchboard_generation_tokens_total", "adapter" => self.adapter.clone())
            .increment(count as u64);
    }

    /// The request finished with `prompt_tokens` prompt tokens.
    pub fn finished(&self, prompt_tokens: usize) {
        histogram!("switchboard_e2e_request_latency_seconds", "adapter" => self.adapter.clone())
            .record(self.started.elapsed().as_secs_f64());
        counter!("switchboard_prompt_tokens_total", "adapter" => self.adapter.clone())
            .increment(prompt_tokens as u64);
    }
}

pub(crate) fn record_adapter_load(adapter: &str, took: Duration) {
    histogram!("switchboard_adapter_load_duration_seconds", "adapter" => adapter.to_string())
        .record(took.as_secs_f64());
}

pub(crate) fn record_adapter_unload(adapter: &str) {
    counter!("switchboard_adapter_unloads_total", "adapter" => adapter.to_string()).increment(1);
}

/// Refreshes the gauges and counters that mirror engine state, then renders the exposition.
pub(crate) fn render(state: &AppState, handle: &PrometheusHandle) -> String {
    let engine = state.engine();
    let stats = engine.stats();
    gauge!("switchboard_queue_depth").set(stats.waiting_requests as f64);
    gauge!("switchboard_running_requests").set(stats.running_requests as f64);
    gauge!("switchboard_running_sequences").set(stats.running_sequences as f64);
    let usage = if stats.kv_budget_tokens == 0 {
        0.0
    } else {
        stats.kv_reserved_tokens as f64 / stats.kv_budget_tokens as f64
    };
    gauge!("switchboard_kv_cache_usage_ratio").set(usage);
    gauge!("switchboard_kv_cache_allocated_bytes").set(stats.kv_allocated_bytes as f64);
    counter!("switchboard_requests_cancelled_total").absolute(stats.cancelled_requests);
    let registry = engine.registry();
    gauge!("switchboard_adapters_loaded").set(registry.loaded_count() as f64);
    for info in registry.list() {
        counter!("switchboard_adapter_loads_total", "adapter" => info.name.clone())
            .absolute(info.stats.loads);
        counter!("switchboard_adapter_evictions_total", "adapter" => info.name.clone())
            .absolute(info.stats.evictions);
    }
    handle.run_upkeep();
    handle.render()
}

//! A benchmark result as Prometheus gauges, for a Pushgateway or a node-exporter textfile:
//! base units (seconds, not the report's milliseconds), no `_total` (these are gauges of one
//! run, not counters), latency quantiles as a `quantile` label like a summary's, and
//! `adapter="all"` for the whole run beside each adapter's own series. A group in which no
//! request completed has no latency series at all (rather than zeros).

use crate::prom::Family;

use super::report::BenchReport;
use super::stats::Summary;
use super::summary::Metrics;

/// The `adapter` label of the run-wide series.
pub const ALL_ADAPTERS: &str = "all";

/// The gauges of `report` under `scenario`; `now` (Unix seconds) is the success timestamp,
/// set only when some request completed, so a run that got nothing through leaves the last
/// good one in place for staleness alerts.
pub fn families(report: &BenchReport, scenario: &str, now: f64) -> Vec<Family> {
    let gauge = |name: &str, help: &str| Family::gauge(&format!("switchboard_bench_{name}"), help);
    let mut requests_per_s = gauge(
        "request_throughput_requests_per_second",
        "Completed requests per second over the measured phase.",
    );
    let mut tokens_per_s = gauge(
        "output_throughput_tokens_per_second",
        "Generated tokens per second over the measured phase.",
    );
    let mut ttft = gauge(
        "time_to_first_token_seconds",
        "Time to first token, by quantile.",
    );
    let mut tpot = gauge(
        "time_per_output_token_seconds",
        "Time per output token after the first, by quantile.",
    );
    let mut e2e = gauge(
        "e2e_latency_seconds",
        "End-to-end request latency, by quantile.",
    );
    let mut requests = gauge("requests", "Measured requests by outcome.");
    let mut error_ratio = gauge(
        "error_ratio",
        "Failed requests over all measured requests (0-1).",
    );
    let mut last_success = gauge(
        "last_success_timestamp_seconds",
        "Unix time of the last benchmark run in which a request completed.",
    );
    let groups = std::iter::once((ALL_ADAPTERS, &report.overall))
        .chain(report.per_adapter.iter().map(|(k, v)| (k.as_str(), v)));
    for (adapter, m) in groups {
        let labels = [("scenario", scenario), ("adapter", adapter)];
        requests_per_s.sample(&labels, m.request_throughput);
        tokens_per_s.sample(&labels, m.output_throughput);
        // Latencies of a group with no completed request do not exist; zeros would read as
        // "instant" on a dashboard.
        if m.completed > 0 {
            quantiles(&mut ttft, &labels, m.latency.ttft);
            quantiles(&mut tpot, &labels, m.latency.tpot);
            quantiles(&mut e2e, &labels, m.latency.e2el);
        }
        for (outcome, count) in [("completed", m.completed), ("failed", m.failed)] {
            let mut with = labels.to_vec();
            with.push(("outcome", outcome));
            requests.sample(&with, count as f64);
        }
        error_ratio.sample(&labels, ratio(m));
    }
    if report.overall.completed > 0 {
        last_success.sample(&[("scenario", scenario)], now);
    }
    vec![
        requests_per_s,
        tokens_per_s,
        ttft,
        tpot,
        e2e,
        requests,
        error_ratio,
        last_success,
    ]
}

/// The report's median, p90 and p99 (milliseconds) as seconds under `quantile`.
fn quantiles(family: &mut Family, labels: &[(&str, &str)], ms: Summary) {
    for (quantile, value) in [("0.5", ms.median), ("0.9", ms.p90), ("0.99", ms.p99)] {
        let mut with = labels.to_vec();
        with.push(("quantile", quantile));
        family.sample(&with, value / 1000.0);
    }
}

fn ratio(m: &Metrics) -> f64 {
    let total = m.completed + m.failed;
    if total == 0 {
        0.0
    } else {
        m.failed as f64 / total as f64
    }
}

#[cfg(test)]
mod tests {
    use super::super::report::tests::{config, record, sample_report};
    use super::super::report::PromptInfo;
    use super::super::{AdapterMix, Load};
    use super::*;
    use crate::prom::render;

    #[test]
    fn a_group_with_nothing_completed_has_no_latency_series() {
        let records = [record("a", 0.0, true), record("z", 0.1, false)];
        let cfg = config(AdapterMix::Single, Load::Closed { concurrency: 1 });
        let report = BenchReport::new(&cfg, "http://h", "a", PromptInfo::default(), &records, 1.0);
        let text = render(&families(&report, "s", 1.0));
        assert!(text.contains("switchboard_bench_error_ratio{scenario=\"s\",adapter=\"z\"} 1\n"));
        assert!(text.contains(
            "switchboard_bench_requests{scenario=\"s\",adapter=\"z\",outcome=\"failed\"} 1\n"
        ));
        assert!(!text.contains("adapter=\"z\",quantile"), "{text}");
        assert!(text.contains("adapter=\"a\",quantile=\"0.5\"}"));
        // Nothing completed at all: no success timestamp either.
        let failed = BenchReport::new(
            &cfg,
            "http://h",
            "a",
            PromptInfo::default(),
            &records[1..],
            1.0,
        );
        assert!(!render(&families(&failed, "s", 1.0)).contains("last_success"));
    }

    #[test]
    fn gauges_carry_scenario_adapter_and_quantile_in_seconds() {
        let text = render(&families(&sample_report(), "s1", 1_700_000_000.0));
        for expected in [
            "# TYPE switchboard_bench_request_throughput_requests_per_second gauge\n",
            "switchboard_bench_request_throughput_requests_per_second{scenario=\"s1\",adapter=\"all\"} 2\n",
            "switchboard_bench_output_throughput_tokens_per_second{scenario=\"s1\",adapter=\"a\"} 2\n",
            "switchboard_bench_time_to_first_token_seconds{scenario=\"s1\",adapter=\"all\",quantile=\"0.5\"} 0.125\n",
            "switchboard_bench_time_to_first_token_seconds{scenario=\"s1\",adapter=\"b\",quantile=\"0.99\"} 0.125\n",
            "switchboard_bench_time_per_output_token_seconds{scenario=\"s1\",adapter=\"all\",quantile=\"0.9\"} 0.25\n",
            "switchboard_bench_e2e_latency_seconds{scenario=\"s1\",adapter=\"all\",quantile=\"0.5\"} 0.375\n",
            "switchboard_bench_requests{scenario=\"s1\",adapter=\"all\",outcome=\"completed\"} 2\n",
            "switchboard_bench_requests{scenario=\"s1\",adapter=\"a\",outcome=\"failed\"} 1\n",
            "switchboard_bench_error_ratio{scenario=\"s1\",adapter=\"a\"} 0.5\n",
            "switchboard_bench_error_ratio{scenario=\"s1\",adapter=\"b\"} 0\n",
            "switchboard_bench_last_success_timestamp_seconds{scenario=\"s1\"} 1700000000\n",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
        assert!(!text.contains("_total"));
    }
}

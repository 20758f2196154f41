//! The printed summary of a run: vLLM's `vllm bench serve` layout for the overall numbers, so
//! the two tools' outputs can be read side by side, then one row per adapter, the errors by
//! message, and the caveats.

use std::fmt::Write as _;

use super::report::{rate_text, BenchReport};

impl BenchReport {
    /// The human-readable summary: vLLM's layout, then one row per adapter, errors and notes.
    pub fn table(&self) -> String {
        let m = &self.overall;
        let mut out = String::new();
        let line = |out: &mut String, label: &str, value: String| {
            let _ = writeln!(out, "{label:<40} {value}");
        };
        let _ = writeln!(out, "{:=^50}", " Serving Benchmark Result ");
        line(
            &mut out,
            "Endpoint:",
            format!("{}{}", self.base_url, self.endpoint),
        );
        line(&mut out, "Load:", self.load_text());
        line(&mut out, "Successful requests:", m.completed.to_string());
        line(&mut out, "Failed requests:", m.failed.to_string());
        line(
            &mut out,
            "Benchmark duration (s):",
            format!("{:.2}", m.duration),
        );
        line(
            &mut out,
            "Total input tokens:",
            m.total_input_tokens.to_string(),
        );
        line(
            &mut out,
            "Total generated tokens:",
            m.total_output_tokens.to_string(),
        );
        line(
            &mut out,
            "Request throughput (req/s):",
            format!("{:.2}", m.request_throughput),
        );
        line(
            &mut out,
            "Output token throughput (tok/s):",
            format!("{:.2}", m.output_throughput),
        );
        line(
            &mut out,
            "Peak output token throughput (tok/s):",
            format!("{:.2}", m.max_output_tokens_per_s),
        );
        line(
            &mut out,
            "Peak concurrent requests:",
            m.max_concurrent_requests.to_string(),
        );
        line(
            &mut out,
            "Total token throughput (tok/s):",
            format!("{:.2}", m.total_token_throughput),
        );
        let lat = &m.latency;
        for (title, short, s) in [
            ("Time to First Token", "TTFT", lat.ttft),
            ("Time per Output Token (excl. 1st token)", "TPOT", lat.tpot),
            ("Inter-token Latency", "ITL", lat.itl),
            ("End-to-end Latency", "E2EL", lat.e2el),
        ] {
            let _ = writeln!(out, "{:-^50}", title);
            line(
                &mut out,
                &format!("Mean {short} (ms):"),
                format!("{:.2}", s.mean),
            );
            line(
                &mut out,
                &format!("Median {short} (ms):"),
                format!("{:.2}", s.median),
            );
            line(
                &mut out,
                &format!("P90 {short} (ms):"),
                format!("{:.2}", s.p90),
            );
            line(
                &mut out,
                &format!("P99 {short} (ms):"),
                format!("{:.2}", s.p99),
            );
        }
        let _ = writeln!(out, "{}", "=".repeat(50));
        out.push_str(&self.adapter_table());
        if !m.errors.is_empty() {
            let _ = writeln!(out, "Errors:");
            for (message, count) in &m.errors {
                let _ = writeln!(out, "  {count:>6} × {message}");
            }
        }
        if !self.notes.is_empty() {
            let _ = writeln!(out, "Notes:");
            for note in &self.notes {
                let _ = writeln!(out, "  - {note}");
            }
        }
        out
    }

    fn adapter_table(&self) -> String {
        let width = self
            .per_adapter
            .keys()
            .map(|k| k.chars().count())
            .max()
            .unwrap_or(0)
            .max("adapter".len());
        let mut out = format!(
            "{:<width$} {:>5} {:>5} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}\n",
            "adapter",
            "ok",
            "fail",
            "req/s",
            "out tok/s",
            "TTFT p50",
            "TTFT p99",
            "TPOT p50",
            "ITL p50",
            "E2EL p50",
            "E2EL p99",
        );
        for (name, m) in &self.per_adapter {
            let l = &m.latency;
            // No completed request, no latency: a dash, not a misleading zero.
            let ms = |value: f64| {
                if m.completed == 0 {
                    format!("{:>9}", "-")
                } else {
                    format!("{value:>9.2}")
                }
            };
            let _ = writeln!(
                out,
                "{name:<width$} {:>5} {:>5} {:>7.2} {:>9.2} {} {} {} {} {} {}",
                m.completed,
                m.failed,
                m.request_throughput,
                m.output_throughput,
                ms(l.ttft.median),
                ms(l.ttft.p99),
                ms(l.tpot.median),
                ms(l.itl.median),
                ms(l.e2el.median),
                ms(l.e2el.p99),
            );
        }
        let _ = writeln!(out, "(latencies in ms)");
        out
    }

    fn load_text(&self) -> String {
        let cap = self
            .max_concurrency
            .map_or(String::new(), |c| format!(", at most {c} in flight"));
        if self.is_closed() {
            format!(
                "closed loop, concurrency {}",
                self.max_concurrency.unwrap_or(1)
            )
        } else {
            format!(
                "open loop, {} req/s (burstiness {}, seed {}){cap}",
                rate_text(&self.request_rate),
                self.burstiness,
                self.seed
            )
        }
    }
}

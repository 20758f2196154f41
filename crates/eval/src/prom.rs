//! Prometheus results of batch jobs (evaluations, load benchmarks): gauges rendered in the text
//! exposition format, written as a node-exporter textfile (atomically) or pushed to a
//! Pushgateway with `PUT`, which replaces the whole group so that series of a removed
//! adapter or domain disappear on the next push.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use crate::error::{EvalError, Result};
use crate::results::write_atomic;

/// One gauge metric and its samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    name: String,
    help: String,
    samples: Vec<(Vec<(String, String)>, f64)>,
}

impl Family {
    /// A gauge named `name` (a valid Prometheus name, `switchboard_` prefixed by convention).
    pub fn gauge(name: &str, help: &str) -> Self {
        Self {
            name: name.to_string(),
            help: help.to_string(),
            samples: Vec::new(),
        }
    }

    /// Adds a sample with these labels.
    pub fn sample(&mut self, labels: &[(&str, &str)], value: f64) -> &mut Self {
        let labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.samples.push((labels, value));
        self
    }

    /// The metric name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether it has no samples (such families are left out of the text).
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }
}

/// The text exposition format (version 0.0.4) of `families`; every line ends in `\n`, as the
/// Pushgateway requires.
pub fn render(families: &[Family]) -> String {
    let mut out = String::new();
    for family in families.iter().filter(|f| !f.is_empty()) {
        let help = family.help.replace('\\', "\\\\").replace('\n', "\\n");
        // Writing to a String cannot fail.
        let _ = writeln!(out, "# HELP {} {}", family.name, help);
        let _ = writeln!(out, "# TYPE {} gauge", family.name);
        for (labels, value) in &family.samples {
            out.push_str(&family.name);
            if !labels.is_empty() {
                out.push('{');
                for (i, (key, val)) in labels.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{key}=\"{}\"", escape_label(val));
                }
                out.push('}');
            }
            let _ = writeln!(out, " {}", format_value(*value));
        }
    }
    out
}

fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn format_value(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_string()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        format!("{value}")
    }
}

/// Writes `families` as a node-exporter textfile (`*.prom`), atomically (temporary file and
/// rename in the same directory, as node-exporter's documentation asks).
pub fn write_textfile(path: &Path, families: &[Family]) -> Result<()> {
    write_atomic(path, render(families).as_bytes())
}

/// Pushes `families` to the Pushgateway at `gateway` (e.g. `http://127.0.0.1:9091`) as the
/// group `job` + `grouping` (label/value pairs), replacing the group whole (`PUT`).
pub fn push(
    gateway: &str,
    job: &str,
    grouping: &[(&str, &str)],
    families: &[Family],
) -> Result<()> {
    let url = group_url(gateway, job, grouping);
    let agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(30)))
        .http_status_as_error(false)
        .build()
        .new_agent();
    let response = agent
        .put(&url)
        .header("Content-Type", "text/plain; version=0.0.4")
        .send(render(families).as_bytes())
        .map_err(|e| EvalError::Push {
            url: url.clone(),
            reason: e.to_string(),
        })?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let body = response.into_body().read_to_string().unwrap_or_default();
    Err(EvalError::Push {
        url,
        reason: format!("HTTP {status}: {}", body.trim()),
    })
}

/// `{gateway}/metrics/job/{job}/{label}/{value}...`, with values that are empty or contain `/`
/// in the Pushgateway's `@base64` form.
fn group_url(gateway: &str, job: &str, grouping: &[(&str, &str)]) -> String {
    let mut url = format!("{}/metrics/job", gateway.trim_end_matches('/'));
    push_segment(&mut url, "job", job, true);
    for (label, value) in grouping {
        push_segment(&mut url, label, value, false);
    }
    url
}

fn push_segment(url: &mut String, label: &str, value: &str, is_job: bool) {
    let plain = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if plain {
        if !is_job {
            let _ = write!(url, "/{label}");
        }
        let _ = write!(url, "/{value}");
    } else {
        let _ = write!(url, "/{label}@base64/{}", base64_url(value.as_bytes()));
        if is_job {
            // `/metrics/job@base64/...` is the form for the job label itself.
            *url = url.replacen("/metrics/job/job@base64/", "/metrics/job@base64/", 1);
        }
    }
}

/// URL-safe base64 (RFC 4648 §5) with padding, as the Pushgateway accepts; `=` for empty.
fn base64_url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    if bytes.is_empty() {
        return "=".to_string();
    }
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_exposition_text_with_escaped_labels() {
        let mut accuracy = Family::gauge("switchboard_eval_accuracy_ratio", "Accuracy (0-1).");
        accuracy
            .sample(&[("domain", "biology"), ("variant", "base")], 0.62)
            .sample(&[("domain", "say \"hi\"\\"), ("variant", "a")], 1.0);
        let empty = Family::gauge("switchboard_unused", "No samples.");
        let mut stamp = Family::gauge("switchboard_eval_last_success_timestamp_seconds", "When.");
        stamp.sample(&[], 1_756_600_000.5);
        let text = render(&[accuracy, empty, stamp]);
        assert_eq!(
            text,
            "# HELP switchboard_eval_accuracy_ratio Accuracy (0-1).\n\
             # TYPE switchboard_eval_accuracy_ratio gauge\n\
             switchboard_eval_accuracy_ratio{domain=\"biology\",variant=\"base\"} 0.62\n\
             switchboard_eval_accuracy_ratio{domain=\"say \\\"hi\\\"\\\\\",variant=\"a\"} 1\n\
             # HELP switchboard_eval_last_success_timestamp_seconds When.\n\
             # TYPE switchboard_eval_last_success_timestamp_seconds gauge\n\
             switchboard_eval_last_success_timestamp_seconds 1756600000.5\n"
        );
    }

    #[test]
    fn group_urls_encode_awkward_values() {
        assert_eq!(
            group_url("http://gw:9091/", "switchboard_eval", &[("suite", "v1")]),
            "http://gw:9091/metrics/job/switchboard_eval/suite/v1"
        );
        assert_eq!(
            group_url("http://gw", "j", &[("suite", "evals/all"), ("x", "")]),
            "http://gw/metrics/job/j/suite@base64/ZXZhbHMvYWxs/x@base64/="
        );
        assert_eq!(base64_url(b"ab"), "YWI=");
        assert_eq!(base64_url(b"a"), "YQ==");
    }

    #[test]
    fn textfile_is_written_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("switchboard_eval.prom");
        let mut family = Family::gauge("switchboard_eval_items", "Items.");
        family.sample(&[("suite", "s"), ("domain", "d")], 60.0);
        write_textfile(&path, &[family]).expect("write");
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.ends_with("switchboard_eval_items{suite=\"s\",domain=\"d\"} 60\n"));
    }

    #[test]
    fn push_to_nothing_names_the_url() {
        // Port 9 (discard) on loopback has no listener here: the error must say where it tried.
        let err = push("http://127.0.0.1:9", "job", &[], &[]).expect_err("nothing listens");
        assert!(
            err.to_string()
                .contains("http://127.0.0.1:9/metrics/job/job"),
            "{err}"
        );
    }
}

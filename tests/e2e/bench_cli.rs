//! `switchboard bench` against the real server: its counts agree with the server's own
//! `/metrics` per adapter, open-loop chat with warmup and a Prometheus textfile, failures
//! counted by message without stopping the run, and bad input refused with a non-zero exit.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use super::harness::Server;

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("bench")
        .args(args)
        .env("RUST_LOG", "warn")
        .env_remove("OPENAI_API_KEY")
        .output()
        .expect("run switchboard bench")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("report written"))
        .expect("report is JSON")
}

/// A counter of the server's `/metrics` (0 before its first increment). Plain HTTP/1.0 over
/// a socket: the series are read without another client stack in the way.
fn counter(server: &Server, series: &str) -> f64 {
    let address = server
        .base
        .strip_prefix("http://")
        .expect("server base is http://host:port");
    let mut stream = TcpStream::connect(address).expect("connect to /metrics");
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read /metrics");
    response
        .lines()
        .find(|line| line.starts_with(series))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0.0)
}

fn requests_series(route: &str, adapter: &str) -> String {
    format!("switchboard_requests_total{{route=\"{route}\",status=\"200\",adapter=\"{adapter}\"}}")
}

fn tokens_series(adapter: &str) -> String {
    format!("switchboard_generation_tokens_total{{adapter=\"{adapter}\"}}")
}

fn f(value: &Value) -> f64 {
    value.as_f64().unwrap_or(f64::NAN)
}

#[test]
fn closed_loop_counts_agree_with_the_servers_metrics() {
    let server = Server::start(&[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("bench.json");
    let adapters = ["golden-a", "golden-b"];
    let before: Vec<(f64, f64)> = adapters
        .iter()
        .map(|a| {
            (
                counter(&server, &requests_series("/v1/completions", a)),
                counter(&server, &tokens_series(a)),
            )
        })
        .collect();

    let run = bench(&[
        "--url",
        &server.base,
        "--num-prompts",
        "12",
        "--concurrency",
        "4",
        "--input-len",
        "16",
        "--output-len",
        "8",
        "--ignore-eos",
        "--adapters",
        "golden-a,golden-b",
        "--mix",
        "round-robin",
        "--out",
        out.to_str().expect("utf-8 path"),
    ]);
    let stdout = text(&run.stdout);
    assert!(run.status.success(), "{stdout}\n{}", text(&run.stderr));
    assert!(stdout.contains("Serving Benchmark Result"), "{stdout}");
    assert!(stdout.contains("\ngolden-a "), "{stdout}");

    let report = read_json(&out);
    assert_eq!(report["completed"], 12, "{report:#}");
    assert_eq!(report["failed"], 0);
    assert_eq!(report["errors"], serde_json::json!({}));
    assert_eq!(report["total_output_tokens"], 12 * 8);
    assert_eq!(report["request_rate"], "inf");
    assert_eq!(report["max_concurrency"], 4);
    assert_eq!(report["output_token_counts"], "usage");
    let peak = report["max_concurrent_requests"].as_u64().unwrap_or(0);
    assert!((1..=4).contains(&peak), "peak concurrency {peak}");
    if report["prompt_lengths"] == "exact" {
        // Calibrated with /tokenize: the server counted exactly what was asked for.
        assert_eq!(report["total_input_tokens"], 12 * 16);
    }
    for scope in [
        &report,
        &report["per_adapter"]["golden-a"],
        &report["per_adapter"]["golden-b"],
    ] {
        assert!(f(&scope["mean_ttft_ms"]) > 0.0, "{scope:#}");
        assert!(
            f(&scope["mean_ttft_ms"]) <= f(&scope["mean_e2el_ms"]),
            "{scope:#}"
        );
        assert!(
            f(&scope["p99_ttft_ms"]) <= f(&scope["p99_e2el_ms"]),
            "{scope:#}"
        );
        assert!(f(&scope["median_tpot_ms"]) >= 0.0);
    }

    for (adapter, (requests_before, tokens_before)) in adapters.iter().zip(before) {
        let mine = &report["per_adapter"][adapter];
        assert_eq!(mine["completed"], 6, "{adapter}: {mine:#}");
        assert_eq!(mine["failed"], 0);
        assert_eq!(mine["total_output_tokens"], 6 * 8);
        let requests = counter(&server, &requests_series("/v1/completions", adapter));
        let tokens = counter(&server, &tokens_series(adapter));
        assert_eq!(
            requests - requests_before,
            6.0,
            "{adapter}: server-side requests"
        );
        assert_eq!(
            tokens - tokens_before,
            6.0 * 8.0,
            "{adapter}: server-side tokens"
        );
    }
}

#[test]
fn open_loop_chat_counts_failures_and_writes_gauges() {
    let server = Server::start(&[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("open.json");
    let prom = dir.path().join("bench.prom");
    let chat = "/v1/chat/completions";
    let before: f64 = ["golden-a", "golden-b"]
        .iter()
        .map(|a| counter(&server, &requests_series(chat, a)))
        .sum();

    // `nope` is not served: its requests fail with the server's 404 and the run goes on.
    let run = bench(&[
        "--url",
        &server.url("/v1"),
        "--endpoint",
        "chat",
        "--request-rate",
        "50",
        "--max-concurrency",
        "2",
        "--seed",
        "3",
        "--num-prompts",
        "9",
        "--warmup",
        "3",
        "--input-len",
        "8",
        "--output-len",
        "4",
        "--ignore-eos",
        "--adapters",
        "golden-a,golden-b,nope",
        "--mix",
        "round-robin",
        "--scenario",
        "e2e",
        "--textfile",
        prom.to_str().expect("utf-8 path"),
        "--out",
        out.to_str().expect("utf-8 path"),
    ]);
    let stdout = text(&run.stdout);
    assert!(run.status.success(), "{stdout}\n{}", text(&run.stderr));
    let report = read_json(&out);
    assert_eq!(report["load"], "open");
    assert_eq!(report["request_rate"], 50.0);
    assert_eq!(report["burstiness"], 1.0);
    assert_eq!(report["max_concurrency"], 2);
    assert_eq!(report["seed"], 3);
    assert_eq!(report["endpoint"], chat);
    assert_eq!(
        (&report["completed"], &report["failed"]),
        (&6.into(), &3.into())
    );
    assert_eq!(report["total_output_tokens"], 6 * 4);
    assert!(report["max_concurrent_requests"].as_u64().unwrap_or(9) <= 2);
    let errors = report["errors"].as_object().expect("errors map");
    assert_eq!(errors.len(), 1, "{errors:?}");
    let (message, count) = errors.iter().next().expect("one error");
    assert!(message.starts_with("HTTP 404: "), "{message}");
    assert!(message.contains("nope"), "{message}");
    assert_eq!(count, 3);
    assert_eq!(report["per_adapter"]["nope"]["failed"], 3);
    assert!(stdout.contains("3 × HTTP 404"), "{stdout}");
    for adapter in ["golden-a", "golden-b"] {
        assert_eq!(report["per_adapter"][adapter]["completed"], 3, "{adapter}");
    }
    // Warmup requests reached the server (one per adapter) but are not in the report.
    let after: f64 = ["golden-a", "golden-b"]
        .iter()
        .map(|a| counter(&server, &requests_series(chat, a)))
        .sum();
    assert_eq!(after - before, 6.0 + 2.0);

    let gauges = std::fs::read_to_string(&prom).expect("textfile written");
    for expected in [
        "switchboard_bench_requests{scenario=\"e2e\",adapter=\"all\",outcome=\"completed\"} 6\n",
        "switchboard_bench_requests{scenario=\"e2e\",adapter=\"nope\",outcome=\"failed\"} 3\n",
        "switchboard_bench_error_ratio{scenario=\"e2e\",adapter=\"all\"} 0.3333333333333333\n",
        "switchboard_bench_time_to_first_token_seconds{scenario=\"e2e\",adapter=\"golden-a\",quantile=\"0.99\"}",
        "switchboard_bench_last_success_timestamp_seconds{scenario=\"e2e\"}",
    ] {
        assert!(gauges.contains(expected), "missing {expected:?} in\n{gauges}");
    }

    // A run in which nothing completes still prints its table, then fails.
    let failing = bench(&[
        "--url",
        &server.base,
        "--num-prompts",
        "2",
        "--input-len",
        "4",
        "--output-len",
        "2",
        "--adapters",
        "nope",
    ]);
    assert!(!failing.status.success());
    assert!(text(&failing.stdout).contains("Failed requests:                         2"));
    assert!(
        text(&failing.stderr).contains("no request completed"),
        "{}",
        text(&failing.stderr)
    );
}

#[test]
fn bad_input_is_refused_with_a_clear_error() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let unreachable = bench(&["--url", &url, "--num-prompts", "1"]);
    assert!(!unreachable.status.success());
    let stderr = text(&unreachable.stderr);
    assert!(
        stderr.contains(&format!("cannot reach the server at {url}")),
        "{stderr}"
    );
    assert!(stderr.contains("refused"), "{stderr}");

    for (args, mention) in [
        (&["--request-rate", "0"][..], "--request-rate"),
        (&["--request-rate=-2"][..], "--request-rate"),
        (&["--concurrency", "0"][..], "--concurrency"),
        (
            &["--concurrency", "2", "--request-rate", "1"][..],
            "--concurrency",
        ),
        (&["--adapter-weights", "a=0"][..], "--adapter-weights"),
        (&["--adapter-weights", "a"][..], "--adapter-weights"),
    ] {
        let mut all = vec!["--url", url.as_str()];
        all.extend_from_slice(args);
        let refused = bench(&all);
        assert!(!refused.status.success(), "{args:?} accepted");
        let stderr = text(&refused.stderr);
        assert!(stderr.contains(mention), "{args:?}: {stderr}");
        // Refused before anything is sent: no connection error in the message.
        assert!(!stderr.contains("cannot reach"), "{args:?}: {stderr}");
    }
}

//! `eval run --pushgateway` and `bench --pushgateway` against the real server and a real
//! Prometheus Pushgateway: the series the alert rules in deploy/prometheus read arrive with the
//! values of the results files. The gateway comes from `SWITCHBOARD_PUSHGATEWAY` or
//! `/usr/bin/prometheus-pushgateway`; without one the test says why and passes, unless
//! `SWITCHBOARD_REQUIRE_EXTERNAL=1` (CI), where it fails.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::harness::{Files, Server};

struct Gateway {
    child: Child,
    url: String,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

fn gateway_binary() -> Option<PathBuf> {
    let path = std::env::var_os("SWITCHBOARD_PUSHGATEWAY")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/prometheus-pushgateway"));
    if path.is_file() {
        return Some(path);
    }
    let required = std::env::var("SWITCHBOARD_REQUIRE_EXTERNAL").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "no Pushgateway at {} (set SWITCHBOARD_PUSHGATEWAY)",
        path.display()
    );
    eprintln!(
        "skipped: no Pushgateway at {} (set SWITCHBOARD_PUSHGATEWAY)",
        path.display()
    );
    None
}

fn start_gateway(binary: &PathBuf) -> Gateway {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let child = Command::new(binary)
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the Pushgateway");
    let gateway = Gateway {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let started = Instant::now();
    while ureq::get(&format!("{}/-/ready", gateway.url))
        .call()
        .is_err()
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the Pushgateway did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    gateway
}

/// The value of the one sample of `name` whose labels include all of `labels`.
fn sample(exposition: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let matching: Vec<&str> = exposition
        .lines()
        .filter(|line| line.starts_with(&format!("{name}{{")))
        .filter(|line| {
            labels
                .iter()
                .all(|(k, v)| line.contains(&format!("{k}=\"{v}\"")))
        })
        .collect();
    assert_eq!(matching.len(), 1, "{name} {labels:?} in:\n{exposition}");
    let value = matching[0].rsplit(' ').next().expect("value");
    value.parse().expect("number")
}

fn run(args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .env("RUST_LOG", "warn")
        .env_remove("OPENAI_API_KEY")
        .output()
        .expect("switchboard runs");
    assert!(
        output.status.success(),
        "{args:?}: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
fn eval_and_bench_results_reach_a_real_pushgateway() {
    let Some(binary) = gateway_binary() else {
        return;
    };
    let gateway = start_gateway(&binary);
    let server = Server::start_with(Files::new(512), &[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let suite = dir.path().join("tiny.jsonl");
    std::fs::write(
        &suite,
        concat!(
            r#"{"id": "1", "domain": "biology", "question": "Which organelle makes ATP?", "choices": ["mitochondria", "ribosomes"], "answer": 0}"#,
            "\n",
            r#"{"id": "2", "domain": "history", "question": "Who crossed the Alps with elephants?", "choices": ["Hannibal", "Caesar", "Nero"], "answer": 0}"#,
            "\n",
        ),
    )
    .expect("suite");
    let path = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let common = [
        "eval",
        "run",
        "--url",
        &server.base,
        "--suite",
        &path("tiny.jsonl"),
        "--variants",
        "base,golden-a",
        "--quiet",
        "--pushgateway",
        &gateway.url,
    ];
    run(&[&common[..], &["--out", &path("baseline.json")]].concat());
    run(&[
        &common[..],
        &[
            "--out",
            &path("run.json"),
            "--baseline",
            &path("baseline.json"),
        ],
    ]
    .concat());

    let metrics = ureq::get(&format!("{}/metrics", gateway.url))
        .call()
        .expect("gateway metrics")
        .into_body()
        .read_to_string()
        .expect("text");
    let results: Value =
        serde_json::from_slice(&std::fs::read(path("run.json")).expect("results")).expect("json");
    for variant in ["base", "golden-a"] {
        for domain in ["biology", "history", "overall"] {
            let labels = [
                ("job", "switchboard_eval"),
                ("suite", "tiny"),
                ("domain", domain),
                ("variant", variant),
            ];
            let expected = results["variants"][variant][domain]["accuracy"]
                .as_f64()
                .expect("accuracy");
            assert_eq!(
                sample(&metrics, "switchboard_eval_accuracy_ratio", &labels),
                expected
            );
            // The same suite and model: the recorded baseline is this run's accuracy again.
            assert_eq!(
                sample(
                    &metrics,
                    "switchboard_eval_baseline_accuracy_ratio",
                    &labels
                ),
                expected
            );
        }
    }
    let finished = sample(
        &metrics,
        "switchboard_eval_last_success_timestamp_seconds",
        &[("job", "switchboard_eval"), ("suite", "tiny")],
    );
    assert!(finished > 1.7e9, "{finished}");

    run(&[
        "bench",
        "--url",
        &server.base,
        "--num-prompts",
        "4",
        "--concurrency",
        "2",
        "--input-len",
        "8",
        "--output-len",
        "4",
        "--ignore-eos",
        "--scenario",
        "smoke",
        "--pushgateway",
        &gateway.url,
    ]);
    let metrics = ureq::get(&format!("{}/metrics", gateway.url))
        .call()
        .expect("gateway metrics")
        .into_body()
        .read_to_string()
        .expect("text");
    let labels = [
        ("job", "switchboard_bench"),
        ("scenario", "smoke"),
        ("adapter", "all"),
        ("outcome", "completed"),
    ];
    assert_eq!(sample(&metrics, "switchboard_bench_requests", &labels), 4.0);
    // The eval group is untouched by the bench's push.
    assert!(
        metrics.contains("switchboard_eval_accuracy_ratio{"),
        "{metrics}"
    );
    let stamp = sample(
        &metrics,
        "switchboard_bench_last_success_timestamp_seconds",
        &[
            ("job", "switchboard_bench_last_success"),
            ("scenario", "smoke"),
        ],
    );
    assert!(stamp > 1.7e9, "{stamp}");
}

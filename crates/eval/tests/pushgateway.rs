//! `prom::push` against a real Prometheus Pushgateway: the pushed series come out of the
//! gateway's `/metrics` with the group's labels, a second `PUT` replaces the group whole (a
//! domain left out disappears), groups of different suites coexist, and refused pushes are
//! `EvalError::Push` errors naming HTTP 400 and the gateway's reason.
//!
//! The gateway binary comes from `SWITCHBOARD_PUSHGATEWAY`, else `prometheus-pushgateway` or
//! `pushgateway` on `PATH`, else `/usr/bin/prometheus-pushgateway` (Debian's
//! `prometheus-pushgateway` package). Without one the tests print why and pass, unless
//! `SWITCHBOARD_REQUIRE_EXTERNAL=1` (as in CI), where they fail.

use std::collections::BTreeMap;
use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use switchboard_eval::prom::{self, Family};
use switchboard_eval::EvalError;

const ENV_BINARY: &str = "SWITCHBOARD_PUSHGATEWAY";
const ENV_REQUIRE: &str = "SWITCHBOARD_REQUIRE_EXTERNAL";
const JOB: &str = "switchboard_eval";

/// The Pushgateway binary, or `None` (after printing why) when the test should be skipped.
fn pushgateway_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(ENV_BINARY).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "{ENV_BINARY}={} is not a file: point it at the prometheus-pushgateway binary",
            path.display()
        );
        return Some(path);
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths).find_map(|dir| {
            ["prometheus-pushgateway", "pushgateway"]
                .iter()
                .map(|name| dir.join(name))
                .find(|candidate| candidate.is_file())
        })
    });
    let found = on_path.or_else(|| {
        let debian = PathBuf::from("/usr/bin/prometheus-pushgateway");
        debian.is_file().then_some(debian)
    });
    if found.is_none() {
        let reason = format!(
            "no Pushgateway binary: set {ENV_BINARY} or install Debian's prometheus-pushgateway"
        );
        let required = std::env::var(ENV_REQUIRE).is_ok_and(|v| !v.is_empty() && v != "0");
        assert!(!required, "{ENV_REQUIRE} is set but there is {reason}");
        println!("skipped: {reason}");
    }
    found
}

/// A Pushgateway child process on a free loopback port, without persistence; killed on drop.
struct Gateway {
    child: Child,
    url: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Gateway {
    fn start(binary: &Path) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("pushgateway.log");
        // The port is free when asked for, but another process may take it before the gateway
        // binds it: then the gateway exits, and we try another port.
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free loopback port")
                .port();
            // No --persistence.file: the gateway keeps its groups in memory only.
            let mut child = Command::new(binary)
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(File::create(&log).expect("log file"))
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
            let url = format!("http://127.0.0.1:{port}");
            if wait_ready(&mut child, &url, Duration::from_secs(20)) {
                return Self {
                    child,
                    url,
                    log,
                    _dir: dir,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!(
            "the Pushgateway {} did not become ready; its log:\n{}",
            binary.display(),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// The gateway's own exposition: every pushed group, with its grouping labels.
    fn metrics(&self) -> Vec<Sample> {
        let text = ureq::get(&format!("{}/metrics", self.url))
            .call()
            .and_then(|mut r| r.body_mut().read_to_string())
            .unwrap_or_else(|e| panic!("GET {}/metrics: {e}; log:\n{}", self.url, self.log()));
        parse_exposition(&text)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `/-/ready` until it answers 200 (true) or the child exits or time runs out (false).
fn wait_ready(child: &mut Child, url: &str, limit: Duration) -> bool {
    let agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(2)))
        .build()
        .new_agent();
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return false;
        }
        if agent.get(&format!("{url}/-/ready")).call().is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// One sample of the text exposition format.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A small parser of the text exposition format (`name{label="value",...} value`), enough for
/// what the Pushgateway writes.
fn parse_exposition(text: &str) -> Vec<Sample> {
    let mut samples = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        let name = line[..name_end].to_string();
        let mut labels = BTreeMap::new();
        let mut rest = &line[name_end..];
        if let Some(body) = rest.strip_prefix('{') {
            let mut chars = body.char_indices();
            let mut key = String::new();
            let mut end = body.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '}' => {
                        end = i + 1;
                        break;
                    }
                    ',' | ' ' => {}
                    '=' => {
                        assert_eq!(chars.next().map(|(_, c)| c), Some('"'), "{line}");
                        let mut value = String::new();
                        while let Some((_, c)) = chars.next() {
                            match c {
                                '\\' => match chars.next().map(|(_, c)| c) {
                                    Some('n') => value.push('\n'),
                                    Some(other) => value.push(other),
                                    None => panic!("bad escape in {line}"),
                                },
                                '"' => break,
                                c => value.push(c),
                            }
                        }
                        labels.insert(std::mem::take(&mut key), value);
                    }
                    c => key.push(c),
                }
            }
            rest = &body[end..];
        }
        let value = rest
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no value in {line}"));
        samples.push(Sample {
            name,
            labels,
            value,
        });
    }
    samples
}

/// The samples named `name` whose labels include all of `labels`.
fn find<'a>(samples: &'a [Sample], name: &str, labels: &[(&str, &str)]) -> Vec<&'a Sample> {
    samples
        .iter()
        .filter(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .collect()
}

/// The value of the one sample named `name` with exactly the labels of the pushed group.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let found = find(samples, name, labels);
    assert_eq!(
        found.len(),
        1,
        "expected one {name}{labels:?}, found {found:?} in the gateway's /metrics"
    );
    // The gateway adds instance="" to groups pushed without one; nothing else.
    let mut expected: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    expected.entry("instance".into()).or_default();
    assert_eq!(found[0].labels, expected, "labels of {name}");
    found[0].value
}

const ACCURACY: &str = "switchboard_eval_accuracy_ratio";
const LAST_SUCCESS: &str = "switchboard_eval_last_success_timestamp_seconds";
const ITEMS: &str = "switchboard_eval_items";

/// An eval result set: accuracy per (domain, variant) and the last-success timestamp.
fn eval_families(accuracy: &[(&str, &str, f64)], finished: f64) -> Vec<Family> {
    let mut acc = Family::gauge(ACCURACY, "Accuracy (0-1) by domain and variant.");
    for (domain, variant, value) in accuracy {
        acc.sample(&[("domain", domain), ("variant", variant)], *value);
    }
    let mut stamp = Family::gauge(LAST_SUCCESS, "When the last successful run finished.");
    stamp.sample(&[], finished);
    vec![acc, stamp]
}

fn labels<'a>(suite: &'a str, domain: &'a str, variant: &'a str) -> [(&'a str, &'a str); 4] {
    [
        ("job", JOB),
        ("suite", suite),
        ("domain", domain),
        ("variant", variant),
    ]
}

#[test]
fn put_replaces_the_group_and_groups_of_other_suites_coexist() {
    let Some(binary) = pushgateway_binary() else {
        return;
    };
    let gateway = Gateway::start(&binary);
    let t1 = [("suite", "t1")];

    // First push: two domains, two variants each, and a timestamp.
    let mut first = eval_families(
        &[
            ("biology", "base", 0.62),
            ("biology", "biology", 0.71),
            ("history", "base", 0.55),
            ("history", "history", 0.6),
        ],
        1_756_600_000.5,
    );
    let mut items = Family::gauge(ITEMS, "Items scored per domain.");
    items.sample(&[("domain", "history")], 60.0);
    first.push(items);
    prom::push(&gateway.url, JOB, &t1, &first).expect("first push");
    let m = gateway.metrics();
    assert_eq!(
        value(
            &m,
            ITEMS,
            &[("job", JOB), ("suite", "t1"), ("domain", "history")]
        ),
        60.0
    );
    assert_eq!(value(&m, ACCURACY, &labels("t1", "biology", "base")), 0.62);
    assert_eq!(
        value(&m, ACCURACY, &labels("t1", "biology", "biology")),
        0.71
    );
    assert_eq!(value(&m, ACCURACY, &labels("t1", "history", "base")), 0.55);
    assert_eq!(
        value(&m, ACCURACY, &labels("t1", "history", "history")),
        0.6
    );
    assert_eq!(
        value(&m, LAST_SUCCESS, &[("job", JOB), ("suite", "t1")]),
        1_756_600_000.5
    );
    assert!(
        value(&m, "push_time_seconds", &[("job", JOB), ("suite", "t1")]) > 0.0,
        "the gateway records when the group was pushed"
    );

    // Second push of the same group with only one domain: PUT replaces the group whole, so
    // the history series are gone (a finer grouping key would have left them forever), and
    // so is a metric name the second push lacks altogether (a POST would have kept it).
    let second = eval_families(
        &[("biology", "base", 0.63), ("biology", "biology", 0.74)],
        1_756_686_400.0,
    );
    prom::push(&gateway.url, JOB, &t1, &second).expect("second push");
    let m = gateway.metrics();
    assert_eq!(value(&m, ACCURACY, &labels("t1", "biology", "base")), 0.63);
    assert_eq!(
        value(&m, ACCURACY, &labels("t1", "biology", "biology")),
        0.74
    );
    let stale = find(&m, ACCURACY, &[("suite", "t1"), ("domain", "history")]);
    assert!(stale.is_empty(), "history survived the PUT: {stale:?}");
    let kept = find(&m, ITEMS, &[("job", JOB)]);
    assert!(kept.is_empty(), "{ITEMS} survived the PUT: {kept:?}");
    assert_eq!(
        value(&m, LAST_SUCCESS, &[("job", JOB), ("suite", "t1")]),
        1_756_686_400.0
    );

    // Another suite is another group: both coexist, each with its own series. A suite name
    // with a `/` travels base64-encoded in the URL and comes back as the plain label.
    let other = eval_families(&[("history", "base", 0.5)], 1_756_690_000.0);
    prom::push(&gateway.url, JOB, &[("suite", "t2")], &other).expect("t2 push");
    let nightly = eval_families(&[("security", "auto", 0.8)], 1_756_690_001.0);
    prom::push(&gateway.url, JOB, &[("suite", "nightly/full")], &nightly).expect("nightly push");
    let m = gateway.metrics();
    assert_eq!(
        value(&m, ACCURACY, &labels("t1", "biology", "biology")),
        0.74
    );
    assert_eq!(value(&m, ACCURACY, &labels("t2", "history", "base")), 0.5);
    assert_eq!(
        value(&m, ACCURACY, &labels("nightly/full", "security", "auto")),
        0.8
    );
    assert!(find(&m, ACCURACY, &[("suite", "t1"), ("domain", "history")]).is_empty());
    assert_eq!(find(&m, ACCURACY, &[("job", JOB)]).len(), 4);
    assert_eq!(find(&m, LAST_SUCCESS, &[("job", JOB)]).len(), 3);
}

#[test]
fn refused_pushes_are_push_errors_naming_http_400() {
    let Some(binary) = pushgateway_binary() else {
        return;
    };
    let gateway = Gateway::start(&binary);
    let t1 = [("suite", "t1")];
    let good = eval_families(&[("biology", "base", 0.62)], 1_756_600_000.0);
    prom::push(&gateway.url, JOB, &t1, &good).expect("good push");

    // An invalid metric name: the gateway cannot parse the body.
    let mut bad = Family::gauge("switchboard eval accuracy", "Not a metric name.");
    bad.sample(&[("domain", "biology")], 0.5);
    let err = prom::push(&gateway.url, JOB, &t1, &[bad]).expect_err("invalid name");
    let text = err.to_string();
    assert!(
        matches!(&err, EvalError::Push { url, reason }
            if url.ends_with("/metrics/job/switchboard_eval/suite/t1") && reason.starts_with("HTTP 400")),
        "{err:?}"
    );
    assert!(
        text.contains(&gateway.url) && text.contains("HTTP 400"),
        "{text}"
    );

    // A metric name another group already has with another type (a counter there, a gauge
    // here): the Pushgateway refuses inconsistent pushes with 400 and says why.
    ureq::put(&format!("{}/metrics/job/other_tool", gateway.url))
        .header("Content-Type", "text/plain; version=0.0.4")
        .send("# TYPE switchboard_eval_items counter\nswitchboard_eval_items 3\n")
        .expect("counter push by another tool");
    let mut items = Family::gauge(ITEMS, "Items scored.");
    items.sample(&[("domain", "biology")], 60.0);
    let err = prom::push(&gateway.url, JOB, &t1, &[items]).expect_err("inconsistent type");
    let text = err.to_string();
    assert!(matches!(err, EvalError::Push { .. }), "{err:?}");
    assert!(
        text.contains("HTTP 400") && text.contains("inconsistent"),
        "the error should name the status and the gateway's reason: {text}"
    );

    // Refused pushes leave the group as it was.
    let m = gateway.metrics();
    assert_eq!(value(&m, ACCURACY, &labels("t1", "biology", "base")), 0.62);
    assert!(find(&m, ITEMS, &[("job", JOB)]).is_empty());
    assert_eq!(value(&m, ITEMS, &[("job", "other_tool")]), 3.0);
}

//! An evaluation run as Prometheus gauges (named per Prometheus' naming practices: base units,
//! `_ratio` for 0..1, `_timestamp_seconds`, no `_total` on gauges), ready for
//! [`prom::write_textfile`] or [`prom::push`]. An alert compares
//! `switchboard_eval_accuracy_ratio` with `0.95 * switchboard_eval_baseline_accuracy_ratio`
//! `on (suite, domain, variant)`.
//!
//! [`prom::write_textfile`]: crate::prom::write_textfile
//! [`prom::push`]: crate::prom::push

use std::time::{SystemTime, UNIX_EPOCH};

use crate::prom::Family;
use crate::results::EvalResults;

/// The gauges of `results`; `baseline` is the accepted baseline run, whose accuracies become
/// `switchboard_eval_baseline_accuracy_ratio` under the current suite's name (so an alert can
/// match the two series). The last-success timestamp is now.
pub fn eval_families(results: &EvalResults, baseline: Option<&EvalResults>) -> Vec<Family> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    eval_families_at(results, baseline, now)
}

/// [`eval_families`] with the last-success timestamp given (Unix seconds).
pub fn eval_families_at(
    results: &EvalResults,
    baseline: Option<&EvalResults>,
    now: f64,
) -> Vec<Family> {
    let suite = results.suite.as_str();
    let mut accuracy = Family::gauge(
        "switchboard_eval_accuracy_ratio",
        "Accuracy (0-1) by suite, domain and variant.",
    );
    let mut lower = Family::gauge(
        "switchboard_eval_accuracy_ci_lower_ratio",
        "Lower bound of the 95% Wilson interval of the accuracy (0-1).",
    );
    let mut upper = Family::gauge(
        "switchboard_eval_accuracy_ci_upper_ratio",
        "Upper bound of the 95% Wilson interval of the accuracy (0-1).",
    );
    let mut items = Family::gauge(
        "switchboard_eval_items",
        "Items scored by suite, domain and variant.",
    );
    for (variant, domains) in &results.variants {
        for (domain, score) in domains {
            let labels = [("suite", suite), ("domain", domain), ("variant", variant)];
            accuracy.sample(&labels, score.accuracy);
            lower.sample(&labels, score.ci95[0]);
            upper.sample(&labels, score.ci95[1]);
            items.sample(&labels, score.n as f64);
        }
    }
    let mut accepted = Family::gauge(
        "switchboard_eval_baseline_accuracy_ratio",
        "Accuracy (0-1) of the accepted baseline run by suite, domain and variant.",
    );
    for (variant, domains) in baseline.iter().flat_map(|b| &b.variants) {
        for (domain, score) in domains {
            let labels = [("suite", suite), ("domain", domain), ("variant", variant)];
            accepted.sample(&labels, score.accuracy);
        }
    }
    let mut duration = Family::gauge(
        "switchboard_eval_duration_seconds",
        "Wall time of the last evaluation run.",
    );
    duration.sample(&[("suite", suite)], results.run.duration_seconds);
    let mut success = Family::gauge(
        "switchboard_eval_last_success_timestamp_seconds",
        "Unix time the last evaluation run succeeded.",
    );
    success.sample(&[("suite", suite)], now);
    let mut info = Family::gauge(
        "switchboard_eval_info",
        "The model of the last evaluation run; always 1.",
    );
    info.sample(&[("suite", suite), ("model", &results.model)], 1.0);
    vec![
        accuracy, lower, upper, items, accepted, duration, success, info,
    ]
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::prom::render;
    use crate::results::{DomainScore, RunInfo, OVERALL};

    fn results(accuracy: f64) -> EvalResults {
        let score = DomainScore {
            accuracy,
            n: 60,
            ci95: [0.5, 0.75],
            acc_norm: None,
            exact_match: None,
            f1: None,
        };
        let domains = BTreeMap::from([
            ("biology".to_string(), score.clone()),
            (OVERALL.to_string(), score),
        ]);
        EvalResults {
            suite: "v1".into(),
            model: "qwen2-0.5b".into(),
            variants: BTreeMap::from([("biology".to_string(), domains)]),
            items: Vec::new(),
            run: RunInfo {
                duration_seconds: 12.5,
                ..RunInfo::default()
            },
        }
    }

    #[test]
    fn renders_every_gauge_with_its_labels() {
        let baseline = results(0.625);
        let text = render(&eval_families_at(
            &results(0.7),
            Some(&baseline),
            1_756_600_000.0,
        ));
        let expected = [
            "# TYPE switchboard_eval_accuracy_ratio gauge",
            r#"switchboard_eval_accuracy_ratio{suite="v1",domain="biology",variant="biology"} 0.7"#,
            r#"switchboard_eval_accuracy_ratio{suite="v1",domain="overall",variant="biology"} 0.7"#,
            r#"switchboard_eval_accuracy_ci_lower_ratio{suite="v1",domain="biology",variant="biology"} 0.5"#,
            r#"switchboard_eval_accuracy_ci_upper_ratio{suite="v1",domain="biology",variant="biology"} 0.75"#,
            r#"switchboard_eval_items{suite="v1",domain="biology",variant="biology"} 60"#,
            r#"switchboard_eval_baseline_accuracy_ratio{suite="v1",domain="biology",variant="biology"} 0.625"#,
            r#"switchboard_eval_duration_seconds{suite="v1"} 12.5"#,
            r#"switchboard_eval_last_success_timestamp_seconds{suite="v1"} 1756600000"#,
            r#"switchboard_eval_info{suite="v1",model="qwen2-0.5b"} 1"#,
        ];
        for line in expected {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert_eq!(text.lines().filter(|l| l.starts_with("# TYPE")).count(), 8);
        assert!(!text.contains("_total"));
        assert!(text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .all(|l| l.starts_with("switchboard_eval_")));
    }

    #[test]
    fn no_baseline_leaves_the_baseline_gauge_out() {
        let text = render(&eval_families(&results(0.7), None));
        assert!(!text.contains("switchboard_eval_baseline_accuracy_ratio"));
        let stamp: f64 = text
            .lines()
            .find_map(|l| {
                l.strip_prefix("switchboard_eval_last_success_timestamp_seconds{suite=\"v1\"} ")
            })
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        // Now, not zero or a placeholder: after 2025-01-01.
        assert!(stamp > 1_735_689_600.0, "{stamp}");
    }
}

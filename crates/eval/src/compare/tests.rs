//! Every verdict from results files written to a temporary directory, as `eval compare` reads
//! them.

use std::path::{Path, PathBuf};

use super::*;
use crate::aggregate::summarize;
use crate::results::{RunInfo, Scoring};

/// `n` records of `domain` for `variant`, the first `right` of them correct; ids are
/// `{domain}-{i}`, so the same `n` pairs up across runs.
fn records(
    variant: &str,
    domain: &str,
    n: usize,
    right: std::ops::Range<usize>,
) -> Vec<ItemRecord> {
    (0..n)
        .map(|i| ItemRecord {
            correct: right.contains(&i),
            gold: Some(0),
            predicted: Some(0),
            ..ItemRecord::unscored(
                &format!("{domain}-{i}"),
                domain,
                variant,
                "qwen",
                Scoring::Loglikelihood,
            )
        })
        .collect()
}

fn save(dir: &Path, name: &str, items: Vec<ItemRecord>) -> PathBuf {
    let results = EvalResults {
        suite: "suite".into(),
        model: "qwen".into(),
        variants: summarize(&items),
        items,
        run: RunInfo::default(),
    };
    let path = dir.join(name);
    results.save(&path).expect("save");
    path
}

fn args(baseline: &Path, candidate: &Path) -> CompareArgs {
    CompareArgs {
        baseline: baseline.to_path_buf(),
        candidate: candidate.to_path_buf(),
        target: None,
        variant: None,
        baseline_variant: None,
        candidate_variant: None,
        min_gain: 5.0,
        floor: 0.95,
        alpha: 0.05,
        bootstrap: 2000,
        seed: 7,
        out: None,
    }
}

/// Baseline: biology 30/60, history 45/60 (variant `base`).
fn baseline_file(dir: &Path) -> PathBuf {
    let mut items = records("base", "biology", 60, 0..30);
    items.extend(records("base", "history", 60, 0..45));
    save(dir, "baseline.json", items)
}

#[test]
fn promote_when_the_target_gains_significantly_and_nothing_falls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let baseline = baseline_file(dir.path());
    // biology 30 -> 45 of 60 (15 gained, none lost); history unchanged.
    let mut items = records("biology", "biology", 60, 0..45);
    items.extend(records("biology", "history", 60, 0..45));
    let candidate = save(dir.path(), "candidate.json", items);
    let mut args = args(&baseline, &candidate);
    let out = dir.path().join("out/comparison.json");
    args.out = Some(out.clone());
    let c = run(&args).expect("compare");
    assert_eq!(
        (c.verdict, c.exit_code),
        (Verdict::Promote, 0),
        "{:?}",
        c.reasons
    );
    assert_eq!(c.target, "biology", "inferred from the candidate variant");
    let bio = c.target_delta().expect("target row");
    assert_eq!(
        (bio.n, bio.baseline_only_correct, bio.candidate_only_correct),
        (60, 0, 15)
    );
    assert!((bio.delta_points - 25.0).abs() < 1e-9);
    assert!((bio.p_value - 2.0 * 0.5f64.powi(15)).abs() < 1e-12);
    assert!(bio.delta_ci95_points[0] > 10.0 && bio.delta_ci95_points[1] <= 40.0);
    let names: Vec<&str> = c.domains.iter().map(|d| d.domain.as_str()).collect();
    assert_eq!(names, ["biology", "history", OVERALL]);
    let saved: Comparison =
        serde_json::from_slice(&std::fs::read(&out).expect("read out")).expect("json");
    assert_eq!(saved, c);
}

#[test]
fn regression_when_a_domain_drops_significantly_below_the_floor() {
    let dir = tempfile::tempdir().expect("tempdir");
    let baseline = baseline_file(dir.path());
    // biology gains, history 45 -> 30 of 60: 75% -> 50%, 15 lost.
    let mut items = records("biology", "biology", 60, 0..45);
    items.extend(records("biology", "history", 60, 0..30));
    let candidate = save(dir.path(), "candidate.json", items);
    let c = run(&args(&baseline, &candidate)).expect("compare");
    assert_eq!((c.verdict, c.exit_code), (Verdict::Regression, 1));
    assert!(
        c.reasons.iter().any(|r| r.starts_with("history:")),
        "{:?}",
        c.reasons
    );
    assert!(c
        .domains
        .iter()
        .any(|d| d.domain == "history" && d.regression));
}

#[test]
fn no_gain_when_enough_items_show_the_gain_is_too_small() {
    let dir = tempfile::tempdir().expect("tempdir");
    // 400 items: 10 gained, 10 lost; the interval of the delta is about ±2.2 points.
    let baseline = save(
        dir.path(),
        "b.json",
        records("base", "biology", 400, 0..200),
    );
    let candidate = save(
        dir.path(),
        "c.json",
        records("biology", "biology", 400, 10..210),
    );
    let c = run(&args(&baseline, &candidate)).expect("compare");
    assert_eq!(
        (c.verdict, c.exit_code),
        (Verdict::NoGain, 2),
        "{:?}",
        c.reasons
    );
    let bio = c.target_delta().expect("target row");
    assert!(bio.delta_ci95_points[1] < 5.0 && bio.delta_ci95_points[0] > -5.0);
}

#[test]
fn inconclusive_with_too_few_items() {
    let dir = tempfile::tempdir().expect("tempdir");
    // 10 items, +20 points from 2 flipped answers: p = 0.5.
    let baseline = save(dir.path(), "b.json", records("base", "biology", 10, 0..5));
    let candidate = save(
        dir.path(),
        "c.json",
        records("biology", "biology", 10, 0..7),
    );
    let c = run(&args(&baseline, &candidate)).expect("compare");
    assert_eq!(
        (c.verdict, c.exit_code),
        (Verdict::Inconclusive, 3),
        "{:?}",
        c.reasons
    );
    assert!(c.reasons.iter().any(|r| r.contains("not significant")));
}

#[test]
fn an_insignificant_dip_below_the_floor_blocks_promotion_without_failing_as_regression() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut base = records("base", "biology", 60, 0..30);
    base.extend(records("base", "history", 10, 0..10));
    let baseline = save(dir.path(), "b.json", base);
    // history 10/10 -> 9/10: below 95% of the baseline, but one item is no evidence.
    let mut cand = records("biology", "biology", 60, 0..45);
    cand.extend(records("biology", "history", 10, 0..9));
    let candidate = save(dir.path(), "c.json", cand);
    let c = run(&args(&baseline, &candidate)).expect("compare");
    assert_eq!(c.verdict, Verdict::Inconclusive, "{:?}", c.reasons);
    let history = c
        .domains
        .iter()
        .find(|d| d.domain == "history")
        .expect("row");
    assert!(history.below_floor && !history.regression);
    assert!(c.reasons.iter().any(|r| r.contains("not significantly")));
}

#[test]
fn two_variants_of_one_file_and_explicit_target() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut items = records("base", "biology", 60, 0..30);
    items.extend(records("biology", "biology", 60, 0..45));
    let both = save(dir.path(), "run.json", items);
    let mut args = args(&both, &both);
    let err = run(&args)
        .expect_err("two variants, none chosen")
        .to_string();
    assert!(
        err.contains("base, biology") && err.contains("--variant"),
        "{err}"
    );
    args.baseline_variant = Some("base".into());
    args.candidate_variant = Some("biology".into());
    let c = run(&args).expect("compare");
    assert_eq!(c.verdict, Verdict::Promote, "{:?}", c.reasons);
    args.target = Some(OVERALL.into());
    assert_eq!(run(&args).expect("compare").target, OVERALL);
    args.target = Some("chemistry".into());
    let err = run(&args).expect_err("unknown domain").to_string();
    assert!(
        err.contains("chemistry") && err.contains("biology, overall"),
        "{err}"
    );
    args.target = None;
    args.candidate_variant = Some("history".into());
    let err = run(&args).expect_err("unknown variant").to_string();
    assert!(
        err.contains("\"history\"") && err.contains("base, biology"),
        "{err}"
    );
}

#[test]
fn unpaired_items_are_counted_and_left_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let baseline = save(dir.path(), "b.json", records("base", "biology", 12, 0..6));
    // The candidate lacks biology-10 and biology-11 and has one item of its own.
    let mut cand = records("biology", "biology", 10, 0..6);
    cand.extend(records("biology", "extra", 1, 0..1));
    let candidate = save(dir.path(), "c.json", cand);
    let c = run(&args(&baseline, &candidate)).expect("compare");
    assert_eq!(
        (c.paired, c.only_in_baseline, c.only_in_candidate),
        (10, 2, 1)
    );
    assert_eq!(c.domains.last().map(|d| d.n), Some(10));
    let none = save(dir.path(), "n.json", records("x", "other", 3, 0..1));
    let err = run(&args(&baseline, &none))
        .expect_err("nothing in common")
        .to_string();
    assert!(err.contains("no item id in common"), "{err}");
}

#[test]
fn files_without_item_records_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("summary.json");
    std::fs::write(
        &path,
        r#"{"suite": "s", "model": "m", "variants": {"base": {"overall": {"accuracy": 0.5, "n": 4, "ci95": [0.15, 0.85]}}}}"#,
    )
    .expect("write");
    let err = run(&args(&path, &path)).expect_err("no items").to_string();
    assert!(
        err.contains("summary.json") && err.contains("per-item records"),
        "{err}"
    );
}

#[test]
fn markdown_golden() {
    let side = |path: &str, variant: &str| RunRef {
        path: path.into(),
        suite: "s".into(),
        model: "m".into(),
        variant: variant.into(),
    };
    let row = |domain: &str, base: f64, cand: f64, p: f64, below: bool, reg: bool| DomainDelta {
        domain: domain.into(),
        n: 60,
        baseline_accuracy: base,
        candidate_accuracy: cand,
        delta_points: 100.0 * (cand - base),
        baseline_only_correct: 1,
        candidate_only_correct: 9,
        p_value: p,
        delta_ci95_points: [3.3, 23.5],
        below_floor: below,
        regression: reg,
    };
    let c = Comparison {
        baseline: side("a.json", "base"),
        candidate: side("b.json", "biology"),
        target: "biology".into(),
        thresholds: Thresholds::default(),
        domains: vec![
            row("biology", 0.5, 0.625, 0.0215, false, false),
            row("history", 0.8, 0.7, 0.00001, true, true),
        ],
        paired: 120,
        only_in_baseline: 2,
        only_in_candidate: 0,
        verdict: Verdict::Regression,
        exit_code: 1,
        reasons: vec!["history fell".into()],
    };
    assert_eq!(
        render_markdown(&c),
        "**Verdict: regression** (exit 1): `biology` (b.json) against `base` (a.json), target `biology`\n\
         \n\
         - history fell\n\
         \n\
         120 paired items (2 only in the baseline, 0 only in the candidate, left out); floor 95% of baseline, alpha 0.05, 10000 bootstrap resamples (seed 0).\n\
         \n\
         | domain | n | baseline | candidate | Δ points | 95% CI of Δ | McNemar p | |\n\
         |---|---:|---:|---:|---:|---|---:|---|\n\
         | biology | 60 | 50.0 | 62.5 | +12.5 | [+3.3, +23.5] | 0.0215 | target |\n\
         | history | 60 | 80.0 | 70.0 | -10.0 | [+3.3, +23.5] | <0.0001 | regression |\n"
    );
}

#[test]
fn flags_parse_as_documented() {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: CompareArgs,
    }
    let parse = |flags: &[&str]| {
        let argv = ["compare", "--baseline", "a.json", "--candidate", "b.json"];
        Cli::try_parse_from(argv.iter().chain(flags)).map(|cli| cli.args)
    };
    let defaults = parse(&[]).expect("defaults");
    assert_eq!(defaults.thresholds(), Thresholds::default());
    assert_eq!(
        (defaults.variant, defaults.target, defaults.out),
        (None, None, None)
    );
    let args = parse(&[
        "--baseline-variant",
        "base",
        "--candidate-variant",
        "biology",
        "--target",
        "biology",
        "--min-gain",
        "3",
        "--floor",
        "0.9",
        "--alpha",
        "0.01",
        "--bootstrap",
        "500",
        "--seed",
        "9",
        "--out",
        "c.json",
    ])
    .expect("all flags");
    assert_eq!(args.baseline_variant.as_deref(), Some("base"));
    assert_eq!(args.candidate_variant.as_deref(), Some("biology"));
    assert_eq!(
        args.thresholds(),
        Thresholds {
            min_gain: 3.0,
            floor: 0.9,
            alpha: 0.01,
            bootstrap_iterations: 500,
            seed: 9
        }
    );
    assert_eq!(args.out, Some(PathBuf::from("c.json")));
    assert!(parse(&["--variant", "a", "--baseline-variant", "b"]).is_err());
}

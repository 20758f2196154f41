//! Results for people: a Markdown table of domains × variants, and a PNG bar chart of the same
//! numbers with their 95% intervals.

mod chart;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::results::{DomainScore, OVERALL};

pub use chart::{chart_png, write_chart};

/// Per variant, per domain (and [`OVERALL`]) scores, as in [`EvalResults::variants`].
///
/// [`EvalResults::variants`]: crate::results::EvalResults::variants
pub type Scores = BTreeMap<String, BTreeMap<String, DomainScore>>;

/// The domains that any of `variants` has, sorted, then [`OVERALL`] if any has it.
pub fn domain_rows(scores: &Scores, variants: &[String]) -> Vec<String> {
    let mut domains: BTreeSet<&str> = BTreeSet::new();
    let mut overall = false;
    for per_domain in variants.iter().filter_map(|v| scores.get(v)) {
        for domain in per_domain.keys() {
            if domain == OVERALL {
                overall = true;
            } else {
                domains.insert(domain);
            }
        }
    }
    let mut rows: Vec<String> = domains.into_iter().map(str::to_string).collect();
    if overall {
        rows.push(OVERALL.to_string());
    }
    rows
}

/// A Markdown table: one row per domain then `overall`, one column per variant in the order
/// given, cells `71.7 ± 11.4 (n=60)` (accuracy in percent ± half the width of its 95% Wilson
/// interval, which is not quite symmetric). A variant without that domain shows `–`.
pub fn markdown_table(scores: &Scores, variants: &[String]) -> String {
    let mut out = String::from("| domain |");
    for variant in variants {
        // Writing to a String cannot fail.
        let _ = write!(out, " {variant} |");
    }
    out.push_str("\n|---|");
    out.push_str(&"---:|".repeat(variants.len()));
    out.push('\n');
    for domain in domain_rows(scores, variants) {
        let _ = write!(out, "| {domain} |");
        for variant in variants {
            let score = scores.get(variant).and_then(|d| d.get(&domain));
            let _ = write!(out, " {} |", cell(score));
        }
        out.push('\n');
    }
    out
}

fn cell(score: Option<&DomainScore>) -> String {
    match score {
        Some(s) => format!(
            "{:.1} ± {:.1} (n={})",
            100.0 * s.accuracy,
            50.0 * (s.ci95[1] - s.ci95[0]),
            s.n
        ),
        None => "–".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::wilson;

    pub(super) fn score(correct: usize, n: usize) -> DomainScore {
        DomainScore {
            accuracy: correct as f64 / n as f64,
            n,
            ci95: wilson(correct, n),
            acc_norm: None,
            exact_match: None,
            f1: None,
        }
    }

    pub(super) fn sample() -> Scores {
        let mut scores = Scores::new();
        let base = scores.entry("base".into()).or_default();
        base.insert("biology".into(), score(30, 60));
        base.insert("history".into(), score(45, 60));
        base.insert(OVERALL.into(), score(75, 120));
        let bio = scores.entry("biology".into()).or_default();
        bio.insert("biology".into(), score(43, 60));
        bio.insert(OVERALL.into(), score(43, 60));
        scores
    }

    #[test]
    fn markdown_golden() {
        let variants = vec!["biology".to_string(), "base".to_string()];
        // 43/60 = 71.7%, Wilson [0.5923, 0.8149]: ± 11.1 (computed independently in Python).
        assert_eq!(
            markdown_table(&sample(), &variants),
            "| domain | biology | base |\n\
             |---|---:|---:|\n\
             | biology | 71.7 ± 11.1 (n=60) | 50.0 ± 12.3 (n=60) |\n\
             | history | – | 75.0 ± 10.7 (n=60) |\n\
             | overall | 71.7 ± 11.1 (n=60) | 62.5 ± 8.5 (n=120) |\n"
        );
    }

    #[test]
    fn rows_follow_the_variants_asked_for() {
        let scores = sample();
        assert_eq!(
            domain_rows(&scores, &["biology".to_string()]),
            ["biology", OVERALL]
        );
        assert!(domain_rows(&scores, &["nope".to_string()]).is_empty());
    }
}

//! From per-item records to the per-variant, per-domain scores of [`EvalResults::variants`].
//!
//! [`EvalResults::variants`]: crate::results::EvalResults::variants

use std::collections::BTreeMap;

use crate::results::{DomainScore, ItemRecord, OVERALL};
use crate::stats::wilson;

/// Per variant, per domain and [`OVERALL`]: accuracy (share of `correct`), item count, 95%
/// Wilson interval, and the secondary metrics over the items that have them: `acc_norm` over
/// multiple-choice items scored by log-likelihood, exact match and F1 over generative items
/// (`None` where a domain has no such item).
pub fn summarize(records: &[ItemRecord]) -> BTreeMap<String, BTreeMap<String, DomainScore>> {
    let mut groups: BTreeMap<&str, BTreeMap<&str, Vec<&ItemRecord>>> = BTreeMap::new();
    for record in records {
        let domains = groups.entry(record.variant.as_str()).or_default();
        domains
            .entry(record.domain.as_str())
            .or_default()
            .push(record);
        domains.entry(OVERALL).or_default().push(record);
    }
    groups
        .into_iter()
        .map(|(variant, domains)| {
            let scores = domains
                .into_iter()
                .map(|(domain, records)| (domain.to_string(), score(&records)))
                .collect();
            (variant.to_string(), scores)
        })
        .collect()
}

/// The score of one group of records (never empty: groups are made from records).
fn score(records: &[&ItemRecord]) -> DomainScore {
    let n = records.len();
    let correct = records.iter().filter(|r| r.correct).count();
    DomainScore {
        accuracy: ratio(correct, n),
        n,
        ci95: wilson(correct, n),
        acc_norm: mean_of(records, |r| r.correct_norm.map(f64::from)),
        exact_match: mean_of(records, |r| r.exact_match.map(f64::from)),
        f1: mean_of(records, |r| r.f1),
    }
}

fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// The mean of `value` over the records that have one; `None` if none has.
fn mean_of(records: &[&ItemRecord], value: impl Fn(&ItemRecord) -> Option<f64>) -> Option<f64> {
    let values: Vec<f64> = records.iter().filter_map(|r| value(r)).collect();
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::Scoring;

    fn record(variant: &str, domain: &str, correct: bool) -> ItemRecord {
        let id = format!("{domain}-{correct}");
        ItemRecord {
            correct,
            gold: Some(0),
            predicted: Some(0),
            ..ItemRecord::unscored(&id, domain, variant, "m", Scoring::Loglikelihood)
        }
    }

    fn mc(variant: &str, domain: &str, correct: bool, norm: bool) -> ItemRecord {
        ItemRecord {
            correct_norm: Some(norm),
            ..record(variant, domain, correct)
        }
    }

    fn generative(variant: &str, domain: &str, contains: bool, em: bool, f1: f64) -> ItemRecord {
        ItemRecord {
            scoring: Scoring::Generative,
            exact_match: Some(em),
            contains: Some(contains),
            f1: Some(f1),
            ..record(variant, domain, contains)
        }
    }

    #[test]
    fn per_variant_per_domain_and_overall() {
        let records = vec![
            mc("base", "biology", true, false),
            mc("base", "biology", false, true),
            mc("base", "biology", true, true),
            mc("base", "history", false, false),
            generative("base", "general", true, false, 0.5),
            generative("base", "general", false, false, 0.0),
            mc("biology", "biology", true, true),
        ];
        let summary = summarize(&records);
        assert_eq!(summary.keys().collect::<Vec<_>>(), ["base", "biology"]);
        let base = &summary["base"];
        assert_eq!(
            base.keys().collect::<Vec<_>>(),
            ["biology", "general", "history", OVERALL]
        );
        let biology = &base["biology"];
        assert_eq!(biology.n, 3);
        assert!((biology.accuracy - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(biology.ci95, wilson(2, 3));
        assert!((biology.acc_norm.unwrap_or(-1.0) - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!((biology.exact_match, biology.f1), (None, None));
        let general = &base["general"];
        assert_eq!((general.n, general.accuracy), (2, 0.5));
        assert_eq!((general.acc_norm, general.exact_match), (None, Some(0.0)));
        assert_eq!(general.f1, Some(0.25));
        let overall = &base[OVERALL];
        assert_eq!(overall.n, 6);
        assert!((overall.accuracy - 0.5).abs() < 1e-12);
        // acc_norm over the 4 log-likelihood items only: 2 of 4.
        assert_eq!(overall.acc_norm, Some(0.5));
        assert_eq!(overall.f1, Some(0.25));
        assert_eq!(summary["biology"][OVERALL].n, 1);
        assert!(summarize(&[]).is_empty());
    }
}

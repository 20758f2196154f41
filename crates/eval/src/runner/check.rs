//! After a run: the "adapter silently ignored" check, and notes a reader of the results needs.

use std::collections::{BTreeMap, HashMap};

use crate::error::{EvalError, Result};
use crate::results::{ItemRecord, Scoring};

use super::variants::{Kind, Plan, BASE, RAG};

/// Log-likelihoods closer than this (relative) count as identical: a server that ignores the
/// adapter gives the base's numbers up to batching noise, which is far below this.
const SAME: f64 = 1e-7;

fn same(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| (x - y).abs() <= SAME * x.abs().max(y.abs()).max(1.0))
}

/// Fails when an adapter variant's log-likelihoods equal its reference's (`base`, or `rag` for
/// `adapter+rag`) on every item it sent to a model other than the base, when both ran
/// (lm-evaluation-harness#2432: vLLM + LoRA scored "as if there was no adapter").
pub(crate) fn adapters_applied(plans: &[Plan], records: &[ItemRecord], base: &str) -> Result<()> {
    let mut by_variant: HashMap<&str, HashMap<&str, &ItemRecord>> = HashMap::new();
    for record in records {
        by_variant
            .entry(record.variant.as_str())
            .or_default()
            .insert(record.id.as_str(), record);
    }
    for plan in plans {
        let reference = match plan.kind {
            Kind::Named(_) | Kind::OwnAdapter => BASE,
            Kind::AdapterRag => RAG,
            _ => continue,
        };
        let (Some(mine), Some(theirs)) = (
            by_variant.get(plan.name.as_str()),
            by_variant.get(reference),
        ) else {
            continue;
        };
        let mut compared = 0;
        let mut identical = 0;
        for (id, record) in mine {
            let Some(other) = theirs.get(id) else {
                continue;
            };
            let scored = |r: &ItemRecord| r.scoring == Scoring::Loglikelihood;
            if record.model == base || !scored(record) || !scored(other) {
                continue;
            }
            compared += 1;
            if same(&record.loglikelihoods, &other.loglikelihoods) {
                identical += 1;
            }
        }
        if compared > 0 && identical == compared {
            return Err(EvalError::AdapterIgnored {
                variant: plan.name.clone(),
                reference: reference.to_string(),
                items: compared,
            });
        }
    }
    Ok(())
}

/// What a reader should know about how the variants were answered: domains scored on the base
/// for want of an adapter, and where the router sent `auto`'s items.
pub(crate) fn variant_notes(plans: &[Plan], records: &[ItemRecord], base: &str) -> Vec<String> {
    let mut notes = Vec::new();
    for plan in plans {
        let mine: Vec<&ItemRecord> = records.iter().filter(|r| r.variant == plan.name).collect();
        match plan.kind {
            Kind::OwnAdapter | Kind::AdapterRag => {
                let mut on_base: BTreeMap<&str, usize> = BTreeMap::new();
                for record in mine.iter().filter(|r| r.model == base) {
                    *on_base.entry(record.domain.as_str()).or_default() += 1;
                }
                for (domain, count) in on_base {
                    notes.push(format!(
                        "{}: no adapter named {domain:?} is served; its {count} items were \
                         scored on the base model",
                        plan.name
                    ));
                }
            }
            Kind::Auto => {
                let routed = mine.iter().filter(|r| r.model != base).count();
                let own = mine
                    .iter()
                    .filter(|r| r.routed_domain.as_deref() == Some(r.domain.as_str()))
                    .count();
                notes.push(format!(
                    "{}: the router sent {routed} of {} items to an adapter; it picked the \
                     item's own domain for {own}",
                    plan.name,
                    mine.len()
                ));
            }
            _ => {}
        }
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(variant: &str, model: &str, lls: &[f64]) -> ItemRecord {
        ItemRecord {
            correct: true,
            gold: Some(0),
            predicted: Some(0),
            correct_norm: Some(true),
            loglikelihoods: lls.to_vec(),
            ..ItemRecord::unscored("1", "biology", variant, model, Scoring::Loglikelihood)
        }
    }

    #[test]
    fn identical_adapter_scores_fail_and_different_ones_pass() {
        let plans = [
            Plan {
                name: "base".into(),
                kind: Kind::Base,
            },
            Plan {
                name: "a".into(),
                kind: Kind::Named("a".into()),
            },
        ];
        let ignored = [
            record("base", "m", &[-1.0, -2.0]),
            record("a", "a", &[-1.0, -2.0]),
        ];
        let err = adapters_applied(&plans, &ignored, "m")
            .expect_err("ignored")
            .to_string();
        assert!(
            err.contains("ignored the adapter") && err.contains("\"a\""),
            "{err}"
        );
        let applied = [
            record("base", "m", &[-1.0, -2.0]),
            record("a", "a", &[-1.0, -2.1]),
        ];
        adapters_applied(&plans, &applied, "m").expect("differs");
        // Without the base run there is nothing to compare.
        adapters_applied(&plans, &ignored[1..], "m").expect("no reference");
    }
}

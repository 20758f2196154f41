//! The gate's decision from the per-domain deltas.

use serde::{Deserialize, Serialize};

use super::{DomainDelta, Thresholds};

/// What `eval compare` concludes, decided in this order:
///
/// 1. **Regression** (exit 1): some domain (or overall) has the candidate below `floor` × the
///    baseline's accuracy *and* the drop is significant by the exact McNemar test
///    (`p < alpha`, more items lost than gained). A drop below the floor that is not
///    significant is not called a regression, because with ~50 items per domain one or two
///    flipped answers cross a 95% floor by chance; it still blocks promotion (rule 2).
/// 2. **Promote** (exit 0): the target gains at least `min_gain` points, the gain is
///    significant (`p < alpha`), and no domain is below the floor, significant or not.
/// 3. **NoGain** (exit 2): the whole 95% interval of the target's delta lies below
///    `min_gain`: enough items to tell that the candidate does not gain what is asked.
/// 4. **Inconclusive** (exit 3): anything else; too few items to tell either way.
///
/// Exit codes other than 0 all fail a CI gate; they differ so that scripts can tell "worse" from
/// "not better" from "measure more".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Significant gain of at least `min_gain` on the target, nothing below the floor.
    Promote,
    /// A domain fell significantly below the floor.
    Regression,
    /// The target's gain is known to be below `min_gain`.
    NoGain,
    /// Too few items to tell.
    Inconclusive,
}

impl Verdict {
    /// The process exit code: 0 promote, 1 regression, 2 no gain, 3 inconclusive.
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Promote => 0,
            Verdict::Regression => 1,
            Verdict::NoGain => 2,
            Verdict::Inconclusive => 3,
        }
    }

    /// Its name in reports: `promote`, `regression`, `no gain`, `inconclusive`.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Promote => "promote",
            Verdict::Regression => "regression",
            Verdict::NoGain => "no gain",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

/// Decides, with the reasons in sentences. `domains` holds a row named `target` (the caller
/// resolved it against them); a missing one reads as "nothing measured": inconclusive.
pub(super) fn decide(
    domains: &[DomainDelta],
    target: &str,
    t: &Thresholds,
) -> (Verdict, Vec<String>) {
    let regressions: Vec<String> = domains
        .iter()
        .filter(|d| d.regression)
        .map(|d| floor_sentence(d, t, "significantly"))
        .collect();
    if !regressions.is_empty() {
        return (Verdict::Regression, regressions);
    }
    let Some(goal) = domains.iter().find(|d| d.domain == target) else {
        return (
            Verdict::Inconclusive,
            vec![format!("no paired item measures the target {target:?}")],
        );
    };
    let breaches: Vec<String> = domains
        .iter()
        .filter(|d| d.below_floor)
        .map(|d| floor_sentence(d, t, "not significantly"))
        .collect();
    let enough_gain = goal.delta_points >= t.min_gain && goal.delta_points > 0.0;
    let significant = goal.p_value < t.alpha;
    let gain = gain_sentence(goal, t);
    if enough_gain && significant && breaches.is_empty() {
        return (Verdict::Promote, vec![gain]);
    }
    if goal.delta_ci95_points[1] < t.min_gain {
        let reason = format!(
            "{gain}; its 95% interval [{:+.1}, {:+.1}] lies below +{:.1}",
            goal.delta_ci95_points[0], goal.delta_ci95_points[1], t.min_gain
        );
        return (Verdict::NoGain, vec![reason]);
    }
    let mut reasons = vec![gain];
    if !enough_gain {
        reasons.push(format!(
            "the gain is below +{:.1} points but the interval reaches it: more items needed",
            t.min_gain
        ));
    } else if !significant {
        reasons.push(format!(
            "the gain is not significant ({} ≥ {}): more items needed",
            p_clause(goal.p_value),
            t.alpha
        ));
    }
    reasons.extend(breaches);
    (Verdict::Inconclusive, reasons)
}

fn gain_sentence(d: &DomainDelta, t: &Thresholds) -> String {
    format!(
        "target {}: {:.1} → {:.1} ({:+.1} points, {}, {} paired items; +{:.1} needed at p < {})",
        d.domain,
        100.0 * d.baseline_accuracy,
        100.0 * d.candidate_accuracy,
        d.delta_points,
        p_clause(d.p_value),
        d.n,
        t.min_gain,
        t.alpha
    )
}

fn floor_sentence(d: &DomainDelta, t: &Thresholds, how: &str) -> String {
    format!(
        "{}: {:.1} → {:.1} ({:+.1} points) is below {:.0}% of the baseline, {how} ({})",
        d.domain,
        100.0 * d.baseline_accuracy,
        100.0 * d.candidate_accuracy,
        d.delta_points,
        100.0 * t.floor,
        p_clause(d.p_value)
    )
}

/// "p = 0.0386", or "p < 0.0001" for tiny ones.
fn p_clause(p: f64) -> String {
    if p < 1e-4 {
        "p < 0.0001".to_string()
    } else {
        format!("p = {p:.4}")
    }
}

/// A p-value for people: four decimals, or "<0.0001".
pub(super) fn format_p(p: f64) -> String {
    if p < 1e-4 {
        "<0.0001".to_string()
    } else {
        format!("{p:.4}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(domain: &str, delta: f64, p: f64, ci: [f64; 2], below: bool, reg: bool) -> DomainDelta {
        DomainDelta {
            domain: domain.into(),
            n: 100,
            baseline_accuracy: 0.5,
            candidate_accuracy: 0.5 + delta / 100.0,
            delta_points: delta,
            baseline_only_correct: 0,
            candidate_only_correct: 0,
            p_value: p,
            delta_ci95_points: ci,
            below_floor: below,
            regression: reg,
        }
    }

    #[test]
    fn rules_in_order() {
        let t = Thresholds::default();
        let gain = row("bio", 10.0, 0.001, [5.5, 14.0], false, false);
        let calm = row("hist", 0.0, 1.0, [-3.0, 3.0], false, false);
        let fell = row("hist", -20.0, 0.001, [-28.0, -12.0], true, true);
        let wobble = row("hist", -4.0, 0.5, [-10.0, 2.0], true, false);
        let decide_on = |rows: &[DomainDelta]| decide(rows, "bio", &t).0;
        assert_eq!(decide_on(&[gain.clone(), calm.clone()]), Verdict::Promote);
        assert_eq!(decide_on(&[gain.clone(), fell]), Verdict::Regression);
        assert_eq!(decide_on(&[gain.clone(), wobble]), Verdict::Inconclusive);
        let small = row("bio", 1.0, 0.6, [-2.0, 4.0], false, false);
        assert_eq!(decide_on(&[small, calm.clone()]), Verdict::NoGain);
        let unsure = row("bio", 10.0, 0.2, [-3.0, 22.0], false, false);
        assert_eq!(decide_on(&[unsure, calm.clone()]), Verdict::Inconclusive);
        // A significant gain smaller than asked, whose interval still reaches it.
        let modest = row("bio", 3.0, 0.01, [1.0, 6.0], false, false);
        assert_eq!(decide_on(&[modest, calm.clone()]), Verdict::Inconclusive);
        // min_gain 0 never promotes a significant drop.
        let zero = Thresholds { min_gain: 0.0, ..t };
        let drop = row("bio", -10.0, 0.001, [-15.0, -5.0], false, false);
        assert_eq!(decide(&[drop], "bio", &zero).0, Verdict::NoGain);
        assert_eq!(decide(&[calm], "bio", &t).0, Verdict::Inconclusive);
    }

    #[test]
    fn exit_codes_and_p_format() {
        let codes: Vec<u8> = [
            Verdict::Promote,
            Verdict::Regression,
            Verdict::NoGain,
            Verdict::Inconclusive,
        ]
        .map(Verdict::exit_code)
        .to_vec();
        assert_eq!(codes, [0, 1, 2, 3]);
        assert_eq!(format_p(0.038574), "0.0386");
        assert_eq!(format_p(1e-7), "<0.0001");
        assert_eq!(p_clause(0.5), "p = 0.5000");
        assert_eq!(p_clause(1e-7), "p < 0.0001");
    }
}

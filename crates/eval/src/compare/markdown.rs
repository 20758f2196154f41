//! The comparison as Markdown, for a terminal, a CI summary or a pull-request comment.

use std::fmt::Write as _;

use super::verdict::format_p;
use super::{Comparison, DomainDelta};

/// The verdict, its reasons, and one row per domain (then overall) with both accuracies, the
/// delta, its interval and the McNemar p-value.
pub fn render_markdown(c: &Comparison) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "**Verdict: {}** (exit {}): `{}` ({}) against `{}` ({}), target `{}`\n",
        c.verdict.label(),
        c.exit_code,
        c.candidate.variant,
        c.candidate.path,
        c.baseline.variant,
        c.baseline.path,
        c.target
    );
    for reason in &c.reasons {
        let _ = writeln!(out, "- {reason}");
    }
    let _ = writeln!(
        out,
        "\n{} paired items ({} only in the baseline, {} only in the candidate, left out); \
         floor {:.0}% of baseline, alpha {}, {} bootstrap resamples (seed {}).\n",
        c.paired,
        c.only_in_baseline,
        c.only_in_candidate,
        100.0 * c.thresholds.floor,
        c.thresholds.alpha,
        c.thresholds.bootstrap_iterations,
        c.thresholds.seed
    );
    out.push_str("| domain | n | baseline | candidate | Δ points | 95% CI of Δ | McNemar p | |\n");
    out.push_str("|---|---:|---:|---:|---:|---|---:|---|\n");
    for d in &c.domains {
        let _ = writeln!(
            out,
            "| {} | {} | {:.1} | {:.1} | {:+.1} | [{:+.1}, {:+.1}] | {} | {} |",
            d.domain,
            d.n,
            100.0 * d.baseline_accuracy,
            100.0 * d.candidate_accuracy,
            d.delta_points,
            d.delta_ci95_points[0],
            d.delta_ci95_points[1],
            format_p(d.p_value),
            notes(d, &c.target)
        );
    }
    out
}

fn notes(d: &DomainDelta, target: &str) -> String {
    let mut notes = Vec::new();
    if d.domain == target {
        notes.push("target");
    }
    if d.regression {
        notes.push("regression");
    } else if d.below_floor {
        notes.push("below floor");
    }
    notes.join(", ")
}

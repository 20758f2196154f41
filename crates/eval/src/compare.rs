//! `switchboard eval compare`: is a candidate (an adapter, a new checkpoint) better than a
//! baseline on its target domain without breaking the others?
//!
//! Both runs answer the same items, so the comparison is paired: records are matched by item
//! id, and each domain gets the accuracy of both, the delta in points, the exact McNemar p-value
//! and a paired-bootstrap 95% interval of the delta. Items found in one run only are counted and
//! left out. The verdict and its exit code follow the rules documented on [`Verdict`].

mod markdown;
mod verdict;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{EvalError, Result};
use crate::results::{write_atomic, EvalResults, ItemRecord, OVERALL};
use crate::stats::{mcnemar_exact, paired_bootstrap};

pub use markdown::render_markdown;
pub use verdict::Verdict;

/// The flags of `switchboard eval compare`.
#[derive(Debug, Clone, clap::Args)]
pub struct CompareArgs {
    /// Results of the accepted baseline (`eval run --out`).
    #[arg(long)]
    pub baseline: PathBuf,
    /// Results of the candidate; may be the baseline file, with two of its variants.
    #[arg(long)]
    pub candidate: PathBuf,
    /// The domain the candidate should improve [default: the candidate variant when it names
    /// a domain, else overall].
    #[arg(long)]
    pub target: Option<String>,
    /// The variant to compare in both files [default: each file's only variant].
    #[arg(long, conflicts_with_all = ["baseline_variant", "candidate_variant"])]
    pub variant: Option<String>,
    /// The baseline's variant (e.g. `base`).
    #[arg(long)]
    pub baseline_variant: Option<String>,
    /// The candidate's variant (e.g. `biology`).
    #[arg(long)]
    pub candidate_variant: Option<String>,
    /// Gain on the target domain needed to promote, in accuracy points.
    #[arg(long, default_value_t = 5.0)]
    pub min_gain: f64,
    /// A domain regresses when the candidate falls below this share of the baseline's accuracy.
    #[arg(long, default_value_t = 0.95)]
    pub floor: f64,
    /// Significance level of the McNemar tests.
    #[arg(long, default_value_t = 0.05)]
    pub alpha: f64,
    /// Bootstrap resamples for the intervals of the deltas.
    #[arg(long, default_value_t = 10_000)]
    pub bootstrap: usize,
    /// Seed of the bootstrap, so that the same files give the same report.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Also write the comparison as JSON here (atomically).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// The gate's settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// Gain on the target needed to promote, in points (5 = +5 percentage points).
    pub min_gain: f64,
    /// Share of the baseline's accuracy below which a domain has fallen (0.95).
    pub floor: f64,
    /// Significance level of the McNemar tests (0.05).
    pub alpha: f64,
    /// Bootstrap resamples.
    pub bootstrap_iterations: usize,
    /// Bootstrap seed.
    pub seed: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            min_gain: 5.0,
            floor: 0.95,
            alpha: 0.05,
            bootstrap_iterations: 10_000,
            seed: 0,
        }
    }
}

impl CompareArgs {
    /// The gate's settings given by the flags.
    pub fn thresholds(&self) -> Thresholds {
        Thresholds {
            min_gain: self.min_gain,
            floor: self.floor,
            alpha: self.alpha,
            bootstrap_iterations: self.bootstrap,
            seed: self.seed,
        }
    }
}

/// One side of a comparison, as input: a results file and, optionally, the variant to use.
#[derive(Debug, Clone, Copy)]
pub struct Side<'a> {
    /// Where the results were read from (named in errors and in the report).
    pub path: &'a Path,
    /// The results.
    pub results: &'a EvalResults,
    /// The variant; `None` means the file's only one.
    pub variant: Option<&'a str>,
}

/// One side of a comparison, as reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRef {
    /// The results file.
    pub path: String,
    /// Its suite.
    pub suite: String,
    /// Its model.
    pub model: String,
    /// The variant compared.
    pub variant: String,
}

/// Baseline and candidate on one domain (or [`OVERALL`]), over the paired items.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DomainDelta {
    /// The domain, or `overall`.
    pub domain: String,
    /// Paired items.
    pub n: usize,
    /// Baseline accuracy, 0..=1.
    pub baseline_accuracy: f64,
    /// Candidate accuracy, 0..=1.
    pub candidate_accuracy: f64,
    /// `candidate - baseline`, in percentage points.
    pub delta_points: f64,
    /// Items only the baseline got right (McNemar's b).
    pub baseline_only_correct: usize,
    /// Items only the candidate got right (McNemar's c).
    pub candidate_only_correct: usize,
    /// Two-sided exact McNemar p-value.
    pub p_value: f64,
    /// Paired-bootstrap 95% interval of the delta, in points.
    pub delta_ci95_points: [f64; 2],
    /// The candidate is below `floor` × the baseline's accuracy.
    pub below_floor: bool,
    /// Below the floor and the drop is significant (`p < alpha`): a regression.
    pub regression: bool,
}

/// The outcome of `eval compare`, as printed and saved with `--out`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// The baseline.
    pub baseline: RunRef,
    /// The candidate.
    pub candidate: RunRef,
    /// The domain the candidate should improve (or `overall`).
    pub target: String,
    /// The gate's settings.
    pub thresholds: Thresholds,
    /// Per domain, sorted, then `overall`.
    pub domains: Vec<DomainDelta>,
    /// Items in both runs.
    pub paired: usize,
    /// Items of the baseline variant missing from the candidate's (left out).
    pub only_in_baseline: usize,
    /// Items of the candidate variant missing from the baseline's (left out).
    pub only_in_candidate: usize,
    /// The decision.
    pub verdict: Verdict,
    /// The process exit code of the decision.
    pub exit_code: u8,
    /// Why, in sentences.
    pub reasons: Vec<String>,
}

impl Comparison {
    /// The target domain's row.
    pub fn target_delta(&self) -> Option<&DomainDelta> {
        self.domains.iter().find(|d| d.domain == self.target)
    }

    /// Writes the comparison as pretty JSON, atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(|e| EvalError::BadFile {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        write_atomic(path, &json)
    }
}

/// Runs `eval compare`: reads both files, compares, writes `--out` if given. The caller prints
/// [`render_markdown`] and exits with [`Comparison::exit_code`].
pub fn run(args: &CompareArgs) -> Result<Comparison> {
    let baseline = EvalResults::load(&args.baseline)?;
    let candidate = EvalResults::load(&args.candidate)?;
    let either = args.variant.as_deref();
    let comparison = compare(
        Side {
            path: &args.baseline,
            results: &baseline,
            variant: either.or(args.baseline_variant.as_deref()),
        },
        Side {
            path: &args.candidate,
            results: &candidate,
            variant: either.or(args.candidate_variant.as_deref()),
        },
        args.target.as_deref(),
        &args.thresholds(),
    )?;
    if let Some(out) = &args.out {
        comparison.save(out)?;
    }
    Ok(comparison)
}

/// Compares two runs (or two variants of one run) item by item. `target` defaults to the
/// candidate variant when it names a domain of the compared items, else [`OVERALL`].
pub fn compare(
    baseline: Side<'_>,
    candidate: Side<'_>,
    target: Option<&str>,
    thresholds: &Thresholds,
) -> Result<Comparison> {
    let baseline_ref = run_ref(baseline)?;
    let candidate_ref = run_ref(candidate)?;
    let base_records = records_by_id(baseline, &baseline_ref.variant)?;
    let cand_records = records_by_id(candidate, &candidate_ref.variant)?;
    let pairs = pair(&base_records, &cand_records);
    if pairs.is_empty() {
        return Err(EvalError::NoCommonItems {
            baseline: baseline.path.to_path_buf(),
            baseline_variant: baseline_ref.variant,
            candidate: candidate.path.to_path_buf(),
            candidate_variant: candidate_ref.variant,
        });
    }
    let domains = domain_deltas(&pairs, thresholds);
    let target = resolve_target(target, &candidate_ref.variant, &domains)?;
    let (verdict, reasons) = verdict::decide(&domains, &target, thresholds);
    Ok(Comparison {
        baseline: baseline_ref,
        candidate: candidate_ref,
        target,
        thresholds: *thresholds,
        paired: pairs.len(),
        only_in_baseline: base_records.len() - pairs.len(),
        only_in_candidate: cand_records.len() - pairs.len(),
        domains,
        exit_code: verdict.exit_code(),
        verdict,
        reasons,
    })
}

fn run_ref(side: Side<'_>) -> Result<RunRef> {
    Ok(RunRef {
        path: side.path.display().to_string(),
        suite: side.results.suite.clone(),
        model: side.results.model.clone(),
        variant: choose_variant(side)?,
    })
}

/// The variant asked for, or the file's only one; errors name the variants there are.
fn choose_variant(side: Side<'_>) -> Result<String> {
    let available: BTreeSet<&str> = side
        .results
        .items
        .iter()
        .map(|r| r.variant.as_str())
        .collect();
    if available.is_empty() {
        return Err(EvalError::BadFile {
            path: side.path.to_path_buf(),
            reason: "no per-item records (`items`); a paired comparison needs them".to_string(),
        });
    }
    let available_list = || available.iter().map(|v| v.to_string()).collect();
    match side.variant {
        Some(wanted) if available.contains(wanted) => Ok(wanted.to_string()),
        Some(wanted) => Err(EvalError::UnknownVariant {
            path: side.path.to_path_buf(),
            requested: wanted.to_string(),
            available: available_list(),
        }),
        None if available.len() == 1 => Ok(available_list().remove(0)),
        None => Err(EvalError::AmbiguousVariant {
            path: side.path.to_path_buf(),
            available: available_list(),
        }),
    }
}

fn records_by_id<'a>(side: Side<'a>, variant: &str) -> Result<BTreeMap<&'a str, &'a ItemRecord>> {
    let mut by_id = BTreeMap::new();
    for record in side.results.items.iter().filter(|r| r.variant == variant) {
        if by_id.insert(record.id.as_str(), record).is_some() {
            return Err(EvalError::BadFile {
                path: side.path.to_path_buf(),
                reason: format!(
                    "item {:?} is recorded twice for variant {variant:?}",
                    record.id
                ),
            });
        }
    }
    Ok(by_id)
}

/// One paired item: its domain (the baseline's) and whether each side got it right.
struct Pair<'a> {
    domain: &'a str,
    baseline: bool,
    candidate: bool,
}

fn pair<'a>(
    baseline: &BTreeMap<&'a str, &'a ItemRecord>,
    candidate: &BTreeMap<&'a str, &'a ItemRecord>,
) -> Vec<Pair<'a>> {
    baseline
        .iter()
        .filter_map(|(id, base)| {
            candidate.get(id).map(|cand| Pair {
                domain: base.domain.as_str(),
                baseline: base.correct,
                candidate: cand.correct,
            })
        })
        .collect()
}

/// One row per domain, sorted, then [`OVERALL`].
fn domain_deltas(pairs: &[Pair<'_>], thresholds: &Thresholds) -> Vec<DomainDelta> {
    let mut groups: BTreeMap<&str, Vec<(bool, bool)>> = BTreeMap::new();
    for p in pairs {
        groups
            .entry(p.domain)
            .or_default()
            .push((p.baseline, p.candidate));
    }
    let all: Vec<(bool, bool)> = pairs.iter().map(|p| (p.baseline, p.candidate)).collect();
    groups
        .iter()
        .filter(|(domain, _)| **domain != OVERALL)
        .map(|(domain, outcomes)| delta(domain, outcomes, thresholds))
        .chain(std::iter::once(delta(OVERALL, &all, thresholds)))
        .collect()
}

/// Tolerance of the floor test, so that 0.76 is not "below" 0.95 × 0.8 by rounding.
const FLOOR_EPSILON: f64 = 1e-9;

fn delta(domain: &str, outcomes: &[(bool, bool)], thresholds: &Thresholds) -> DomainDelta {
    let n = outcomes.len();
    let count = |f: fn(&(bool, bool)) -> bool| outcomes.iter().filter(|o| f(o)).count();
    let baseline_right = count(|o| o.0);
    let candidate_right = count(|o| o.1);
    let b = count(|o| o.0 && !o.1);
    let c = count(|o| !o.0 && o.1);
    let share = |k: usize| if n == 0 { 0.0 } else { k as f64 / n as f64 };
    let (baseline_accuracy, candidate_accuracy) = (share(baseline_right), share(candidate_right));
    let p_value = mcnemar_exact(b, c);
    let ci = paired_bootstrap(outcomes, thresholds.bootstrap_iterations, thresholds.seed);
    let below_floor = candidate_accuracy < thresholds.floor * baseline_accuracy - FLOOR_EPSILON;
    DomainDelta {
        domain: domain.to_string(),
        n,
        baseline_accuracy,
        candidate_accuracy,
        delta_points: 100.0 * (candidate_accuracy - baseline_accuracy),
        baseline_only_correct: b,
        candidate_only_correct: c,
        p_value,
        delta_ci95_points: [100.0 * ci[0], 100.0 * ci[1]],
        below_floor,
        regression: below_floor && b > c && p_value < thresholds.alpha,
    }
}

fn resolve_target(
    requested: Option<&str>,
    candidate_variant: &str,
    domains: &[DomainDelta],
) -> Result<String> {
    let known = |name: &str| domains.iter().any(|d| d.domain == name);
    match requested {
        Some(name) if known(name) => Ok(name.to_string()),
        Some(name) => Err(EvalError::UnknownDomain {
            requested: name.to_string(),
            available: domains.iter().map(|d| d.domain.clone()).collect(),
        }),
        None if known(candidate_variant) => Ok(candidate_variant.to_string()),
        None => Ok(OVERALL.to_string()),
    }
}

#[cfg(test)]
mod tests;

//! `data split`: seeded train/validation/test split, optionally stratified, with every
//! near-duplicate group inside one split.
//!
//! The algorithm:
//! 1. Group records: identical or near-duplicate texts (what the trainer sees, normalised; see
//!    [`super::neardup`]) are joined by union-find; a group is never divided.
//! 2. Stratum of a group: the stratum (`--stratify-by` field's value) of its first record in
//!    input order; without stratification everything is one stratum.
//! 3. Order of groups inside a stratum: by SplitMix64(seed, smallest text hash of the group),
//!    a hash-based shuffle that depends only on the seed and the records' texts, not on the
//!    input order or a random-number library's version.
//! 4. Each group in that order goes to the split whose count is furthest below its target
//!    (ratio × stratum size; ties to the earlier split; a zero ratio gets nothing). With groups of
//!    one record every split ends within one record of its target in every stratum.
//!
//! Records keep their input order inside each split file, so the same seed and inputs give
//! byte-identical files. Every split file is written, empty for a zero ratio, so a directory
//! never keeps a stale file from an earlier run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::fields::{trainer_text, FieldPath};
use super::neardup::{group_near_duplicates, normalised_words, splitmix64, stable_hash};
use super::{write_objects, NearDupConfig, Record, RecordError, Result};

/// The splits, in order: file `<name>.jsonl` each.
pub const SPLIT_NAMES: [&str; 3] = ["train", "validation", "test"];

/// The stratum of records without the stratifying field.
pub const NO_STRATUM: &str = "(none)";

/// Settings of a split.
#[derive(Debug, Clone)]
pub struct SplitConfig {
    /// Train, validation, test shares; normalised to sum to one.
    pub ratios: [f64; 3],
    /// Seed of the shuffle.
    pub seed: u64,
    /// Field whose value names the stratum (`domain`, `source`, any dotted path).
    pub stratify_by: Option<FieldPath>,
    /// Near-duplicate grouping.
    pub near_dup: NearDupConfig,
}

/// Parses `0.8,0.1,0.1` (two values: no test split); values are non-negative and normalised.
pub fn parse_ratios(spec: &str) -> Result<[f64; 3]> {
    let bad = |reason: String| RecordError::BadOption {
        option: "--ratios",
        reason,
    };
    let values = spec
        .split(',')
        .map(|v| {
            v.trim()
                .parse::<f64>()
                .map_err(|_| bad(format!("{v:?} is not a number")))
        })
        .collect::<Result<Vec<f64>>>()?;
    let mut ratios = [0.0; 3];
    match values.len() {
        2 | 3 => ratios[..values.len()].copy_from_slice(&values),
        n => return Err(bad(format!("expected 2 or 3 values, got {n}"))),
    }
    if ratios.iter().any(|r| !r.is_finite() || *r < 0.0) {
        return Err(bad(format!("{spec}: ratios must be non-negative numbers")));
    }
    let sum: f64 = ratios.iter().sum();
    if sum <= 0.0 {
        return Err(bad(format!("{spec}: ratios must not all be zero")));
    }
    Ok(ratios.map(|r| r / sum))
}

/// Counts of one split report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SplitCounts {
    /// Records per split, in [`SPLIT_NAMES`] order.
    pub records: [usize; 3],
    /// Groups per split.
    pub groups: [usize; 3],
}

/// What a split did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SplitReport {
    /// Records read.
    pub records: usize,
    /// Groups (a record without duplicates is a group of one).
    pub groups: usize,
    /// Groups of more than one record (exact or near duplicates).
    pub duplicate_groups: usize,
    /// Records in those groups.
    pub records_in_duplicate_groups: usize,
    /// The normalised ratios.
    pub ratios: [f64; 3],
    /// The seed.
    pub seed: u64,
    /// Per split.
    pub totals: SplitCounts,
    /// Per stratum (one entry, `(all)`, without stratification).
    pub strata: BTreeMap<String, SplitCounts>,
}

/// For each record the split it goes to (index into [`SPLIT_NAMES`]), and the report.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitAssignment {
    /// `split_of[i]`: split of `records[i]`.
    pub split_of: Vec<usize>,
    /// The counts.
    pub report: SplitReport,
}

fn stratum_of(record: &Record, by: Option<&FieldPath>) -> String {
    match by {
        None => "(all)".to_string(),
        Some(path) => {
            let values = path.strings(&record.object);
            if values.is_empty() {
                NO_STRATUM.to_string()
            } else {
                values.join(",")
            }
        }
    }
}

/// Assigns every record to a split (see the module documentation for the algorithm).
pub fn split_records(records: &[Record], config: &SplitConfig) -> Result<SplitAssignment> {
    let ratios = {
        let sum: f64 = config.ratios.iter().sum();
        if sum <= 0.0 || sum.is_nan() || config.ratios.iter().any(|r| *r < 0.0 || !r.is_finite()) {
            return Err(RecordError::BadOption {
                option: "--ratios",
                reason: format!("{:?}: must be non-negative and not all zero", config.ratios),
            });
        }
        config.ratios.map(|r| r / sum)
    };
    let texts: Vec<String> = records.iter().map(|r| trainer_text(&r.example)).collect();
    let group_of = group_near_duplicates(&texts, &config.near_dup)?;

    // Group id (smallest member) -> members, in input order.
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, &g) in group_of.iter().enumerate() {
        groups.entry(g).or_default().push(i);
    }
    let strata_of: Vec<String> = records
        .iter()
        .map(|r| stratum_of(r, config.stratify_by.as_ref()))
        .collect();
    // Stratum -> (shuffle key, group id).
    let mut by_stratum: BTreeMap<&str, Vec<(u64, usize)>> = BTreeMap::new();
    for (&id, members) in &groups {
        let content = members
            .iter()
            .map(|&i| stable_hash(normalised_words(&texts[i]).join(" ").as_bytes()))
            .min()
            .unwrap_or(0);
        let key = splitmix64(splitmix64(config.seed) ^ content);
        by_stratum
            .entry(strata_of[id].as_str())
            .or_default()
            .push((key, id));
    }

    let mut split_of = vec![0usize; records.len()];
    for order in by_stratum.values_mut() {
        order.sort_unstable();
        let size: usize = order.iter().map(|(_, id)| groups[id].len()).sum();
        let targets = ratios.map(|r| r * size as f64);
        let mut assigned = [0usize; 3];
        for (_, id) in order.iter() {
            let members = &groups[id];
            let mut best = None;
            for split in 0..3 {
                if ratios[split] <= 0.0 {
                    continue;
                }
                let deficit = targets[split] - assigned[split] as f64;
                if best.is_none_or(|(_, d)| deficit > d) {
                    best = Some((split, deficit));
                }
            }
            let split = best.map_or(0, |(s, _)| s);
            assigned[split] += members.len();
            for &m in members {
                split_of[m] = split;
            }
        }
    }

    let mut totals = SplitCounts::default();
    let mut strata: BTreeMap<String, SplitCounts> = BTreeMap::new();
    let (mut duplicate_groups, mut records_in_duplicate_groups) = (0, 0);
    for (&id, members) in &groups {
        let split = split_of[id];
        totals.groups[split] += 1;
        if members.len() > 1 {
            duplicate_groups += 1;
            records_in_duplicate_groups += members.len();
        }
        strata.entry(strata_of[id].clone()).or_default().groups[split] += 1;
    }
    for (i, &split) in split_of.iter().enumerate() {
        totals.records[split] += 1;
        // Per stratum by each record's own stratum (a group may mix strata).
        strata.entry(strata_of[i].clone()).or_default().records[split] += 1;
    }
    Ok(SplitAssignment {
        split_of,
        report: SplitReport {
            records: records.len(),
            groups: groups.len(),
            duplicate_groups,
            records_in_duplicate_groups,
            ratios,
            seed: config.seed,
            totals,
            strata,
        },
    })
}

/// Writes `<out_dir>/{train,validation,test}.jsonl` (each atomically, records in input order,
/// as written in the input); returns the paths.
pub fn write_splits(
    records: &[Record],
    assignment: &SplitAssignment,
    out_dir: &Path,
) -> Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    for (split, name) in SPLIT_NAMES.iter().enumerate() {
        let path = out_dir.join(format!("{name}.jsonl"));
        let chosen = records
            .iter()
            .zip(&assignment.split_of)
            .filter(|(_, &s)| s == split)
            .map(|(r, _)| &r.object);
        write_objects(&path, chosen)?;
        paths.push(path);
    }
    Ok(paths)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::records::scan_text;

    fn records(n: usize) -> Vec<Record> {
        let text: Vec<String> = (0..n)
            .map(|i| {
                serde_json::json!({
                    "instruction": format!("question number {i} about topic {}", i * 7919 % 1000),
                    "output": format!("answer {i}"),
                    "domain": if i % 3 == 0 { "math" } else { "history" },
                })
                .to_string()
            })
            .collect();
        scan_text(Path::new("x.jsonl"), &text.join("\n")).0
    }

    fn config(seed: u64) -> SplitConfig {
        SplitConfig {
            ratios: [0.8, 0.1, 0.1],
            seed,
            stratify_by: Some(FieldPath::parse("domain").unwrap()),
            near_dup: NearDupConfig::default(),
        }
    }

    #[test]
    fn ratios_parse_and_normalise() {
        assert_eq!(parse_ratios("8,1,1").unwrap(), [0.8, 0.1, 0.1]);
        assert_eq!(parse_ratios("0.9,0.1").unwrap(), [0.9, 0.1, 0.0]);
        assert!(parse_ratios("1").is_err());
        assert!(parse_ratios("0,0,0").is_err());
        assert!(parse_ratios("1,-1,1").is_err());
        assert!(parse_ratios("a,b,c").is_err());
    }

    #[test]
    fn strata_are_split_within_rounding_and_seeds_matter() {
        let records = records(100);
        let a = split_records(&records, &config(1)).unwrap();
        assert_eq!(a, split_records(&records, &config(1)).unwrap());
        let b = split_records(&records, &config(2)).unwrap();
        assert_ne!(a.split_of, b.split_of);
        for (stratum, counts) in &a.report.strata {
            let n: usize = counts.records.iter().sum();
            for (split, &count) in counts.records.iter().enumerate() {
                let target = a.report.ratios[split] * n as f64;
                assert!(
                    (count as f64 - target).abs() < 1.0,
                    "{stratum} {split}: {count} vs {target}"
                );
            }
        }
        assert_eq!(a.report.totals.records.iter().sum::<usize>(), 100);
    }

    #[test]
    fn a_zero_ratio_gets_nothing() {
        let records = records(20);
        let mut config = config(3);
        config.ratios = [0.5, 0.5, 0.0];
        config.stratify_by = None;
        let a = split_records(&records, &config).unwrap();
        assert_eq!(a.report.totals.records[2], 0);
        assert_eq!(a.report.totals.records, [10, 10, 0]);
    }
}

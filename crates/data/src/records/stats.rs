//! `data stats`: what a set of record files holds, as the trainer would see it.
//!
//! Counts by format, by `domain` and `source` (top-level keys; `(none)` without them) and by
//! top-level key; token lengths of each record rendered by the trainer's
//! [`Renderer`] (chat template, end-of-text token for plain text) before truncation, with how
//! many would be cut at `max_seq_len`; exact duplicates (the same messages, or the same text)
//! and near-duplicate groups (see [`super::neardup`]); and every line the trainer could not
//! read, with file and line.
//!
//! Percentiles are nearest-rank: p50 is the smallest length with at least half of the records at
//! or below it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;
use switchboard_engine::TextTokenizer;
use switchboard_train::{Example, Renderer};

use super::fields::trainer_text;
use super::neardup::{group_near_duplicates, multi_member_groups};
use super::{format_name, scan_records, InvalidLine, NearDupConfig, Record, Result};

/// Settings of [`compute_stats`].
#[derive(Debug, Clone)]
pub struct StatsOptions {
    /// Near-duplicate grouping.
    pub near_dup: NearDupConfig,
    /// The training sequence length, to count records longer than it.
    pub max_seq_len: usize,
}

/// Token lengths of the records.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenStats {
    /// Records tokenized.
    pub count: usize,
    /// Shortest.
    pub min: usize,
    /// Mean.
    pub mean: f64,
    /// Median (nearest rank).
    pub p50: usize,
    /// 95th percentile (nearest rank).
    pub p95: usize,
    /// Longest.
    pub max: usize,
    /// Sum of all lengths.
    pub total: usize,
    /// The limit compared against.
    pub max_seq_len: usize,
    /// Records longer than `max_seq_len` (the trainer cuts them).
    pub over_max_seq_len: usize,
    /// Records the tokenizer or chat template could not render.
    pub failed: Vec<InvalidLine>,
}

/// What a set of record files holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stats {
    /// The files read.
    pub files: Vec<PathBuf>,
    /// Records the trainer can read.
    pub records: usize,
    /// Lines it cannot.
    pub invalid: Vec<InvalidLine>,
    /// Records per format.
    pub by_format: BTreeMap<&'static str, usize>,
    /// Records per `domain`.
    pub by_domain: BTreeMap<String, usize>,
    /// Records per `source`.
    pub by_source: BTreeMap<String, usize>,
    /// Records having each top-level key.
    pub fields: BTreeMap<String, usize>,
    /// Groups of records the trainer sees identically (more than one record each).
    pub exact_duplicate_groups: usize,
    /// Redundant copies: records in those groups beyond the first of each.
    pub exact_duplicate_copies: usize,
    /// Groups of near-duplicates (more than one record each; exact duplicates included).
    pub near_duplicate_groups: usize,
    /// Records in those groups.
    pub near_duplicate_records: usize,
    /// Token lengths; `None` without a tokenizer.
    pub tokens: Option<TokenStats>,
}

fn label(record: &Record, key: &str) -> String {
    match record.object.get(key) {
        None | Some(serde_json::Value::Null) => "(none)".to_string(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// A key equal for exactly the records the trainer sees identically.
fn identity(example: &Example) -> String {
    match example {
        Example::Text(text) => format!("text\u{0}{text}"),
        Example::Chat(messages) => messages
            .iter()
            .map(|m| format!("{}\u{0}{}", m.role, m.content))
            .collect::<Vec<_>>()
            .join("\u{1}"),
    }
}

/// Nearest-rank percentile of sorted, non-empty `values`.
fn percentile(sorted: &[usize], p: f64) -> usize {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn token_stats(
    records: &[Record],
    tokenizer: TextTokenizer,
    max_seq_len: usize,
) -> Option<TokenStats> {
    // No truncation here: the point is to see how long records are before the trainer cuts.
    let renderer = Renderer::new(tokenizer, usize::MAX);
    let mut lengths = Vec::with_capacity(records.len());
    let mut failed = Vec::new();
    for record in records {
        match renderer.render(&record.example) {
            Ok(tokenized) => lengths.push(tokenized.tokens.len()),
            Err(reason) => failed.push(InvalidLine {
                path: record.path.clone(),
                line: record.line,
                reason,
            }),
        }
    }
    lengths.sort_unstable();
    let total: usize = lengths.iter().sum();
    let count = lengths.len();
    Some(TokenStats {
        count,
        min: lengths.first().copied().unwrap_or(0),
        mean: if count == 0 {
            0.0
        } else {
            total as f64 / count as f64
        },
        p50: if count == 0 {
            0
        } else {
            percentile(&lengths, 50.0)
        },
        p95: if count == 0 {
            0
        } else {
            percentile(&lengths, 95.0)
        },
        max: lengths.last().copied().unwrap_or(0),
        total,
        max_seq_len,
        over_max_seq_len: lengths.iter().filter(|&&n| n > max_seq_len).count(),
        failed,
    })
}

/// Reads `paths` leniently and counts. Only an unreadable file is an error; lines the trainer
/// cannot read are listed in [`Stats::invalid`]. Token lengths need `tokenizer`.
pub fn compute_stats(
    paths: &[PathBuf],
    tokenizer: Option<TextTokenizer>,
    options: &StatsOptions,
) -> Result<Stats> {
    let mut records = Vec::new();
    let mut invalid = Vec::new();
    for path in paths {
        let (good, bad) = scan_records(path)?;
        records.extend(good);
        invalid.extend(bad);
    }
    let mut by_format = BTreeMap::new();
    let mut by_domain = BTreeMap::new();
    let mut by_source = BTreeMap::new();
    let mut fields = BTreeMap::new();
    let mut identities: BTreeMap<String, usize> = BTreeMap::new();
    for record in &records {
        *by_format.entry(format_name(record.format)).or_default() += 1;
        *by_domain.entry(label(record, "domain")).or_default() += 1;
        *by_source.entry(label(record, "source")).or_default() += 1;
        for key in record.object.keys() {
            *fields.entry(key.clone()).or_default() += 1;
        }
        *identities.entry(identity(&record.example)).or_default() += 1;
    }
    let repeated = identities.values().filter(|&&n| n > 1);
    let exact_duplicate_groups = repeated.clone().count();
    let exact_duplicate_copies = repeated.map(|n| n - 1).sum();
    let texts: Vec<String> = records.iter().map(|r| trainer_text(&r.example)).collect();
    let (near_duplicate_groups, near_duplicate_records) =
        multi_member_groups(&group_near_duplicates(&texts, &options.near_dup)?);
    let tokens = tokenizer.and_then(|t| token_stats(&records, t, options.max_seq_len));
    Ok(Stats {
        files: paths.to_vec(),
        records: records.len(),
        invalid,
        by_format,
        by_domain,
        by_source,
        fields,
        exact_duplicate_groups,
        exact_duplicate_copies,
        near_duplicate_groups,
        near_duplicate_records,
        tokens,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<usize> = (1..=20).collect();
        assert_eq!(percentile(&v, 50.0), 10);
        assert_eq!(percentile(&v, 95.0), 19);
        assert_eq!(percentile(&[7], 95.0), 7);
    }

    #[test]
    fn counts_duplicates_and_invalid_lines_without_a_tokenizer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.jsonl");
        std::fs::write(
            &path,
            [
                r#"{"instruction": "Hi", "output": "Hello", "domain": "greet"}"#,
                r#"{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}"#,
                r#"{"text": "some text", "source": "a.md"}"#,
                r#"{"bogus": 1}"#,
            ]
            .join("\n"),
        )
        .unwrap();
        let options = StatsOptions {
            near_dup: NearDupConfig::default(),
            max_seq_len: 2048,
        };
        let stats = compute_stats(std::slice::from_ref(&path), None, &options).unwrap();
        assert_eq!(stats.records, 3);
        assert_eq!(stats.invalid.len(), 1);
        assert_eq!(stats.invalid[0].line, 4);
        assert_eq!(stats.by_format["alpaca"], 1);
        assert_eq!(stats.by_format["openai"], 1);
        assert_eq!(stats.by_domain["greet"], 1);
        assert_eq!(stats.by_domain["(none)"], 2);
        assert_eq!(stats.by_source["a.md"], 1);
        assert_eq!(stats.fields["instruction"], 1);
        assert_eq!(
            (stats.exact_duplicate_groups, stats.exact_duplicate_copies),
            (1, 1)
        );
        assert_eq!(
            (stats.near_duplicate_groups, stats.near_duplicate_records),
            (1, 2)
        );
        assert!(stats.tokens.is_none());
    }
}

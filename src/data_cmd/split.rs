//! `switchboard data split`: seeded train/validation/test files with no near-duplicate across
//! splits.

use std::path::PathBuf;

use anyhow::{Context, Result};
use switchboard_data::records::{
    self, split::parse_ratios, split::write_splits, split_records, FieldPath, NearDupConfig,
    SplitConfig, SPLIT_NAMES,
};

/// Records that are identical or near-duplicates (Jaccard of word shingles of the normalised
/// text the trainer sees ≥ --near-dup) form one group, and a group lands in one split. Groups
/// are ordered by a hash of the seed and their text, then each goes to the split furthest
/// below its share (per stratum). Same seed and inputs: byte-identical files. Every split file
/// is written (empty for a zero ratio), records in input order.
#[derive(clap::Args)]
pub struct SplitArgs {
    /// Record files (JSONL), read in order.
    #[arg(long = "in", value_name = "FILE", num_args = 1.., required = true)]
    input: Vec<PathBuf>,
    /// Directory for train.jsonl, validation.jsonl and test.jsonl.
    #[arg(long, value_name = "DIR")]
    out_dir: PathBuf,
    /// Train, validation and test shares (normalised; two values: no test split).
    #[arg(long, default_value = "0.8,0.1,0.1")]
    ratios: String,
    /// Seed of the assignment.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Split each stratum separately: `domain`, `source` or any dotted field path.
    #[arg(long, value_name = "FIELD")]
    stratify_by: Option<String>,
    /// Jaccard similarity at which two records are near-duplicates (1: exact duplicates only,
    /// after normalising case and punctuation).
    #[arg(long, default_value_t = 0.8)]
    near_dup: f64,
    /// Words per shingle for the near-duplicate test.
    #[arg(long, default_value_t = 3)]
    shingle_words: usize,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: SplitArgs) -> Result<()> {
    let config = SplitConfig {
        ratios: parse_ratios(&args.ratios)?,
        seed: args.seed,
        stratify_by: args
            .stratify_by
            .as_deref()
            .map(FieldPath::parse)
            .transpose()?,
        near_dup: NearDupConfig {
            threshold: args.near_dup,
            shingle_words: args.shingle_words,
            ..NearDupConfig::default()
        },
    };
    let records = records::read_all(&args.input).context("reading records")?;
    let assignment = split_records(&records, &config)?;
    let paths = write_splits(&records, &assignment, &args.out_dir)
        .with_context(|| format!("writing splits into {}", args.out_dir.display()))?;
    let report = &assignment.report;
    if args.json {
        let summary = serde_json::json!({ "files": paths, "report": report });
        println!("{}", serde_json::to_string_pretty(&summary)?);
        return Ok(());
    }
    println!(
        "{} records in {} groups ({} duplicate groups holding {} records), seed {}",
        report.records,
        report.groups,
        report.duplicate_groups,
        report.records_in_duplicate_groups,
        report.seed
    );
    for (split, path) in paths.iter().enumerate() {
        println!(
            "  {:<10} {:>7} records {:>7} groups  (ratio {:.3}) -> {}",
            SPLIT_NAMES[split],
            report.totals.records[split],
            report.totals.groups[split],
            report.ratios[split],
            path.display()
        );
    }
    if config.stratify_by.is_some() {
        println!("per stratum (train / validation / test records):");
        for (stratum, counts) in &report.strata {
            let [train, validation, test] = counts.records;
            println!("  {stratum:<24} {train:>7} / {validation:>7} / {test:>7}");
        }
    }
    Ok(())
}

//! `switchboard data stats`: what record files hold, as the trainer would see it.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use switchboard_data::records::{compute_stats, NearDupConfig, Stats, StatsOptions};
use switchboard_engine::TextTokenizer;
use switchboard_model::ModelSource;

/// Token lengths are those of the trainer: each record rendered with the base model's chat
/// template (plain text plus its end-of-text token), before truncation; percentiles are
/// nearest-rank. Lines the trainer cannot read are listed with file and line, and make the
/// command exit non-zero after the report.
#[derive(clap::Args)]
pub struct StatsArgs {
    /// Record files (JSONL).
    #[arg(long = "in", value_name = "FILE", num_args = 1.., required = true)]
    input: Vec<PathBuf>,
    /// Base model whose tokenizer and chat template count tokens: a checkpoint directory, a
    /// GGUF file or a hub id [default: the bundled SmolLM2-135M-Instruct].
    #[arg(long, value_name = "MODEL")]
    model: Option<String>,
    /// Training sequence length: records longer than this are counted (the trainer cuts them);
    /// capped at the model's context length as the trainer does.
    #[arg(long, default_value_t = 2048)]
    max_seq_len: usize,
    /// Skip token counting (no model needed).
    #[arg(long, conflicts_with = "model")]
    no_tokens: bool,
    /// Jaccard similarity at which two records count as near-duplicates.
    #[arg(long, default_value_t = 0.8)]
    near_dup: f64,
    /// Print the statistics as JSON.
    #[arg(long)]
    json: bool,
}

fn load_tokenizer(spec: Option<&str>, max_seq_len: usize) -> Result<(TextTokenizer, usize)> {
    let path = match spec {
        Some(spec) => crate::hub::resolve_model(spec)?,
        None => crate::serve::bundled(crate::serve::DEFAULT_MODEL),
    };
    let source = ModelSource::open(&path)
        .with_context(|| format!("opening the model {}", path.display()))?;
    let limit = max_seq_len.min(source.config().max_positions());
    let tokenizer = TextTokenizer::from_source(&source)
        .with_context(|| format!("loading the tokenizer of {}", path.display()))?;
    Ok((tokenizer, limit))
}

pub fn run(args: StatsArgs) -> Result<()> {
    let (tokenizer, max_seq_len) = if args.no_tokens {
        (None, args.max_seq_len)
    } else {
        let (tokenizer, limit) = load_tokenizer(args.model.as_deref(), args.max_seq_len)?;
        (Some(tokenizer), limit)
    };
    let options = StatsOptions {
        near_dup: NearDupConfig {
            threshold: args.near_dup,
            ..NearDupConfig::default()
        },
        max_seq_len,
    };
    let stats = compute_stats(&args.input, tokenizer, &options).context("counting records")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&stats)?);
    } else {
        print_stats(&stats);
    }
    let failed = stats.tokens.as_ref().map_or(0, |t| t.failed.len());
    if !stats.invalid.is_empty() || failed > 0 {
        let first = stats
            .invalid
            .first()
            .or_else(|| stats.tokens.as_ref().and_then(|t| t.failed.first()));
        bail!(
            "{} invalid record(s) and {failed} that could not be tokenized; first: {}",
            stats.invalid.len(),
            first.map_or_else(String::new, ToString::to_string)
        );
    }
    Ok(())
}

fn print_counts(title: &str, counts: &std::collections::BTreeMap<impl std::fmt::Display, usize>) {
    println!("{title}:");
    for (key, n) in counts {
        println!("  {key:<32} {n:>8}");
    }
}

fn print_stats(stats: &Stats) {
    let files: Vec<String> = stats
        .files
        .iter()
        .map(|f| f.display().to_string())
        .collect();
    println!(
        "{}: {} records, {} invalid lines",
        files.join(", "),
        stats.records,
        stats.invalid.len()
    );
    print_counts("by format", &stats.by_format);
    print_counts("by domain", &stats.by_domain);
    print_counts("by source", &stats.by_source);
    print_counts("fields (records having the key)", &stats.fields);
    if let Some(t) = &stats.tokens {
        println!(
            "tokens ({} records): min {}  mean {:.1}  p50 {}  p95 {}  max {}  total {}",
            t.count, t.min, t.mean, t.p50, t.p95, t.max, t.total
        );
        println!(
            "  {} longer than --max-seq-len {} (the trainer truncates them)",
            t.over_max_seq_len, t.max_seq_len
        );
        for failed in &t.failed {
            println!("  cannot tokenize {failed}");
        }
    }
    println!(
        "exact duplicates: {} groups, {} redundant copies",
        stats.exact_duplicate_groups, stats.exact_duplicate_copies
    );
    println!(
        "near-duplicates: {} groups holding {} records",
        stats.near_duplicate_groups, stats.near_duplicate_records
    );
    for invalid in &stats.invalid {
        println!("invalid {invalid}");
    }
}

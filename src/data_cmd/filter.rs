//! `switchboard data filter`: keep the records that match keyword, regex and length rules.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::ValueEnum;
use switchboard_data::jsonl::read_objects;
use switchboard_data::records::{
    self, filter_lines, FieldPath, FilterRules, KeywordMode, LengthUnit,
};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Mode {
    /// At least one keyword occurs.
    Any,
    /// Every keyword occurs.
    All,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Unit {
    /// Characters.
    Chars,
    /// Whitespace-separated words.
    Words,
}

/// Rules are independent: each is checked on every record and a record is kept when it passes
/// all of them; the summary says how many records each rule alone dropped.
#[derive(clap::Args)]
pub struct FilterArgs {
    /// Records to filter (JSONL): any of the six formats the trainer reads, or with --field any
    /// JSON objects (raw Dolly rows, say).
    #[arg(long = "in", value_name = "FILE")]
    input: PathBuf,
    /// Where the kept records go (written atomically, as they were in the input).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Where the dropped records go.
    #[arg(long, value_name = "FILE")]
    rejects: Option<PathBuf>,
    /// A keyword, case-insensitive (repeat, or separate with commas).
    #[arg(
        long = "keyword",
        visible_alias = "keywords",
        value_name = "WORD",
        value_delimiter = ','
    )]
    keywords: Vec<String>,
    /// Whether any or all keywords must occur.
    #[arg(long, value_enum, default_value_t = Mode::Any)]
    keyword_mode: Mode,
    /// Keywords match whole words only (`form` does not match `formal`).
    #[arg(long)]
    whole_word: bool,
    /// A regular expression that must match (repeatable; each is its own rule; `(?i)` for
    /// case-insensitive).
    #[arg(long = "regex", value_name = "PATTERN")]
    include: Vec<String>,
    /// A regular expression that must not match (repeatable).
    #[arg(long = "exclude-regex", value_name = "PATTERN")]
    exclude: Vec<String>,
    /// Minimum length, inclusive (in --len-unit).
    #[arg(long)]
    min_len: Option<usize>,
    /// Maximum length, inclusive (in --len-unit).
    #[arg(long)]
    max_len: Option<usize>,
    /// What the length rules count.
    #[arg(long, value_enum, default_value_t = Unit::Chars)]
    len_unit: Unit,
    /// A dotted field path the rules look at (`instruction`, `qa_pair.question`,
    /// `messages.*.content`; repeatable) [default: all the text the trainer sees].
    #[arg(long = "field", value_name = "PATH")]
    fields: Vec<String>,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: FilterArgs) -> Result<()> {
    let fields = args
        .fields
        .iter()
        .map(|f| FieldPath::parse(f))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let rules = FilterRules {
        keywords: args.keywords,
        keyword_mode: match args.keyword_mode {
            Mode::Any => KeywordMode::Any,
            Mode::All => KeywordMode::All,
        },
        whole_word: args.whole_word,
        include: args.include,
        exclude: args.exclude,
        min_len: args.min_len,
        max_len: args.max_len,
        length_unit: match args.len_unit {
            Unit::Chars => LengthUnit::Chars,
            Unit::Words => LengthUnit::Words,
        },
        fields,
    };
    let input = read_objects(&args.input)
        .with_context(|| format!("reading records from {}", args.input.display()))?;
    let outcome = filter_lines(&args.input, &input, &rules)?;
    records::write_objects(&args.out, outcome.kept.iter().map(|&i| &input[i].object))
        .with_context(|| format!("writing {}", args.out.display()))?;
    if let Some(path) = &args.rejects {
        records::write_objects(path, outcome.rejected.iter().map(|&i| &input[i].object))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if args.json {
        let summary = serde_json::json!({
            "input": args.input,
            "out": args.out,
            "rejects": args.rejects,
            "total": outcome.total,
            "kept": outcome.kept.len(),
            "dropped": outcome.rejected.len(),
            "rules": outcome.rules,
        });
        println!("{}", serde_json::to_string_pretty(&summary)?);
        return Ok(());
    }
    println!("{}: {} records", args.input.display(), outcome.total);
    if outcome.rules.is_empty() {
        println!("  no rules: every record kept");
    }
    for rule in &outcome.rules {
        println!(
            "  {:<50} kept {:>7}  dropped {:>7}",
            rule.rule, rule.passed, rule.dropped
        );
    }
    println!(
        "kept {} of {} (dropped {}) -> {}",
        outcome.kept.len(),
        outcome.total,
        outcome.rejected.len(),
        args.out.display()
    );
    if let Some(path) = &args.rejects {
        println!("rejects -> {}", path.display());
    }
    Ok(())
}

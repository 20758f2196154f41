//! `switchboard data convert`: records between the six formats the trainer reads.

use std::path::PathBuf;

use anyhow::{Context, Result};
use switchboard_data::records::{self, convert_file};

/// Each converted record is read back by the trainer's reader and must give what the original
/// gave; records the target cannot hold (a multi-turn chat into alpaca, a system message or a
/// plain reply into teaching, prose into a chat format) are skipped and listed with their line.
/// Chats convert to `text` in a role-header layout (`<|user|>` / `<|assistant|>` lines) that
/// converts back exactly; note that a `text` record trains on every token, not just the
/// assistant's. Keys outside the format (`id`, `domain`, `source`, ...) are kept.
#[derive(clap::Args)]
pub struct ConvertArgs {
    /// Records to convert (JSONL, any of the six formats, mixed is fine).
    #[arg(long = "in", value_name = "FILE")]
    input: PathBuf,
    /// The converted records (written atomically).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Target format: alpaca, sharegpt, openai, teaching, dialogue or text.
    #[arg(long, value_name = "FORMAT")]
    to: String,
    /// Fail (writing nothing) on the first record the target cannot hold, instead of skipping.
    #[arg(long)]
    strict: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: ConvertArgs) -> Result<()> {
    let target = records::parse_format(&args.to)?;
    let report = convert_file(&args.input, &args.out, target, args.strict).with_context(|| {
        format!(
            "converting {} into {}",
            args.input.display(),
            args.out.display()
        )
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let from: Vec<String> = report
        .by_format
        .iter()
        .map(|(format, n)| format!("{n} {format}"))
        .collect();
    println!(
        "{}: {} records ({})",
        args.input.display(),
        report.records,
        from.join(", ")
    );
    for skipped in &report.skipped {
        println!(
            "  skipped {}:{}: {}",
            args.input.display(),
            skipped.line,
            skipped.reason
        );
    }
    println!(
        "converted {} to {}, skipped {} -> {}",
        report.converted,
        report.target,
        report.skipped.len(),
        args.out.display()
    );
    Ok(())
}

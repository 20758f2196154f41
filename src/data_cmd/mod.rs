//! `switchboard data`: course material → chunks → teacher-written QA records → filtered, split,
//! converted training files.

mod convert;
mod extract;
mod filter;
mod overlap;
mod split;
mod stats;
mod synth;

use anyhow::Result;
use clap::Subcommand;

#[derive(Subcommand)]
pub enum DataCommand {
    /// Extract Markdown, text, PDF and Jupyter notebooks from a folder into cleaned,
    /// de-duplicated text chunks (JSONL) with their source file and position.
    Extract(Box<extract::ExtractArgs>),
    /// Ask a teacher model (any OpenAI-compatible endpoint) to write question-answer records
    /// for each chunk; resumable, rate-limit aware, malformed replies repaired or retried.
    Synth(Box<synth::SynthArgs>),
    /// Keep the records that match keyword, regex and length rules over chosen fields.
    Filter(Box<filter::FilterArgs>),
    /// Split records into seeded train/validation/test files, optionally stratified, with no
    /// near-duplicate across splits.
    Split(Box<split::SplitArgs>),
    /// Convert records between the six formats the trainer reads.
    Convert(Box<convert::ConvertArgs>),
    /// List training records that copy or paraphrase evaluation items (exit 1 if any).
    Overlap(Box<overlap::OverlapArgs>),
    /// Count records by format and field, token lengths under the base model's tokenizer, and
    /// duplicates.
    Stats(Box<stats::StatsArgs>),
}

pub fn run(command: DataCommand) -> Result<()> {
    match command {
        DataCommand::Extract(args) => extract::run(*args),
        DataCommand::Synth(args) => synth::run(*args),
        DataCommand::Filter(args) => filter::run(*args),
        DataCommand::Split(args) => split::run(*args),
        DataCommand::Convert(args) => convert::run(*args),
        DataCommand::Stats(args) => stats::run(*args),
        DataCommand::Overlap(args) => overlap::run(*args),
    }
}

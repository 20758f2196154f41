//! `switchboard eval`: score suites over the base model, adapters, retrieval and the routed
//! ensemble (`run`), gate a candidate against an accepted baseline (`compare`), and have a judge
//! model grade two variants side by side (`judge`).

mod judge;
mod local;
mod retrieval;
mod run;

use anyhow::Result;
use clap::Subcommand;
use switchboard_eval::compare::{self, CompareArgs};

#[derive(Subcommand)]
pub enum EvalCommand {
    /// Score evaluation suites over variants (base, adapters, rag, auto) against a server (--url)
    /// or an in-process one, and write results JSON, Markdown, a chart and Prometheus metrics.
    Run(Box<run::RunArgs>),
    /// Compare two results files item by item. Exit code: 0 promote, 1 regression, 2 no gain,
    /// 3 inconclusive, 4 the comparison could not be made (unreadable file, unknown variant).
    Compare(CompareArgs),
    /// Two variants answer the same prompts (same sampling); a judge model at any
    /// OpenAI-compatible URL grades both on a 1-5 rubric, in both orders to cancel position
    /// bias; JSON and side-by-side Markdown reports.
    Judge(Box<judge::JudgeArgs>),
}

/// Exit code of `eval compare` when there is no verdict (the files could not be compared);
/// 1-3 are verdicts, so errors must not use them.
const COMPARE_ERROR_EXIT: i32 = 4;

pub fn run(command: EvalCommand) -> Result<()> {
    match command {
        EvalCommand::Run(args) => run::run(*args),
        EvalCommand::Judge(args) => judge::run(*args),
        EvalCommand::Compare(args) => match compare::run(&args) {
            Ok(comparison) => {
                print!("{}", compare::render_markdown(&comparison));
                if let Some(out) = &args.out {
                    eprintln!("wrote {}", out.display());
                }
                std::process::exit(i32::from(comparison.exit_code));
            }
            Err(e) => {
                eprintln!(
                    "error: comparing {} with {}: {e}",
                    args.candidate.display(),
                    args.baseline.display()
                );
                std::process::exit(COMPARE_ERROR_EXIT);
            }
        },
    }
}

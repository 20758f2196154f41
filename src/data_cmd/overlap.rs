//! `switchboard data overlap`: training records that copy or paraphrase evaluation items.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use switchboard_data::records::{self, find_overlaps, EvalText, OverlapConfig, OverlapKind};
use switchboard_eval::suite::{Suite, Task};

/// Evaluation data is never training data: this lists every training record that shares a run
/// of `--ngram` words with an evaluation item (its question, or its question and answer) or
/// asks nearly its question (content-word Jaccard ≥ `--question-jaccard`). Exit code 1 when
/// any record overlaps.
#[derive(clap::Args)]
pub struct OverlapArgs {
    /// Training JSONL files or folders of them (any of the six formats).
    #[arg(long = "in", value_name = "PATH", num_args = 1.., required = true)]
    input: Vec<PathBuf>,
    /// Evaluation suites: JSONL files or folders of them [default: evals].
    #[arg(long, value_name = "PATH", num_args = 1..)]
    evals: Vec<PathBuf>,
    /// Words in a shared run that count as copying.
    #[arg(long, default_value_t = 8)]
    ngram: usize,
    /// Content-word Jaccard between a user turn and an item's question that counts as a
    /// paraphrase.
    #[arg(long, default_value_t = 0.5)]
    question_jaccard: f64,
}

/// JSONL files named by `paths`: files as given, folders searched recursively (sorted).
pub fn jsonl_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("reading {}", path.display()))?
                .map(|e| e.map(|e| e.path()))
                .collect::<std::io::Result<_>>()
                .with_context(|| format!("reading {}", path.display()))?;
            entries.sort();
            for entry in entries {
                if entry.is_dir() {
                    out.extend(jsonl_files(&[entry])?);
                } else if entry.extension().is_some_and(|e| e == "jsonl") {
                    out.push(entry);
                }
            }
        } else {
            out.push(path.clone());
        }
    }
    Ok(out)
}

pub fn run(args: OverlapArgs) -> Result<()> {
    let files = jsonl_files(&args.input)?;
    let records = records::read_all(&files).context("reading training records")?;
    let eval_paths = if args.evals.is_empty() {
        vec![crate::serve::bundled("evals")]
    } else {
        args.evals.clone()
    };
    let suite = Suite::load_many(&eval_paths, None).context("reading evaluation suites")?;
    let evals: Vec<EvalText> = suite
        .items
        .iter()
        .map(|item| EvalText {
            id: item.id.clone(),
            question: item.question.clone(),
            answer: match &item.task {
                Task::MultipleChoice { choices, answer } => {
                    choices.get(*answer).cloned().unwrap_or_default()
                }
                Task::Generative { reference } => reference.clone(),
            },
        })
        .collect();
    let config = OverlapConfig {
        ngram: args.ngram,
        question_jaccard: args.question_jaccard,
    };
    let hits = find_overlaps(&records, &evals, &config);
    for hit in &hits {
        let record = &records[hit.record];
        let why = match &hit.kind {
            OverlapKind::SharedNgram(run) => format!("shares {run:?}"),
            OverlapKind::SimilarQuestion(j) => format!("asks nearly its question (Jaccard {j:.2})"),
        };
        println!(
            "{}:{}: overlaps {}: {why}",
            record.path.display(),
            record.line,
            hit.eval_id
        );
    }
    println!(
        "{} training records in {} files against {} evaluation items: {} overlapping",
        records.len(),
        files.len(),
        evals.len(),
        hits.len()
    );
    if !hits.is_empty() {
        bail!("{} training records overlap evaluation items", hits.len());
    }
    Ok(())
}

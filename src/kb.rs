//! `switchboard kb`: build the knowledge base's index, search it, and measure retrieval.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Subcommand;
use switchboard_rag::{evaluate, load_eval_set, KnowledgeBase, SearchOptions};

use crate::serve::{bundled, default_index_dir};

#[derive(Subcommand)]
pub enum KbCommand {
    /// Build (or refresh) the on-disk index of a knowledge base.
    Index {
        /// Knowledge base directory [default: the bundled kb/].
        #[arg(long)]
        kb: Option<PathBuf>,
        /// Index directory [default: <kb>/.index].
        #[arg(long)]
        index: Option<PathBuf>,
    },
    /// Search the knowledge base and print the best passages with their scores.
    Search {
        /// The query.
        query: String,
        /// Only this domain (biology, history, security, teaching).
        #[arg(long)]
        domain: Option<String>,
        /// Passages to show.
        #[arg(short, default_value_t = 5)]
        k: usize,
        /// Knowledge base directory [default: the bundled kb/].
        #[arg(long)]
        kb: Option<PathBuf>,
        /// Index directory [default: <kb>/.index].
        #[arg(long)]
        index: Option<PathBuf>,
    },
    /// Recall@1/@5 and MRR on labelled questions (`{"question", "doc"}` lines).
    Eval {
        /// Knowledge base directory [default: the bundled kb/].
        #[arg(long)]
        kb: Option<PathBuf>,
        /// A question file or a directory of them [default: <kb>/eval].
        #[arg(long)]
        questions: Option<PathBuf>,
        /// Passages retrieved per question.
        #[arg(short, default_value_t = 10)]
        k: usize,
    },
}

fn kb_dirs(kb: Option<PathBuf>, index: Option<PathBuf>) -> (PathBuf, PathBuf) {
    let kb = kb.unwrap_or_else(|| bundled("kb"));
    let index = index.unwrap_or_else(|| default_index_dir(&kb));
    (kb, index)
}

fn open(kb: &Path, index: &Path) -> Result<KnowledgeBase> {
    KnowledgeBase::open_or_build(kb, index)
        .with_context(|| format!("indexing {} into {}", kb.display(), index.display()))
}

pub fn run(command: KbCommand) -> Result<()> {
    match command {
        KbCommand::Index { kb, index } => {
            let (kb, index) = kb_dirs(kb, index);
            let started = Instant::now();
            let base = open(&kb, &index)?;
            let stats = base.stats();
            for (path, reason) in &stats.skipped {
                eprintln!("skipped {}: {reason}", path.display());
            }
            println!(
                "{} documents, {} chunks in {} ({}, {:.2} s)",
                stats.documents,
                stats.chunks,
                index.display(),
                if stats.rebuilt {
                    "rebuilt"
                } else {
                    "up to date"
                },
                started.elapsed().as_secs_f64()
            );
        }
        KbCommand::Search {
            query,
            domain,
            k,
            kb,
            index,
        } => {
            let (kb, index) = kb_dirs(kb, index);
            let base = open(&kb, &index)?;
            let options = SearchOptions {
                k,
                domain,
                min_score: None,
            };
            let passages = base.search(&query, &options).context("searching")?;
            if passages.is_empty() {
                println!("no passage matches");
            }
            for (rank, p) in passages.iter().enumerate() {
                println!(
                    "{:>2}. {:6.2}  {}  ({}, chunk {})",
                    rank + 1,
                    p.score,
                    p.title,
                    p.path,
                    p.chunk
                );
                if !p.heading.is_empty() {
                    println!("           § {}", p.heading);
                }
                println!("           {}\n", p.snippet.replace('\n', " "));
            }
        }
        KbCommand::Eval { kb, questions, k } => {
            let kb = kb.unwrap_or_else(|| bundled("kb"));
            let questions = questions.unwrap_or_else(|| kb.join("eval"));
            let set = load_eval_set(&questions)
                .with_context(|| format!("reading questions from {}", questions.display()))?;
            let base =
                KnowledgeBase::in_ram(&kb).with_context(|| format!("indexing {}", kb.display()))?;
            let report = evaluate(&base, &set, k).context("evaluating retrieval")?;
            println!("{report}");
        }
    }
    Ok(())
}

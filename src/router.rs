//! `switchboard router`: train and evaluate the domain classifier behind `model: "auto"`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Subcommand;
use switchboard_router::{
    evaluate, load_examples, load_split, train, Classifier, Example, KeywordBaseline, TrainOptions,
};

#[derive(Subcommand)]
pub enum RouterCommand {
    /// Train a classifier on labelled JSONL (`{"text"|"messages", "label"}` lines).
    Train {
        /// JSONL files (comma-separated), or a directory whose `*.train.jsonl` files are used.
        #[arg(long, value_delimiter = ',', required = true)]
        data: Vec<PathBuf>,
        /// Where to write the model.
        #[arg(long)]
        out: PathBuf,
        /// Passes over the data.
        #[arg(long)]
        epochs: Option<usize>,
        /// Seed of the shuffling (training is deterministic for a seed).
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Accuracy, per-class precision/recall and confusion matrix, next to a keyword baseline.
    Eval {
        /// JSONL files (comma-separated), or a directory whose `*.test.jsonl` files are used.
        #[arg(long, value_delimiter = ',', required = true)]
        data: Vec<PathBuf>,
        /// Model file [default: the bundled model].
        #[arg(long)]
        model: Option<PathBuf>,
    },
    /// Classify one query and print the decision.
    Classify {
        /// The query.
        text: String,
        /// Model file [default: the bundled model].
        #[arg(long)]
        model: Option<PathBuf>,
    },
}

fn examples(paths: &[PathBuf], split: &str) -> Result<Vec<Example>> {
    let mut all = Vec::new();
    for path in paths {
        let mut found = if path.is_dir() {
            load_split(path, split)
        } else {
            load_examples(path)
        }
        .with_context(|| format!("reading {}", path.display()))?;
        all.append(&mut found);
    }
    anyhow::ensure!(!all.is_empty(), "no examples found in {paths:?}");
    Ok(all)
}

/// The classifier in `path`, or the bundled one.
pub fn classifier(path: Option<&Path>) -> Result<Classifier> {
    match path {
        Some(path) => Classifier::load(path).with_context(|| format!("loading {}", path.display())),
        None => Classifier::bundled().context("loading the bundled router model"),
    }
}

pub fn run(command: RouterCommand) -> Result<()> {
    match command {
        RouterCommand::Train {
            data,
            out,
            epochs,
            seed,
        } => {
            let examples = examples(&data, "train")?;
            let defaults = TrainOptions::default();
            let options = TrainOptions {
                epochs: epochs.unwrap_or(defaults.epochs),
                seed: seed.unwrap_or(defaults.seed),
                ..defaults
            };
            let started = Instant::now();
            let model = train(&examples, &options).context("training the router")?;
            model
                .save(&out)
                .with_context(|| format!("writing {}", out.display()))?;
            println!(
                "trained on {} examples in {:.2} s; wrote {}",
                examples.len(),
                started.elapsed().as_secs_f64(),
                out.display()
            );
        }
        RouterCommand::Eval { data, model } => {
            let examples = examples(&data, "test")?;
            let model = classifier(model.as_deref())?;
            println!(
                "== classifier ({} examples) ==\n{}",
                examples.len(),
                evaluate(&model, &examples)
            );
            println!(
                "== keyword baseline ==\n{}",
                evaluate(&KeywordBaseline::default(), &examples)
            );
        }
        RouterCommand::Classify { text, model } => {
            let decision = classifier(model.as_deref())?.classify_text(&text);
            println!("{}", serde_json::to_string_pretty(&decision)?);
        }
    }
    Ok(())
}

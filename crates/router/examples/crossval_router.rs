//! Stratified k-fold cross-validation on the *training* split only, for choosing
//! hyper-parameters without ever touching the test split.
//!
//! `cargo run --release -p switchboard-router --example crossval_router -- [--folds K]
//! [--data DIR] [--errors] [--score-only DIR] [OPTIONS_JSON ...]`
//!
//! Every `OPTIONS_JSON` is a [`TrainOptions`] object (missing fields take their defaults, e.g.
//! `'{"epochs": 30, "l2": 1e-3}'`); without any, the defaults are scored. `--errors` lists the
//! out-of-fold mistakes (training examples, so reading them is fair game).
//!
//! `--score-only DIR` still trains every fold on all its examples but scores only the held-out
//! ones that also appear in DIR's `*.train.jsonl`. With DIR an older copy of the training set,
//! that is a fixed yardstick for judging whether added training data helps: plain CV scores
//! move with the data, so they cannot compare data sets.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Instant;

use switchboard_router::{evaluate, load_split, train, Domain, Example, Result, TrainOptions};

const CLASSES: usize = Domain::COUNT;
/// Fixed so that every configuration is scored on the same folds.
const FOLD_SEED: u64 = 0xf01d;

struct Args {
    folds: usize,
    data_dir: PathBuf,
    show_errors: bool,
    score_only: Option<PathBuf>,
    grid: Vec<TrainOptions>,
}

fn parse_args() -> std::result::Result<Args, String> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut args = Args {
        folds: 5,
        data_dir: manifest.join("../../data/router"),
        show_errors: false,
        score_only: None,
        grid: Vec::new(),
    };
    let mut raw = std::env::args().skip(1);
    while let Some(arg) = raw.next() {
        match arg.as_str() {
            "--folds" => {
                let value = raw.next().ok_or("--folds needs a number")?;
                args.folds = value
                    .parse()
                    .map_err(|_| format!("bad fold count {value:?}"))?;
            }
            "--data" => args.data_dir = raw.next().ok_or("--data needs a directory")?.into(),
            "--errors" => args.show_errors = true,
            "--score-only" => {
                args.score_only = Some(raw.next().ok_or("--score-only needs a directory")?.into())
            }
            json => args
                .grid
                .push(serde_json::from_str(json).map_err(|error| format!("{json:?}: {error}"))?),
        }
    }
    if args.folds < 2 {
        return Err("at least 2 folds".to_owned());
    }
    if args.grid.is_empty() {
        args.grid.push(TrainOptions::default());
    }
    Ok(args)
}

/// Fold number of every example: each class is shuffled and dealt round-robin, so every fold
/// gets the same class mix.
fn assign_folds(examples: &[Example], folds: usize) -> Vec<usize> {
    let mut state = FOLD_SEED;
    let mut next = move || {
        // SplitMix64, as in training.
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let mut fold_of = vec![0; examples.len()];
    for domain in Domain::ALL {
        let mut members: Vec<usize> = (0..examples.len())
            .filter(|&index| examples[index].label == domain)
            .collect();
        for last in (1..members.len()).rev() {
            let pick = (next() % (last as u64 + 1)) as usize;
            members.swap(last, pick);
        }
        for (position, &index) in members.iter().enumerate() {
            fold_of[index] = position % folds;
        }
    }
    fold_of
}

fn summarise(confusion: &[[usize; CLASSES]; CLASSES]) -> String {
    let total: usize = confusion.iter().flatten().sum();
    let correct: usize = (0..CLASSES).map(|class| confusion[class][class]).sum();
    let mut line = format!("acc {:.2}%", 100.0 * correct as f64 / total.max(1) as f64);
    for domain in Domain::ALL {
        let class = domain.index();
        let hits = confusion[class][class] as f64;
        let support: usize = confusion[class].iter().sum();
        let predicted: usize = confusion.iter().map(|row| row[class]).sum();
        let f1 = 2.0 * hits / (support + predicted).max(1) as f64;
        line.push_str(&format!("  {} {:.3}", &domain.as_str()[..3], f1));
    }
    line
}

/// What makes two examples the same, for `--score-only`.
fn identity(example: &Example) -> String {
    serde_json::to_string(example).unwrap_or_default()
}

fn last_user_text(example: &Example) -> &str {
    example
        .messages
        .iter()
        .rev()
        .find(|message| message.role == "user")
        .map_or("", |message| message.content.as_str())
}

fn main() -> Result<()> {
    let args = match parse_args() {
        Ok(args) => args,
        Err(reason) => {
            eprintln!("{reason}");
            std::process::exit(2);
        }
    };
    let examples = load_split(&args.data_dir, "train")?;
    let fold_of = assign_folds(&examples, args.folds);
    let scored: Vec<bool> = match &args.score_only {
        None => vec![true; examples.len()],
        Some(dir) => {
            let keep: HashSet<String> = load_split(dir, "train")?.iter().map(identity).collect();
            examples
                .iter()
                .map(|e| keep.contains(&identity(e)))
                .collect()
        }
    };
    println!(
        "{} training examples ({} scored), {}-fold cross-validation",
        examples.len(),
        scored.iter().filter(|&&s| s).count(),
        args.folds
    );

    for options in &args.grid {
        let started = Instant::now();
        let mut confusion = [[0usize; CLASSES]; CLASSES];
        let mut errors = Vec::new();
        for fold in 0..args.folds {
            let mut fit_set = Vec::new();
            let mut held_set = Vec::new();
            for (index, example) in examples.iter().enumerate() {
                if fold_of[index] != fold {
                    fit_set.push(example.clone());
                } else if scored[index] {
                    held_set.push(example.clone());
                }
            }
            let model = train(&fit_set, options)?;
            let report = evaluate(&model, &held_set);
            for (row, fold_row) in confusion.iter_mut().zip(report.confusion) {
                for (cell, count) in row.iter_mut().zip(fold_row) {
                    *cell += count;
                }
            }
            if args.show_errors {
                for example in &held_set {
                    let decision = model.classify(&example.turns());
                    if decision.domain != example.label {
                        errors.push(format!(
                            "{} -> {} ({:.2}): {}",
                            example.label,
                            decision.domain,
                            decision.confidence,
                            last_user_text(example).replace('\n', " ")
                        ));
                    }
                }
            }
        }
        println!(
            "{}  [{:.1?}] {}",
            summarise(&confusion),
            started.elapsed(),
            serde_json::to_string(options).unwrap_or_default()
        );
        if args.show_errors {
            errors.sort();
            println!("{}", errors.join("\n"));
        }
    }
    Ok(())
}

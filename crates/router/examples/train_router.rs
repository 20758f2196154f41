//! Trains the shipped router model and prints its test report next to the keyword baseline.
//!
//! `cargo run --release -p switchboard-router --example train_router [DATA_DIR] [OUT_FILE]`
//! (defaults: `data/router` and `crates/router/model/router.bin`).

use std::path::PathBuf;
use std::time::Instant;

use switchboard_router::{
    evaluate, load_split, train, Classifier, KeywordBaseline, Result, TrainOptions,
};

fn main() -> Result<()> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut args = std::env::args_os().skip(1);
    let data_dir = args
        .next()
        .map_or_else(|| manifest.join("../../data/router"), PathBuf::from);
    let out_file = args
        .next()
        .map_or_else(|| manifest.join("model/router.bin"), PathBuf::from);

    let train_set = load_split(&data_dir, "train")?;
    let test_set = load_split(&data_dir, "test")?;
    println!(
        "{} training and {} test examples from {}",
        train_set.len(),
        test_set.len(),
        data_dir.display()
    );

    let options = TrainOptions::default();
    let started = Instant::now();
    let model = train(&train_set, &options)?;
    println!(
        "trained in {:.1?} with {options:?}; temperature {:.3}",
        started.elapsed(),
        model.temperature()
    );
    model.save(&out_file)?;
    let reloaded = Classifier::load(&out_file)?;
    println!(
        "saved {} ({} bytes)",
        out_file.display(),
        std::fs::metadata(&out_file).map_or(0, |meta| meta.len())
    );

    println!(
        "\n== trained classifier (test split) ==\n{}",
        evaluate(&reloaded, &test_set)
    );
    println!(
        "== keyword baseline (test split) ==\n{}",
        evaluate(&KeywordBaseline::default(), &test_set)
    );
    println!(
        "== trained classifier (train split) ==\n{}",
        evaluate(&reloaded, &train_set)
    );
    Ok(())
}

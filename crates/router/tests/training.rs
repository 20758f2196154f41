//! Training on `data/router/*.train.jsonl` inside the test: accuracy, determinism, and that
//! the shipped model is what the current data and defaults produce.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use switchboard_router::{evaluate, load_split, train, Classifier, Domain, Example, TrainOptions};

/// Same floor as the shipped model's test (see `shipped_model.rs`).
const MIN_TEST_ACCURACY: f64 = 0.95;

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/router")
}

fn predictions(model: &Classifier, examples: &[Example]) -> Vec<Domain> {
    examples
        .iter()
        .map(|example| model.classify(&example.turns()).domain)
        .collect()
}

#[test]
fn training_is_deterministic_and_accurate() {
    let train_set = load_split(data_dir(), "train").unwrap();
    let test_set = load_split(data_dir(), "test").unwrap();
    let options = TrainOptions::default();

    let first = train(&train_set, &options).unwrap();
    let second = train(&train_set, &options).unwrap();
    assert_eq!(
        first, second,
        "same data and seed must give the same weights"
    );
    assert_eq!(
        predictions(&first, &test_set),
        predictions(&second, &test_set)
    );

    let report = evaluate(&first, &test_set);
    println!("{report}");
    assert!(
        report.accuracy >= MIN_TEST_ACCURACY,
        "accuracy {:.4} below {MIN_TEST_ACCURACY}",
        report.accuracy
    );

    // The shipped file holds this model, quantised: it must answer (almost) identically.
    // If this fails, the data changed: retrain with
    // `cargo run --release -p switchboard-router --example train_router`.
    let shipped = predictions(&Classifier::bundled().unwrap(), &test_set);
    let agreeing = shipped
        .iter()
        .zip(predictions(&first, &test_set))
        .filter(|(a, b)| **a == *b)
        .count();
    assert!(
        agreeing as f64 >= 0.99 * test_set.len() as f64,
        "the shipped model agrees on only {agreeing}/{} test examples: retrain it",
        test_set.len()
    );
}

#[test]
fn a_different_seed_gives_a_different_but_comparable_model() {
    let train_set = load_split(data_dir(), "train").unwrap();
    let test_set = load_split(data_dir(), "test").unwrap();
    let options = TrainOptions {
        seed: 99,
        ..TrainOptions::default()
    };
    let reseeded = train(&train_set, &options).unwrap();
    let default = train(&train_set, &TrainOptions::default()).unwrap();
    assert_ne!(reseeded, default);
    let accuracy = evaluate(&reseeded, &test_set).accuracy;
    assert!(accuracy >= MIN_TEST_ACCURACY - 0.02, "{accuracy:.4}");
}

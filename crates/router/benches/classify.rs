//! Per-query routing latency of the bundled model.
//!
//! `cargo bench -p switchboard-router --bench classify`: criterion's estimate for a ~60-word
//! query and a three-turn conversation, then p50/p99 over 10,000 timed single calls (the
//! server classifies one request at a time, so the tail matters more than the mean).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use switchboard_router::{Classifier, Turn};

/// About sixty words, the length of a typical chat question with some context.
const QUERY: &str = "I am preparing for an exam and keep getting confused about how the \
    sodium potassium pump maintains the resting membrane potential in neurons. Could you walk \
    me through what happens to the ion concentrations when an action potential fires, why the \
    refractory period exists, and how myelination speeds up conduction along the axon compared \
    with unmyelinated nerve fibres in the body?";

const CALLS: usize = 10_000;

fn criterion_benches(criterion: &mut Criterion, model: &Classifier) {
    criterion.bench_function("classify_text/60_words", |bencher| {
        bencher.iter(|| model.classify_text(black_box(QUERY)))
    });
    let conversation = [
        Turn::system("You are a helpful assistant."),
        Turn::user("What is the difference between a virus and a bacterium?"),
        Turn::assistant("Bacteria are living cells; viruses need a host cell to replicate."),
        Turn::user(QUERY),
    ];
    criterion.bench_function("classify/3_turns", |bencher| {
        bencher.iter(|| model.classify(black_box(&conversation)))
    });
}

fn percentile(sorted: &[Duration], share: f64) -> Duration {
    let index = ((sorted.len() as f64 * share).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

fn latency_percentiles(model: &Classifier) {
    for _ in 0..1_000 {
        black_box(model.classify_text(black_box(QUERY)));
    }
    let mut samples = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let started = Instant::now();
        black_box(model.classify_text(black_box(QUERY)));
        samples.push(started.elapsed());
    }
    samples.sort_unstable();
    println!(
        "classify_text ({} words), {CALLS} calls: p50 {:.2?}  p99 {:.2?}  max {:.2?}",
        QUERY.split_whitespace().count(),
        percentile(&samples, 0.50),
        percentile(&samples, 0.99),
        percentile(&samples, 1.0),
    );
}

fn main() {
    let model = match Classifier::bundled() {
        Ok(model) => model,
        Err(error) => {
            eprintln!("cannot load the bundled router model: {error}");
            std::process::exit(1);
        }
    };
    let mut criterion = Criterion::default().configure_from_args();
    criterion_benches(&mut criterion, &model);
    criterion.final_summary();
    latency_percentiles(&model);
}

//! What adapters cost a decode step and a prefill, measured so that machine noise cancels out.
//!
//! On a shared machine, step times drift by ±15% over minutes, more than the effect measured.
//! Here the no-adapter, one-adapter and four-adapter batches are timed in interleaved rounds
//! (the case order rotates every round), so a slow phase hits every case alike; the report is
//! the median step time of each case and its overhead over the no-adapter batch.
//!
//! * `cargo bench --bench adapter_overhead`: random model of the Qwen2.5-0.5B shape, r = 16
//!   adapters on all seven projections, 128-token contexts; 30 rounds of decode steps at batch
//!   1 and 8, 10 rounds of a 128-token prefill at batch 1.
//! * under `cargo test`: a tiny shape and 3 rounds, to keep it compiling and running.

use std::time::Instant;

use switchboard_model::{KvCache, LoraAdapter};

mod common;
use common::{forward, random_model_and_adapters, tokens, FULL, TINY};

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (shape, rounds): (_, usize) = if full { (&FULL, 30) } else { (&TINY, 3) };
    let (model, adapters) = random_model_and_adapters(shape);
    let ctx = shape.context;

    // (what, batch, rounds): decode steps are cheap, a 128-token prefill is not.
    let plans = [
        ("decode", 1usize, rounds),
        ("decode", 8, rounds),
        ("prefill", 1, rounds.div_ceil(3)),
    ];
    for (what, batch, rounds) in plans {
        let mut caches: Vec<KvCache> = (0..batch).map(|_| model.new_cache()).collect();
        let prompts: Vec<Vec<u32>> = (0..batch).map(|s| tokens(s, ctx, 0, shape.vocab)).collect();
        forward(&model, &mut caches, &prompts, &vec![None; batch]);
        let next: Vec<Vec<u32>> = (0..batch).map(|s| tokens(s, 1, ctx, shape.vocab)).collect();
        let (inputs, keep, n_tokens) = match what {
            "decode" => (&next, ctx, batch),
            _ => (&prompts, 0, batch * ctx),
        };
        caches.iter_mut().for_each(|c| c.truncate(keep));

        let mut cases: Vec<(&str, Vec<Option<&LoraAdapter>>)> = vec![
            ("no_adapter", vec![None; batch]),
            ("one_adapter", vec![Some(&adapters[0]); batch]),
        ];
        if batch >= 4 {
            cases.push((
                "four_adapters",
                (0..batch).map(|i| Some(&adapters[i % 4])).collect(),
            ));
        }
        let mut times = vec![Vec::with_capacity(rounds); cases.len()];
        for round in 0..rounds {
            for offset in 0..cases.len() {
                let case = (round + offset) % cases.len();
                let started = Instant::now();
                std::hint::black_box(forward(&model, &mut caches, inputs, &cases[case].1));
                times[case].push(started.elapsed().as_secs_f64() * 1e3);
                caches.iter_mut().for_each(|c| c.truncate(keep));
            }
        }
        let base = median(&mut times[0].clone());
        for ((name, _), samples) in cases.iter().zip(&mut times) {
            let m = median(samples);
            println!(
                "{what} batch {batch} {name:<14} median {m:9.2} ms  {:7.1} tok/s  overhead {:+5.1}%",
                n_tokens as f64 * 1e3 / m,
                (m / base - 1.0) * 100.0
            );
        }
    }
}

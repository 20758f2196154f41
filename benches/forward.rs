//! Forward-pass benchmarks: decode-step and 128-token-prefill time of a random-weight model with
//! the real Qwen2.5-0.5B shape, at batch 1 and 8, with no adapter, one adapter for every row,
//! and four different adapters (rows assigned round-robin; r = 16 on all seven projections).
//!
//! The checkpoint (`config.json` + `model.safetensors` with Hugging Face key names, f32, about
//! 2 GB) is generated into a temporary directory at start-up and loaded through `CausalLm::load`,
//! so the real loader runs and nothing large is committed.
//!
//! * `cargo bench --bench forward`: the full shape. Prefill at batch 8 takes seconds per
//!   iteration on a small CPU, so groups use 10 flat samples and short timing targets.
//! * `cargo test --bench forward` (and `--benches` / `--all-targets`): the binary runs without
//!   `--bench`, criterion runs each case once, and a tiny shape with a 16-token context is used
//!   so CI checks that the bench still builds and runs in seconds.
//!
//! Every iteration starts from the same state: decode appends one token per sequence to a
//! 128-token context and truncates back; prefill truncates to 0 and refills, reusing the cache
//! buffers as the engine does for a finished sequence's slot.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use switchboard_model::{KvCache, LoraAdapter};

mod common;
use common::{forward, random_model_and_adapters, tokens, FULL, TINY};

fn bench_forward(c: &mut Criterion) {
    let test_mode = !std::env::args().any(|a| a == "--bench");
    let shape = if test_mode { &TINY } else { &FULL };

    let (model, adapters) = random_model_and_adapters(shape);
    // Cases: (name, batch sizes, adapter of row i). Four distinct adapters need > 1 row.
    type Assign = fn(&[LoraAdapter], usize) -> Option<&LoraAdapter>;
    let cases: [(&str, &[usize], Assign); 3] = [
        ("no_adapter", &[1, 8], |_, _| None),
        ("one_adapter", &[1, 8], |a, _| Some(&a[0])),
        ("four_adapters", &[8], |a, i| Some(&a[i % 4])),
    ];

    // One cache per row, prefilled to `context` once; both groups leave them at that length.
    // Which adapter filled the context does not change the cost of what is timed.
    let ctx = shape.context;
    let mut caches: Vec<KvCache> = (0..8).map(|_| model.new_cache()).collect();
    let prompts: Vec<Vec<u32>> = (0..8).map(|s| tokens(s, ctx, 0, shape.vocab)).collect();
    forward(&model, &mut caches, &prompts, &[None; 8]);
    let next: Vec<Vec<u32>> = (0..8).map(|s| tokens(s, 1, ctx, shape.vocab)).collect();

    // (group, inputs per row, cache length each iteration starts from, measurement time):
    // a decode step appends one token to the context; a prefill refills it from empty.
    let prefill_name = format!("prefill_{ctx}");
    let groups = [
        ("decode_step", &next, ctx, 5),
        (prefill_name.as_str(), &prompts, 0, 15),
    ];
    for (group_name, inputs, start_len, seconds) in groups {
        let mut group = c.benchmark_group(group_name);
        group
            .sample_size(10)
            .sampling_mode(SamplingMode::Flat)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(seconds));
        for batch in [1, 8] {
            for (name, sizes, assign) in &cases {
                if !sizes.contains(&batch) {
                    continue;
                }
                let rows: Vec<_> = (0..batch).map(|i| assign(&adapters, i)).collect();
                let caches = &mut caches[..batch];
                let tokens_per_call: usize = inputs[..batch].iter().map(Vec::len).sum();
                group.throughput(Throughput::Elements(tokens_per_call as u64));
                group.bench_function(format!("batch{batch}/{name}"), |b| {
                    b.iter(|| {
                        caches.iter_mut().for_each(|c| c.truncate(start_len));
                        let logits = forward(&model, caches, &inputs[..batch], &rows);
                        black_box(logits)
                    })
                });
                // Leave the shared caches at the full context for the next case.
                caches.iter_mut().for_each(|c| c.truncate(0));
                forward(&model, caches, &prompts[..batch], &vec![None; batch]);
            }
        }
        group.finish();
    }
}

criterion_group!(benches, bench_forward);
criterion_main!(benches);

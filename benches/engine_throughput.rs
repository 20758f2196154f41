//! Aggregate generation throughput and time to first token of the engine under closed-loop load:
//! `c` clients each send requests back to back (a new one as soon as the last finishes), for
//! concurrency 1, 4 and 16, with every request on the base model or spread over four adapters.
//!
//! * `cargo bench --bench engine_throughput`: random Qwen2.5-0.5B-shape checkpoint, f32, r = 16
//!   adapters on all seven projections, 32-token prompts, 48 generated tokens (greedy,
//!   `ignore_eos`), 3 requests per client.
//! * under `cargo test`: a tiny shape and short requests, to keep it compiling and running.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_engine::{
    AdapterRegistry, Engine, EngineConfig, GenerateEvent, GenerateRequest, Prompt, RegistryConfig,
    SamplingParams, TextTokenizer,
};
use switchboard_model::{DType, Device};

mod common;
use common::{random_model_and_adapters, tokens, FULL, TINY};

struct Plan {
    prompt_len: usize,
    max_tokens: usize,
    requests_per_client: usize,
}

struct Outcome {
    generated: usize,
    wall: Duration,
    ttft: Vec<f64>,
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    values[((values.len() - 1) as f64 * p).round() as usize]
}

fn run_load(engine: &Engine, plan: &Plan, clients: usize, adapters: &[Option<String>]) -> Outcome {
    let vocab = engine.model_config().vocab_size;
    let started = Instant::now();
    let per_client: Vec<(usize, Vec<f64>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|client| {
                scope.spawn(move || {
                    let mut generated = 0;
                    let mut ttft = Vec::new();
                    for round in 0..plan.requests_per_client {
                        let id = client * plan.requests_per_client + round;
                        let request = GenerateRequest {
                            prompt: Prompt::Tokens(tokens(id, plan.prompt_len, 0, vocab)),
                            adapter: adapters[id % adapters.len()].clone(),
                            params: SamplingParams {
                                ignore_eos: true,
                                ..SamplingParams::greedy(plan.max_tokens)
                            },
                        };
                        let submitted = Instant::now();
                        let mut stream = engine.submit_blocking(request).expect("submit");
                        let mut first = None;
                        while let Some(event) = stream.blocking_next() {
                            match event {
                                GenerateEvent::Delta { tokens, .. } if !tokens.is_empty() => {
                                    first.get_or_insert_with(|| submitted.elapsed());
                                }
                                GenerateEvent::Done { usage } => {
                                    generated += usage.completion_tokens
                                }
                                GenerateEvent::Error { message } => panic!("{message}"),
                                _ => {}
                            }
                        }
                        ttft.push(first.expect("a first token").as_secs_f64() * 1e3);
                    }
                    (generated, ttft)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("client thread"))
            .collect()
    });
    Outcome {
        generated: per_client.iter().map(|(g, _)| g).sum(),
        wall: started.elapsed(),
        ttft: per_client.into_iter().flat_map(|(_, t)| t).collect(),
    }
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (shape, plan) = if full {
        let plan = Plan {
            prompt_len: 32,
            max_tokens: 48,
            requests_per_client: 3,
        };
        (&FULL, plan)
    } else {
        let plan = Plan {
            prompt_len: 8,
            max_tokens: 6,
            requests_per_client: 2,
        };
        (&TINY, plan)
    };
    let (model, random_adapters) = random_model_and_adapters(shape);
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden/base");
    // Generated ids beyond this small tokenizer's vocabulary decode to nothing, which is fine
    // for a throughput measurement.
    let tokenizer = TextTokenizer::from_dir(&golden).expect("golden tokenizer");
    let registry = AdapterRegistry::new(
        model.config().clone(),
        DType::F32,
        Device::Cpu,
        RegistryConfig::default(),
    );
    let mut names = Vec::new();
    for adapter in random_adapters {
        let name = adapter.name().to_string();
        registry
            .insert(&name, adapter, None)
            .expect("register adapter");
        names.push(Some(name));
    }
    let engine = Engine::start(
        Arc::new(model),
        Arc::new(tokenizer),
        Arc::new(registry),
        EngineConfig::default(),
    )
    .expect("start engine");
    println!(
        "prompt {} tokens, {} generated per request, {} requests per client",
        plan.prompt_len, plan.max_tokens, plan.requests_per_client
    );
    let mut single = [0.0f64; 2];
    for clients in [1usize, 4, 16] {
        for (mix, adapters) in [("base", vec![None]), ("4 adapters", names.clone())] {
            let mut outcome = run_load(&engine, &plan, clients, &adapters);
            let tok_s = outcome.generated as f64 / outcome.wall.as_secs_f64();
            let mix_index = usize::from(adapters.len() > 1);
            if clients == 1 {
                single[mix_index] = tok_s;
            }
            println!(
                "concurrency {clients:>2} {mix:<10} {tok_s:8.1} tok/s ({:4.1}x c=1)  \
                 TTFT p50 {:8.1} ms  p90 {:8.1} ms  wall {:6.2?}",
                tok_s / single[mix_index],
                percentile(&mut outcome.ttft, 0.5),
                percentile(&mut outcome.ttft, 0.9),
                outcome.wall,
            );
        }
    }
    engine.shutdown();
}

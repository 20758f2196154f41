//! Forward-pass benchmarks: decode-step and 128-token-prefill time of a random-weight model with
//! the real Qwen2.5-0.5B shape, at batch 1 and 8, with no adapter, one adapter for every row,
//! and four different adapters (rows assigned round-robin; r = 16 on all seven projections).
//!
//! The checkpoint (`config.json` + `model.safetensors` with Hugging Face key names, f32, about
//! 2 GB) is generated into a temporary directory at start-up and loaded through `Qwen2::load`,
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

use std::collections::HashMap;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use candle_core::{DType, Device, Tensor};
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use switchboard_model::{
    write_safetensors, AdapterConfig, ForwardMode, KvCache, LogitsWanted, LoraAdapter, LoraPair,
    Proj, Qwen2, SeqInput,
};

/// The dimensions that determine the cost of a forward pass.
struct Shape {
    hidden: usize,
    layers: usize,
    heads: usize,
    kv_heads: usize,
    intermediate: usize,
    vocab: usize,
    /// Prompt length for prefill, and the context length a decode step attends to.
    context: usize,
}

/// Qwen2.5-0.5B.
const FULL: Shape = Shape {
    hidden: 896,
    layers: 24,
    heads: 14,
    kv_heads: 2,
    intermediate: 4864,
    vocab: 151_936,
    context: 128,
};

/// Same structure (GQA, tied head, biased q/k/v), small enough for a test run.
const TINY: Shape = Shape {
    hidden: 64,
    layers: 2,
    heads: 4,
    kv_heads: 2,
    intermediate: 128,
    vocab: 2000,
    context: 16,
};

const LORA_RANK: usize = 16;
const LORA_ALPHA: f64 = 32.0; // scale alpha / r = 2.0
const INIT_STD: f64 = 0.02;

fn randn(shape: &[usize]) -> Tensor {
    Tensor::randn(0f32, INIT_STD as f32, shape, &Device::Cpu).expect("random tensor")
}

/// Writes `config.json` and `model.safetensors` of a random model of shape `s` into `dir`.
fn write_random_checkpoint(dir: &Path, s: &Shape) {
    let config = serde_json::json!({
        "architectures": ["Qwen2ForCausalLM"],
        "model_type": "qwen2",
        "hidden_act": "silu",
        "hidden_size": s.hidden,
        "intermediate_size": s.intermediate,
        "num_hidden_layers": s.layers,
        "num_attention_heads": s.heads,
        "num_key_value_heads": s.kv_heads,
        "vocab_size": s.vocab,
        "max_position_embeddings": 32768,
        "rms_norm_eps": 1e-6,
        "rope_theta": 1_000_000.0,
        "rope_scaling": null,
        "tie_word_embeddings": true,
        "torch_dtype": "float32",
        "use_sliding_window": false,
        "sliding_window": 32768,
    });
    let text = serde_json::to_string_pretty(&config).expect("serialise config.json");
    std::fs::write(dir.join("config.json"), text).expect("write config.json");

    let (h, kv, i) = (s.hidden, s.kv_heads * (s.hidden / s.heads), s.intermediate);
    let ones = || Tensor::ones(h, DType::F32, &Device::Cpu).expect("norm weight");
    let mut tensors: Vec<(String, Tensor)> = vec![
        ("model.embed_tokens.weight".into(), randn(&[s.vocab, h])),
        ("model.norm.weight".into(), ones()),
    ];
    for l in 0..s.layers {
        let p = format!("model.layers.{l}");
        tensors.extend([
            (format!("{p}.self_attn.q_proj.weight"), randn(&[h, h])),
            (format!("{p}.self_attn.q_proj.bias"), randn(&[h])),
            (format!("{p}.self_attn.k_proj.weight"), randn(&[kv, h])),
            (format!("{p}.self_attn.k_proj.bias"), randn(&[kv])),
            (format!("{p}.self_attn.v_proj.weight"), randn(&[kv, h])),
            (format!("{p}.self_attn.v_proj.bias"), randn(&[kv])),
            (format!("{p}.self_attn.o_proj.weight"), randn(&[h, h])),
            (format!("{p}.mlp.gate_proj.weight"), randn(&[i, h])),
            (format!("{p}.mlp.up_proj.weight"), randn(&[i, h])),
            (format!("{p}.mlp.down_proj.weight"), randn(&[h, i])),
            (format!("{p}.input_layernorm.weight"), ones()),
            (format!("{p}.post_attention_layernorm.weight"), ones()),
        ]);
    }
    let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
    write_safetensors(&dir.join("model.safetensors"), &tensors, Some(metadata))
        .expect("write model.safetensors");
}

/// A random rank-16 adapter on every projection of every layer.
fn random_adapter(model: &Qwen2, name: &str) -> LoraAdapter {
    let cfg = model.config();
    let layers = (0..cfg.num_hidden_layers)
        .map(|_| {
            Proj::ALL.map(|proj| {
                let (i, o) = (cfg.proj_in_features(proj), cfg.proj_out_features(proj));
                // B is random rather than PEFT's zero init so the delta is real work on real data.
                Some(LoraPair {
                    a: randn(&[LORA_RANK, i]),
                    b: randn(&[o, LORA_RANK]),
                    scale: LORA_ALPHA / LORA_RANK as f64,
                })
            })
        })
        .collect();
    let config = AdapterConfig::new(LORA_RANK, LORA_ALPHA, &Proj::ALL);
    LoraAdapter::from_pairs(name.to_string(), config, layers, cfg).expect("build adapter")
}

/// One forward call over `caches[i]` with `tokens[i]` and `adapters[i]`.
fn forward(
    model: &Qwen2,
    caches: &mut [KvCache],
    tokens: &[Vec<u32>],
    adapters: &[Option<&LoraAdapter>],
) -> Vec<Tensor> {
    let mut batch: Vec<SeqInput> = caches
        .iter_mut()
        .zip(tokens)
        .zip(adapters)
        .map(|((cache, tokens), adapter)| SeqInput {
            tokens,
            cache,
            adapter: *adapter,
            logits: LogitsWanted::Last,
        })
        .collect();
    model
        .forward(&mut batch, ForwardMode::Inference)
        .expect("forward pass")
}

/// Deterministic, well-spread token ids so sequences differ from each other.
fn tokens(seq: usize, len: usize, offset: usize, vocab: usize) -> Vec<u32> {
    (offset..offset + len)
        .map(|t| ((seq * 1009 + t * 7919 + 1) % vocab) as u32)
        .collect()
}

fn bench_forward(c: &mut Criterion) {
    let test_mode = !std::env::args().any(|a| a == "--bench");
    let shape = if test_mode { &TINY } else { &FULL };

    let started = Instant::now();
    let dir = tempfile::tempdir().expect("create temporary checkpoint directory");
    write_random_checkpoint(dir.path(), shape);
    let model = Qwen2::load(dir.path(), DType::F32, &Device::Cpu).expect("load checkpoint");
    drop(dir); // the weights are copied out of the mmap; free the disk space now
    let adapters: Vec<LoraAdapter> = (0..4)
        .map(|i| random_adapter(&model, &format!("adapter{i}")))
        .collect();
    eprintln!(
        "random checkpoint ({} layers, hidden {}, vocab {}) written and loaded in {:.1?}",
        shape.layers,
        shape.hidden,
        shape.vocab,
        started.elapsed()
    );

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

    let mut decode = c.benchmark_group("decode_step");
    decode
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for batch in [1, 8] {
        for (name, sizes, assign) in &cases {
            if !sizes.contains(&batch) {
                continue;
            }
            let rows: Vec<_> = (0..batch).map(|i| assign(&adapters, i)).collect();
            let caches = &mut caches[..batch];
            decode.throughput(Throughput::Elements(batch as u64));
            decode.bench_function(format!("batch{batch}/{name}"), |b| {
                b.iter(|| {
                    let logits = forward(&model, caches, &next[..batch], &rows);
                    caches.iter_mut().for_each(|c| c.truncate(ctx));
                    black_box(logits)
                })
            });
        }
    }
    decode.finish();

    let mut prefill = c.benchmark_group(format!("prefill_{ctx}"));
    prefill
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(15));
    for batch in [1, 8] {
        for (name, sizes, assign) in &cases {
            if !sizes.contains(&batch) {
                continue;
            }
            let rows: Vec<_> = (0..batch).map(|i| assign(&adapters, i)).collect();
            let caches = &mut caches[..batch];
            prefill.throughput(Throughput::Elements((batch * ctx) as u64));
            prefill.bench_function(format!("batch{batch}/{name}"), |b| {
                b.iter(|| {
                    caches.iter_mut().for_each(|c| c.truncate(0));
                    black_box(forward(&model, caches, &prompts[..batch], &rows))
                })
            });
        }
    }
    prefill.finish();
}

criterion_group!(benches, bench_forward);
criterion_main!(benches);

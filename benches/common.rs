//! Shared by the benchmarks: a random checkpoint of a given shape written and loaded through the
//! real loader, random adapters, and one forward call over a batch.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use switchboard_model::{
    write_safetensors, AdapterConfig, CausalLm, ForwardMode, KvCache, LogitsWanted, LoraAdapter,
    LoraPair, Proj, SeqInput,
};

/// The dimensions that determine the cost of a forward pass.
pub struct Shape {
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub intermediate: usize,
    pub vocab: usize,
    /// Prompt length for prefill, and the context length a decode step attends to.
    pub context: usize,
}

/// Qwen2.5-0.5B.
pub const FULL: Shape = Shape {
    hidden: 896,
    layers: 24,
    heads: 14,
    kv_heads: 2,
    intermediate: 4864,
    vocab: 151_936,
    context: 128,
};

/// Same structure (GQA, tied head, biased q/k/v), small enough for a test run.
pub const TINY: Shape = Shape {
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

pub fn randn(shape: &[usize]) -> Tensor {
    Tensor::randn(0f32, INIT_STD as f32, shape, &Device::Cpu).expect("random tensor")
}

/// Writes `config.json` and `model.safetensors` of a random model of shape `s` into `dir`.
pub fn write_random_checkpoint(dir: &Path, s: &Shape) {
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
pub fn random_adapter(model: &CausalLm, name: &str) -> LoraAdapter {
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
pub fn forward(
    model: &CausalLm,
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
pub fn tokens(seq: usize, len: usize, offset: usize, vocab: usize) -> Vec<u32> {
    (offset..offset + len)
        .map(|t| ((seq * 1009 + t * 7919 + 1) % vocab) as u32)
        .collect()
}

/// Writes a random checkpoint of `shape` to a temporary directory, loads it, and builds four
/// random adapters.
pub fn random_model_and_adapters(shape: &Shape) -> (CausalLm, Vec<LoraAdapter>) {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("create temporary checkpoint directory");
    write_random_checkpoint(dir.path(), shape);
    let model = CausalLm::load(dir.path(), DType::F32, &Device::Cpu).expect("load checkpoint");
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
    (model, adapters)
}

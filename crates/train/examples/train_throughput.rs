//! LoRA training throughput (tokens per second) on a random checkpoint of a given shape.
//!
//! ```text
//! cargo run --release -p switchboard-train --example train_throughput -- tiny 20
//! cargo run --release -p switchboard-train --example train_throughput -- qwen2.5-0.5b 3
//! ```
//! The model is random (same shapes as the named one) with the tiny fixture's tokenizer; the
//! data are synthetic Alpaca records of about 100 tokens; LoRA r=16 on q_proj,v_proj, batch 4.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use switchboard_train::{train, LogRecord, Method, Silent, TrainConfig};

/// hidden, layers, heads, kv heads, intermediate, vocab.
fn shape(name: &str) -> Option<(usize, usize, usize, usize, usize, usize)> {
    match name {
        "tiny" => Some((64, 2, 4, 2, 128, 2000)),
        "qwen2.5-0.5b" => Some((896, 24, 14, 2, 4864, 151_936)),
        _ => None,
    }
}

fn random(shape: &[usize]) -> Tensor {
    Tensor::randn(0f32, 0.02, shape, &Device::Cpu).expect("random tensor")
}

fn write_checkpoint(
    dir: &Path,
    (h, layers, heads, kv_heads, i, vocab): (usize, usize, usize, usize, usize, usize),
) {
    let config = serde_json::json!({
        "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_act": "silu",
        "hidden_size": h, "intermediate_size": i, "num_hidden_layers": layers,
        "num_attention_heads": heads, "num_key_value_heads": kv_heads, "vocab_size": vocab,
        "max_position_embeddings": 4096, "rms_norm_eps": 1e-6, "rope_theta": 1_000_000.0,
        "tie_word_embeddings": true, "torch_dtype": "float32", "use_sliding_window": false,
    });
    std::fs::write(dir.join("config.json"), config.to_string()).expect("config.json");
    let kv = kv_heads * (h / heads);
    let ones = Tensor::ones(h, DType::F32, &Device::Cpu).expect("ones");
    let mut tensors = vec![
        ("model.embed_tokens.weight".to_string(), random(&[vocab, h])),
        ("model.norm.weight".to_string(), ones.clone()),
    ];
    for l in 0..layers {
        let p = format!("model.layers.{l}");
        for (name, dims) in [
            ("self_attn.q_proj.weight", vec![h, h]),
            ("self_attn.q_proj.bias", vec![h]),
            ("self_attn.k_proj.weight", vec![kv, h]),
            ("self_attn.k_proj.bias", vec![kv]),
            ("self_attn.v_proj.weight", vec![kv, h]),
            ("self_attn.v_proj.bias", vec![kv]),
            ("self_attn.o_proj.weight", vec![h, h]),
            ("mlp.gate_proj.weight", vec![i, h]),
            ("mlp.up_proj.weight", vec![i, h]),
            ("mlp.down_proj.weight", vec![h, i]),
        ] {
            tensors.push((format!("{p}.{name}"), random(&dims)));
        }
        tensors.push((format!("{p}.input_layernorm.weight"), ones.clone()));
        tensors.push((format!("{p}.post_attention_layernorm.weight"), ones.clone()));
    }
    let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
    switchboard_model::write_safetensors(&dir.join("model.safetensors"), &tensors, Some(metadata))
        .expect("model.safetensors");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/golden/base");
    for file in [
        "tokenizer.json",
        "tokenizer_config.json",
        "generation_config.json",
    ] {
        std::fs::copy(fixture.join(file), dir.join(file)).expect("tokenizer file");
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let name = args.get(1).map_or("tiny", String::as_str);
    let steps: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10);
    let Some(dims) = shape(name) else {
        eprintln!("usage: train_throughput [tiny|qwen2.5-0.5b] [steps]");
        std::process::exit(2);
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let base = dir.path().join("base");
    std::fs::create_dir(&base).expect("mkdir");
    write_checkpoint(&base, dims);
    let words = "the cell wall keeps water in while the membrane lets small ions pass through";
    let data: String = (0..64)
        .map(|i| {
            let question = format!("Question {i}: why does {words}?");
            let answer = format!("Because {words}, and {words}. Step {i}.");
            serde_json::json!({"instruction": question, "output": answer}).to_string() + "\n"
        })
        .collect();
    let data_path = dir.path().join("data.jsonl");
    std::fs::write(&data_path, data).expect("data");
    let config = TrainConfig {
        base: Some(base),
        data: vec![data_path.to_string_lossy().into_owned()],
        out: Some(dir.path().join("out")),
        grad_accum: 1,
        warmup_steps: 1,
        stop_after_steps: Some(steps),
        save_every: 0,
        ..TrainConfig::default()
    };
    let summary = train(&config, Method::Lora, &mut Silent).expect("training");
    let records: Vec<_> = summary
        .history
        .iter()
        .filter_map(|r| match r {
            LogRecord::Train(s) => Some(s),
            LogRecord::Val(_) => None,
        })
        .collect();
    // The first step pays one-off costs (allocation, page faults): report the rest.
    let steady = if records.len() > 1 {
        &records[1..]
    } else {
        &records[..]
    };
    let tokens: usize = steady.iter().map(|r| r.tokens).sum();
    let seconds: f64 = steady
        .iter()
        .map(|r| r.tokens as f64 / r.tokens_per_s)
        .sum();
    println!(
        "{name}: {} LoRA steps of {} tokens on average, {:.0} tokens/s (steady), {:.0} tokens/s (all steps)",
        records.len(),
        tokens / steady.len().max(1),
        tokens as f64 / seconds,
        summary.tokens_per_s
    );
}

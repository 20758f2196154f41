//! Llama-architecture checkpoints and GGUF files against transformers + peft
//! (`tests/fixtures/golden/llama`, see its README for how they were made and the tolerances).

mod common;

use std::collections::HashMap;
use std::path::PathBuf;

use common::{argmax, greedy_alone, max_abs_diff, LOGITS_TOL};
use switchboard_model::{
    Architecture, CausalLm, DType, Device, ForwardMode, LogitsWanted, LoraAdapter, SeqInput,
    Tensor,
};

const GGUF_TYPES: [&str; 4] = ["f32", "q8_0", "q4_0", "q4_1"];
const GREEDY_STEPS: usize = 16;

fn llama_dir() -> PathBuf {
    common::golden().join("llama")
}

fn load(path: PathBuf) -> CausalLm {
    CausalLm::load(&path, DType::F32, &Device::Cpu)
        .unwrap_or_else(|e| panic!("{} loads: {e}", path.display()))
}

fn tiny_hf() -> CausalLm {
    load(llama_dir().join("tiny_llama"))
}

fn tiny_gguf(kind: &str) -> CausalLm {
    load(llama_dir().join(format!("tiny_llama.{kind}.gguf")))
}

fn adapter_over(model: &CausalLm) -> LoraAdapter {
    LoraAdapter::load(
        llama_dir().join("tiny_llama_adapter"),
        model.config(),
        DType::F32,
        &Device::Cpu,
    )
    .expect("the tiny llama adapter loads")
}

struct Golden {
    tensors: HashMap<String, Tensor>,
    json: serde_json::Value,
}

impl Golden {
    fn load() -> Self {
        let dir = llama_dir();
        let tensors =
            candle_core::safetensors::load(dir.join("expected_tiny_llama.safetensors"), &Device::Cpu)
                .expect("expected tensors load");
        let text = std::fs::read_to_string(dir.join("expected_tiny_llama.json")).expect("json");
        Self {
            tensors,
            json: serde_json::from_str(&text).expect("json parses"),
        }
    }

    fn prompts(&self) -> Vec<Vec<u32>> {
        let ids = self.json["prompt_ids"].as_array().expect("prompt_ids");
        ids.iter()
            .map(|p| {
                p.as_array()
                    .expect("ids")
                    .iter()
                    .map(|v| v.as_u64().expect("id") as u32)
                    .collect()
            })
            .collect()
    }

    fn logits(&self, variant: &str, prompt: usize) -> &Tensor {
        let key = format!("{variant}.p{prompt}.logits");
        self.tensors.get(&key).unwrap_or_else(|| panic!("no {key}"))
    }

    fn greedy(&self, variant: &str, prompt: usize) -> Vec<u32> {
        self.json["cases"][variant][format!("p{prompt}")]["greedy_ids"]
            .as_array()
            .unwrap_or_else(|| panic!("no greedy ids for {variant} p{prompt}"))
            .iter()
            .map(|v| v.as_u64().expect("id") as u32)
            .collect()
    }
}

fn all_logits(model: &CausalLm, adapter: Option<&LoraAdapter>, prompt: &[u32]) -> Tensor {
    let mut cache = model.new_cache();
    let mut batch = [SeqInput {
        tokens: prompt,
        cache: &mut cache,
        adapter,
        logits: LogitsWanted::All,
    }];
    model
        .forward(&mut batch, ForwardMode::Inference)
        .expect("forward")
        .remove(0)
}

/// Logits at every prompt position within `tol` of `variant`, and the greedy ids equal.
fn check(model: &CausalLm, adapter: Option<&LoraAdapter>, variant: &str, tol: f32) {
    let golden = Golden::load();
    for (i, prompt) in golden.prompts().iter().enumerate() {
        let logits = all_logits(model, adapter, prompt);
        let diff = max_abs_diff(&logits, golden.logits(variant, i));
        assert!(diff <= tol, "{variant} p{i}: logits differ by {diff}");
        let (_, ids) = greedy_alone(model, adapter, prompt, GREEDY_STEPS);
        assert_eq!(ids, golden.greedy(variant, i), "{variant} p{i}: greedy ids");
    }
}

#[test]
fn llama_config_is_read_as_llama() {
    let model = tiny_hf();
    let cfg = model.config();
    assert_eq!(cfg.arch(), Architecture::Llama);
    assert_eq!(cfg.head_dim(), 16);
    assert!(!cfg.tie_word_embeddings);
    assert!(!cfg.proj_has_bias(switchboard_model::Proj::QProj));
}

#[test]
fn tiny_llama_matches_transformers() {
    check(&tiny_hf(), None, "base", LOGITS_TOL);
}

#[test]
fn tiny_llama_adapter_matches_peft() {
    let model = tiny_hf();
    let adapter = adapter_over(&model);
    check(&model, Some(&adapter), "adapter", LOGITS_TOL);
}

/// Adapter and no-adapter sequences in one call, prefilled together: each matches its golden.
#[test]
fn mixed_batch_over_the_llama_base() {
    let model = tiny_hf();
    let adapter = adapter_over(&model);
    let golden = Golden::load();
    let prompts = golden.prompts();
    let plan: Vec<(usize, Option<&LoraAdapter>)> = vec![
        (0, Some(&adapter)),
        (1, None),
        (2, Some(&adapter)),
        (0, None),
        (2, None),
    ];
    let mut caches: Vec<_> = plan.iter().map(|_| model.new_cache()).collect();
    let mut batch: Vec<SeqInput> = plan
        .iter()
        .zip(caches.iter_mut())
        .map(|((p, adapter), cache)| SeqInput {
            tokens: &prompts[*p],
            cache,
            adapter: *adapter,
            logits: LogitsWanted::All,
        })
        .collect();
    let logits = model
        .forward(&mut batch, ForwardMode::Inference)
        .expect("forward");
    for ((p, adapter), l) in plan.iter().zip(&logits) {
        let variant = if adapter.is_some() { "adapter" } else { "base" };
        let diff = max_abs_diff(l, golden.logits(variant, *p));
        assert!(diff <= LOGITS_TOL, "{variant} p{p} in a mixed batch: {diff}");
    }
}

/// Weights are dequantized at load, so every GGUF reproduces transformers' dequantized model.
#[test]
fn each_gguf_matches_transformers_reading_it() {
    for kind in GGUF_TYPES {
        check(&tiny_gguf(kind), None, &format!("gguf_{kind}"), LOGITS_TOL);
    }
}

#[test]
fn f32_gguf_equals_the_hf_checkpoint_with_and_without_adapter() {
    let (hf, gguf) = (tiny_hf(), tiny_gguf("f32"));
    assert_eq!(gguf.config().arch(), Architecture::Llama);
    let (hf_adapter, gguf_adapter) = (adapter_over(&hf), adapter_over(&gguf));
    for prompt in Golden::load().prompts() {
        let diff = max_abs_diff(&all_logits(&hf, None, &prompt), &all_logits(&gguf, None, &prompt));
        assert!(diff <= 1e-5, "base: {diff}");
        let diff = max_abs_diff(
            &all_logits(&hf, Some(&hf_adapter), &prompt),
            &all_logits(&gguf, Some(&gguf_adapter), &prompt),
        );
        assert!(diff <= 1e-5, "adapter: {diff}");
    }
}

/// The real bundled model: the chat prompts of `expected_smollm2.json` through the Q4_1 file.
mod smollm2 {
    use super::*;

    const LAST_TOL: f32 = 1e-3;

    fn golden() -> (serde_json::Value, HashMap<String, Tensor>) {
        let dir = llama_dir();
        let text = std::fs::read_to_string(dir.join("expected_smollm2.json")).expect("json");
        let tensors =
            candle_core::safetensors::load(dir.join("expected_smollm2.safetensors"), &Device::Cpu)
                .expect("tensors");
        (serde_json::from_str(&text).expect("parses"), tensors)
    }

    fn ids(v: &serde_json::Value) -> Vec<u32> {
        v.as_array()
            .expect("ids")
            .iter()
            .map(|v| v.as_u64().expect("id") as u32)
            .collect()
    }

    /// Top-10 ids at each position equal transformers', allowing swaps among values that tie
    /// within 1e-4; last-position logits within 1e-3; greedy continuation identical.
    #[test]
    fn q4_1_gguf_matches_transformers() {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf");
        let model = load(path);
        assert_eq!(model.config().vocab_size, 49152);
        assert!(model.config().tie_word_embeddings);
        let (json, tensors) = golden();
        for (i, case) in json["cases"].as_array().expect("cases").iter().enumerate() {
            let prompt = ids(&case["ids"]);
            let logits = all_logits(&model, None, &prompt);
            let last = logits.get(prompt.len() - 1).expect("last row");
            let diff = max_abs_diff(&last, &tensors[&format!("p{i}.last_logits")]);
            assert!(diff <= LAST_TOL, "p{i}: last logits differ by {diff}");

            let top_ids = tensors[&format!("p{i}.top10_ids")].to_vec2::<i64>().expect("ids");
            let top_vals = tensors[&format!("p{i}.top10_values")]
                .to_vec2::<f32>()
                .expect("values");
            let rows = logits.to_vec2::<f32>().expect("logits");
            for (pos, row) in rows.iter().enumerate() {
                for (rank, (&id, &value)) in top_ids[pos].iter().zip(&top_vals[pos]).enumerate() {
                    let ours = row[id as usize];
                    // The same id at the same rank, or a tie that may order either way.
                    let tied = (ours - value).abs() <= 1e-3;
                    assert!(tied, "p{i} pos {pos} rank {rank}: id {id} has {ours}, expected {value}");
                    let better = row.iter().filter(|&&v| v > value + 1e-3).count();
                    assert!(better <= rank, "p{i} pos {pos}: {better} ids beat rank {rank}");
                }
            }

            let expected = ids(&case["greedy_ids"]);
            let (_, greedy) = greedy_alone(&model, None, &prompt, expected.len());
            assert_eq!(greedy, expected, "p{i}: greedy continuation");
            assert_eq!(argmax(&last), expected[0]);
        }
    }
}

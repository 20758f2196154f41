//! Our Qwen2 + LoRA against logits and generations made by Hugging Face transformers + peft
//! (`tests/fixtures/golden`, see its README for how they were made and the tolerances).

mod common;

use common::*;
use switchboard_model::{ForwardMode, LogitsWanted, LoraAdapter, SeqInput};

const PROMPTS: usize = 3;
const NEW_TOKENS: usize = 20;

/// Full-prompt logits at every position, and the 20-token greedy continuation with its
/// per-step logits, for one variant.
fn check_variant(variant: &str, model_dir: &str, adapter: Option<&str>, mode: ForwardMode) {
    let model = load_model(model_dir);
    let adapter = adapter.map(|a| load_adapter(&model, a));
    let expected = Expected::load(variant);
    for i in 0..PROMPTS {
        let prompt = expected.ids(&format!("prompt{i}.input_ids"));
        let mut cache = model.new_cache();
        let mut batch = [SeqInput {
            tokens: &prompt,
            cache: &mut cache,
            adapter: adapter.as_ref(),
            logits: LogitsWanted::All,
        }];
        let logits = model.forward(&mut batch, mode).expect("forward").remove(0);
        let diff = max_abs_diff(&logits, expected.tensor(&format!("prompt{i}.logits")));
        assert!(
            diff <= LOGITS_TOL,
            "{variant} prompt{i} ({mode:?}): logits differ by {diff}"
        );
    }
    if mode == ForwardMode::Differentiable {
        return;
    }
    for i in 0..PROMPTS {
        let prompt = expected.ids(&format!("prompt{i}.input_ids"));
        let (step_logits, ids) = greedy_alone(&model, adapter.as_ref(), &prompt, NEW_TOKENS);
        assert_eq!(
            ids,
            expected.ids(&format!("prompt{i}.generated_ids")),
            "{variant} prompt{i} greedy ids"
        );
        let golden_steps = expected.tensor(&format!("prompt{i}.generated_step_logits"));
        for (s, logits) in step_logits.iter().enumerate() {
            let diff = max_abs_diff(logits, &golden_steps.get(s).expect("step"));
            assert!(
                diff <= LOGITS_TOL,
                "{variant} prompt{i} step {s}: logits differ by {diff}"
            );
        }
    }
}

#[test]
fn base_matches_transformers() {
    check_variant("base", "base", None, ForwardMode::Inference);
}

#[test]
fn adapter_a_matches_peft() {
    check_variant(
        "adapter_a",
        "base",
        Some("adapter_a"),
        ForwardMode::Inference,
    );
}

#[test]
fn adapter_b_matches_peft() {
    check_variant(
        "adapter_b",
        "base",
        Some("adapter_b"),
        ForwardMode::Inference,
    );
}

#[test]
fn merged_a_matches_transformers() {
    check_variant("merged_a", "merged_a", None, ForwardMode::Inference);
}

#[test]
fn differentiable_ops_compute_the_same_function() {
    check_variant("base", "base", None, ForwardMode::Differentiable);
    check_variant(
        "adapter_a",
        "base",
        Some("adapter_a"),
        ForwardMode::Differentiable,
    );
}

/// The left-padded batch of the golden data exists to check batching; in a ragged batch there
/// is no padding, so the equivalent claim is: the last logits of the three prompts, prefilled
/// together in one call, equal the golden batch's last logits.
#[test]
fn ragged_prefill_of_all_prompts_matches_padded_hf_batch() {
    let model = load_model("base");
    let expected = Expected::load("base");
    let prompts: Vec<Vec<u32>> = (0..PROMPTS)
        .map(|i| expected.ids(&format!("prompt{i}.input_ids")))
        .collect();
    let mut caches: Vec<_> = (0..PROMPTS).map(|_| model.new_cache()).collect();
    let mut batch: Vec<SeqInput> = prompts
        .iter()
        .zip(caches.iter_mut())
        .map(|(p, cache)| SeqInput {
            tokens: p,
            cache,
            adapter: None,
            logits: LogitsWanted::Last,
        })
        .collect();
    let logits = model
        .forward(&mut batch, ForwardMode::Inference)
        .expect("forward");
    let golden = expected.tensor("batch.last_logits");
    for (i, l) in logits.iter().enumerate() {
        let diff = max_abs_diff(l, &golden.get(i).expect("row"));
        assert!(diff <= LOGITS_TOL, "prompt{i}: {diff}");
    }
}

/// The adapters' scales and shapes as peft reports them.
#[test]
fn adapter_modules_match_peft_report() {
    let model = load_model("base");
    for name in ["adapter_a", "adapter_b"] {
        let adapter: LoraAdapter = load_adapter(&model, name);
        let report: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(golden().join(format!("expected_{name}.json"))).expect("json"),
        )
        .expect("parses");
        let modules = report["lora_modules"]
            .as_object()
            .expect("lora_modules is an object");
        assert_eq!(
            adapter.pairs().count(),
            modules.len(),
            "{name}: module count"
        );
        for (layer, proj, pair) in adapter.pairs() {
            let path = proj.module_path(layer);
            let entry = modules
                .iter()
                .find(|(k, _)| k.ends_with(&path))
                .unwrap_or_else(|| panic!("{name}: peft reports no {path}"))
                .1;
            assert_eq!(
                pair.rank() as u64,
                entry["r"].as_u64().expect("r"),
                "{path}"
            );
            let scaling = entry["scaling"].as_f64().expect("scaling");
            assert!(
                (pair.scale - scaling).abs() < 1e-12,
                "{path}: {} vs {scaling}",
                pair.scale
            );
        }
    }
}

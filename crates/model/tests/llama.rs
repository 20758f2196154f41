//! Llama-architecture checkpoints and GGUF files against transformers + peft
//! (`tests/fixtures/golden/llama`, see its README for how they were made and the tolerances).

mod common;

use std::collections::HashMap;
use std::path::PathBuf;

use common::{all_logits, argmax, greedy_alone, max_abs_diff, LOGITS_TOL};
use switchboard_model::{
    Architecture, CausalLm, DType, Device, ForwardMode, LogitsWanted, LoraAdapter, SeqInput, Tensor,
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
        let tensors = candle_core::safetensors::load(
            dir.join("expected_tiny_llama.safetensors"),
            &Device::Cpu,
        )
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
        assert!(
            diff <= LOGITS_TOL,
            "{variant} p{p} in a mixed batch: {diff}"
        );
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
        let diff = max_abs_diff(
            &all_logits(&hf, None, &prompt),
            &all_logits(&gguf, None, &prompt),
        );
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

            let top_ids = tensors[&format!("p{i}.top10_ids")]
                .to_vec2::<i64>()
                .expect("ids");
            let top_vals = tensors[&format!("p{i}.top10_values")]
                .to_vec2::<f32>()
                .expect("values");
            let rows = logits.to_vec2::<f32>().expect("logits");
            for (pos, row) in rows.iter().enumerate() {
                for (rank, (&id, &value)) in top_ids[pos].iter().zip(&top_vals[pos]).enumerate() {
                    let ours = row[id as usize];
                    // The same id at the same rank, or a tie that may order either way.
                    let tied = (ours - value).abs() <= 1e-3;
                    assert!(
                        tied,
                        "p{i} pos {pos} rank {rank}: id {id} has {ours}, expected {value}"
                    );
                    let better = row.iter().filter(|&&v| v > value + 1e-3).count();
                    assert!(
                        better <= rank,
                        "p{i} pos {pos}: {better} ids beat rank {rank}"
                    );
                }
            }

            let expected = ids(&case["greedy_ids"]);
            let (_, greedy) = greedy_alone(&model, None, &prompt, expected.len());
            assert_eq!(greedy, expected, "p{i}: greedy continuation");
            assert_eq!(argmax(&last), expected[0]);
        }
    }
}

#[test]
fn merge_works_over_a_llama_base() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("merged");
    switchboard_model::merge_adapter(
        &llama_dir().join("tiny_llama"),
        &llama_dir().join("tiny_llama_adapter"),
        &out,
    )
    .expect("merge");
    let merged = load(out);
    let golden = Golden::load();
    for (i, prompt) in golden.prompts().iter().enumerate() {
        let diff = max_abs_diff(
            &all_logits(&merged, None, prompt),
            golden.logits("adapter", i),
        );
        assert!(diff <= LOGITS_TOL, "merged p{i}: {diff}");
    }
}

/// Broken and unsupported GGUF files: an error naming the file and the field, never a panic.
mod bad_files {
    use super::*;
    use candle_core::quantized::gguf_file::{self, Value};
    use candle_core::quantized::QTensor;

    fn source() -> PathBuf {
        llama_dir().join("tiny_llama.f32.gguf")
    }

    fn load_err(path: &std::path::Path) -> String {
        match CausalLm::load(path, DType::F32, &Device::Cpu) {
            Ok(_) => panic!("{} should not load", path.display()),
            Err(e) => e.to_string(),
        }
    }

    /// Rewrites the tiny GGUF with `edit` applied to its metadata.
    fn rewrite(dest: &std::path::Path, edit: impl FnOnce(&mut Vec<(String, Value)>)) {
        let mut file = std::fs::File::open(source()).expect("open");
        let content = gguf_file::Content::read(&mut file).expect("read");
        let mut metadata: Vec<(String, Value)> = content.metadata.clone().into_iter().collect();
        edit(&mut metadata);
        let tensors: Vec<(String, QTensor)> = content
            .tensor_infos
            .keys()
            .map(|name| {
                let t = content
                    .tensor(&mut file, name, &Device::Cpu)
                    .expect("tensor");
                (name.clone(), t)
            })
            .collect();
        let mut out = std::fs::File::create(dest).expect("create");
        let meta_refs: Vec<(&str, &Value)> =
            metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let tensor_refs: Vec<(&str, &QTensor)> =
            tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
        gguf_file::write(&mut out, &meta_refs, &tensor_refs).expect("write");
    }

    #[test]
    fn truncated_and_garbage_files_are_refused_by_name() {
        let bytes = std::fs::read(source()).expect("read");
        let tmp = tempfile::tempdir().expect("tmp");
        let len = bytes.len();
        for cut in [0, 3, 4, 10, 24, 100, 1000, 20_000, len / 2, len - 10] {
            let path = tmp.path().join(format!("cut{cut}.gguf"));
            std::fs::write(&path, &bytes[..cut]).expect("write");
            let err = load_err(&path);
            assert!(err.contains(&format!("cut{cut}.gguf")), "cut {cut}: {err}");
        }
        let mut garbage = b"GGUF".to_vec();
        garbage.extend((0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
        let path = tmp.path().join("garbage.gguf");
        std::fs::write(&path, garbage).expect("write");
        assert!(load_err(&path).contains("garbage.gguf"));
    }

    #[test]
    fn unknown_architecture_and_missing_metadata_name_the_key() {
        let tmp = tempfile::tempdir().expect("tmp");
        let path = tmp.path().join("mamba.gguf");
        rewrite(&path, |meta| {
            for (k, v) in meta.iter_mut() {
                if k == "general.architecture" {
                    *v = Value::String("mamba".into());
                }
            }
        });
        let err = load_err(&path);
        assert!(
            err.contains("general.architecture") && err.contains("mamba"),
            "{err}"
        );

        let path = tmp.path().join("no-layers.gguf");
        rewrite(&path, |meta| meta.retain(|(k, _)| k != "llama.block_count"));
        let err = load_err(&path);
        assert!(
            err.contains("llama.block_count") && err.contains("missing"),
            "{err}"
        );

        let path = tmp.path().join("scaled.gguf");
        rewrite(&path, |meta| {
            meta.push((
                "llama.rope.scaling.type".into(),
                Value::String("yarn".into()),
            ))
        });
        let err = load_err(&path);
        assert!(
            err.contains("rope.scaling.type") && err.contains("yarn"),
            "{err}"
        );
    }

    /// A tensor of a type candle cannot read (IQ2_XXS, id 16): the error names tensor and type.
    #[test]
    fn unsupported_tensor_type_names_the_tensor_and_the_type() {
        let tmp = tempfile::tempdir().expect("tmp");
        let path = tmp.path().join("iq.gguf");
        rewrite(&path, |_| {});
        let mut bytes = std::fs::read(&path).expect("read");
        // Tensor info: name (u64 length + bytes), n_dims u32, dims u64 each, type u32, offset u64.
        let name = b"blk.1.ffn_down.weight";
        let at = bytes
            .windows(name.len())
            .position(|w| w == name)
            .expect("tensor info present");
        let dims_at = at + name.len();
        let n_dims =
            u32::from_le_bytes(bytes[dims_at..dims_at + 4].try_into().expect("4")) as usize;
        let type_at = dims_at + 4 + 8 * n_dims;
        bytes[type_at..type_at + 4].copy_from_slice(&16u32.to_le_bytes());
        std::fs::write(&path, bytes).expect("write");
        let err = load_err(&path);
        assert!(
            err.contains("blk.1.ffn_down.weight")
                && err.contains("IQ2_XXS")
                && err.contains("iq.gguf"),
            "{err}"
        );
    }
}

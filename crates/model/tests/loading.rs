//! Checkpoint and adapter files: sharded and reduced-precision checkpoints load; corrupt,
//! truncated, mis-shaped and foreign files are refused with errors that name the problem;
//! merged checkpoints reproduce transformers.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use common::*;
use switchboard_model::{
    merge_adapter, write_safetensors, CausalLm, DType, Device, LoraAdapter, ModelError, Tensor,
};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}

fn tensors_of(path: &Path) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(path, &Device::Cpu).expect("load safetensors")
}

fn pt_metadata() -> Option<HashMap<String, String>> {
    Some(HashMap::from([("format".to_string(), "pt".to_string())]))
}

/// Prompt-1 logits at every position of a model (and adapter).
fn prompt1_logits(model: &CausalLm, adapter: Option<&LoraAdapter>) -> Tensor {
    all_logits(
        model,
        adapter,
        &Expected::load("base").ids("prompt1.input_ids"),
    )
}

fn load_adapter_from(model: &CausalLm, dir: &Path) -> switchboard_model::Result<LoraAdapter> {
    LoraAdapter::load(dir, model.config(), DType::F32, &Device::Cpu)
}

/// Writes an adapter directory from a config JSON value and tensors.
fn write_adapter(dir: &Path, config: &serde_json::Value, tensors: HashMap<String, Tensor>) {
    std::fs::create_dir_all(dir).expect("mkdir");
    std::fs::write(dir.join("adapter_config.json"), config.to_string()).expect("write config");
    let mut list: Vec<(String, Tensor)> = tensors.into_iter().collect();
    list.sort_by(|a, b| a.0.cmp(&b.0));
    write_safetensors(&dir.join("adapter_model.safetensors"), &list, pt_metadata()).expect("write");
}

fn golden_adapter_parts(name: &str) -> (serde_json::Value, HashMap<String, Tensor>) {
    let dir = golden().join(name);
    let config = serde_json::from_str(
        &std::fs::read_to_string(dir.join("adapter_config.json")).expect("read config"),
    )
    .expect("json");
    (config, tensors_of(&dir.join("adapter_model.safetensors")))
}

#[test]
fn sharded_checkpoint_loads_like_the_single_file() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("sharded");
    std::fs::create_dir(&dir).expect("mkdir");
    for f in ["config.json", "generation_config.json"] {
        std::fs::copy(golden().join("base").join(f), dir.join(f)).expect("copy");
    }
    let mut all: Vec<(String, Tensor)> = tensors_of(&golden().join("base/model.safetensors"))
        .into_iter()
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    let (first, second) = all.split_at(all.len() / 2);
    let mut weight_map = serde_json::Map::new();
    for (name, shard) in [
        ("model-00001-of-00002.safetensors", first),
        ("model-00002-of-00002.safetensors", second),
    ] {
        write_safetensors(&dir.join(name), shard, pt_metadata()).expect("write shard");
        for (key, _) in shard {
            weight_map.insert(key.clone(), name.into());
        }
    }
    let index = serde_json::json!({"metadata": {"total_size": 0}, "weight_map": weight_map});
    std::fs::write(dir.join("model.safetensors.index.json"), index.to_string()).expect("index");

    let model = CausalLm::load(&dir, DType::F32, &Device::Cpu).expect("sharded loads");
    let diff = max_abs_diff(
        &prompt1_logits(&model, None),
        Expected::load("base").tensor("prompt1.logits"),
    );
    assert!(diff <= LOGITS_TOL, "{diff}");

    // A shard named in the index but missing is reported by name.
    std::fs::remove_file(dir.join("model-00002-of-00002.safetensors")).expect("rm");
    let err = CausalLm::load(&dir, DType::F32, &Device::Cpu).expect_err("missing shard");
    assert!(
        err.to_string().contains("model-00002-of-00002.safetensors"),
        "{err}"
    );
}

#[test]
fn bf16_and_f16_checkpoints_and_compute() {
    let expected = Expected::load("base");
    let golden_logits = expected.tensor("prompt1.logits");
    let tmp = tempfile::tempdir().expect("tmp");
    let write_base_as = |dir: &Path, cast: &dyn Fn(&Tensor) -> Tensor| {
        copy_dir(&golden().join("base"), dir);
        let mut tensors: Vec<(String, Tensor)> = tensors_of(&dir.join("model.safetensors"))
            .into_iter()
            .map(|(k, t)| (k, cast(&t)))
            .collect();
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        std::fs::remove_file(dir.join("model.safetensors")).expect("rm");
        write_safetensors(&dir.join("model.safetensors"), &tensors, pt_metadata()).expect("write");
    };
    for (dtype, name) in [(DType::BF16, "bfloat16"), (DType::F16, "float16")] {
        // The same rounded weights, stored once in `dtype` and once widened back to f32: loading
        // the narrow file into f32 (the CPU default) must be exact.
        let narrow = tmp.path().join(name);
        write_base_as(&narrow, &|t| t.to_dtype(dtype).expect("cast"));
        let widened = tmp.path().join(format!("{name}_as_f32"));
        write_base_as(&widened, &|t| {
            t.to_dtype(dtype)
                .and_then(|t| t.to_dtype(DType::F32))
                .expect("cast")
        });
        let from_narrow = prompt1_logits(
            &CausalLm::load(&narrow, DType::F32, &Device::Cpu).expect("loads"),
            None,
        );
        let from_widened = prompt1_logits(
            &CausalLm::load(&widened, DType::F32, &Device::Cpu).expect("loads"),
            None,
        );
        assert!(
            max_abs_diff(&from_narrow, &from_widened) <= 1e-6,
            "{name}: conversion is exact"
        );
        // Rounding the weights to 8 (bf16) or 11 (f16) mantissa bits moves logits of magnitude
        // ~19 by about a tenth at most (golden README: reduced precision agrees to ~5e-2).
        let diff = max_abs_diff(&from_narrow, golden_logits);
        assert!(diff < 0.25, "{name} weights: {diff}");
    }
    // Computing in f16 end to end.
    let model =
        CausalLm::load(golden().join("base"), DType::F16, &Device::Cpu).expect("f16 compute");
    let adapter = LoraAdapter::load(
        golden().join("adapter_a"),
        model.config(),
        DType::F16,
        &Device::Cpu,
    )
    .expect("adapter loads in f16");
    let diff = max_abs_diff(
        &prompt1_logits(&model, Some(&adapter)),
        Expected::load("adapter_a").tensor("prompt1.logits"),
    );
    assert!(diff < 0.25, "f16 compute: {diff}");
}

#[test]
fn corrupt_and_truncated_weights_are_refused_by_name() {
    let tmp = tempfile::tempdir().expect("tmp");
    let weights = std::fs::read(golden().join("base/model.safetensors")).expect("read");
    let cases: [(&str, Vec<u8>); 3] = [
        ("garbage", b"this is not a safetensors file at all".to_vec()),
        ("truncated", weights[..weights.len() / 2].to_vec()),
        ("empty", Vec::new()),
    ];
    for (name, bytes) in cases {
        let dir = tmp.path().join(name);
        copy_dir(&golden().join("base"), &dir);
        std::fs::write(dir.join("model.safetensors"), bytes).expect("write");
        let err = CausalLm::load(&dir, DType::F32, &Device::Cpu).expect_err(name);
        assert!(
            matches!(err, ModelError::Safetensors { .. }),
            "{name}: {err:?}"
        );
        assert!(
            err.to_string().contains("model.safetensors"),
            "{name}: {err}"
        );
    }
    // A valid file missing a tensor names the tensor.
    let dir = tmp.path().join("missing_tensor");
    copy_dir(&golden().join("base"), &dir);
    let mut tensors: Vec<(String, Tensor)> = tensors_of(&dir.join("model.safetensors"))
        .into_iter()
        .filter(|(k, _)| k != "model.layers.1.mlp.up_proj.weight")
        .collect();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    std::fs::remove_file(dir.join("model.safetensors")).expect("rm");
    write_safetensors(&dir.join("model.safetensors"), &tensors, pt_metadata()).expect("write");
    let err = CausalLm::load(&dir, DType::F32, &Device::Cpu).expect_err("missing tensor");
    assert!(matches!(err, ModelError::InvalidWeights { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("model.layers.1.mlp.up_proj.weight"),
        "{err}"
    );
    // Weights of another shape than config.json says: named, with the shapes.
    let dir = tmp.path().join("wrong_shape");
    copy_dir(&golden().join("base"), &dir);
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).expect("read"))
            .expect("json");
    config["intermediate_size"] = 96.into();
    std::fs::write(dir.join("config.json"), config.to_string()).expect("write");
    let err = CausalLm::load(&dir, DType::F32, &Device::Cpu)
        .expect_err("wrong shape")
        .to_string();
    assert!(err.contains("gate_proj") && err.contains("shape"), "{err}");

    // Missing directory / config / weights.
    let err =
        CausalLm::load(tmp.path().join("nope"), DType::F32, &Device::Cpu).expect_err("no dir");
    assert!(err.to_string().contains("does not exist"), "{err}");
    let dir = tmp.path().join("no_weights");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::copy(golden().join("base/config.json"), dir.join("config.json")).expect("copy");
    let err = CausalLm::load(&dir, DType::F32, &Device::Cpu).expect_err("no weights");
    assert!(err.to_string().contains("no model.safetensors"), "{err}");
    std::fs::write(dir.join("config.json"), "{ not json").expect("write");
    let err = CausalLm::load(&dir, DType::F32, &Device::Cpu).expect_err("bad json");
    assert!(err.to_string().contains("config.json"), "{err}");
}

#[test]
fn untied_head_reads_lm_head_weight() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("untied");
    copy_dir(&golden().join("base"), &dir);
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).expect("read"))
            .expect("json");
    config["tie_word_embeddings"] = false.into();
    std::fs::write(dir.join("config.json"), config.to_string()).expect("write");
    // Without lm_head.weight, an untied model must refuse to load rather than guess.
    let err = CausalLm::load(&dir, DType::F32, &Device::Cpu).expect_err("no lm_head");
    assert!(err.to_string().contains("lm_head.weight"), "{err}");
    // With a head equal to the embeddings it computes the golden logits.
    let mut tensors: Vec<(String, Tensor)> = tensors_of(&dir.join("model.safetensors"))
        .into_iter()
        .collect();
    let embed = tensors
        .iter()
        .find(|(k, _)| k == "model.embed_tokens.weight")
        .expect("embed")
        .1
        .clone();
    tensors.push(("lm_head.weight".into(), embed.copy().expect("copy")));
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    std::fs::remove_file(dir.join("model.safetensors")).expect("rm");
    write_safetensors(&dir.join("model.safetensors"), &tensors, pt_metadata()).expect("write");
    let model = CausalLm::load(&dir, DType::F32, &Device::Cpu).expect("untied loads");
    let diff = max_abs_diff(
        &prompt1_logits(&model, None),
        Expected::load("base").tensor("prompt1.logits"),
    );
    assert!(diff <= LOGITS_TOL, "{diff}");
}

#[test]
fn rank_and_alpha_patterns_change_the_computation_like_peft() {
    let model = load_model("base");
    let tmp = tempfile::tempdir().expect("tmp");
    // adapter_b (r=4, alpha=32 -> scale 8) re-described with a default r of 16 and a
    // rank_pattern giving its modules r=4: same tensors, same scale, same logits. If the
    // rank_pattern were ignored the shapes would not fit.
    let (mut config, tensors) = golden_adapter_parts("adapter_b");
    config["r"] = 16.into();
    config["rank_pattern"] = serde_json::json!({"q_proj": 4, "v_proj": 4});
    let dir = tmp.path().join("b_rank_pattern");
    write_adapter(&dir, &config, tensors.clone());
    let adapter = load_adapter_from(&model, &dir).expect("rank_pattern adapter loads");
    let diff = max_abs_diff(
        &prompt1_logits(&model, Some(&adapter)),
        Expected::load("adapter_b").tensor("prompt1.logits"),
    );
    assert!(diff <= LOGITS_TOL, "rank_pattern: {diff}");

    // alpha_pattern doubling q_proj's alpha equals doubling q_proj's lora_B.
    let (mut config, mut doubled) = golden_adapter_parts("adapter_b");
    config["alpha_pattern"] = serde_json::json!({"q_proj": 64});
    let dir = tmp.path().join("b_alpha_pattern");
    write_adapter(&dir, &config, tensors.clone());
    let by_pattern = load_adapter_from(&model, &dir).expect("alpha_pattern adapter loads");
    for (key, t) in doubled.iter_mut() {
        if key.contains("q_proj.lora_B") {
            *t = (&*t * 2.0).expect("scale");
        }
    }
    let (config, _) = golden_adapter_parts("adapter_b");
    let dir = tmp.path().join("b_doubled");
    write_adapter(&dir, &config, doubled);
    let by_weights = load_adapter_from(&model, &dir).expect("doubled adapter loads");
    let (x, y) = (
        prompt1_logits(&model, Some(&by_pattern)),
        prompt1_logits(&model, Some(&by_weights)),
    );
    assert!(max_abs_diff(&x, &y) <= 1e-5);
    assert!(
        max_abs_diff(&x, Expected::load("adapter_b").tensor("prompt1.logits")) > 1e-2,
        "pattern had an effect"
    );

    // rsLoRA: alpha / sqrt(r) = 32 / 2 = 16 instead of 8, i.e. the same as doubling alpha.
    let (mut config, _) = golden_adapter_parts("adapter_b");
    config["use_rslora"] = true.into();
    config["lora_alpha"] = 16.into(); // 16 / sqrt(4) = 8: the golden scale again
    let dir = tmp.path().join("b_rslora");
    write_adapter(&dir, &config, tensors.clone());
    let rslora = load_adapter_from(&model, &dir).expect("rslora adapter loads");
    let diff = max_abs_diff(
        &prompt1_logits(&model, Some(&rslora)),
        Expected::load("adapter_b").tensor("prompt1.logits"),
    );
    assert!(diff <= LOGITS_TOL, "rslora: {diff}");

    // target_modules as a regex string selecting exactly q_proj and v_proj.
    let (mut config, _) = golden_adapter_parts("adapter_b");
    config["target_modules"] = r"model\.layers\.\d+\.self_attn\.(q|v)_proj".into();
    let dir = tmp.path().join("b_regex");
    write_adapter(&dir, &config, tensors);
    let regex = load_adapter_from(&model, &dir).expect("regex target_modules loads");
    let diff = max_abs_diff(
        &prompt1_logits(&model, Some(&regex)),
        Expected::load("adapter_b").tensor("prompt1.logits"),
    );
    assert!(diff <= LOGITS_TOL, "regex targets: {diff}");
}

#[test]
fn bad_adapters_are_refused_with_clear_errors() {
    let model = load_model("base");
    let tmp = tempfile::tempdir().expect("tmp");
    let mut cases: Vec<(&str, serde_json::Value, HashMap<String, Tensor>, &str)> = Vec::new();

    let (config, mut wrong_shape) = golden_adapter_parts("adapter_b");
    let key = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight".to_string();
    wrong_shape.insert(
        key,
        Tensor::zeros((4, 32), DType::F32, &Device::Cpu).expect("zeros"),
    );
    cases.push(("wrong_shape", config, wrong_shape, "do not fit the base"));

    let (config, tensors) = golden_adapter_parts("adapter_b");
    let foreign: HashMap<String, Tensor> = tensors
        .into_iter()
        .map(|(k, t)| {
            (
                k.replace("model.layers", "transformer.h")
                    .replace("self_attn.q_proj", "attn.c_attn"),
                t,
            )
        })
        .collect();
    let mut gpt2 = config.clone();
    gpt2["target_modules"] = serde_json::json!(["c_attn"]);
    cases.push((
        "other_architecture",
        gpt2,
        foreign.clone(),
        "another architecture",
    ));
    cases.push((
        "other_architecture_keys",
        config,
        foreign,
        "another architecture",
    ));

    for (field, value, needle) in [
        ("use_dora", serde_json::json!(true), "use_dora"),
        (
            "modules_to_save",
            serde_json::json!(["lm_head"]),
            "modules_to_save",
        ),
        ("fan_in_fan_out", serde_json::json!(true), "fan_in_fan_out"),
        ("bias", serde_json::json!("all"), "bias"),
        (
            "layers_to_transform",
            serde_json::json!([0]),
            "layers_to_transform",
        ),
        (
            "target_modules",
            serde_json::json!(["q_proj", "v_proj", "lm_head"]),
            "lm_head",
        ),
        (
            "target_modules",
            serde_json::json!(["q_proj", "v_proj", "k_proj"]),
            "no lora_A/lora_B",
        ),
        (
            "target_modules",
            serde_json::json!(["q_proj"]),
            "not selected by target_modules",
        ),
        (
            "target_modules",
            serde_json::json!("nothing\\.matches"),
            "select no module",
        ),
        ("peft_type", serde_json::json!("IA3"), "peft_type"),
    ] {
        let (mut config, tensors) = golden_adapter_parts("adapter_b");
        config[field] = value;
        cases.push((field, config, tensors, needle));
    }

    let (config, mut extra_layer) = golden_adapter_parts("adapter_b");
    let t = extra_layer.values().next().expect("a tensor").clone();
    extra_layer.insert(
        "base_model.model.model.layers.7.self_attn.q_proj.lora_A.weight".into(),
        t,
    );
    cases.push((
        "layer_out_of_range",
        config,
        extra_layer,
        "layer 7 does not exist",
    ));

    let (config, mut embed) = golden_adapter_parts("adapter_b");
    let t = embed.values().next().expect("a tensor").clone();
    embed.insert(
        "base_model.model.model.embed_tokens.lora_embedding_A".into(),
        t,
    );
    cases.push(("embedding_lora", config, embed, "embed_tokens"));

    for (i, (name, config, tensors, needle)) in cases.into_iter().enumerate() {
        let dir = tmp.path().join(format!("{i}_{name}"));
        write_adapter(&dir, &config, tensors);
        let err = load_adapter_from(&model, &dir).expect_err(name).to_string();
        assert!(
            err.contains(needle),
            "{name}: {err:?} should mention {needle:?}"
        );
        assert!(
            err.contains(&dir.display().to_string()),
            "{name}: error names the adapter: {err}"
        );
    }

    // Files missing or corrupt.
    let dir = tmp.path().join("no_config");
    std::fs::create_dir(&dir).expect("mkdir");
    let err = load_adapter_from(&model, &dir)
        .expect_err("no config")
        .to_string();
    assert!(err.contains("adapter_config.json"), "{err}");
    let dir = tmp.path().join("corrupt_weights");
    copy_dir(&golden().join("adapter_a"), &dir);
    let bytes = std::fs::read(dir.join("adapter_model.safetensors")).expect("read");
    std::fs::write(
        dir.join("adapter_model.safetensors"),
        &bytes[..bytes.len() - 100],
    )
    .expect("truncate");
    let err = load_adapter_from(&model, &dir)
        .expect_err("truncated")
        .to_string();
    assert!(err.contains("adapter_model.safetensors"), "{err}");
}

#[test]
fn adapter_for_a_smaller_base_is_refused() {
    let model = load_model("base");
    let mut other = model.config().clone();
    other.num_hidden_layers = 1;
    let err = LoraAdapter::load(golden().join("adapter_a"), &other, DType::F32, &Device::Cpu)
        .expect_err("layer 1 does not exist in a 1-layer base")
        .to_string();
    assert!(err.contains("layer 1 does not exist"), "{err}");
}

#[test]
fn save_peft_round_trips() {
    let model = load_model("base");
    let adapter = load_adapter(&model, "adapter_a");
    let tmp = tempfile::tempdir().expect("tmp");
    let dir: PathBuf = tmp.path().join("saved_a");
    adapter.save_peft(&dir).expect("save");
    let reloaded = load_adapter_from(&model, &dir).expect("reload");
    let diff = max_abs_diff(
        &prompt1_logits(&model, Some(&reloaded)),
        Expected::load("adapter_a").tensor("prompt1.logits"),
    );
    assert!(diff <= LOGITS_TOL, "{diff}");
    // Never overwrites an existing adapter directory.
    assert!(adapter.save_peft(&dir).is_err());
}

#[test]
fn merge_reproduces_peft_merge_and_unload() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("merged");
    let report =
        merge_adapter(&golden().join("base"), &golden().join("adapter_a"), &out).expect("merge");
    assert_eq!(report.merged_modules, 14);
    assert!(
        report.copied_files.contains(&"config.json".to_string()),
        "{:?}",
        report.copied_files
    );
    assert!(report.copied_files.contains(&"tokenizer.json".to_string()));

    let ours = tensors_of(&out.join("model.safetensors"));
    let theirs = tensors_of(&golden().join("merged_a/model.safetensors"));
    assert_eq!(ours.len(), theirs.len());
    for (key, t) in &theirs {
        let diff = max_abs_diff(&ours[key], t);
        assert!(diff <= 1e-5, "{key}: {diff}");
    }
    // transformers needs {"format": "pt"} metadata to load safetensors.
    let bytes = std::fs::read(out.join("model.safetensors")).expect("read");
    let (_, meta) = safetensors_metadata(&bytes);
    assert_eq!(meta.as_deref(), Some("pt"));

    let model = CausalLm::load(&out, DType::F32, &Device::Cpu).expect("merged loads");
    let diff = max_abs_diff(
        &prompt1_logits(&model, None),
        Expected::load("merged_a").tensor("prompt1.logits"),
    );
    assert!(diff <= LOGITS_TOL, "{diff}");

    let err = merge_adapter(&golden().join("base"), &golden().join("adapter_a"), &out)
        .expect_err("exists");
    assert!(err.to_string().contains("not empty"), "{err}");
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path()).expect("ls").collect();
    assert_eq!(leftovers.len(), 1, "no temporary directories left behind");
}

fn safetensors_metadata(bytes: &[u8]) -> (usize, Option<String>) {
    let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).expect("header json");
    (
        n,
        header["__metadata__"]["format"]
            .as_str()
            .map(str::to_string),
    )
}

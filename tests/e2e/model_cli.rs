//! `switchboard model inspect` and `switchboard model import` as a user runs them.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use switchboard_engine::{ChatMessage, TextTokenizer};
use switchboard_model::{
    CausalLm, DType, Device, ForwardMode, GgufFile, LogitsWanted, SeqInput, Tensor,
};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn llama_golden() -> PathBuf {
    repo().join("tests/fixtures/golden/llama")
}

fn smollm2() -> PathBuf {
    repo().join("models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf")
}

fn switchboard(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .env("RUST_LIB_BACKTRACE", "0")
        .output()
        .expect("binary runs")
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("json file");
    serde_json::from_str(&text).expect("valid json")
}

/// Runs `model import` and asserts that it succeeded.
fn import(gguf: &Path, out: &Path) -> String {
    let run = switchboard(&["model", "import", path(gguf), "--out", path(out)]);
    assert!(
        run.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    String::from_utf8_lossy(&run.stdout).into_owned()
}

/// Logits at every position of each prompt.
fn all_logits(model: &CausalLm, prompts: &[Vec<u32>]) -> Vec<Tensor> {
    prompts
        .iter()
        .map(|prompt| {
            let mut cache = model.new_cache();
            let mut batch = [SeqInput {
                tokens: prompt,
                cache: &mut cache,
                adapter: None,
                logits: LogitsWanted::All,
            }];
            model
                .forward(&mut batch, ForwardMode::Inference)
                .expect("forward")
                .remove(0)
        })
        .collect()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .and_then(|d| d.abs())
        .and_then(|d| d.max_all())
        .and_then(|d| d.to_scalar::<f32>())
        .expect("diff")
}

fn tiny_prompts() -> Vec<Vec<u32>> {
    let expected = read_json(&llama_golden().join("expected_tiny_llama.json"));
    serde_json::from_value(expected["prompt_ids"].clone()).expect("prompt_ids")
}

/// The imported checkpoint computes exactly what the GGUF file computes.
fn assert_same_logits(gguf: &Path, imported: &Path) {
    let direct = CausalLm::load(gguf, DType::F32, &Device::Cpu).expect("gguf loads");
    let converted = CausalLm::load(imported, DType::F32, &Device::Cpu).expect("import loads");
    let prompts = tiny_prompts();
    let (a, b) = (
        all_logits(&direct, &prompts),
        all_logits(&converted, &prompts),
    );
    for (i, (a, b)) in a.iter().zip(&b).enumerate() {
        assert_eq!(a.dims(), b.dims());
        let diff = max_abs_diff(a, b);
        assert!(diff <= 1e-6, "prompt {i}: imported logits differ by {diff}");
    }
}

/// The safetensors header: tensor names and dtypes, and `__metadata__`.
fn safetensors_header(file: &Path) -> serde_json::Map<String, Value> {
    let bytes = std::fs::read(file).expect("safetensors file");
    let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    let header: Value = serde_json::from_slice(&bytes[8..8 + n]).expect("header json");
    header.as_object().expect("object").clone()
}

#[test]
fn import_writes_a_checkpoint_that_computes_and_tokenizes_like_the_gguf() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("x");
    let gguf = llama_golden().join("tiny_llama.q8_0.gguf");
    let stdout = import(&gguf, &out);
    assert!(
        stdout.contains("imported") && stdout.contains("21 tensors"),
        "{stdout}"
    );

    for file in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "generation_config.json",
    ] {
        assert!(out.join(file).is_file(), "{file} written");
    }
    let config = read_json(&out.join("config.json"));
    assert_eq!(config["architectures"][0], "LlamaForCausalLM");
    assert_eq!(config["tie_word_embeddings"], false);
    let header = safetensors_header(&out.join("model.safetensors"));
    assert_eq!(
        header["__metadata__"],
        serde_json::json!({ "format": "pt" })
    );
    let names: Vec<&String> = header.keys().filter(|k| *k != "__metadata__").collect();
    assert_eq!(names.len(), 21);
    assert!(names.iter().any(|n| *n == "lm_head.weight"));
    assert!(header
        .iter()
        .filter(|(k, _)| *k != "__metadata__")
        .all(|(_, info)| info["dtype"] == "F32"));

    assert_same_logits(&gguf, &out);

    // The tokenizer: identical ids on every golden case, and the same chat template.
    let source = GgufFile::open(&gguf).expect("gguf opens");
    let from_gguf = TextTokenizer::from_gguf_metadata(&gguf, source.metadata()).expect("gguf tok");
    let imported = TextTokenizer::from_dir(&out).expect("imported tokenizer loads");
    assert_eq!(imported.vocab_size(), from_gguf.vocab_size());
    assert_eq!(imported.eos_token_ids(), from_gguf.eos_token_ids());
    let cases = read_json(&repo().join("tests/fixtures/golden/tokenize.json"));
    let encode_cases = cases["cases"].as_array().expect("cases");
    assert!(!encode_cases.is_empty());
    for case in encode_cases {
        let text = case["text"].as_str().expect("text");
        let ids = imported.encode(text).expect("encodes");
        assert_eq!(ids, from_gguf.encode(text).expect("encodes"), "{text:?}");
        let expected: Vec<u32> = serde_json::from_value(case["ids"].clone()).expect("ids");
        assert_eq!(ids, expected, "{text:?}");
        assert_eq!(
            imported.decode(&ids, false).expect("decodes"),
            from_gguf.decode(&ids, false).expect("decodes")
        );
    }
    let chat_cases = cases["chat_template_cases"].as_array().expect("chat cases");
    assert!(!chat_cases.is_empty());
    for case in chat_cases {
        let messages: Vec<ChatMessage> = case["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(|m| {
                ChatMessage::new(
                    m["role"].as_str().expect("role"),
                    m["content"].as_str().expect("content"),
                )
            })
            .collect();
        let add = case["add_generation_prompt"].as_bool().unwrap_or(true);
        let rendered = imported
            .apply_chat_template(&messages, add)
            .expect("renders");
        assert_eq!(
            rendered,
            from_gguf
                .apply_chat_template(&messages, add)
                .expect("renders")
        );
        assert_eq!(rendered, case["rendered"].as_str().expect("rendered"));
    }
}

/// A tied-head GGUF (no `output.weight`) imports without `lm_head.weight` and with
/// `tie_word_embeddings: true`, and still computes what the GGUF computes.
#[test]
fn import_of_a_tied_model_writes_no_lm_head() {
    use candle_core::quantized::gguf_file;

    let tmp = tempfile::tempdir().expect("tmp");
    let source = llama_golden().join("tiny_llama.q8_0.gguf");
    let mut reader = std::fs::File::open(&source).expect("gguf");
    let content = gguf_file::Content::read(&mut reader).expect("gguf reads");
    let mut tensors = Vec::new();
    for name in content.tensor_infos.keys() {
        if name != "output.weight" {
            let t = content
                .tensor(&mut reader, name, &candle_core::Device::Cpu)
                .expect("tensor");
            tensors.push((name.clone(), t));
        }
    }
    let tied = tmp.path().join("tied.gguf");
    let mut writer = std::fs::File::create(&tied).expect("create");
    let metadata: Vec<(&str, &gguf_file::Value)> = content
        .metadata
        .iter()
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    let tensor_refs: Vec<(&str, &candle_core::quantized::QTensor)> =
        tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    gguf_file::write(&mut writer, &metadata, &tensor_refs).expect("writes gguf");
    drop(writer);

    let out = tmp.path().join("tied-hf");
    let stdout = import(&tied, &out);
    assert!(stdout.contains("tied"), "{stdout}");
    let config = read_json(&out.join("config.json"));
    assert_eq!(config["tie_word_embeddings"], true);
    let header = safetensors_header(&out.join("model.safetensors"));
    assert!(!header.contains_key("lm_head.weight"));
    assert!(header.contains_key("model.embed_tokens.weight"));
    assert_same_logits(&tied, &out);

    let run = switchboard(&["model", "inspect", path(&tied)]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains("tied lm_head: yes"), "{stdout}");
}

#[test]
fn import_refuses_a_non_empty_output_directory() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("taken");
    std::fs::create_dir(&out).expect("mkdir");
    std::fs::write(out.join("keep.txt"), "mine").expect("write");
    let gguf = llama_golden().join("tiny_llama.q8_0.gguf");
    let run = switchboard(&["model", "import", path(&gguf), "--out", path(&out)]);
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains(path(&out)), "{stderr}");
    assert!(stderr.contains("not empty"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let left: Vec<_> = std::fs::read_dir(&out).expect("dir").collect();
    assert_eq!(left.len(), 1, "the directory is left as it was");

    // A checkpoint directory is not something to import.
    let hf = llama_golden().join("tiny_llama");
    let run = switchboard(&[
        "model",
        "import",
        path(&hf),
        "--out",
        path(&tmp.path().join("o")),
    ]);
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("tiny_llama") && stderr.contains("directory"),
        "{stderr}"
    );
    assert!(!tmp.path().join("o").exists());
}

#[test]
fn inspect_describes_a_real_gguf() {
    let gguf = smollm2();
    let run = switchboard(&["model", "inspect", path(&gguf)]);
    assert!(
        run.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let text = String::from_utf8_lossy(&run.stdout);
    for needle in [
        "GGUF v3",
        "llama (LlamaForCausalLM)",
        "layers 30",
        "Q4_1",
        "Q8_0",
        "smollm",
        "49152",
        "134.5M",
        "tied lm_head: yes",
        "tied (shares token_embd)",
        "<|im_start|>",
        "chat template",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }

    let run = switchboard(&["model", "inspect", "--json", path(&gguf)]);
    assert!(run.status.success());
    let report: Value = serde_json::from_slice(&run.stdout).expect("json report");
    assert_eq!(report["format"], "gguf");
    assert_eq!(report["architecture"], "llama");
    assert_eq!(report["config"]["layers"], 30);
    assert_eq!(report["config"]["vocab_size"], 49152);
    assert_eq!(report["config"]["tie_word_embeddings"], true);
    assert_eq!(report["file_type"], "Q4_1");
    let params = report["parameters"].as_f64().expect("parameters");
    assert!((130e6..=140e6).contains(&params), "{params}");
    let groups = report["tensor_groups"].as_array().expect("groups");
    let group = |name: &str| {
        groups
            .iter()
            .find(|g| g["name"] == name)
            .unwrap_or_else(|| panic!("group {name}"))
    };
    assert_eq!(group("attention q/k/v/o")["tensors"], 120);
    assert_eq!(group("attention q/k/v/o")["types"]["Q4_1"], 120);
    assert_eq!(group("mlp gate/up/down")["tensors"], 90);
    assert_eq!(group("token_embd")["types"]["Q8_0"], 1);
    assert_eq!(group("lm_head")["tied"], true);
    assert_eq!(report["tokenizer"]["gguf_pre"], "smollm");
    assert_eq!(report["tokenizer"]["vocab_size"], 49152);
    // 2 (K and V) x 30 layers x 3 kv heads x 64 dims x 4 bytes.
    assert_eq!(report["memory"]["kv_cache_f32_bytes_per_token"], 46080);
    assert_eq!(
        report["memory"]["weights_f32_bytes"].as_f64(),
        Some(params * 4.0)
    );
}

#[test]
fn inspect_describes_a_checkpoint_directory() {
    let dir = llama_golden().join("tiny_llama");
    let run = switchboard(&["model", "inspect", path(&dir)]);
    assert!(
        run.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let text = String::from_utf8_lossy(&run.stdout);
    for needle in ["llama", "F32", "safetensors", "layers 2", "2000 tokens"] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
    let run = switchboard(&["model", "inspect", "--json", path(&dir)]);
    let report: Value = serde_json::from_slice(&run.stdout).expect("json report");
    assert_eq!(report["format"], "safetensors");
    assert_eq!(report["parameters"], 342_336);
    assert_eq!(report["tensor_count"], 21);
    assert_eq!(report["config"]["tie_word_embeddings"], false);
}

#[test]
fn inspect_errors_name_the_file_and_fail() {
    let tmp = tempfile::tempdir().expect("tmp");
    let bytes = std::fs::read(llama_golden().join("tiny_llama.q8_0.gguf")).expect("gguf");
    let truncated = tmp.path().join("truncated_tiny.gguf");
    std::fs::write(&truncated, &bytes[..1000]).expect("write");
    let text_file = tmp.path().join("notes.txt");
    std::fs::write(&text_file, "just some text\n").expect("write");
    let missing = tmp.path().join("nothing_here");
    for (file, name) in [
        (&truncated, "truncated_tiny.gguf"),
        (&text_file, "notes.txt"),
        (&missing, "nothing_here"),
    ] {
        let run = switchboard(&["model", "inspect", path(file)]);
        assert!(!run.status.success(), "{name} accepted");
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(stderr.contains(name), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

//! The tokenizer and chat template built from a GGUF file's metadata reproduce the goldens:
//! SmolLM2-135M-Instruct's real GGUF (pre `smollm`) against transformers/llama.cpp ids, and the
//! tiny Llama GGUF (pre `qwen2`) against the golden Hugging Face tokenizer directory.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::{Content, Value as GgufValue};
use serde_json::Value;
use switchboard_engine::{ChatMessage, TextTokenizer};

fn repo(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative)
}

fn smollm2_gguf() -> PathBuf {
    repo("models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf")
}

fn tiny_llama_gguf() -> PathBuf {
    repo("tests/fixtures/golden/llama/tiny_llama.f32.gguf")
}

fn metadata(path: &Path) -> HashMap<String, GgufValue> {
    let mut file = std::fs::File::open(path).expect("open the GGUF file");
    Content::read(&mut file)
        .expect("read the GGUF header")
        .metadata
}

fn gguf_tokenizer(path: &Path) -> TextTokenizer {
    TextTokenizer::from_gguf_metadata(path, &metadata(path)).expect("GGUF tokenizer builds")
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("read golden JSON");
    serde_json::from_str(&text).expect("golden JSON parses")
}

fn ids(value: &Value) -> Vec<u32> {
    value
        .as_array()
        .expect("an id list")
        .iter()
        .map(|id| id.as_u64().expect("an id") as u32)
        .collect()
}

fn text(value: &Value) -> &str {
    value.as_str().expect("a string")
}

fn smollm2_expected() -> Value {
    read_json(&repo("tests/fixtures/golden/llama/expected_smollm2.json"))
}

#[test]
fn smollm2_tokenize_cases_match() {
    let tokenizer = gguf_tokenizer(&smollm2_gguf());
    let expected = smollm2_expected();
    for case in expected["tokenize"].as_array().expect("tokenize cases") {
        let text = text(&case["text"]);
        let got = tokenizer.encode(text).expect("encodes");
        assert_eq!(got, ids(&case["ids"]), "{text:?}");
    }
}

#[test]
fn smollm2_chat_cases_match() {
    let tokenizer = gguf_tokenizer(&smollm2_gguf());
    let expected = smollm2_expected();
    for case in expected["cases"].as_array().expect("chat cases") {
        let question = text(&case["question"]);
        let messages = [ChatMessage::new("user", question)];
        let chat_text = tokenizer
            .apply_chat_template(&messages, true)
            .expect("renders");
        assert_eq!(chat_text, text(&case["chat_text"]), "{question}");
        let got = tokenizer.encode(&chat_text).expect("encodes");
        assert_eq!(got, ids(&case["ids"]), "{question}");
        let decoded = tokenizer
            .decode(&ids(&case["greedy_ids"]), true)
            .expect("decodes");
        assert_eq!(decoded, text(&case["greedy_text"]), "{question}");
    }
}

#[test]
fn smollm2_special_tokens() {
    let tokenizer = gguf_tokenizer(&smollm2_gguf());
    assert!(tokenizer.eos_token_ids().contains(&2));
    assert!(tokenizer.is_special(1) && tokenizer.is_special(2));
    assert!(!tokenizer.is_special(198));
    assert_eq!(tokenizer.vocab_size(), 49152);
    // add_bos_token is false: plain text gets no BOS even with special tokens added.
    assert_eq!(tokenizer.encode("hi").expect("encodes"), vec![6004]);
}

#[test]
fn smollm2_splits_digits_one_by_one() {
    let tokenizer = gguf_tokenizer(&smollm2_gguf());
    let got = tokenizer.encode("12345").expect("encodes");
    assert_eq!(got, vec![33, 34, 35, 36, 37]);
    // The golden case with numbers: " 123" is "Ġ" then one token per digit.
    let expected = smollm2_expected();
    let digits_case = expected["tokenize"]
        .as_array()
        .expect("tokenize cases")
        .iter()
        .find(|case| text(&case["text"]).contains("123"))
        .expect("a case with digits");
    let ids = ids(&digits_case["ids"]);
    assert!(ids.windows(4).any(|w| w == [216, 33, 34, 35]), "{ids:?}");
}

fn tiny_llama_dir() -> PathBuf {
    repo("tests/fixtures/golden/llama/tiny_llama")
}

#[test]
fn tiny_llama_gguf_tokenizes_like_the_golden_directory() {
    let from_gguf = gguf_tokenizer(&tiny_llama_gguf());
    let from_dir = TextTokenizer::from_dir(&tiny_llama_dir()).expect("golden directory loads");
    let golden = read_json(&repo("tests/fixtures/golden/tokenize.json"));
    let cases = golden["cases"].as_array().expect("cases");
    assert!(!cases.is_empty());
    for case in cases {
        let text = text(&case["text"]);
        let expected = ids(&case["ids"]);
        assert_eq!(
            from_dir.encode(text).expect("encodes"),
            expected,
            "{text:?}"
        );
        assert_eq!(
            from_gguf.encode(text).expect("encodes"),
            expected,
            "{text:?}"
        );
        assert_eq!(
            from_gguf.decode(&expected, false).expect("decodes"),
            from_dir.decode(&expected, false).expect("decodes"),
            "{text:?}"
        );
    }
    assert_eq!(from_gguf.eos_token_ids(), from_dir.eos_token_ids());
    assert_eq!(from_gguf.vocab_size(), from_dir.vocab_size());
    for id in 1995..2000 {
        assert_eq!(from_gguf.is_special(id), from_dir.is_special(id), "id {id}");
    }
}

#[test]
fn tiny_llama_gguf_chat_template_renders_like_the_golden_directory() {
    let from_gguf = gguf_tokenizer(&tiny_llama_gguf());
    let from_dir = TextTokenizer::from_dir(&tiny_llama_dir()).expect("golden directory loads");
    let messages = [
        ChatMessage::new("system", "You are terse."),
        ChatMessage::new("user", "What divides cells?"),
    ];
    for add_generation_prompt in [false, true] {
        let gguf_text = from_gguf
            .apply_chat_template(&messages, add_generation_prompt)
            .expect("renders");
        let dir_text = from_dir
            .apply_chat_template(&messages, add_generation_prompt)
            .expect("renders");
        assert_eq!(gguf_text, dir_text);
        assert_eq!(
            from_gguf.encode(&gguf_text).expect("encodes"),
            from_dir.encode(&dir_text).expect("encodes")
        );
    }
}

#[test]
fn unknown_pre_tokenizer_is_refused_by_name() {
    let path = tiny_llama_gguf();
    let mut metadata = metadata(&path);
    metadata.insert(
        "tokenizer.ggml.pre".into(),
        GgufValue::String("mystery".into()),
    );
    let err = match TextTokenizer::from_gguf_metadata(&path, &metadata) {
        Ok(_) => panic!("an unknown pre-tokenizer was accepted"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("tokenizer.ggml.pre"), "{err}");
    assert!(err.contains("mystery"), "{err}");
    assert!(err.contains("tiny_llama.f32.gguf"), "{err}");
}

#[test]
fn tiny_llama_tokenizer_json_has_the_golden_pipeline() {
    let path = tiny_llama_gguf();
    let files =
        switchboard_model::hf_tokenizer_files(&path, &metadata(&path)).expect("files build");
    let ours = &files.tokenizer_json;
    let golden = read_json(&tiny_llama_dir().join("tokenizer.json"));
    for key in [
        "normalizer",
        "pre_tokenizer",
        "post_processor",
        "decoder",
        "added_tokens",
    ] {
        assert_eq!(ours[key], golden[key], "{key}");
    }
    assert_eq!(ours["model"]["merges"], golden["model"]["merges"]);
    let vocab = ours["model"]["vocab"].as_object().expect("vocab");
    for (token, id) in golden["model"]["vocab"].as_object().expect("golden vocab") {
        assert_eq!(vocab.get(token), Some(id), "{token}");
    }
    let config = read_json(&tiny_llama_dir().join("tokenizer_config.json"));
    for key in [
        "chat_template",
        "eos_token",
        "pad_token",
        "model_max_length",
    ] {
        assert_eq!(files.tokenizer_config[key], config[key], "{key}");
    }
    let generation = read_json(&tiny_llama_dir().join("generation_config.json"));
    for key in ["eos_token_id", "pad_token_id"] {
        assert_eq!(files.generation_config[key], generation[key], "{key}");
    }
}

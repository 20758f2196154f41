//! Tokenization, chat templates and streaming detokenization against the goldens made with
//! Hugging Face `tokenizers` and transformers (`tests/fixtures/golden/tokenize.json`).

use std::path::PathBuf;

use serde_json::Value;
use switchboard_engine::{ChatMessage, IncrementalDecoder, TextTokenizer};

fn golden() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/golden")
}

fn goldens() -> Value {
    let text = std::fs::read_to_string(golden().join("tokenize.json")).expect("read tokenize.json");
    serde_json::from_str(&text).expect("parse tokenize.json")
}

fn ids(value: &Value) -> Vec<u32> {
    value
        .as_array()
        .expect("ids array")
        .iter()
        .map(|v| v.as_u64().expect("id") as u32)
        .collect()
}

fn tokenizer() -> TextTokenizer {
    TextTokenizer::from_dir(&golden().join("base")).expect("golden tokenizer loads")
}

#[test]
fn encode_and_decode_match_hugging_face() {
    let tok = tokenizer();
    let cases = goldens()["cases"].as_array().expect("cases").clone();
    assert_eq!(cases.len(), 12);
    for case in &cases {
        let text = case["text"].as_str().expect("text");
        let expected = ids(&case["ids"]);
        assert_eq!(
            tok.encode(text).expect("encode"),
            expected,
            "ids of {text:?}"
        );
        assert_eq!(
            tok.decode(&expected, false).expect("decode"),
            case["decoded"].as_str().expect("decoded"),
            "{text:?}"
        );
        assert_eq!(
            tok.decode(&expected, true).expect("decode"),
            case["decoded_skip_special"]
                .as_str()
                .expect("decoded_skip_special"),
            "{text:?} without specials"
        );
    }
    assert_eq!(tok.vocab_size(), 2000);
}

#[test]
fn special_and_eos_tokens_come_from_the_configs() {
    let tok = tokenizer();
    // generation_config.json: [1999, 1997]; tokenizer_config.json eos_token: <|im_end|> = 1999.
    assert_eq!(
        tok.eos_token_ids().iter().copied().collect::<Vec<_>>(),
        vec![1997, 1999]
    );
    for id in [1997, 1998, 1999] {
        assert!(tok.is_special(id), "{id} is special");
    }
    assert!(!tok.is_special(781));
}

#[test]
fn chat_template_matches_transformers() {
    let tok = tokenizer();
    let cases = goldens()["chat_template_cases"]
        .as_array()
        .expect("cases")
        .clone();
    assert!(cases.len() >= 3);
    for case in &cases {
        let messages: Vec<ChatMessage> =
            serde_json::from_value(case["messages"].clone()).expect("messages");
        let add = case["add_generation_prompt"].as_bool().expect("flag");
        let rendered = tok.apply_chat_template(&messages, add).expect("render");
        assert_eq!(rendered, case["rendered"].as_str().expect("rendered"));
        assert_eq!(tok.encode(&rendered).expect("encode"), ids(&case["ids"]));
    }
}

#[test]
fn streaming_decode_never_splits_characters_and_adds_up() {
    let tok = tokenizer();
    let mut streams: Vec<Vec<u32>> = goldens()["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| ids(&c["ids"]))
        .collect();
    // Emoji with a ZWJ sequence, CJK and Greek: characters span several byte-level tokens.
    streams.push(tok.encode("👩‍👩‍👧 家族 αβγ naïve café 😀").expect("encode"));
    for stream in streams {
        for skip in [false, true] {
            let mut decoder = IncrementalDecoder::new(skip);
            let mut text = String::new();
            for &id in &stream {
                if let Some(piece) = decoder.push(&tok, id).expect("push") {
                    assert!(!piece.contains('\u{FFFD}'), "broken character in {piece:?}");
                    text.push_str(&piece);
                }
            }
            if let Some(rest) = decoder.flush(&tok).expect("flush") {
                text.push_str(&rest);
            }
            assert_eq!(
                text,
                tok.decode(&stream, skip).expect("decode"),
                "stream {stream:?}"
            );
        }
    }
}

#[test]
fn missing_or_broken_files_are_named() {
    let tmp = tempfile::tempdir().expect("tmp");
    let err = TextTokenizer::from_dir(tmp.path())
        .err()
        .expect("no tokenizer.json")
        .to_string();
    assert!(err.contains("tokenizer.json"), "{err}");
    std::fs::write(tmp.path().join("tokenizer.json"), "{ nope").expect("write");
    let err = TextTokenizer::from_dir(tmp.path())
        .err()
        .expect("bad tokenizer.json")
        .to_string();
    assert!(err.contains("tokenizer.json"), "{err}");
    std::fs::copy(
        golden().join("tokenizer.json"),
        tmp.path().join("tokenizer.json"),
    )
    .expect("copy");
    std::fs::write(
        tmp.path().join("tokenizer_config.json"),
        r#"{"chat_template": "{% if %}"}"#,
    )
    .expect("write");
    let err = TextTokenizer::from_dir(tmp.path())
        .err()
        .expect("bad template")
        .to_string();
    assert!(err.contains("chat template"), "{err}");
    // Without tokenizer_config.json the built-in ChatML template is used.
    std::fs::remove_file(tmp.path().join("tokenizer_config.json")).expect("rm");
    let tok = TextTokenizer::from_dir(tmp.path()).expect("loads without config");
    let text = tok
        .apply_chat_template(&[ChatMessage::new("user", "Hi")], true)
        .expect("render");
    assert_eq!(
        text,
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    );
}

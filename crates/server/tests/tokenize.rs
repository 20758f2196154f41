//! vLLM's tokenizer routes at the server root, as lm-evaluation-harness' `RemoteTokenizer`
//! probes and uses them: `/tokenizer_info`, `/tokenize`, `/detokenize`.
#![allow(clippy::unwrap_used)]

mod common;

use axum::http::StatusCode;
use common::{error_param, TestServer, BASE};
use serde_json::json;
use switchboard_engine::ChatMessage;

#[tokio::test]
async fn tokenize_and_detokenize_round_trip() {
    let server = TestServer::start(&[]);
    // lm-eval's probe.
    let (status, body) = server
        .post(
            "/tokenize",
            json!({"prompt": "test", "add_special_tokens": false}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["tokens"].is_array());

    let text = "Mitochondria <|im_end|> make ATP.";
    let (status, body) = server
        .post(
            "/tokenize",
            json!({"model": BASE, "prompt": text, "return_token_strs": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let tokens: Vec<u32> = serde_json::from_value(body["tokens"].clone()).unwrap();
    assert_eq!(tokens, server.encode(text), "as the engine tokenizes");
    assert_eq!(body["count"], tokens.len());
    assert_eq!(body["max_model_len"], 512);
    let strs: Vec<String> = serde_json::from_value(body["token_strs"].clone()).unwrap();
    assert_eq!(strs.concat(), text);

    let (status, body) = server.post("/detokenize", json!({"tokens": tokens})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["prompt"], text, "special tokens are kept");

    let (_, body) = server.post("/detokenize", json!({"tokens": []})).await;
    assert_eq!(body["prompt"], "");
}

#[tokio::test]
async fn tokenize_renders_messages_with_the_chat_template() {
    let server = TestServer::start(&[]);
    let (status, body) = server
        .post(
            "/tokenize",
            json!({"model": "a", "messages": [{"role": "user", "content": "What is a cell?"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let tokenizer = server.state.engine().tokenizer();
    let rendered = tokenizer
        .apply_chat_template(&[ChatMessage::new("user", "What is a cell?")], true)
        .unwrap();
    assert!(rendered.ends_with("<|im_start|>assistant\n"));
    assert_eq!(body["tokens"], json!(server.encode(&rendered)));

    let (_, without) = server
        .post(
            "/tokenize",
            json!({"messages": [{"role": "user", "content": "What is a cell?"}],
                   "add_generation_prompt": false}),
        )
        .await;
    assert!(without["count"].as_u64().unwrap() < body["count"].as_u64().unwrap());
}

#[tokio::test]
async fn tokenizer_info_describes_the_checkpoint_tokenizer() {
    let server = TestServer::start(&[]);
    let (status, info) = server.get("/tokenizer_info", None).await;
    assert_eq!(status, StatusCode::OK, "{info}");
    // The golden checkpoint's tokenizer_config.json.
    assert_eq!(info["eos_token"], "<|im_end|>");
    assert!(info["bos_token"].is_null());
    assert_eq!(info["pad_token"], "<|endoftext|>");
    assert_eq!(info["tokenizer_class"], "Qwen2Tokenizer");
    assert_eq!(info["model_max_length"], 512);
    assert!(info["chat_template"]
        .as_str()
        .unwrap()
        .contains("<|im_start|>"));
    // lm-eval derives eos_token_id by tokenizing eos_token without special tokens.
    let (_, body) = server
        .post(
            "/tokenize",
            json!({"prompt": info["eos_token"], "add_special_tokens": false}),
        )
        .await;
    let id = body["tokens"][0].as_u64().unwrap() as u32;
    assert!(server
        .state
        .engine()
        .tokenizer()
        .eos_token_ids()
        .contains(&id));
}

#[tokio::test]
async fn bad_tokenizer_requests_get_openai_errors() {
    let server = TestServer::start(&[]);
    let cases = [
        ("/detokenize", json!({"tokens": [-1]}), Some("tokens")),
        (
            "/detokenize",
            json!({"tokens": [1, 9_999_999]}),
            Some("tokens"),
        ),
        ("/detokenize", json!({"tokens": "abc"}), None),
        ("/detokenize", json!({"tokens": [1.5]}), None),
        ("/tokenize", json!({}), Some("prompt")),
        ("/tokenize", json!({"prompt": 12}), None),
        (
            "/tokenize",
            json!({"prompt": "x", "messages": []}),
            Some("messages"),
        ),
        (
            "/tokenize",
            json!({"messages": [{"role": "tool", "content": "x"}]}),
            Some("messages[0].role"),
        ),
    ];
    for (path, body, param) in cases {
        let (status, answer) = server.post(path, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {body}: {answer}");
        assert_eq!(error_param(&answer), param, "{path} {body}");
    }
    let (status, answer) = server.post_raw("/tokenize", "{not json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    error_param(&answer);
    let (status, answer) = server
        .post("/tokenize", json!({"model": "nope", "prompt": "x"}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_param(&answer), Some("model"));
}

#[tokio::test]
async fn tokenizer_routes_need_the_api_key() {
    let server = TestServer::start(&["sk-test"]);
    let (status, _) = server.get("/tokenizer_info", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = server.get("/tokenizer_info", Some("sk-test")).await;
    assert_eq!(status, StatusCode::OK);
    for path in ["/tokenize", "/detokenize"] {
        let body = if path == "/tokenize" {
            json!({"prompt": "x"})
        } else {
            json!({"tokens": [1]})
        };
        let (status, answer) = server.post_with_key(path, body.clone(), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        error_param(&answer);
        let (status, _) = server.post_with_key(path, body, Some("sk-test")).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
}

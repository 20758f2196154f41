//! `echo` on `/v1/completions` as lm-evaluation-harness and vLLM clients use it: the prompt
//! scored token by token before the generated tokens, in every prompt shape, whole and
//! streamed, through the real router and engine.
#![allow(clippy::unwrap_used)]

mod common;

use axum::http::StatusCode;
use common::{error_param, TestServer, BASE};
use serde_json::{json, Value};
use switchboard_engine::{GenerateRequest, Prompt, SamplingParams};

const PROMPT: &str = "The Roman republic ended after";

/// Checks the legacy logprobs of one echoed choice against each other and against `text`;
/// returns `token_logprobs`.
fn check_echoed_logprobs(choice: &Value, k: usize) -> Vec<Option<f64>> {
    let logprobs = &choice["logprobs"];
    let tokens: Vec<&str> = logprobs["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    let values: Vec<Option<f64>> = logprobs["token_logprobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(Value::as_f64)
        .collect();
    let tops = logprobs["top_logprobs"].as_array().unwrap();
    let offsets: Vec<usize> = logprobs["text_offset"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_u64().unwrap() as usize)
        .collect();
    assert_eq!(values.len(), tokens.len());
    assert_eq!(tops.len(), tokens.len());
    assert_eq!(offsets.len(), tokens.len());

    assert_eq!(values[0], None, "nothing predicts the first prompt token");
    assert!(tops[0].is_null());
    for i in 1..tokens.len() {
        let value = values[i].unwrap_or_else(|| panic!("token {i} has no logprob"));
        assert!((-9999.0..=0.0).contains(&value), "token {i}: {value}");
        let top = tops[i].as_object().unwrap();
        assert!(top.len() <= k + 1, "at most k alternatives plus the token");
        let own = top[tokens[i]].as_f64().unwrap();
        assert_eq!(own, value, "top_logprobs holds the actual token");
        let best = top
            .values()
            .map(|v| v.as_f64().unwrap())
            .fold(f64::MIN, f64::max);
        assert!(best >= value);
    }
    let text = choice["text"].as_str().unwrap();
    assert_eq!(offsets[0], 0);
    for (i, token) in tokens.iter().enumerate() {
        if i > 0 {
            assert!(offsets[i] >= offsets[i - 1], "text_offset is monotone");
        }
        let at: String = text
            .chars()
            .skip(offsets[i])
            .take(token.chars().count())
            .collect();
        assert_eq!(&at, token, "text_offset[{i}] points at its token in text");
    }
    values
}

/// The engine's own prompt logprobs for `prompt`, asked for directly.
async fn engine_prompt_logprobs(
    server: &TestServer,
    prompt: Prompt,
    adapter: Option<&str>,
) -> Vec<Option<f32>> {
    let request = GenerateRequest::new(
        prompt,
        adapter,
        SamplingParams {
            prompt_logprobs: Some(0),
            ..SamplingParams::greedy(1)
        },
    );
    let out = server.state.engine().submit(request).await.unwrap();
    let out = out.collect().await.unwrap();
    out.prompt_logprobs
        .unwrap()
        .iter()
        .map(|t| t.logprob)
        .collect()
}

fn assert_close(server: &[Option<f64>], engine: &[Option<f32>]) {
    assert_eq!(server.len(), engine.len());
    for (i, (s, e)) in server.iter().zip(engine).enumerate() {
        match (s, e) {
            (None, None) => {}
            (Some(s), Some(e)) => assert!((s - f64::from(*e)).abs() < 1e-4, "position {i}"),
            other => panic!("position {i}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn echo_with_logprobs_returns_the_scored_prompt_then_the_generated_token() {
    let server = TestServer::start(&[]);
    let (status, body) = server
        .post(
            "/v1/completions",
            json!({"model": BASE, "prompt": PROMPT, "max_tokens": 1, "temperature": 0,
                   "logprobs": 2, "echo": true, "ignore_eos": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let choice = &body["choices"][0];
    let prompt_tokens = body["usage"]["prompt_tokens"].as_u64().unwrap() as usize;
    assert_eq!(body["usage"]["completion_tokens"], 1);
    assert!(choice["text"].as_str().unwrap().starts_with(PROMPT));
    let values = check_echoed_logprobs(choice, 2);
    assert_eq!(
        values.len(),
        prompt_tokens + 1,
        "prompt tokens + the generated one"
    );
    let tokens = choice["logprobs"]["tokens"].as_array().unwrap();
    let joined: String = tokens.iter().map(|t| t.as_str().unwrap()).collect();
    assert_eq!(joined, choice["text"].as_str().unwrap());

    // Greedy: the generated token is the most likely one (lm-eval's `is_greedy`).
    let last = &choice["logprobs"]["top_logprobs"][prompt_tokens];
    let best = last
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_f64().unwrap());
    assert_eq!(
        best.fold(f64::MIN, f64::max),
        values[prompt_tokens].unwrap()
    );

    let engine = engine_prompt_logprobs(&server, Prompt::Text(PROMPT.into()), None).await;
    assert_close(&values[..prompt_tokens], &engine);
}

#[tokio::test]
async fn lm_eval_payload_scores_token_prompts_per_adapter_in_index_order() {
    let server = TestServer::start(&[]);
    let first = server.encode("Enzymes speed up chemical reactions");
    let second = server.encode("In 1066 the Normans");
    let payload = |model: &str| {
        json!({"model": model, "prompt": [first, second], "temperature": 0, "max_tokens": 1,
               "logprobs": 1, "seed": 1234, "echo": true})
    };
    let mut continuation = Vec::new();
    for model in [BASE, "a"] {
        let (status, body) = server.post("/v1/completions", payload(model)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let choices = body["choices"].as_array().unwrap();
        assert_eq!(choices.len(), 2);
        let usage = &body["usage"];
        assert_eq!(usage["prompt_tokens"], first.len() + second.len());
        let mut sums = Vec::new();
        for (index, ids) in [&first, &second].into_iter().enumerate() {
            let choice = &choices[index];
            assert_eq!(choice["index"], index);
            let text = server
                .state
                .engine()
                .tokenizer()
                .decode(ids, false)
                .unwrap();
            assert!(choice["text"].as_str().unwrap().starts_with(&text));
            let values = check_echoed_logprobs(choice, 1);
            assert_eq!(values.len(), ids.len() + 1);
            let adapter = (model != BASE).then_some(model);
            let engine =
                engine_prompt_logprobs(&server, Prompt::Tokens(ids.clone()), adapter).await;
            assert_close(&values[..ids.len()], &engine);
            // What lm-eval sums for a 2-token continuation: token_logprobs[ctxlen:-1].
            let ctxlen = ids.len() - 2;
            sums.push(
                values[ctxlen..ids.len()]
                    .iter()
                    .map(|v| v.unwrap())
                    .sum::<f64>(),
            );
        }
        continuation.push(sums);
    }
    assert_ne!(
        continuation[0], continuation[1],
        "the adapter scores differently"
    );
}

#[tokio::test]
async fn max_tokens_zero_echoes_the_prompt_only_and_needs_echo() {
    let server = TestServer::start(&[]);
    let (status, body) = server
        .post(
            "/v1/completions",
            json!({"model": BASE, "prompt": PROMPT, "max_tokens": 0, "logprobs": 0, "echo": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let choice = &body["choices"][0];
    assert_eq!(choice["text"], PROMPT);
    let prompt_tokens = body["usage"]["prompt_tokens"].as_u64().unwrap() as usize;
    let values = check_echoed_logprobs(choice, 0);
    assert_eq!(values.len(), prompt_tokens);
    assert_eq!(body["usage"]["completion_tokens"], 0);
    assert_eq!(body["usage"]["total_tokens"], prompt_tokens);
    assert_eq!(choice["finish_reason"], "length");

    let (status, body) = server
        .post(
            "/v1/completions",
            json!({"model": BASE, "prompt": PROMPT, "max_tokens": 0}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_param(&body), Some("max_tokens"));
}

#[tokio::test]
async fn echo_without_logprobs_prepends_each_prompt_to_its_choices() {
    let server = TestServer::start(&[]);
    let prompts = ["The cell", "Hash functions"];
    let (status, body) = server
        .post(
            "/v1/completions",
            json!({"model": "b", "prompt": prompts, "max_tokens": 3, "n": 2, "echo": true,
                   "seed": 5, "logprobs": null}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let choices = body["choices"].as_array().unwrap();
    assert_eq!(choices.len(), 4);
    for (i, choice) in choices.iter().enumerate() {
        assert_eq!(choice["index"], i, "index = prompt × n + choice");
        let text = choice["text"].as_str().unwrap();
        assert!(text.starts_with(prompts[i / 2]), "{text:?}");
        assert!(choice["logprobs"].is_null());
    }
}

#[tokio::test]
async fn bad_echo_requests_get_openai_errors() {
    let server = TestServer::start(&[]);
    let cases = [
        (
            json!({"model": BASE, "prompt": [[1, -3]], "echo": true, "logprobs": 1}),
            "prompt",
        ),
        (
            json!({"model": BASE, "prompt": [[999999]], "echo": true, "logprobs": 1}),
            "prompt",
        ),
        (
            json!({"model": BASE, "prompt": "x", "echo": true, "logprobs": 21}),
            "logprobs",
        ),
        (
            json!({"model": BASE, "prompt": "x", "echo": true, "logprobs": -1}),
            "logprobs",
        ),
        (json!({"model": BASE, "prompt": [], "echo": true}), "prompt"),
    ];
    for (body, param) in cases {
        let (status, answer) = server.post("/v1/completions", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert_eq!(error_param(&answer), Some(param), "{body}");
    }
    let (status, answer) = server
        .post(
            "/v1/completions",
            json!({"model": BASE, "prompt": "x", "echo": "yes"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    error_param(&answer);
}

fn parse_chunks(data: &[String]) -> Vec<Value> {
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

#[tokio::test]
async fn streamed_echo_puts_the_scored_prompt_in_the_first_chunk() {
    let server = TestServer::start(&[]);
    let (status, data) = server
        .post_sse(
            "/v1/completions",
            json!({"model": "a", "prompt": PROMPT, "max_tokens": 3, "logprobs": 1, "echo": true, "temperature": 0,
                   "ignore_eos": true, "stream": true, "stream_options": {"include_usage": true}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let chunks = parse_chunks(&data);
    let first = &chunks[0]["choices"][0];
    assert_eq!(first["text"], PROMPT);
    assert!(
        chunks[0]["route"].is_object(),
        "the first chunk carries the route"
    );
    let echoed = first["logprobs"]["token_logprobs"].as_array().unwrap();
    assert!(echoed[0].is_null());

    let usage = chunks.last().unwrap();
    assert_eq!(
        usage["choices"],
        json!([]),
        "the usage chunk has no choices"
    );
    let prompt_tokens = usage["usage"]["prompt_tokens"].as_u64().unwrap() as usize;
    assert_eq!(usage["usage"]["completion_tokens"], 3);
    assert_eq!(echoed.len(), prompt_tokens);

    let mut text = String::new();
    let mut scored = 0;
    for chunk in &chunks[..chunks.len() - 1] {
        let choice = &chunk["choices"][0];
        text.push_str(choice["text"].as_str().unwrap());
        if let Some(values) = choice["logprobs"]["token_logprobs"].as_array() {
            scored += values.len();
            let offsets = choice["logprobs"]["text_offset"].as_array().unwrap();
            assert_eq!(offsets.len(), values.len());
        }
    }
    assert_eq!(scored, prompt_tokens + 3);
    assert!(text.starts_with(PROMPT));

    // The same request whole gives the same text.
    let (_, whole) = server
        .post(
            "/v1/completions",
            json!({"model": "a", "prompt": PROMPT, "max_tokens": 3, "logprobs": 1, "echo": true, "temperature": 0,
                   "ignore_eos": true}),
        )
        .await;
    assert_eq!(whole["choices"][0]["text"], text);
}

#[tokio::test]
async fn streamed_echo_of_prompt_only_and_plain_streams_start_with_real_content() {
    let server = TestServer::start(&[]);
    let (_, data) = server
        .post_sse(
            "/v1/completions",
            json!({"model": BASE, "prompt": PROMPT, "max_tokens": 0, "echo": true,
                   "stream": true}),
        )
        .await;
    let chunks = parse_chunks(&data);
    assert_eq!(chunks[0]["choices"][0]["text"], PROMPT);
    let texts: String = chunks
        .iter()
        .map(|c| c["choices"][0]["text"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(texts, PROMPT, "the hidden token is not streamed");
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "length"
    );

    // Without echo, no empty chunk precedes the first token (vllm bench measures TTFT there).
    let (_, data) = server
        .post_sse(
            "/v1/completions",
            json!({"model": BASE, "prompt": PROMPT, "max_tokens": 4, "ignore_eos": true,
                   "stream": true, "repetition_penalty": 1.1, "seed": 3, "temperature": 0}),
        )
        .await;
    let chunks = parse_chunks(&data);
    let first = &chunks[0]["choices"][0];
    assert!(
        !first["text"].as_str().unwrap().is_empty() || !first["finish_reason"].is_null(),
        "first chunk: {first}"
    );
}

#[tokio::test]
async fn models_carry_root_and_parent() {
    let server = TestServer::start(&[]);
    let (status, body) = server.get("/v1/models", None).await;
    assert_eq!(status, StatusCode::OK);
    let data = body["data"].as_array().unwrap();
    assert_eq!(data[0]["id"], BASE);
    assert!(data[0]["root"].is_string());
    assert!(data[0]["parent"].is_null());
    let adapter = data.iter().find(|m| m["id"] == "a").unwrap();
    assert_eq!(adapter["parent"], BASE);
    assert!(adapter["root"].as_str().unwrap().ends_with('a'));
}

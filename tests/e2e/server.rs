//! The HTTP server end to end: the real binary on a loopback port, driven by async-openai and by
//! raw HTTP (reqwest) for SSE framing, auth, errors, adapter admin, cancellation and metrics.

use std::time::Duration;

use async_openai::error::OpenAIError;
use async_openai::types::chat::{
    ChatCompletionRequestSystemMessageArgs, ChatCompletionRequestUserMessageArgs,
    ChatCompletionStreamOptions, CreateChatCompletionRequestArgs,
};
use async_openai::types::completions::CreateCompletionRequestArgs;
use futures_util::StreamExt;
use serde_json::{json, Value};

use super::harness::{metric, runtime, sse_data, Server};

fn chat_body(model: &str, max_tokens: usize) -> Value {
    json!({
        "model": model,
        "messages": [{"role": "user", "content": "What is a cell?"}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "ignore_eos": true,
    })
}

fn assert_openai_error(body: &Value, kind: &str) {
    let error = &body["error"];
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert_eq!(error["type"], kind, "{body}");
    assert!(
        error.get("param").is_some() && error.get("code").is_some(),
        "{body}"
    );
}

#[test]
fn openai_client_chat_completions_models_and_typed_errors() {
    let server = Server::start(&[]);
    runtime().block_on(async {
        let client = server.openai(None);
        let messages = vec![
            ChatCompletionRequestSystemMessageArgs::default()
                .content("You are terse.")
                .build()
                .expect("msg")
                .into(),
            ChatCompletionRequestUserMessageArgs::default()
                .content("Name a cell organelle.")
                .build()
                .expect("msg")
                .into(),
        ];
        let request = CreateChatCompletionRequestArgs::default()
            .model("golden-a")
            .messages(messages.clone())
            .max_completion_tokens(12u32)
            .temperature(0.0)
            .build()
            .expect("request");
        let whole = client.chat().create(request.clone()).await.expect("chat");
        assert_eq!(whole.model, "golden-a");
        assert_eq!(whole.object, "chat.completion");
        let usage = whole.usage.expect("usage");
        assert!(usage.prompt_tokens > 0 && usage.completion_tokens <= 12);
        let text = whole.choices[0].message.content.clone().unwrap_or_default();

        // The stream carries the same greedy text, then the usage chunk.
        let mut streamed = request;
        streamed.stream_options = Some(ChatCompletionStreamOptions {
            include_usage: Some(true),
            include_obfuscation: None,
        });
        let mut stream = client.chat().create_stream(streamed).await.expect("stream");
        let (mut joined, mut saw_role, mut saw_usage) = (String::new(), false, false);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.expect("chunk");
            assert_eq!(chunk.model, "golden-a");
            if let Some(u) = chunk.usage {
                assert_eq!(u.completion_tokens, usage.completion_tokens);
                saw_usage = true;
            }
            for choice in chunk.choices {
                saw_role |= choice.delta.role.is_some();
                joined.push_str(choice.delta.content.as_deref().unwrap_or(""));
            }
        }
        assert!(saw_role && saw_usage);
        assert_eq!(joined, text);

        let completion = client
            .completions()
            .create(
                CreateCompletionRequestArgs::default()
                    .model("tiny")
                    .prompt("The Roman republic")
                    .max_tokens(8u32)
                    .temperature(0.0)
                    .build()
                    .expect("request"),
            )
            .await
            .expect("completion");
        assert_eq!(completion.model, "tiny");
        assert_eq!(completion.choices.len(), 1);

        let models = client.models().list().await.expect("models");
        let ids: Vec<&str> = models.data.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, ["tiny", "auto", "golden-a", "golden-b"]);

        let missing = CreateChatCompletionRequestArgs::default()
            .model("nope")
            .messages(messages.clone())
            .build()
            .expect("request");
        match client.chat().create(missing).await {
            Err(OpenAIError::ApiError(e)) => {
                assert_eq!(e.status_code.as_u16(), 404);
                assert_eq!(e.api_error.code.as_deref(), Some("model_not_found"));
            }
            other => panic!("expected model_not_found, got {other:?}"),
        }
        let too_hot = CreateChatCompletionRequestArgs::default()
            .model("tiny")
            .messages(messages)
            .temperature(3.0)
            .build()
            .expect("request");
        match client.chat().create(too_hot).await {
            Err(OpenAIError::ApiError(e)) => {
                assert_eq!(e.status_code.as_u16(), 400);
                assert_eq!(e.api_error.param.as_deref(), Some("temperature"));
            }
            other => panic!("expected a 400, got {other:?}"),
        }
    });
}

#[test]
fn sse_framing_models_details_and_malformed_input() {
    let server = Server::start(&[]);
    runtime().block_on(async {
        let http = reqwest::Client::new();
        let mut body = chat_body("golden-b", 6);
        body["stream"] = true.into();
        body["n"] = 2.into();
        body["stream_options"] = json!({"include_usage": true});
        let response = server.send_chat(&http, &body).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        assert_eq!(response.headers()["x-switchboard-adapter"], "golden-b");
        let text = response.text().await.expect("body");
        let events = sse_data(&text);
        assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
        let chunks: Vec<Value> = events[..events.len() - 1]
            .iter()
            .map(|e| serde_json::from_str(e).expect("chunk json"))
            .collect();
        // One role chunk per choice first; the very first carries the route.
        for (i, chunk) in chunks[..2].iter().enumerate() {
            assert_eq!(chunk["object"], "chat.completion.chunk");
            assert_eq!(chunk["choices"][0]["index"], i);
            assert_eq!(chunk["choices"][0]["delta"]["role"], "assistant");
        }
        assert_eq!(chunks[0]["route"]["adapter"], "golden-b");
        assert_eq!(chunks[0]["route"]["generation"], 1);
        let finishes: Vec<&Value> = chunks
            .iter()
            .filter(|c| !c["choices"][0]["finish_reason"].is_null())
            .collect();
        assert_eq!(finishes.len(), 2);
        let usage = chunks.last().expect("usage chunk");
        assert_eq!(usage["choices"], json!([]));
        assert_eq!(usage["usage"]["completion_tokens"], 12);
        assert!(chunks.iter().all(|c| c["id"] == chunks[0]["id"]));

        // Whole response: route, logprobs, finish reasons.
        let mut whole = chat_body("golden-b", 4);
        whole["logprobs"] = true.into();
        whole["top_logprobs"] = 2.into();
        let (status, reply) = server.chat(&http, &whole).await;
        assert_eq!(status, 200, "{reply}");
        assert_eq!(reply["route"]["adapter"], "golden-b");
        let logprobs = reply["choices"][0]["logprobs"]["content"]
            .as_array()
            .expect("logprobs");
        assert_eq!(logprobs.len(), 4);
        assert_eq!(
            logprobs[0]["top_logprobs"].as_array().map(Vec::len),
            Some(2)
        );
        assert!(logprobs[0]["logprob"].as_f64().expect("logprob") <= 0.0);
        assert_eq!(reply["choices"][0]["finish_reason"], "length");

        let model = http
            .get(server.url("/v1/models/golden-a"))
            .send()
            .await
            .expect("get");
        let model: Value = model.json().await.expect("json");
        assert_eq!(model["parent"], "tiny");
        assert!(model["root"]
            .as_str()
            .is_some_and(|r| r.ends_with("golden-a")));

        // Malformed and out-of-range input: OpenAI-shaped 400s naming the field.
        let raw = http
            .post(server.url("/v1/chat/completions"))
            .header("content-type", "application/json")
            .body("{\"model\": ")
            .send()
            .await
            .expect("send");
        assert_eq!(raw.status(), 400);
        assert_openai_error(&raw.json().await.expect("json"), "invalid_request_error");
        for (field, value, param) in [
            ("max_tokens", json!(-1), "max_tokens"),
            ("messages", json!([]), "messages"),
            ("temperature", json!(2.5), "temperature"),
            ("n", json!(0), "n"),
        ] {
            let mut bad = chat_body("tiny", 4);
            bad[field] = value;
            let (status, reply) = server.chat(&http, &bad).await;
            assert_eq!(status, 400, "{field}: {reply}");
            assert_openai_error(&reply, "invalid_request_error");
            assert_eq!(reply["error"]["param"], param);
        }
        let mut long = chat_body("tiny", 4000);
        long["messages"][0]["content"] = "word ".repeat(200).into();
        let (status, reply) = server.chat(&http, &long).await;
        assert_eq!(status, 400);
        assert_eq!(reply["error"]["code"], "context_length_exceeded");

        let unknown = http
            .get(server.url("/v1/nothing"))
            .send()
            .await
            .expect("send");
        assert_eq!(unknown.status(), 404);
        assert_openai_error(
            &unknown.json().await.expect("json"),
            "invalid_request_error",
        );
        let wrong_method = http
            .get(server.url("/v1/chat/completions"))
            .send()
            .await
            .expect("send");
        assert_eq!(wrong_method.status(), 405);
    });
}

#[test]
fn keys_guard_the_api_and_the_admin_routes() {
    let server = Server::start(&["--api-key", "user-key", "--admin-key", "admin-key"]);
    runtime().block_on(async {
        let http = reqwest::Client::new();
        let models = server.url("/v1/models");
        let none = http.get(&models).send().await.expect("send");
        assert_eq!(none.status(), 401);
        assert_openai_error(&none.json().await.expect("json"), "invalid_request_error");
        let wrong = http
            .get(&models)
            .bearer_auth("user-kez")
            .send()
            .await
            .expect("send");
        assert_eq!(wrong.status(), 401);
        let right = http
            .get(&models)
            .bearer_auth("user-key")
            .send()
            .await
            .expect("send");
        assert_eq!(right.status(), 200);

        let unload = server.url("/v1/unload_lora_adapter");
        let body = json!({"lora_name": "golden-b"});
        let as_user = http
            .post(&unload)
            .bearer_auth("user-key")
            .json(&body)
            .send()
            .await
            .expect("send");
        assert_eq!(as_user.status(), 401);
        let as_admin = http
            .post(&unload)
            .bearer_auth("admin-key")
            .json(&body)
            .send()
            .await
            .expect("send");
        assert_eq!(as_admin.status(), 200);

        for open in ["/health", "/metrics"] {
            let response = http.get(server.url(open)).send().await.expect("send");
            assert_eq!(response.status(), 200, "{open}");
        }
        // The typed client sends the key it is given.
        let client = server.openai(Some("user-key"));
        assert!(client.models().list().await.is_ok());
        assert!(matches!(
            server.openai(Some("bad")).models().list().await,
            Err(OpenAIError::ApiError(e)) if e.status_code.as_u16() == 401
        ));
    });
}

#[test]
fn adapters_load_replace_and_unload_during_traffic() {
    let server = Server::start(&[]);
    runtime().block_on(async {
        let http = reqwest::Client::new();
        // A copy of golden-b under a new name, inside the adapter root.
        super::harness::copy_dir(
            &super::harness::golden().join("adapter_b"),
            &server.files.adapters.join("fresh"),
        );
        let (status, info) = server
            .post(
                &http,
                "/v1/load_lora_adapter",
                &json!({"lora_name": "fresh", "lora_path": "fresh"}),
            )
            .await;
        assert_eq!(status, 200, "{info}");
        assert_eq!(info["generation"], 1);
        let (_, via_fresh) = server.chat(&http, &chat_body("fresh", 8)).await;
        let (_, via_b) = server.chat(&http, &chat_body("golden-b", 8)).await;
        assert_eq!(
            via_fresh["choices"][0]["message"],
            via_b["choices"][0]["message"]
        );
        assert_eq!(via_fresh["model"], "fresh");

        // Replace `fresh` with golden-a's weights while a long request on it streams.
        let mut long = chat_body("fresh", 3000);
        long["stream"] = true.into();
        let running = server.send_chat(&http, &long).await;
        let a_path = server.files.adapters.join("golden-a");
        let (status, conflict) = server
            .post(
                &http,
                "/v1/load_lora_adapter",
                &json!({
                    "lora_name": "fresh", "lora_path": a_path, "expected_generation": 7
                }),
            )
            .await;
        assert_eq!(status, 409, "{conflict}");
        let (status, replaced) = server
            .post(
                &http,
                "/v1/load_lora_adapter",
                &json!({
                    "lora_name": "fresh", "lora_path": a_path, "expected_generation": 1
                }),
            )
            .await;
        assert_eq!(status, 200, "{replaced}");
        assert_eq!(replaced["generation"], 2);
        let (_, via_a) = server.chat(&http, &chat_body("golden-a", 8)).await;
        let (_, now_fresh) = server.chat(&http, &chat_body("fresh", 8)).await;
        assert_eq!(
            now_fresh["choices"][0]["message"],
            via_a["choices"][0]["message"]
        );
        assert_eq!(now_fresh["route"]["generation"], 2);

        // Unload while the old version still streams: it finishes; new requests get 404.
        let (status, _) = server
            .post(
                &http,
                "/v1/unload_lora_adapter",
                &json!({"lora_name": "fresh"}),
            )
            .await;
        assert_eq!(status, 200);
        let text = running.text().await.expect("stream body");
        let events = sse_data(&text);
        assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
        assert!(text.contains("\"generation\":1"));
        let (status, gone) = server.chat(&http, &chat_body("fresh", 4)).await;
        assert_eq!(status, 404);
        assert_eq!(gone["error"]["code"], "model_not_found");

        // Paths outside the adapter root are refused.
        for path in ["../tiny", "/etc"] {
            let (status, refused) = server
                .post(
                    &http,
                    "/v1/load_lora_adapter",
                    &json!({"lora_name": "x", "lora_path": path}),
                )
                .await;
            assert_eq!(status, 400, "{path}: {refused}");
            assert_eq!(refused["error"]["param"], "lora_path");
        }
        let listed: Value = http
            .get(server.url("/v1/lora_adapters"))
            .send()
            .await
            .expect("send")
            .json()
            .await
            .expect("json");
        let names: Vec<&str> = listed["data"]
            .as_array()
            .expect("data")
            .iter()
            .filter_map(|a| a["name"].as_str())
            .collect();
        assert_eq!(names, ["golden-a", "golden-b"]);
    });
}

#[test]
fn a_client_disconnect_cancels_generation_and_metrics_show_it() {
    let server = Server::start(&[]);
    runtime().block_on(async {
        let http = reqwest::Client::new();
        let mut body = chat_body("golden-a", 4000);
        body["stream"] = true.into();
        let response = server.send_chat(&http, &body).await;
        let mut bytes = response.bytes_stream();
        bytes.next().await.expect("a first chunk").expect("bytes");
        drop(bytes);
        let start = std::time::Instant::now();
        loop {
            let cancelled = metric(&http, &server, "switchboard_requests_cancelled_total").await;
            if cancelled == Some(1.0) {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "not cancelled: {cancelled:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(metric(&http, &server, "switchboard_running_sequences").await, Some(0.0));

        // A non-streamed request whose client gives up is cancelled too.
        let impatient = reqwest::Client::builder()
            .timeout(Duration::from_millis(300))
            .build()
            .expect("client");
        let gave_up = impatient
            .post(server.url("/v1/chat/completions"))
            .json(&chat_body("golden-a", 4000))
            .send()
            .await;
        assert!(gave_up.is_err(), "the request should still be running");
        loop {
            let cancelled = metric(&http, &server, "switchboard_requests_cancelled_total").await;
            if cancelled == Some(2.0) {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(30), "not cancelled: {cancelled:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        let (status, _) = server.chat(&http, &chat_body("golden-a", 5)).await;
        assert_eq!(status, 200);
        let text = http.get(server.url("/metrics")).send().await.expect("send").text().await.expect("text");
        for expected in [
            "switchboard_requests_total{route=\"/v1/chat/completions\",status=\"200\",adapter=\"golden-a\"}",
            "switchboard_time_to_first_token_seconds_bucket{adapter=\"golden-a\"",
            "switchboard_inter_token_latency_seconds_bucket{adapter=\"golden-a\"",
            "switchboard_e2e_request_latency_seconds_count{adapter=\"golden-a\"}",
            "switchboard_generation_tokens_total{adapter=\"golden-a\"}",
            "switchboard_prompt_tokens_total{adapter=\"golden-a\"}",
            "switchboard_queue_depth",
            "switchboard_kv_cache_usage_ratio",
            "switchboard_adapter_loads_total{adapter=\"golden-b\"} 1",
        ] {
            assert!(text.contains(expected), "missing {expected} in\n{text}");
        }
    });
}

#[test]
fn a_full_queue_answers_503_with_retry_after() {
    let server = Server::start(&[
        "--max-running-sequences",
        "1",
        "--max-batched-tokens",
        "64",
        "--max-waiting-requests",
        "1",
    ]);
    runtime().block_on(async {
        let http = reqwest::Client::new();
        let mut long = chat_body("tiny", 4000);
        long["stream"] = true.into();
        let first = server.send_chat(&http, &long).await;
        let mut first = first.bytes_stream();
        first.next().await.expect("first running").expect("bytes");
        let waiting = tokio::spawn(
            http.post(server.url("/v1/chat/completions"))
                .json(&long)
                .send(),
        );
        let start = std::time::Instant::now();
        loop {
            let health: Value = http
                .get(server.url("/health"))
                .send()
                .await
                .expect("send")
                .json()
                .await
                .expect("json");
            if health["waiting_requests"] == 1 {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "the second request never queued: {health}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let response = server.send_chat(&http, &chat_body("tiny", 2)).await;
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers()["retry-after"], "1");
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["error"]["code"], "overloaded");
        assert_openai_error(&body, "server_error");
        drop(first);
        waiting.abort();
    });
}

#[test]
fn sigterm_drains_streams_then_exits() {
    let mut server = Server::start(&[]);
    let rt = runtime();
    rt.block_on(async {
        let http = reqwest::Client::new();
        let mut body = chat_body("golden-a", 3000);
        body["stream"] = true.into();
        let response = server.send_chat(&http, &body).await;
        let mut bytes = response.bytes_stream();
        let mut text = String::from_utf8_lossy(&bytes.next().await.expect("first").expect("bytes"))
            .into_owned();
        server.terminate();
        while let Some(chunk) = bytes.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk.expect("bytes")));
        }
        assert!(
            text.trim_end().ends_with("data: [DONE]"),
            "stream cut short:\n{text}"
        );
    });
    let status = server.wait_exit(Duration::from_secs(20));
    assert!(status.success(), "{status:?}");
}

#[test]
fn settings_come_from_flags_then_environment_then_the_config_file() {
    let files = super::harness::Files::new(4096);
    let config = files.adapters.with_file_name("switchboard.toml");
    std::fs::write(
        &config,
        "api_key = \"file-key\"\nserved_model_name = \"from-file\"\nmax_waiting_requests = 3\n",
    )
    .expect("write config");
    let config_arg = config.to_str().expect("utf-8 path").to_string();
    let server = Server::start_env(
        files,
        &["--config", &config_arg],
        &[("SWITCHBOARD_SERVED_MODEL_NAME", "from-env")],
    );
    runtime().block_on(async {
        let http = reqwest::Client::new();
        let unauthorized = http
            .get(server.url("/v1/models"))
            .send()
            .await
            .expect("send");
        assert_eq!(unauthorized.status(), 401, "the file's api_key applies");
        let models: Value = http
            .get(server.url("/v1/models"))
            .bearer_auth("file-key")
            .send()
            .await
            .expect("send")
            .json()
            .await
            .expect("json");
        assert_eq!(
            models["data"][0]["id"], "from-env",
            "the environment wins over the file"
        );
    });

    // A typo in the file is an error naming the file, not a silently ignored setting.
    let bad = tempfile::tempdir().expect("tmp");
    let bad_config = bad.path().join("bad.toml");
    std::fs::write(&bad_config, "prot = 9000\n").expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["serve", "--config"])
        .arg(&bad_config)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.toml") && stderr.contains("prot"),
        "{stderr}"
    );
}

//! The bundled default: `switchboard serve` with no model flags serves the real SmolLM2 GGUF
//! under its id with the four domain adapters, the router and the kb, and it answers; another
//! model with the bundled adapters folder starts.

use serde_json::json;

use super::harness::{golden, runtime, Files, Server};

const BUNDLED_ID: &str = "smollm2-135m-instruct";

fn kb_index_args(files: &Files) -> Vec<std::ffi::OsString> {
    vec![
        "--kb-index".into(),
        files.adapters.with_file_name("kb-index").into(),
    ]
}

#[test]
fn no_flags_serve_smollm2_which_answers_greedily() {
    let files = Files::new(512);
    let args = kb_index_args(&files);
    let server = Server::spawn(files, &args, &[]);
    runtime().block_on(async {
        let http = reqwest::Client::new();
        let models: serde_json::Value = http
            .get(server.url("/v1/models"))
            .send()
            .await
            .expect("models")
            .json()
            .await
            .expect("json");
        let ids: Vec<&str> = models["data"]
            .as_array()
            .expect("data")
            .iter()
            .filter_map(|m| m["id"].as_str())
            .collect();
        assert_eq!(ids.first(), Some(&BUNDLED_ID), "{ids:?}");

        // transformers' greedy answer for this prompt is "The capital of France is Paris."
        let body = json!({
            "model": BUNDLED_ID,
            "messages": [{"role": "user", "content": "What is the capital of France?"}],
            "temperature": 0, "max_tokens": 16,
        });
        let (status, reply) = server.chat(&http, &body).await;
        assert_eq!(status, 200, "{reply}");
        assert_eq!(reply["model"], BUNDLED_ID);
        let text = reply["choices"][0]["message"]["content"]
            .as_str()
            .expect("text");
        assert!(text.contains("Paris"), "{text:?}");
        assert_eq!(reply["choices"][0]["finish_reason"], "stop");

        // The bundled ensemble: the four domain adapters are served beside the base...
        let ids: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
        for domain in ["biology", "history", "security", "teaching"] {
            assert!(
                ids.iter().any(|id| id == domain),
                "{domain} not served: {ids:?}"
            );
        }
        // ...and `auto` answers a biology question through the biology adapter, with passages
        // of the bundled kb (indexed at start) cited.
        let body = json!({
            "model": "auto",
            "messages": [{"role": "user", "content": "How do mitochondria produce ATP in cells?"}],
            "temperature": 0, "max_tokens": 8,
        });
        let (status, reply) = server.chat(&http, &body).await;
        assert_eq!(status, 200, "{reply}");
        assert_eq!(reply["route"]["domain"], "biology", "{reply}");
        assert_eq!(reply["route"]["adapter"], "biology", "{reply}");
        assert_eq!(reply["model"], "biology", "{reply}");
        let sources = reply["sources"].as_array().expect("cited sources");
        assert!(
            sources
                .iter()
                .any(|s| s["path"].as_str().is_some_and(|p| p.contains("biology"))),
            "{reply}"
        );
    });
}

/// Another model (a Llama GGUF) with the bundled adapters folder: it starts and is named after
/// the file; an adapters folder the user names that does not fit fails the start, naming it.
#[test]
fn another_gguf_model_serves_and_a_named_misfit_adapter_is_an_error() {
    let gguf = golden().join("llama/tiny_llama.q8_0.gguf");
    let files = Files::new(512);
    let mut args = vec!["--model".into(), gguf.clone().into_os_string()];
    args.extend(kb_index_args(&files));
    let server = Server::spawn(files, &args, &[]);
    runtime().block_on(async {
        let http = reqwest::Client::new();
        let body = json!({"model": "tiny_llama.q8_0", "prompt": [1, 2, 3], "max_tokens": 3});
        let (status, reply) = server.post(&http, "/v1/completions", &body).await;
        assert_eq!(status, 200, "{reply}");
        assert_eq!(reply["usage"]["completion_tokens"], 3);
    });
    drop(server);

    // The golden Qwen2 adapters do not fit the Llama GGUF.
    let files = Files::new(512);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["serve", "--port", "0", "--model"])
        .arg(&gguf)
        .arg("--adapters")
        .arg(&files.adapters)
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("golden-a"), "{stderr}");
}

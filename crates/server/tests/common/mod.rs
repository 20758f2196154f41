//! In-process server over the golden tiny Qwen2 model (context 512) with the golden adapters
//! `a` and `b`: requests go through the whole axum app (auth, routing, JSON errors) with
//! `tower::ServiceExt::oneshot`, and the engine runs on its own thread as in production.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use serde_json::Value;
use switchboard_engine::{AdapterDirPolicy, Engine, EngineConfig, RegistryConfig};
use switchboard_server::{app, AppState, ServerConfig};
use tempfile::TempDir;
use tower::ServiceExt;

pub const BASE: &str = "golden";

pub fn golden() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/golden")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

pub struct TestServer {
    pub app: Router,
    pub state: AppState,
    _adapters: TempDir,
}

impl TestServer {
    /// The golden base served as `golden`, adapters `a` and `b`; `api_keys` empty: open.
    pub fn start(api_keys: &[&str]) -> Self {
        let adapters = tempfile::tempdir().unwrap();
        copy_dir(&golden().join("adapter_a"), &adapters.path().join("a"));
        copy_dir(&golden().join("adapter_b"), &adapters.path().join("b"));
        let engine = Engine::from_paths(
            &golden().join("base"),
            Some((adapters.path(), AdapterDirPolicy::Strict)),
            RegistryConfig::default(),
            EngineConfig::default(),
        )
        .unwrap();
        let mut config = ServerConfig::new(BASE);
        config.api_keys = api_keys.iter().map(|k| k.to_string()).collect();
        let state = AppState::new(engine, config, None);
        Self {
            app: app(state.clone()),
            state,
            _adapters: adapters,
        }
    }

    async fn send(&self, request: Request<Body>) -> (StatusCode, String) {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    fn request(method: &str, path: &str, key: Option<&str>, body: Body) -> Request<Body> {
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(key) = key {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {key}"));
        }
        builder.body(body).unwrap()
    }

    /// POSTs `body` and parses the JSON answer.
    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.post_with_key(path, body, None).await
    }

    pub async fn post_with_key(
        &self,
        path: &str,
        body: Value,
        key: Option<&str>,
    ) -> (StatusCode, Value) {
        let request = Self::request("POST", path, key, Body::from(body.to_string()));
        let (status, text) = self.send(request).await;
        (status, serde_json::from_str(&text).unwrap())
    }

    /// POSTs a raw body (for malformed JSON).
    pub async fn post_raw(&self, path: &str, body: &str) -> (StatusCode, Value) {
        let request = Self::request("POST", path, None, Body::from(body.to_string()));
        let (status, text) = self.send(request).await;
        (status, serde_json::from_str(&text).unwrap())
    }

    pub async fn get(&self, path: &str, key: Option<&str>) -> (StatusCode, Value) {
        let request = Self::request("GET", path, key, Body::empty());
        let (status, text) = self.send(request).await;
        (status, serde_json::from_str(&text).unwrap())
    }

    /// POSTs a streaming request; the `data:` payloads in order (`[DONE]` included as is).
    pub async fn post_sse(&self, path: &str, body: Value) -> (StatusCode, Vec<String>) {
        let request = Self::request("POST", path, None, Body::from(body.to_string()));
        let (status, text) = self.send(request).await;
        let data = text
            .lines()
            .filter_map(|line| line.strip_prefix("data: "))
            .map(str::to_string)
            .collect();
        (status, data)
    }

    pub fn encode(&self, text: &str) -> Vec<u32> {
        self.state.engine().tokenizer().encode(text).unwrap()
    }
}

/// The OpenAI error body's `param`, after checking the shape.
pub fn error_param(body: &Value) -> Option<&str> {
    let error = &body["error"];
    assert!(error["message"].is_string(), "not an OpenAI error: {body}");
    assert!(error["type"].is_string(), "not an OpenAI error: {body}");
    error["param"].as_str()
}

//! An async client for OpenAI-compatible servers: what `eval run` needs of switchboard, vLLM,
//! llama.cpp or OpenAI itself, and nothing more.
//!
//! * [`ServerUrl`] accepts the server root (`http://host:port`), the API root (`.../v1`) or an
//!   endpoint (`.../v1/completions`, `.../v1/chat/completions`), as lm-evaluation-harness and
//!   OpenAI SDKs are given one or the other. `/tokenize` lives at the server root (vLLM's place).
//! * Requests are retried on 408, 429, 5xx and connection errors with exponential backoff,
//!   waiting at least what `Retry-After` asks; other 4xx are answered at once.
//! * Errors name the URL and carry the server's own message (`error.message` of the OpenAI
//!   error body).
//!
//! `http://` and `https://` (rustls on ring, with the platform's root certificates as
//! rustls-platform-verifier finds them).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::{EvalError, Result};

/// lm-evaluation-harness's seed for every request (`TemplateAPI(seed=1234)`); sent too so that
/// servers that sample even at temperature 0 answer the same way for both tools.
pub const LM_EVAL_SEED: u64 = 1234;

/// Where a server is: its root, and the OpenAI API under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUrl {
    root: String,
}

impl ServerUrl {
    /// Parses `url`: `http://host[:port][/prefix]`, optionally followed by `/v1`,
    /// `/v1/completions` or `/v1/chat/completions` (and a trailing `/`).
    pub fn parse(url: &str) -> Result<ServerUrl> {
        let bad = |reason: &str| EvalError::BadUrl {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let trimmed = url.trim();
        let rest = trimmed
            .strip_prefix("http://")
            .or_else(|| trimmed.strip_prefix("https://"))
            .ok_or_else(|| bad("it must start with http:// or https://"))?;
        if rest.is_empty() || rest.starts_with('/') {
            return Err(bad("it has no host"));
        }
        if trimmed.contains(['?', '#']) {
            return Err(bad("query strings and fragments are not supported"));
        }
        let mut root = trimmed.trim_end_matches('/');
        for suffix in ["/chat/completions", "/completions"] {
            if let Some(stripped) = root.strip_suffix(suffix) {
                root = stripped;
                break;
            }
        }
        if let Some(stripped) = root.strip_suffix("/v1") {
            root = stripped;
        }
        Ok(ServerUrl {
            root: root.to_string(),
        })
    }

    /// The server root, without a trailing `/`: `http://127.0.0.1:8080`.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// `root` + `/v1` + `path` (`path` starts with `/`).
    pub fn api(&self, path: &str) -> String {
        format!("{}/v1{path}", self.root)
    }

    /// `root` + `path`, for vLLM's extra routes (`/tokenize`).
    pub fn at_root(&self, path: &str) -> String {
        format!("{}{path}", self.root)
    }
}

impl std::fmt::Display for ServerUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.root)
    }
}

/// How the client talks to the server.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Bearer token (`--api-key`, else `OPENAI_API_KEY`).
    pub api_key: Option<String>,
    /// Whole-request timeout (a request's generation included).
    pub timeout: Duration,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// First backoff; doubled per retry, capped at `max_backoff`.
    pub initial_backoff: Duration,
    /// Longest wait between two attempts (also caps `Retry-After`).
    pub max_backoff: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            api_key: None,
            // lm-evaluation-harness's default request timeout.
            timeout: Duration::from_secs(300),
            connect_timeout: Duration::from_secs(10),
            max_retries: 3,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
        }
    }
}

impl ClientOptions {
    /// The defaults, with the API key from `api_key`, else the `OPENAI_API_KEY` variable.
    pub fn with_api_key(api_key: Option<String>) -> Self {
        let api_key = api_key
            .or_else(|| std::env::var("OPENAI_API_KEY").ok())
            .filter(|k| !k.trim().is_empty());
        Self {
            api_key,
            ..Self::default()
        }
    }
}

/// One entry of `/v1/models`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ModelEntry {
    /// The name to send as `model`.
    pub id: String,
    /// The base model of an adapter (vLLM and switchboard); absent for base models.
    #[serde(default)]
    pub parent: Option<String>,
    /// The checkpoint it was loaded from (vLLM and switchboard).
    #[serde(default)]
    pub root: Option<String>,
}

/// One prompt of a completions request: text, or token ids (what lm-evaluation-harness sends
/// with `tokenized_requests=True`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum PromptInput {
    /// A string, tokenized by the server.
    Text(String),
    /// Token ids, used as they are.
    Tokens(Vec<u32>),
}

/// The echoed prompt of one completions choice, with its log-probabilities.
#[derive(Debug, Clone, PartialEq)]
pub struct EchoChoice {
    /// The tokens as text, prompt then generated.
    pub tokens: Vec<String>,
    /// The log-probability of each token given those before it; `None` for the first.
    pub token_logprobs: Vec<Option<f64>>,
    /// Where each token starts in `text`, in characters (not bytes), as vLLM and OpenAI count.
    pub text_offset: Vec<usize>,
    /// Prompt and generated text.
    pub text: String,
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The text.
    pub content: String,
}

impl ChatMessage {
    /// A message from `role`.
    pub fn new(role: &str, content: impl Into<String>) -> Self {
        Self {
            role: role.to_string(),
            content: content.into(),
        }
    }
}

/// An OpenAI-compatible server.
#[derive(Debug, Clone)]
pub struct OpenAiClient {
    http: reqwest::Client,
    url: ServerUrl,
    options: ClientOptions,
}

/// Makes rustls' ring backend the process default, once, before any HTTP client is built
/// (reqwest is built without a backend of its own; see the crate's Cargo.toml).
pub fn install_tls_provider() {
    // Err only means a provider is already installed, which is all that is needed.
    // Deprecated only because ring lacks post-quantum key exchange; aws-lc-rs, which has it,
    // needs a C build that the project keeps out.
    #[allow(deprecated)]
    let provider = rustls::crypto::ring::default_provider();
    let _ = provider.install_default();
}

impl OpenAiClient {
    /// A client for the server at `url` (see [`ServerUrl::parse`]).
    pub fn new(url: &str, options: ClientOptions) -> Result<Self> {
        let url = ServerUrl::parse(url)?;
        install_tls_provider();
        let http = reqwest::Client::builder()
            .timeout(options.timeout)
            .connect_timeout(options.connect_timeout)
            .build()
            .map_err(|e| EvalError::BadUrl {
                url: url.to_string(),
                reason: format!("cannot build an HTTP client: {e}"),
            })?;
        Ok(Self { http, url, options })
    }

    /// Where the server is.
    pub fn url(&self) -> &ServerUrl {
        &self.url
    }

    /// `GET /v1/models`.
    pub async fn models(&self) -> Result<Vec<ModelEntry>> {
        self.list("/models").await
    }

    /// GET an OpenAI-style list (`{"object": "list", "data": [...]}`) under `/v1`.
    async fn list<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<Vec<T>> {
        let url = self.url.api(path);
        let body = self.send(&url, None).await?;
        let data = body
            .get("data")
            .cloned()
            .ok_or_else(|| bad_response(&url, "no `data` list"))?;
        serde_json::from_value(data).map_err(|e| bad_response(&url, &e.to_string()))
    }

    /// `POST /tokenize` at the server root (vLLM's route, also switchboard's): the token ids of
    /// `text`, or `None` when the server has no such route (OpenAI, llama.cpp's differs).
    pub async fn tokenize(&self, text: &str, add_special_tokens: bool) -> Result<Option<Vec<u32>>> {
        let url = self.url.at_root("/tokenize");
        let body = json!({"prompt": text, "add_special_tokens": add_special_tokens});
        match self.send(&url, Some(&body)).await {
            Ok(reply) => {
                let tokens = reply
                    .get("tokens")
                    .cloned()
                    .ok_or_else(|| bad_response(&url, "no `tokens` list"))?;
                let tokens: Vec<u32> = serde_json::from_value(tokens)
                    .map_err(|e| bad_response(&url, &format!("`tokens`: {e}")))?;
                Ok(Some(tokens))
            }
            Err(EvalError::Api {
                status: 404 | 405 | 501,
                ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `POST /v1/completions` with `echo: true`, `logprobs`, `max_tokens: 1`, temperature 0:
    /// lm-evaluation-harness's log-likelihood request, one choice per prompt. Returns the
    /// choices in prompt order (by `index`).
    pub async fn completion_echo(
        &self,
        model: &str,
        prompts: Vec<PromptInput>,
        logprobs: u32,
    ) -> Result<Vec<EchoChoice>> {
        let url = self.url.api("/completions");
        let count = prompts.len();
        let body = json!({
            "model": model,
            "prompt": prompts,
            "max_tokens": 1,
            "logprobs": logprobs,
            "echo": true,
            "temperature": 0,
            "seed": LM_EVAL_SEED,
        });
        let reply = self.send(&url, Some(&body)).await?;
        parse_echo(&url, &reply, count)
    }

    /// `POST /v1/chat/completions`: the first choice's text.
    pub async fn chat(
        &self,
        model: &str,
        messages: &[ChatMessage],
        max_tokens: u32,
        temperature: f32,
        seed: Option<u64>,
    ) -> Result<String> {
        let url = self.url.api("/chat/completions");
        let mut body = json!({
            "model": model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": temperature,
        });
        if let Some(seed) = seed {
            body["seed"] = seed.into();
        }
        let reply = self.send(&url, Some(&body)).await?;
        reply
            .pointer("/choices/0/message/content")
            .map(|content| content.as_str().unwrap_or_default().to_string())
            .ok_or_else(|| bad_response(&url, "no `choices[0].message.content`"))
    }

    /// GET (no body) or POST `body` to `url`, with retries; the reply's JSON.
    async fn send(&self, url: &str, body: Option<&Value>) -> Result<Value> {
        let attempts = self.options.max_retries + 1;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let outcome = self.send_once(url, body).await;
            let (retry, wait) = match &outcome {
                Ok(_) => {
                    return outcome
                        .map(|(_, v)| v)
                        .map_err(|f| f.into_error(url, attempt))
                }
                Err(Failure::Status {
                    status,
                    retry_after,
                    ..
                }) => (matches!(status, 408 | 429) || *status >= 500, *retry_after),
                Err(Failure::Transport { retryable, .. }) => (*retryable, None),
                Err(Failure::Body { .. }) => (false, None),
            };
            if !retry || attempt >= attempts {
                return Err(outcome
                    .err()
                    .map(|f| f.into_error(url, attempt))
                    .unwrap_or_else(|| bad_response(url, "no outcome")));
            }
            let backoff = self
                .options
                .initial_backoff
                .saturating_mul(1 << (attempt - 1).min(16))
                .min(self.options.max_backoff);
            let wait = wait
                .map_or(backoff, |asked| asked.max(backoff))
                .min(self.options.max_backoff);
            tracing::debug!(%url, attempt, wait_ms = wait.as_millis() as u64, "retrying");
            tokio::time::sleep(wait).await;
        }
    }

    async fn send_once(
        &self,
        url: &str,
        body: Option<&Value>,
    ) -> std::result::Result<(u16, Value), Failure> {
        let mut request = match body {
            Some(body) => self.http.post(url).json(body),
            None => self.http.get(url),
        };
        if let Some(key) = &self.options.api_key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.map_err(Failure::transport)?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64);
        let text = response.text().await.map_err(Failure::transport)?;
        if !(200..300).contains(&status) {
            return Err(Failure::Status {
                status,
                message: error_message(&text),
                retry_after,
            });
        }
        serde_json::from_str(&text)
            .map(|v| (status, v))
            .map_err(|e| Failure::Body {
                reason: format!("not JSON ({e}): {}", clip(&text)),
            })
    }
}

mod admin;
mod wire;

pub use admin::ServedAdapter;

use wire::{bad_response, clip, error_message, parse_echo, Failure};

#[cfg(test)]
mod tests;

//! The teacher: any OpenAI-compatible `/v1/chat/completions` endpoint.
//!
//! Request and response bodies are async-openai's types, so the wire format is the one the
//! OpenAI SDKs agree on. The call itself is made with reqwest rather than
//! `async_openai::Client`: that client retries 429 and 5xx internally (a fixed three times) and
//! its error drops the response headers, while `synth` must honour `Retry-After` (seconds or an
//! HTTP date), cap and count retries for its report, and tell a bad key (stop the run) from a
//! prompt the server refuses (reject that chunk).

use std::future::Future;
use std::time::{Duration, SystemTime};

use async_openai::types::chat::{
    ChatCompletionRequestMessage, ChatCompletionRequestUserMessage,
    ChatCompletionRequestUserMessageContent, CreateChatCompletionRequest,
    CreateChatCompletionResponse, FinishReason,
};

use super::backoff::{jitter, parse_retry_after, BackoffPolicy};
use super::error::SynthError;

/// One question to the teacher.
#[derive(Debug, Clone, PartialEq)]
pub struct TeacherRequest {
    /// The rendered prompt, sent as the user message.
    pub prompt: String,
    /// Sampling temperature.
    pub temperature: f32,
    /// Most tokens in the reply.
    pub max_tokens: u32,
    /// Sampling seed, for servers that honour one.
    pub seed: Option<u64>,
}

/// Tokens the teacher reports having used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Generated tokens.
    pub completion_tokens: u64,
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, other: Usage) {
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
    }
}

/// The teacher's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct TeacherReply {
    /// The first choice's text (empty when it had none).
    pub text: String,
    /// Tokens used (zero when the server does not say).
    pub usage: Usage,
    /// The reply stopped at `max_tokens`.
    pub truncated: bool,
    /// HTTP retries (429, 5xx, connection errors) it took.
    pub http_retries: u32,
}

/// Why the teacher gave no reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TeacherError {
    /// The server refused this prompt (400, 413, 422: too long, a filter...): the chunk is
    /// rejected and the run goes on.
    #[error("the teacher refused the request ({status}): {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The server's message.
        message: String,
        /// HTTP retries before it.
        http_retries: u32,
    },
    /// Nothing will work until someone acts (a bad key, an unknown model, the server down
    /// after every retry, a reply that is not a chat completion): the run stops.
    #[error("{reason}")]
    Fatal {
        /// HTTP status, when the server answered.
        status: Option<u16>,
        /// What went wrong.
        reason: String,
    },
}

/// Something that answers prompts: the HTTP [`OpenAiTeacher`], or a stand-in in tests.
pub trait Teacher: Sync {
    /// Where it is, for messages.
    fn url(&self) -> &str;

    /// Asks one question.
    fn complete(
        &self,
        request: &TeacherRequest,
    ) -> impl Future<Output = Result<TeacherReply, TeacherError>> + Send;
}

/// Makes rustls' ring backend the process default before a client is built (reqwest is built
/// without a backend of its own; see the crate's Cargo.toml). Installing twice is harmless.
pub fn install_tls_provider() {
    // Deprecated only because ring lacks post-quantum key exchange; aws-lc-rs, which has it,
    // needs a C build that the project keeps out.
    #[allow(deprecated)]
    let provider = rustls::crypto::ring::default_provider();
    // Err only means a provider is already installed, which is all that is needed.
    let _ = provider.install_default();
}

/// A teacher behind an OpenAI-compatible chat completions endpoint.
#[derive(Debug, Clone)]
pub struct OpenAiTeacher {
    http: reqwest::Client,
    endpoint: String,
    model: String,
    api_key: Option<String>,
    backoff: BackoffPolicy,
}

impl OpenAiTeacher {
    /// A teacher at `url`: a server root (`http://host:port`, `/v1` is added), an API base
    /// (`.../v1`, `.../openai`: `/chat/completions` is added) or the endpoint itself.
    pub fn new(
        url: &str,
        model: &str,
        api_key: Option<String>,
        timeout: Duration,
        backoff: BackoffPolicy,
    ) -> Result<Self, SynthError> {
        let endpoint = chat_endpoint(url)?;
        install_tls_provider();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| SynthError::BadUrl {
                url: url.to_string(),
                reason: format!("cannot build an HTTP client: {e}"),
            })?;
        Ok(Self {
            http,
            endpoint,
            model: model.to_string(),
            api_key: api_key.filter(|k| !k.trim().is_empty()),
            backoff,
        })
    }

    // `seed` is deprecated in OpenAI's spec, yet vLLM, llama.cpp and switchboard honour it and
    // OpenAI ignores it: sent for reproducible runs.
    #[allow(deprecated)]
    fn body(&self, request: &TeacherRequest) -> CreateChatCompletionRequest {
        CreateChatCompletionRequest {
            model: self.model.clone(),
            messages: vec![ChatCompletionRequestMessage::User(
                ChatCompletionRequestUserMessage {
                    content: ChatCompletionRequestUserMessageContent::Text(request.prompt.clone()),
                    name: None,
                },
            )],
            temperature: Some(request.temperature),
            max_completion_tokens: Some(request.max_tokens),
            // Any integer is a seed; the upper half wraps to negative on the wire.
            seed: request.seed.map(|s| s as i64),
            ..Default::default()
        }
    }

    async fn send_once(&self, body: &CreateChatCompletionRequest) -> Attempt {
        let mut builder = self.http.post(&self.endpoint).json(body);
        if let Some(key) = &self.api_key {
            builder = builder.bearer_auth(key);
        }
        let response = match builder.send().await {
            Ok(response) => response,
            // Connection refused or reset, timeouts: the server may be restarting.
            Err(e) => return Attempt::Retry(None, format!("{e}")),
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let text = match response.text().await {
            Ok(text) => text,
            Err(e) => return Attempt::Retry(None, format!("reading the reply: {e}")),
        };
        match status {
            200..=299 => match serde_json::from_str::<CreateChatCompletionResponse>(&text) {
                Ok(reply) => Attempt::Done(Box::new(reply)),
                Err(e) => Attempt::Fatal(
                    Some(status),
                    format!("not a chat completion ({e}): {}", clip(&text)),
                ),
            },
            408 | 429 | 500..=599 => Attempt::Retry(
                retry_after,
                format!("HTTP {status}: {}", error_message(&text)),
            ),
            400 | 413 | 422 => Attempt::Refused(status, error_message(&text)),
            _ => Attempt::Fatal(
                Some(status),
                format!("HTTP {status}: {}", error_message(&text)),
            ),
        }
    }
}

enum Attempt {
    Done(Box<CreateChatCompletionResponse>),
    /// Worth retrying, after what the server asked for (if it did).
    Retry(Option<Duration>, String),
    Refused(u16, String),
    Fatal(Option<u16>, String),
}

impl Teacher for OpenAiTeacher {
    fn url(&self) -> &str {
        &self.endpoint
    }

    async fn complete(&self, request: &TeacherRequest) -> Result<TeacherReply, TeacherError> {
        let body = self.body(request);
        let mut retries = 0;
        loop {
            let (retry_after, reason) = match self.send_once(&body).await {
                Attempt::Done(reply) => return Ok(to_reply(*reply, retries)),
                Attempt::Refused(status, message) => {
                    return Err(TeacherError::Refused {
                        status,
                        message,
                        http_retries: retries,
                    })
                }
                Attempt::Fatal(status, reason) => {
                    return Err(TeacherError::Fatal { status, reason })
                }
                Attempt::Retry(retry_after, reason) => (retry_after, reason),
            };
            if retries >= self.backoff.max_retries {
                return Err(TeacherError::Fatal {
                    status: None,
                    reason: format!("{reason} (gave up after {retries} retries)"),
                });
            }
            let wait = self.backoff.delay(retries, retry_after, jitter());
            tracing::warn!(url = %self.endpoint, %reason, wait_ms = wait.as_millis() as u64, "teacher busy or unreachable; retrying");
            tokio::time::sleep(wait).await;
            retries += 1;
        }
    }
}

fn to_reply(reply: CreateChatCompletionResponse, http_retries: u32) -> TeacherReply {
    let usage = reply.usage.as_ref().map_or_else(Usage::default, |u| Usage {
        prompt_tokens: u64::from(u.prompt_tokens),
        completion_tokens: u64::from(u.completion_tokens),
    });
    let first = reply.choices.into_iter().next();
    let truncated = first
        .as_ref()
        .is_some_and(|c| c.finish_reason == Some(FinishReason::Length));
    TeacherReply {
        text: first.and_then(|c| c.message.content).unwrap_or_default(),
        usage,
        truncated,
        http_retries,
    }
}

/// The chat completions URL for what the user gave.
fn chat_endpoint(url: &str) -> Result<String, SynthError> {
    let bad = |reason: &str| SynthError::BadUrl {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let trimmed = url.trim().trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("http://")
        .or_else(|| trimmed.strip_prefix("https://"))
        .ok_or_else(|| bad("it must start with http:// or https://"))?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err(bad("it has no host"));
    }
    if trimmed.ends_with("/chat/completions") {
        return Ok(trimmed.to_string());
    }
    if !rest.contains('/') {
        return Ok(format!("{trimmed}/v1/chat/completions"));
    }
    Ok(format!("{trimmed}/chat/completions"))
}

/// `error.message` of an OpenAI error body, else the body itself (clipped).
fn error_message(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.pointer("/error/message")
                .and_then(|m| m.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| clip(body))
}

fn clip(text: &str) -> String {
    const MAX: usize = 300;
    match text.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn urls_become_the_chat_endpoint() {
        for (given, endpoint) in [
            (
                "http://127.0.0.1:8080",
                "http://127.0.0.1:8080/v1/chat/completions",
            ),
            ("http://h:1/v1/", "http://h:1/v1/chat/completions"),
            (
                "https://x.ai/openai",
                "https://x.ai/openai/chat/completions",
            ),
            (
                "http://h/v1/chat/completions",
                "http://h/v1/chat/completions",
            ),
        ] {
            assert_eq!(chat_endpoint(given).unwrap(), endpoint);
        }
        assert!(chat_endpoint("ftp://h").is_err());
        assert!(chat_endpoint("http:///v1").is_err());
    }

    #[test]
    fn replies_carry_text_usage_and_truncation() {
        let reply: CreateChatCompletionResponse = serde_json::from_str(
            r#"{"id": "x", "object": "chat.completion", "created": 1, "model": "m",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                             "finish_reason": "length"}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}}"#,
        )
        .unwrap();
        let reply = to_reply(reply, 1);
        assert_eq!(reply.text, "hi");
        assert!(reply.truncated);
        assert_eq!(
            reply.usage,
            Usage {
                prompt_tokens: 5,
                completion_tokens: 2
            }
        );
        assert_eq!(
            error_message(r#"{"error": {"message": "slow down"}}"#),
            "slow down"
        );
    }

    #[test]
    fn requests_send_only_what_is_set() {
        let teacher = OpenAiTeacher::new(
            "http://127.0.0.1:1",
            "m",
            None,
            Duration::from_secs(1),
            BackoffPolicy::default(),
        )
        .unwrap();
        let body = teacher.body(&TeacherRequest {
            prompt: "p".into(),
            temperature: 0.0,
            max_tokens: 9,
            seed: Some(7),
        });
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "p"}],
                "temperature": 0.0, "max_completion_tokens": 9, "seed": 7})
        );
    }
}

//! One streamed generation request, timed as `vllm bench serve` times it: the clock starts
//! just before the request is sent, TTFT is the first chunk that carries generated text, ITL
//! the gaps between later text chunks, and the latency runs to the end of the stream.
//! Failures come back as one-line messages (HTTP status + the server's error message), to be
//! counted by message; a benchmark never stops for one request.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::sse::{error_text, interpret, SseParser, StreamItem, Usage};
use super::Endpoint;

/// The timings and counts of one successful request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Timing {
    /// Seconds to the first text chunk; `None` if nothing was generated.
    pub ttft: Option<f64>,
    /// Seconds between consecutive text chunks.
    pub itl: Vec<f64>,
    /// Seconds from sending to the end of the stream.
    pub latency: f64,
    /// Chunks that carried text.
    pub content_chunks: usize,
    /// The server's usage chunk, if it sent one.
    pub usage: Option<Usage>,
}

/// The body every request of a run shares, but for its model and prompt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Shape {
    pub endpoint: Endpoint,
    pub output_len: usize,
    pub ignore_eos: bool,
    pub temperature: f64,
}

impl Shape {
    /// The request body for `model` and `prompt`, in vLLM's benchmark shape.
    pub fn body(&self, model: &str, prompt: &str) -> Value {
        let mut body = match self.endpoint {
            Endpoint::Completions => json!({
                "model": model,
                "prompt": prompt,
                "max_tokens": self.output_len,
            }),
            Endpoint::Chat => json!({
                "model": model,
                "messages": [{"role": "user", "content": prompt}],
                "max_completion_tokens": self.output_len,
            }),
        };
        body["temperature"] = self.temperature.into();
        body["stream"] = true.into();
        body["stream_options"] = json!({"include_usage": true});
        // Only when asked: strict OpenAI-compatible servers may refuse the unknown field.
        if self.ignore_eos {
            body["ignore_eos"] = true.into();
        }
        body
    }
}

/// Sends the requests of a run.
#[derive(Debug, Clone)]
pub(crate) struct Sender {
    pub http: reqwest::Client,
    /// The full endpoint URL (`.../v1/completions` or `.../v1/chat/completions`).
    pub url: String,
    pub api_key: Option<String>,
    pub shape: Shape,
    pub timeout: Duration,
}

impl Sender {
    /// Sends one request and reads its stream to the end.
    pub async fn send(&self, model: &str, prompt: &str) -> Result<Timing, String> {
        let mut request = self
            .http
            .post(&self.url)
            .json(&self.shape.body(model, prompt));
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        let start = Instant::now();
        let mut response = request.send().await.map_err(|e| self.transport(&e))?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            return Err(format!("HTTP {}: {}", status.as_u16(), body_message(&text)));
        }
        let mut parser = SseParser::default();
        let mut timing = Timing::default();
        let mut last_content: Option<Instant> = None;
        let mut done = false;
        while !done {
            let piece = response.chunk().await.map_err(|e| self.transport(&e))?;
            let now = Instant::now();
            let events = match piece {
                Some(bytes) => parser.push(&bytes),
                None => {
                    done = true;
                    parser.finish().into_iter().collect()
                }
            };
            for data in events {
                match interpret(&data) {
                    StreamItem::Done => done = true,
                    StreamItem::Error(message) => return Err(format!("stream error: {message}")),
                    StreamItem::Chunk { content, usage } => {
                        if usage.is_some() {
                            timing.usage = usage;
                        }
                        if !content {
                            continue;
                        }
                        timing.content_chunks += 1;
                        match last_content {
                            None => timing.ttft = Some(now.duration_since(start).as_secs_f64()),
                            Some(previous) => {
                                timing.itl.push(now.duration_since(previous).as_secs_f64())
                            }
                        }
                        last_content = Some(now);
                    }
                }
            }
        }
        timing.latency = start.elapsed().as_secs_f64();
        if timing.content_chunks == 0 && timing.usage.is_none() {
            return Err("the stream ended without any output or usage".to_string());
        }
        Ok(timing)
    }

    fn transport(&self, error: &reqwest::Error) -> String {
        if error.is_timeout() {
            return format!("timed out after {}s", self.timeout.as_secs_f64());
        }
        // reqwest's own message is generic ("error sending request"); the cause is below it.
        let mut message = error.to_string();
        let mut source = std::error::Error::source(error);
        while let Some(inner) = source {
            message = format!("{message}: {inner}");
            source = inner.source();
        }
        message
    }
}

/// The message of an error response: OpenAI's `error.message`, vLLM's top-level `message`,
/// or the body itself (cut short).
pub(crate) fn body_message(text: &str) -> String {
    if let Ok(value) = serde_json::from_str::<Value>(text) {
        if let Some(error) = value.get("error") {
            return error_text(error);
        }
        if let Some(message) = value.get("message").and_then(Value::as_str) {
            return message.to_string();
        }
    }
    let text = text.trim();
    if text.is_empty() {
        return "(empty body)".to_string();
    }
    match text.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(endpoint: Endpoint, ignore_eos: bool) -> Shape {
        Shape {
            endpoint,
            output_len: 8,
            ignore_eos,
            temperature: 0.0,
        }
    }

    #[test]
    fn bodies_have_vllms_benchmark_shape() {
        let body = shape(Endpoint::Completions, true).body("golden-a", "hi there");
        assert_eq!(
            body,
            json!({"model": "golden-a", "prompt": "hi there", "max_tokens": 8,
                   "temperature": 0.0, "stream": true,
                   "stream_options": {"include_usage": true}, "ignore_eos": true})
        );
        let chat = shape(Endpoint::Chat, false).body("m", "q");
        assert_eq!(chat["messages"], json!([{"role": "user", "content": "q"}]));
        assert_eq!(chat["max_completion_tokens"], 8);
        assert!(chat.get("ignore_eos").is_none());
    }

    #[test]
    fn error_bodies_give_their_message() {
        assert_eq!(
            body_message(
                r#"{"error":{"message":"model x not found","type":"invalid_request_error"}}"#
            ),
            "model x not found"
        );
        assert_eq!(
            body_message(r#"{"object":"error","message":"too long"}"#),
            "too long"
        );
        assert_eq!(body_message("  "), "(empty body)");
        assert_eq!(body_message("Bad Gateway"), "Bad Gateway");
    }
}

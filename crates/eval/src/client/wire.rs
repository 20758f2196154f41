//! The wire details of replies: error bodies, echo choices, and what one attempt ended with.

use std::time::Duration;

use serde_json::Value;

use super::EchoChoice;
use crate::error::{EvalError, Result};

/// What one attempt ended with, before deciding whether to retry.
pub(super) enum Failure {
    Transport {
        reason: String,
        retryable: bool,
    },
    Status {
        status: u16,
        message: String,
        retry_after: Option<Duration>,
    },
    Body {
        reason: String,
    },
}

impl Failure {
    pub(super) fn transport(e: reqwest::Error) -> Self {
        // Connection failures and timeouts are worth another try; a request that could not be
        // built (bad URL, bad header) is not.
        let retryable = e.is_connect() || e.is_timeout() || e.is_request() || e.is_body();
        let mut reason = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(inner) = source {
            reason = format!("{reason}: {inner}");
            source = inner.source();
        }
        Failure::Transport { reason, retryable }
    }

    pub(super) fn into_error(self, url: &str, attempts: u32) -> EvalError {
        let tries = if attempts == 1 {
            String::new()
        } else {
            format!(" (after {attempts} attempts)")
        };
        match self {
            Failure::Transport { reason, .. } => EvalError::Unreachable {
                url: url.to_string(),
                reason: format!("{reason}{tries}"),
            },
            Failure::Status {
                status, message, ..
            } => EvalError::Api {
                url: url.to_string(),
                status,
                message: format!("{message}{tries}"),
            },
            Failure::Body { reason } => bad_response(url, &reason),
        }
    }
}

pub(super) fn bad_response(url: &str, reason: &str) -> EvalError {
    EvalError::BadResponse {
        url: url.to_string(),
        reason: reason.to_string(),
    }
}

/// The server's message from an error body: OpenAI's `{"error": {"message"}}`, vLLM's older
/// `{"message"}`, a plain `{"detail"}`, or the text itself.
pub(super) fn error_message(text: &str) -> String {
    let parsed: Option<Value> = serde_json::from_str(text).ok();
    let message = parsed.as_ref().and_then(|v| {
        v.pointer("/error/message")
            .or_else(|| v.get("message"))
            .or_else(|| v.get("detail"))
            .or_else(|| v.get("error"))
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    match message {
        Some(m) => m,
        None if text.trim().is_empty() => "(empty body)".to_string(),
        None => clip(text),
    }
}

pub(super) fn clip(text: &str) -> String {
    const LIMIT: usize = 300;
    let text = text.trim();
    match text.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// The choices of an echo reply, checked for shape and put in prompt order.
pub(super) fn parse_echo(url: &str, reply: &Value, count: usize) -> Result<Vec<EchoChoice>> {
    let choices = reply
        .get("choices")
        .and_then(Value::as_array)
        .ok_or_else(|| bad_response(url, "no `choices` list"))?;
    if choices.len() != count {
        return Err(bad_response(
            url,
            &format!("{} choices for {count} prompts", choices.len()),
        ));
    }
    let mut out: Vec<Option<EchoChoice>> = vec![None; count];
    for (position, choice) in choices.iter().enumerate() {
        let index = match choice.get("index") {
            Some(index) => index
                .as_u64()
                .map(|i| i as usize)
                .filter(|i| *i < count)
                .ok_or_else(|| bad_response(url, &format!("choice index {index} out of range")))?,
            None => position,
        };
        let logprobs = choice
            .get("logprobs")
            .filter(|l| !l.is_null())
            .ok_or_else(|| {
                bad_response(
                    url,
                    "a choice has no `logprobs` (the server ignored `logprobs`)",
                )
            })?;
        let field = |name: &str| {
            logprobs
                .get(name)
                .cloned()
                .ok_or_else(|| bad_response(url, &format!("`logprobs.{name}` is missing")))
        };
        let parse = |name: &str, e: serde_json::Error| {
            bad_response(url, &format!("`logprobs.{name}`: {e}"))
        };
        let token_logprobs: Vec<Option<f64>> = serde_json::from_value(field("token_logprobs")?)
            .map_err(|e| parse("token_logprobs", e))?;
        let tokens: Vec<String> = match logprobs.get("tokens") {
            Some(t) if !t.is_null() => {
                serde_json::from_value(t.clone()).map_err(|e| parse("tokens", e))?
            }
            _ => Vec::new(),
        };
        let text_offset: Vec<usize> = match logprobs.get("text_offset") {
            Some(t) if !t.is_null() => {
                serde_json::from_value(t.clone()).map_err(|e| parse("text_offset", e))?
            }
            _ => Vec::new(),
        };
        let text = choice
            .get("text")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if out[index].is_some() {
            return Err(bad_response(
                url,
                &format!("choice index {index} appears twice"),
            ));
        }
        out[index] = Some(EchoChoice {
            tokens,
            token_logprobs,
            text_offset,
            text,
        });
    }
    Ok(out.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn error_messages_come_from_the_body() {
        assert_eq!(
            error_message(r#"{"error": {"message": "model `x` not found", "type": "x"}}"#),
            "model `x` not found"
        );
        assert_eq!(error_message(r#"{"detail": "Not Found"}"#), "Not Found");
        assert_eq!(
            error_message("Unsupported param: echo"),
            "Unsupported param: echo"
        );
        assert_eq!(error_message(""), "(empty body)");
    }

    #[test]
    fn echo_replies_are_put_in_prompt_order_and_checked() {
        let url = "http://h/v1/completions";
        let reply = json!({"choices": [
            {"index": 1, "text": "ab", "logprobs": {"tokens": ["a", "b"], "token_logprobs": [null, -1.5], "text_offset": [0, 1]}},
            {"index": 0, "text": "c", "logprobs": {"tokens": ["c"], "token_logprobs": [null], "text_offset": [0]}},
        ]});
        let choices = parse_echo(url, &reply, 2).expect("parse");
        assert_eq!(choices[0].tokens, ["c"]);
        assert_eq!(choices[1].token_logprobs, [None, Some(-1.5)]);
        assert!(parse_echo(url, &reply, 3)
            .expect_err("count")
            .to_string()
            .contains("2 choices for 3 prompts"));
        let no_logprobs = json!({"choices": [{"index": 0, "text": "x", "logprobs": null}]});
        assert!(parse_echo(url, &no_logprobs, 1)
            .expect_err("logprobs")
            .to_string()
            .contains("ignored `logprobs`"));
    }
}

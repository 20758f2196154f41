//! Retrieval-augmented prompts: the `rag` request field, the token budget, and where passages go
//! in the conversation (the system message; the user's question is never touched).

use serde_json::Value;
use switchboard_engine::{ChatMessage, SamplingParams};

use crate::error::ApiError;
use crate::openai::Source;
use crate::pipeline::Target;
use crate::state::AppState;

/// Completion tokens kept free for requests without `max_tokens`.
const DEFAULT_ANSWER_RESERVE: usize = 512;

/// What the `rag` field asks for.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct RagRequest {
    /// `None`: the server's default for this route.
    pub enabled: Option<bool>,
    pub k: Option<usize>,
    pub domain: Option<String>,
}

pub(crate) fn parse_rag(field: Option<&Value>) -> Result<RagRequest, ApiError> {
    let invalid = || {
        ApiError::invalid(
            "rag",
            "must be true, false or an object {\"k\": integer, \"domain\": string}",
        )
    };
    match field {
        None | Some(Value::Null) => Ok(RagRequest::default()),
        Some(Value::Bool(on)) => Ok(RagRequest {
            enabled: Some(*on),
            ..RagRequest::default()
        }),
        Some(Value::Object(map)) => {
            let k = match map.get("k") {
                None | Some(Value::Null) => None,
                Some(v) => match v.as_u64() {
                    Some(k @ 1..=50) => Some(k as usize),
                    _ => {
                        return Err(ApiError::invalid(
                            "rag.k",
                            "must be an integer from 1 to 50",
                        ))
                    }
                },
            };
            let domain = match map.get("domain") {
                None | Some(Value::Null) => None,
                Some(Value::String(d)) => Some(d.clone()),
                Some(_) => return Err(ApiError::invalid("rag.domain", "must be a string")),
            };
            if let Some(key) = map
                .keys()
                .find(|k| !matches!(k.as_str(), "k" | "domain" | "enabled"))
            {
                return Err(ApiError::invalid("rag", format!("unknown key `{key}`")));
            }
            let enabled = match map.get("enabled") {
                None | Some(Value::Null) => Some(true),
                Some(Value::Bool(b)) => Some(*b),
                Some(_) => return Err(invalid()),
            };
            Ok(RagRequest { enabled, k, domain })
        }
        Some(_) => Err(invalid()),
    }
}

/// Retrieves for the conversation and puts the passages into its system message. Returns the
/// sources cited, or `None` when retrieval did not run or found nothing.
pub(crate) async fn augment_chat(
    state: &AppState,
    rag: &RagRequest,
    target: &Target,
    messages: &mut Vec<ChatMessage>,
    params: &SamplingParams,
) -> Result<Option<Vec<Source>>, ApiError> {
    let Some(retrieval) = state.inner.retrieval.clone() else {
        if rag.enabled == Some(true) {
            return Err(ApiError::invalid(
                "rag",
                "retrieval is not configured on this server (start it with a knowledge base)",
            ));
        }
        return Ok(None);
    };
    let enabled = rag
        .enabled
        .unwrap_or_else(|| retrieval.enabled_by_default(&target.route));
    if !enabled {
        return Ok(None);
    }
    let Some(query) = messages
        .iter()
        .rev()
        .find(|m| m.role == "user")
        .map(|m| m.content.clone())
    else {
        return Ok(None);
    };
    if let Some(domain) = rag.domain.as_deref().filter(|d| !retrieval.knows_domain(d)) {
        return Err(ApiError::invalid(
            "rag.domain",
            format!("`{domain}` is not a domain of the knowledge base"),
        ));
    }
    let domain = rag.domain.clone().or_else(|| target.route.domain.clone());
    let engine = state.engine().clone();
    let conversation = messages.clone();
    let reserve = params.max_tokens.unwrap_or(DEFAULT_ANSWER_RESERVE);
    let k = rag.k;
    let outcome = tokio::task::spawn_blocking(move || {
        let tokenizer = engine.tokenizer();
        let count = |text: &str| tokenizer.encode(text).map_or(usize::MAX, |ids| ids.len());
        let rendered = tokenizer
            .apply_chat_template(&conversation, true)
            .map_err(|e| e.to_string())?;
        // Passages go in a system message: its own framing costs a few tokens too.
        let overhead = 16;
        let budget = engine
            .max_model_len()
            .saturating_sub(count(&rendered))
            .saturating_sub(reserve)
            .saturating_sub(overhead);
        if budget == 0 {
            return Ok(None);
        }
        retrieval.augment(&query, k, domain.as_deref(), budget, &count)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("retrieval task failed: {e}")))?;
    let augmentation = match outcome {
        Ok(Some(a)) if !a.sources.is_empty() => a,
        Ok(_) => return Ok(None),
        Err(message) => {
            tracing::warn!(%message, "retrieval failed; answering without passages");
            return Ok(None);
        }
    };
    match messages.first_mut() {
        Some(first) if first.role == "system" => {
            first.content = format!("{}\n\n{}", first.content, augmentation.system_text);
        }
        _ => messages.insert(0, ChatMessage::new("system", augmentation.system_text)),
    }
    Ok(Some(augmentation.sources))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rag_field_forms() {
        assert_eq!(parse_rag(None).unwrap(), RagRequest::default());
        assert_eq!(
            parse_rag(Some(&Value::Bool(false))).unwrap().enabled,
            Some(false)
        );
        let object = serde_json::json!({"k": 3, "domain": "history"});
        let parsed = parse_rag(Some(&object)).unwrap();
        assert_eq!(parsed.enabled, Some(true));
        assert_eq!(parsed.k, Some(3));
        assert_eq!(parsed.domain.as_deref(), Some("history"));
        for bad in [
            serde_json::json!({"k": 0}),
            serde_json::json!("yes"),
            serde_json::json!({"x": 1}),
        ] {
            assert!(parse_rag(Some(&bad)).is_err(), "{bad}");
        }
    }
}

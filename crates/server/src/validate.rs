//! Wire requests to engine requests: every field checked, with a 400 naming the field when it is
//! wrong. The engine checks ranges again; here we catch what cannot even be represented
//! (negative counts, non-numeric token ids, unsupported content parts).

use switchboard_engine::{ChatMessage, SamplingParams, MAX_TOP_LOGPROBS};

use crate::error::ApiError;
use crate::openai::{
    ChatCompletionRequest, CompletionRequest, MessageContent, PromptField, SamplingFields,
    StopField, WireMessage,
};

/// Most stop strings per request.
pub const MAX_STOP_STRINGS: usize = 16;

/// How a validated request is answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivery {
    /// Server-sent events instead of one JSON body.
    pub stream: bool,
    /// With `stream`, a last chunk carrying usage.
    pub include_usage: bool,
}

fn non_negative(param: &str, value: Option<i64>) -> Result<Option<usize>, ApiError> {
    match value {
        Some(v) if v < 0 => Err(ApiError::invalid(
            param,
            format!("must be non-negative, got {v}"),
        )),
        Some(v) => usize::try_from(v)
            .map(Some)
            .map_err(|_| ApiError::invalid(param, "is too large")),
        None => Ok(None),
    }
}

/// `max_completion_tokens` (which wins) or `max_tokens`, and the name of the one given.
fn max_tokens(fields: &SamplingFields) -> Result<(Option<usize>, &'static str), ApiError> {
    match (fields.max_completion_tokens, fields.max_tokens) {
        (Some(v), _) => Ok((
            non_negative("max_completion_tokens", Some(v))?,
            "max_completion_tokens",
        )),
        (None, v) => Ok((non_negative("max_tokens", v)?, "max_tokens")),
    }
}

/// The sampling parameters of either API (logprobs are set by the caller).
pub fn sampling(fields: &SamplingFields) -> Result<(SamplingParams, Delivery), ApiError> {
    let (max_tokens, param) = max_tokens(fields)?;
    if max_tokens == Some(0) {
        return Err(ApiError::invalid(param, "must be at least 1"));
    }
    sampling_with(fields, max_tokens)
}

/// The sampling parameters with `max_tokens` already decided.
fn sampling_with(
    fields: &SamplingFields,
    max_tokens: Option<usize>,
) -> Result<(SamplingParams, Delivery), ApiError> {
    let defaults = SamplingParams::default();
    let stop = match &fields.stop {
        None => Vec::new(),
        Some(StopField::One(s)) => vec![s.clone()],
        Some(StopField::Many(v)) => v.clone(),
    };
    if stop.len() > MAX_STOP_STRINGS {
        return Err(ApiError::invalid(
            "stop",
            format!("at most {MAX_STOP_STRINGS} stop strings are allowed"),
        ));
    }
    let mut logit_bias = std::collections::BTreeMap::new();
    for (key, &bias) in fields.logit_bias.iter().flatten() {
        let id: u32 = key
            .trim()
            .parse()
            .map_err(|_| ApiError::invalid("logit_bias", format!("`{key}` is not a token id")))?;
        logit_bias.insert(id, bias);
    }
    let stop_token_ids = fields
        .stop_token_ids
        .iter()
        .flatten()
        .map(|&id| {
            u32::try_from(id).map_err(|_| {
                ApiError::invalid("stop_token_ids", format!("`{id}` is not a token id"))
            })
        })
        .collect::<Result<Vec<u32>, _>>()?;
    let n = non_negative("n", fields.n)?.unwrap_or(1);
    if n == 0 {
        return Err(ApiError::invalid("n", "must be at least 1"));
    }
    let params = SamplingParams {
        temperature: fields.temperature.unwrap_or(defaults.temperature),
        top_p: fields.top_p.unwrap_or(defaults.top_p),
        top_k: match fields.top_k {
            // vLLM spells "no top-k" as -1.
            Some(-1) => 0,
            other => non_negative("top_k", other)?.unwrap_or(0),
        },
        min_p: fields.min_p.unwrap_or(defaults.min_p),
        repetition_penalty: fields
            .repetition_penalty
            .unwrap_or(defaults.repetition_penalty),
        presence_penalty: fields.presence_penalty.unwrap_or(defaults.presence_penalty),
        frequency_penalty: fields
            .frequency_penalty
            .unwrap_or(defaults.frequency_penalty),
        logit_bias,
        // Any integer is a valid seed; negative ones map onto the upper half of u64.
        seed: fields.seed.map(|s| s as u64),
        max_tokens,
        stop,
        stop_token_ids,
        ignore_eos: fields.ignore_eos.unwrap_or(false),
        n,
        logprobs: false,
        top_logprobs: 0,
        prompt_logprobs: None,
        skip_special_tokens: fields.skip_special_tokens.unwrap_or(true),
    };
    let stream = fields.stream.unwrap_or(false);
    let delivery = Delivery {
        stream,
        include_usage: stream
            && fields
                .stream_options
                .as_ref()
                .is_some_and(|o| o.include_usage),
    };
    Ok((params, delivery))
}

/// A chat request's conversation and parameters.
pub fn chat(
    request: &ChatCompletionRequest,
) -> Result<(Vec<ChatMessage>, SamplingParams, Delivery), ApiError> {
    let messages = messages(&request.messages)?;
    let (mut params, delivery) = sampling(&request.sampling)?;
    let top_logprobs = non_negative("top_logprobs", request.top_logprobs)?.unwrap_or(0);
    let logprobs = request.logprobs.unwrap_or(false);
    if top_logprobs > 0 && !logprobs {
        return Err(ApiError::invalid(
            "top_logprobs",
            "requires `logprobs` to be true",
        ));
    }
    if top_logprobs > MAX_TOP_LOGPROBS {
        return Err(ApiError::invalid(
            "top_logprobs",
            format!("must be between 0 and {MAX_TOP_LOGPROBS}"),
        ));
    }
    params.logprobs = logprobs;
    params.top_logprobs = top_logprobs;
    Ok((messages, params, delivery))
}

/// A conversation as the engine takes it: roles mapped, text parts joined, every bad field named.
pub fn messages(wire: &[WireMessage]) -> Result<Vec<ChatMessage>, ApiError> {
    if wire.is_empty() {
        return Err(ApiError::invalid(
            "messages",
            "must contain at least one message",
        ));
    }
    let mut messages = Vec::with_capacity(wire.len());
    for (i, message) in wire.iter().enumerate() {
        let role = match message.role.as_str() {
            "system" | "developer" => "system",
            "user" => "user",
            "assistant" => "assistant",
            other => {
                return Err(ApiError::invalid(
                    &format!("messages[{i}].role"),
                    format!("unsupported role `{other}`; use system, developer, user or assistant"),
                ))
            }
        };
        let content = match &message.content {
            None if role == "assistant" => String::new(),
            None => {
                return Err(ApiError::invalid(
                    &format!("messages[{i}].content"),
                    "is required",
                ))
            }
            Some(MessageContent::Text(text)) => text.clone(),
            Some(MessageContent::Parts(parts)) => parts_text(i, parts)?,
        };
        messages.push(ChatMessage::new(role, content));
    }
    Ok(messages)
}

/// The text of message `i`'s content parts; only `text` parts are supported.
fn parts_text(i: usize, parts: &[crate::openai::ContentPart]) -> Result<String, ApiError> {
    let mut text = String::new();
    for (j, part) in parts.iter().enumerate() {
        match (part.kind.as_str(), &part.text) {
            ("text", Some(t)) => text.push_str(t),
            ("text", None) => {
                return Err(ApiError::invalid(
                    &format!("messages[{i}].content[{j}].text"),
                    "is required for text parts",
                ))
            }
            (kind, _) => {
                return Err(ApiError::invalid(
                    &format!("messages[{i}].content[{j}].type"),
                    format!("content parts of type `{kind}` are not supported; only `text`"),
                ))
            }
        }
    }
    Ok(text)
}

/// One prompt of a text completion.
#[derive(Debug, Clone, PartialEq)]
pub enum CompletionPrompt {
    /// Text.
    Text(String),
    /// Token ids.
    Tokens(Vec<u32>),
}

/// Most prompts in one completion request.
pub const MAX_PROMPTS: usize = 64;

/// A validated text completion request.
#[derive(Debug, Clone)]
pub struct CompletionSpec {
    /// The prompts, each completed `params.n` times.
    pub prompts: Vec<CompletionPrompt>,
    pub params: SamplingParams,
    pub delivery: Delivery,
    /// Put each prompt before its completions: the text, and with `logprobs` the scored
    /// prompt tokens (the engine's `prompt_logprobs`).
    pub echo: bool,
    /// `max_tokens: 0` with `echo`: the prompt alone is answered. The engine still runs one
    /// step (as vLLM does); that token is neither shown nor counted.
    pub hide_generated: bool,
}

/// A text completion's prompts and parameters.
pub fn completion(request: &CompletionRequest) -> Result<CompletionSpec, ApiError> {
    if request.suffix.as_deref().is_some_and(|s| !s.is_empty()) {
        return Err(ApiError::invalid("suffix", "suffix is not supported"));
    }
    let prompts = completion_prompts(&request.prompt)?;
    let echo = request.echo.unwrap_or(false);
    let (max_tokens, param) = max_tokens(&request.sampling)?;
    let hide_generated = max_tokens == Some(0);
    if hide_generated && !echo {
        return Err(ApiError::invalid(
            param,
            "must be at least 1 (0 is accepted only with `echo`, to score the prompt)",
        ));
    }
    let max_tokens = if hide_generated { Some(1) } else { max_tokens };
    let (mut params, delivery) = sampling_with(&request.sampling, max_tokens)?;
    if let Some(best_of) = request.best_of {
        if best_of != 1 && best_of != params.n as i64 {
            return Err(ApiError::invalid(
                "best_of",
                "best_of other than n is not supported",
            ));
        }
    }
    // Legacy `logprobs: k` asks for the sampled token's logprob and k alternatives; with echo,
    // the same for every prompt token.
    if let Some(k) = non_negative("logprobs", request.logprobs)? {
        if k > MAX_TOP_LOGPROBS {
            return Err(ApiError::invalid(
                "logprobs",
                format!("must be between 0 and {MAX_TOP_LOGPROBS}"),
            ));
        }
        params.logprobs = true;
        params.top_logprobs = k;
        params.prompt_logprobs = echo.then_some(k);
    }
    Ok(CompletionSpec {
        prompts,
        params,
        delivery,
        echo,
        hide_generated,
    })
}

/// `prompt` in any of its four shapes: text, texts, token ids, lists of token ids.
fn completion_prompts(field: &PromptField) -> Result<Vec<CompletionPrompt>, ApiError> {
    let tokens = |ids: &[i64]| -> Result<Vec<u32>, ApiError> {
        ids.iter()
            .map(|&id| {
                u32::try_from(id)
                    .map_err(|_| ApiError::invalid("prompt", format!("`{id}` is not a token id")))
            })
            .collect()
    };
    let prompts: Vec<CompletionPrompt> = match field {
        PromptField::Text(t) => vec![CompletionPrompt::Text(t.clone())],
        PromptField::Texts(ts) => ts.iter().cloned().map(CompletionPrompt::Text).collect(),
        PromptField::Tokens(ids) => vec![CompletionPrompt::Tokens(tokens(ids)?)],
        PromptField::TokenLists(lists) => lists
            .iter()
            .map(|ids| tokens(ids).map(CompletionPrompt::Tokens))
            .collect::<Result<_, _>>()?,
    };
    if prompts.is_empty() {
        return Err(ApiError::invalid("prompt", "must not be empty"));
    }
    if prompts.len() > MAX_PROMPTS {
        return Err(ApiError::invalid(
            "prompt",
            format!("at most {MAX_PROMPTS} prompts per request"),
        ));
    }
    Ok(prompts)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn chat_request(json: serde_json::Value) -> ChatCompletionRequest {
        serde_json::from_value(json).unwrap()
    }

    fn param_of(err: ApiError) -> Option<String> {
        match err {
            ApiError::InvalidRequest { param, .. } => param,
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn chat_fields_map_onto_sampling_params() {
        let request = chat_request(serde_json::json!({
            "model": "m",
            "messages": [
                {"role": "developer", "content": "be brief"},
                {"role": "user", "content": [{"type": "text", "text": "hi "}, {"type": "text", "text": "there"}]},
                {"role": "assistant", "content": null},
            ],
            "max_completion_tokens": 5, "max_tokens": 9, "temperature": 0, "top_k": -1,
            "stop": "###", "seed": -1, "logit_bias": {"42": -100}, "logprobs": true,
            "top_logprobs": 3, "stream": true, "stream_options": {"include_usage": true},
            "tools": [], "user": "u1"
        }));
        let (messages, params, delivery) = chat(&request).unwrap();
        assert_eq!(messages[0], ChatMessage::new("system", "be brief"));
        assert_eq!(messages[1].content, "hi there");
        assert_eq!(messages[2].content, "");
        assert_eq!(params.max_tokens, Some(5));
        assert_eq!(params.temperature, 0.0);
        assert_eq!(params.top_k, 0);
        assert_eq!(params.stop, vec!["###".to_string()]);
        assert_eq!(params.seed, Some(u64::MAX));
        assert_eq!(params.logit_bias.get(&42), Some(&-100.0));
        assert!(params.logprobs);
        assert_eq!(params.top_logprobs, 3);
        assert_eq!(
            delivery,
            Delivery {
                stream: true,
                include_usage: true
            }
        );
    }

    #[test]
    fn bad_fields_are_named() {
        let base =
            serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "x"}]});
        let with = |key: &str, value: serde_json::Value| {
            let mut v = base.clone();
            v[key] = value;
            chat(&chat_request(v)).unwrap_err()
        };
        assert_eq!(
            param_of(with("max_tokens", (-1).into())).as_deref(),
            Some("max_tokens")
        );
        assert_eq!(
            param_of(with("max_tokens", 0.into())).as_deref(),
            Some("max_tokens")
        );
        assert_eq!(param_of(with("n", 0.into())).as_deref(), Some("n"));
        assert_eq!(
            param_of(with("top_logprobs", 2.into())).as_deref(),
            Some("top_logprobs")
        );
        assert_eq!(
            param_of(with("logit_bias", serde_json::json!({"abc": 1}))).as_deref(),
            Some("logit_bias")
        );
        assert_eq!(
            param_of(with("messages", serde_json::json!([]))).as_deref(),
            Some("messages")
        );
        assert_eq!(
            param_of(with(
                "messages",
                serde_json::json!([{"role": "tool", "content": "x"}])
            ))
            .as_deref(),
            Some("messages[0].role")
        );
        assert_eq!(
            param_of(with(
                "messages",
                serde_json::json!([{"role": "user", "content": [{"type": "image_url"}]}])
            ))
            .as_deref(),
            Some("messages[0].content[0].type")
        );
    }

    #[test]
    fn completion_prompts_and_legacy_logprobs() {
        let request: CompletionRequest = serde_json::from_value(serde_json::json!({
            "model": "m", "prompt": ["a", "b"], "logprobs": 2, "n": 2
        }))
        .unwrap();
        let spec = completion(&request).unwrap();
        assert_eq!(spec.prompts.len(), 2);
        assert!(spec.params.logprobs);
        assert_eq!(spec.params.top_logprobs, 2);
        assert_eq!(
            spec.params.prompt_logprobs, None,
            "no echo, no prompt scoring"
        );
        let tokens: CompletionRequest =
            serde_json::from_value(serde_json::json!({"model": "m", "prompt": [1, 2, 3]})).unwrap();
        assert_eq!(
            completion(&tokens).unwrap().prompts,
            vec![CompletionPrompt::Tokens(vec![1, 2, 3])]
        );
        let negative: CompletionRequest =
            serde_json::from_value(serde_json::json!({"model": "m", "prompt": [[1, -2]]})).unwrap();
        assert_eq!(
            param_of(completion(&negative).unwrap_err()).as_deref(),
            Some("prompt")
        );
    }

    fn completion_request(json: serde_json::Value) -> CompletionRequest {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn echo_with_logprobs_scores_the_prompt() {
        // lm-evaluation-harness' loglikelihood payload.
        let spec = completion(&completion_request(serde_json::json!({
            "model": "m", "prompt": [[1, 2], [3]], "temperature": 0, "max_tokens": 1,
            "logprobs": 1, "seed": 1234, "echo": true
        })))
        .unwrap();
        assert!(spec.echo && !spec.hide_generated);
        assert_eq!(spec.prompts.len(), 2);
        assert_eq!(spec.params.prompt_logprobs, Some(1));
        assert_eq!(spec.params.top_logprobs, 1);
        assert_eq!(spec.params.max_tokens, Some(1));
        assert_eq!(spec.params.seed, Some(1234));

        let text_only = completion(&completion_request(
            serde_json::json!({"model": "m", "prompt": "x", "echo": true, "logprobs": null}),
        ))
        .unwrap();
        assert!(text_only.echo);
        assert_eq!(text_only.params.prompt_logprobs, None);
        assert!(!text_only.params.logprobs);
    }

    #[test]
    fn max_tokens_zero_needs_echo_and_then_runs_one_hidden_step() {
        let spec = completion(&completion_request(serde_json::json!({
            "model": "m", "prompt": "x", "echo": true, "max_tokens": 0, "logprobs": 0
        })))
        .unwrap();
        assert!(spec.hide_generated);
        assert_eq!(spec.params.max_tokens, Some(1));
        assert_eq!(spec.params.prompt_logprobs, Some(0));
        let refused = completion(&completion_request(
            serde_json::json!({"model": "m", "prompt": "x", "max_tokens": 0}),
        ))
        .unwrap_err();
        assert_eq!(param_of(refused).as_deref(), Some("max_tokens"));
        let too_many = completion(&completion_request(
            serde_json::json!({"model": "m", "prompt": "x", "echo": true, "logprobs": 21}),
        ))
        .unwrap_err();
        assert_eq!(param_of(too_many).as_deref(), Some("logprobs"));
    }

    #[test]
    fn vendor_sampling_fields_are_accepted() {
        // `vllm bench serve` sends these.
        let spec = completion(&completion_request(serde_json::json!({
            "model": "m", "prompt": "x", "ignore_eos": true, "repetition_penalty": 1.1,
            "seed": 7, "logprobs": null, "stream": true,
            "stream_options": {"include_usage": true}
        })))
        .unwrap();
        assert!(spec.params.ignore_eos);
        assert_eq!(spec.params.repetition_penalty, 1.1);
        assert!(spec.delivery.include_usage);
    }
}

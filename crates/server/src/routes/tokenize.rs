//! vLLM's tokenizer routes, at the server root: `POST /tokenize`, `POST /detokenize` and
//! `GET /tokenizer_info`. lm-evaluation-harness' `local-completions` detects them and then
//! needs no Hugging Face tokenizer of its own (evaluation works offline); `vllm bench serve`
//! uses them to re-align prompts. Every model served shares the base's tokenizer.

use axum::extract::State;
use axum::response::Response;
use switchboard_engine::{ChatMessage, TextTokenizer};

use super::{json_response, ApiJson};
use crate::error::ApiError;
use crate::openai::{
    DetokenizeRequest, DetokenizeResponse, TokenizeRequest, TokenizeResponse, TokenizerInfo,
};
use crate::state::{AppState, AUTO_MODEL};
use crate::validate;

pub(super) async fn tokenize(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<TokenizeRequest>,
) -> Result<Response, ApiError> {
    check_model(&state, request.model.as_deref())?;
    let input = TokenizeInput::from_request(&request)?;
    let with_strs = request.return_token_strs.unwrap_or(false);
    let engine = state.engine().clone();
    // Long inputs take a while to tokenize: off the async runtime.
    let (tokens, token_strs) = blocking(move || {
        let tokenizer = engine.tokenizer();
        let tokens = input.tokenize(tokenizer)?;
        let strs = with_strs.then(|| token_strs(tokenizer, &tokens));
        Ok((tokens, strs))
    })
    .await?;
    Ok(json_response(&TokenizeResponse {
        count: tokens.len(),
        max_model_len: state.engine().max_model_len(),
        tokens,
        token_strs,
    }))
}

pub(super) async fn detokenize(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<DetokenizeRequest>,
) -> Result<Response, ApiError> {
    check_model(&state, request.model.as_deref())?;
    let engine = state.engine().clone();
    let ids = token_ids(&request.tokens, engine.tokenizer().vocab_size())?;
    // Special tokens are kept: clients decode ids they encoded and expect the same text back.
    let prompt = blocking(move || Ok(engine.tokenizer().decode(&ids, false)?)).await?;
    Ok(json_response(&DetokenizeResponse { prompt }))
}

pub(super) async fn tokenizer_info(State(state): State<AppState>) -> Response {
    let engine = state.engine();
    let tokenizer = engine.tokenizer();
    json_response(&TokenizerInfo {
        tokenizer_class: tokenizer
            .tokenizer_class()
            .unwrap_or("PreTrainedTokenizerFast")
            .to_string(),
        bos_token: tokenizer.bos_token().map(str::to_string),
        eos_token: eos_token(tokenizer),
        pad_token: tokenizer.pad_token().map(str::to_string),
        chat_template: tokenizer.chat_template_source().map(str::to_string),
        model_max_length: engine.max_model_len(),
        vocab_size: tokenizer.vocab_size(),
    })
}

/// The configured `eos_token`, else the text of the first id that ends generation (GGUF files
/// and bare checkpoints name only ids); clients need one to stop on and to prefix empty contexts.
fn eos_token(tokenizer: &TextTokenizer) -> Option<String> {
    tokenizer.eos_token().map(str::to_string).or_else(|| {
        let id = tokenizer.eos_token_ids().iter().next()?;
        tokenizer.inner().id_to_token(*id)
    })
}

/// What to tokenize.
enum TokenizeInput {
    Text {
        prompt: String,
        add_special_tokens: bool,
    },
    Chat {
        messages: Vec<ChatMessage>,
        add_generation_prompt: bool,
        add_special_tokens: bool,
    },
}

impl TokenizeInput {
    fn from_request(request: &TokenizeRequest) -> Result<Self, ApiError> {
        match (&request.prompt, &request.messages) {
            (Some(prompt), None) => Ok(Self::Text {
                prompt: prompt.clone(),
                add_special_tokens: request.add_special_tokens.unwrap_or(true),
            }),
            (None, Some(messages)) => Ok(Self::Chat {
                messages: validate::messages(messages)?,
                add_generation_prompt: request.add_generation_prompt.unwrap_or(true),
                // The chat template writes its own special tokens (vLLM's default).
                add_special_tokens: request.add_special_tokens.unwrap_or(false),
            }),
            (Some(_), Some(_)) => Err(ApiError::invalid(
                "messages",
                "give either `prompt` or `messages`, not both",
            )),
            (None, None) => Err(ApiError::invalid(
                "prompt",
                "`prompt` (a string) or `messages` is required",
            )),
        }
    }

    fn tokenize(self, tokenizer: &TextTokenizer) -> Result<Vec<u32>, ApiError> {
        let (text, add_special_tokens) = match self {
            Self::Text {
                prompt,
                add_special_tokens,
            } => (prompt, add_special_tokens),
            Self::Chat {
                messages,
                add_generation_prompt,
                add_special_tokens,
            } => (
                tokenizer.apply_chat_template(&messages, add_generation_prompt)?,
                add_special_tokens,
            ),
        };
        tokenizer
            .inner()
            .encode(text.as_str(), add_special_tokens)
            .map(|encoding| encoding.get_ids().to_vec())
            .map_err(|e| ApiError::bad_request(format!("tokenizer: {e}")))
    }
}

/// Each token as text (its bytes, lossily as UTF-8), as logprobs report tokens.
fn token_strs(tokenizer: &TextTokenizer, tokens: &[u32]) -> Vec<String> {
    tokens
        .iter()
        .map(|&id| String::from_utf8_lossy(&tokenizer.token_bytes(id)).into_owned())
        .collect()
}

/// `tokens` as ids of a vocabulary of `vocab_size`, every bad one named.
fn token_ids(tokens: &[i64], vocab_size: usize) -> Result<Vec<u32>, ApiError> {
    tokens
        .iter()
        .map(|&id| {
            u32::try_from(id)
                .ok()
                .filter(|&id| (id as usize) < vocab_size)
                .ok_or_else(|| {
                    ApiError::invalid(
                        "tokens",
                        format!("`{id}` is not a token id (the vocabulary has {vocab_size})"),
                    )
                })
        })
        .collect()
}

/// `model` is optional; when given it must name a served model (they share one tokenizer).
fn check_model(state: &AppState, model: Option<&str>) -> Result<(), ApiError> {
    match model {
        None => Ok(()),
        Some(m) if m == state.config().served_model_name || m == AUTO_MODEL => Ok(()),
        Some(m) if state.engine().registry().contains(m) => Ok(()),
        Some(m) => Err(ApiError::ModelNotFound(m.to_string())),
    }
}

/// Runs tokenizer work on the blocking pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::Internal(format!("tokenizer task failed: {e}")))?
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn token_ids_refuse_negative_and_out_of_vocabulary_ids() {
        assert_eq!(token_ids(&[0, 5, 9], 10).unwrap(), vec![0, 5, 9]);
        for bad in [[-1i64], [10], [i64::MAX]] {
            match token_ids(&bad, 10) {
                Err(ApiError::InvalidRequest { param, .. }) => {
                    assert_eq!(param.as_deref(), Some("tokens"))
                }
                other => panic!("{bad:?}: expected a 400, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_request_gives_a_prompt_or_messages() {
        let request =
            |json: serde_json::Value| -> TokenizeRequest { serde_json::from_value(json).unwrap() };
        let text = TokenizeInput::from_request(&request(serde_json::json!({"prompt": "x"})));
        assert!(matches!(
            text,
            Ok(TokenizeInput::Text {
                add_special_tokens: true,
                ..
            })
        ));
        let chat = TokenizeInput::from_request(&request(
            serde_json::json!({"messages": [{"role": "user", "content": "x"}]}),
        ));
        assert!(matches!(
            chat,
            Ok(TokenizeInput::Chat {
                add_generation_prompt: true,
                add_special_tokens: false,
                ..
            })
        ));
        for bad in [
            serde_json::json!({}),
            serde_json::json!({"prompt": "x", "messages": []}),
            serde_json::json!({"messages": [{"role": "tool", "content": "x"}]}),
        ] {
            assert!(matches!(
                TokenizeInput::from_request(&request(bad)),
                Err(ApiError::InvalidRequest { .. })
            ));
        }
    }
}

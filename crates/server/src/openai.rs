//! OpenAI wire types: what clients send and what we answer, field for field. Requests are
//! deserialized leniently (unknown fields are ignored, as OpenAI-compatible servers do) and then
//! checked in [`crate::validate`]; only validated values reach the engine.

// Field names are OpenAI's, documented in openapi.yaml.
#![allow(missing_docs)]

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `stop`: one string or a list.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum StopField {
    /// One stop string.
    One(String),
    /// Several.
    Many(Vec<String>),
}

/// `stream_options`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StreamOptions {
    /// Send a last chunk with the usage of the whole request.
    #[serde(default)]
    pub include_usage: bool,
}

/// Sampling fields shared by chat and text completions, OpenAI's and vLLM's extensions.
/// Integers are signed so that negative values get a clear error instead of a parse failure.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SamplingFields {
    pub max_tokens: Option<i64>,
    pub max_completion_tokens: Option<i64>,
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub n: Option<i64>,
    pub stop: Option<StopField>,
    pub seed: Option<i64>,
    pub presence_penalty: Option<f32>,
    pub frequency_penalty: Option<f32>,
    pub logit_bias: Option<BTreeMap<String, f32>>,
    pub stream: Option<bool>,
    pub stream_options: Option<StreamOptions>,
    // Extensions (vLLM names).
    pub top_k: Option<i64>,
    pub min_p: Option<f32>,
    pub repetition_penalty: Option<f32>,
    pub ignore_eos: Option<bool>,
    pub stop_token_ids: Option<Vec<i64>>,
    pub skip_special_tokens: Option<bool>,
    /// Retrieval for this request: `true`, `false` or `{"k": .., "domain": ..}`.
    pub rag: Option<Value>,
}

/// A message's `content`: a string or an array of parts.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum MessageContent {
    /// Plain text.
    Text(String),
    /// Content parts; only `{"type": "text", "text": ...}` is supported.
    Parts(Vec<ContentPart>),
}

/// One content part.
#[derive(Debug, Clone, Deserialize)]
pub struct ContentPart {
    /// `text` (other kinds are refused).
    #[serde(rename = "type")]
    pub kind: String,
    /// The text of a `text` part.
    pub text: Option<String>,
}

/// One message of `messages`.
#[derive(Debug, Clone, Deserialize)]
pub struct WireMessage {
    /// `system`, `developer`, `user` or `assistant`.
    pub role: String,
    /// May be null for assistant messages. (`name` is accepted and ignored.)
    pub content: Option<MessageContent>,
}

/// `POST /v1/chat/completions`.
#[derive(Debug, Clone, Deserialize)]
pub struct ChatCompletionRequest {
    pub model: String,
    pub messages: Vec<WireMessage>,
    #[serde(flatten)]
    pub sampling: SamplingFields,
    /// Return log-probabilities of the output tokens.
    pub logprobs: Option<bool>,
    /// With `logprobs`, this many alternatives per position (0–20).
    pub top_logprobs: Option<i64>,
}

/// `prompt` of a text completion.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum PromptField {
    /// One prompt.
    Text(String),
    /// Several prompts, each completed `n` times.
    Texts(Vec<String>),
    /// One prompt as token ids.
    Tokens(Vec<i64>),
    /// Several prompts as token ids.
    TokenLists(Vec<Vec<i64>>),
}

/// `POST /v1/completions`.
#[derive(Debug, Clone, Deserialize)]
pub struct CompletionRequest {
    pub model: String,
    pub prompt: PromptField,
    #[serde(flatten)]
    pub sampling: SamplingFields,
    /// Legacy logprobs: the number of alternatives per position (0–5 at OpenAI, 20 here).
    pub logprobs: Option<i64>,
    /// Put the prompt before the completion: its text, and with `logprobs` its tokens scored
    /// by the model (what lm-evaluation-harness reads for loglikelihood tasks).
    pub echo: Option<bool>,
    /// Not supported (refused unless 1 or equal to `n`).
    pub best_of: Option<i64>,
    /// Not supported (refused when set).
    pub suffix: Option<String>,
}

/// Token counts.
#[derive(Debug, Clone, Copy, Serialize, Default, PartialEq, Eq)]
pub struct WireUsage {
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    pub total_tokens: usize,
}

impl From<switchboard_engine::Usage> for WireUsage {
    fn from(usage: switchboard_engine::Usage) -> Self {
        Self {
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            total_tokens: usage.total_tokens(),
        }
    }
}

/// The `route` extension: which adapter answered and why.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RouteInfo {
    /// The adapter used; `null` for the base model.
    pub adapter: Option<String>,
    /// The adapter's generation at admission.
    pub generation: Option<u64>,
    /// Domain chosen by the router (`model: "auto"` only).
    pub domain: Option<String>,
    /// The router's probability for that domain.
    pub confidence: Option<f32>,
    /// Why the base model answered an `auto` request, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One retrieved passage cited by the answer (the `sources` extension).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Source {
    /// Passage number as cited in the answer (`[1]` is id 1).
    pub id: usize,
    pub title: String,
    pub path: String,
    pub score: f32,
}

/// A token and its log-probability (chat `logprobs.content[]` and `top_logprobs[]`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ChatTokenLogprob {
    pub token: String,
    pub logprob: f32,
    pub bytes: Vec<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_logprobs: Option<Vec<ChatTokenLogprob>>,
}

/// Chat `logprobs`.
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct ChatLogprobs {
    pub content: Vec<ChatTokenLogprob>,
}

/// The assistant's message in a chat response.
#[derive(Debug, Clone, Serialize)]
pub struct AssistantMessage {
    pub role: &'static str,
    pub content: String,
}

/// One choice of a chat completion.
#[derive(Debug, Clone, Serialize)]
pub struct ChatChoice {
    pub index: usize,
    pub message: AssistantMessage,
    pub logprobs: Option<ChatLogprobs>,
    pub finish_reason: Option<&'static str>,
}

/// The body of a non-streamed chat completion.
#[derive(Debug, Clone, Serialize)]
pub struct ChatCompletionResponse {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub model: String,
    pub choices: Vec<ChatChoice>,
    pub usage: WireUsage,
    pub route: RouteInfo,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<Source>>,
}

/// `delta` of a streamed chat chunk.
#[derive(Debug, Clone, Serialize, Default)]
pub struct ChatDelta {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

/// One choice of a streamed chat chunk.
#[derive(Debug, Clone, Serialize)]
pub struct ChatChunkChoice {
    pub index: usize,
    pub delta: ChatDelta,
    pub logprobs: Option<ChatLogprobs>,
    pub finish_reason: Option<&'static str>,
}

/// A `chat.completion.chunk`.
#[derive(Debug, Clone, Serialize)]
pub struct ChatCompletionChunk {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub model: String,
    pub choices: Vec<ChatChunkChoice>,
    /// `null` except in the last chunk when `stream_options.include_usage` is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<WireUsage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<RouteInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<Source>>,
}

/// Legacy completion logprobs. With `echo`, the first prompt token has no logprob: its
/// `token_logprobs` and `top_logprobs` entries are `null`.
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct CompletionLogprobs {
    pub tokens: Vec<String>,
    pub token_logprobs: Vec<Option<f32>>,
    pub top_logprobs: Vec<Option<BTreeMap<String, f32>>>,
    pub text_offset: Vec<usize>,
}

/// One choice of a text completion (response or chunk).
#[derive(Debug, Clone, Serialize)]
pub struct CompletionChoice {
    pub index: usize,
    pub text: String,
    pub logprobs: Option<CompletionLogprobs>,
    pub finish_reason: Option<&'static str>,
}

/// A `text_completion` (the whole response, or one streamed chunk).
#[derive(Debug, Clone, Serialize)]
pub struct CompletionResponse {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub model: String,
    pub choices: Vec<CompletionChoice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<WireUsage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<RouteInfo>,
}

/// An entry of `GET /v1/models`.
#[derive(Debug, Clone, Serialize)]
pub struct ModelCard {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub owned_by: &'static str,
    /// The base checkpoint, or the adapter's directory.
    pub root: String,
    /// The base model's id for adapters and `auto`; `null` for the base.
    pub parent: Option<String>,
    pub max_model_len: usize,
}

/// `GET /v1/models`.
#[derive(Debug, Clone, Serialize)]
pub struct ModelList {
    pub object: &'static str,
    pub data: Vec<ModelCard>,
}

/// `POST /v1/load_lora_adapter` (vLLM's body, plus compare-and-swap).
#[derive(Debug, Clone, Deserialize)]
pub struct LoadAdapterRequest {
    pub lora_name: String,
    pub lora_path: String,
    /// Replace only if the adapter is at this generation (0: only if not loaded).
    pub expected_generation: Option<u64>,
}

/// `POST /v1/unload_lora_adapter`.
#[derive(Debug, Clone, Deserialize)]
pub struct UnloadAdapterRequest {
    pub lora_name: String,
}

/// `POST /tokenize` (vLLM's body): a prompt, or a conversation rendered with the chat template.
#[derive(Debug, Clone, Deserialize)]
pub struct TokenizeRequest {
    /// Accepted for compatibility; every model served shares the base's tokenizer.
    pub model: Option<String>,
    pub prompt: Option<String>,
    pub messages: Option<Vec<WireMessage>>,
    /// Default: true for `prompt`, false for `messages` (the template has its own).
    pub add_special_tokens: Option<bool>,
    /// With `messages`: end with the assistant's turn opening (default true).
    pub add_generation_prompt: Option<bool>,
    /// Also return each token as text.
    pub return_token_strs: Option<bool>,
}

/// The answer of `POST /tokenize`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TokenizeResponse {
    pub count: usize,
    pub max_model_len: usize,
    pub tokens: Vec<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_strs: Option<Vec<String>>,
}

/// `POST /detokenize`.
#[derive(Debug, Clone, Deserialize)]
pub struct DetokenizeRequest {
    /// Accepted for compatibility; every model served shares the base's tokenizer.
    pub model: Option<String>,
    /// Signed, so that a negative id gets a clear error instead of a parse failure.
    pub tokens: Vec<i64>,
}

/// The answer of `POST /detokenize`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DetokenizeResponse {
    pub prompt: String,
}

/// `GET /tokenizer_info`: what a client needs to tokenize as the server does (vLLM's shape).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TokenizerInfo {
    pub tokenizer_class: String,
    pub bos_token: Option<String>,
    pub eos_token: Option<String>,
    pub pad_token: Option<String>,
    pub chat_template: Option<String>,
    pub model_max_length: usize,
    pub vocab_size: usize,
}

//! What callers submit to the engine and what comes back: requests, streamed events and the
//! stream itself (async for tokio callers, blocking for threads).

use std::pin::Pin;
use std::task::{Context, Poll};

use serde::Serialize;
use tokio::sync::mpsc;

use crate::chat_template::ChatMessage;
use crate::error::{EngineError, Result};
use crate::params::SamplingParams;
use crate::sampler::TokenLogprob;

/// The prompt of a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Prompt {
    /// Raw text, tokenized as is (completions API).
    Text(String),
    /// Token ids, used as is.
    Tokens(Vec<u32>),
    /// A conversation, rendered with the model's chat template and a generation prompt.
    Chat(Vec<ChatMessage>),
}

/// One generation request.
#[derive(Debug, Clone)]
pub struct GenerateRequest {
    /// What to continue.
    pub prompt: Prompt,
    /// The LoRA adapter to apply, by registered name; `None` for the base model.
    pub adapter: Option<String>,
    /// Sampling and stopping.
    pub params: SamplingParams,
}

impl GenerateRequest {
    /// A request for `prompt` on `adapter` (or the base) with `params`.
    pub fn new(prompt: Prompt, adapter: Option<&str>, params: SamplingParams) -> Self {
        Self {
            prompt,
            adapter: adapter.map(str::to_string),
            params,
        }
    }
}

/// Why a choice ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// An EOS token, a stop token or a stop string.
    Stop,
    /// `max_tokens` or the end of the context window.
    Length,
}

impl FinishReason {
    /// The OpenAI spelling (`"stop"`, `"length"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::Length => "length",
        }
    }
}

/// What ended a choice with [`FinishReason::Stop`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum StopMatch {
    /// An EOS token or one of `stop_token_ids`.
    Token(u32),
    /// One of the `stop` strings (not part of the output).
    String(String),
}

/// One generated token, with its log-probabilities when the request asked for them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GeneratedToken {
    /// Token id.
    pub id: u32,
    /// Log-probability under the model (raw logits), when `logprobs` was asked.
    pub logprob: Option<f32>,
    /// The most likely alternatives, best first, when `top_logprobs > 0`.
    pub top_logprobs: Vec<TokenLogprob>,
}

/// One prompt token scored by the model, when the request asked for `prompt_logprobs`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PromptToken {
    /// Token id.
    pub id: u32,
    /// Log-probability of this token given the tokens before it (raw logits, as for generated
    /// tokens); `None` for the first prompt token, which nothing predicts.
    pub logprob: Option<f32>,
    /// The most likely tokens at this position, best first (`prompt_logprobs` of them; empty
    /// for the first prompt token).
    pub top_logprobs: Vec<TokenLogprob>,
}

/// Token counts of a finished request. The prompt is counted once whatever `n` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Usage {
    /// Tokens of the prompt.
    pub prompt_tokens: usize,
    /// Tokens generated over all choices (EOS and stop tokens included).
    pub completion_tokens: usize,
}

impl Usage {
    /// Prompt plus completion tokens.
    pub fn total_tokens(&self) -> usize {
        self.prompt_tokens + self.completion_tokens
    }
}

/// What the engine streams back for one request.
#[derive(Debug, Clone, PartialEq)]
pub enum GenerateEvent {
    /// The scored prompt, one entry per prompt token, when the request asked for
    /// `prompt_logprobs`. Sent once, before any `Delta`; the same for every choice (the prompt
    /// is scored on choice 0 only).
    PromptLogprobs {
        /// Every prompt token in order.
        tokens: Vec<PromptToken>,
    },
    /// New output of one choice: text safe to show now (may be empty while a multi-byte character
    /// or a possible stop string is held back) and the tokens sampled since the last event.
    Delta {
        /// Choice index, `0..n`.
        choice: usize,
        /// New text.
        text: String,
        /// New tokens; an ending EOS or stop token is included (with no text), as vLLM reports it.
        tokens: Vec<GeneratedToken>,
    },
    /// A choice ended; no more deltas for it.
    Finished {
        /// Choice index.
        choice: usize,
        /// Why.
        reason: FinishReason,
        /// What matched, for [`FinishReason::Stop`].
        stop: Option<StopMatch>,
    },
    /// Every choice ended: the last event of a successful request.
    Done {
        /// Token counts.
        usage: Usage,
    },
    /// The request failed inside the engine; the last event.
    Error {
        /// What went wrong.
        message: String,
    },
}

/// The adapter version a request runs with, fixed when it is submitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AdapterRef {
    /// Registered name.
    pub name: String,
    /// Generation of that name at submission.
    pub generation: u64,
}

/// The events of one submitted request. Dropping it cancels the request: the engine notices at
/// its next step and frees the request's sequences and KV cache.
#[derive(Debug)]
pub struct GenerationStream {
    /// Engine-wide request id.
    pub id: u64,
    /// Tokens in the prompt.
    pub prompt_tokens: usize,
    /// The prompt as the model sees it (a text or chat prompt after tokenization), for
    /// callers that echo it.
    pub prompt_token_ids: Vec<u32>,
    /// The adapter the request runs with, `None` for the base model.
    pub adapter: Option<AdapterRef>,
    pub(crate) events: mpsc::UnboundedReceiver<GenerateEvent>,
}

/// One choice of a collected request.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChoiceOutput {
    /// Full text (stop strings excluded).
    pub text: String,
    /// Generated tokens in order; an ending EOS or stop token is the last (it adds no text).
    pub tokens: Vec<GeneratedToken>,
    /// Why it ended.
    pub finish_reason: Option<FinishReason>,
    /// What matched, for a stop.
    pub stop: Option<StopMatch>,
}

impl ChoiceOutput {
    /// The generated token ids.
    pub fn token_ids(&self) -> Vec<u32> {
        self.tokens.iter().map(|t| t.id).collect()
    }
}

/// A whole request's output, gathered from its stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// One entry per choice, in choice order.
    pub choices: Vec<ChoiceOutput>,
    /// Token counts.
    pub usage: Usage,
    /// The prompt's token ids.
    pub prompt_token_ids: Vec<u32>,
    /// The scored prompt, when the request asked for `prompt_logprobs`.
    pub prompt_logprobs: Option<Vec<PromptToken>>,
}

impl GenerationStream {
    /// The next event; `None` after the last one.
    pub async fn next(&mut self) -> Option<GenerateEvent> {
        self.events.recv().await
    }

    /// The next event, blocking the current thread (never call it on a tokio runtime thread).
    pub fn blocking_next(&mut self) -> Option<GenerateEvent> {
        self.events.blocking_recv()
    }

    /// The next event if one is ready, without waiting.
    pub fn try_next(&mut self) -> Option<GenerateEvent> {
        self.events.try_recv().ok()
    }

    /// Waits for the whole output.
    pub async fn collect(mut self) -> Result<Completion> {
        let mut acc = Accumulator::new(std::mem::take(&mut self.prompt_token_ids));
        while let Some(event) = self.next().await {
            if let Some(done) = acc.add(event)? {
                return Ok(done);
            }
        }
        Err(EngineError::Shutdown)
    }

    /// Waits for the whole output, blocking the current thread.
    pub fn collect_blocking(mut self) -> Result<Completion> {
        let mut acc = Accumulator::new(std::mem::take(&mut self.prompt_token_ids));
        while let Some(event) = self.blocking_next() {
            if let Some(done) = acc.add(event)? {
                return Ok(done);
            }
        }
        Err(EngineError::Shutdown)
    }
}

struct Accumulator {
    choices: Vec<ChoiceOutput>,
    prompt_token_ids: Vec<u32>,
    prompt_logprobs: Option<Vec<PromptToken>>,
}

impl Accumulator {
    fn new(prompt_token_ids: Vec<u32>) -> Self {
        Self {
            choices: Vec::new(),
            prompt_token_ids,
            prompt_logprobs: None,
        }
    }

    fn choice(&mut self, index: usize) -> &mut ChoiceOutput {
        if self.choices.len() <= index {
            self.choices.resize_with(index + 1, ChoiceOutput::default);
        }
        &mut self.choices[index]
    }

    fn add(&mut self, event: GenerateEvent) -> Result<Option<Completion>> {
        match event {
            GenerateEvent::PromptLogprobs { tokens } => self.prompt_logprobs = Some(tokens),
            GenerateEvent::Delta {
                choice,
                text,
                tokens,
            } => {
                let out = self.choice(choice);
                out.text.push_str(&text);
                out.tokens.extend(tokens);
            }
            GenerateEvent::Finished {
                choice,
                reason,
                stop,
            } => {
                let out = self.choice(choice);
                out.finish_reason = Some(reason);
                out.stop = stop;
            }
            GenerateEvent::Done { usage } => {
                return Ok(Some(Completion {
                    choices: std::mem::take(&mut self.choices),
                    usage,
                    prompt_token_ids: std::mem::take(&mut self.prompt_token_ids),
                    prompt_logprobs: self.prompt_logprobs.take(),
                }))
            }
            GenerateEvent::Error { message } => return Err(EngineError::Generation(message)),
        }
        Ok(None)
    }
}

impl futures_core::Stream for GenerationStream {
    type Item = GenerateEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.events.poll_recv(cx)
    }
}

//! # switchboard-engine
//!
//! The generation engine: requests in, streams of tokens out, for one base model and any number
//! of LoRA adapters batched together.
//!
//! * [`Engine`]: the handle. [`Engine::submit`] validates and tokenizes a [`GenerateRequest`] and
//!   returns a [`GenerationStream`] of [`GenerateEvent`]s; the continuous-batching step loop runs
//!   on the engine's own thread, never on the caller's (tokio) threads.
//! * [`AdapterRegistry`]: adapters by name, hot loaded, replaced (compare-and-swap on a
//!   generation number), unloaded and LRU-evicted while traffic runs.
//! * [`TextTokenizer`], [`ChatTemplate`], [`IncrementalDecoder`]: the checkpoint's tokenizer and
//!   chat template (rendered like transformers, ChatML when there is none), and streaming text
//!   that never splits a UTF-8 character.
//! * [`SamplingParams`]: OpenAI's sampling and stopping parameters plus vLLM's extensions,
//!   `prompt_logprobs` included: the prompt scored through the same batched pass (and adapter)
//!   that generates, for evaluation harnesses ([`GenerateEvent::PromptLogprobs`]).
#![warn(missing_docs)]

mod chat_template;
mod detokenizer;
mod engine;
mod error;
mod params;
mod registry;
mod request;
mod sampler;
mod scheduler;
mod sequence;
mod stop;
mod tokenizer;

pub use chat_template::{ChatMessage, ChatTemplate};
pub use detokenizer::IncrementalDecoder;
pub use engine::{Engine, EngineConfig, EngineStats};
pub use error::{EngineError, Result};
pub use params::{SamplingParams, MAX_N, MAX_TOP_LOGPROBS};
pub use registry::{
    ActiveAdapter, AdapterDirPolicy, AdapterInfo, AdapterRegistry, AdapterStats, RegistryConfig,
};
pub use request::{
    AdapterRef, ChoiceOutput, Completion, FinishReason, GenerateEvent, GenerateRequest,
    GeneratedToken, GenerationStream, Prompt, PromptToken, StopMatch, Usage,
};
pub use sampler::TokenLogprob;
pub use tokenizer::TextTokenizer;

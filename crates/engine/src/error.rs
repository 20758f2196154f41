//! The one error type of the engine crate.

use std::path::PathBuf;

use switchboard_model::ModelError;

/// What can go wrong in the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A file of the model directory could not be read or parsed.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Tokenizing or detokenizing failed.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// The chat template failed to compile or to render a conversation.
    #[error("chat template: {0}")]
    Template(String),
    /// A request field has an invalid value.
    #[error("invalid `{param}`: {message}")]
    InvalidParam {
        /// The field, named as in the OpenAI API (`temperature`, `top_logprobs`...).
        param: &'static str,
        /// Why the value is refused.
        message: String,
    },
    /// The prompt plus the requested completion does not fit the context window.
    #[error(
        "this model's maximum context length is {max_model_len} tokens; the request has \
         {prompt_tokens} prompt tokens and asks for {max_tokens} completion tokens"
    )]
    ContextLengthExceeded {
        /// Tokens in the prompt.
        prompt_tokens: usize,
        /// Completion tokens asked for (0 when the prompt alone is too long).
        max_tokens: usize,
        /// The engine's context window.
        max_model_len: usize,
    },
    /// The request can never be scheduled: its KV-cache reservation exceeds the whole budget.
    #[error(
        "the request needs {needed_tokens} tokens of KV cache but the engine's budget is \
         {budget_tokens} tokens; lower max_tokens"
    )]
    KvBudgetExceeded {
        /// Tokens the request would reserve (prompt + completion, for every choice).
        needed_tokens: usize,
        /// The engine's whole KV-cache budget in tokens.
        budget_tokens: usize,
    },
    /// The waiting queue is full; retry later.
    #[error("the engine is overloaded: {waiting} requests are already waiting")]
    Overloaded {
        /// Requests waiting when this one was refused.
        waiting: usize,
    },
    /// No adapter with this name is registered.
    #[error("adapter `{0}` is not loaded")]
    AdapterNotFound(String),
    /// An adapter name that cannot be used.
    #[error("invalid adapter name `{name}`: {reason}")]
    InvalidAdapterName {
        /// The name given.
        name: String,
        /// Why it is refused.
        reason: String,
    },
    /// A compare-and-swap replace found another generation than the one expected.
    #[error("adapter `{name}` is at generation {actual}, not the expected {expected}")]
    GenerationMismatch {
        /// The adapter name.
        name: String,
        /// The generation the caller expected.
        expected: u64,
        /// The generation registered now (0 when the name is not registered).
        actual: u64,
    },
    /// Loading an adapter (or the model) failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Generation failed inside the engine (reported to the request's stream).
    #[error("generation failed: {0}")]
    Generation(String),
    /// The engine thread has stopped (shut down, or a fatal error).
    #[error("the engine has shut down")]
    Shutdown,
}

impl EngineError {
    pub(crate) fn invalid(param: &'static str, message: impl Into<String>) -> Self {
        Self::InvalidParam {
            param,
            message: message.into(),
        }
    }
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, EngineError>;

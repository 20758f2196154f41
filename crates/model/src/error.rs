//! The one error type of this crate.

use std::path::PathBuf;

/// Everything that can go wrong while loading or running a model or an adapter.
///
/// Variants name the file and the problem so that a CLI or an HTTP layer can show them as they are.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A JSON file (config, index, adapter config) could not be parsed.
    #[error("{path}: invalid JSON: {source}")]
    Json {
        /// The JSON file.
        path: PathBuf,
        /// The parser's message.
        source: serde_json::Error,
    },
    /// A safetensors file is corrupt, truncated or not safetensors at all.
    #[error("{path}: not a valid safetensors file: {reason}")]
    Safetensors {
        /// The safetensors file.
        path: PathBuf,
        /// What the safetensors reader reported.
        reason: String,
    },
    /// The weights do not match `config.json` (a tensor is missing or has the wrong shape).
    #[error("{path}: cannot load weights: {reason}")]
    InvalidWeights {
        /// The checkpoint directory.
        path: PathBuf,
        /// Which tensor and what is wrong with it.
        reason: String,
    },
    /// The checkpoint directory lacks weights or a needed file.
    #[error("{path}: {reason}")]
    MissingFile {
        /// The missing file, or the directory that should contain it.
        path: PathBuf,
        /// What was expected.
        reason: String,
    },
    /// `config.json` describes something this runtime does not run.
    #[error("{path}: unsupported model config: {reason}")]
    UnsupportedConfig {
        /// The config file.
        path: PathBuf,
        /// What is unsupported and why.
        reason: String,
    },
    /// A PEFT adapter is malformed, does not fit the base model, or uses a feature we refuse.
    #[error("adapter {path}: {reason}")]
    InvalidAdapter {
        /// The adapter directory.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A GGUF file is corrupt or truncated, or holds something this runtime does not run
    /// (an unknown architecture, tensor type or tokenizer).
    #[error("{path}: {field}: {reason}")]
    Gguf {
        /// The GGUF file.
        path: PathBuf,
        /// The metadata key or tensor name at fault (`general.architecture`, `blk.0.attn_q.weight`).
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The inputs of a forward call are inconsistent (empty sequence, position past the context...).
    #[error("invalid forward input: {0}")]
    InvalidInput(String),
    /// An error raised by candle while computing or loading a tensor.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, ModelError>;

impl ModelError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn gguf(
        path: impl Into<PathBuf>,
        field: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Self::Gguf {
            path: path.into(),
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn adapter(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Self::InvalidAdapter {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

//! The one error type of the engine crate.

use std::path::PathBuf;

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
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, EngineError>;

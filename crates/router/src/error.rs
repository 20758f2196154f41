//! The one error type of the router crate.

use std::path::PathBuf;

/// What can go wrong in the router.
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// A model file is corrupt, truncated, or was written for another format or label set.
    #[error("router model {path}: {reason}")]
    ModelFile {
        /// The file (or a description of where the bytes came from).
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A line of a JSONL examples file is not a valid example.
    #[error("{path}:{line}: {reason}")]
    Data {
        /// The examples file.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// What is wrong with the line.
        reason: String,
    },
    /// A domain name that is not one of the known labels.
    #[error("unknown domain `{0}` (expected biology, history, security, teaching or general)")]
    UnknownDomain(String),
    /// Training options or training data that cannot produce a model.
    #[error("cannot train: {0}")]
    Training(String),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, RouterError>;

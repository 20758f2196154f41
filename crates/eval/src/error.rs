//! Errors of the evaluation crate.

use std::path::PathBuf;

/// What can go wrong while evaluating or benchmarking.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line of a JSONL file is not a valid item.
    #[error("{path}:{line}: {reason}")]
    BadLine {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A file is valid line by line but unusable as a whole (empty, duplicate ids, ...).
    #[error("{path}: {reason}")]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A Pushgateway refused or could not be reached.
    #[error("pushing to {url}: {reason}")]
    Push {
        /// The URL pushed to.
        url: String,
        /// Why it failed.
        reason: String,
    },
}

/// Shorthand for results of this crate.
pub type Result<T, E = EvalError> = std::result::Result<T, E>;

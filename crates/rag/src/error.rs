//! The one error type of the retrieval crate.

use std::path::PathBuf;

/// What can go wrong while loading, indexing, searching or evaluating the knowledge base.
#[derive(Debug, thiserror::Error)]
pub enum RagError {
    /// A file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying failure.
        #[source]
        source: std::io::Error,
    },
    /// A knowledge-base document has no usable front matter.
    #[error("{path}: invalid front matter: {reason}")]
    FrontMatter {
        /// The document.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A knowledge-base document names no domain, or one this crate does not know.
    #[error("{path}: unknown domain `{domain}` (expected one of {expected})")]
    UnknownDomain {
        /// The document.
        path: PathBuf,
        /// The domain as written (empty when missing).
        domain: String,
        /// The accepted domains, comma separated.
        expected: String,
    },
    /// A search asked to filter by a domain this crate does not know.
    #[error("unknown domain filter `{0}`")]
    InvalidDomainFilter(String),
    /// A prompt template lacks the `{passages}` placeholder.
    #[error("prompt template has no `{{passages}}` placeholder")]
    InvalidTemplate,
    /// A line of a retrieval evaluation set is not a valid question.
    #[error("{path}:{line}: {reason}")]
    EvalSet {
        /// The `.jsonl` file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with the line.
        reason: String,
    },
    /// The search engine failed (corrupt index, full disk...).
    #[error("index: {0}")]
    Index(#[from] tantivy::TantivyError),
}

/// Result alias used across the crate.
pub type Result<T> = std::result::Result<T, RagError>;

impl RagError {
    /// Wraps an I/O error with the path it happened on.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

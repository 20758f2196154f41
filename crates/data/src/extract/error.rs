//! What can go wrong while extracting. Errors about one input file end up in the report as that
//! file's reason for being skipped; the rest stop the run.

use std::path::PathBuf;

/// An extraction error. Every variant about a file names it.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// A file or directory could not be read (or the output written).
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The input path exists but is not a directory.
    #[error("{}: not a directory", path.display())]
    NotADirectory {
        /// The path given.
        path: PathBuf,
    },
    /// The file holds binary data (NUL bytes) where text was expected.
    #[error("{}: binary data, not text", path.display())]
    Binary {
        /// The file.
        path: PathBuf,
    },
    /// The bytes are not valid in the encoding they were detected (or marked) as.
    #[error("{}: not valid {encoding} text", path.display())]
    Undecodable {
        /// The file.
        path: PathBuf,
        /// The encoding that was tried.
        encoding: &'static str,
    },
    /// The PDF is encrypted with a password other than the empty one.
    #[error("{}: encrypted PDF (needs a password)", path.display())]
    Encrypted {
        /// The file.
        path: PathBuf,
    },
    /// The PDF could not be parsed or its text not extracted.
    #[error("{}: unreadable PDF: {reason}", path.display())]
    Pdf {
        /// The file.
        path: PathBuf,
        /// The PDF library's message.
        reason: String,
    },
    /// The PDF library panicked on this file; the panic was contained.
    #[error("{}: the PDF parser failed on this file: {message}", path.display())]
    PdfPanic {
        /// The file.
        path: PathBuf,
        /// The panic message, where it was a string.
        message: String,
    },
    /// A Jupyter notebook that is not valid JSON or not in nbformat 4 shape.
    #[error("{}: not a Jupyter notebook: {reason}", path.display())]
    Notebook {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A rules file could not be parsed.
    #[error("{}: bad rules file: {reason}", path.display())]
    RulesFile {
        /// The rules file.
        path: PathBuf,
        /// The parser's message.
        reason: String,
    },
    /// A clean-up rule's pattern is not a valid regular expression.
    #[error("{}rule {rule} ({pattern:?}): {source}", file_prefix(.path))]
    BadPattern {
        /// The rules file it came from, if any.
        path: Option<PathBuf>,
        /// 1-based position of the rule.
        rule: usize,
        /// The pattern.
        pattern: String,
        /// The regex compiler's error.
        #[source]
        source: Box<regex::Error>,
    },
    /// Chunk size and overlap do not make sense together.
    #[error("chunk size {chunk_chars} must be at least 1 and larger than the overlap {overlap}")]
    InvalidChunking {
        /// Maximum characters per chunk.
        chunk_chars: usize,
        /// Characters of overlap.
        overlap: usize,
    },
    /// The output file could not be written.
    #[error(transparent)]
    Write(#[from] crate::jsonl::JsonlError),
}

fn file_prefix(path: &Option<PathBuf>) -> String {
    path.as_ref()
        .map(|p| format!("{}: ", p.display()))
        .unwrap_or_default()
}

/// Results of this module.
pub type Result<T, E = ExtractError> = std::result::Result<T, E>;

//! What can go wrong in `synth`.

use std::path::PathBuf;

use crate::jsonl::JsonlError;

/// Why a synthesis run stopped. A chunk the teacher could not be made to answer well is not an
/// error: it goes to the rejects file and the run goes on.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// A chunks, output or rejects file could not be read or written, or holds a line that is
    /// not a JSON object.
    #[error(transparent)]
    Jsonl(#[from] JsonlError),
    /// A chunk line lacks what synthesis needs (`id`, `text`) or repeats an id.
    #[error("{}:{line}: {reason}", path.display())]
    BadChunk {
        /// The chunks file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A prompt template file could not be read.
    #[error("template {}: {source}", path.display())]
    TemplateFile {
        /// The template file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A prompt template does not parse or does not render (an unknown placeholder).
    #[error("template {name}: {reason}")]
    Template {
        /// The template's file, or `built-in <format>`.
        name: String,
        /// The template engine's message.
        reason: String,
    },
    /// The teacher URL is not an `http(s)://` URL, or no HTTP client could be built for it.
    #[error("teacher URL {url:?}: {reason}")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The teacher failed in a way no retry or rejection fixes (a bad key, an unknown model,
    /// the server still down after every retry): the run stops, and a rerun resumes it.
    #[error("teacher {url}: {reason}")]
    Teacher {
        /// The endpoint.
        url: String,
        /// The HTTP status, when the server answered.
        status: Option<u16>,
        /// What the server or the connection said.
        reason: String,
    },
    /// A setting is out of range (`--concurrency 0`, a negative price...).
    #[error("invalid setting: {0}")]
    Config(String),
}

/// `Result` with a [`SynthError`].
pub type Result<T> = std::result::Result<T, SynthError>;

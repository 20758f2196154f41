//! Course material → cleaned, de-duplicated text chunks.
//!
//! [`extract_dir`] walks a folder (recursively, sorted, hidden files left out) and reads
//! Markdown (`.md`, `.markdown`), plain text (`.txt`, `.text`; any encoding, detected and
//! reported), PDF (`.pdf`, text per page) and Jupyter notebooks (`.ipynb`; markdown and code
//! cells, outputs dropped). Each file's text is cleaned by regex rules ([`CleanRule`]: built-in
//! defaults, then the caller's, in order), cut into chunks of at most
//! [`ExtractConfig::chunk_chars`] characters at paragraph, sentence or word boundaries, and
//! chunks whose text is the same up to case and whitespace as an earlier one are dropped.
//!
//! A file that cannot be read, decoded or parsed (or an encrypted PDF) does not stop the run:
//! its [`FileOutcome::Failed`] names it and says why. Same input, same output, byte for byte.

mod chunk;
mod clean;
mod encoding;
mod error;
mod file;
mod markdown;
mod notebook;
mod pdf;
mod walk;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Serialize;

pub use clean::{default_rules, load_rules, CleanRule};
pub use error::{ExtractError, Result};

/// How to extract.
#[derive(Debug, Clone)]
pub struct ExtractConfig {
    /// Most characters (Unicode scalar values) in one chunk; at least 1.
    pub chunk_chars: usize,
    /// Characters a chunk may repeat from the end of the one before (whole words); less than
    /// `chunk_chars`.
    pub overlap: usize,
    /// Apply [`default_rules`] before `rules`.
    pub default_rules: bool,
    /// Extra clean-up rules, applied in order after the built-in ones.
    pub rules: Vec<CleanRule>,
}

impl Default for ExtractConfig {
    fn default() -> Self {
        Self {
            chunk_chars: 1500,
            overlap: 0,
            default_rules: true,
            rules: Vec::new(),
        }
    }
}

/// The kinds of file read, by extension (case-insensitive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    /// `.md`, `.markdown`
    Markdown,
    /// `.txt`, `.text`
    Text,
    /// `.pdf`
    Pdf,
    /// `.ipynb`
    Notebook,
}

impl FileKind {
    /// The kind of `path` by its extension; `None` for files that are not read.
    pub fn of(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "md" | "markdown" => Some(Self::Markdown),
            "txt" | "text" => Some(Self::Text),
            "pdf" => Some(Self::Pdf),
            "ipynb" => Some(Self::Notebook),
            _ => None,
        }
    }

    /// The name used in chunks and summaries: `markdown`, `text`, `pdf`, `notebook`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Markdown => "markdown",
            Self::Text => "text",
            Self::Pdf => "pdf",
            Self::Notebook => "notebook",
        }
    }
}

impl std::fmt::Display for FileKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One chunk of text, one line of the output JSONL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Chunk {
    /// Hex digest of the normalised text: stable across runs and unique in a report (equal
    /// texts are de-duplicated).
    pub id: String,
    /// The file, relative to the input folder, with `/` separators.
    pub source: String,
    /// The kind of file.
    pub kind: FileKind,
    /// PDF page (from 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page: Option<u32>,
    /// Enclosing Markdown headings, outermost first, joined by ` > `.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heading: Option<String>,
    /// Position among the file's chunks (from 0, counted before de-duplication).
    pub chunk: usize,
    /// Offset of the first character in the file's cleaned text (its sections joined by a
    /// blank line), in characters.
    pub start: usize,
    /// Offset one past the last character, in characters.
    pub end: usize,
    /// The text.
    pub text: String,
}

/// What happened to one file.
#[derive(Debug)]
pub enum FileOutcome {
    /// Read and chunked.
    Extracted {
        /// The kind of file.
        kind: FileKind,
        /// The text encoding detected (`UTF-8`, `UTF-16LE`, `windows-1252`, …); `None` for
        /// PDFs, whose text is not stored in a file-wide encoding.
        encoding: Option<&'static str>,
        /// Pages, for PDFs.
        pages: Option<u32>,
        /// Chunks kept.
        chunks: usize,
        /// Chunks dropped as duplicates of earlier ones.
        duplicates: usize,
    },
    /// Skipped because it could not be read, decoded or parsed.
    Failed {
        /// The kind of file (or `None` for a folder that could not be listed).
        kind: Option<FileKind>,
        /// Why; names the file.
        error: ExtractError,
    },
    /// Skipped because its extension is not one that is read.
    Unsupported,
}

/// One file of the input folder and its outcome.
#[derive(Debug)]
pub struct FileReport {
    /// Relative to the input folder.
    pub path: PathBuf,
    /// What happened.
    pub outcome: FileOutcome,
}

/// The result of [`extract_dir`].
#[derive(Debug, Default)]
pub struct ExtractReport {
    /// The kept chunks, files in sorted order, each file's chunks in order.
    pub chunks: Vec<Chunk>,
    /// Every file found, in sorted order.
    pub files: Vec<FileReport>,
    /// Chunks dropped because an earlier chunk had the same text up to case and whitespace.
    pub duplicates: usize,
}

impl ExtractReport {
    /// The chunks as JSONL, one object per line.
    pub fn to_jsonl(&self) -> String {
        let mut out = String::new();
        for chunk in &self.chunks {
            // A struct of strings and numbers always serialises.
            if let Ok(line) = serde_json::to_string(chunk) {
                out.push_str(&line);
                out.push('\n');
            }
        }
        out
    }

    /// Writes [`Self::to_jsonl`] to `path` atomically.
    pub fn write_jsonl(&self, path: &Path) -> Result<()> {
        crate::jsonl::write_atomic(path, self.to_jsonl().as_bytes())?;
        Ok(())
    }
}

/// Where a run is, for progress display: `path` is about to be read.
#[derive(Debug, Clone, Copy)]
pub struct Progress<'a> {
    /// Files handled so far.
    pub done: usize,
    /// Files in all.
    pub total: usize,
    /// The file about to be read, relative to the input folder.
    pub path: &'a Path,
}

/// A piece of a document with its position: a PDF page or the text under a Markdown heading.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Section {
    text: String,
    page: Option<u32>,
    heading: Option<String>,
}

/// Extracts every file under `dir` (see the [module docs](self)). `progress` is called before
/// each file and once at the end (`done == total`). Errors only for a bad configuration or an
/// input folder that cannot be listed; per-file problems are in the report.
pub fn extract_dir(
    dir: &Path,
    config: &ExtractConfig,
    mut progress: impl FnMut(Progress<'_>),
) -> Result<ExtractReport> {
    if config.chunk_chars == 0 || config.overlap >= config.chunk_chars {
        return Err(ExtractError::InvalidChunking {
            chunk_chars: config.chunk_chars,
            overlap: config.overlap,
        });
    }
    let cleaner = clean::Cleaner::new(config.default_rules, &config.rules)?;
    let listing = walk::walk(dir)?;
    let mut report = ExtractReport::default();
    for (path, error) in listing.unreadable {
        tracing::debug!("{error}");
        report.files.push(FileReport {
            path,
            outcome: FileOutcome::Failed { kind: None, error },
        });
    }
    let mut seen = HashSet::new();
    let total = listing.files.len();
    for (done, relative) in listing.files.into_iter().enumerate() {
        progress(Progress {
            done,
            total,
            path: &relative,
        });
        let outcome = match FileKind::of(&relative) {
            None => FileOutcome::Unsupported,
            Some(kind) => {
                let settings = file::Settings {
                    cleaner: &cleaner,
                    chunk_chars: config.chunk_chars,
                    overlap: config.overlap,
                };
                match file::extract(dir, &relative, kind, &settings) {
                    Ok(extracted) => {
                        let before = report.chunks.len();
                        for (key, chunk) in extracted.chunks {
                            if seen.insert(key) {
                                report.chunks.push(chunk);
                            }
                        }
                        let kept = report.chunks.len() - before;
                        let duplicates = extracted.total - kept;
                        report.duplicates += duplicates;
                        FileOutcome::Extracted {
                            kind,
                            encoding: extracted.encoding,
                            pages: extracted.pages,
                            chunks: kept,
                            duplicates,
                        }
                    }
                    Err(error) => {
                        tracing::debug!("skipped: {error}");
                        FileOutcome::Failed {
                            kind: Some(kind),
                            error,
                        }
                    }
                }
            }
        };
        report.files.push(FileReport {
            path: relative,
            outcome,
        });
    }
    progress(Progress {
        done: total,
        total,
        path: Path::new(""),
    });
    report.files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(report)
}

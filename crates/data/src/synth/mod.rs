//! Synthesis: each chunk of course material → question–answer records written by a teacher
//! model behind any OpenAI-compatible endpoint.
//!
//! * Prompts are minijinja templates ([`PromptTemplate`]; a built-in one per format).
//! * Replies are read as JSON, or repaired ([`repair::parse_teacher_reply`]: code fences and
//!   prose stripped, trailing commas fixed, `Question: ... Answer: ...` text reshaped), and
//!   every record is checked with the trainer's own reader. A reply that yields nothing is
//!   asked again (`max_attempts`), then the chunk goes to the rejects file with the reason and
//!   the raw reply.
//! * HTTP 408/429/5xx and connection errors are retried after `Retry-After` or an exponential,
//!   jittered backoff ([`BackoffPolicy`]); a bad key or model stops the run.
//! * Runs resume ([`resume`]): chunks in the output or rejects file are skipped. Records carry
//!   `chunk_id` and `chunk_records`; a chunk's records are written together, each line synced,
//!   so an interrupted run loses and duplicates nothing.
//!
//! ```no_run
//! # async fn demo() -> Result<(), switchboard_data::synth::SynthError> {
//! use switchboard_data::synth::{read_chunks, synthesize, BackoffPolicy, OpenAiTeacher, SynthConfig};
//! let chunks = read_chunks("chunks.jsonl".as_ref())?;
//! let teacher = OpenAiTeacher::new("http://127.0.0.1:8080", "smollm2-135m-instruct", None,
//!     std::time::Duration::from_secs(300), BackoffPolicy::default())?;
//! let config = SynthConfig::new("qa.jsonl");
//! let report = synthesize(&chunks, &config, &teacher, &(), std::future::pending()).await?;
//! println!("{} records", report.records_written);
//! # Ok(()) }
//! ```

mod backoff;
mod chunks;
mod error;
mod labelled;
mod prompt;
pub mod repair;
pub mod resume;
mod run;
mod schema;
mod teacher;

use std::path::{Path, PathBuf};

pub use backoff::{parse_retry_after, BackoffPolicy};
pub use chunks::{read_chunks, Chunk};
pub use error::{Result, SynthError};
pub use prompt::{default_template, PromptTemplate, PromptVars};
pub use run::synthesize;
pub use schema::SynthFormat;
pub use teacher::{
    install_tls_provider, OpenAiTeacher, Teacher, TeacherError, TeacherReply, TeacherRequest, Usage,
};

/// What a run writes and how it asks.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthConfig {
    /// The records file (JSONL, appended to).
    pub out: PathBuf,
    /// The rejects file [default: `<out>.rejects.jsonl`].
    pub rejects: Option<PathBuf>,
    /// The records' format.
    pub format: SynthFormat,
    /// Records wanted per chunk (more in a reply are dropped; fewer are kept).
    pub pairs_per_chunk: usize,
    /// A prompt template file instead of the format's built-in one.
    pub template: Option<PathBuf>,
    /// Stamped on every record as `domain` (else the chunk's own `domain`, if any).
    pub domain: Option<String>,
    /// Sampling temperature of the first attempt.
    pub temperature: f32,
    /// The least temperature of later attempts (a greedy retry repeats the same reply).
    pub retry_temperature: f32,
    /// Most tokens per reply.
    pub max_tokens: u32,
    /// Sampling seed (attempt `k` uses `seed + k - 1`).
    pub seed: Option<u64>,
    /// Replies asked per chunk before it is rejected.
    pub max_attempts: u32,
    /// Chunks in flight at once.
    pub concurrency: usize,
    /// Only the first `limit` chunks of the file are considered.
    pub limit: Option<usize>,
}

impl SynthConfig {
    /// The defaults, writing to `out`.
    pub fn new(out: impl Into<PathBuf>) -> Self {
        Self {
            out: out.into(),
            rejects: None,
            format: SynthFormat::Teaching,
            pairs_per_chunk: 3,
            template: None,
            domain: None,
            temperature: 0.7,
            retry_temperature: 0.7,
            max_tokens: 1024,
            seed: None,
            max_attempts: 3,
            concurrency: 4,
            limit: None,
        }
    }

    /// The rejects file: as set, else `<out>.rejects.jsonl` (`qa.jsonl` → `qa.rejects.jsonl`).
    pub fn rejects_path(&self) -> PathBuf {
        if let Some(path) = &self.rejects {
            return path.clone();
        }
        default_rejects(&self.out)
    }

    fn validate(&self) -> Result<()> {
        let bad = |what: &str| Err(SynthError::Config(what.to_string()));
        if self.pairs_per_chunk == 0 {
            return bad("pairs per chunk must be at least 1");
        }
        if self.max_attempts == 0 {
            return bad("max attempts must be at least 1");
        }
        if self.concurrency == 0 {
            return bad("concurrency must be at least 1");
        }
        if self.max_tokens == 0 {
            return bad("max tokens must be at least 1");
        }
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return bad("temperature must be a number ≥ 0");
        }
        if self.rejects_path() == self.out {
            return bad("the rejects file must differ from the output file");
        }
        Ok(())
    }
}

fn default_rejects(out: &Path) -> PathBuf {
    let stem = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = stem.strip_suffix(".jsonl").unwrap_or(&stem);
    out.with_file_name(format!("{stem}.rejects.jsonl"))
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SynthReport {
    /// Chunks considered (after `limit`).
    pub chunks_total: usize,
    /// Chunks skipped: an earlier run finished them.
    pub skipped: usize,
    /// Chunks that got records in this run.
    pub chunks_done: usize,
    /// Records written.
    pub records_written: usize,
    /// Of those, records from replies that needed repair.
    pub repaired_records: usize,
    /// Teacher replies asked again because the one before was unusable.
    pub retries: u64,
    /// HTTP requests repeated after 408, 429, 5xx or a connection error.
    pub http_retries: u64,
    /// Chunks written to the rejects file in this run.
    pub rejected: usize,
    /// Records of half-written chunks removed before resuming.
    pub removed_partial_records: usize,
    /// Tokens the teacher reported (every attempt).
    pub usage: Usage,
    /// The run was stopped before every chunk was done (rerun to resume).
    pub interrupted: bool,
}

impl SynthReport {
    /// The cost of `usage` at these prices per million input and output tokens.
    pub fn cost(&self, price_input: f64, price_output: f64) -> f64 {
        (self.usage.prompt_tokens as f64 * price_input
            + self.usage.completion_tokens as f64 * price_output)
            / 1e6
    }
}

/// Progress callbacks (called from the run's task, between chunks).
pub trait SynthProgress: Sync {
    /// Before the first request: chunks to do, and chunks skipped as already done.
    fn started(&self, _to_do: usize, _skipped: usize) {}
    /// A chunk's records or rejection were written; `report` is the tally so far.
    fn chunk_finished(&self, _chunk_id: &str, _report: &SynthReport) {}
}

/// No progress shown.
impl SynthProgress for () {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_default_beside_the_output() {
        let config = SynthConfig::new("data/qa.jsonl");
        assert_eq!(config.rejects_path(), Path::new("data/qa.rejects.jsonl"));
        assert_eq!(
            default_rejects(Path::new("out")),
            Path::new("out.rejects.jsonl")
        );
        let mut config = SynthConfig::new("x.jsonl");
        config.concurrency = 0;
        assert!(config.validate().is_err());
    }
}

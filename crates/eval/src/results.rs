//! What an evaluation run produces, in the JSON shape other tools and CI scripts read:
//!
//! ```json
//! {"suite": "...", "model": "...",
//!  "variants": {"<variant>": {"<domain or overall>": {"accuracy": 0.71, "n": 60, "ci95": [0.59, 0.81]}}},
//!  "items": [{"id": "...", "variant": "...", "correct": true, ...}]}
//! ```
//!
//! Per-item records make paired comparisons of two runs possible (same ids, same variant).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{EvalError, Result};

/// The key of the all-domains entry of a variant.
pub const OVERALL: &str = "overall";

/// The results of one `eval run`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalResults {
    /// Suite name.
    pub suite: String,
    /// The model evaluated (the base model's served name).
    pub model: String,
    /// Per variant, per domain (and [`OVERALL`]): accuracy with a 95% interval.
    pub variants: BTreeMap<String, BTreeMap<String, DomainScore>>,
    /// One record per item and variant.
    pub items: Vec<ItemRecord>,
    /// How the run was made.
    #[serde(default)]
    pub run: RunInfo,
}

/// Accuracy of one variant on one domain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DomainScore {
    /// Share of items answered correctly, 0..=1 (multiple choice: `acc`; generative: the
    /// primary generative metric).
    pub accuracy: f64,
    /// Items scored.
    pub n: usize,
    /// 95% Wilson score interval of `accuracy`.
    pub ci95: [f64; 2],
    /// Length-normalised multiple-choice accuracy (`acc_norm`), over the multiple-choice items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acc_norm: Option<f64>,
    /// Exact match rate over the generative items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact_match: Option<f64>,
    /// Mean token F1 over the generative items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub f1: Option<f64>,
}

/// How an item was scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scoring {
    /// Multiple choice by the log-likelihood of each choice (echo + logprobs).
    Loglikelihood,
    /// Multiple choice asked as a question with lettered options, answer parsed from the text
    /// (servers without prompt logprobs).
    GenerativeChoice,
    /// A generative item compared with its reference.
    Generative,
}

/// The outcome of one item under one variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemRecord {
    /// The item's id.
    pub id: String,
    /// The item's domain.
    pub domain: String,
    /// The variant (`base`, an adapter name, `adapter`, `rag`, `adapter+rag`, `auto`).
    pub variant: String,
    /// The `model` the request was sent with (the adapter actually used, or the base).
    pub model: String,
    /// Whether the answer counts as right.
    pub correct: bool,
    /// How it was scored.
    pub scoring: Scoring,
    /// `auto`: the domain the router picked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routed_domain: Option<String>,
    /// Retrieval: the passages injected (`path#heading`), when the variant retrieves.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
    /// Multiple choice: index of the right choice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gold: Option<usize>,
    /// Multiple choice: the choice picked by `acc` (highest log-likelihood).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicted: Option<usize>,
    /// Multiple choice: whether the `acc_norm` pick is right.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correct_norm: Option<bool>,
    /// Multiple choice: summed log-probability of each choice's tokens.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub loglikelihoods: Vec<f64>,
    /// Generative: what the model answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// Generative: normalised exact match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact_match: Option<bool>,
    /// Generative: the normalised reference appears in the normalised answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contains: Option<bool>,
    /// Generative: token F1 between answer and reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub f1: Option<f64>,
}

impl ItemRecord {
    /// A record of `id` in `domain` answered by `model` under `variant`, with nothing scored
    /// yet (`correct` false, every metric absent).
    pub fn unscored(id: &str, domain: &str, variant: &str, model: &str, scoring: Scoring) -> Self {
        Self {
            id: id.to_string(),
            domain: domain.to_string(),
            variant: variant.to_string(),
            model: model.to_string(),
            correct: false,
            scoring,
            routed_domain: None,
            sources: Vec::new(),
            gold: None,
            predicted: None,
            correct_norm: None,
            loglikelihoods: Vec::new(),
            output: None,
            exact_match: None,
            contains: None,
            f1: None,
        }
    }
}

/// How a run was made: where, when, how long, and anything a reader should know.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// The server evaluated (`in-process` for a server started by the run itself).
    #[serde(default)]
    pub endpoint: String,
    /// Unix time the run started.
    #[serde(default)]
    pub started_at: f64,
    /// Wall time of the run.
    #[serde(default)]
    pub duration_seconds: f64,
    /// Notes for the reader (fallbacks taken, variants skipped and why).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl EvalResults {
    /// Reads results written by [`EvalResults::save`] (or any tool writing the same shape;
    /// `items` and `run` may be missing).
    pub fn load(path: impl AsRef<Path>) -> Result<EvalResults> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| EvalError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        #[derive(Deserialize)]
        struct Lenient {
            suite: String,
            model: String,
            variants: BTreeMap<String, BTreeMap<String, DomainScore>>,
            #[serde(default)]
            items: Vec<ItemRecord>,
            #[serde(default)]
            run: RunInfo,
        }
        let lenient: Lenient = serde_json::from_str(&text).map_err(|e| EvalError::BadFile {
            path: path.to_path_buf(),
            reason: format!("not an evaluation results file: {e}"),
        })?;
        Ok(EvalResults {
            suite: lenient.suite,
            model: lenient.model,
            variants: lenient.variants,
            items: lenient.items,
            run: lenient.run,
        })
    }

    /// Writes the results as pretty JSON, atomically.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let json = serde_json::to_vec_pretty(self).map_err(|e| EvalError::BadFile {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        write_atomic(path, &json)
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename, so
/// readers see the old file or the new one, never a half-written one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let io = |source| EvalError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(io)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".to_string());
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        std::fs::remove_file(&tmp).ok();
    }
    result.map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_reads_minimal_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let minimal = r#"{"suite": "s", "model": "m", "variants": {"base": {"overall": {"accuracy": 0.5, "n": 4, "ci95": [0.15, 0.85]}}}}"#;
        let path = dir.path().join("min.json");
        std::fs::write(&path, minimal).expect("write");
        let results = EvalResults::load(&path).expect("load");
        assert_eq!(results.variants["base"][OVERALL].n, 4);
        let out = dir.path().join("sub/out.json");
        results.save(&out).expect("save");
        assert_eq!(EvalResults::load(&out).expect("reload"), results);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("sub"))
            .expect("dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left: {leftovers:?}");
    }

    #[test]
    fn bad_files_name_the_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.json");
        std::fs::write(&path, "{}").expect("write");
        let err = EvalResults::load(&path).expect_err("bad").to_string();
        assert!(
            err.contains("x.json") && err.contains("not an evaluation results file"),
            "{err}"
        );
    }
}

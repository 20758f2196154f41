//! What a run records: the JSONL log, and training checkpoints (variables, optimizer moments,
//! step and history) that a later run resumes from exactly.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};

/// One optimizer step, as logged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// 1-based optimizer step.
    pub step: usize,
    /// Steps of the whole run.
    pub total_steps: usize,
    /// Fractional epoch reached at the end of the step.
    pub epoch: f64,
    /// Mean loss per target token over the step's examples.
    pub loss: f64,
    /// Learning rate used.
    pub lr: f64,
    /// Gradient norm before clipping.
    pub grad_norm: f64,
    /// Tokens forwarded in the step.
    pub tokens: usize,
    /// Tokens forwarded per second during the step.
    pub tokens_per_s: f64,
    /// Seconds since the (resumed) run started.
    pub elapsed_s: f64,
}

/// A validation pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValRecord {
    /// The optimizer step after which it ran.
    pub step: usize,
    /// Mean loss per target token over the validation set.
    pub val_loss: f64,
}

/// A line of `train_log.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum LogRecord {
    /// A training step.
    Train(StepRecord),
    /// A validation pass.
    Val(ValRecord),
}

/// Appends records to the JSONL log as they happen.
pub(crate) struct LogWriter {
    path: PathBuf,
    file: std::fs::File,
}

impl LogWriter {
    /// Starts the log afresh with `history` (the records of a resumed checkpoint, or none).
    pub(crate) fn create(path: &Path, history: &[LogRecord]) -> Result<Self> {
        let mut text = String::new();
        for record in history {
            text.push_str(&serde_json::to_string(record).map_err(|e| TrainError::file(path, e))?);
            text.push('\n');
        }
        switchboard_model::write_file(path, text.as_bytes())?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|e| TrainError::file(path, e))?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
        })
    }

    pub(crate) fn append(&mut self, record: &LogRecord) -> Result<()> {
        let mut line =
            serde_json::to_string(record).map_err(|e| TrainError::file(&self.path, e))?;
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .map_err(|e| TrainError::file(&self.path, e))
    }
}

/// `state.json` of a training checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CheckpointState {
    /// Optimizer steps completed.
    pub step: usize,
    /// The settings that decide the computation; a resume must match them.
    pub identity: serde_json::Value,
    /// Fingerprint of the tokenized training data.
    pub data_fingerprint: u64,
    /// Everything logged so far.
    pub history: Vec<LogRecord>,
}

const PARAMS_FILE: &str = "params.safetensors";
const OPTIMIZER_FILE: &str = "optimizer.safetensors";
const STATE_FILE: &str = "state.json";

/// Where checkpoints of a run live.
pub(crate) fn checkpoints_dir(out: &Path) -> PathBuf {
    out.join("checkpoints")
}

/// Writes `out/checkpoints/step-NNNNNN` atomically, then deletes all but the newest `keep`.
pub(crate) fn save_checkpoint(
    out: &Path,
    state: &CheckpointState,
    params: &[(String, Tensor)],
    optimizer: &[(String, Tensor)],
    keep: usize,
) -> Result<PathBuf> {
    let root = checkpoints_dir(out);
    let dir = root.join(format!("step-{:06}", state.step));
    let json = serde_json::to_vec_pretty(state).map_err(|e| TrainError::file(&dir, e))?;
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| TrainError::file(&dir, e))?;
    }
    switchboard_model::write_dir(&dir, |tmp| {
        switchboard_model::write_safetensors(&tmp.join(PARAMS_FILE), params, None)?;
        switchboard_model::write_safetensors(&tmp.join(OPTIMIZER_FILE), optimizer, None)?;
        switchboard_model::write_file(&tmp.join(STATE_FILE), &json)
    })?;
    let all = list_checkpoints(&root)?;
    for old in all.iter().take(all.len().saturating_sub(keep)) {
        std::fs::remove_dir_all(old).map_err(|e| TrainError::file(old, e))?;
    }
    Ok(dir)
}

/// Checkpoint directories under `root`, oldest first.
fn list_checkpoints(root: &Path) -> Result<Vec<PathBuf>> {
    if !root.is_dir() {
        return Ok(Vec::new());
    }
    let mut found: Vec<(usize, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(root).map_err(|e| TrainError::file(root, e))? {
        let path = entry.map_err(|e| TrainError::file(root, e))?.path();
        let step = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("step-"))
            .and_then(|n| n.parse().ok());
        if let Some(step) = step.filter(|_| path.join(STATE_FILE).is_file()) {
            found.push((step, path));
        }
    }
    found.sort();
    Ok(found.into_iter().map(|(_, p)| p).collect())
}

/// The newest checkpoint of a run's output directory.
pub(crate) fn latest_checkpoint(out: &Path) -> Result<PathBuf> {
    let root = checkpoints_dir(out);
    list_checkpoints(&root)?
        .pop()
        .ok_or_else(|| TrainError::Resume {
            path: root,
            reason: "no checkpoint found".into(),
        })
}

/// A checkpoint read back.
pub(crate) struct LoadedCheckpoint {
    pub state: CheckpointState,
    pub params: HashMap<String, Tensor>,
    pub optimizer: HashMap<String, Tensor>,
}

pub(crate) fn load_checkpoint(dir: &Path, device: &Device) -> Result<LoadedCheckpoint> {
    let fail = |reason: String| TrainError::Resume {
        path: dir.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(dir.join(STATE_FILE))
        .map_err(|e| fail(format!("{STATE_FILE}: {e}")))?;
    let state: CheckpointState =
        serde_json::from_str(&text).map_err(|e| fail(format!("{STATE_FILE}: {e}")))?;
    let load = |name: &str| {
        candle_core::safetensors::load(dir.join(name), device)
            .map_err(|e| fail(format!("{name}: {e}")))
    };
    Ok(LoadedCheckpoint {
        params: load(PARAMS_FILE)?,
        optimizer: load(OPTIMIZER_FILE)?,
        state,
    })
}

/// The first setting whose value differs between a checkpoint and this run.
pub(crate) fn identity_difference(
    saved: &serde_json::Value,
    now: &serde_json::Value,
) -> Option<String> {
    let (Some(saved), Some(now)) = (saved.as_object(), now.as_object()) else {
        return (saved != now).then(|| "settings".to_string());
    };
    let keys: std::collections::BTreeSet<&String> = saved.keys().chain(now.keys()).collect();
    keys.into_iter()
        .find(|k| saved.get(*k) != now.get(*k))
        .map(|k| {
            let show =
                |v: Option<&serde_json::Value>| v.map_or("unset".to_string(), |v| v.to_string());
            format!(
                "`{k}` was {} and is now {}",
                show(saved.get(k)),
                show(now.get(k))
            )
        })
}

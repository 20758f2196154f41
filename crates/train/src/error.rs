//! The one error type of the training crate.

use std::path::PathBuf;

use switchboard_engine::EngineError;
use switchboard_model::ModelError;

/// Everything that can stop a training run. Variants name the file (and line) at fault so the
/// CLI can print them as they are.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A record of a data file is malformed or in no known format.
    #[error("{path}:{line}: {reason}")]
    BadRecord {
        /// The JSONL file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with the record.
        reason: String,
    },
    /// A setting has a value that cannot be used.
    #[error("invalid setting `{key}`: {reason}")]
    InvalidSetting {
        /// The config key (the CLI flag without `--`, with `_` for `-`).
        key: String,
        /// Why the value is refused.
        reason: String,
    },
    /// The data leaves nothing to train or validate on.
    #[error("{0}")]
    NoData(String),
    /// A file could not be read or written.
    #[error("{path}: {reason}")]
    File {
        /// The file or directory.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A training checkpoint cannot be resumed from.
    #[error("cannot resume from {path}: {reason}")]
    Resume {
        /// The checkpoint directory.
        path: PathBuf,
        /// Why it does not fit this run.
        reason: String,
    },
    /// The requested device is not available in this build or on this machine.
    #[error("device {device}: {reason}")]
    Device {
        /// `cpu`, `cuda` or `metal`.
        device: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// The loss became NaN or infinite.
    #[error("loss is not finite at step {step} ({loss}); lower the learning rate")]
    Diverged {
        /// The optimizer step (1-based).
        step: usize,
        /// The loss value seen.
        loss: f64,
    },
    /// Loading or running the model failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The tokenizer or chat template failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, TrainError>;

impl TrainError {
    pub(crate) fn file(path: impl Into<PathBuf>, reason: impl ToString) -> Self {
        Self::File {
            path: path.into(),
            reason: reason.to_string(),
        }
    }

    pub(crate) fn setting(key: &str, reason: impl Into<String>) -> Self {
        Self::InvalidSetting {
            key: key.to_string(),
            reason: reason.into(),
        }
    }
}

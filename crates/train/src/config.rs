//! Every setting of a run, with the defaults of the issue, readable from TOML.
//!
//! The TOML keys are the CLI flags with `_` for `-` (`lora_alpha = 32`, `grad_accum = 8`).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use switchboard_model::{Device, Proj};

use crate::error::{Result, TrainError};
use crate::schedule::LrSchedule;

/// What a run trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// LoRA A/B matrices on the chosen projections; the base stays frozen.
    Lora,
    /// Every weight of the model.
    Full,
}

/// Where the tensors live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    /// The CPU (always available).
    #[default]
    Cpu,
    /// The first CUDA GPU (needs the `cuda` feature).
    Cuda,
    /// The first Metal GPU (needs the `metal` feature).
    Metal,
}

impl std::str::FromStr for DeviceChoice {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda),
            "metal" => Ok(Self::Metal),
            other => Err(format!("unknown device {other:?} (cpu, cuda or metal)")),
        }
    }
}

impl DeviceChoice {
    /// Opens the device; GPUs fail with a clear error in builds without their feature.
    pub fn open(self) -> Result<Device> {
        let (name, opened) = match self {
            Self::Cpu => return Ok(Device::Cpu),
            Self::Cuda => ("cuda", Device::new_cuda(0)),
            Self::Metal => ("metal", Device::new_metal(0)),
        };
        opened.map_err(|e| TrainError::Device {
            device: name.into(),
            reason: format!("{e} (was switchboard built with `--features {name}`?)"),
        })
    }
}

/// The settings of one training run. `Default` gives the issue's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Base checkpoint directory (config.json, safetensors, tokenizer files).
    pub base: Option<PathBuf>,
    /// Training files: `path.jsonl` (named after the file stem) or `name=path.jsonl`.
    pub data: Vec<String>,
    /// Output directory: the adapter (or checkpoint), log, plot and training checkpoints.
    pub out: Option<PathBuf>,
    /// Validation files, in the same forms as `data`.
    pub val_data: Vec<String>,
    /// Fraction of each training dataset held out for validation when `val_data` is empty.
    pub val_fraction: f64,
    /// Sampling ratios per dataset name, `biology=0.3,history=0.7`; empty for plain concatenation.
    pub mix: String,
    /// LoRA rank.
    pub r: usize,
    /// LoRA alpha; the delta is scaled by `alpha / r` (or `alpha / sqrt(r)` with rsLoRA).
    pub lora_alpha: f64,
    /// Projections that get LoRA: any of q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj,
    /// down_proj.
    pub target_modules: Vec<String>,
    /// Dropout probability on the LoRA input.
    pub lora_dropout: f64,
    /// rsLoRA scaling (`alpha / sqrt(r)`).
    pub rslora: bool,
    /// Peak learning rate.
    pub lr: f64,
    /// Passes over the training data.
    pub epochs: usize,
    /// Sequences per forward pass (micro-batch).
    pub batch_size: usize,
    /// Micro-batches whose gradients add up to one optimizer step.
    pub grad_accum: usize,
    /// Optimizer steps of linear warmup.
    pub warmup_steps: usize,
    /// Learning-rate shape after warmup.
    pub schedule: LrSchedule,
    /// Global gradient-norm clip; 0 disables clipping.
    pub max_grad_norm: f64,
    /// AdamW decoupled weight decay.
    pub weight_decay: f64,
    /// AdamW beta1.
    pub adam_beta1: f64,
    /// AdamW beta2.
    pub adam_beta2: f64,
    /// AdamW epsilon.
    pub adam_eps: f64,
    /// Longest sequence in tokens; longer examples are truncated (and counted).
    pub max_seq_len: usize,
    /// Seed of every random choice (initialisation, shuffling, mixing, dropout).
    pub seed: u64,
    /// Validation loss every this many optimizer steps (and at the end); 0 only at the end.
    pub eval_every: usize,
    /// Training checkpoint every this many optimizer steps; 0 never (except when stopping early).
    pub save_every: usize,
    /// Training checkpoints kept on disk (older ones are deleted).
    pub keep_checkpoints: usize,
    /// `cpu`, `cuda` or `metal`.
    pub device: DeviceChoice,
    /// Resume from a training checkpoint directory, or `latest` for the newest under `out`.
    pub resume: Option<String>,
    /// Stop (with a checkpoint) after this many optimizer steps in total, keeping the schedule
    /// of the whole run, so a long run can be split over several sessions.
    pub stop_after_steps: Option<usize>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            base: None,
            data: Vec::new(),
            out: None,
            val_data: Vec::new(),
            val_fraction: 0.0,
            mix: String::new(),
            r: 16,
            lora_alpha: 32.0,
            target_modules: vec!["q_proj".into(), "v_proj".into()],
            lora_dropout: 0.05,
            rslora: false,
            lr: 2e-4,
            epochs: 3,
            batch_size: 4,
            grad_accum: 8,
            warmup_steps: 100,
            schedule: LrSchedule::Cosine,
            max_grad_norm: 1.0,
            weight_decay: 0.0,
            adam_beta1: 0.9,
            adam_beta2: 0.999,
            adam_eps: 1e-8,
            max_seq_len: 2048,
            seed: 42,
            eval_every: 100,
            save_every: 500,
            keep_checkpoints: 3,
            device: DeviceChoice::Cpu,
            resume: None,
            stop_after_steps: None,
        }
    }
}

impl TrainConfig {
    /// Parses a TOML config; missing keys keep their defaults, unknown keys are refused.
    pub fn from_toml(text: &str) -> std::result::Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Reads a TOML config file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| TrainError::file(path, e))?;
        Self::from_toml(&text).map_err(|reason| TrainError::file(path, reason))
    }

    /// The projections named by `target_modules`, in layer order.
    pub fn target_projs(&self) -> Result<Vec<Proj>> {
        let mut projs = self
            .target_modules
            .iter()
            .map(|name| {
                Proj::from_name(name.trim()).ok_or_else(|| {
                    TrainError::setting(
                        "target_modules",
                        format!(
                            "{name:?} is not one of q_proj, k_proj, v_proj, o_proj, gate_proj, \
                             up_proj, down_proj"
                        ),
                    )
                })
            })
            .collect::<Result<Vec<_>>>()?;
        projs.sort();
        projs.dedup();
        if projs.is_empty() {
            return Err(TrainError::setting("target_modules", "is empty"));
        }
        Ok(projs)
    }

    /// Checks every value before anything is loaded.
    pub fn validate(&self, method: Method) -> Result<()> {
        let check = |ok: bool, key: &str, reason: &str| {
            if ok {
                Ok(())
            } else {
                Err(TrainError::setting(key, reason))
            }
        };
        check(self.base.is_some(), "base", "is required")?;
        check(self.out.is_some(), "out", "is required")?;
        check(!self.data.is_empty(), "data", "needs at least one file")?;
        check(self.lr.is_finite() && self.lr > 0.0, "lr", "must be > 0")?;
        check(self.epochs > 0, "epochs", "must be > 0")?;
        check(self.batch_size > 0, "batch_size", "must be > 0")?;
        check(self.grad_accum > 0, "grad_accum", "must be > 0")?;
        check(self.max_seq_len >= 2, "max_seq_len", "must be >= 2")?;
        check(
            self.max_grad_norm >= 0.0,
            "max_grad_norm",
            "must be >= 0 (0 disables clipping)",
        )?;
        check(self.weight_decay >= 0.0, "weight_decay", "must be >= 0")?;
        check(
            (0.0..1.0).contains(&self.adam_beta1),
            "adam_beta1",
            "must be in [0, 1)",
        )?;
        check(
            (0.0..1.0).contains(&self.adam_beta2),
            "adam_beta2",
            "must be in [0, 1)",
        )?;
        check(self.adam_eps > 0.0, "adam_eps", "must be > 0")?;
        check(
            (0.0..1.0).contains(&self.val_fraction),
            "val_fraction",
            "must be in [0, 1)",
        )?;
        check(self.keep_checkpoints > 0, "keep_checkpoints", "must be > 0")?;
        if method == Method::Lora {
            check(self.r > 0, "r", "must be > 0")?;
            check(self.lora_alpha > 0.0, "lora_alpha", "must be > 0")?;
            check(
                (0.0..1.0).contains(&self.lora_dropout),
                "lora_dropout",
                "must be in [0, 1)",
            )?;
            self.target_projs()?;
        }
        Ok(())
    }

    /// The settings that decide what a run computes: a checkpoint only resumes a run whose
    /// identity matches (paths, logging cadence and the device may differ).
    pub(crate) fn identity(&self, method: Method) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        if let Some(map) = value.as_object_mut() {
            for key in [
                "base",
                "data",
                "out",
                "val_data",
                "eval_every",
                "save_every",
                "keep_checkpoints",
                "device",
                "resume",
                "stop_after_steps",
            ] {
                map.remove(key);
            }
            map.insert("method".into(), serde_json::json!(method));
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_keys_override_defaults_and_typos_are_refused() {
        let cfg = TrainConfig::from_toml(
            "base = \"m\"\nout = \"o\"\ndata = [\"bio=b.jsonl\"]\nr = 8\nlr = 1e-3\n\
             target_modules = [\"q_proj\", \"down_proj\"]\nschedule = \"linear\"\n",
        )
        .expect("valid toml");
        assert_eq!(cfg.r, 8);
        assert_eq!(cfg.lora_alpha, 32.0, "default kept");
        assert_eq!(cfg.schedule, LrSchedule::Linear);
        assert_eq!(
            cfg.target_projs().expect("targets"),
            [Proj::QProj, Proj::DownProj]
        );
        cfg.validate(Method::Lora).expect("valid");
        let err = TrainConfig::from_toml("rank = 8").expect_err("unknown key");
        assert!(err.contains("rank"), "{err}");
    }

    #[test]
    fn bad_values_name_their_key() {
        let mut cfg = TrainConfig {
            base: Some("m".into()),
            out: Some("o".into()),
            data: vec!["d.jsonl".into()],
            ..TrainConfig::default()
        };
        cfg.target_modules = vec!["qkv".into()];
        let err = cfg.validate(Method::Lora).expect_err("bad target");
        assert!(err.to_string().contains("target_modules"), "{err}");
        cfg.validate(Method::Full).expect("full ignores LoRA keys");
        cfg.lr = 0.0;
        let err = cfg.validate(Method::Full).expect_err("lr");
        assert!(err.to_string().contains("`lr`"), "{err}");
    }
}

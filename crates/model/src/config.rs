//! `config.json` of a Hugging Face Qwen2 checkpoint, in both the legacy layout (`torch_dtype`,
//! top-level `rope_theta`) and the transformers-5 layout (`dtype`, `rope_parameters`).

use std::path::Path;

use candle_core::DType;
use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};

/// The fields of a Qwen2 `config.json` that determine the computation.
///
/// Unknown keys are ignored; missing keys take Qwen2Config's defaults from transformers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Qwen2Config {
    /// `"qwen2"` for the models this crate runs.
    #[serde(default)]
    pub model_type: Option<String>,
    /// Token vocabulary size (rows of `embed_tokens`).
    pub vocab_size: usize,
    /// Width of the residual stream.
    pub hidden_size: usize,
    /// Width of the SwiGLU MLP.
    pub intermediate_size: usize,
    /// Number of decoder layers.
    pub num_hidden_layers: usize,
    /// Query heads.
    pub num_attention_heads: usize,
    /// Key/value heads (grouped-query attention); defaults to `num_attention_heads`.
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    /// Longest context the model was trained for.
    #[serde(default = "default_max_position_embeddings")]
    pub max_position_embeddings: usize,
    /// RMSNorm epsilon.
    #[serde(default = "default_rms_norm_eps")]
    pub rms_norm_eps: f64,
    /// Legacy layout: RoPE base.
    #[serde(default)]
    pub rope_theta: Option<f64>,
    /// transformers-5 layout: RoPE parameters.
    #[serde(default)]
    pub rope_parameters: Option<RopeParameters>,
    /// Legacy layout: RoPE scaling; only `null` or the default type is supported.
    #[serde(default)]
    pub rope_scaling: Option<serde_json::Value>,
    /// Whether `lm_head` shares `embed_tokens.weight`. Qwen2Config's default is `false`.
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// Activation of the MLP; only `silu` is supported.
    #[serde(default = "default_hidden_act")]
    pub hidden_act: String,
    /// Legacy layout: dtype of the stored weights.
    #[serde(default)]
    pub torch_dtype: Option<String>,
    /// transformers-5 layout: dtype of the stored weights.
    #[serde(default)]
    pub dtype: Option<String>,
    /// Sliding-window attention; must be off (`use_sliding_window: false`).
    #[serde(default)]
    pub use_sliding_window: bool,
    /// Window size, used only when `use_sliding_window` is true.
    #[serde(default)]
    pub sliding_window: Option<usize>,
    /// Beginning-of-sequence token id, if any.
    #[serde(default)]
    pub bos_token_id: Option<u32>,
    /// End-of-sequence token id(s): a number or a list.
    #[serde(default)]
    pub eos_token_id: Option<serde_json::Value>,
}

/// `rope_parameters` of the transformers-5 layout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RopeParameters {
    /// RoPE base.
    #[serde(default)]
    pub rope_theta: Option<f64>,
    /// Only `"default"` is supported.
    #[serde(default)]
    pub rope_type: Option<String>,
}

fn default_max_position_embeddings() -> usize {
    32768
}
fn default_rms_norm_eps() -> f64 {
    1e-6
}
fn default_hidden_act() -> String {
    "silu".to_string()
}

impl Qwen2Config {
    /// Reads and validates `config.json`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
        let cfg: Self = serde_json::from_str(&text).map_err(|source| ModelError::Json {
            path: path.to_path_buf(),
            source,
        })?;
        cfg.validate()
            .map_err(|reason| ModelError::UnsupportedConfig {
                path: path.to_path_buf(),
                reason,
            })?;
        Ok(cfg)
    }

    /// Checks that the config describes a model this crate computes exactly.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if let Some(t) = &self.model_type {
            if t != "qwen2" {
                return Err(format!("model_type is {t:?}, only \"qwen2\" is supported"));
            }
        }
        if self.hidden_act != "silu" {
            return Err(format!(
                "hidden_act {:?} is not supported (only silu)",
                self.hidden_act
            ));
        }
        if self.num_attention_heads == 0
            || !self.hidden_size.is_multiple_of(self.num_attention_heads)
        {
            return Err(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        let kv = self.num_kv_heads();
        if kv == 0 || !self.num_attention_heads.is_multiple_of(kv) {
            return Err(format!(
                "num_attention_heads {} is not a multiple of num_key_value_heads {kv}",
                self.num_attention_heads
            ));
        }
        if !self.head_dim().is_multiple_of(2) {
            return Err(format!(
                "head_dim {} must be even for RoPE",
                self.head_dim()
            ));
        }
        if self.use_sliding_window {
            return Err("use_sliding_window: true is not supported".into());
        }
        let rope_type = self
            .rope_parameters
            .as_ref()
            .and_then(|p| p.rope_type.as_deref());
        if let Some(t) = rope_type {
            if t != "default" {
                return Err(format!(
                    "rope_type {t:?} is not supported (only \"default\")"
                ));
            }
        }
        if let Some(scaling) = &self.rope_scaling {
            let kind = scaling.get("rope_type").or_else(|| scaling.get("type"));
            let is_default = kind
                .and_then(|k| k.as_str())
                .is_some_and(|k| k == "default");
            if !scaling.is_null() && !is_default {
                return Err(format!("rope_scaling {scaling} is not supported"));
            }
        }
        if self.vocab_size == 0 || self.num_hidden_layers == 0 {
            return Err("vocab_size and num_hidden_layers must be positive".into());
        }
        Ok(())
    }

    /// Key/value heads.
    pub fn num_kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// RoPE base from whichever layout the file uses (10000 when absent, as in transformers).
    pub fn rope_theta(&self) -> f64 {
        self.rope_parameters
            .as_ref()
            .and_then(|p| p.rope_theta)
            .or(self.rope_theta)
            .unwrap_or(10_000.0)
    }

    /// The dtype the weights are stored in, if the config says.
    pub fn weight_dtype(&self) -> Option<DType> {
        let name = self.dtype.as_deref().or(self.torch_dtype.as_deref())?;
        match name {
            "float32" => Some(DType::F32),
            "float16" => Some(DType::F16),
            "bfloat16" => Some(DType::BF16),
            _ => None,
        }
    }

    /// End-of-sequence ids, whether the file gives one number or a list.
    pub fn eos_token_ids(&self) -> Vec<u32> {
        match &self.eos_token_id {
            Some(serde_json::Value::Number(n)) => {
                n.as_u64().map(|n| n as u32).into_iter().collect()
            }
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .filter_map(|v| v.as_u64())
                .map(|n| n as u32)
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Output width of a projection, by its Hugging Face name.
    pub fn proj_out_features(&self, proj: crate::Proj) -> usize {
        use crate::Proj::*;
        let kv = self.num_kv_heads() * self.head_dim();
        match proj {
            QProj | OProj | DownProj => self.hidden_size,
            KProj | VProj => kv,
            GateProj | UpProj => self.intermediate_size,
        }
    }

    /// Input width of a projection, by its Hugging Face name.
    pub fn proj_in_features(&self, proj: crate::Proj) -> usize {
        use crate::Proj::*;
        match proj {
            QProj | KProj | VProj | OProj | GateProj | UpProj => self.hidden_size,
            DownProj => self.intermediate_size,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Qwen2Config {
        serde_json::from_str(json).expect("test config parses")
    }

    #[test]
    fn reads_both_layouts() {
        let new = parse(
            r#"{"vocab_size":10,"hidden_size":8,"intermediate_size":16,"num_hidden_layers":1,
            "num_attention_heads":2,"num_key_value_heads":1,"dtype":"float32",
            "rope_parameters":{"rope_theta":1000000.0,"rope_type":"default"},"sliding_window":null,
            "tie_word_embeddings":true,"eos_token_id":[3,4]}"#,
        );
        assert_eq!(new.rope_theta(), 1e6);
        assert_eq!(new.weight_dtype(), Some(DType::F32));
        assert_eq!(new.eos_token_ids(), vec![3, 4]);
        assert!(new.validate().is_ok());

        let legacy = parse(
            r#"{"vocab_size":10,"hidden_size":8,"intermediate_size":16,"num_hidden_layers":1,
            "num_attention_heads":2,"rope_theta":500.0,"torch_dtype":"bfloat16","sliding_window":4096,
            "use_sliding_window":false,"eos_token_id":7,"rope_scaling":null}"#,
        );
        assert_eq!(legacy.rope_theta(), 500.0);
        assert_eq!(legacy.weight_dtype(), Some(DType::BF16));
        assert_eq!(legacy.num_kv_heads(), 2);
        assert!(
            !legacy.tie_word_embeddings,
            "Qwen2Config defaults to an untied head"
        );
        assert_eq!(legacy.eos_token_ids(), vec![7]);
        assert!(legacy.validate().is_ok());
    }

    #[test]
    fn refuses_what_it_cannot_compute() {
        let base = r#""vocab_size":10,"hidden_size":8,"intermediate_size":16,"num_hidden_layers":1,"num_attention_heads":2"#;
        let cases = [
            (r#""model_type":"llama""#, "model_type"),
            (r#""hidden_act":"gelu""#, "hidden_act"),
            (r#""use_sliding_window":true"#, "sliding"),
            (
                r#""rope_scaling":{"type":"yarn","factor":4.0}"#,
                "rope_scaling",
            ),
            (r#""num_key_value_heads":3"#, "num_key_value_heads"),
        ];
        for (extra, needle) in cases {
            let cfg = parse(&format!("{{{base},{extra}}}"));
            let err = cfg.validate().expect_err(extra);
            assert!(err.contains(needle), "{err} should mention {needle}");
        }
    }
}

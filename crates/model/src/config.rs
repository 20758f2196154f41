//! `config.json` of a Hugging Face causal LM checkpoint of the Qwen2 or Llama family, in both the
//! legacy layout (`torch_dtype`, top-level `rope_theta`, `rope_scaling`) and the transformers-5
//! layout (`dtype`, `rope_parameters`).
//!
//! The two architectures share one implementation; what differs is a handful of flags:
//! Qwen2 has biases on q/k/v (never on o or the MLP), Llama has `attention_bias` on all four
//! attention projections and `mlp_bias` on the MLP.

use std::path::Path;

use candle_core::DType;
use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};
use crate::lora::Proj;

/// The architectures this crate runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Architecture {
    /// `Qwen2ForCausalLM` (`model_type: "qwen2"`): Qwen2, Qwen2.5.
    Qwen2,
    /// `LlamaForCausalLM` (`model_type: "llama"`): Llama 2/3, TinyLlama, SmolLM2, ...
    Llama,
}

impl Architecture {
    /// `model_type` as in `config.json` (and `general.architecture` in GGUF files).
    pub fn model_type(self) -> &'static str {
        match self {
            Architecture::Qwen2 => "qwen2",
            Architecture::Llama => "llama",
        }
    }

    /// The transformers class name (`architectures[0]` in `config.json`).
    pub fn class_name(self) -> &'static str {
        match self {
            Architecture::Qwen2 => "Qwen2ForCausalLM",
            Architecture::Llama => "LlamaForCausalLM",
        }
    }

    /// Parses a `model_type` (`"qwen2"`, `"llama"`).
    pub fn from_model_type(name: &str) -> Option<Self> {
        [Architecture::Qwen2, Architecture::Llama]
            .into_iter()
            .find(|a| a.model_type() == name)
    }

    fn from_class_name(name: &str) -> Option<Self> {
        [Architecture::Qwen2, Architecture::Llama]
            .into_iter()
            .find(|a| a.class_name() == name)
    }
}

/// The fields of a `config.json` that determine the computation.
///
/// Unknown keys are ignored; missing keys take transformers' defaults for the architecture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// `"qwen2"` or `"llama"`; when absent, `architectures` decides, and Qwen2 is assumed
    /// when both are absent.
    #[serde(default)]
    pub model_type: Option<String>,
    /// Class names, e.g. `["LlamaForCausalLM"]`.
    #[serde(default)]
    pub architectures: Option<Vec<String>>,
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
    /// Width of one head; defaults to `hidden_size / num_attention_heads`.
    #[serde(default)]
    pub head_dim: Option<usize>,
    /// Longest context the model was trained for (transformers' default: 32768 for Qwen2,
    /// 2048 for Llama).
    #[serde(default)]
    pub max_position_embeddings: Option<usize>,
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
    /// Whether `lm_head` shares `embed_tokens.weight` (default `false` in both architectures).
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// Llama: bias on q/k/v/o (default `false`). Qwen2 ignores it (q/k/v always, o never).
    #[serde(default)]
    pub attention_bias: bool,
    /// Llama: bias on the MLP projections (default `false`). Qwen2 has none.
    #[serde(default)]
    pub mlp_bias: bool,
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
    /// Padding token id, if any.
    #[serde(default)]
    pub pad_token_id: Option<u32>,
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

fn default_rms_norm_eps() -> f64 {
    1e-6
}
fn default_hidden_act() -> String {
    "silu".to_string()
}

impl ModelConfig {
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

    /// The architecture, from `model_type` or else `architectures`.
    pub fn architecture(&self) -> std::result::Result<Architecture, String> {
        if let Some(t) = &self.model_type {
            return Architecture::from_model_type(t)
                .ok_or_else(|| format!("model_type is {t:?}; supported: \"qwen2\", \"llama\""));
        }
        match self.architectures.as_deref() {
            Some([name, ..]) => Architecture::from_class_name(name).ok_or_else(|| {
                format!(
                    "architectures is [{name:?}]; supported: Qwen2ForCausalLM, LlamaForCausalLM"
                )
            }),
            _ => Ok(Architecture::Qwen2),
        }
    }

    /// Checks that the config describes a model this crate computes exactly.
    pub fn validate(&self) -> std::result::Result<(), String> {
        self.architecture()?;
        if self.hidden_act != "silu" {
            return Err(format!(
                "hidden_act {:?} is not supported (only silu)",
                self.hidden_act
            ));
        }
        if self.num_attention_heads == 0
            || (self.head_dim.is_none()
                && !self.hidden_size.is_multiple_of(self.num_attention_heads))
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
        if self.head_dim() == 0 || !self.head_dim().is_multiple_of(2) {
            return Err(format!(
                "head_dim {} must be even and positive for RoPE",
                self.head_dim()
            ));
        }
        if self.use_sliding_window {
            return Err("use_sliding_window: true is not supported".into());
        }
        self.check_rope()?;
        if self.vocab_size == 0 || self.num_hidden_layers == 0 {
            return Err("vocab_size and num_hidden_layers must be positive".into());
        }
        Ok(())
    }

    /// Only plain RoPE is implemented: scaled variants are refused by their type name.
    fn check_rope(&self) -> std::result::Result<(), String> {
        let rope_type = self
            .rope_parameters
            .as_ref()
            .and_then(|p| p.rope_type.as_deref());
        if let Some(t) = rope_type {
            if t != "default" {
                return Err(format!(
                    "rope_parameters.rope_type {t:?} is not supported (only \"default\")"
                ));
            }
        }
        if let Some(scaling) = self.rope_scaling.as_ref().filter(|s| !s.is_null()) {
            let kind = scaling
                .get("rope_type")
                .or_else(|| scaling.get("type"))
                .and_then(|k| k.as_str());
            if kind != Some("default") {
                return Err(format!(
                    "rope_scaling type {} is not supported (only \"default\"): {scaling}",
                    kind.map_or("(none)".to_string(), |k| format!("{k:?}"))
                ));
            }
        }
        Ok(())
    }

    /// The architecture; [`ModelConfig::validate`] has checked that it is known.
    pub fn arch(&self) -> Architecture {
        self.architecture().unwrap_or(Architecture::Qwen2)
    }

    /// Key/value heads.
    pub fn num_kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.head_dim
            .unwrap_or(self.hidden_size / self.num_attention_heads.max(1))
    }

    /// Longest context, with the architecture's default when the file gives none.
    pub fn max_positions(&self) -> usize {
        self.max_position_embeddings.unwrap_or(match self.arch() {
            Architecture::Qwen2 => 32768,
            Architecture::Llama => 2048,
        })
    }

    /// RoPE base from whichever layout the file uses (10000 when absent, as in transformers).
    pub fn rope_theta(&self) -> f64 {
        self.rope_parameters
            .as_ref()
            .and_then(|p| p.rope_theta)
            .or(self.rope_theta)
            .unwrap_or(10_000.0)
    }

    /// Whether a projection has a bias in this architecture.
    pub fn proj_has_bias(&self, proj: Proj) -> bool {
        use Proj::*;
        match (self.arch(), proj) {
            (Architecture::Qwen2, QProj | KProj | VProj) => true,
            (Architecture::Qwen2, _) => false,
            (Architecture::Llama, QProj | KProj | VProj | OProj) => self.attention_bias,
            (Architecture::Llama, GateProj | UpProj | DownProj) => self.mlp_bias,
        }
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
    pub fn proj_out_features(&self, proj: Proj) -> usize {
        use Proj::*;
        match proj {
            QProj => self.num_attention_heads * self.head_dim(),
            OProj | DownProj => self.hidden_size,
            KProj | VProj => self.num_kv_heads() * self.head_dim(),
            GateProj | UpProj => self.intermediate_size,
        }
    }

    /// Input width of a projection, by its Hugging Face name.
    pub fn proj_in_features(&self, proj: Proj) -> usize {
        use Proj::*;
        match proj {
            QProj | KProj | VProj | GateProj | UpProj => self.hidden_size,
            OProj => self.num_attention_heads * self.head_dim(),
            DownProj => self.intermediate_size,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> ModelConfig {
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
            "ModelConfig defaults to an untied head"
        );
        assert_eq!(legacy.eos_token_ids(), vec![7]);
        assert!(legacy.validate().is_ok());
    }

    #[test]
    fn refuses_what_it_cannot_compute() {
        let base = r#""vocab_size":10,"hidden_size":8,"intermediate_size":16,"num_hidden_layers":1,"num_attention_heads":2"#;
        let cases = [
            (r#""model_type":"mistral""#, "model_type"),
            (r#""architectures":["GPT2LMHeadModel"]"#, "architectures"),
            (
                r#""rope_scaling":{"rope_type":"llama3","factor":8.0}"#,
                "llama3",
            ),
            (
                r#""rope_parameters":{"rope_theta":10000.0,"rope_type":"linear"}"#,
                "linear",
            ),
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

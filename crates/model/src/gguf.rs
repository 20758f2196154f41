//! GGUF files (llama.cpp's format) of the `llama` and `qwen2` architectures: the header, the
//! config its metadata describes, and the weights under their Hugging Face names.
//!
//! llama.cpp's converter permutes the rows of llama's `attn_q` / `attn_k` so that its RoPE can
//! rotate adjacent pairs; we undo it on the stored blocks (a row is whole quantization blocks,
//! so the reorder is exact) and then run the same rotate-half RoPE and the same PEFT adapters
//! as for a Hugging Face checkpoint. In this version every weight is dequantized into the
//! compute dtype at load.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::quantized::{GgmlDType, QStorage, QTensor};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use crate::config::{Architecture, ModelConfig};
use crate::error::{ModelError, Result};

mod scan;

/// One tensor of a GGUF file, as stored.
#[derive(Debug, Clone)]
pub struct GgufTensor {
    /// The GGUF name (`blk.0.attn_q.weight`).
    pub name: String,
    /// The Hugging Face name it loads as (`model.layers.0.self_attn.q_proj.weight`).
    pub hf_name: String,
    /// Storage type (`F32`, `Q8_0`, `Q4_1`, ...).
    pub dtype: GgmlDType,
    /// Shape in Hugging Face order (`[out, in]` for a linear weight).
    pub shape: Vec<usize>,
}

impl GgufTensor {
    /// Bytes the tensor takes in the file.
    pub fn stored_bytes(&self) -> usize {
        let elems: usize = self.shape.iter().product();
        elems / self.dtype.block_size() * self.dtype.type_size()
    }
}

/// An opened GGUF file: metadata read and checked, tensors listed, weights not yet loaded.
#[derive(Debug)]
pub struct GgufFile {
    /// The file.
    pub path: PathBuf,
    /// The model config the metadata describes (also what `model import` writes as `config.json`).
    pub config: ModelConfig,
    content: Content,
    tensors: Vec<GgufTensor>,
}

impl GgufFile {
    /// Reads the header of `path` and checks that this runtime can run it: a known
    /// architecture, complete metadata, tensor types candle can dequantize, and tensor names
    /// that map to the architecture's modules. Errors name the file and the field or tensor.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let mut file = File::open(&path).map_err(|e| ModelError::io(&path, e))?;
        let content = Content::read(&mut file).map_err(|e| {
            // candle stops at the first tensor type it does not know without naming the
            // tensor: find it ourselves so the message says which tensor and which type.
            match scan::first_unsupported_tensor(&path) {
                Some((tensor, type_name)) => ModelError::gguf(
                    &path,
                    tensor,
                    format!(
                        "tensor type {type_name} is not supported (supported: F32, F16, BF16, \
                         Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K..Q6_K)"
                    ),
                ),
                None => ModelError::gguf(&path, "header", format!("not a readable GGUF file: {e}")),
            }
        })?;
        let meta = Metadata {
            path: &path,
            values: &content.metadata,
        };
        let arch_name = meta.string("general.architecture")?;
        let arch = Architecture::from_model_type(arch_name).ok_or_else(|| {
            ModelError::gguf(
                &path,
                "general.architecture",
                format!("architecture {arch_name:?} is not supported (supported: llama, qwen2)"),
            )
        })?;
        let mut tensors = Vec::with_capacity(content.tensor_infos.len());
        for (name, info) in &content.tensor_infos {
            let hf_name = hf_name(name).ok_or_else(|| {
                ModelError::gguf(
                    &path,
                    name.as_str(),
                    format!("unexpected tensor for a {arch_name} model (RoPE scaling factors, vision or MoE tensors are not supported)"),
                )
            })?;
            tensors.push(GgufTensor {
                name: name.clone(),
                hf_name,
                dtype: info.ggml_dtype,
                shape: info.shape.dims().to_vec(),
            });
        }
        tensors.sort_by_key(|t| natural_key(&t.name));
        let config = config_from_metadata(&meta, arch, &tensors)?;
        Ok(Self {
            path,
            config,
            content,
            tensors,
        })
    }

    /// Every metadata key and value (`tokenizer.ggml.*`, `general.*`, `{arch}.*`).
    pub fn metadata(&self) -> &HashMap<String, Value> {
        &self.content.metadata
    }

    /// The tensors, in file-name order (`token_embd`, `blk.0.*`, ..., `output_norm`).
    pub fn tensors(&self) -> &[GgufTensor] {
        &self.tensors
    }

    /// `config.json` for this model, as a Hugging Face checkpoint would have it (absent
    /// settings are left out rather than written as `null`).
    pub fn config_json(&self) -> serde_json::Value {
        let mut json = serde_json::to_value(&self.config).unwrap_or_default();
        if let Some(map) = json.as_object_mut() {
            map.retain(|_, v| !v.is_null());
        }
        json
    }

    /// Reads every tensor, restores llama's q/k row order, and dequantizes into `dtype`:
    /// a map from Hugging Face names to tensors.
    pub fn load_tensors(&self, dtype: DType, device: &Device) -> Result<HashMap<String, Tensor>> {
        let mut file = File::open(&self.path).map_err(|e| ModelError::io(&self.path, e))?;
        let mut out = HashMap::with_capacity(self.tensors.len());
        for tensor in &self.tensors {
            let stored = self
                .content
                .tensor(&mut file, &tensor.name, &Device::Cpu)
                .map_err(|e| ModelError::gguf(&self.path, tensor.name.as_str(), e.to_string()))?;
            let stored = match self.unpermute_heads(&tensor.name) {
                Some(heads) => unpermute_rope_rows(&stored, heads).map_err(|e| {
                    ModelError::gguf(&self.path, tensor.name.as_str(), e.to_string())
                })?,
                None => stored,
            };
            let dense = stored
                .dequantize(device)
                .and_then(|t| t.to_dtype(dtype))
                .map_err(|e| ModelError::gguf(&self.path, tensor.name.as_str(), e.to_string()))?;
            out.insert(tensor.hf_name.clone(), dense);
        }
        Ok(out)
    }

    /// A `VarBuilder` over the dequantized weights, named as in a Hugging Face checkpoint.
    pub fn var_builder(&self, dtype: DType, device: &Device) -> Result<VarBuilder<'static>> {
        let tensors = self.load_tensors(dtype, device)?;
        Ok(VarBuilder::from_tensors(tensors, dtype, device))
    }

    /// For llama's `attn_q` / `attn_k` (weight or bias): the number of heads whose rows the
    /// converter interleaved. Qwen2 files are not permuted.
    fn unpermute_heads(&self, name: &str) -> Option<usize> {
        if self.config.arch() != Architecture::Llama {
            return None;
        }
        let module = name.strip_prefix("blk.")?.split('.').nth(1)?;
        match module {
            "attn_q" => Some(self.config.num_attention_heads),
            "attn_k" => Some(self.config.num_kv_heads()),
            _ => None,
        }
    }
}

/// Undoes `convert_hf_to_gguf.py`'s `permute` on the rows of `q` (a weight `[heads·d, in]` or a
/// bias `[heads·d]`): Hugging Face row `h·d + a·d/2 + i` is GGUF row `h·d + 2i + a`. Rows are
/// moved as stored bytes, so quantized blocks are copied, never requantized.
pub(crate) fn unpermute_rope_rows(q: &QTensor, heads: usize) -> candle_core::Result<QTensor> {
    let dims = q.shape().dims().to_vec();
    let rows = dims[0];
    if heads == 0 || !rows.is_multiple_of(heads) || !(rows / heads).is_multiple_of(2) {
        candle_core::bail!("{rows} rows do not split into {heads} heads of even width");
    }
    let data = q.data()?;
    let row_bytes = data.len() / rows;
    let d = rows / heads;
    let mut out = Vec::with_capacity(data.len());
    for r in 0..rows {
        let (h, rem) = (r / d, r % d);
        let (a, i) = (rem / (d / 2), rem % (d / 2));
        let src = h * d + 2 * i + a;
        out.extend_from_slice(&data[src * row_bytes..(src + 1) * row_bytes]);
    }
    let storage = QStorage::from_data(std::borrow::Cow::Owned(out), &Device::Cpu, q.dtype())?;
    QTensor::new(storage, dims)
}

/// The Hugging Face name of a GGUF tensor of the llama / qwen2 layout, if it is one.
pub fn hf_name(gguf: &str) -> Option<String> {
    let fixed = match gguf {
        "token_embd.weight" => Some("model.embed_tokens.weight"),
        "output_norm.weight" => Some("model.norm.weight"),
        "output.weight" => Some("lm_head.weight"),
        _ => None,
    };
    if let Some(name) = fixed {
        return Some(name.to_string());
    }
    let rest = gguf.strip_prefix("blk.")?;
    let (layer, rest) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let (module, param) = rest.split_once('.')?;
    if param != "weight" && param != "bias" {
        return None;
    }
    let hf_module = match module {
        "attn_norm" => "input_layernorm",
        "ffn_norm" => "post_attention_layernorm",
        "attn_q" => "self_attn.q_proj",
        "attn_k" => "self_attn.k_proj",
        "attn_v" => "self_attn.v_proj",
        "attn_output" => "self_attn.o_proj",
        "ffn_gate" => "mlp.gate_proj",
        "ffn_up" => "mlp.up_proj",
        "ffn_down" => "mlp.down_proj",
        _ => return None,
    };
    if hf_module.ends_with("layernorm") && param == "bias" {
        return None;
    }
    Some(format!("model.layers.{layer}.{hf_module}.{param}"))
}

/// Sorts `blk.10` after `blk.9`.
fn natural_key(name: &str) -> (u8, usize, String) {
    match name.strip_prefix("blk.").and_then(|r| r.split_once('.')) {
        Some((layer, rest)) => (1, layer.parse().unwrap_or(usize::MAX), rest.to_string()),
        None if name.starts_with("token_embd") => (0, 0, name.to_string()),
        None => (2, 0, name.to_string()),
    }
}

/// Typed access to metadata values, with errors naming the key.
struct Metadata<'a> {
    path: &'a Path,
    values: &'a HashMap<String, Value>,
}

impl Metadata<'_> {
    fn get(&self, key: &str) -> Result<&Value> {
        self.values
            .get(key)
            .ok_or_else(|| ModelError::gguf(self.path, key, "missing from the metadata"))
    }

    fn string(&self, key: &str) -> Result<&str> {
        self.get(key)?
            .to_string()
            .map(String::as_str)
            .map_err(|_| ModelError::gguf(self.path, key, "expected a string"))
    }

    fn uint(&self, key: &str) -> Result<usize> {
        value_as_u64(self.get(key)?)
            .map(|v| v as usize)
            .ok_or_else(|| ModelError::gguf(self.path, key, "expected a non-negative integer"))
    }

    fn opt_uint(&self, key: &str) -> Result<Option<usize>> {
        if self.values.contains_key(key) {
            self.uint(key).map(Some)
        } else {
            Ok(None)
        }
    }

    fn opt_float(&self, key: &str) -> Result<Option<f64>> {
        match self.values.get(key) {
            None => Ok(None),
            Some(Value::F32(v)) => Ok(Some(*v as f64)),
            Some(Value::F64(v)) => Ok(Some(*v)),
            Some(_) => Err(ModelError::gguf(self.path, key, "expected a float")),
        }
    }
}

/// Any non-negative integer value as `u64`.
pub(crate) fn value_as_u64(value: &Value) -> Option<u64> {
    match *value {
        Value::U8(v) => Some(v as u64),
        Value::U16(v) => Some(v as u64),
        Value::U32(v) => Some(v as u64),
        Value::U64(v) => Some(v),
        Value::I8(v) => u64::try_from(v).ok(),
        Value::I16(v) => u64::try_from(v).ok(),
        Value::I32(v) => u64::try_from(v).ok(),
        Value::I64(v) => u64::try_from(v).ok(),
        _ => None,
    }
}

/// The `config.json` the metadata describes, checked against the tensors present.
fn config_from_metadata(
    meta: &Metadata,
    arch: Architecture,
    tensors: &[GgufTensor],
) -> Result<ModelConfig> {
    let a = arch.model_type();
    let key = |k: &str| format!("{a}.{k}");
    let has = |name: &str| tensors.iter().any(|t| t.name == name);
    let heads = meta.uint(&key("attention.head_count"))?;
    let kv_heads = meta
        .opt_uint(&key("attention.head_count_kv"))?
        .unwrap_or(heads);
    let hidden = meta.uint(&key("embedding_length"))?;
    let head_dim = meta.opt_uint(&key("attention.key_length"))?;
    let rot_dim = meta.opt_uint(&key("rope.dimension_count"))?;
    let effective_head_dim = head_dim.unwrap_or(hidden / heads.max(1));
    if let Some(rot) = rot_dim.filter(|&r| r != effective_head_dim) {
        return Err(ModelError::gguf(
            meta.path,
            key("rope.dimension_count"),
            format!(
                "partial rotary embeddings ({rot} of {effective_head_dim} dims) are not supported"
            ),
        ));
    }
    if let Ok(kind) = meta.string(&key("rope.scaling.type")) {
        if kind != "none" {
            return Err(ModelError::gguf(
                meta.path,
                key("rope.scaling.type"),
                format!("RoPE scaling {kind:?} is not supported"),
            ));
        }
    }
    let vocab = match meta.opt_uint(&key("vocab_size"))? {
        Some(v) => v,
        None => tensors
            .iter()
            .find(|t| t.name == "token_embd.weight")
            .and_then(|t| t.shape.first().copied())
            .ok_or_else(|| ModelError::gguf(meta.path, "token_embd.weight", "missing"))?,
    };
    let token_id = |k: &str| -> Result<Option<u32>> {
        Ok(meta
            .opt_uint(&format!("tokenizer.ggml.{k}"))?
            .map(|v| v as u32))
    };
    let json = serde_json::json!({
        "architectures": [arch.class_name()],
        "model_type": a,
        "vocab_size": vocab,
        "hidden_size": hidden,
        "intermediate_size": meta.uint(&key("feed_forward_length"))?,
        "num_hidden_layers": meta.uint(&key("block_count"))?,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "head_dim": effective_head_dim,
        "max_position_embeddings": meta.opt_uint(&key("context_length"))?.unwrap_or(2048),
        "rms_norm_eps": meta.opt_float(&key("attention.layer_norm_rms_epsilon"))?.unwrap_or(1e-6),
        "rope_theta": meta.opt_float(&key("rope.freq_base"))?.unwrap_or(10_000.0),
        "tie_word_embeddings": !has("output.weight"),
        "attention_bias": arch == Architecture::Llama && has("blk.0.attn_q.bias"),
        "mlp_bias": arch == Architecture::Llama && has("blk.0.ffn_gate.bias"),
        "hidden_act": "silu",
        "torch_dtype": "float32",
        "bos_token_id": token_id("bos_token_id")?,
        "eos_token_id": token_id("eos_token_id")?,
        "pad_token_id": token_id("padding_token_id")?,
    });
    let config: ModelConfig = serde_json::from_value(json)
        .map_err(|e| ModelError::gguf(meta.path, a, format!("inconsistent metadata: {e}")))?;
    config
        .validate()
        .map_err(|reason| ModelError::gguf(meta.path, a, reason))?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_every_llama_tensor_name() {
        assert_eq!(
            hf_name("blk.12.attn_output.weight").as_deref(),
            Some("model.layers.12.self_attn.o_proj.weight")
        );
        assert_eq!(
            hf_name("blk.0.attn_q.bias").as_deref(),
            Some("model.layers.0.self_attn.q_proj.bias")
        );
        assert_eq!(hf_name("output.weight").as_deref(), Some("lm_head.weight"));
        assert_eq!(hf_name("rope_freqs.weight"), None);
        assert_eq!(hf_name("blk.x.attn_q.weight"), None);
        assert_eq!(hf_name("blk.0.attn_norm.bias"), None);
    }

    /// Applying llama.cpp's permutation (as its converter does) and then ours is the identity.
    #[test]
    fn unpermute_inverts_the_converter() -> candle_core::Result<()> {
        let (heads, d, cols) = (3usize, 8usize, 32usize);
        let rows = heads * d;
        let hf: Vec<f32> = (0..rows * cols).map(|v| v as f32).collect();
        // convert_hf_to_gguf.py: w.reshape(heads, 2, d/2, cols).swapaxes(1, 2).reshape(rows, cols)
        let hf_t = Tensor::from_vec(hf.clone(), (rows, cols), &Device::Cpu)?;
        let permuted = hf_t
            .reshape((heads, 2, d / 2, cols))?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((rows, cols))?;
        for dtype in [GgmlDType::F32, GgmlDType::Q8_0, GgmlDType::Q4_1] {
            let q = QTensor::quantize(&permuted, dtype)?;
            let back = unpermute_rope_rows(&q, heads)?.dequantize(&Device::Cpu)?;
            let expected = QTensor::quantize(&hf_t, dtype)?.dequantize(&Device::Cpu)?;
            let diff = (back - expected)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert_eq!(diff, 0.0, "{dtype:?}: row reorder must be exact");
        }
        Ok(())
    }
}

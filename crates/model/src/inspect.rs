//! What a model is made of, read from its files' headers without loading any weight: every
//! tensor with its storage type and size, the parameter count and the memory the model needs
//! (what `switchboard model inspect` reports).

use std::io::Read;
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::Value;
use candle_core::quantized::GgmlDType;
use candle_core::DType;

use crate::config::ModelConfig;
use crate::error::{ModelError, Result};
use crate::source::ModelSource;

/// One stored tensor, as its file's header describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTensor {
    /// The Hugging Face name (`model.layers.0.self_attn.q_proj.weight`), whatever the file
    /// calls it.
    pub name: String,
    /// The storage type as its format spells it: `F32`, `BF16`, `Q8_0`, `Q6_K`...
    pub storage: String,
    /// Shape in Hugging Face order (`[out, in]` for a linear weight).
    pub shape: Vec<usize>,
    /// Bytes the tensor takes in the file.
    pub bytes: u64,
}

impl StoredTensor {
    /// Number of elements (parameters).
    pub fn elements(&self) -> u64 {
        self.shape.iter().map(|&d| d as u64).product()
    }
}

/// The tensors of an opened model, sorted by name, from the GGUF header or the safetensors
/// headers (memory-mapped; no tensor data is read).
pub fn stored_tensors(source: &ModelSource) -> Result<Vec<StoredTensor>> {
    let mut tensors = match source {
        ModelSource::Gguf(gguf) => gguf
            .tensors()
            .iter()
            .map(|t| StoredTensor {
                name: t.hf_name.clone(),
                storage: ggml_type_name(t.dtype).to_string(),
                shape: t.shape.clone(),
                bytes: t.stored_bytes() as u64,
            })
            .collect(),
        ModelSource::Checkpoint(checkpoint) => safetensors_tensors(&checkpoint.weight_files)?,
    };
    tensors.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(tensors)
}

/// The tensors listed in the headers of safetensors files (memory-mapped; no data is read).
pub fn safetensors_tensors(files: &[PathBuf]) -> Result<Vec<StoredTensor>> {
    let mut tensors = Vec::new();
    for path in files {
        let file = std::fs::File::open(path).map_err(|e| ModelError::io(path, e))?;
        // SAFETY: read-only mapping of a file we do not modify, dropped before returning.
        let mmap = unsafe { crate::checkpoint::memmap_file(&file) }
            .map_err(|e| ModelError::io(path, e))?;
        let (_, metadata) = safetensors::SafeTensors::read_metadata(&mmap).map_err(|e| {
            ModelError::Safetensors {
                path: path.clone(),
                reason: e.to_string(),
            }
        })?;
        for (name, info) in metadata.tensors() {
            let (start, end) = info.data_offsets;
            tensors.push(StoredTensor {
                name,
                storage: format!("{:?}", info.dtype),
                shape: info.shape.clone(),
                bytes: end.saturating_sub(start) as u64,
            });
        }
    }
    tensors.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(tensors)
}

/// Total parameters: every stored element (a tied head is stored, and so counted, once).
pub fn parameter_count(tensors: &[StoredTensor]) -> u64 {
    tensors.iter().map(StoredTensor::elements).sum()
}

/// Bytes of KV cache one token takes: keys and values of every layer, in `dtype`.
pub fn kv_cache_bytes_per_token(config: &ModelConfig, dtype: DType) -> u64 {
    2 * config.num_hidden_layers as u64
        * config.num_kv_heads() as u64
        * config.head_dim() as u64
        * dtype.size_in_bytes() as u64
}

/// llama.cpp's name of a GGUF tensor type (`Q4_K`, not candle's `Q4K`).
pub fn ggml_type_name(dtype: GgmlDType) -> &'static str {
    match dtype {
        GgmlDType::F32 => "F32",
        GgmlDType::F16 => "F16",
        GgmlDType::BF16 => "BF16",
        GgmlDType::Q4_0 => "Q4_0",
        GgmlDType::Q4_1 => "Q4_1",
        GgmlDType::Q5_0 => "Q5_0",
        GgmlDType::Q5_1 => "Q5_1",
        GgmlDType::Q8_0 => "Q8_0",
        GgmlDType::Q8_1 => "Q8_1",
        GgmlDType::Q2K => "Q2_K",
        GgmlDType::Q3K => "Q3_K",
        GgmlDType::Q4K => "Q4_K",
        GgmlDType::Q5K => "Q5_K",
        GgmlDType::Q6K => "Q6_K",
        GgmlDType::Q8K => "Q8_K",
    }
}

/// The format version in a GGUF file's header (the `u32` after the magic bytes).
pub fn gguf_version(path: &Path) -> Result<u32> {
    let mut header = [0u8; 8];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut header))
        .map_err(|e| ModelError::io(path, e))?;
    if &header[..4] != b"GGUF" {
        return Err(ModelError::gguf(path, "header", "no GGUF magic bytes"));
    }
    Ok(u32::from_le_bytes([
        header[4], header[5], header[6], header[7],
    ]))
}

/// The quantization a GGUF file's `general.file_type` (llama.cpp's `llama_ftype`) names.
pub fn gguf_file_type_name(file_type: u32) -> Option<&'static str> {
    Some(match file_type {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K",
        11 => "Q3_K_S",
        12 => "Q3_K_M",
        13 => "Q3_K_L",
        14 => "Q4_K_S",
        15 => "Q4_K_M",
        16 => "Q5_K_S",
        17 => "Q5_K_M",
        18 => "Q6_K",
        19 => "IQ2_XXS",
        20 => "IQ2_XS",
        21 => "Q2_K_S",
        22 => "IQ3_XS",
        23 => "IQ3_XXS",
        24 => "IQ1_S",
        25 => "IQ4_NL",
        26 => "IQ3_S",
        27 => "IQ3_M",
        28 => "IQ2_S",
        29 => "IQ2_M",
        30 => "IQ4_XS",
        31 => "IQ1_M",
        32 => "BF16",
        36 => "TQ1_0",
        37 => "TQ2_0",
        _ => return None,
    })
}

/// A GGUF metadata value as JSON: scalars as they are, arrays of up to 16 elements in full and
/// longer ones as `"[N items]"` (a vocabulary is not something to print).
pub fn gguf_value_json(value: &Value) -> serde_json::Value {
    use serde_json::json;
    match value {
        Value::U8(v) => json!(v),
        Value::I8(v) => json!(v),
        Value::U16(v) => json!(v),
        Value::I16(v) => json!(v),
        Value::U32(v) => json!(v),
        Value::I32(v) => json!(v),
        Value::U64(v) => json!(v),
        Value::I64(v) => json!(v),
        Value::F32(v) => json!(v),
        Value::F64(v) => json!(v),
        Value::Bool(v) => json!(v),
        Value::String(v) => json!(v),
        Value::Array(items) if items.len() <= 16 => {
            serde_json::Value::Array(items.iter().map(gguf_value_json).collect())
        }
        Value::Array(items) => json!(format!("[{} items]", items.len())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_cache_counts_keys_and_values_of_every_layer() {
        let config: ModelConfig = serde_json::from_value(serde_json::json!({
            "vocab_size": 10, "hidden_size": 576, "intermediate_size": 16,
            "num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3,
        }))
        .expect("config");
        assert_eq!(
            kv_cache_bytes_per_token(&config, DType::F32),
            2 * 30 * 3 * 64 * 4
        );
    }

    #[test]
    fn names_types_as_llama_cpp_does() {
        assert_eq!(ggml_type_name(GgmlDType::Q6K), "Q6_K");
        assert_eq!(gguf_file_type_name(3), Some("Q4_1"));
        assert_eq!(gguf_file_type_name(4), None);
    }
}

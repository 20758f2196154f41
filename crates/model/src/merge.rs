//! Fusing a LoRA adapter into its base: `W' = W + scale * B A` for every targeted module,
//! written as a normal Hugging Face checkpoint that this crate and transformers both load.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};

use crate::adapter::LoraAdapter;
use crate::checkpoint::Checkpoint;
use crate::error::{ModelError, Result};

/// What a merge did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeReport {
    /// Modules whose weight received a LoRA delta.
    pub merged_modules: usize,
    /// Tensors written to the output checkpoint.
    pub tensors: usize,
    /// Non-weight files (config, tokenizer...) copied from the base.
    pub copied_files: Vec<String>,
}

/// Merges the PEFT adapter in `adapter_dir` into the checkpoint in `base_dir` and writes the
/// result to the new directory `out_dir` (atomically; an existing non-empty `out_dir` is refused).
///
/// Weights keep their stored dtype; the delta is computed in f32.
pub fn merge_adapter(base_dir: &Path, adapter_dir: &Path, out_dir: &Path) -> Result<MergeReport> {
    let checkpoint = Checkpoint::open(base_dir)?;
    let adapter = LoraAdapter::load(adapter_dir, &checkpoint.config, DType::F32, &Device::Cpu)?;

    let mut tensors: HashMap<String, Tensor> = HashMap::new();
    for file in &checkpoint.weight_files {
        let loaded = candle_core::safetensors::load(file, &Device::Cpu).map_err(|e| {
            ModelError::Safetensors {
                path: file.clone(),
                reason: e.to_string(),
            }
        })?;
        tensors.extend(loaded);
    }
    let mut merged_modules = 0;
    for (layer, proj, pair) in adapter.pairs() {
        let key = format!("{}.weight", proj.module_path(layer));
        let Some(weight) = tensors.get(&key) else {
            return Err(ModelError::MissingFile {
                path: base_dir.to_path_buf(),
                reason: format!("checkpoint has no tensor {key}"),
            });
        };
        let fused =
            (weight.to_dtype(DType::F32)? + pair.dense_delta()?)?.to_dtype(weight.dtype())?;
        tensors.insert(key, fused);
        merged_modules += 1;
    }

    let mut sorted: Vec<(String, Tensor)> = tensors.into_iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let n_tensors = sorted.len();
    let mut copied_files = Vec::new();
    crate::io::write_dir(out_dir, |tmp| {
        let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
        crate::io::write_safetensors(&tmp.join("model.safetensors"), &sorted, Some(metadata))?;
        let entries = std::fs::read_dir(base_dir).map_err(|e| ModelError::io(base_dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| ModelError::io(base_dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let is_weights =
                name.ends_with(".safetensors") || name == "model.safetensors.index.json";
            if is_weights || !entry.path().is_file() {
                continue;
            }
            std::fs::copy(entry.path(), tmp.join(&name))
                .map_err(|e| ModelError::io(entry.path(), e))?;
            copied_files.push(name);
        }
        Ok(())
    })?;
    copied_files.sort();
    Ok(MergeReport {
        merged_modules,
        tensors: n_tensors,
        copied_files,
    })
}

//! Locating and opening a Hugging Face checkpoint directory: `config.json` plus
//! `model.safetensors` or a sharded `model.safetensors.index.json`, memory-mapped.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use candle_nn::VarBuilder;

use crate::config::ModelConfig;
use crate::error::{ModelError, Result};

/// A checkpoint directory whose files have been found and checked, not yet loaded.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// The directory.
    pub dir: PathBuf,
    /// The parsed and validated `config.json`.
    pub config: ModelConfig,
    /// The safetensors files holding the weights (one, or every shard of the index).
    pub weight_files: Vec<PathBuf>,
}

impl Checkpoint {
    /// Finds `config.json` and the weight files of `dir`, and checks that every weight file is
    /// well-formed safetensors (so a corrupt or truncated file is reported by name, before mmap).
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        if !dir.is_dir() {
            return Err(ModelError::MissingFile {
                path: dir,
                reason: "checkpoint directory does not exist".into(),
            });
        }
        let config_path = dir.join("config.json");
        if !config_path.is_file() {
            return Err(ModelError::MissingFile {
                path: config_path,
                reason: "missing config.json".into(),
            });
        }
        let config = ModelConfig::from_file(&config_path)?;
        let weight_files = find_weight_files(&dir)?;
        for file in &weight_files {
            check_safetensors(file)?;
        }
        Ok(Self {
            dir,
            config,
            weight_files,
        })
    }

    /// A `VarBuilder` over the memory-mapped weights, converting every tensor to `dtype`.
    pub fn var_builder(&self, dtype: DType, device: &Device) -> Result<VarBuilder<'static>> {
        // SAFETY: the files are mapped read-only; like every mmap-based loader we assume that no
        // other process truncates them while they are mapped. Headers were checked in `open`.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&self.weight_files, dtype, device)? };
        Ok(vb)
    }
}

/// The weight files of a checkpoint: `model.safetensors`, or the shards named by the index.
pub fn find_weight_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(vec![single]);
    }
    let index = dir.join("model.safetensors.index.json");
    if index.is_file() {
        return shards_of_index(&index);
    }
    if dir.join("pytorch_model.bin").is_file() {
        return Err(ModelError::MissingFile {
            path: dir.join("pytorch_model.bin"),
            reason: "pickle checkpoints are not loaded (they can run code); convert to safetensors"
                .into(),
        });
    }
    Err(ModelError::MissingFile {
        path: dir.to_path_buf(),
        reason: "no model.safetensors or model.safetensors.index.json".into(),
    })
}

fn shards_of_index(index: &Path) -> Result<Vec<PathBuf>> {
    let text = std::fs::read_to_string(index).map_err(|e| ModelError::io(index, e))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|source| ModelError::Json {
            path: index.to_path_buf(),
            source,
        })?;
    let Some(map) = json.get("weight_map").and_then(|m| m.as_object()) else {
        return Err(ModelError::MissingFile {
            path: index.to_path_buf(),
            reason: "index has no \"weight_map\" object".into(),
        });
    };
    let dir = index.parent().unwrap_or(Path::new("."));
    let mut names = BTreeSet::new();
    for (tensor, file) in map {
        let Some(file) = file.as_str() else {
            return Err(ModelError::MissingFile {
                path: index.to_path_buf(),
                reason: format!("weight_map entry {tensor:?} is not a file name"),
            });
        };
        // Shard names are plain file names; refuse paths that leave the checkpoint directory.
        if Path::new(file).components().count() != 1 {
            return Err(ModelError::MissingFile {
                path: index.to_path_buf(),
                reason: format!("shard name {file:?} is not a plain file name"),
            });
        }
        names.insert(file.to_string());
    }
    let mut files = Vec::with_capacity(names.len());
    for name in names {
        let path = dir.join(&name);
        if !path.is_file() {
            return Err(ModelError::MissingFile {
                path,
                reason: format!("shard listed in {} is missing", index.display()),
            });
        }
        files.push(path);
    }
    Ok(files)
}

/// Validates a safetensors file's header and data extent without loading its tensors.
pub fn check_safetensors(path: &Path) -> Result<()> {
    let file = std::fs::File::open(path).map_err(|e| ModelError::io(path, e))?;
    // SAFETY: read-only mapping, dropped before returning.
    let mmap = unsafe { memmap_file(&file) }.map_err(|e| ModelError::io(path, e))?;
    safetensors::SafeTensors::deserialize(&mmap).map_err(|e| ModelError::Safetensors {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    Ok(())
}

/// Memory-maps a file read-only.
///
/// # Safety
/// The caller must not let the file be modified while the map is alive.
pub(crate) unsafe fn memmap_file(file: &std::fs::File) -> std::io::Result<memmap2::Mmap> {
    // SAFETY: forwarded to the caller.
    unsafe { memmap2::MmapOptions::new().map(file) }
}

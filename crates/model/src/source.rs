//! Where a base model's weights come from: a Hugging Face checkpoint directory or a GGUF file.

use std::path::Path;

use candle_core::{DType, Device};
use candle_nn::VarBuilder;

use crate::checkpoint::Checkpoint;
use crate::config::ModelConfig;
use crate::error::{ModelError, Result};
use crate::gguf::GgufFile;

/// An opened model: its files found and its config read, weights not yet loaded.
#[derive(Debug)]
pub enum ModelSource {
    /// `config.json` + safetensors.
    Checkpoint(Checkpoint),
    /// One `.gguf` file (weights, config and tokenizer in its metadata).
    Gguf(GgufFile),
}

impl ModelSource {
    /// Opens a checkpoint directory, or a GGUF file (recognised by its magic bytes, whatever
    /// its extension).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        if path.is_file() {
            if !is_gguf(path)? {
                return Err(ModelError::MissingFile {
                    path: path.to_path_buf(),
                    reason: "not a GGUF file (and a Hugging Face checkpoint is a directory)".into(),
                });
            }
            return Ok(Self::Gguf(GgufFile::open(path)?));
        }
        Ok(Self::Checkpoint(Checkpoint::open(path)?))
    }

    /// The model's config.
    pub fn config(&self) -> &ModelConfig {
        match self {
            Self::Checkpoint(c) => &c.config,
            Self::Gguf(g) => &g.config,
        }
    }

    /// The directory or file it was opened from.
    pub fn path(&self) -> &Path {
        match self {
            Self::Checkpoint(c) => &c.dir,
            Self::Gguf(g) => &g.path,
        }
    }

    /// A `VarBuilder` over the weights under their Hugging Face names, in `dtype`.
    pub fn var_builder(&self, dtype: DType, device: &Device) -> Result<VarBuilder<'static>> {
        match self {
            Self::Checkpoint(c) => c.var_builder(dtype, device),
            Self::Gguf(g) => g.var_builder(dtype, device),
        }
    }
}

/// Whether the file starts with GGUF's magic bytes.
pub fn is_gguf(path: &Path) -> Result<bool> {
    use std::io::Read;
    let mut magic = [0u8; 4];
    let mut file = std::fs::File::open(path).map_err(|e| ModelError::io(path, e))?;
    match file.read_exact(&mut magic) {
        Ok(()) => Ok(&magic == b"GGUF"),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(ModelError::io(path, e)),
    }
}

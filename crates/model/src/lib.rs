//! # switchboard-model
//!
//! A causal language model of the Qwen2 or Llama family on candle that applies a *different* LoRA adapter (or none)
//! to each sequence of a batch in one forward pass, and reproduces Hugging Face transformers +
//! peft numerically.
//!
//! * [`CausalLm`] loads a Hugging Face checkpoint directory ([`Checkpoint`]) or a GGUF file
//!   ([`GgufFile`]) and runs
//!   [`CausalLm::forward`] over a ragged batch of [`SeqInput`]s, each with its own tokens,
//!   [`KvCache`] and optional [`LoraAdapter`].
//! * [`LoraAdapter`] reads PEFT adapters (`adapter_config.json` + `adapter_model.safetensors`),
//!   validates them against the base and refuses what it cannot apply exactly.
//! * [`merge_adapter`] writes a fused checkpoint.
//! * [`resolve_model_dir`] finds a hub id (`Org/Name`) in the local Hugging Face cache, offline.
//!
//! The same forward serves training: build the model from a `VarMap`-backed `VarBuilder` or
//! an adapter from `Var`s ([`LoraAdapter::from_pairs`]) and call it with
//! [`ForwardMode::Differentiable`].
#![warn(missing_docs)]

mod adapter;
mod attention;
mod causal_lm;
mod checkpoint;
mod config;
mod error;
mod gguf;
mod gguf_tokenizer;
mod hub_cache;
mod inspect;
mod io;
mod kv_cache;
mod linear;
mod lora;
mod merge;
mod mode;
mod small_batch;
mod source;

pub use adapter::{AdapterConfig, LoraAdapter, TargetModules};
pub use causal_lm::{CausalLm, SeqInput};
pub use checkpoint::{check_safetensors, find_weight_files, Checkpoint};
pub use config::{Architecture, ModelConfig, RopeParameters};
pub use error::{ModelError, Result};
pub use gguf::{hf_name as gguf_hf_name, GgufFile, GgufTensor};
pub use gguf_tokenizer::{hf_tokenizer_files, HfTokenizerFiles};
pub use hub_cache::{default_hub_caches, resolve_model_dir};
pub use inspect::{
    ggml_type_name, gguf_file_type_name, gguf_value_json, gguf_version, kv_cache_bytes_per_token,
    parameter_count, safetensors_tensors, stored_tensors, StoredTensor,
};
pub use io::{write_dir, write_file, write_safetensors};
pub use kv_cache::KvCache;
pub use lora::{LoraPair, Proj};
pub use merge::{merge_adapter, MergeReport};
pub use mode::{ForwardMode, LogitsWanted};
pub use source::{is_gguf, ModelSource};

/// Re-exported so users name the same candle types as this crate.
pub use candle_core::{DType, Device, Tensor};

#[cfg(test)]
mod tests {
    /// The engine shares the model and adapters between threads behind `Arc`.
    #[test]
    fn model_and_adapters_are_shareable_across_threads() {
        fn shareable<T: Send + Sync + 'static>() {}
        shareable::<crate::CausalLm>();
        shareable::<crate::LoraAdapter>();
        shareable::<crate::KvCache>();
    }
}

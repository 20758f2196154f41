//! # switchboard-model
//!
//! A Qwen2 causal language model on candle that applies a *different* LoRA adapter (or none)
//! to each sequence of a batch in one forward pass, and reproduces Hugging Face transformers +
//! peft numerically.
//!
//! * [`Qwen2`] loads a Hugging Face checkpoint directory ([`Checkpoint`]) and runs
//!   [`Qwen2::forward`] over a ragged batch of [`SeqInput`]s, each with its own tokens,
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
mod checkpoint;
mod config;
mod error;
mod hub_cache;
mod io;
mod kv_cache;
mod lora;
mod merge;
mod qwen2;
mod small_batch;

pub use adapter::{AdapterConfig, LoraAdapter, TargetModules};
pub use checkpoint::{check_safetensors, find_weight_files, Checkpoint};
pub use config::{Qwen2Config, RopeParameters};
pub use error::{ModelError, Result};
pub use hub_cache::{default_hub_caches, resolve_model_dir};
pub use io::{write_dir, write_file, write_safetensors};
pub use kv_cache::KvCache;
pub use lora::{LoraPair, Proj};
pub use merge::{merge_adapter, MergeReport};
pub use qwen2::{ForwardMode, LogitsWanted, Qwen2, SeqInput};

/// Re-exported so users name the same candle types as this crate.
pub use candle_core::{DType, Device, Tensor};

#[cfg(test)]
mod tests {
    /// The engine shares the model and adapters between threads behind `Arc`.
    #[test]
    fn model_and_adapters_are_shareable_across_threads() {
        fn shareable<T: Send + Sync + 'static>() {}
        shareable::<crate::Qwen2>();
        shareable::<crate::LoraAdapter>();
        shareable::<crate::KvCache>();
    }
}

//! # switchboard-train
//!
//! LoRA and full fine-tuning of switchboard's causal LM (Qwen2 or Llama) (the one model implementation in
//! `switchboard-model`, run in its differentiable mode), writing adapters in PEFT's layout that
//! the server hot-loads and `peft.PeftModel.from_pretrained` reads.
//!
//! * [`train`] runs a whole job from a [`TrainConfig`] (TOML or CLI flags): data loading with
//!   per-line format detection ([`parse_record`]), chat-template rendering with the loss on
//!   assistant tokens only ([`Renderer`]), ratio mixing of named datasets ([`Sampler`]), AdamW
//!   with warmup and cosine/linear decay, gradient accumulation and clipping, validation,
//!   checkpoints that resume exactly, a JSONL log and a loss-curve PNG.
//! * [`LoraParams`] and [`FullParams`] hold the trainable variables; [`batch_nll`] is the
//!   objective; [`greedy_decode`] checks what a model learned.
//!
//! Every random choice is derived from the seed and the position in the run (step, micro-batch,
//! sequence), so a resumed run replays the uninterrupted one bit for bit.
#![warn(missing_docs)]

mod config;
mod dataset;
mod error;
mod generate;
mod loss;
mod optim;
mod params;
mod plot;
mod record;
mod rng;
mod schedule;
mod state;
mod tokenize;
mod trainer;

pub use config::{DeviceChoice, Method, TrainConfig};
pub use dataset::{load_dataset, DataSource, DataStats, Dataset, ExampleRef, Mix, Sampler};
pub use error::{Result, TrainError};
pub use generate::greedy_decode;
pub use loss::{batch_nll, LossItem};
pub use optim::{clip_grad_norm, AdamW, AdamWParams};
pub use params::{FullParams, LoraParams};
pub use plot::write_loss_plot;
pub use record::{parse_record, render_teaching_answer, Example, RecordFormat};
pub use schedule::{lr_at, LrSchedule};
pub use state::{LogRecord, StepRecord, ValRecord};
pub use tokenize::{Renderer, TokenizedExample};
pub use trainer::{train, Observer, RunInfo, Silent, TrainSummary, LOG_FILE, PLOT_FILE};

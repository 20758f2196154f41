//! # switchboard-eval
//!
//! Did this adapter make biology better, and did it break everything else? This crate answers
//! that against any OpenAI-compatible server (switchboard itself, in-process or remote, vLLM,
//! llama.cpp):
//!
//! * [`suite`]: evaluation items (multiple choice and generative) read from JSONL.
//! * [`results`]: what a run produces: per-variant, per-domain accuracy with confidence
//!   intervals, and per-item records for paired comparisons.
//! * [`prom`]: Prometheus exposition text, node-exporter textfiles and Pushgateway pushes.
#![warn(missing_docs)]

pub mod error;
pub mod prom;
pub mod results;
pub mod suite;

pub use error::{EvalError, Result};

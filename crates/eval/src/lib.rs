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
//! * [`client`]: an async OpenAI-compatible client (URL forms, retries, typed errors).
//! * [`runner`]: `eval run`, a suite over variants (base, adapters, retrieval, routing) with
//!   multiple choice scored by log-likelihood exactly as lm-evaluation-harness scores it.
#![warn(missing_docs)]

/// Per-variant, per-domain scores from item records.
pub mod aggregate;
/// `switchboard bench`: load generation and vLLM-compatible serving metrics, per adapter.
pub mod bench;
pub mod client;
/// `eval compare`: paired comparison of two runs and the promotion verdict.
pub mod compare;
pub mod error;
/// `eval judge`: two variants graded side by side by a judge model, in both orders.
pub mod judge;
/// Prometheus gauges of an evaluation run.
pub mod metrics;
pub mod prom;
/// Markdown table and PNG chart of per-domain accuracies.
pub mod report;
pub mod results;
pub mod runner;
/// Scoring one item: log-likelihood multiple choice, lettered fallback, generative metrics.
pub mod score;
/// Wilson intervals, exact McNemar, paired bootstrap, lm-eval's standard error.
pub mod stats;
pub mod suite;

pub use aggregate::summarize;
pub use compare::{compare, CompareArgs, Comparison, Verdict};
pub use error::{EvalError, Result};
pub use metrics::eval_families;
pub use report::{markdown_table, write_chart};
pub use score::{pick_choice, ChoicePick};
pub use stats::{mcnemar_exact, paired_bootstrap, wilson};

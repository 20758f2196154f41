//! `switchboard bench`: a load generator for any OpenAI-compatible server (switchboard, vLLM,
//! llama.cpp, ...), measuring what `vllm bench serve` measures under the same names, per
//! adapter as well as overall.
//!
//! A run: list the server's models (the default model, and a clear error when nothing
//! answers), build seeded prompts (cut to exact token counts with `/tokenize` when the server
//! has it), send the warmup requests, then the measured ones: closed loop (a fixed number in
//! flight) or open loop (gamma/Poisson arrivals, optionally capped), every request streamed
//! and timed chunk by chunk. Failures are counted by message and never stop the run.
//!
//! * [`workload`]: prompts and the adapter mix; `calibrate`, `prompts`: exact prompt lengths.
//! * [`request`]: one streamed, timed request; [`sse`]: the event-stream parser.
//! * `runner`: closed and open loops; `schedule`: arrival times.
//! * [`summary`], [`stats`]: vLLM's metrics; [`report`]: the result (`table`: as text);
//!   [`metrics`]: the Prometheus gauges.

mod calibrate;
pub mod metrics;
mod prompts;
pub mod report;
pub mod request;
mod runner;
mod schedule;
pub mod sse;
pub mod stats;
pub mod summary;
mod table;
pub mod workload;

use std::time::Duration;

pub use report::BenchReport;
pub use summary::{Latencies, Metrics, RequestRecord};
pub use workload::AdapterMix;

use crate::error::{EvalError, Result};

/// Which OpenAI endpoint requests go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Endpoint {
    /// `/v1/completions` with a `prompt`.
    Completions,
    /// `/v1/chat/completions` with one user message.
    Chat,
}

impl Endpoint {
    /// The path under the server root.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Completions => "/v1/completions",
            Endpoint::Chat => "/v1/chat/completions",
        }
    }

    /// vLLM's name for the backend that speaks it.
    pub fn backend(self) -> &'static str {
        match self {
            Endpoint::Completions => "openai",
            Endpoint::Chat => "openai-chat",
        }
    }
}

/// How requests are issued.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Load {
    /// `concurrency` requests always in flight: each sends its next when one finishes.
    Closed {
        /// Requests in flight.
        concurrency: usize,
    },
    /// Requests arrive on a seeded schedule whatever the server's pace.
    Open {
        /// Requests per second (`+inf`: all at once).
        rate: f64,
        /// Gamma shape of the gaps: 1 is Poisson.
        burstiness: f64,
        /// At most this many in flight; later arrivals wait.
        max_concurrency: Option<usize>,
    },
}

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// The server: its root or its `/v1`.
    pub url: String,
    /// Completions or chat.
    pub endpoint: Endpoint,
    /// The model to name (`None`: the server's first `/v1/models` entry).
    pub model: Option<String>,
    /// Which adapters requests name.
    pub mix: AdapterMix,
    /// Bearer token.
    pub api_key: Option<String>,
    /// Closed or open loop.
    pub load: Load,
    /// Stop after this many measured requests.
    pub num_prompts: Option<usize>,
    /// Stop sending after this long (requests in flight are still awaited).
    pub duration: Option<Duration>,
    /// Requests sent (and awaited) before measuring.
    pub warmup: usize,
    /// Prompt tokens.
    pub input_len: usize,
    /// `max_tokens`.
    pub output_len: usize,
    /// Send vLLM's `ignore_eos`, so every request generates `output_len` tokens.
    pub ignore_eos: bool,
    /// Sampling temperature.
    pub temperature: f64,
    /// Seed of prompts, adapter picks and arrivals.
    pub seed: u64,
    /// Whole-request timeout.
    pub timeout: Duration,
}

impl BenchConfig {
    /// Refuses settings that cannot be run, naming the flag.
    pub fn validate(&self) -> Result<()> {
        let bad = |setting: &str, reason: String| {
            Err(EvalError::BadSetting {
                setting: setting.to_string(),
                reason,
            })
        };
        match self.load {
            Load::Closed { concurrency: 0 } => {
                return bad("concurrency", "must be at least 1".into())
            }
            Load::Closed { .. } => {}
            Load::Open {
                rate,
                burstiness,
                max_concurrency,
            } => {
                schedule::Arrivals::new(rate, burstiness, self.seed)?;
                if max_concurrency == Some(0) {
                    return bad("max-concurrency", "must be at least 1".into());
                }
            }
        }
        match (self.num_prompts, self.duration) {
            (None, None) => return bad("num-prompts", "give --num-prompts or --duration".into()),
            (Some(0), _) => return bad("num-prompts", "must be at least 1".into()),
            (_, Some(d)) if d.is_zero() => return bad("duration", "must be positive".into()),
            _ => {}
        }
        if self.input_len == 0 {
            return bad("input-len", "must be at least 1".into());
        }
        if self.output_len == 0 {
            return bad("output-len", "must be at least 1".into());
        }
        if !self.temperature.is_finite() || self.temperature < 0.0 {
            return bad(
                "temperature",
                format!("must be 0 or more, not {}", self.temperature),
            );
        }
        if self.timeout.is_zero() {
            return bad("timeout", "must be positive".into());
        }
        let names = self.mix.adapters();
        let setting = match self.mix {
            AdapterMix::Weighted(_) => "adapter-weights",
            _ => "adapters",
        };
        if self.mix != AdapterMix::Single && names.is_empty() {
            return bad(setting, "name at least one adapter".into());
        }
        if let Some(name) = names.iter().find(|n| n.trim().is_empty()) {
            return bad(setting, format!("empty adapter name {name:?}"));
        }
        for (i, name) in names.iter().enumerate() {
            if names[..i].contains(name) {
                return bad(setting, format!("{name} is named twice"));
            }
        }
        if let AdapterMix::Weighted(weights) = &self.mix {
            if let Some((name, w)) = weights.iter().find(|(_, w)| !w.is_finite() || *w <= 0.0) {
                return bad(setting, format!("{name}={w}: weights must be positive"));
            }
        }
        Ok(())
    }
}

/// What the run is doing, for a progress display.
#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    /// Cutting `prompts` prompts to length with `/tokenize`.
    Calibrating {
        /// Prompts to calibrate.
        prompts: usize,
    },
    /// Sending the warmup requests.
    Warmup {
        /// How many.
        requests: usize,
    },
    /// Sending the measured requests.
    Measuring {
        /// How many (`None`: until the duration is up).
        requests: Option<usize>,
        /// The time limit, if any.
        duration: Option<Duration>,
    },
}

/// How far the current phase is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Items finished (prompts calibrated, requests answered).
    pub done: usize,
    /// Requests that failed so far.
    pub failed: usize,
    /// Time since the phase began.
    pub elapsed: Duration,
}

/// Told about phases and progress (the CLI draws a progress bar from it).
pub trait Observer: Sync {
    /// A phase begins.
    fn phase(&self, _phase: &Phase) {}
    /// Progress within the phase (on every finished item, and a few times a second).
    fn progress(&self, _progress: &Progress) {}
}

/// An observer that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Observer for Silent {}

/// Runs the benchmark `config` describes.
pub async fn run(config: &BenchConfig, observer: &dyn Observer) -> Result<BenchReport> {
    config.validate()?;
    runner::run(config, observer).await
}

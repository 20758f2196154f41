//! `switchboard bench`: load-test any OpenAI-compatible server (this one, vLLM, llama.cpp, ...)
//! and report what `vllm bench serve` reports, overall and per adapter: a table on stdout,
//! optionally a JSON file and Prometheus gauges (Pushgateway and/or node-exporter textfile).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use switchboard_eval::bench::{
    self, metrics, AdapterMix, BenchConfig, BenchReport, Endpoint, Load, Observer, Phase, Progress,
};
use switchboard_eval::EvalError;

/// Measured requests when neither `--num-prompts` nor `--duration` is given.
const DEFAULT_NUM_PROMPTS: usize = 100;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// The server: `http://host:port` (its `/v1` may be included).
    #[arg(long)]
    url: String,
    /// Which endpoint requests go to.
    #[arg(long, value_enum, default_value_t = Endpoint::Completions)]
    endpoint: Endpoint,
    /// Model to name in requests without an adapter, and to ask `/tokenize` about
    /// [default: the first entry of /v1/models].
    #[arg(long)]
    model: Option<String>,
    /// Spread requests over these adapters (comma-separated names, sent as `model`).
    #[arg(long, value_delimiter = ',', conflicts_with = "adapter_weights")]
    adapters: Vec<String>,
    /// How requests pick among `--adapters`.
    #[arg(long, value_enum, default_value_t = Mix::Uniform, requires = "adapters")]
    mix: Mix,
    /// Weighted adapter mix: `a=3,b=1` sends three requests to `a` for each one to `b`.
    #[arg(long, value_delimiter = ',')]
    adapter_weights: Vec<String>,
    /// Bearer token for the server.
    #[arg(long, env = "OPENAI_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Closed loop: keep this many requests in flight [default: 1].
    #[arg(long, value_parser = at_least_one, conflicts_with = "request_rate")]
    concurrency: Option<usize>,
    /// Open loop: requests per second, Poisson arrivals (`inf`: all at once).
    #[arg(long, value_parser = positive_rate)]
    request_rate: Option<f64>,
    /// Gamma shape of open-loop arrival gaps: 1 is Poisson, below 1 burstier.
    #[arg(long, default_value_t = 1.0, requires = "request_rate")]
    burstiness: f64,
    /// Open loop: at most this many requests in flight (later arrivals wait).
    #[arg(long, value_parser = at_least_one, requires = "request_rate")]
    max_concurrency: Option<usize>,
    /// Measured requests [default: 100 unless --duration is given].
    #[arg(long, value_parser = at_least_one)]
    num_prompts: Option<usize>,
    /// Stop sending after this many seconds (requests in flight are awaited).
    #[arg(long, value_parser = positive_seconds)]
    duration: Option<f64>,
    /// Requests sent first and not measured (round-robin over the adapters).
    #[arg(long, default_value_t = 0)]
    warmup: usize,
    /// Prompt tokens (exact when the server has /tokenize).
    #[arg(long, default_value_t = 1024, value_parser = at_least_one)]
    input_len: usize,
    /// `max_tokens` of every request.
    #[arg(long, default_value_t = 128, value_parser = at_least_one)]
    output_len: usize,
    /// Send vLLM's `ignore_eos`, so every request generates exactly --output-len tokens.
    #[arg(long)]
    ignore_eos: bool,
    /// Sampling temperature.
    #[arg(long, default_value_t = 0.0)]
    temperature: f64,
    /// Seed of prompts, adapter picks and arrival times.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Seconds a request may take before it counts as failed.
    #[arg(long, default_value_t = 600.0, value_parser = positive_seconds)]
    timeout: f64,
    /// Write the result JSON here (vLLM's keys, plus `per_adapter` and `errors`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Push gauges to this Pushgateway (job `switchboard_bench`, grouped by scenario).
    #[arg(long)]
    pushgateway: Option<String>,
    /// Write gauges to this node-exporter textfile (`*.prom`).
    #[arg(long)]
    textfile: Option<PathBuf>,
    /// Scenario label of the gauges [default: from the settings, e.g.
    /// `completions-golden-a+golden-b-in16-out8-c4`].
    #[arg(long)]
    scenario: Option<String>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Mix {
    /// Each request picks an adapter at random (seeded).
    Uniform,
    /// Request i goes to adapter i mod n.
    RoundRobin,
}

fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

fn positive_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(r) if r > 0.0 => Ok(r),
        Ok(r) => Err(format!(
            "{r} requests per second would send nothing; give a positive rate (or `inf`)"
        )),
        Err(e) => Err(e.to_string()),
    }
}

fn positive_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if s > 0.0 && s.is_finite() => Ok(s),
        Ok(s) => Err(format!("{s}: must be a positive number of seconds")),
        Err(e) => Err(e.to_string()),
    }
}

impl BenchArgs {
    fn config(&self) -> Result<BenchConfig> {
        let mix = if !self.adapter_weights.is_empty() {
            let weights = self
                .adapter_weights
                .iter()
                .map(|pair| {
                    let (name, weight) = pair.split_once('=').with_context(|| {
                        format!("--adapter-weights {pair:?}: expected NAME=WEIGHT")
                    })?;
                    let weight: f64 = weight
                        .trim()
                        .parse()
                        .with_context(|| format!("--adapter-weights {pair:?}: bad weight"))?;
                    Ok((name.trim().to_string(), weight))
                })
                .collect::<Result<Vec<_>>>()?;
            AdapterMix::Weighted(weights)
        } else if self.adapters.is_empty() {
            AdapterMix::Single
        } else {
            let names = self.adapters.iter().map(|a| a.trim().to_string()).collect();
            match self.mix {
                Mix::Uniform => AdapterMix::Uniform(names),
                Mix::RoundRobin => AdapterMix::RoundRobin(names),
            }
        };
        let load = match self.request_rate {
            Some(rate) => Load::Open {
                rate,
                burstiness: self.burstiness,
                max_concurrency: self.max_concurrency,
            },
            None => Load::Closed {
                concurrency: self.concurrency.unwrap_or(1),
            },
        };
        let num_prompts = match (self.num_prompts, self.duration) {
            (None, None) => Some(DEFAULT_NUM_PROMPTS),
            (n, _) => n,
        };
        let config = BenchConfig {
            url: self.url.clone(),
            endpoint: self.endpoint,
            model: self.model.clone(),
            mix,
            api_key: self.api_key.clone().filter(|k| !k.trim().is_empty()),
            load,
            num_prompts,
            duration: self.duration.map(Duration::from_secs_f64),
            warmup: self.warmup,
            input_len: self.input_len,
            output_len: self.output_len,
            ignore_eos: self.ignore_eos,
            temperature: self.temperature,
            seed: self.seed,
            timeout: Duration::from_secs_f64(self.timeout),
        };
        config.validate()?;
        Ok(config)
    }
}

pub fn run(args: BenchArgs) -> Result<()> {
    let config = args.config()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let bar = Bar::new();
    let outcome = runtime.block_on(bench::run(&config, &bar));
    // Cleared whatever happened, so an error message is not drawn over by the bar.
    bar.bar.finish_and_clear();
    let report = outcome.map_err(|e| {
        let what = match e {
            EvalError::Unreachable { .. } => format!("cannot reach the server at {}", args.url),
            _ => format!("benchmarking {}", args.url),
        };
        anyhow::Error::from(e).context(what)
    })?;
    print!("{}", report.table());
    publish(&args, &report)?;
    if report.overall.completed == 0 {
        bail!(
            "no request completed ({} failed); see the errors above",
            report.overall.failed
        );
    }
    Ok(())
}

/// Writes the JSON, the textfile and the push that were asked for; every one is attempted
/// before the first failure is returned, so one bad destination does not lose the others.
fn publish(args: &BenchArgs, report: &BenchReport) -> Result<()> {
    let mut failures = Vec::new();
    if let Some(path) = &args.out {
        let written = serde_json::to_vec_pretty(report)
            .context("serializing the report")
            .and_then(|json| {
                switchboard_eval::results::write_atomic(path, &json).map_err(anyhow::Error::from)
            })
            .with_context(|| format!("writing {}", path.display()));
        match written {
            Ok(()) => eprintln!("wrote {}", path.display()),
            Err(e) => failures.push(e),
        }
    }
    if args.textfile.is_some() || args.pushgateway.is_some() {
        let scenario = args
            .scenario
            .clone()
            .unwrap_or_else(|| report.default_scenario());
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let families = metrics::families(report, &scenario, now);
        if let Some(path) = &args.textfile {
            match switchboard_eval::prom::write_textfile(path, &families) {
                Ok(()) => eprintln!("wrote {}", path.display()),
                Err(e) => failures
                    .push(anyhow::Error::from(e).context(format!("writing {}", path.display()))),
            }
        }
        if let Some(gateway) = &args.pushgateway {
            let grouping = [("scenario", scenario.as_str())];
            // A PUT replaces its whole group, so the last-success time lives in a group of its
            // own, pushed only by runs that completed something: a failed run must not erase
            // the time of the last good one (the staleness alert depends on it).
            let (stamp, results): (Vec<_>, Vec<_>) = families
                .into_iter()
                .partition(|f| f.name().ends_with("_last_success_timestamp_seconds"));
            let mut pushes = vec![("switchboard_bench", results)];
            if stamp.iter().any(|f| !f.is_empty()) {
                pushes.push(("switchboard_bench_last_success", stamp));
            }
            for (job, families) in pushes {
                match switchboard_eval::prom::push(gateway, job, &grouping, &families) {
                    Ok(()) => eprintln!("pushed {job} to {gateway} (scenario {scenario})"),
                    Err(e) => failures.push(anyhow::Error::from(e)),
                }
            }
        }
    }
    let mut failures = failures.into_iter();
    match failures.next() {
        None => Ok(()),
        Some(first) => {
            for other in failures {
                eprintln!("error: {other:#}");
            }
            Err(first)
        }
    }
}

/// The progress bar: one per phase, by count or (for a duration-bound run) by seconds.
struct Bar {
    bar: ProgressBar,
    by_seconds: AtomicBool,
}

impl Bar {
    fn new() -> Self {
        let bar = ProgressBar::new(0);
        bar.enable_steady_tick(Duration::from_millis(200));
        Self {
            bar,
            by_seconds: AtomicBool::new(false),
        }
    }
}

impl Observer for Bar {
    fn phase(&self, phase: &Phase) {
        let (message, length, by_seconds) = match phase {
            Phase::Calibrating { prompts } => ("calibrating", *prompts as u64, false),
            Phase::Warmup { requests } => ("warmup", *requests as u64, false),
            Phase::Measuring {
                requests: Some(n), ..
            } => ("requests", *n as u64, false),
            Phase::Measuring {
                requests: None,
                duration,
            } => (
                "seconds",
                duration.map_or(0, |d| d.as_secs_f64().ceil() as u64),
                true,
            ),
        };
        self.by_seconds.store(by_seconds, Ordering::Relaxed);
        let template = if by_seconds {
            "{msg:>12} [{bar:40}] {pos}/{len}s {prefix}"
        } else {
            "{msg:>12} [{bar:40}] {pos}/{len} {prefix} ({elapsed}, eta {eta})"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            self.bar.set_style(style.progress_chars("=> "));
        }
        self.bar.reset();
        self.bar.set_length(length);
        self.bar.set_message(message);
        self.bar.set_prefix("");
    }

    fn progress(&self, progress: &Progress) {
        let failed = if progress.failed > 0 {
            format!("{} failed", progress.failed)
        } else {
            String::new()
        };
        if self.by_seconds.load(Ordering::Relaxed) {
            let limit = self.bar.length().unwrap_or(0);
            self.bar.set_position(progress.elapsed.as_secs().min(limit));
            self.bar
                .set_prefix(format!("{} done {failed}", progress.done));
        } else {
            self.bar.set_position(progress.done as u64);
            self.bar.set_prefix(failed);
        }
    }
}

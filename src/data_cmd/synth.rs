//! `switchboard data synth`: chunks → question–answer records written by a teacher model at any
//! OpenAI-compatible URL; resumable (rerun the same command after a crash, Ctrl-C or kill),
//! with token usage and cost printed at the end.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use switchboard_data::synth::{
    self, BackoffPolicy, OpenAiTeacher, SynthConfig, SynthFormat, SynthProgress, SynthReport,
};

#[derive(Args)]
pub struct SynthArgs {
    /// Chunks (JSONL: `{"id", "text", "source"?, ...}`, as `data extract` writes them).
    #[arg(long, value_name = "FILE")]
    chunks: PathBuf,
    /// The teacher's OpenAI-compatible server: `http(s)://host[:port]`, an API base
    /// (`.../v1`) or the chat completions endpoint itself.
    #[arg(long, value_name = "URL")]
    teacher_url: String,
    /// The teacher's model name.
    #[arg(long, value_name = "NAME")]
    teacher_model: String,
    /// Records (JSONL), appended to: a rerun skips the chunks already there.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Chunks the teacher could not be made to answer well (id, attempts, reason, raw reply);
    /// a rerun skips them too (delete the file to try them again) [default:
    /// `<out>.rejects.jsonl`].
    #[arg(long, value_name = "FILE")]
    rejects: Option<PathBuf>,
    /// Record format: teaching (`qa_pair` with thought process and related concepts),
    /// alpaca, openai (`messages`) or dialogue (teacher/student turns).
    #[arg(long, default_value = "teaching", value_parser = parse_format)]
    format: SynthFormat,
    /// Records asked for per chunk.
    #[arg(long, default_value_t = 3)]
    pairs_per_chunk: usize,
    /// Prompt template (minijinja) instead of the format's built-in one; placeholders
    /// `{{ chunk }}`, `{{ n }}`, `{{ source }}`, `{{ id }}`, `{{ domain }}`, `{{ format }}`.
    #[arg(long, value_name = "FILE")]
    template: Option<PathBuf>,
    /// Stamped on every record as `domain`.
    #[arg(long, value_name = "NAME")]
    domain: Option<String>,
    /// Environment variable holding the teacher's API key (none needed if it is unset).
    #[arg(long, default_value = "OPENAI_API_KEY", value_name = "VAR")]
    api_key_env: String,
    /// Replies asked per chunk before it is rejected (later attempts sample at temperature
    /// 0.7 at least, with the seed shifted, so they differ).
    #[arg(long, default_value_t = 3)]
    max_attempts: u32,
    /// Chunks in flight at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Retries of one request after 408, 429, 5xx or a connection error, waiting what
    /// `Retry-After` asks or backing off exponentially; then the run stops (rerun to resume).
    #[arg(long, default_value_t = 6)]
    max_http_retries: u32,
    /// Seconds one teacher request may take.
    #[arg(long, default_value_t = 300)]
    timeout_secs: u64,
    /// Sampling temperature (0: greedy).
    #[arg(long, default_value_t = 0.7)]
    temperature: f32,
    /// Most tokens per reply.
    #[arg(long, default_value_t = 1024)]
    max_tokens: u32,
    /// Sampling seed, for teachers that honour one.
    #[arg(long)]
    seed: Option<u64>,
    /// Only the first N chunks of the file.
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// Price per million input tokens, for the cost estimate.
    #[arg(long, default_value_t = 0.0)]
    price_input: f64,
    /// Price per million output tokens, for the cost estimate.
    #[arg(long, default_value_t = 0.0)]
    price_output: f64,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

fn parse_format(s: &str) -> std::result::Result<SynthFormat, String> {
    s.parse()
}

pub fn run(args: SynthArgs) -> Result<()> {
    if !(args.price_input >= 0.0 && args.price_output >= 0.0) {
        anyhow::bail!("--price-input and --price-output must be ≥ 0");
    }
    let chunks = synth::read_chunks(&args.chunks)
        .with_context(|| format!("reading chunks {}", args.chunks.display()))?;
    let api_key = std::env::var(&args.api_key_env)
        .ok()
        .filter(|k| !k.trim().is_empty());
    let config = SynthConfig {
        out: args.out.clone(),
        rejects: args.rejects.clone(),
        format: args.format,
        pairs_per_chunk: args.pairs_per_chunk,
        template: args.template.clone(),
        domain: args.domain.clone(),
        temperature: args.temperature,
        max_tokens: args.max_tokens,
        seed: args.seed,
        max_attempts: args.max_attempts,
        concurrency: args.concurrency,
        limit: args.limit,
        ..SynthConfig::new(&args.out)
    };
    let backoff = BackoffPolicy {
        max_retries: args.max_http_retries,
        ..BackoffPolicy::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("switchboard-synth")
        .build()
        .context("starting the tokio runtime")?;
    let bar = Bar::new(args.quiet);
    let report = runtime.block_on(async {
        let teacher = OpenAiTeacher::new(
            &args.teacher_url,
            &args.teacher_model,
            api_key,
            Duration::from_secs(args.timeout_secs),
            backoff,
        )?;
        synth::synthesize(
            &chunks,
            &config,
            &teacher,
            &bar,
            switchboard_server::shutdown_signal(),
        )
        .await
    });
    bar.bar.finish_and_clear();
    let report = report.with_context(|| {
        format!(
            "synthesizing {} into {} with {} at {}",
            args.chunks.display(),
            args.out.display(),
            args.teacher_model,
            args.teacher_url
        )
    })?;
    print!("{}", summary(&report, &args, &config));
    Ok(())
}

fn summary(report: &SynthReport, args: &SynthArgs, config: &SynthConfig) -> String {
    let mut out = String::new();
    if report.interrupted {
        out.push_str("interrupted: rerun the same command to resume\n");
    }
    out.push_str(&format!(
        "chunks: {} done, {} skipped as already done, {} rejected, {} left, of {}\n",
        report.chunks_done,
        report.skipped,
        report.rejected,
        report
            .chunks_total
            .saturating_sub(report.chunks_done + report.skipped + report.rejected),
        report.chunks_total
    ));
    out.push_str(&format!(
        "records: {} written to {} ({} repaired)\n",
        report.records_written,
        args.out.display(),
        report.repaired_records
    ));
    out.push_str(&format!(
        "retries: {} replies asked again, {} HTTP retries\n",
        report.retries, report.http_retries
    ));
    if report.rejected > 0 {
        out.push_str(&format!("rejects: {}\n", config.rejects_path().display()));
    }
    if report.removed_partial_records > 0 {
        out.push_str(&format!(
            "resumed: {} records of half-written chunks were removed and redone\n",
            report.removed_partial_records
        ));
    }
    out.push_str(&format!(
        "tokens: {} input, {} output",
        report.usage.prompt_tokens, report.usage.completion_tokens
    ));
    if args.price_input > 0.0 || args.price_output > 0.0 {
        out.push_str(&format!(
            ", cost ≈ {:.4}",
            report.cost(args.price_input, args.price_output)
        ));
    }
    out.push('\n');
    out
}

/// The progress bar, fed by the run's callbacks.
struct Bar {
    bar: ProgressBar,
}

impl Bar {
    fn new(quiet: bool) -> Self {
        let bar = if quiet {
            ProgressBar::hidden()
        } else {
            ProgressBar::new(0)
        };
        if let Ok(style) = ProgressStyle::with_template(
            "synth {bar:30} {pos}/{len} chunks [{elapsed}<{eta}] {msg}",
        ) {
            bar.set_style(style);
        }
        Self { bar }
    }
}

impl SynthProgress for Bar {
    fn started(&self, to_do: usize, _skipped: usize) {
        self.bar.set_length(to_do as u64);
    }

    fn chunk_finished(&self, _chunk_id: &str, report: &SynthReport) {
        self.bar.inc(1);
        self.bar.set_message(format!(
            "{} records, {} rejected",
            report.records_written, report.rejected
        ));
    }
}

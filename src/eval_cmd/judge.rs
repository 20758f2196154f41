//! `switchboard eval judge`: two variants answer the same prompts with the same sampling; a
//! judge model at any OpenAI-compatible URL grades both, in both orders.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use futures_util::stream::{self, StreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use switchboard_eval::client::{ClientOptions, OpenAiClient};
use switchboard_eval::judge::{self, JudgeSettings, Rubric, Sampling};
use switchboard_eval::results::write_atomic;

use super::local::{self, LocalServer, LocalSpec};
use crate::serve::bundled;

#[derive(Args)]
pub struct JudgeArgs {
    /// Prompt set (JSONL: `{"id", "prompt" | "question" | "messages", "reference"?}`)
    /// [default: the bundled evals/generative.jsonl].
    #[arg(long)]
    prompts: Option<PathBuf>,
    /// Variant A: a served model name [default: the base model].
    #[arg(long)]
    a: Option<String>,
    /// Variant B: a served model name (an adapter, or `auto`).
    #[arg(long)]
    b: String,
    /// The server answering for A and B. Without it, the model is served inside this process.
    #[arg(long)]
    url: Option<String>,
    /// Bearer key for --url.
    #[arg(long, env = "OPENAI_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Without --url: the model to load, as `serve --model` [default: bundled].
    #[arg(long, conflicts_with = "url")]
    model: Option<String>,
    /// Without --url: the adapters directory, as `serve --adapters` [default: bundled].
    #[arg(long, conflicts_with = "url")]
    adapters: Option<PathBuf>,
    /// The judge's OpenAI-compatible server (`http(s)://host[:port][/v1]`).
    #[arg(long)]
    judge_url: String,
    /// The judge's model name.
    #[arg(long)]
    judge_model: String,
    /// Bearer key for the judge.
    #[arg(long, env = "JUDGE_API_KEY", hide_env_values = true)]
    judge_api_key: Option<String>,
    /// Temperature of both variants (the same for both).
    #[arg(long, default_value_t = 0.0)]
    temperature: f32,
    /// Most tokens per answer.
    #[arg(long, default_value_t = 256)]
    max_tokens: u32,
    /// Seed of both variants' sampling and of the judge.
    #[arg(long, default_value_t = 1234)]
    seed: u64,
    /// Tries per order when the judge's reply is not in the asked format.
    #[arg(long, default_value_t = 3)]
    attempts: usize,
    /// Prompts in flight at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Judge only the first N prompts.
    #[arg(long)]
    limit: Option<usize>,
    /// Report JSON (written atomically).
    #[arg(long)]
    out: PathBuf,
    /// Side-by-side Markdown report (also written atomically).
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// Seconds one request may take.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

pub fn run(args: JudgeArgs) -> Result<()> {
    if args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    if args.limit == Some(0) {
        bail!("--limit must be at least 1");
    }
    let path = args
        .prompts
        .clone()
        .unwrap_or_else(|| bundled("evals/generative.jsonl"));
    let mut prompts = judge::load_prompts(&path)
        .with_context(|| format!("reading the prompt set {}", path.display()))?;
    if let Some(limit) = args.limit {
        prompts.truncate(limit);
    }
    let prepared = match &args.url {
        Some(_) => None,
        None => Some(local::prepare(LocalSpec {
            model: args.model.clone(),
            adapters: args.adapters.clone(),
            config: None,
        })?),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("switchboard-judge")
        .build()
        .context("starting the tokio runtime")?;
    let report = runtime.block_on(async {
        let server = match prepared {
            Some(prepared) => Some(LocalServer::start(prepared).await?),
            None => None,
        };
        let outcome = judge_all(&args, prompts, server.as_ref()).await;
        if let Some(server) = server {
            server.stop().await?;
        }
        outcome
    })?;
    let json = serde_json::to_vec_pretty(&report).context("serializing the report")?;
    write_atomic(&args.out, &json).with_context(|| format!("writing {}", args.out.display()))?;
    let markdown = judge::markdown(&report);
    if let Some(path) = &args.markdown {
        write_atomic(path, markdown.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    // The summary: everything before the per-prompt sections.
    let summary = markdown.split("\n## ").next().unwrap_or_default();
    print!("{summary}");
    eprintln!("wrote {}", args.out.display());
    if report.unjudged == report.items.len() {
        bail!(
            "the judge {} gave no usable verdict for any prompt (see the warnings above)",
            args.judge_model
        );
    }
    Ok(())
}

async fn judge_all(
    args: &JudgeArgs,
    prompts: Vec<judge::JudgePrompt>,
    server: Option<&LocalServer>,
) -> Result<judge::JudgeReport> {
    let timeout = Duration::from_secs(args.timeout.max(1));
    let (url, key, base) = match (server, &args.url) {
        (Some(s), _) => (s.url.clone(), s.api_key.clone(), Some(s.base_model.clone())),
        (None, Some(url)) => (url.clone(), args.api_key.clone(), None),
        (None, None) => bail!("no server to answer the prompts"),
    };
    let mut options = ClientOptions::with_api_key(key);
    options.timeout = timeout;
    let candidates =
        OpenAiClient::new(&url, options).with_context(|| format!("connecting to {url}"))?;
    let mut judge_options = ClientOptions::with_api_key(args.judge_api_key.clone());
    judge_options.timeout = timeout;
    let judge_client = OpenAiClient::new(&args.judge_url, judge_options)
        .with_context(|| format!("connecting to the judge at {}", args.judge_url))?;
    let variant_a = match (&args.a, base) {
        (Some(a), _) => a.clone(),
        (None, Some(base)) => base,
        (None, None) => base_model_of(&candidates, &url).await?,
    };
    let settings = JudgeSettings {
        variant_a,
        variant_b: args.b.clone(),
        sampling: Sampling {
            temperature: args.temperature,
            max_tokens: args.max_tokens,
            seed: Some(args.seed),
        },
        judge_model: args.judge_model.clone(),
        judge_sampling: Sampling {
            temperature: 0.0,
            max_tokens: 512,
            seed: Some(args.seed),
        },
        attempts: args.attempts,
        rubric: Rubric::default(),
    };
    let progress = progress_bar(prompts.len(), args.quiet);
    let mut judged: Vec<(usize, judge::JudgedItem)> = Vec::with_capacity(prompts.len());
    let mut results = stream::iter(prompts.iter().enumerate())
        .map(|(index, prompt)| {
            let (candidates, judge_client, settings) = (&candidates, &judge_client, &settings);
            async move {
                let item = judge::judge_one(candidates, judge_client, settings, prompt)
                    .await
                    .with_context(|| format!("prompt {}", prompt.id));
                (index, item)
            }
        })
        .buffer_unordered(args.concurrency);
    while let Some((index, item)) = results.next().await {
        judged.push((index, item?));
        progress.inc(1);
    }
    progress.finish_and_clear();
    judged.sort_by_key(|(index, _)| *index);
    Ok(judge::summarize(
        judged.into_iter().map(|(_, item)| item).collect(),
        &settings,
    ))
}

/// The first served model without a parent: the base.
async fn base_model_of(client: &OpenAiClient, url: &str) -> Result<String> {
    let models = client
        .models()
        .await
        .with_context(|| format!("listing the models of {url}"))?;
    models
        .into_iter()
        .find(|m| m.parent.is_none())
        .map(|m| m.id)
        .with_context(|| format!("{url} lists no base model; give --a"))
}

fn progress_bar(len: usize, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    if let Ok(style) =
        ProgressStyle::with_template("judging {bar:30} {pos}/{len} prompts [{elapsed}<{eta}]")
    {
        bar.set_style(style);
    }
    bar
}

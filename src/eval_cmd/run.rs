//! `switchboard eval run`: suites × variants against a server, into results JSON, a Markdown
//! table, a chart and Prometheus metrics.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use switchboard_eval::client::{ClientOptions, OpenAiClient};
use switchboard_eval::results::EvalResults;
use switchboard_eval::runner::{self, RunOptions, Runner};
use switchboard_eval::suite::Suite;
use switchboard_eval::{metrics, prom, report};

use super::local::{self, LocalServer, LocalSpec};
use super::retrieval::{DomainRouter, KbRetriever};
use crate::serve::bundled;

/// Suites read when `--suite` is not given: every `*.jsonl` of the bundled `evals/` except
/// the generative one (the multiple-choice suites that `eval compare` gates on and that the
/// lm-eval tasks in `evals/lm_eval/` mirror; generative items need a generation per item and
/// variant, so they are asked for by name).
const DEFAULT_SUITE_DIR: &str = "evals";
const GENERATIVE_SUITE: &str = "generative.jsonl";

#[derive(Args)]
pub struct RunArgs {
    /// Suite files (JSONL) or directories of them; repeat or separate with commas
    /// [default: evals/*.jsonl except generative.jsonl].
    #[arg(long, value_delimiter = ',')]
    suite: Vec<PathBuf>,
    /// The suite's name in results and metrics [default: the first file's stem, or the
    /// directory's name].
    #[arg(long)]
    suite_name: Option<String>,
    /// Variants, comma-separated: base, adapter (each item's own-domain adapter), rag,
    /// adapter+rag, auto (router + retrieval), or any served model name.
    #[arg(long, value_delimiter = ',', default_value = "base")]
    variants: Vec<String>,
    /// Results JSON (written atomically).
    #[arg(long)]
    out: PathBuf,
    /// Also write the Markdown table here (it is printed in any case).
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// Also draw the accuracies with their 95% intervals into this PNG.
    #[arg(long)]
    chart: Option<PathBuf>,
    /// An OpenAI-compatible server (`http://host:port`, `.../v1` or `.../v1/completions`).
    /// Without it, the model is served inside this process.
    #[arg(long)]
    url: Option<String>,
    /// With --url: the base model's served name [default: the first /v1/models entry without
    /// a parent]. Without --url: the model to load, as `serve --model` [default: bundled].
    #[arg(long)]
    model: Option<String>,
    /// Without --url: the adapters directory, as `serve --adapters` [default: bundled].
    #[arg(long, conflicts_with = "url")]
    adapters: Option<PathBuf>,
    /// Without --url: a `serve` TOML config for every other server setting.
    #[arg(long, conflicts_with = "url")]
    config: Option<PathBuf>,
    /// Bearer key for --url.
    #[arg(long, env = "OPENAI_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Items in flight at once (one request per item carries all its choices).
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Most tokens per generated answer.
    #[arg(long, default_value_t = 128)]
    max_tokens: u32,
    /// Seed of generation requests.
    #[arg(long, default_value_t = 1234)]
    seed: u64,
    /// At most this many items per domain (the first ones, like lm-eval's --limit per task).
    #[arg(long)]
    limit: Option<usize>,
    /// Prompt limit in tokens, as lm-eval's `max_length` model argument (prompts are cut on the
    /// left to max_length - 1).
    #[arg(long, default_value_t = 2048)]
    max_length: usize,
    /// Seconds one request may take, generation included.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
    /// Knowledge base for rag, adapter+rag and auto [default: the bundled kb/].
    #[arg(long)]
    kb: Option<PathBuf>,
    /// Passages retrieved per question.
    #[arg(long, default_value_t = 4)]
    rag_k: usize,
    /// Router model for auto [default: the bundled one].
    #[arg(long)]
    router_model: Option<PathBuf>,
    /// Router confidence below which auto answers with the base model.
    #[arg(long)]
    router_threshold: Option<f32>,
    /// Push the metrics to this Pushgateway (job `switchboard_eval`, grouped by suite).
    #[arg(long)]
    pushgateway: Option<String>,
    /// Write the metrics as a node-exporter textfile (`*.prom`).
    #[arg(long)]
    textfile: Option<PathBuf>,
    /// Accepted baseline results, exported as switchboard_eval_baseline_accuracy_ratio.
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

fn load_suite(args: &RunArgs) -> Result<Suite> {
    if !args.suite.is_empty() {
        for path in &args.suite {
            if !path.exists() {
                bail!("{}: no such suite file or directory", path.display());
            }
        }
        return Suite::load_many(&args.suite, args.suite_name.as_deref())
            .with_context(|| format!("reading the suite {}", join(&args.suite)));
    }
    let dir = bundled(DEFAULT_SUITE_DIR);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading the default suites in {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .filter(|p| p.file_name().is_some_and(|n| n != GENERATIVE_SUITE))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("{}: no suite files (*.jsonl); give --suite", dir.display());
    }
    Suite::load_many(&files, Some(args.suite_name.as_deref().unwrap_or("evals")))
        .with_context(|| format!("reading the suites in {}", dir.display()))
}

fn join(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn run(args: RunArgs) -> Result<()> {
    if args.limit == Some(0) {
        bail!("--limit must be at least 1");
    }
    let suite = load_suite(&args)?;
    let wants = |names: &[&str]| args.variants.iter().any(|v| names.contains(&v.trim()));
    let retriever = if wants(&[runner::RAG, runner::ADAPTER_RAG, runner::AUTO]) {
        let dir = args.kb.clone().unwrap_or_else(|| bundled("kb"));
        Some(Arc::new(KbRetriever::open(&dir, args.rag_k)?))
    } else {
        None
    };
    let router = if wants(&[runner::AUTO]) {
        let classifier = crate::router::classifier(args.router_model.as_deref())?;
        let mut table = switchboard_router::RoutingTable::default();
        if let Some(threshold) = args.router_threshold {
            table.threshold = threshold;
        }
        Some(Arc::new(DomainRouter::new(classifier, table)))
    } else {
        None
    };
    let baseline = args
        .baseline
        .as_ref()
        .map(|path| {
            EvalResults::load(path)
                .with_context(|| format!("reading the baseline {}", path.display()))
        })
        .transpose()?;
    // The model loads before the runtime starts: it is blocking work.
    let prepared = match &args.url {
        Some(_) => None,
        None => Some(local::prepare(LocalSpec {
            model: args.model.clone(),
            adapters: args.adapters.clone(),
            config: args.config.clone(),
        })?),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("switchboard-eval")
        .build()
        .context("starting the tokio runtime")?;
    let results = runtime.block_on(async {
        let server = match prepared {
            Some(prepared) => Some(LocalServer::start(prepared).await?),
            None => None,
        };
        let (url, base_model, api_key, endpoint) = match (&server, &args.url) {
            (Some(s), _) => (
                s.url.clone(),
                Some(s.base_model.clone()),
                s.api_key.clone(),
                Some(format!("in-process ({})", s.url)),
            ),
            (None, Some(url)) => (url.clone(), args.model.clone(), args.api_key.clone(), None),
            (None, None) => bail!("no server to evaluate"),
        };
        let mut client_options = ClientOptions::with_api_key(api_key);
        client_options.timeout = Duration::from_secs(args.timeout.max(1));
        let client = OpenAiClient::new(&url, client_options)
            .with_context(|| format!("connecting to {url}"))?;
        let options = RunOptions {
            variants: args.variants.iter().map(|v| v.trim().to_string()).collect(),
            base_model,
            concurrency: args.concurrency,
            max_tokens: args.max_tokens,
            seed: args.seed,
            limit: args.limit,
            max_length: args.max_length,
            quiet: args.quiet,
            endpoint,
        };
        let mut eval = Runner::new(client, options);
        if let Some(retriever) = retriever {
            eval = eval.with_retriever(retriever);
        }
        if let Some(router) = router {
            eval = eval.with_router(router);
        }
        let outcome = eval
            .run(&suite)
            .await
            .with_context(|| format!("evaluating {} against {url}", suite.name));
        if let Some(server) = server {
            server.stop().await?;
        }
        outcome
    })?;
    write_outputs(&args, &results, baseline.as_ref())
}

fn write_outputs(
    args: &RunArgs,
    results: &EvalResults,
    baseline: Option<&EvalResults>,
) -> Result<()> {
    results
        .save(&args.out)
        .with_context(|| format!("writing {}", args.out.display()))?;
    let variants: Vec<String> = args.variants.iter().map(|v| v.trim().to_string()).collect();
    let table = report::markdown_table(&results.variants, &variants);
    print!("{table}");
    if !results.run.notes.is_empty() {
        println!("\nnotes:");
        for note in &results.run.notes {
            println!("- {note}");
        }
    }
    if let Some(path) = &args.markdown {
        switchboard_eval::results::write_atomic(path, table.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.chart {
        let title = format!("{} ({})", results.suite, results.model);
        report::write_chart(path, &title, &results.variants, &variants)
            .with_context(|| format!("drawing {}", path.display()))?;
    }
    let families = metrics::eval_families(results, baseline);
    if let Some(path) = &args.textfile {
        prom::write_textfile(path, &families)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(gateway) = &args.pushgateway {
        prom::push(
            gateway,
            "switchboard_eval",
            &[("suite", &results.suite)],
            &families,
        )
        .with_context(|| format!("pushing the metrics to {gateway}"))?;
    }
    eprintln!("wrote {}", describe_outputs(args).join(", "));
    Ok(())
}

fn describe_outputs(args: &RunArgs) -> Vec<String> {
    std::iter::once(&args.out)
        .chain(
            [&args.markdown, &args.chart, &args.textfile]
                .into_iter()
                .flatten(),
        )
        .map(|p| p.display().to_string())
        .collect()
}

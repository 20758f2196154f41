//! `switchboard adapter promote`: evaluate a candidate adapter against the version a running
//! server serves, gate it with `eval compare`, and on `promote` archive the served version and
//! hot-swap the candidate in with a compare-and-swap on the adapter's generation.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use switchboard_eval::client::{OpenAiClient, ServedAdapter};
use switchboard_eval::compare::{self, Comparison, Side, Thresholds, Verdict};
use switchboard_eval::prom::{self, Family};
use switchboard_eval::results::{self, EvalResults};
use switchboard_eval::runner::{RunOptions, Runner, BASE};
use switchboard_eval::suite::Suite;

use super::store::{check_adapter, AdapterStore};
use super::ServerArgs;
use crate::serve::bundled;

/// Pushgateway job of promotion results.
const PUSH_JOB: &str = "switchboard_promote";

#[derive(Args)]
pub struct PromoteArgs {
    /// The candidate: a PEFT adapter directory (a `train lora --out` directory will do).
    #[arg(long)]
    candidate: PathBuf,
    /// The served adapter name it would replace (it may not exist yet: then the candidate is
    /// compared with the base model).
    #[arg(long)]
    name: String,
    #[command(flatten)]
    server: ServerArgs,
    /// The domain the candidate must improve [default: --name].
    #[arg(long)]
    domain: Option<String>,
    /// Suite files or directories [default: evals/<domain>.jsonl and evals/general.jsonl, so
    /// that a loss of general skills counts as a regression].
    #[arg(long, value_delimiter = ',')]
    suite: Vec<PathBuf>,
    /// At most this many items per domain.
    #[arg(long)]
    limit: Option<usize>,
    /// Gain on the domain needed to promote, in accuracy points.
    #[arg(long, default_value_t = 5.0)]
    min_gain: f64,
    /// A domain regresses when the candidate falls below this share of the served accuracy.
    #[arg(long, default_value_t = 0.95)]
    floor: f64,
    /// Significance level of the McNemar tests.
    #[arg(long, default_value_t = 0.05)]
    alpha: f64,
    /// Items in flight at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Where results.json, comparison.json and comparison.md go
    /// [default: target/promote/<name>-<stamp>].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Push the verdict and accuracies to this Pushgateway (job `switchboard_promote`, grouped
    /// by adapter).
    #[arg(long)]
    pushgateway: Option<String>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

/// Runs the loop; returns the process exit code (0 promoted, else the verdict's code).
pub fn run(args: PromoteArgs) -> Result<i32> {
    check_adapter(&args.candidate)?;
    let store = AdapterStore::open(&args.server.adapter_root())?;
    let domain = args.domain.clone().unwrap_or_else(|| args.name.clone());
    let suite = load_suite(&args.suite, &domain)?;
    let stamp = store.fresh_stamp(&args.name);
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("target/promote/{}-{stamp}", args.name)));
    let runtime = super::runtime()?;
    let outcome = runtime.block_on(promote(&args, &store, &suite, &domain, &stamp, &out))?;
    let comparison = &outcome.comparison;
    print!("{}", compare::render_markdown(comparison));
    match &outcome.archived {
        _ if comparison.verdict != Verdict::Promote => println!(
            "\n{}: {} — the server still serves the previous version",
            args.name,
            comparison.verdict.label()
        ),
        Some(version) => println!(
            "\npromoted {} to {} (generation {}); the previous version is archived as {version}: \
             switchboard adapter restore --name {} --version {version} --url {}",
            args.candidate.display(),
            args.name,
            outcome.generation.unwrap_or_default(),
            args.name,
            args.server.url
        ),
        None => println!(
            "\npromoted {} to {} (generation {}); there was no previous version",
            args.candidate.display(),
            args.name,
            outcome.generation.unwrap_or_default()
        ),
    }
    if let Some(gateway) = &args.pushgateway {
        let families = promotion_families(&args.name, comparison, outcome.promoted());
        prom::push(gateway, PUSH_JOB, &[("adapter", &args.name)], &families)
            .with_context(|| format!("pushing the verdict to {gateway}"))?;
    }
    eprintln!("wrote {}", out.display());
    Ok(i32::from(comparison.exit_code))
}

fn load_suite(paths: &[PathBuf], domain: &str) -> Result<Suite> {
    let paths: Vec<PathBuf> = if paths.is_empty() {
        let own = bundled(&format!("evals/{domain}.jsonl"));
        if !own.is_file() {
            bail!(
                "{}: no suite for the domain `{domain}`; give --suite (or --domain)",
                own.display()
            );
        }
        vec![own, bundled("evals/general.jsonl")]
    } else {
        paths.to_vec()
    };
    for path in &paths {
        if !path.exists() {
            bail!("{}: no such suite file or directory", path.display());
        }
    }
    Suite::load_many(&paths, Some(&format!("promote-{domain}")))
        .with_context(|| format!("reading the suite {}", paths[0].display()))
}

struct Outcome {
    comparison: Comparison,
    /// The archive stamp of the replaced version (promotion over an existing one).
    archived: Option<String>,
    /// The generation the server gave the promoted adapter.
    generation: Option<u64>,
}

impl Outcome {
    fn promoted(&self) -> bool {
        self.generation.is_some()
    }
}

async fn promote(
    args: &PromoteArgs,
    store: &AdapterStore,
    suite: &Suite,
    domain: &str,
    stamp: &str,
    out: &Path,
) -> Result<Outcome> {
    let (client, admin) = args.server.clients()?;
    let served = served_version(&admin, &args.name).await?;
    let staged = store.stage(&args.name, &args.candidate, stamp)?;
    let trial_name = format!("{}-candidate-{stamp}", args.name);
    let evaluated = evaluate(
        args,
        &client,
        &admin,
        suite,
        served.as_ref(),
        &staged,
        &trial_name,
    )
    .await;
    let _ = admin.unload_lora_adapter(&trial_name).await;
    let results = match evaluated {
        Ok(results) => results,
        Err(e) => {
            let _ = store.discard(&staged);
            return Err(e);
        }
    };
    let served_variant = served.as_ref().map_or(BASE, |s| s.name.as_str());
    let comparison = match gate(args, &results, out, served_variant, &trial_name, domain) {
        Ok(comparison) => comparison,
        Err(e) => {
            let _ = store.discard(&staged);
            return Err(e);
        }
    };
    if comparison.verdict != Verdict::Promote {
        store.discard(&staged)?;
        return Ok(Outcome {
            comparison,
            archived: None,
            generation: None,
        });
    }
    let archived = store.archive_live(&args.name, stamp)?;
    let swapped = swap_in(
        store,
        &admin,
        &args.name,
        &store.resolve(&staged),
        served.as_ref(),
    )
    .await;
    store.discard(&staged)?;
    let generation = match swapped {
        Ok(generation) => generation,
        Err(e) => {
            // The server refused or changed meanwhile: the files go back to what it serves.
            if let Some(version) = &archived {
                store.install(&args.name, &store.archived(&args.name, version))?;
            }
            return Err(e);
        }
    };
    Ok(Outcome {
        comparison,
        archived,
        generation: Some(generation),
    })
}

/// The version of `name` the server serves now, if any.
pub(super) async fn served_version(
    admin: &OpenAiClient,
    name: &str,
) -> Result<Option<ServedAdapter>> {
    let adapters = admin.lora_adapters().await.with_context(|| {
        format!(
            "listing the adapters of {} (is it a switchboard server?)",
            admin.url()
        )
    })?;
    Ok(adapters.into_iter().find(|a| a.name == name))
}

/// Installs `from` as the live files of `name` and has the server load them, replacing only the
/// generation it served when the check began (409 otherwise). Returns the new generation.
pub(super) async fn swap_in(
    store: &AdapterStore,
    admin: &OpenAiClient,
    name: &str,
    from: &Path,
    served: Option<&ServedAdapter>,
) -> Result<u64> {
    store.install(name, from)?;
    let expected = served.map_or(0, |s| s.generation);
    let loaded = admin
        .load_lora_adapter(name, name, Some(expected))
        .await
        .with_context(|| {
            format!(
                "hot-loading {name} (expected generation {expected}): the server changed since \
                 the evaluation started, or refused the files"
            )
        })?;
    Ok(loaded.generation)
}

async fn evaluate(
    args: &PromoteArgs,
    client: &OpenAiClient,
    admin: &OpenAiClient,
    suite: &Suite,
    served: Option<&ServedAdapter>,
    staged: &str,
    trial_name: &str,
) -> Result<EvalResults> {
    admin
        .load_lora_adapter(trial_name, staged, Some(0))
        .await
        .with_context(|| format!("loading the candidate {staged} as {trial_name}"))?;
    let served_variant = served.map_or(BASE, |s| s.name.as_str());
    let options = RunOptions {
        variants: vec![served_variant.to_string(), trial_name.to_string()],
        concurrency: args.concurrency,
        limit: args.limit,
        quiet: args.quiet,
        ..RunOptions::default()
    };
    Runner::new(client.clone(), options)
        .run(suite)
        .await
        .with_context(|| format!("evaluating {served_variant} and {trial_name}"))
}

fn gate(
    args: &PromoteArgs,
    results: &EvalResults,
    out: &Path,
    served_variant: &str,
    trial_name: &str,
    domain: &str,
) -> Result<Comparison> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let results_path = out.join("results.json");
    results
        .save(&results_path)
        .with_context(|| format!("writing {}", results_path.display()))?;
    let thresholds = Thresholds {
        min_gain: args.min_gain,
        floor: args.floor,
        alpha: args.alpha,
        ..Thresholds::default()
    };
    let side = |variant| Side {
        path: &results_path,
        results,
        variant: Some(variant),
    };
    let comparison = compare::compare(
        side(served_variant),
        side(trial_name),
        Some(domain),
        &thresholds,
    )
    .context("comparing the candidate with the served version")?;
    comparison
        .save(&out.join("comparison.json"))
        .with_context(|| format!("writing {}", out.join("comparison.json").display()))?;
    results::write_atomic(
        &out.join("comparison.md"),
        compare::render_markdown(&comparison).as_bytes(),
    )?;
    Ok(comparison)
}

/// The verdict (one-hot), whether the server now serves the candidate, and both accuracies
/// and the delta per domain.
fn promotion_families(name: &str, comparison: &Comparison, promoted: bool) -> Vec<Family> {
    let mut verdict = Family::gauge(
        "switchboard_promotion_verdict",
        "1 for the verdict of the last promotion check of the adapter, 0 for the others",
    );
    for v in [
        Verdict::Promote,
        Verdict::Regression,
        Verdict::NoGain,
        Verdict::Inconclusive,
    ] {
        let label = format!("{v:?}").to_lowercase();
        let value = f64::from(u8::from(v == comparison.verdict));
        verdict.sample(&[("adapter", name), ("verdict", &label)], value);
    }
    let mut swapped = Family::gauge(
        "switchboard_promotion_promoted",
        "1 if the last promotion check swapped the candidate in",
    );
    swapped.sample(&[("adapter", name)], f64::from(u8::from(promoted)));
    let mut accuracy = Family::gauge(
        "switchboard_promotion_accuracy_ratio",
        "Accuracy of the served version and of the candidate on the promotion suite",
    );
    let mut delta = Family::gauge(
        "switchboard_promotion_delta_points",
        "Candidate minus served accuracy, in percentage points",
    );
    for d in &comparison.domains {
        let labels = |version| {
            [
                ("adapter", name),
                ("domain", &d.domain),
                ("version", version),
            ]
        };
        accuracy.sample(&labels("served"), d.baseline_accuracy);
        accuracy.sample(&labels("candidate"), d.candidate_accuracy);
        delta.sample(&[("adapter", name), ("domain", &d.domain)], d.delta_points);
    }
    let mut when = Family::gauge(
        "switchboard_promotion_last_run_timestamp_seconds",
        "When the last promotion check of the adapter finished",
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs_f64();
    when.sample(&[("adapter", name)], now);
    vec![verdict, swapped, accuracy, delta, when]
}

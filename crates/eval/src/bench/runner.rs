//! The run itself: find the model, build the prompts, warm up, then send the measured
//! requests in a closed or an open loop and collect what each one measured.
//!
//! Requests run as tokio tasks and report back over a channel, so the collecting loop (and
//! the progress display) never waits on a slow request, and a failed request is one more
//! record rather than an early exit.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, Semaphore};

use crate::client::{ClientOptions, OpenAiClient};
use crate::error::{EvalError, Result};

use super::calibrate::Prompt;
use super::prompts::build_prompts;
use super::report::BenchReport;
use super::request::{Sender, Shape};
use super::schedule::Arrivals;
use super::summary::RequestRecord;
use super::{AdapterMix, BenchConfig, Load, Observer, Phase, Progress};

/// What every request task shares.
struct Shared {
    sender: Sender,
    mix: AdapterMix,
    model: String,
    seed: u64,
    prompts: Vec<Prompt>,
    warmup_prompts: Vec<Prompt>,
}

#[derive(Clone, Copy)]
enum Kind {
    Warmup,
    Measured,
}

impl Shared {
    async fn execute(&self, kind: Kind, index: u64, origin: Instant) -> RequestRecord {
        let (model, pool) = match kind {
            Kind::Warmup => (
                self.mix.warmup_pick(&self.model, index),
                &self.warmup_prompts,
            ),
            Kind::Measured => (self.mix.pick(&self.model, self.seed, index), &self.prompts),
        };
        // Pools are never empty (at least one prompt is built); `get` keeps that a non-panic.
        let prompt = pool.get(index as usize % pool.len().max(1));
        let start = origin.elapsed().as_secs_f64();
        let outcome = match prompt {
            Some(prompt) => self.sender.send(model, &prompt.text).await,
            None => Err("no prompt was built".to_string()),
        };
        RequestRecord {
            model: model.to_string(),
            start,
            end: origin.elapsed().as_secs_f64(),
            prompt_tokens: prompt.map_or(0, |p| p.tokens),
            outcome,
        }
    }
}

pub(super) async fn run(config: &BenchConfig, observer: &dyn Observer) -> Result<BenchReport> {
    let client = OpenAiClient::new(
        &config.url,
        ClientOptions {
            api_key: config.api_key.clone(),
            timeout: Duration::from_secs(30),
            max_retries: 1,
            ..ClientOptions::default()
        },
    )?;
    let root = client.url().root().to_string();
    let model = pick_model(&client, config).await?;
    let in_flight = match config.load {
        Load::Closed { concurrency } => concurrency,
        Load::Open {
            max_concurrency, ..
        } => max_concurrency.unwrap_or(64),
    };
    // reqwest is built without a bundled crypto provider (see Cargo.toml);
    // `OpenAiClient::new` above has installed ring as the process default.
    let http = reqwest::Client::builder()
        .timeout(config.timeout)
        .connect_timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(in_flight)
        .build()
        .map_err(|e| EvalError::BadUrl {
            url: root.clone(),
            reason: format!("cannot build an HTTP client: {e}"),
        })?;
    let sender = Sender {
        http,
        url: client.url().at_root(config.endpoint.path()),
        api_key: config.api_key.clone(),
        shape: Shape {
            endpoint: config.endpoint,
            output_len: config.output_len,
            ignore_eos: config.ignore_eos,
            temperature: config.temperature,
        },
        timeout: config.timeout,
    };
    let (warmup_prompts, prompts, info) = build_prompts(&client, config, observer).await;
    let shared = Arc::new(Shared {
        sender,
        mix: config.mix.clone(),
        model: model.clone(),
        seed: config.seed,
        prompts,
        warmup_prompts,
    });
    if config.warmup > 0 {
        warmup(&shared, config, observer).await;
    }
    let (records, duration) = measure(&shared, config, observer).await;
    Ok(BenchReport::new(
        config, &root, &model, info, &records, duration,
    ))
}

/// `--model`, else the first entry of `/v1/models` (what vLLM's benchmark does). The listing
/// is fetched either way: it is the check that the server answers at all.
async fn pick_model(client: &OpenAiClient, config: &BenchConfig) -> Result<String> {
    let entries = match client.models().await {
        Ok(entries) => entries,
        Err(EvalError::Api { status, .. }) if config.model.is_some() && status == 404 => {
            tracing::warn!("{} has no /v1/models; using --model as given", client.url());
            return Ok(config.model.clone().unwrap_or_default());
        }
        Err(e) => return Err(e),
    };
    let named = config.model.iter().cloned().chain(config.mix.adapters());
    for name in named {
        if !entries.iter().any(|e| e.id == name) {
            tracing::warn!(model = %name, "the server does not list this model; its requests may fail");
        }
    }
    match &config.model {
        Some(model) => Ok(model.clone()),
        None => entries
            .first()
            .map(|e| e.id.clone())
            .ok_or_else(|| EvalError::BadSetting {
                setting: "model".into(),
                reason: format!("{} lists no model; name one", client.url().api("/models")),
            }),
    }
}

/// Sends the warmup requests, closed loop, and forgets them (failures are logged: the
/// measured phase will count its own).
async fn warmup(shared: &Arc<Shared>, config: &BenchConfig, observer: &dyn Observer) {
    let total = config.warmup;
    let workers = match config.load {
        Load::Closed { concurrency } => concurrency,
        Load::Open {
            max_concurrency, ..
        } => max_concurrency.unwrap_or(total),
    }
    .clamp(1, total.max(1));
    observer.phase(&Phase::Warmup { requests: total });
    let origin = Instant::now();
    let (tx, rx) = mpsc::unbounded_channel();
    closed_loop(shared, Kind::Warmup, workers, Some(total), None, origin, tx);
    let records = collect(rx, origin, observer).await;
    let failures: Vec<&String> = records
        .iter()
        .filter_map(|r| r.outcome.as_ref().err())
        .collect();
    if let Some(first) = failures.first() {
        tracing::warn!(failed = failures.len(), total, first = %first, "warmup requests failed");
    }
}

/// Sends the measured requests; returns them (by start time) and the phase's duration in
/// seconds, from the first send to the last answer.
async fn measure(
    shared: &Arc<Shared>,
    config: &BenchConfig,
    observer: &dyn Observer,
) -> (Vec<RequestRecord>, f64) {
    observer.phase(&Phase::Measuring {
        requests: config.num_prompts,
        duration: config.duration,
    });
    let origin = Instant::now();
    let deadline = config.duration.map(|d| origin + d);
    let (tx, rx) = mpsc::unbounded_channel();
    match config.load {
        Load::Closed { concurrency } => closed_loop(
            shared,
            Kind::Measured,
            concurrency,
            config.num_prompts,
            deadline,
            origin,
            tx,
        ),
        Load::Open {
            rate,
            burstiness,
            max_concurrency,
        } => match Arrivals::new(rate, burstiness, config.seed) {
            Ok(arrivals) => {
                let shared = Arc::clone(shared);
                let limit = config.num_prompts;
                tokio::spawn(async move {
                    open_loop(
                        shared,
                        arrivals,
                        max_concurrency,
                        limit,
                        deadline,
                        origin,
                        tx,
                    )
                    .await
                });
            }
            // `BenchConfig::validate` has refused such settings already.
            Err(e) => tracing::error!(error = %e, "no arrival schedule"),
        },
    }
    let mut records = collect(rx, origin, observer).await;
    let duration = origin.elapsed().as_secs_f64();
    records.sort_by(|a, b| a.start.total_cmp(&b.start));
    (records, duration)
}

/// `workers` tasks, each sending its next request as soon as its last one is answered, until
/// `limit` requests have been taken or `deadline` has passed.
fn closed_loop(
    shared: &Arc<Shared>,
    kind: Kind,
    workers: usize,
    limit: Option<usize>,
    deadline: Option<Instant>,
    origin: Instant,
    tx: mpsc::UnboundedSender<RequestRecord>,
) {
    let next = Arc::new(AtomicU64::new(0));
    for _ in 0..workers {
        let (shared, next, tx) = (Arc::clone(shared), Arc::clone(&next), tx.clone());
        tokio::spawn(async move {
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let over = limit.is_some_and(|n| index >= n as u64)
                    || deadline.is_some_and(|d| Instant::now() >= d);
                if over {
                    break;
                }
                let record = shared.execute(kind, index, origin).await;
                if tx.send(record).is_err() {
                    break;
                }
            }
        });
    }
}

/// Sends request `i` at its scheduled time (or, with a cap, as soon after as a slot frees),
/// whatever the server's pace, until `limit` or `deadline`.
async fn open_loop(
    shared: Arc<Shared>,
    mut arrivals: Arrivals,
    max_concurrency: Option<usize>,
    limit: Option<usize>,
    deadline: Option<Instant>,
    origin: Instant,
    tx: mpsc::UnboundedSender<RequestRecord>,
) {
    let slots = max_concurrency.map(|n| Arc::new(Semaphore::new(n)));
    let mut due = 0.0;
    for index in 0u64.. {
        if limit.is_some_and(|n| index >= n as u64) {
            break;
        }
        // The first request goes at once, as in vLLM.
        if index > 0 {
            due += arrivals.next_gap();
        }
        let Ok(offset) = Duration::try_from_secs_f64(due) else {
            break;
        };
        let at = origin + offset;
        if deadline.is_some_and(|d| at >= d) {
            break;
        }
        tokio::time::sleep_until(at.into()).await;
        let permit = match &slots {
            Some(slots) => match Arc::clone(slots).acquire_owned().await {
                Ok(permit) => Some(permit),
                Err(_) => break,
            },
            None => None,
        };
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let (shared, tx) = (Arc::clone(&shared), tx.clone());
        tokio::spawn(async move {
            let record = shared.execute(Kind::Measured, index, origin).await;
            drop(permit);
            let _ = tx.send(record);
        });
    }
}

/// Gathers records until every sender is gone, telling `observer` as they come and a few
/// times a second in between (so a duration-bound bar moves while requests are slow).
async fn collect(
    mut rx: mpsc::UnboundedReceiver<RequestRecord>,
    origin: Instant,
    observer: &dyn Observer,
) -> Vec<RequestRecord> {
    let mut records = Vec::new();
    let mut failed = 0;
    let mut ticker = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            record = rx.recv() => match record {
                Some(record) => {
                    failed += usize::from(record.outcome.is_err());
                    records.push(record);
                }
                None => break,
            },
            _ = ticker.tick() => {}
        }
        observer.progress(&Progress {
            done: records.len(),
            failed,
            elapsed: origin.elapsed(),
        });
    }
    records
}

//! The run: chunks not yet done go to the teacher, a few at a time; each chunk's records (or
//! its rejection) are written by this one task, chunk by chunk, so a kill at any moment leaves
//! whole chunks behind and [`super::resume`] can tell what is left.

use std::future::Future;
use std::pin::pin;

use futures_util::stream::{self, StreamExt};
use serde_json::{json, Map, Value};

use crate::jsonl::{Appender, JsonlError};

use super::chunks::Chunk;
use super::error::{Result, SynthError};
use super::prompt::{PromptTemplate, PromptVars};
use super::repair::parse_teacher_reply;
use super::resume::{self, CHUNK_ID, CHUNK_RECORDS};
use super::teacher::{Teacher, TeacherError, TeacherRequest, Usage};
use super::{SynthConfig, SynthProgress, SynthReport};

/// Keys of a chunk line never copied onto its records: they would change how the trainer
/// reads the record (`text`, `messages`...) or clash with the record's own fields.
const RESERVED: [&str; 11] = [
    "id",
    "text",
    "instruction",
    "input",
    "output",
    "messages",
    "conversations",
    "qa_pair",
    "dialogue",
    CHUNK_ID,
    CHUNK_RECORDS,
];

/// What became of one chunk.
enum Outcome {
    Records { records: Vec<Value>, repaired: bool },
    Rejected { reason: String, raw: String },
}

struct Finished<'a> {
    chunk: &'a Chunk,
    outcome: Outcome,
    attempts: u32,
    http_retries: u32,
    usage: Usage,
}

/// Writes every chunk of `chunks` not already done (per the output and rejects files of
/// `config`) as records of `config.format`, asking `teacher`; stops early, with whole chunks
/// written, when `stop` completes. See the module docs of [`super`].
pub async fn synthesize<T: Teacher>(
    chunks: &[Chunk],
    config: &SynthConfig,
    teacher: &T,
    progress: &dyn SynthProgress,
    stop: impl Future<Output = ()>,
) -> Result<SynthReport> {
    config.validate()?;
    let template = match &config.template {
        Some(path) => PromptTemplate::from_file(path)?,
        None => PromptTemplate::builtin(config.format)?,
    };
    let rejects_path = config.rejects_path();
    let previous = resume::prepare(&config.out, &rejects_path)?;
    let (out, _) = Appender::open(&config.out)?;
    let (rejects, _) = Appender::open(&rejects_path)?;
    let mut writers = Some((out, rejects));

    let considered = &chunks[..config.limit.map_or(chunks.len(), |n| n.min(chunks.len()))];
    let mut to_do = Vec::new();
    for chunk in considered {
        if previous.done.contains(&chunk.id) {
            continue;
        }
        let prompt = template.render(&PromptVars {
            chunk: &chunk.text,
            id: &chunk.id,
            source: chunk.source.as_deref(),
            domain: domain_of(config, chunk),
            n: config.pairs_per_chunk,
            format: config.format,
        })?;
        to_do.push((chunk, prompt));
    }
    let mut report = SynthReport {
        chunks_total: considered.len(),
        skipped: considered.len() - to_do.len(),
        removed_partial_records: previous.removed_records,
        ..SynthReport::default()
    };
    progress.started(to_do.len(), report.skipped);

    let mut results = stream::iter(to_do)
        .map(|(chunk, prompt)| ask(chunk, prompt, config, teacher))
        .buffer_unordered(config.concurrency);
    let mut stop = pin!(stop);
    loop {
        let next = tokio::select! {
            biased;
            () = &mut stop => {
                report.interrupted = true;
                break;
            }
            next = results.next() => next,
        };
        let Some(finished) = next else { break };
        let finished = finished?;
        let chunk = finished.chunk;
        let lines = match &finished.outcome {
            Outcome::Records { records, .. } => stamp(records, chunk, config),
            Outcome::Rejected { reason, raw } => vec![json!({
                CHUNK_ID: chunk.id,
                "source": chunk.source,
                "attempts": finished.attempts,
                "reason": reason,
                "raw": raw,
            })],
        };
        let is_reject = matches!(finished.outcome, Outcome::Rejected { .. });
        // The file writes and fsyncs block: off the runtime's threads. This loop waits for them
        // whatever `stop` does, so a chunk is never half-written by an interrupt.
        let (out, rejects) = writers.take().ok_or_else(|| writer_gone(config))?;
        let (out, rejects, written_result) = tokio::task::spawn_blocking(move || {
            let (mut out, mut rejects) = (out, rejects);
            let target = if is_reject { &mut rejects } else { &mut out };
            let result = lines.iter().try_for_each(|line| target.append(line));
            (out, rejects, result)
        })
        .await
        .map_err(|e| {
            SynthError::Jsonl(JsonlError::Io {
                path: config.out.clone(),
                source: std::io::Error::other(e.to_string()),
            })
        })?;
        writers = Some((out, rejects));
        written_result?;
        tally(&mut report, &finished);
        progress.chunk_finished(&chunk.id, &report);
    }
    Ok(report)
}

fn writer_gone(config: &SynthConfig) -> SynthError {
    SynthError::Jsonl(JsonlError::Io {
        path: config.out.clone(),
        source: std::io::Error::other("the output file was lost after a failed write"),
    })
}

fn tally(report: &mut SynthReport, finished: &Finished<'_>) {
    report.usage += finished.usage;
    report.retries += u64::from(finished.attempts.saturating_sub(1));
    report.http_retries += u64::from(finished.http_retries);
    match &finished.outcome {
        Outcome::Records { records, repaired } => {
            report.chunks_done += 1;
            report.records_written += records.len();
            if *repaired {
                report.repaired_records += records.len();
            }
        }
        Outcome::Rejected { .. } => report.rejected += 1,
    }
}

/// The domain stamped on a chunk's records: `--domain`, else the chunk's own `domain`.
fn domain_of<'a>(config: &'a SynthConfig, chunk: &'a Chunk) -> Option<&'a str> {
    config
        .domain
        .as_deref()
        .or_else(|| chunk.metadata.get("domain").and_then(Value::as_str))
}

/// The records as written: provenance (`chunk_id`, `chunk_records`, `source`, `domain`) and
/// the chunk's other scalar metadata added, never over a field of the record itself.
fn stamp(records: &[Value], chunk: &Chunk, config: &SynthConfig) -> Vec<Value> {
    let mut extra = Map::new();
    extra.insert(CHUNK_ID.into(), chunk.id.clone().into());
    extra.insert(CHUNK_RECORDS.into(), records.len().into());
    if let Some(domain) = domain_of(config, chunk) {
        extra.insert("domain".into(), domain.into());
    }
    for (key, value) in &chunk.metadata {
        if !RESERVED.contains(&key.as_str()) && !extra.contains_key(key) {
            extra.insert(key.clone(), value.clone());
        }
    }
    records
        .iter()
        .map(|record| {
            let mut record = record.clone();
            if let Value::Object(object) = &mut record {
                for (key, value) in &extra {
                    object.entry(key.clone()).or_insert_with(|| value.clone());
                }
            }
            record
        })
        .collect()
}

/// Asks about one chunk until a reply makes records or the attempts run out. Retries sample
/// at `retry_temperature` (at least) with a shifted seed: at temperature 0 the same prompt
/// would get the same unusable reply.
async fn ask<'a, T: Teacher>(
    chunk: &'a Chunk,
    prompt: String,
    config: &SynthConfig,
    teacher: &T,
) -> Result<Finished<'a>> {
    let mut usage = Usage::default();
    let mut http_retries = 0;
    let mut last = (String::new(), String::new());
    for attempt in 1..=config.max_attempts {
        let retry = attempt > 1;
        let request = TeacherRequest {
            prompt: prompt.clone(),
            temperature: if retry {
                config.temperature.max(config.retry_temperature)
            } else {
                config.temperature
            },
            max_tokens: config.max_tokens,
            seed: config.seed.map(|s| s.wrapping_add(u64::from(attempt - 1))),
        };
        let finished = |outcome, attempts, usage, http_retries| Finished {
            chunk,
            outcome,
            attempts,
            http_retries,
            usage,
        };
        match teacher.complete(&request).await {
            Ok(reply) => {
                usage += reply.usage;
                http_retries += reply.http_retries;
                match parse_teacher_reply(config.format, &reply.text) {
                    Ok(parsed) => {
                        let mut records = parsed.records;
                        records.truncate(config.pairs_per_chunk);
                        let outcome = Outcome::Records {
                            records,
                            repaired: parsed.repaired,
                        };
                        return Ok(finished(outcome, attempt, usage, http_retries));
                    }
                    Err(e) => {
                        let cut = if reply.truncated {
                            " (the reply was cut at max_tokens)"
                        } else {
                            ""
                        };
                        tracing::debug!(chunk = %chunk.id, attempt, error = %e, "unusable teacher reply");
                        last = (format!("{e}{cut}"), reply.text);
                    }
                }
            }
            Err(TeacherError::Refused {
                status,
                message,
                http_retries: more,
            }) => {
                // The same prompt would be refused again.
                let outcome = Outcome::Rejected {
                    reason: format!("the teacher refused the request ({status}): {message}"),
                    raw: String::new(),
                };
                return Ok(finished(outcome, attempt, usage, http_retries + more));
            }
            Err(TeacherError::Fatal { status, reason }) => {
                return Err(SynthError::Teacher {
                    url: teacher.url().to_string(),
                    status,
                    reason,
                })
            }
        }
    }
    let (reason, raw) = last;
    Ok(Finished {
        chunk,
        outcome: Outcome::Rejected { reason, raw },
        attempts: config.max_attempts,
        http_retries,
        usage,
    })
}

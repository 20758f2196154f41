//! The step loop, on the engine's own thread: admit waiting requests, run one batched forward
//! pass mixing decodes with chunked prefills of any adapters, sample, stream, retire.
//!
//! Scheduling policy:
//! * Admission is FIFO and all-or-nothing per request: a request enters only when its `n`
//!   sequences fit under `max_running_sequences` and its whole KV reservation (prompt +
//!   `max_tokens` per choice) fits the budget, so a running sequence never runs out of cache.
//!   The head of the queue is never overtaken.
//! * Every running sequence that is decoding gets its token in every step; the rest of the
//!   step's token budget goes to prefill chunks in admission order. A long prompt is split over
//!   steps, so it delays decodes by at most one chunk per step.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::Arc;
use std::time::Duration;

use switchboard_model::{CausalLm, ForwardMode, SeqInput, Tensor};
use tokio::sync::mpsc::UnboundedSender;

use crate::engine::{EngineConfig, Shared};
use crate::request::GenerateEvent;
use crate::sequence::{Group, PromptScores, Sequence, StopTokens};
use crate::tokenizer::TextTokenizer;

/// Messages from [`crate::Engine`] handles to the step loop.
pub(crate) enum Command {
    Submit(Box<Group>),
    /// Stop accepting; finish what is queued and running, then exit.
    Shutdown,
}

pub(crate) struct Scheduler {
    pub model: Arc<CausalLm>,
    pub tokenizer: Arc<TextTokenizer>,
    pub config: EngineConfig,
    pub budget_tokens: usize,
    pub commands: Receiver<Command>,
    pub shared: Arc<Shared>,
    pub waiting: VecDeque<Group>,
    pub running: Vec<Group>,
    pub reserved_tokens: usize,
    pub accepting: bool,
}

impl Scheduler {
    pub fn run(mut self) {
        tracing::debug!("engine step loop started");
        while self.receive_commands() {
            self.drop_cancelled();
            self.admit();
            if !self.running.is_empty() {
                let stepped = catch_unwind(AssertUnwindSafe(|| self.step()));
                if stepped.is_err() {
                    // A bug, not an input problem: fail what was running, keep serving.
                    tracing::error!("engine step panicked; failing the running requests");
                    self.fail_running("internal error in the engine step");
                }
            }
            self.publish_stats();
        }
        self.shared.stats.lock().map(|mut s| s.stopped = true).ok();
        tracing::debug!("engine step loop stopped");
    }

    /// Takes new commands: waits while idle, otherwise only drains. False when it is time to
    /// exit (no longer accepting and nothing left to do).
    fn receive_commands(&mut self) -> bool {
        loop {
            let idle = self.running.is_empty() && self.waiting.is_empty();
            if idle && !self.accepting {
                return false;
            }
            let received = if idle {
                // Wake up now and then to publish stats even without traffic.
                match self.commands.recv_timeout(Duration::from_millis(500)) {
                    Ok(cmd) => Some(cmd),
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => None,
                }
            } else {
                match self.commands.try_recv() {
                    Ok(cmd) => Some(cmd),
                    Err(TryRecvError::Empty) => return true,
                    Err(TryRecvError::Disconnected) => None,
                }
            };
            match received {
                Some(Command::Submit(group)) => self.waiting.push_back(*group),
                Some(Command::Shutdown) | None => {
                    self.accepting = false;
                    if self.running.is_empty() && self.waiting.is_empty() {
                        return false;
                    }
                    return true;
                }
            }
            if !idle {
                continue;
            }
            return true;
        }
    }

    fn drop_cancelled(&mut self) {
        let before = self.waiting.len();
        self.waiting.retain(|g| !g.is_cancelled());
        let dropped_waiting = before - self.waiting.len();
        self.shared.leave_queue(dropped_waiting);

        let mut cancelled = dropped_waiting;
        let mut kept = Vec::with_capacity(self.running.len());
        for group in self.running.drain(..) {
            if group.is_cancelled() {
                self.reserved_tokens -= group.reserved();
                tracing::debug!(request = group.id, "client went away; request dropped");
                cancelled += 1;
            } else {
                kept.push(group);
            }
        }
        self.running = kept;
        if cancelled > 0 {
            self.shared
                .update(|s| s.cancelled_requests += cancelled as u64);
        }
    }

    fn admit(&mut self) {
        let mut running_seqs: usize = self.running.iter().map(|g| g.seqs.len()).sum();
        while let Some(head) = self.waiting.front() {
            let need = head.reserved();
            let fits_seqs = running_seqs + head.seqs.len() <= self.config.max_running_sequences;
            let fits_kv = self.reserved_tokens + need <= self.budget_tokens;
            if !(fits_seqs && fits_kv) {
                break;
            }
            let Some(group) = self.waiting.pop_front() else {
                break;
            };
            self.reserved_tokens += need;
            running_seqs += group.seqs.len();
            self.running.push(group);
            self.shared.leave_queue(1);
        }
    }

    /// One forward pass over every decoding sequence plus prefill chunks, then sampling.
    fn step(&mut self) {
        self.plan_step();
        let (logits, fed) = match self.forward() {
            Ok(out) => out,
            Err(message) => {
                tracing::error!(%message, "forward pass failed");
                self.fail_scheduled(&message);
                return;
            }
        };
        self.shared.update(|s| {
            s.steps += 1;
            s.last_step_tokens = fed;
        });
        self.sample_and_emit(logits);
        self.retire_finished();
    }

    fn plan_step(&mut self) {
        let mut decodes = 0;
        for seq in self.running.iter_mut().flat_map(|g| g.seqs.iter_mut()) {
            seq.scheduled = usize::from(!seq.finished && seq.pending() == 1);
            decodes += seq.scheduled;
        }
        let mut budget = self.config.max_batched_tokens.saturating_sub(decodes);
        for seq in self.running.iter_mut().flat_map(|g| g.seqs.iter_mut()) {
            if budget == 0 {
                break;
            }
            if !seq.finished && seq.scheduled == 0 && seq.pending() > 0 {
                seq.scheduled = seq.pending().min(budget);
                budget -= seq.scheduled;
            }
        }
    }

    fn forward(&mut self) -> std::result::Result<(Vec<Tensor>, usize), String> {
        let mut inputs = Vec::new();
        for group in self.running.iter_mut() {
            let adapter = group.adapter.as_ref().map(|a| &*a.adapter);
            for seq in group.seqs.iter_mut().filter(|s| s.scheduled > 0) {
                let start = seq.cache.len();
                // Prompt scoring reads every row of a prefill chunk, through the same pass
                // (and adapter) that generation uses.
                let logits = seq.logits_wanted();
                inputs.push(SeqInput {
                    tokens: &seq.tokens[start..start + seq.scheduled],
                    cache: &mut seq.cache,
                    adapter,
                    logits,
                });
            }
        }
        let fed = inputs.iter().map(|i| i.tokens.len()).sum();
        self.model
            .forward(&mut inputs, ForwardMode::Inference)
            .map(|logits| (logits, fed))
            .map_err(|e| e.to_string())
    }

    fn sample_and_emit(&mut self, logits: Vec<Tensor>) {
        let mut logits = logits.into_iter();
        let mut prompt_tokens = 0u64;
        let mut generated = 0u64;
        for group in self.running.iter_mut() {
            let mut failure = None;
            let (seqs, stops, events) = (&mut group.seqs, &group.stops, &group.events);
            for seq in seqs.iter_mut().filter(|s| s.scheduled > 0) {
                let Some(seq_logits) = logits.next() else {
                    failure = Some("the model returned fewer logits than sequences".to_string());
                    break;
                };
                let fed = std::mem::take(&mut seq.scheduled);
                let chunk_start = seq.cache.len() - fed;
                prompt_tokens += seq.prompt_len.saturating_sub(chunk_start).min(fed) as u64;
                if failure.is_some() {
                    continue;
                }
                let step = StepOutput {
                    logits: seq_logits,
                    chunk_start,
                    fed,
                };
                match advance(seq, step, &self.tokenizer, stops, events) {
                    Ok(sampled) => generated += u64::from(sampled),
                    Err(message) => failure = Some(message),
                }
            }
            if let Some(message) = failure {
                group.fail(&message);
            }
        }
        self.shared.update(|s| {
            s.prompt_tokens += prompt_tokens;
            s.generated_tokens += generated;
        });
    }

    /// Frees the KV cache of finished sequences and ends requests whose choices all finished.
    fn retire_finished(&mut self) {
        let cfg = self.model.config();
        for group in &mut self.running {
            for seq in group
                .seqs
                .iter_mut()
                .filter(|s| s.finished && s.reserved > 0)
            {
                self.reserved_tokens -= seq.reserved;
                seq.reserved = 0;
                seq.cache = switchboard_model::KvCache::new(cfg);
            }
        }
        let (done, kept): (Vec<Group>, Vec<Group>) =
            self.running.drain(..).partition(Group::is_done);
        self.running = kept;
        if done.is_empty() {
            return;
        }
        let failed = done.iter().filter(|g| g.failed).count() as u64;
        let finished = done.len() as u64 - failed;
        self.shared.update(|s| {
            s.failed_requests += failed;
            s.finished_requests += finished;
        });
        // Stats first, then `Done`: a client that sees its request end sees its slot freed.
        self.publish_stats();
        for group in done.into_iter().filter(|g| !g.failed) {
            let usage = group.usage();
            if let Some(adapter) = &group.adapter {
                adapter.record_tokens(usage.prompt_tokens, usage.completion_tokens);
            }
            group.send(GenerateEvent::Done { usage });
            tracing::debug!(
                request = group.id,
                prompt_tokens = usage.prompt_tokens,
                completion_tokens = usage.completion_tokens,
                seconds = group.submitted.elapsed().as_secs_f64(),
                "request finished"
            );
        }
    }

    /// Fails every request with a sequence in the failed step (their caches were rolled back).
    fn fail_scheduled(&mut self, message: &str) {
        for group in &mut self.running {
            if group.seqs.iter().any(|s| s.scheduled > 0) {
                group.fail(message);
            }
        }
        self.retire_finished();
    }

    fn fail_running(&mut self, message: &str) {
        for group in &mut self.running {
            group.fail(message);
        }
        self.retire_finished();
    }

    fn publish_stats(&self) {
        let running_sequences = self
            .running
            .iter()
            .flat_map(|g| &g.seqs)
            .filter(|s| !s.finished)
            .count();
        let kv_allocated_bytes = self
            .running
            .iter()
            .flat_map(|g| &g.seqs)
            .map(|s| s.cache.allocated_bytes())
            .sum();
        self.shared.update(|s| {
            s.running_requests = self.running.len();
            s.running_sequences = running_sequences;
            s.kv_reserved_tokens = self.reserved_tokens;
            s.kv_allocated_bytes = kv_allocated_bytes;
        });
    }
}

/// What one forward pass returned for one sequence.
struct StepOutput {
    /// `[rows, vocab]`: one row, or every row of a chunk that scores the prompt.
    logits: Tensor,
    /// Cache position of the chunk's first token.
    chunk_start: usize,
    /// Tokens the chunk fed.
    fed: usize,
}

/// Applies a step's logits to one sequence: scores the prompt rows it asked for, then, once the
/// whole prompt is in the cache, samples a token and streams what it produced. Returns whether
/// it sampled.
fn advance(
    seq: &mut Sequence,
    step: StepOutput,
    tokenizer: &TextTokenizer,
    stops: &StopTokens,
    events: &UnboundedSender<GenerateEvent>,
) -> std::result::Result<bool, String> {
    let rows = LogitRows::new(&step.logits)?;
    score_prompt(seq, &rows, &step, events)?;
    if seq.pending() > 0 {
        return Ok(false); // a prefill chunk that is not the last one
    }
    let last = match rows.len() {
        0 => return Err("the model returned no logits for a sequence".to_string()),
        n => rows.row(n - 1)?,
    };
    sample_and_stream(seq, last, tokenizer, stops, events)?;
    Ok(true)
}

/// Scores the prompt tokens this chunk's rows predict, and sends the scored prompt once it is
/// complete: before the first delta, which a later step (or this one) produces.
fn score_prompt(
    seq: &mut Sequence,
    rows: &LogitRows<'_>,
    step: &StepOutput,
    events: &UnboundedSender<GenerateEvent>,
) -> std::result::Result<(), String> {
    let prompt_len = seq.prompt_len;
    let Some(scores) = seq.prompt_scores.as_mut() else {
        return Ok(());
    };
    if scores.needs_rows(step.chunk_start, prompt_len) {
        if rows.len() != step.fed {
            return Err(format!(
                "prompt scoring needs {} rows of logits, the model returned {}",
                step.fed,
                rows.len()
            ));
        }
        let prompt = &seq.tokens[..prompt_len];
        // Row by row: a chunk's full logits can be large (rows × vocabulary).
        for j in 0..PromptScores::prompt_rows(step.chunk_start, rows.len(), prompt_len) {
            let row = rows.row(j)?;
            scores
                .add_row(step.chunk_start + j, &row, prompt)
                .map_err(|e| e.to_string())?;
        }
    }
    if let Some(tokens) = scores.take_complete(prompt_len) {
        // A send fails only when the client went away; the next step drops the request.
        events.send(GenerateEvent::PromptLogprobs { tokens }).ok();
    }
    Ok(())
}

/// Samples the next token from the last row and streams its text and, if it ends the
/// sequence, why.
fn sample_and_stream(
    seq: &mut Sequence,
    logits: Vec<f32>,
    tokenizer: &TextTokenizer,
    stops: &StopTokens,
    events: &UnboundedSender<GenerateEvent>,
) -> std::result::Result<(), String> {
    let sampled = seq.sampler.sample(logits).map_err(|e| e.to_string())?;
    let update = seq
        .accept(sampled, tokenizer, stops)
        .map_err(|e| e.to_string())?;
    let choice = seq.choice;
    if !update.text.is_empty() || update.token.is_some() {
        events
            .send(GenerateEvent::Delta {
                choice,
                text: update.text,
                tokens: update.token.into_iter().collect(),
            })
            .ok();
    }
    if let Some((reason, stop)) = update.finish {
        seq.finished = true;
        events
            .send(GenerateEvent::Finished {
                choice,
                reason,
                stop,
            })
            .ok();
    }
    Ok(())
}

/// The rows of one sequence's logits: `[rows, vocab]`, or a bare `[vocab]` row.
struct LogitRows<'a> {
    logits: &'a Tensor,
    rows: usize,
}

impl<'a> LogitRows<'a> {
    fn new(logits: &'a Tensor) -> std::result::Result<Self, String> {
        let rows = match logits.dims() {
            [_] => 1,
            [rows, _] => *rows,
            dims => return Err(format!("the model returned logits of shape {dims:?}")),
        };
        Ok(Self { logits, rows })
    }

    fn len(&self) -> usize {
        self.rows
    }

    fn row(&self, j: usize) -> std::result::Result<Vec<f32>, String> {
        let row = if self.logits.rank() == 1 {
            self.logits.to_vec1::<f32>()
        } else {
            self.logits.get(j).and_then(|r| r.to_vec1::<f32>())
        };
        row.map_err(|e| e.to_string())
    }
}

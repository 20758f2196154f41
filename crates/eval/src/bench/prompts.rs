//! The prompts of a run: the warmup ones and the measured pool, cut to length with the
//! server's `/tokenize` when it has one (several prompts calibrated at once), else
//! approximate, with what the report should say about how they were made.

use std::time::Instant;

use futures_util::StreamExt;

use crate::client::OpenAiClient;
use crate::error::{EvalError, Result};

use super::calibrate::{approximate, calibrate, Prompt};
use super::report::PromptInfo;
use super::{BenchConfig, Endpoint, Observer, Phase, Progress};

/// Distinct prompts for a run bounded only by `--duration` (they are reused in turn).
const DURATION_POOL: usize = 1024;
/// Warmup prompts are drawn from their own index range, so they never repeat a measured one
/// (a server with a prefix cache would otherwise get a head start).
const WARMUP_INDEX_BASE: u64 = 1 << 40;
/// `/tokenize` calls in flight while calibrating.
const CALIBRATION_CONCURRENCY: usize = 8;

/// The warmup prompts and the measured pool, calibrated when the server can count tokens.
pub(super) async fn build_prompts(
    client: &OpenAiClient,
    config: &BenchConfig,
    observer: &dyn Observer,
) -> (Vec<Prompt>, Vec<Prompt>, PromptInfo) {
    let pool = config.num_prompts.unwrap_or(DURATION_POOL);
    let indices: Vec<u64> = (0..config.warmup as u64)
        .map(|j| WARMUP_INDEX_BASE + j)
        .chain(0..pool as u64)
        .collect();
    // Completions count the special tokens the server adds (a BOS); chat prompts are the
    // message content, the template's tokens come on top.
    let add_special = config.endpoint == Endpoint::Completions;
    let (seed, target) = (config.seed, config.input_len);
    let mut info = PromptInfo::default();
    let approximate_note = |why: String| {
        format!(
            "{why}: prompts are {target} words, about {target} tokens (total_input_tokens is \
             still the server's own count when it reports usage)"
        )
    };
    let probe = client.tokenize("Hello world", add_special).await;
    let prompts: Vec<Prompt> = match probe {
        Ok(Some(_)) => {
            observer.phase(&Phase::Calibrating {
                prompts: indices.len(),
            });
            let started = Instant::now();
            let mut calibrated = futures_util::stream::iter(indices.iter().copied())
                .map(|index| {
                    let client = client.clone();
                    async move {
                        let count = |text: String| {
                            let client = client.clone();
                            async move { count_tokens(&client, &text, add_special).await }
                        };
                        calibrate(count, seed, index, target)
                            .await
                            .map_err(|e| (index, e))
                    }
                })
                .buffered(CALIBRATION_CONCURRENCY);
            let (mut out, mut failed, mut short) = (Vec::new(), 0usize, 0usize);
            while let Some(result) = calibrated.next().await {
                let prompt = result.unwrap_or_else(|(index, e)| {
                    tracing::warn!(index, error = %e, "calibrating a prompt failed");
                    failed += 1;
                    approximate(seed, index, target)
                });
                short += usize::from(prompt.tokens != target);
                out.push(prompt);
                observer.progress(&Progress {
                    done: out.len(),
                    failed,
                    elapsed: started.elapsed(),
                });
            }
            info.exact = failed == 0 && short == 0;
            if failed > 0 {
                info.notes.push(format!(
                    "{failed} prompts could not be calibrated (/tokenize failed) and are about \
                     {target} tokens"
                ));
            }
            if short > 0 {
                info.notes.push(format!(
                    "{short} prompts could not be cut to exactly {target} tokens and are a \
                     little shorter"
                ));
            }
            if config.endpoint == Endpoint::Chat {
                info.notes.push(format!(
                    "chat: input-len {target} counts the user message; the server's prompt \
                     tokens (total_input_tokens) include the chat template"
                ));
            }
            out
        }
        Ok(None) => {
            info.notes.push(approximate_note(format!(
                "{} has no /tokenize",
                client.url()
            )));
            indices
                .iter()
                .map(|&i| approximate(seed, i, target))
                .collect()
        }
        Err(e) => {
            tracing::warn!(error = %e, "/tokenize failed; prompt lengths are approximate");
            info.notes
                .push(approximate_note(format!("/tokenize failed ({e})")));
            indices
                .iter()
                .map(|&i| approximate(seed, i, target))
                .collect()
        }
    };
    let mut prompts = prompts;
    let measured = prompts.split_off(config.warmup.min(prompts.len()));
    (prompts, measured, info)
}

async fn count_tokens(client: &OpenAiClient, text: &str, add_special: bool) -> Result<usize> {
    client
        .tokenize(text, add_special)
        .await?
        .map(|tokens| tokens.len())
        .ok_or_else(|| EvalError::BadResponse {
            url: client.url().at_root("/tokenize"),
            reason: "the route disappeared during calibration".into(),
        })
}

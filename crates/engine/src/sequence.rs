//! A request inside the engine ([`Group`]) and its choices ([`Sequence`]): tokens, KV cache,
//! sampler, detokenizer and stop matcher, and what one sampled token does to them.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use switchboard_model::{KvCache, LogitsWanted};
use tokio::sync::mpsc::UnboundedSender;

use crate::detokenizer::IncrementalDecoder;
use crate::error::{EngineError, Result};
use crate::registry::ActiveAdapter;
use crate::request::{FinishReason, GenerateEvent, GeneratedToken, PromptToken, StopMatch, Usage};
use crate::sampler::{check_logits, RawLogprobs, Sampled, Sampler};
use crate::stop::StopMatcher;
use crate::tokenizer::TextTokenizer;

/// One choice of a request: everything the step loop needs to advance it.
pub(crate) struct Sequence {
    pub choice: usize,
    /// Prompt tokens followed by generated ones; `tokens[cache.len()..]` are still to be fed.
    pub tokens: Vec<u32>,
    pub prompt_len: usize,
    pub max_tokens: usize,
    pub cache: KvCache,
    /// KV positions reserved in the engine's budget (0 once finished).
    pub reserved: usize,
    pub sampler: Sampler,
    pub decoder: IncrementalDecoder,
    pub stop: StopMatcher,
    /// Tokens fed in the step being run (0 when not scheduled).
    pub scheduled: usize,
    /// Tokens sampled, EOS and stop tokens included.
    pub completion_tokens: usize,
    pub finished: bool,
    /// Log-probabilities of the prompt being gathered, when the request asked for them (on
    /// choice 0 only: every choice has the same prompt).
    pub prompt_scores: Option<PromptScores>,
}

/// What accepting one sampled token produced.
pub(crate) struct SeqUpdate {
    pub text: String,
    pub token: Option<GeneratedToken>,
    pub finish: Option<(FinishReason, Option<StopMatch>)>,
}

impl Sequence {
    /// Tokens not yet in the KV cache.
    pub fn pending(&self) -> usize {
        self.tokens.len() - self.cache.len()
    }

    /// Which logits the next chunk needs: every row while some of them still predict prompt
    /// tokens that must be scored, else only the last (the one sampling reads).
    pub fn logits_wanted(&self) -> LogitsWanted {
        match &self.prompt_scores {
            Some(scores) if scores.needs_rows(self.cache.len(), self.prompt_len) => {
                LogitsWanted::All
            }
            _ => LogitsWanted::Last,
        }
    }

    fn generated(&self) -> usize {
        self.tokens.len() - self.prompt_len
    }

    /// Applies one sampled token: extends the sequence, produces text, decides whether it ends.
    pub fn accept(
        &mut self,
        sampled: Sampled,
        tokenizer: &TextTokenizer,
        stops: &StopTokens,
    ) -> Result<SeqUpdate> {
        let id = sampled.token;
        self.completion_tokens += 1;
        let token = GeneratedToken {
            id,
            logprob: sampled.logprob,
            top_logprobs: sampled.top_logprobs,
        };
        if stops.ends_generation(id) {
            // The stop token is reported with its logprob (as vLLM does) but adds no text:
            // scorers such as lm-evaluation-harness count on exactly `max_tokens` generated
            // entries after the echoed prompt, whichever token was sampled.
            let (text, matched) = self.finish_text(tokenizer)?;
            let stop = matched.map_or(StopMatch::Token(id), StopMatch::String);
            return Ok(SeqUpdate {
                text,
                token: Some(token),
                finish: Some((FinishReason::Stop, Some(stop))),
            });
        }
        self.tokens.push(id);
        let piece = self.decoder.push(tokenizer, id)?.unwrap_or_default();
        let outcome = self.stop.push(&piece);
        let mut text = outcome.text;
        if let Some(matched) = outcome.stopped {
            return Ok(SeqUpdate {
                text,
                token: Some(token),
                finish: Some((FinishReason::Stop, Some(StopMatch::String(matched)))),
            });
        }
        let mut finish = None;
        if self.generated() >= self.max_tokens {
            let (tail, matched) = self.finish_text(tokenizer)?;
            text.push_str(&tail);
            finish = Some(match matched {
                Some(s) => (FinishReason::Stop, Some(StopMatch::String(s))),
                None => (FinishReason::Length, None),
            });
        }
        Ok(SeqUpdate {
            text,
            token: Some(token),
            finish,
        })
    }

    /// Text held back by the detokenizer and the stop matcher, at the end of the sequence.
    fn finish_text(&mut self, tokenizer: &TextTokenizer) -> Result<(String, Option<String>)> {
        let tail = self.decoder.flush(tokenizer)?.unwrap_or_default();
        let outcome = self.stop.push(&tail);
        if outcome.stopped.is_some() {
            return Ok((outcome.text, outcome.stopped));
        }
        let mut text = outcome.text;
        text.push_str(&self.stop.flush());
        Ok((text, None))
    }
}

/// The prompt log-probabilities of one sequence, gathered over its prefill chunks. Row `j` of a
/// chunk that starts at cache position `s` holds the logits that predict token `s + j + 1`.
pub(crate) struct PromptScores {
    top: usize,
    tokens: Vec<PromptToken>,
    sent: bool,
}

impl PromptScores {
    /// Scores for a prompt starting with `first` (which nothing predicts), with `top`
    /// alternatives per position.
    pub fn new(first: u32, top: usize) -> Self {
        Self {
            top,
            tokens: vec![PromptToken {
                id: first,
                logprob: None,
                top_logprobs: Vec::new(),
            }],
            sent: false,
        }
    }

    /// Whether a chunk starting at `start` has rows predicting prompt tokens not yet scored.
    pub fn needs_rows(&self, start: usize, prompt_len: usize) -> bool {
        !self.sent && start + 1 < prompt_len
    }

    /// How many rows of a chunk of `rows` starting at `start` predict prompt tokens; the row
    /// after them (if any) predicts the first output token and is left to the sampler.
    pub fn prompt_rows(start: usize, rows: usize, prompt_len: usize) -> usize {
        prompt_len.saturating_sub(start + 1).min(rows)
    }

    /// Scores the prompt token that `row`, the logits at cache position `position`, predicts.
    /// Rows must come in position order, starting at 0.
    pub fn add_row(&mut self, position: usize, row: &[f32], prompt: &[u32]) -> Result<()> {
        let expected = self.tokens.len() - 1;
        let Some(&id) = prompt.get(position + 1).filter(|_| position == expected) else {
            return Err(EngineError::Generation(format!(
                "prompt scoring expected the row at position {expected}, got {position}"
            )));
        };
        check_logits(row)?;
        let raw = RawLogprobs::new(row);
        self.tokens.push(PromptToken {
            id,
            logprob: Some(raw.of(id)),
            top_logprobs: raw.top(self.top),
        });
        Ok(())
    }

    /// Every prompt token's entry, once all of them are scored; given out only once.
    pub fn take_complete(&mut self, prompt_len: usize) -> Option<Vec<PromptToken>> {
        if self.sent || self.tokens.len() < prompt_len {
            return None;
        }
        self.sent = true;
        Some(std::mem::take(&mut self.tokens))
    }
}

/// Token ids that end a sequence: EOS (unless `ignore_eos`) and the request's stop tokens.
pub(crate) struct StopTokens {
    pub eos: Arc<BTreeSet<u32>>,
    pub ignore_eos: bool,
    pub extra: Vec<u32>,
}

impl StopTokens {
    fn ends_generation(&self, id: u32) -> bool {
        (!self.ignore_eos && self.eos.contains(&id)) || self.extra.contains(&id)
    }
}

/// One request in the engine: its choices, its adapter hold and its event channel.
pub(crate) struct Group {
    pub id: u64,
    pub events: UnboundedSender<GenerateEvent>,
    /// Keeps the adapter version alive (and resident) until the request ends.
    pub adapter: Option<ActiveAdapter>,
    pub stops: StopTokens,
    pub seqs: Vec<Sequence>,
    pub prompt_tokens: usize,
    pub submitted: Instant,
    /// Ended by an error (already reported on the stream); gets no `Done`.
    pub failed: bool,
}

impl Group {
    /// KV positions the request holds in the budget.
    pub fn reserved(&self) -> usize {
        self.seqs.iter().map(|s| s.reserved).sum()
    }

    /// Whether the client has gone away.
    pub fn is_cancelled(&self) -> bool {
        self.events.is_closed()
    }

    pub fn is_done(&self) -> bool {
        self.seqs.iter().all(|s| s.finished)
    }

    pub fn usage(&self) -> Usage {
        Usage {
            prompt_tokens: self.prompt_tokens,
            completion_tokens: self.seqs.iter().map(|s| s.completion_tokens).sum(),
        }
    }

    /// Reports an error as the request's last event and ends every choice.
    pub fn fail(&mut self, message: &str) {
        self.send(GenerateEvent::Error {
            message: message.to_string(),
        });
        self.failed = true;
        for seq in &mut self.seqs {
            seq.finished = true;
            seq.scheduled = 0;
        }
    }

    /// Sends an event; false when the receiver is gone.
    pub fn send(&self, event: GenerateEvent) -> bool {
        self.events.send(event).is_ok()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn prompt_scores_follow_the_chunks_and_are_given_once() {
        let prompt = [2u32, 0, 1];
        let mut scores = PromptScores::new(prompt[0], 1);
        assert!(scores.needs_rows(0, prompt.len()));
        // A first chunk of one token: its row predicts prompt[1].
        assert_eq!(PromptScores::prompt_rows(0, 1, prompt.len()), 1);
        scores.add_row(0, &[3.0, 0.0, 0.0], &prompt).unwrap();
        assert!(scores.take_complete(prompt.len()).is_none());
        assert!(scores.needs_rows(1, prompt.len()));
        // The last chunk: row 0 predicts prompt[2], row 1 the first output (not scored).
        assert_eq!(PromptScores::prompt_rows(1, 2, prompt.len()), 1);
        scores.add_row(1, &[0.0, 1.0, 0.0], &prompt).unwrap();
        let tokens = scores.take_complete(prompt.len()).unwrap();
        assert_eq!(tokens.iter().map(|t| t.id).collect::<Vec<_>>(), prompt);
        assert_eq!(tokens[0].logprob, None);
        assert!(tokens[0].top_logprobs.is_empty());
        let expected = 3.0 - (3f64.exp() + 2.0).ln();
        assert!((f64::from(tokens[1].logprob.unwrap()) - expected).abs() < 1e-6);
        assert_eq!(tokens[2].top_logprobs[0].token, 1);
        assert!(scores.take_complete(prompt.len()).is_none(), "sent once");
        assert!(!scores.needs_rows(2, prompt.len()));
    }

    #[test]
    fn prompt_scores_refuse_rows_out_of_order_or_past_the_prompt() {
        let prompt = [0u32, 1, 1];
        let mut scores = PromptScores::new(0, 0);
        assert!(scores.add_row(1, &[0.0, 1.0], &prompt).is_err());
        scores.add_row(0, &[0.0, 1.0], &prompt).unwrap();
        scores.add_row(1, &[0.0, 1.0], &prompt).unwrap();
        assert!(scores.add_row(2, &[0.0, 1.0], &prompt).is_err());
        assert!(PromptScores::new(0, 0)
            .add_row(0, &[f32::NAN, 1.0], &prompt)
            .is_err());
    }

    #[test]
    fn a_one_token_prompt_is_complete_at_once() {
        let mut scores = PromptScores::new(5, 3);
        assert!(!scores.needs_rows(0, 1));
        assert_eq!(scores.take_complete(1).unwrap().len(), 1);
    }
}

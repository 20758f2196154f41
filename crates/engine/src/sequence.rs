//! A request inside the engine ([`Group`]) and its choices ([`Sequence`]): tokens, KV cache,
//! sampler, detokenizer and stop matcher, and what one sampled token does to them.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use switchboard_model::KvCache;
use tokio::sync::mpsc::UnboundedSender;

use crate::detokenizer::IncrementalDecoder;
use crate::error::Result;
use crate::registry::ActiveAdapter;
use crate::request::{FinishReason, GenerateEvent, GeneratedToken, StopMatch, Usage};
use crate::sampler::{Sampled, Sampler};
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
        if stops.ends_generation(id) {
            let (text, matched) = self.finish_text(tokenizer)?;
            let stop = matched.map_or(StopMatch::Token(id), StopMatch::String);
            return Ok(SeqUpdate {
                text,
                token: None,
                finish: Some((FinishReason::Stop, Some(stop))),
            });
        }
        self.tokens.push(id);
        let token = GeneratedToken {
            id,
            logprob: sampled.logprob,
            top_logprobs: sampled.top_logprobs,
        };
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

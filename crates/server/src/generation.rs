//! The engine streams of one HTTP request, merged: a completion with several prompts runs one
//! engine request per prompt, and its choices are numbered `prompt * n + choice` as OpenAI does.
//! Timing metrics are recorded as tokens arrive.

use futures_util::stream::{select_all, SelectAll, StreamExt};
use switchboard_engine::{
    FinishReason, GenerateEvent, GeneratedToken, GenerationStream, TextTokenizer, Usage,
};

use crate::metrics::RequestTimer;
use crate::openai::{ChatTokenLogprob, CompletionLogprobs};

type Tagged = futures_util::stream::Map<
    GenerationStream,
    Box<dyn FnMut(GenerateEvent) -> (usize, GenerateEvent) + Send>,
>;

/// What the merged streams produce.
#[derive(Debug)]
pub(crate) enum Update {
    /// New text and tokens of one choice.
    Text {
        choice: usize,
        text: String,
        tokens: Vec<GeneratedToken>,
    },
    /// A choice ended.
    Finished { choice: usize, reason: FinishReason },
    /// Every choice ended; total usage.
    Done(Usage),
    /// The engine failed the request.
    Failed(String),
}

/// The streams of one HTTP request. Dropping it cancels whatever still runs.
pub(crate) struct Generations {
    merged: SelectAll<Tagged>,
    running: usize,
    usage: Usage,
    timer: RequestTimer,
    ended: bool,
}

impl Generations {
    /// Merges `streams` (one per prompt) whose requests each have `n` choices.
    pub fn new(streams: Vec<GenerationStream>, n: usize, timer: RequestTimer) -> Self {
        let running = streams.len();
        let tagged = streams.into_iter().enumerate().map(|(prompt, stream)| {
            let offset = prompt * n;
            let tag: Box<dyn FnMut(GenerateEvent) -> (usize, GenerateEvent) + Send> =
                Box::new(move |event| (offset, event));
            stream.map(tag)
        });
        Self {
            merged: select_all(tagged),
            running,
            usage: Usage::default(),
            timer,
            ended: false,
        }
    }

    /// The next update; `None` after `Done` or `Failed`.
    pub async fn next(&mut self) -> Option<Update> {
        if self.ended {
            return None;
        }
        loop {
            let Some((offset, event)) = self.merged.next().await else {
                self.ended = true;
                return Some(Update::Failed("the engine stopped before finishing".into()));
            };
            match event {
                GenerateEvent::Delta {
                    choice,
                    text,
                    tokens,
                } => {
                    self.timer.tokens(offset + choice, tokens.len());
                    return Some(Update::Text {
                        choice: offset + choice,
                        text,
                        tokens,
                    });
                }
                GenerateEvent::Finished { choice, reason, .. } => {
                    return Some(Update::Finished {
                        choice: offset + choice,
                        reason,
                    })
                }
                GenerateEvent::Done { usage } => {
                    self.usage.prompt_tokens += usage.prompt_tokens;
                    self.usage.completion_tokens += usage.completion_tokens;
                    self.running -= 1;
                    if self.running == 0 {
                        self.ended = true;
                        self.timer.finished(self.usage.prompt_tokens);
                        return Some(Update::Done(self.usage));
                    }
                }
                GenerateEvent::Error { message } => {
                    self.ended = true;
                    return Some(Update::Failed(message));
                }
            }
        }
    }
}

/// A token as text for logprobs: its bytes, lossily as UTF-8.
fn token_text(tokenizer: &TextTokenizer, id: u32) -> (String, Vec<u8>) {
    let bytes = tokenizer.token_bytes(id);
    (String::from_utf8_lossy(&bytes).into_owned(), bytes)
}

/// Chat `logprobs.content` entries of `tokens`.
pub(crate) fn chat_logprobs(
    tokenizer: &TextTokenizer,
    tokens: &[GeneratedToken],
) -> Vec<ChatTokenLogprob> {
    tokens
        .iter()
        .map(|t| {
            let (token, bytes) = token_text(tokenizer, t.id);
            ChatTokenLogprob {
                token,
                logprob: t.logprob.unwrap_or(0.0),
                bytes,
                top_logprobs: Some(
                    t.top_logprobs
                        .iter()
                        .map(|alt| {
                            let (token, bytes) = token_text(tokenizer, alt.token);
                            ChatTokenLogprob {
                                token,
                                logprob: alt.logprob,
                                bytes,
                                top_logprobs: None,
                            }
                        })
                        .collect(),
                ),
            }
        })
        .collect()
}

/// Legacy completion logprobs of `tokens`, whose text starts at `offset` in the choice's text.
pub(crate) fn completion_logprobs(
    tokenizer: &TextTokenizer,
    tokens: &[GeneratedToken],
    mut offset: usize,
) -> CompletionLogprobs {
    let mut out = CompletionLogprobs::default();
    for t in tokens {
        let (text, _) = token_text(tokenizer, t.id);
        out.text_offset.push(offset);
        offset += text.len();
        out.tokens.push(text);
        out.token_logprobs.push(t.logprob.unwrap_or(0.0));
        out.top_logprobs.push(
            t.top_logprobs
                .iter()
                .map(|alt| (token_text(tokenizer, alt.token).0, alt.logprob))
                .collect(),
        );
    }
    out
}

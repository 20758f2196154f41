//! The engine streams of one HTTP request, merged: a completion with several prompts runs one
//! engine request per prompt, and its choices are numbered `prompt * n + choice` as OpenAI does.
//! Timing metrics are recorded as tokens arrive.

use futures_util::stream::{select_all, SelectAll, StreamExt};
use switchboard_engine::{
    FinishReason, GenerateEvent, GeneratedToken, GenerationStream, TextTokenizer, Usage,
};

use crate::error::ApiError;
use crate::metrics::RequestTimer;
use crate::openai::{ChatChoice, ChatTokenLogprob, CompletionChoice, CompletionLogprobs};

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
    /// Whether callers need every token (logprobs) even when it brought no text yet.
    want_tokens: bool,
    ended: bool,
}

impl Generations {
    /// Merges `streams` (one per prompt) whose requests each have `n` choices. Without
    /// `want_tokens`, updates whose text is held back (a partial character, a possible stop
    /// string) are not reported.
    pub fn new(
        streams: Vec<GenerationStream>,
        n: usize,
        timer: RequestTimer,
        want_tokens: bool,
    ) -> Self {
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
            want_tokens,
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
                    if text.is_empty() && !self.want_tokens {
                        continue;
                    }
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

/// One choice of a whole (non-streamed) response, filled as updates arrive.
pub(crate) trait ChoiceSink {
    /// New text of this choice and the tokens behind it.
    fn text(&mut self, tokenizer: &TextTokenizer, text: String, tokens: &[GeneratedToken]);
    /// The choice ended.
    fn finished(&mut self, reason: FinishReason);
}

impl Generations {
    /// Runs every choice to its end, filling `choices` (indexed as the updates are), and
    /// returns the total usage.
    pub async fn collect(
        mut self,
        choices: &mut [impl ChoiceSink],
        tokenizer: &TextTokenizer,
    ) -> Result<Usage, ApiError> {
        loop {
            match self.next().await {
                Some(Update::Text {
                    choice,
                    text,
                    tokens,
                }) => {
                    if let Some(out) = choices.get_mut(choice) {
                        out.text(tokenizer, text, &tokens);
                    }
                }
                Some(Update::Finished { choice, reason }) => {
                    if let Some(out) = choices.get_mut(choice) {
                        out.finished(reason);
                    }
                }
                Some(Update::Done(usage)) => return Ok(usage),
                Some(Update::Failed(message)) => {
                    return Err(ApiError::Internal(format!("generation failed: {message}")))
                }
                None => return Err(ApiError::Internal("the generation ended early".into())),
            }
        }
    }
}

impl ChoiceSink for ChatChoice {
    fn text(&mut self, tokenizer: &TextTokenizer, text: String, tokens: &[GeneratedToken]) {
        self.message.content.push_str(&text);
        if let Some(logprobs) = &mut self.logprobs {
            logprobs.content.extend(chat_logprobs(tokenizer, tokens));
        }
    }

    fn finished(&mut self, reason: FinishReason) {
        self.finish_reason = Some(reason.as_str());
    }
}

impl ChoiceSink for CompletionChoice {
    fn text(&mut self, tokenizer: &TextTokenizer, text: String, tokens: &[GeneratedToken]) {
        if let Some(logprobs) = &mut self.logprobs {
            let more = completion_logprobs(tokenizer, tokens, self.text.len());
            logprobs.tokens.extend(more.tokens);
            logprobs.token_logprobs.extend(more.token_logprobs);
            logprobs.top_logprobs.extend(more.top_logprobs);
            logprobs.text_offset.extend(more.text_offset);
        }
        self.text.push_str(&text);
    }

    fn finished(&mut self, reason: FinishReason) {
        self.finish_reason = Some(reason.as_str());
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

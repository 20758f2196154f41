//! The engine streams of one HTTP request, merged: a completion with several prompts runs one
//! engine request per prompt, and its choices are numbered `prompt * n + choice` as OpenAI does.
//! Timing metrics are recorded as tokens arrive. Also the logprob shapes built from tokens.

use std::collections::BTreeMap;

use futures_util::stream::{select_all, SelectAll, StreamExt};
use switchboard_engine::{
    FinishReason, GenerateEvent, GeneratedToken, GenerationStream, PromptToken, TextTokenizer,
    TokenLogprob, Usage,
};

use crate::error::ApiError;
use crate::metrics::RequestTimer;
use crate::openai::{ChatChoice, ChatTokenLogprob, CompletionLogprobs};

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

/// An [`Update`], or a scored prompt (only requests that asked for prompt logprobs get one).
#[derive(Debug)]
pub(crate) enum Progress {
    /// Prompt `prompt` (its choices are `prompt * n..(prompt + 1) * n`) scored, token by token;
    /// before any update of those choices.
    Prompt {
        prompt: usize,
        tokens: Vec<PromptToken>,
    },
    Update(Update),
}

/// The streams of one HTTP request. Dropping it cancels whatever still runs.
pub(crate) struct Generations {
    merged: SelectAll<Tagged>,
    /// Choices per prompt.
    n: usize,
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
            n: n.max(1),
            running,
            usage: Usage::default(),
            timer,
            want_tokens,
            ended: false,
        }
    }

    /// Choices per prompt.
    pub fn n(&self) -> usize {
        self.n
    }

    /// The next update; `None` after `Done` or `Failed`. Scored prompts are skipped: use
    /// [`Generations::progress`] to see them.
    pub async fn next(&mut self) -> Option<Update> {
        loop {
            match self.progress().await? {
                Progress::Update(update) => return Some(update),
                Progress::Prompt { .. } => continue,
            }
        }
    }

    /// The next update or scored prompt; `None` after `Done` or `Failed`.
    pub async fn progress(&mut self) -> Option<Progress> {
        if self.ended {
            return None;
        }
        loop {
            let Some((offset, event)) = self.merged.next().await else {
                self.ended = true;
                return Some(Progress::Update(Update::Failed(
                    "the engine stopped before finishing".into(),
                )));
            };
            let update = match event {
                GenerateEvent::PromptLogprobs { tokens } => {
                    return Some(Progress::Prompt {
                        prompt: offset / self.n,
                        tokens,
                    })
                }
                GenerateEvent::Delta {
                    choice,
                    text,
                    tokens,
                } => {
                    self.timer.tokens(offset + choice, tokens.len());
                    if text.is_empty() && !self.want_tokens {
                        continue;
                    }
                    Update::Text {
                        choice: offset + choice,
                        text,
                        tokens,
                    }
                }
                GenerateEvent::Finished { choice, reason, .. } => Update::Finished {
                    choice: offset + choice,
                    reason,
                },
                GenerateEvent::Done { usage } => {
                    self.usage.prompt_tokens += usage.prompt_tokens;
                    self.usage.completion_tokens += usage.completion_tokens;
                    self.running -= 1;
                    if self.running > 0 {
                        continue;
                    }
                    self.ended = true;
                    self.timer.finished(self.usage.prompt_tokens);
                    Update::Done(self.usage)
                }
                GenerateEvent::Error { message } => {
                    self.ended = true;
                    Update::Failed(message)
                }
            };
            return Some(Progress::Update(update));
        }
    }
}

/// One choice of a whole (non-streamed) response, filled as updates arrive.
pub(crate) trait ChoiceSink {
    /// The choice's prompt, scored (text completions with `echo` and `logprobs`); comes first.
    fn prompt(&mut self, _tokenizer: &TextTokenizer, _tokens: &[PromptToken]) {}
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
        let n = self.n;
        loop {
            let update = match self.progress().await {
                Some(Progress::Prompt { prompt, tokens }) => {
                    let first = prompt * n;
                    for out in choices.iter_mut().skip(first).take(n) {
                        out.prompt(tokenizer, &tokens);
                    }
                    continue;
                }
                Some(Progress::Update(update)) => update,
                None => return Err(ApiError::Internal("the generation ended early".into())),
            };
            match update {
                Update::Text {
                    choice,
                    text,
                    tokens,
                } => {
                    if let Some(out) = choices.get_mut(choice) {
                        out.text(tokenizer, text, &tokens);
                    }
                }
                Update::Finished { choice, reason } => {
                    if let Some(out) = choices.get_mut(choice) {
                        out.finished(reason);
                    }
                }
                Update::Done(usage) => return Ok(usage),
                Update::Failed(message) => {
                    return Err(ApiError::Internal(format!("generation failed: {message}")))
                }
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
                logprob: clamp(t.logprob.unwrap_or(0.0)),
                bytes,
                top_logprobs: Some(
                    t.top_logprobs
                        .iter()
                        .map(|alt| {
                            let (token, bytes) = token_text(tokenizer, alt.token);
                            ChatTokenLogprob {
                                token,
                                logprob: clamp(alt.logprob),
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

/// The lowest logprob reported, as vLLM clamps: JSON has no −∞, and clients sum these.
pub(crate) const MIN_LOGPROB: f32 = -9999.0;

fn clamp(logprob: f32) -> f32 {
    // NaN never reaches here (the engine refuses NaN logits); max() would pick the bound.
    logprob.max(MIN_LOGPROB)
}

/// One scored token, generated or from the prompt.
pub(crate) struct ScoredToken<'a> {
    pub id: u32,
    /// `None` for the first prompt token, which nothing predicts.
    pub logprob: Option<f32>,
    pub top: &'a [TokenLogprob],
}

impl<'a> From<&'a GeneratedToken> for ScoredToken<'a> {
    fn from(t: &'a GeneratedToken) -> Self {
        Self {
            id: t.id,
            logprob: t.logprob,
            top: &t.top_logprobs,
        }
    }
}

impl<'a> From<&'a PromptToken> for ScoredToken<'a> {
    fn from(t: &'a PromptToken) -> Self {
        Self {
            id: t.id,
            logprob: t.logprob,
            top: &t.top_logprobs,
        }
    }
}

impl CompletionLogprobs {
    /// Appends `tokens`, the first of which starts at character `offset` of the choice's text
    /// (each next one after the previous token's text); returns the offset after the last.
    /// `top_logprobs[i]` holds the alternatives and always the actual token (up to k + 1
    /// entries, as OpenAI and vLLM report them); an unscored token gets `null` in both lists.
    pub(crate) fn extend<'a>(
        &mut self,
        tokenizer: &TextTokenizer,
        tokens: impl IntoIterator<Item = ScoredToken<'a>>,
        mut offset: usize,
    ) -> usize {
        for t in tokens {
            let (text, _) = token_text(tokenizer, t.id);
            self.text_offset.push(offset);
            offset += text.chars().count();
            let top = t.logprob.map(|logprob| {
                let mut top: BTreeMap<String, f32> = t
                    .top
                    .iter()
                    .map(|alt| (token_text(tokenizer, alt.token).0, clamp(alt.logprob)))
                    .collect();
                top.insert(text.clone(), clamp(logprob));
                top
            });
            self.token_logprobs.push(t.logprob.map(clamp));
            self.top_logprobs.push(top);
            self.tokens.push(text);
        }
        offset
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn tokenizer() -> TextTokenizer {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/golden/base");
        TextTokenizer::from_dir(&dir).unwrap()
    }

    #[test]
    fn legacy_logprobs_hold_the_token_clamp_and_count_characters() {
        let tokenizer = tokenizer();
        let ascii = tokenizer.encode("the cell").unwrap();
        // A two-byte character: two byte tokens, each shown as U+FFFD (1 char, 3 bytes).
        let split = tokenizer.encode("é").unwrap();
        assert_eq!((ascii.len(), split.len()), (2, 2));
        let alt = |token, logprob| TokenLogprob { token, logprob };
        let prompt = [
            PromptToken {
                id: ascii[0],
                logprob: None,
                top_logprobs: Vec::new(),
            },
            PromptToken {
                id: ascii[1],
                logprob: Some(f32::NEG_INFINITY),
                top_logprobs: vec![alt(split[0], -0.5)],
            },
        ];
        let generated = [GeneratedToken {
            id: split[1],
            logprob: Some(-0.5),
            top_logprobs: vec![alt(split[1], -0.5)],
        }];
        let mut out = CompletionLogprobs::default();
        let end = out.extend(&tokenizer, prompt.iter().map(ScoredToken::from), 0);
        let end = out.extend(&tokenizer, generated.iter().map(ScoredToken::from), end);

        assert_eq!(out.token_logprobs, [None, Some(MIN_LOGPROB), Some(-0.5)]);
        assert_eq!(out.top_logprobs[0], None);
        // The alternative and the actual token: k + 1 entries, both clamped.
        let top = out.top_logprobs[1].as_ref().unwrap();
        assert_eq!(top.len(), 2);
        assert_eq!(top[&out.tokens[1]], MIN_LOGPROB);
        // The actual token is also the alternative: one entry.
        assert_eq!(out.top_logprobs[2].as_ref().unwrap().len(), 1);
        let text: String = out.tokens.concat();
        let chars = |s: &str| s.chars().count();
        assert_eq!(out.text_offset[0], 0);
        assert_eq!(out.text_offset[1], chars(&out.tokens[0]));
        assert_eq!(
            out.text_offset[2],
            chars(&out.tokens[0]) + chars(&out.tokens[1])
        );
        assert_eq!(end, chars(&text));
    }

    #[test]
    fn chat_logprobs_are_clamped() {
        let tokenizer = tokenizer();
        let token = GeneratedToken {
            id: 5,
            logprob: Some(f32::NEG_INFINITY),
            top_logprobs: vec![TokenLogprob {
                token: 6,
                logprob: -1e30,
            }],
        };
        let out = chat_logprobs(&tokenizer, &[token]);
        assert_eq!(out[0].logprob, MIN_LOGPROB);
        assert_eq!(
            out[0].top_logprobs.as_ref().unwrap()[0].logprob,
            MIN_LOGPROB
        );
    }
}

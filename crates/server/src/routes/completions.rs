//! `POST /v1/completions`: text completion of one or several prompts, whole or streamed, with
//! `echo` (the prompt before the completion, scored token by token with `logprobs`: what
//! lm-evaluation-harness reads for loglikelihood tasks).

use std::convert::Infallible;
use std::time::Instant;

use axum::extract::State;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use switchboard_engine::{
    ChatMessage, FinishReason, GenerateRequest, GeneratedToken, Prompt, PromptToken, TextTokenizer,
    Usage,
};

use super::reply::{sse, Advance, Outbox, Reply};
use super::{json_response, label_response, ApiJson};
use crate::augment::parse_rag;
use crate::error::ApiError;
use crate::generation::{ChoiceSink, Generations, Progress, ScoredToken, Update};
use crate::metrics::{adapter_label, RequestTimer};
use crate::openai::{
    CompletionChoice, CompletionLogprobs, CompletionRequest, CompletionResponse, WireUsage,
};
use crate::pipeline;
use crate::state::{AppState, AUTO_MODEL};
use crate::validate::{self, CompletionPrompt};

pub(super) async fn completions(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<CompletionRequest>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let spec = validate::completion(&request)?;
    if parse_rag(request.sampling.rag.as_ref())?.enabled == Some(true) {
        return Err(ApiError::invalid(
            "rag",
            "retrieval is available on /v1/chat/completions only",
        ));
    }
    let auto = request.model == AUTO_MODEL;
    let tokenizer = state.engine().tokenizer().clone();
    // `auto` routes on the first prompt's text, as if a user had typed it.
    let routing_text = match &spec.prompts[0] {
        CompletionPrompt::Text(text) => text.clone(),
        CompletionPrompt::Tokens(ids) => tokenizer.decode(ids, true).unwrap_or_default(),
    };
    let mut target = pipeline::resolve(
        &state,
        &request.model,
        &[ChatMessage::new("user", routing_text)],
    )?;
    let n = spec.params.n;
    let want_logprobs = spec.params.logprobs;
    let mut streams = Vec::with_capacity(spec.prompts.len());
    for prompt in &spec.prompts {
        let prompt = match prompt {
            CompletionPrompt::Text(text) => Prompt::Text(text.clone()),
            CompletionPrompt::Tokens(ids) => Prompt::Tokens(ids.clone()),
        };
        let generate = GenerateRequest::new(prompt, target.adapter(), spec.params.clone());
        streams.push(pipeline::submit(&state, generate, &mut target, auto).await?);
    }
    let echo = Echo {
        texts: if spec.echo {
            echo_texts(&tokenizer, spec.prompts)?
        } else {
            Vec::new()
        },
        n,
        hide_generated: spec.hide_generated,
    };
    let choices = streams.len() * n;
    let timer = RequestTimer::new(adapter_label(target.adapter()), started);
    let generations = Generations::new(streams, n, timer, want_logprobs);
    let reply = Reply::new("cmpl", &state, target, None, want_logprobs);
    let model = reply.target.model.clone();
    let adapter = reply.target.adapter().map(str::to_string);
    let response = if spec.delivery.stream {
        stream_chunks(
            reply,
            generations,
            echo,
            choices,
            spec.delivery.include_usage,
        )
        .into_response()
    } else {
        whole(reply, generations, echo, choices).await?
    };
    Ok(label_response(response, &model, adapter.as_deref()))
}

/// The text `echo` puts before each prompt's completions: a text prompt as given, token ids
/// detokenized with their special tokens (so the text matches the echoed tokens).
fn echo_texts(
    tokenizer: &TextTokenizer,
    prompts: Vec<CompletionPrompt>,
) -> Result<Vec<String>, ApiError> {
    prompts
        .into_iter()
        .map(|prompt| match prompt {
            CompletionPrompt::Text(text) => Ok(text),
            CompletionPrompt::Tokens(ids) => Ok(tokenizer.decode(&ids, false)?),
        })
        .collect()
}

/// What `echo` adds to a response.
struct Echo {
    /// The prompts' texts, in prompt order; empty without `echo`.
    texts: Vec<String>,
    /// Choices per prompt.
    n: usize,
    /// `max_tokens: 0`: the one token generated internally is neither shown nor counted.
    hide_generated: bool,
}

impl Echo {
    fn enabled(&self) -> bool {
        !self.texts.is_empty()
    }

    /// The echoed text of choice `index`.
    fn text(&self, index: usize) -> String {
        self.texts
            .get(index / self.n.max(1))
            .cloned()
            .unwrap_or_default()
    }

    /// Usage as the client sees it: a hidden token is not a completion token.
    fn usage(&self, usage: Usage) -> WireUsage {
        let mut wire = WireUsage::from(usage);
        if self.hide_generated {
            wire.completion_tokens = 0;
            wire.total_tokens = wire.prompt_tokens;
        }
        wire
    }
}

fn response(reply: &Reply, choices: Vec<CompletionChoice>) -> CompletionResponse {
    CompletionResponse {
        id: reply.id.clone(),
        object: "text_completion",
        created: reply.created,
        model: reply.target.model.clone(),
        choices,
        usage: None,
        route: None,
    }
}

/// Where a choice's text stands in the logprobs' character accounting.
#[derive(Debug, Clone, Copy, Default)]
struct TextOffsets {
    /// Offset of the first generated character: 0, or after the echoed prompt's tokens.
    generated_start: usize,
    /// Characters generated so far.
    generated: usize,
}

impl TextOffsets {
    fn next(&self) -> usize {
        self.generated_start + self.generated
    }
}

/// One choice of a whole completion, filled as the engine reports: the echoed prompt first,
/// then the generated text.
struct ChoiceBuilder {
    choice: CompletionChoice,
    offsets: TextOffsets,
    hide_generated: bool,
}

impl ChoiceSink for ChoiceBuilder {
    fn prompt(&mut self, tokenizer: &TextTokenizer, tokens: &[PromptToken]) {
        if let Some(logprobs) = &mut self.choice.logprobs {
            let scored = tokens.iter().map(ScoredToken::from);
            self.offsets.generated_start = logprobs.extend(tokenizer, scored, 0);
        }
    }

    fn text(&mut self, tokenizer: &TextTokenizer, text: String, tokens: &[GeneratedToken]) {
        if self.hide_generated {
            return;
        }
        if let Some(logprobs) = &mut self.choice.logprobs {
            let scored = tokens.iter().map(ScoredToken::from);
            logprobs.extend(tokenizer, scored, self.offsets.next());
        }
        self.offsets.generated += text.chars().count();
        self.choice.text.push_str(&text);
    }

    fn finished(&mut self, reason: FinishReason) {
        self.choice.finish_reason = Some(reason.as_str());
    }
}

async fn whole(
    reply: Reply,
    generations: Generations,
    echo: Echo,
    count: usize,
) -> Result<Response, ApiError> {
    let mut choices: Vec<ChoiceBuilder> = (0..count)
        .map(|index| ChoiceBuilder {
            choice: CompletionChoice {
                index,
                text: echo.text(index),
                logprobs: reply.want_logprobs.then(CompletionLogprobs::default),
                finish_reason: None,
            },
            offsets: TextOffsets::default(),
            hide_generated: echo.hide_generated,
        })
        .collect();
    let usage = generations.collect(&mut choices, &reply.tokenizer).await?;
    let choices = choices.into_iter().map(|c| c.choice).collect();
    let mut response = response(&reply, choices);
    response.usage = Some(echo.usage(usage));
    response.route = Some(reply.target.route.clone());
    Ok(json_response(&response))
}

struct ChunkStream {
    reply: Reply,
    generations: Generations,
    echo: Echo,
    include_usage: bool,
    offsets: Vec<TextOffsets>,
    first: bool,
    outbox: Outbox,
}

/// The SSE stream. With `echo`, each choice's first chunk holds its prompt (with the scored
/// prompt tokens when `logprobs` is set); no chunk without text or tokens precedes the first
/// generated token.
fn stream_chunks(
    reply: Reply,
    generations: Generations,
    echo: Echo,
    count: usize,
    include_usage: bool,
) -> Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>> {
    let mut stream = ChunkStream {
        reply,
        generations,
        echo,
        include_usage,
        offsets: vec![TextOffsets::default(); count],
        first: true,
        outbox: Outbox::default(),
    };
    // Without logprobs there is nothing to wait for: the echo goes out at once.
    if stream.echo.enabled() && !stream.reply.want_logprobs {
        for index in 0..count {
            let text = stream.echo.text(index);
            stream.push(CompletionChoice {
                index,
                text,
                logprobs: None,
                finish_reason: None,
            });
        }
    }
    sse(stream)
}

impl ChunkStream {
    fn push(&mut self, choice: CompletionChoice) {
        let mut chunk = response(&self.reply, vec![choice]);
        if std::mem::take(&mut self.first) {
            chunk.route = Some(self.reply.target.route.clone());
        }
        self.outbox.push(&chunk);
    }

    /// The echo chunk of every choice of prompt `prompt`, with its scored tokens.
    fn push_prompt(&mut self, prompt: usize, tokens: &[PromptToken]) {
        let n = self.generations.n();
        for index in prompt * n..(prompt + 1) * n {
            let mut logprobs = CompletionLogprobs::default();
            let scored = tokens.iter().map(ScoredToken::from);
            let end = logprobs.extend(&self.reply.tokenizer, scored, 0);
            if let Some(offsets) = self.offsets.get_mut(index) {
                offsets.generated_start = end;
            }
            let text = self.echo.text(index);
            self.push(CompletionChoice {
                index,
                text,
                logprobs: Some(logprobs),
                finish_reason: None,
            });
        }
    }

    fn push_text(&mut self, index: usize, text: String, tokens: &[GeneratedToken]) {
        if self.echo.hide_generated {
            return;
        }
        let offsets = self.offsets.get(index).copied().unwrap_or_default();
        let logprobs = self.reply.want_logprobs.then(|| {
            let mut logprobs = CompletionLogprobs::default();
            let scored = tokens.iter().map(ScoredToken::from);
            logprobs.extend(&self.reply.tokenizer, scored, offsets.next());
            logprobs
        });
        if let Some(offsets) = self.offsets.get_mut(index) {
            offsets.generated += text.chars().count();
        }
        self.push(CompletionChoice {
            index,
            text,
            logprobs,
            finish_reason: None,
        });
    }
}

impl Advance for ChunkStream {
    fn outbox(&mut self) -> &mut Outbox {
        &mut self.outbox
    }

    async fn advance(&mut self) {
        let update = match self.generations.progress().await {
            Some(Progress::Prompt { prompt, tokens }) => {
                // Prompt scoring is asked for only with echo.
                if self.echo.enabled() {
                    self.push_prompt(prompt, &tokens);
                }
                return;
            }
            Some(Progress::Update(update)) => update,
            None => return self.outbox.fail("the generation ended early".into()),
        };
        match update {
            Update::Text {
                choice,
                text,
                tokens,
            } => self.push_text(choice, text, &tokens),
            Update::Finished { choice, reason } => self.push(CompletionChoice {
                index: choice,
                text: String::new(),
                logprobs: None,
                finish_reason: Some(reason.as_str()),
            }),
            Update::Done(usage) => {
                if self.include_usage {
                    let mut chunk = response(&self.reply, Vec::new());
                    chunk.usage = Some(self.echo.usage(usage));
                    self.outbox.push(&chunk);
                }
                self.outbox.close();
            }
            Update::Failed(message) => self.outbox.fail(message),
        }
    }
}

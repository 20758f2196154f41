//! `POST /v1/completions`: text completion of one or several prompts, whole or streamed.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use switchboard_engine::{ChatMessage, GenerateRequest, Prompt, TextTokenizer};

use super::chat::{data, random_id};
use super::{json_response, label_response, ApiJson};
use crate::augment::parse_rag;
use crate::error::ApiError;
use crate::generation::{completion_logprobs, Generations, Update};
use crate::metrics::{adapter_label, RequestTimer};
use crate::openai::{
    CompletionChoice, CompletionLogprobs, CompletionRequest, CompletionResponse, WireUsage,
};
use crate::pipeline::{self, Target};
use crate::state::{unix_now, AppState, AUTO_MODEL};
use crate::validate::{self, CompletionPrompt};

pub(super) async fn completions(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<CompletionRequest>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let (prompts, params, delivery) = validate::completion(&request)?;
    if parse_rag(request.sampling.rag.as_ref())?.enabled == Some(true) {
        return Err(ApiError::invalid(
            "rag",
            "retrieval is available on /v1/chat/completions only",
        ));
    }
    let auto = request.model == AUTO_MODEL;
    // `auto` routes on the first prompt's text, as if a user had typed it.
    let routing_text = match &prompts[0] {
        CompletionPrompt::Text(text) => text.clone(),
        CompletionPrompt::Tokens(ids) => state
            .engine()
            .tokenizer()
            .decode(ids, true)
            .unwrap_or_default(),
    };
    let mut target = pipeline::resolve(
        &state,
        &request.model,
        &[ChatMessage::new("user", routing_text)],
    )?;
    let n = params.n;
    let want_logprobs = params.logprobs;
    let mut streams = Vec::with_capacity(prompts.len());
    for prompt in prompts {
        let prompt = match prompt {
            CompletionPrompt::Text(text) => Prompt::Text(text),
            CompletionPrompt::Tokens(ids) => Prompt::Tokens(ids),
        };
        let generate = GenerateRequest::new(prompt, target.adapter(), params.clone());
        streams.push(pipeline::submit(&state, generate, &mut target, auto).await?);
    }
    let choices = streams.len() * n;
    let timer = RequestTimer::new(adapter_label(target.adapter()), started);
    let generations = Generations::new(streams, n, timer);
    let reply = Reply {
        id: format!("cmpl-{}", random_id()),
        created: unix_now(),
        target,
        tokenizer: state.engine().tokenizer().clone(),
        want_logprobs,
    };
    let model = reply.target.model.clone();
    let adapter = reply.target.adapter().map(str::to_string);
    let response = if delivery.stream {
        stream_chunks(reply, generations, choices, delivery.include_usage).into_response()
    } else {
        whole(reply, generations, choices).await?
    };
    Ok(label_response(response, &model, adapter.as_deref()))
}

struct Reply {
    id: String,
    created: u64,
    target: Target,
    tokenizer: Arc<TextTokenizer>,
    want_logprobs: bool,
}

impl Reply {
    fn response(&self, choices: Vec<CompletionChoice>) -> CompletionResponse {
        CompletionResponse {
            id: self.id.clone(),
            object: "text_completion",
            created: self.created,
            model: self.target.model.clone(),
            choices,
            usage: None,
            route: None,
        }
    }
}

fn wire_usage(usage: switchboard_engine::Usage) -> WireUsage {
    WireUsage {
        prompt_tokens: usage.prompt_tokens,
        completion_tokens: usage.completion_tokens,
        total_tokens: usage.total_tokens(),
    }
}

async fn whole(
    reply: Reply,
    mut generations: Generations,
    count: usize,
) -> Result<Response, ApiError> {
    let mut choices: Vec<CompletionChoice> = (0..count)
        .map(|index| CompletionChoice {
            index,
            text: String::new(),
            logprobs: reply.want_logprobs.then(CompletionLogprobs::default),
            finish_reason: None,
        })
        .collect();
    let usage = loop {
        match generations.next().await {
            Some(Update::Text {
                choice,
                text,
                tokens,
            }) => {
                let Some(out) = choices.get_mut(choice) else {
                    continue;
                };
                if let Some(logprobs) = &mut out.logprobs {
                    let more = completion_logprobs(&reply.tokenizer, &tokens, out.text.len());
                    logprobs.tokens.extend(more.tokens);
                    logprobs.token_logprobs.extend(more.token_logprobs);
                    logprobs.top_logprobs.extend(more.top_logprobs);
                    logprobs.text_offset.extend(more.text_offset);
                }
                out.text.push_str(&text);
            }
            Some(Update::Finished { choice, reason }) => {
                if let Some(out) = choices.get_mut(choice) {
                    out.finish_reason = Some(reason.as_str());
                }
            }
            Some(Update::Done(usage)) => break usage,
            Some(Update::Failed(message)) => {
                return Err(ApiError::Internal(format!("generation failed: {message}")))
            }
            None => return Err(ApiError::Internal("the generation ended early".into())),
        }
    };
    let mut response = reply.response(choices);
    response.usage = Some(wire_usage(usage));
    response.route = Some(reply.target.route.clone());
    Ok(json_response(&response))
}

struct ChunkStream {
    reply: Reply,
    generations: Generations,
    include_usage: bool,
    /// Characters sent so far per choice (for logprobs' text offsets).
    sent: Vec<usize>,
    pending: VecDeque<Event>,
    first: bool,
    finished: bool,
}

fn stream_chunks(
    reply: Reply,
    generations: Generations,
    count: usize,
    include_usage: bool,
) -> Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>> {
    let state = ChunkStream {
        reply,
        generations,
        include_usage,
        sent: vec![0; count],
        pending: VecDeque::new(),
        first: true,
        finished: false,
    };
    let events = futures_util::stream::unfold(state, |mut s| async move {
        loop {
            if let Some(event) = s.pending.pop_front() {
                return Some((Ok(event), s));
            }
            if s.finished {
                return None;
            }
            s.advance().await;
        }
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}

impl ChunkStream {
    fn push(&mut self, choice: CompletionChoice) {
        let mut chunk = self.reply.response(vec![choice]);
        if std::mem::take(&mut self.first) {
            chunk.route = Some(self.reply.target.route.clone());
        }
        self.pending.push_back(data(&chunk));
    }

    async fn advance(&mut self) {
        match self.generations.next().await {
            Some(Update::Text { text, .. }) if text.is_empty() && !self.reply.want_logprobs => {}
            Some(Update::Text {
                choice,
                text,
                tokens,
            }) => {
                let offset = self.sent.get(choice).copied().unwrap_or(0);
                let logprobs = self
                    .reply
                    .want_logprobs
                    .then(|| completion_logprobs(&self.reply.tokenizer, &tokens, offset));
                if let Some(sent) = self.sent.get_mut(choice) {
                    *sent += text.len();
                }
                self.push(CompletionChoice {
                    index: choice,
                    text,
                    logprobs,
                    finish_reason: None,
                });
            }
            Some(Update::Finished { choice, reason }) => self.push(CompletionChoice {
                index: choice,
                text: String::new(),
                logprobs: None,
                finish_reason: Some(reason.as_str()),
            }),
            Some(Update::Done(usage)) => {
                if self.include_usage {
                    let mut chunk = self.reply.response(Vec::new());
                    chunk.usage = Some(wire_usage(usage));
                    self.pending.push_back(data(&chunk));
                }
                self.pending.push_back(Event::default().data("[DONE]"));
                self.finished = true;
            }
            Some(Update::Failed(message)) => self.fail(message),
            None => self.fail("the generation ended early".into()),
        }
    }

    fn fail(&mut self, message: String) {
        tracing::error!(%message, "generation failed mid-stream");
        self.pending
            .push_back(data(&ApiError::Internal(message).body()));
        self.pending.push_back(Event::default().data("[DONE]"));
        self.finished = true;
    }
}

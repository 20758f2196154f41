//! `POST /v1/completions`: text completion of one or several prompts, whole or streamed.

use std::convert::Infallible;
use std::time::Instant;

use axum::extract::State;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use switchboard_engine::{ChatMessage, GenerateRequest, Prompt};

use super::reply::{sse, Advance, Outbox, Reply};
use super::{json_response, label_response, ApiJson};
use crate::augment::parse_rag;
use crate::error::ApiError;
use crate::generation::{completion_logprobs, Generations, Update};
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
    let generations = Generations::new(streams, n, timer, want_logprobs);
    let reply = Reply::new("cmpl", &state, target, None, want_logprobs);
    let model = reply.target.model.clone();
    let adapter = reply.target.adapter().map(str::to_string);
    let response = if delivery.stream {
        stream_chunks(reply, generations, choices, delivery.include_usage).into_response()
    } else {
        whole(reply, generations, choices).await?
    };
    Ok(label_response(response, &model, adapter.as_deref()))
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

async fn whole(reply: Reply, generations: Generations, count: usize) -> Result<Response, ApiError> {
    let mut choices: Vec<CompletionChoice> = (0..count)
        .map(|index| CompletionChoice {
            index,
            text: String::new(),
            logprobs: reply.want_logprobs.then(CompletionLogprobs::default),
            finish_reason: None,
        })
        .collect();
    let usage = generations.collect(&mut choices, &reply.tokenizer).await?;
    let mut response = response(&reply, choices);
    response.usage = Some(WireUsage::from(usage));
    response.route = Some(reply.target.route.clone());
    Ok(json_response(&response))
}

struct ChunkStream {
    reply: Reply,
    generations: Generations,
    include_usage: bool,
    /// Bytes of text sent so far per choice (for logprobs' text offsets).
    sent: Vec<usize>,
    first: bool,
    outbox: Outbox,
}

fn stream_chunks(
    reply: Reply,
    generations: Generations,
    count: usize,
    include_usage: bool,
) -> Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>> {
    sse(ChunkStream {
        reply,
        generations,
        include_usage,
        sent: vec![0; count],
        first: true,
        outbox: Outbox::default(),
    })
}

impl ChunkStream {
    fn push(&mut self, choice: CompletionChoice) {
        let mut chunk = response(&self.reply, vec![choice]);
        if std::mem::take(&mut self.first) {
            chunk.route = Some(self.reply.target.route.clone());
        }
        self.outbox.push(&chunk);
    }
}

impl Advance for ChunkStream {
    fn outbox(&mut self) -> &mut Outbox {
        &mut self.outbox
    }

    async fn advance(&mut self) {
        match self.generations.next().await {
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
                    let mut chunk = response(&self.reply, Vec::new());
                    chunk.usage = Some(WireUsage::from(usage));
                    self.outbox.push(&chunk);
                }
                self.outbox.close();
            }
            Some(Update::Failed(message)) => self.outbox.fail(message),
            None => self.outbox.fail("the generation ended early".into()),
        }
    }
}

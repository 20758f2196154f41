//! `POST /v1/chat/completions`, whole or streamed as `chat.completion.chunk` events.

use std::convert::Infallible;
use std::time::Instant;

use axum::extract::State;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use switchboard_engine::{GenerateRequest, Prompt};

use super::reply::{sse, Advance, Outbox, Reply};
use super::{json_response, label_response, ApiJson};
use crate::augment::{augment_chat, parse_rag};
use crate::error::ApiError;
use crate::generation::{chat_logprobs, Generations, Update};
use crate::metrics::{adapter_label, RequestTimer};
use crate::openai::{
    AssistantMessage, ChatChoice, ChatChunkChoice, ChatCompletionChunk, ChatCompletionRequest,
    ChatCompletionResponse, ChatDelta, ChatLogprobs, WireUsage,
};
use crate::pipeline;
use crate::state::{AppState, AUTO_MODEL};
use crate::validate;

pub(super) async fn chat_completions(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<ChatCompletionRequest>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let (mut messages, params, delivery) = validate::chat(&request)?;
    let rag = parse_rag(request.sampling.rag.as_ref())?;
    let auto = request.model == AUTO_MODEL;
    let mut target = pipeline::resolve(&state, &request.model, &messages)?;
    let sources = augment_chat(&state, &rag, &target, &mut messages, &params).await?;
    let n = params.n;
    let want_logprobs = params.logprobs;
    let generate = GenerateRequest::new(Prompt::Chat(messages), target.adapter(), params);
    let stream = pipeline::submit(&state, generate, &mut target, auto).await?;
    let timer = RequestTimer::new(adapter_label(target.adapter()), started);
    let generations = Generations::new(vec![stream], n, timer, want_logprobs);
    let reply = Reply::new("chatcmpl", &state, target, sources, want_logprobs);
    let model = reply.target.model.clone();
    let adapter = reply.target.adapter().map(str::to_string);
    let response = if delivery.stream {
        stream_chunks(reply, generations, n, delivery.include_usage).into_response()
    } else {
        whole(reply, generations, n).await?
    };
    Ok(label_response(response, &model, adapter.as_deref()))
}

async fn whole(reply: Reply, generations: Generations, n: usize) -> Result<Response, ApiError> {
    let mut choices: Vec<ChatChoice> = (0..n)
        .map(|index| ChatChoice {
            index,
            message: AssistantMessage {
                role: "assistant",
                content: String::new(),
            },
            logprobs: reply.want_logprobs.then(ChatLogprobs::default),
            finish_reason: None,
        })
        .collect();
    let usage = generations.collect(&mut choices, &reply.tokenizer).await?;
    Ok(json_response(&ChatCompletionResponse {
        id: reply.id,
        object: "chat.completion",
        created: reply.created,
        model: reply.target.model,
        choices,
        usage: WireUsage::from(usage),
        route: reply.target.route,
        sources: reply.sources,
    }))
}

/// The SSE stream: a first chunk per choice with the role (and the `route` and `sources`
/// extensions on the very first), content chunks, a finish chunk per choice, the usage chunk
/// when asked, then `[DONE]`.
fn stream_chunks(
    reply: Reply,
    generations: Generations,
    n: usize,
    include_usage: bool,
) -> Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>> {
    let mut outbox = Outbox::default();
    for index in 0..n {
        let delta = ChatDelta {
            role: Some("assistant"),
            content: Some(String::new()),
        };
        let mut first = chunk(&reply, index, delta);
        if index == 0 {
            first.route = Some(reply.target.route.clone());
            first.sources = reply.sources.clone();
        }
        outbox.push(&first);
    }
    sse(ChunkStream {
        reply,
        generations,
        include_usage,
        outbox,
    })
}

struct ChunkStream {
    reply: Reply,
    generations: Generations,
    include_usage: bool,
    outbox: Outbox,
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
                let delta = ChatDelta {
                    role: None,
                    content: Some(text),
                };
                let mut c = chunk(&self.reply, choice, delta);
                if self.reply.want_logprobs {
                    c.choices[0].logprobs = Some(ChatLogprobs {
                        content: chat_logprobs(&self.reply.tokenizer, &tokens),
                    });
                }
                self.outbox.push(&c);
            }
            Some(Update::Finished { choice, reason }) => {
                let mut c = chunk(&self.reply, choice, ChatDelta::default());
                c.choices[0].finish_reason = Some(reason.as_str());
                self.outbox.push(&c);
            }
            Some(Update::Done(usage)) => {
                if self.include_usage {
                    let mut c = chunk(&self.reply, 0, ChatDelta::default());
                    c.choices.clear();
                    c.usage = Some(WireUsage::from(usage));
                    self.outbox.push(&c);
                }
                self.outbox.close();
            }
            Some(Update::Failed(message)) => self.outbox.fail(message),
            None => self.outbox.fail("the generation ended early".into()),
        }
    }
}

fn chunk(reply: &Reply, index: usize, delta: ChatDelta) -> ChatCompletionChunk {
    ChatCompletionChunk {
        id: reply.id.clone(),
        object: "chat.completion.chunk",
        created: reply.created,
        model: reply.target.model.clone(),
        choices: vec![ChatChunkChoice {
            index,
            delta,
            logprobs: None,
            finish_reason: None,
        }],
        usage: None,
        route: None,
        sources: None,
    }
}

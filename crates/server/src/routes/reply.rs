//! What chat and text completions share: the identity of a reply, and the server-sent-event
//! plumbing that turns engine updates into queued events for the client.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use axum::response::sse::{Event, KeepAlive, Sse};
use switchboard_engine::TextTokenizer;

use crate::error::ApiError;
use crate::openai::Source;
use crate::pipeline::Target;
use crate::state::{unix_now, AppState};

/// What every response or chunk of one request shares.
pub(super) struct Reply {
    pub id: String,
    pub created: u64,
    pub target: Target,
    pub sources: Option<Vec<Source>>,
    pub tokenizer: Arc<TextTokenizer>,
    pub want_logprobs: bool,
}

impl Reply {
    /// A reply with an id like `chatcmpl-…` for `prefix` `chatcmpl`.
    pub fn new(
        prefix: &str,
        state: &AppState,
        target: Target,
        sources: Option<Vec<Source>>,
        want_logprobs: bool,
    ) -> Self {
        Self {
            id: format!("{prefix}-{}", random_id()),
            created: unix_now(),
            target,
            sources,
            tokenizer: state.engine().tokenizer().clone(),
            want_logprobs,
        }
    }
}

/// Events waiting to go to the client, and whether the last one is among them.
#[derive(Default)]
pub(super) struct Outbox {
    events: VecDeque<Event>,
    closed: bool,
}

impl Outbox {
    /// Queues `value` as a `data:` event.
    pub fn push<T: serde::Serialize>(&mut self, value: &T) {
        self.events.push_back(data(value));
    }

    /// Queues `data: [DONE]`; nothing follows it.
    pub fn close(&mut self) {
        self.events.push_back(Event::default().data("[DONE]"));
        self.closed = true;
    }

    /// Reports a failure mid-stream (OpenAI's error body), then closes.
    pub fn fail(&mut self, message: String) {
        tracing::error!(%message, "generation failed mid-stream");
        self.push(&ApiError::Internal(message).body());
        self.close();
    }
}

/// A source of stream events: queues some on each `advance`.
pub(super) trait Advance: Send + 'static {
    fn outbox(&mut self) -> &mut Outbox;
    fn advance(&mut self) -> impl Future<Output = ()> + Send;
}

/// The SSE response of `source`. Dropping it (the client went away) drops the engine streams,
/// which cancels generation.
pub(super) fn sse<A: Advance>(
    source: A,
) -> Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>> {
    let events = futures_util::stream::unfold(source, |mut s| async move {
        loop {
            if let Some(event) = s.outbox().events.pop_front() {
                return Some((Ok(event), s));
            }
            if s.outbox().closed {
                return None;
            }
            s.advance().await;
        }
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}

fn data<T: serde::Serialize>(value: &T) -> Event {
    match serde_json::to_string(value) {
        Ok(json) => Event::default().data(json),
        Err(e) => Event::default().data(format!("{{\"error\": {{\"message\": \"{e}\"}}}}")),
    }
}

/// A random-looking id for responses.
fn random_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(Instant::now().elapsed().as_nanos());
    format!("{:016x}", hasher.finish())
}

//! The request pipeline between validation and the engine: which model answers (base, an
//! adapter, or `auto` through the router), and what retrieval adds to the prompt.

use switchboard_engine::{ChatMessage, EngineError, GenerateRequest, GenerationStream};

use crate::error::ApiError;
use crate::openai::{RouteInfo, Source};
use crate::state::{AppState, AUTO_MODEL};

/// The router's choice for one conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteDecision {
    /// The adapter to use; `None`: the base model.
    pub adapter: Option<String>,
    /// The domain the router recognised.
    pub domain: String,
    /// The router's probability for it.
    pub confidence: f32,
    /// Why the base answers, when it does.
    pub reason: Option<String>,
}

/// Picks an adapter for `model: "auto"`.
pub trait AutoRouter: Send + Sync {
    /// Routes a conversation; `is_loaded` tells whether an adapter name is registered.
    fn route(&self, messages: &[ChatMessage], is_loaded: &dyn Fn(&str) -> bool) -> RouteDecision;
}

/// What retrieval contributes to one request.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Augmentation {
    /// Text to put in the system message (passages and instructions).
    pub system_text: String,
    /// The passages used, numbered as cited.
    pub sources: Vec<Source>,
}

/// Retrieval-augmented generation, behind a trait so the server does not depend on an index.
pub trait Retrieval: Send + Sync {
    /// Whether a request without an explicit `rag` field gets retrieval, given its route.
    fn enabled_by_default(&self, route: &RouteInfo) -> bool;
    /// Whether `domain` names a part of the knowledge base (for the `rag.domain` field).
    fn knows_domain(&self, domain: &str) -> bool;
    /// Retrieves passages for `query`, limited to `domain` (or the routed domain), within
    /// `budget_tokens` as counted by `count_tokens`. `Ok(None)`: nothing relevant found.
    fn augment(
        &self,
        query: &str,
        k: Option<usize>,
        domain: Option<&str>,
        budget_tokens: usize,
        count_tokens: &dyn Fn(&str) -> usize,
    ) -> Result<Option<Augmentation>, String>;
}

/// Which model answers a request.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// `model` in the response: the adapter used, or the base's id.
    pub model: String,
    pub route: RouteInfo,
}

impl Target {
    fn base(state: &AppState) -> Self {
        Self {
            model: state.config().served_model_name.clone(),
            route: RouteInfo {
                adapter: None,
                generation: None,
                domain: None,
                confidence: None,
                reason: None,
            },
        }
    }

    pub fn adapter(&self) -> Option<&str> {
        self.route.adapter.as_deref()
    }
}

/// Resolves `model` to the base, an adapter, or (for `auto`) the router's choice.
pub(crate) fn resolve(
    state: &AppState,
    model: &str,
    conversation: &[ChatMessage],
) -> Result<Target, ApiError> {
    let mut target = Target::base(state);
    if model == state.config().served_model_name {
        return Ok(target);
    }
    if model == AUTO_MODEL {
        let registry = state.engine().registry();
        match &state.inner.router {
            Some(router) => {
                let decision = router.route(conversation, &|name| registry.contains(name));
                target.route.domain = Some(decision.domain);
                target.route.confidence = Some(decision.confidence);
                target.route.reason = decision.reason;
                if let Some(adapter) = decision.adapter {
                    target.model = adapter.clone();
                    target.route.adapter = Some(adapter);
                }
            }
            None => target.route.reason = Some("router_not_configured".into()),
        }
        return Ok(target);
    }
    if state.engine().registry().contains(model) {
        target.model = model.to_string();
        target.route.adapter = Some(model.to_string());
        return Ok(target);
    }
    Err(ApiError::ModelNotFound(model.to_string()))
}

/// Submits to the engine. An `auto` request whose adapter vanished between routing and
/// submission falls back to the base model instead of failing.
pub(crate) async fn submit(
    state: &AppState,
    request: GenerateRequest,
    target: &mut Target,
    auto: bool,
) -> Result<GenerationStream, ApiError> {
    let engine = state.engine();
    // Only `auto` may retry on the base model, so only it keeps a copy of the request.
    let fallback = (auto && request.adapter.is_some()).then(|| GenerateRequest {
        adapter: None,
        ..request.clone()
    });
    match (engine.submit(request).await, fallback) {
        (Err(EngineError::AdapterNotFound(name)), Some(fallback)) => {
            tracing::info!(adapter = %name, "routed adapter unloaded meanwhile; base answers");
            let stream = engine.submit(fallback).await?;
            target.model = state.config().served_model_name.clone();
            target.route.adapter = None;
            target.route.reason = Some("adapter_not_loaded".into());
            Ok(stream)
        }
        (Err(e), _) => Err(e.into()),
        (Ok(stream), _) => {
            target.route.generation = stream.adapter.as_ref().map(|a| a.generation);
            Ok(stream)
        }
    }
}

//! The HTTP routes. [`routes`] is the one table they are built from, so the test that keeps
//! `openapi.yaml` in step with the server reads the same table.

mod adapters;
mod chat;
mod completions;
mod models;
mod ops;
mod reply;
mod tokenize;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, MatchedPath, Request};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use serde::de::DeserializeOwned;

use crate::auth;
use crate::error::ApiError;
use crate::metrics;
use crate::state::AppState;

/// Every route: path (OpenAPI syntax), method and handler.
pub fn routes() -> Vec<(&'static str, Method, MethodRouter<AppState>)> {
    vec![
        (
            "/v1/chat/completions",
            Method::POST,
            post(chat::chat_completions),
        ),
        (
            "/v1/completions",
            Method::POST,
            post(completions::completions),
        ),
        ("/v1/models", Method::GET, get(models::list_models)),
        ("/v1/models/{id}", Method::GET, get(models::get_model)),
        ("/v1/load_lora_adapter", Method::POST, post(adapters::load)),
        (
            "/v1/unload_lora_adapter",
            Method::POST,
            post(adapters::unload),
        ),
        ("/v1/lora_adapters", Method::GET, get(adapters::list)),
        ("/tokenize", Method::POST, post(tokenize::tokenize)),
        ("/detokenize", Method::POST, post(tokenize::detokenize)),
        (
            "/tokenizer_info",
            Method::GET,
            get(tokenize::tokenizer_info),
        ),
        ("/health", Method::GET, get(ops::health)),
        ("/metrics", Method::GET, get(ops::metrics)),
    ]
}

/// The application: routes, auth, metrics, body limit and JSON errors for everything else.
pub fn app(state: AppState) -> Router {
    let mut router = Router::new();
    for (path, _, handler) in routes() {
        router = router.route(path, handler);
    }
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::authorize,
        ))
        .layer(middleware::from_fn(track))
        .layer(DefaultBodyLimit::max(state.config().max_body_bytes))
        .with_state(state)
}

async fn not_found(request: Request) -> ApiError {
    ApiError::RouteNotFound(format!("{} {}", request.method(), request.uri().path()))
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// The adapter a response was generated with, for the request counter's label.
#[derive(Clone)]
pub(crate) struct AdapterLabel(pub String);

/// Counts requests by route, status and adapter.
async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let response = next.run(request).await;
    let adapter = response
        .extensions()
        .get::<AdapterLabel>()
        .map_or("", |a| a.0.as_str());
    metrics::record_request(&route, response.status().as_u16(), adapter);
    response
}

/// Marks a response with the adapter that produced it (header and metrics label).
pub(crate) fn label_response(
    mut response: Response,
    model: &str,
    adapter: Option<&str>,
) -> Response {
    if let Ok(value) = HeaderValue::from_str(model) {
        response
            .headers_mut()
            .insert("x-switchboard-adapter", value);
    }
    response
        .extensions_mut()
        .insert(AdapterLabel(metrics::adapter_label(adapter)));
    response
}

/// `Json` whose rejections are OpenAI-shaped 400s (and 413 for oversized bodies). The content
/// type is not enforced: curl users often forget it.
pub(crate) struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(request, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::bad_request(e.body_text())
            }
        })?;
        serde_json::from_slice(&bytes)
            .map(ApiJson)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
    }
}

pub(crate) fn json_response<T: serde::Serialize>(value: &T) -> Response {
    axum::Json(value).into_response()
}

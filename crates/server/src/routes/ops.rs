//! `GET /health` and `GET /metrics`.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::ApiError;
use crate::metrics;
use crate::state::AppState;

/// 200 while the model is loaded and the engine runs; 503 while draining or after the engine
/// stopped, so load balancers stop sending traffic.
pub(super) async fn health(State(state): State<AppState>) -> Response {
    let stats = state.engine().stats();
    let status = if state.is_draining() {
        "draining"
    } else if stats.stopped {
        "stopped"
    } else {
        "ok"
    };
    let code = if status == "ok" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": status,
        "model": state.config().served_model_name,
        "adapters": state.engine().registry().list().len(),
        "running_requests": stats.running_requests,
        "waiting_requests": stats.waiting_requests,
    });
    (code, axum::Json(body)).into_response()
}

pub(super) async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let Some(handle) = state.inner.metrics.clone() else {
        return Err(ApiError::RouteNotFound("metrics are disabled".into()));
    };
    let body = metrics::render(&state, &handle);
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response())
}

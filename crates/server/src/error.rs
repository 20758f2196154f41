//! [`ApiError`]: every failure a client can see, with one mapping to an HTTP status and
//! OpenAI's error body `{"error": {"message", "type", "param", "code"}}`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use switchboard_engine::EngineError;

/// An error answered to a client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A field is missing, malformed or out of range (400 `invalid_request_error`).
    #[error("{message}")]
    InvalidRequest {
        /// What is wrong, for the client.
        message: String,
        /// The offending field, named as in the request.
        param: Option<String>,
        /// A machine-readable code (`context_length_exceeded`...).
        code: Option<&'static str>,
    },
    /// Missing or wrong API key (401).
    #[error("{0}")]
    Unauthorized(String),
    /// No model or adapter by that name (404 `model_not_found`).
    #[error("the model `{0}` does not exist")]
    ModelNotFound(String),
    /// No such route (404).
    #[error("no route for {0}")]
    RouteNotFound(String),
    /// The route exists but not with this method (405).
    #[error("method not allowed")]
    MethodNotAllowed,
    /// A compare-and-swap on an adapter's generation failed (409).
    #[error("{0}")]
    Conflict(String),
    /// The body is over the size limit (413).
    #[error("request body too large")]
    PayloadTooLarge,
    /// The engine's queue is full (503 with `Retry-After`).
    #[error("the server is overloaded; retry in {retry_after} s")]
    Overloaded {
        /// Seconds the client should wait.
        retry_after: u64,
    },
    /// The server is starting or shutting down (503).
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an unexpected failure; the details are logged, never returned.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// A 400 for `param`.
    pub fn invalid(param: &str, message: impl Into<String>) -> Self {
        Self::InvalidRequest {
            message: message.into(),
            param: Some(param.to_string()),
            code: None,
        }
    }

    /// A 400 not tied to one field (malformed JSON).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::InvalidRequest {
            message: message.into(),
            param: None,
            code: None,
        }
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::ModelNotFound(_) | Self::RouteNotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Overloaded { .. } | Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The OpenAI error body.
    pub fn body(&self) -> ErrorBody {
        let (kind, param, code) = match self {
            Self::InvalidRequest { param, code, .. } => (
                "invalid_request_error",
                param.clone(),
                code.map(str::to_string),
            ),
            Self::Unauthorized(_) => (
                "invalid_request_error",
                None,
                Some("invalid_api_key".into()),
            ),
            Self::ModelNotFound(_) => (
                "invalid_request_error",
                Some("model".into()),
                Some("model_not_found".into()),
            ),
            Self::RouteNotFound(_) => ("invalid_request_error", None, Some("not_found".into())),
            Self::MethodNotAllowed => (
                "invalid_request_error",
                None,
                Some("method_not_allowed".into()),
            ),
            Self::Conflict(_) => (
                "invalid_request_error",
                None,
                Some("generation_mismatch".into()),
            ),
            Self::PayloadTooLarge => (
                "invalid_request_error",
                None,
                Some("payload_too_large".into()),
            ),
            Self::Overloaded { .. } => ("server_error", None, Some("overloaded".into())),
            Self::Unavailable(_) => ("server_error", None, Some("unavailable".into())),
            Self::Internal(_) => ("server_error", None, Some("internal_error".into())),
        };
        let message = match self {
            Self::ModelNotFound(name) => {
                format!(
                    "The model `{name}` does not exist. GET /v1/models lists the models served."
                )
            }
            other => other.to_string(),
        };
        ErrorBody {
            error: ErrorDetail {
                message,
                kind,
                param,
                code,
            },
        }
    }
}

/// `{"error": {...}}`.
#[derive(Debug, Serialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// OpenAI's error object.
#[derive(Debug, Serialize)]
pub struct ErrorDetail {
    /// Human-readable description.
    pub message: String,
    /// `invalid_request_error` or `server_error`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The request field at fault, if any.
    pub param: Option<String>,
    /// Machine-readable code, if any.
    pub code: Option<String>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Internal(details) = &self {
            tracing::error!(%details, "internal error answered with 500");
        }
        let status = self.status();
        let mut response = (status, axum::Json(self.body())).into_response();
        if let Self::Overloaded { retry_after } = self {
            if let Ok(value) = HeaderValue::from_str(&retry_after.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::InvalidParam { param, message } => Self::invalid(param, message),
            e @ EngineError::ContextLengthExceeded { .. } => Self::InvalidRequest {
                message: e.to_string(),
                param: Some("messages".into()),
                code: Some("context_length_exceeded"),
            },
            e @ EngineError::KvBudgetExceeded { .. } => Self::InvalidRequest {
                message: e.to_string(),
                param: Some("max_tokens".into()),
                code: Some("context_length_exceeded"),
            },
            EngineError::Overloaded { .. } => Self::Overloaded { retry_after: 1 },
            EngineError::AdapterNotFound(name) => Self::ModelNotFound(name),
            e @ EngineError::InvalidAdapterName { .. } => Self::invalid("lora_name", e.to_string()),
            e @ EngineError::GenerationMismatch { .. } => Self::Conflict(e.to_string()),
            e @ (EngineError::Tokenizer(_) | EngineError::Template(_)) => {
                Self::bad_request(e.to_string())
            }
            EngineError::Shutdown => Self::Unavailable("the server is shutting down".into()),
            e @ (EngineError::File { .. } | EngineError::Generation(_) | EngineError::Model(_)) => {
                Self::Internal(e.to_string())
            }
        }
    }
}

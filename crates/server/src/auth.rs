//! Bearer-key authentication: API keys for `/v1/*` and the tokenizer routes (`/tokenize`,
//! `/detokenize`, `/tokenizer_info`), admin keys for adapter load and unload,
//! `/health` and `/metrics` open unless configured otherwise. Keys are compared in constant time.

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::state::AppState;

/// Routes that change which adapters are loaded.
pub const ADMIN_PATHS: &[&str] = &["/v1/load_lora_adapter", "/v1/unload_lora_adapter"];

/// Which keys a path needs.
enum Access<'a> {
    Open,
    Keys(&'a [String], &'static str),
}

fn access<'a>(state: &'a AppState, path: &str) -> Access<'a> {
    let config = state.config();
    let api = || {
        if config.api_keys.is_empty() {
            Access::Open
        } else {
            Access::Keys(&config.api_keys, "an API key")
        }
    };
    if ADMIN_PATHS.contains(&path) {
        if config.admin_keys.is_empty() {
            return api();
        }
        return Access::Keys(&config.admin_keys, "an admin key");
    }
    if (path == "/health" || path == "/metrics") && config.open_health_and_metrics {
        return Access::Open;
    }
    api()
}

fn key_matches(given: &[u8], keys: &[String]) -> bool {
    // Check every key, so the time taken does not tell which one (if any) matched.
    keys.iter().fold(false, |matched, key| {
        let eq: bool = key.as_bytes().ct_eq(given).into();
        matched | eq
    })
}

/// Middleware: refuses requests without a valid key with a 401 in OpenAI's shape.
pub async fn authorize(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Access::Keys(keys, what) = access(&state, request.uri().path()) else {
        return next.run(request).await;
    };
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    match given {
        Some(key) if key_matches(key.as_bytes(), keys) => next.run(request).await,
        Some(_) => ApiError::Unauthorized(format!(
            "Incorrect key provided: this route needs {what} (Authorization: Bearer <key>)."
        ))
        .into_response(),
        None => ApiError::Unauthorized(format!(
            "Missing key: this route needs {what} in an `Authorization: Bearer <key>` header."
        ))
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::key_matches;

    #[test]
    fn keys_match_exactly() {
        let keys = vec!["secret-1".to_string(), "secret-2".to_string()];
        assert!(key_matches(b"secret-2", &keys));
        assert!(!key_matches(b"secret-", &keys));
        assert!(!key_matches(b"secret-10", &keys));
        assert!(!key_matches(b"", &keys));
    }
}

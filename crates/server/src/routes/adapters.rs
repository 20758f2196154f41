//! Adapter administration, with vLLM's bodies: `POST /v1/load_lora_adapter`,
//! `POST /v1/unload_lora_adapter`, and `GET /v1/lora_adapters`. Loading reads only from inside
//! the configured adapter root.

use std::path::{Path, PathBuf};
use std::time::Instant;

use axum::extract::State;
use axum::response::Response;
use serde_json::json;
use switchboard_engine::{AdapterInfo, EngineError};

use super::{json_response, ApiJson};
use crate::error::ApiError;
use crate::metrics;
use crate::openai::{LoadAdapterRequest, UnloadAdapterRequest};
use crate::state::{AppState, AUTO_MODEL};

fn info_json(info: &AdapterInfo) -> serde_json::Value {
    let mut value = serde_json::to_value(info).unwrap_or_else(|_| json!({}));
    if let Some(map) = value.as_object_mut() {
        map.insert("object".into(), "lora_adapter".into());
    }
    value
}

/// Resolves `requested` (absolute, or relative to `root`) and refuses anything outside `root`,
/// symbolic links and `..` included.
fn resolve_inside(root: &Path, requested: &str) -> Result<PathBuf, ApiError> {
    let outside = || {
        ApiError::invalid(
            "lora_path",
            format!("`{requested}` is not inside the server's adapter root"),
        )
    };
    let root = std::fs::canonicalize(root)
        .map_err(|e| ApiError::Internal(format!("adapter root {}: {e}", root.display())))?;
    let requested_path = Path::new(requested);
    let joined = if requested_path.is_absolute() {
        requested_path.to_path_buf()
    } else {
        root.join(requested_path)
    };
    let resolved = std::fs::canonicalize(&joined)
        .map_err(|_| ApiError::invalid("lora_path", format!("`{requested}` does not exist")))?;
    if !resolved.starts_with(&root) || !resolved.is_dir() {
        return Err(outside());
    }
    Ok(resolved)
}

pub(super) async fn load(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<LoadAdapterRequest>,
) -> Result<Response, ApiError> {
    let name = request.lora_name.trim().to_string();
    if name == AUTO_MODEL || name == state.config().served_model_name {
        return Err(ApiError::invalid(
            "lora_name",
            format!("`{name}` is reserved for the base model or the router"),
        ));
    }
    let Some(root) = state.config().adapter_root.clone() else {
        return Err(ApiError::invalid(
            "lora_path",
            "loading adapters over HTTP is disabled; start the server with --adapter-root",
        ));
    };
    let path = resolve_inside(&root, &request.lora_path)?;
    let registry = state.engine().registry().clone();
    let started = Instant::now();
    let loaded = {
        let name = name.clone();
        tokio::task::spawn_blocking(move || {
            registry.load(&name, &path, request.expected_generation)
        })
        .await
        .map_err(|e| ApiError::Internal(format!("adapter load task failed: {e}")))?
    };
    let info = loaded.map_err(|e| match e {
        e @ EngineError::Model(_) => ApiError::invalid("lora_path", e.to_string()),
        other => ApiError::from(other),
    })?;
    metrics::record_adapter_load(&name, started.elapsed());
    tracing::info!(adapter = %name, generation = info.generation, "adapter loaded over HTTP");
    Ok(json_response(&info_json(&info)))
}

pub(super) async fn unload(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<UnloadAdapterRequest>,
) -> Result<Response, ApiError> {
    let info = state.engine().registry().unload(&request.lora_name)?;
    metrics::record_adapter_unload(&info.name);
    Ok(json_response(&info_json(&info)))
}

pub(super) async fn list(State(state): State<AppState>) -> Response {
    let data: Vec<_> = state
        .engine()
        .registry()
        .list()
        .iter()
        .map(info_json)
        .collect();
    json_response(&json!({"object": "list", "data": data}))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::resolve_inside;

    #[test]
    fn paths_must_stay_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("adapters");
        std::fs::create_dir_all(root.join("bio")).unwrap();
        std::fs::create_dir_all(dir.path().join("secret")).unwrap();
        assert!(resolve_inside(&root, "bio").is_ok());
        assert!(resolve_inside(&root, root.join("bio").to_str().unwrap()).is_ok());
        assert!(resolve_inside(&root, "../secret").is_err());
        assert!(resolve_inside(&root, dir.path().join("secret").to_str().unwrap()).is_err());
        assert!(resolve_inside(&root, "missing").is_err());
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(dir.path().join("secret"), root.join("link")).unwrap();
            assert!(resolve_inside(&root, "link").is_err());
        }
    }
}

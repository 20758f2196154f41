//! Adapter administration over HTTP, with vLLM's routes and bodies (`GET /v1/lora_adapters` is
//! switchboard's listing): what `switchboard adapter promote` needs to hot-swap a version.

use serde::Deserialize;
use serde_json::json;

use super::{bad_response, OpenAiClient};
use crate::error::Result;

/// One adapter the server holds, as `GET /v1/lora_adapters` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ServedAdapter {
    /// The name requests use as `model`.
    pub name: String,
    /// Version number: +1 on every load or replace of the name.
    pub generation: u64,
    /// The directory the server loaded it from, as the server sees it.
    #[serde(default)]
    pub path: Option<String>,
}

impl OpenAiClient {
    /// `GET /v1/lora_adapters`: the adapters the server holds.
    pub async fn lora_adapters(&self) -> Result<Vec<ServedAdapter>> {
        self.list("/lora_adapters").await
    }

    /// `POST /v1/load_lora_adapter`: loads `path` (inside the server's adapter root, relative to
    /// it or absolute) as `name`. With `expected_generation`, the server replaces the name only
    /// if it is still at that generation (0: only if absent) and answers 409 otherwise.
    pub async fn load_lora_adapter(
        &self,
        name: &str,
        path: &str,
        expected_generation: Option<u64>,
    ) -> Result<ServedAdapter> {
        let url = self.url.api("/load_lora_adapter");
        let mut body = json!({"lora_name": name, "lora_path": path});
        if let Some(generation) = expected_generation {
            body["expected_generation"] = generation.into();
        }
        let reply = self.send(&url, Some(&body)).await?;
        serde_json::from_value(reply).map_err(|e| bad_response(&url, &e.to_string()))
    }

    /// `POST /v1/unload_lora_adapter`.
    pub async fn unload_lora_adapter(&self, name: &str) -> Result<()> {
        let url = self.url.api("/unload_lora_adapter");
        self.send(&url, Some(&json!({"lora_name": name}))).await?;
        Ok(())
    }
}

//! What every handler shares: the engine, the served names, auth keys and limits.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use metrics_exporter_prometheus::PrometheusHandle;
use switchboard_engine::Engine;

use crate::pipeline::{AutoRouter, Retrieval};

/// The virtual model that routes each request to a domain adapter.
pub const AUTO_MODEL: &str = "auto";

/// HTTP-level settings of the server (the engine has its own).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The base model's id in the API (`model` field, `/v1/models`).
    pub served_model_name: String,
    /// Where the base model came from (directory or hub id), shown as its `root`.
    pub model_root: String,
    /// Keys accepted on `/v1/*`; empty: no key needed.
    pub api_keys: Vec<String>,
    /// Keys accepted on adapter load/unload; empty: the API keys govern them.
    pub admin_keys: Vec<String>,
    /// Adapters may only be loaded from inside this directory; `None`: loading over HTTP is
    /// refused.
    pub adapter_root: Option<PathBuf>,
    /// `/health` and `/metrics` need no key (they need the API key otherwise).
    pub open_health_and_metrics: bool,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Seconds suggested in `Retry-After` when the queue is full.
    pub retry_after_secs: u64,
}

impl ServerConfig {
    /// Defaults for a model served as `served_model_name`.
    pub fn new(served_model_name: impl Into<String>) -> Self {
        let served_model_name = served_model_name.into();
        Self {
            model_root: served_model_name.clone(),
            served_model_name,
            api_keys: Vec::new(),
            admin_keys: Vec::new(),
            adapter_root: None,
            open_health_and_metrics: true,
            max_body_bytes: 4 << 20,
            retry_after_secs: 1,
        }
    }
}

pub(crate) struct Inner {
    pub engine: Engine,
    pub config: ServerConfig,
    pub created: u64,
    pub metrics: Option<PrometheusHandle>,
    pub router: Option<Arc<dyn AutoRouter>>,
    pub retrieval: Option<Arc<dyn Retrieval>>,
    pub draining: AtomicBool,
}

/// Shared state of the HTTP server; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// State serving `engine` with `config`; `metrics` renders `/metrics` (see
    /// [`crate::install_metrics`]).
    pub fn new(engine: Engine, config: ServerConfig, metrics: Option<PrometheusHandle>) -> Self {
        Self {
            inner: Arc::new(Inner {
                engine,
                config,
                created: unix_now(),
                metrics,
                router: None,
                retrieval: None,
                draining: AtomicBool::new(false),
            }),
        }
    }

    /// Adds the router that answers `model: "auto"`.
    pub fn with_router(self, router: Arc<dyn AutoRouter>) -> Self {
        self.map_inner(|inner| inner.router = Some(router))
    }

    /// Adds retrieval-augmented generation.
    pub fn with_retrieval(self, retrieval: Arc<dyn Retrieval>) -> Self {
        self.map_inner(|inner| inner.retrieval = Some(retrieval))
    }

    fn map_inner(self, f: impl FnOnce(&mut Inner)) -> Self {
        let mut inner = match Arc::try_unwrap(self.inner) {
            Ok(inner) => inner,
            Err(shared) => Inner {
                engine: shared.engine.clone(),
                config: shared.config.clone(),
                created: shared.created,
                metrics: shared.metrics.clone(),
                router: shared.router.clone(),
                retrieval: shared.retrieval.clone(),
                draining: AtomicBool::new(shared.draining.load(Ordering::Acquire)),
            },
        };
        f(&mut inner);
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// The HTTP settings.
    pub fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    /// Marks the server as draining: `/health` reports 503 so load balancers stop sending.
    pub fn start_draining(&self) {
        self.inner.draining.store(true, Ordering::Release);
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.inner.draining.load(Ordering::Acquire)
    }
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

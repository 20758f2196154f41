//! `eval run` without `--url`: the real server stack (`switchboard serve`'s state) on a free
//! loopback port inside this process, so the evaluation goes through the same HTTP routes,
//! batching and adapter handling as production.

use std::path::PathBuf;

use anyhow::{Context, Result};
use tokio::sync::oneshot;

use crate::serve::{self, Prepared, ServeArgs};

/// What the in-process server loads.
pub struct LocalSpec {
    /// `serve --model` (a checkpoint, GGUF file or hub id) [default: the bundled model].
    pub model: Option<String>,
    /// `serve --adapters` [default: the bundled adapters].
    pub adapters: Option<PathBuf>,
    /// `serve --config`: every other setting.
    pub config: Option<PathBuf>,
}

/// Loads the model and adapters (blocking: call before entering the runtime). The server's own
/// retrieval stays off: the eval retrieves itself, per variant.
pub fn prepare(spec: LocalSpec) -> Result<Prepared> {
    let args = ServeArgs {
        config: spec.config,
        model: spec.model,
        adapters: spec.adapters,
        host: Some("127.0.0.1".to_string()),
        port: Some(0),
        no_kb: Some(true),
        ..ServeArgs::default()
    };
    serve::prepare(args).context("starting the in-process server")
}

/// A server running on this process's runtime.
pub struct LocalServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The base model's served name.
    pub base_model: String,
    /// The key the server requires (from its config), if any.
    pub api_key: Option<String>,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl LocalServer {
    /// Binds 127.0.0.1 on a free port and serves `prepared` until [`LocalServer::stop`].
    pub async fn start(prepared: Prepared) -> Result<Self> {
        let state = prepared.state;
        let listener = tokio::net::TcpListener::bind(prepared.address)
            .await
            .with_context(|| format!("listening on {}", prepared.address))?;
        let local = listener.local_addr().context("reading the bound address")?;
        let base_model = state.config().served_model_name.clone();
        let api_key = state.config().api_keys.first().cloned();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(switchboard_server::serve(listener, state, async move {
            // A dropped sender (an early error) stops the server too.
            let _ = stopped.await;
        }));
        tracing::info!(%local, model = %base_model, "in-process server started");
        Ok(Self {
            url: format!("http://{local}"),
            base_model,
            api_key,
            stop,
            task,
        })
    }

    /// Stops accepting, lets in-flight requests finish, and shuts the engine down.
    pub async fn stop(self) -> Result<()> {
        let _ = self.stop.send(());
        self.task
            .await
            .context("the in-process server task failed")?
            .context("serving HTTP")
    }
}

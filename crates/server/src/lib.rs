//! # switchboard-server
//!
//! The OpenAI-compatible HTTP front of switchboard (axum on tokio): chat and text completions
//! (whole or streamed as server-sent events), models, adapter hot-loading with vLLM's bodies,
//! bearer-key auth, Prometheus metrics and health. The only crate that knows HTTP and the JSON
//! wire shapes; generation itself runs on the engine's own thread.
//!
//! * [`app`]: the router, for tests (`tower::ServiceExt::oneshot`) and for [`serve`].
//! * [`serve`]: listens until a shutdown signal, then drains in-flight requests.
//! * [`AppState`] / [`ServerConfig`]: the engine plus HTTP settings; [`AutoRouter`] and
//!   [`Retrieval`] plug the domain router and the knowledge base in.
#![warn(missing_docs)]

mod augment;
mod auth;
mod error;
mod generation;
mod metrics;
mod openai;
mod pipeline;
mod retrieval;
mod routes;
mod routing;
mod state;
mod validate;

use std::future::Future;

use axum::serve::ListenerExt;

pub use error::{ApiError, ErrorBody, ErrorDetail};
pub use metrics::install_metrics;
pub use openai::{RouteInfo, Source};
pub use pipeline::{Augmentation, AutoRouter, Retrieval, RouteDecision};
pub use retrieval::{KbRetrieval, RagDefault};
pub use routes::{app, routes};
pub use routing::DomainRouter;
pub use state::{AppState, ServerConfig, AUTO_MODEL};

/// Serves `state` on `listener` until `shutdown` resolves; then stops accepting, lets in-flight
/// requests (streams included) finish, and shuts the engine down.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let draining = state.clone();
    let engine = state.engine().clone();
    let signal = async move {
        shutdown.await;
        tracing::info!("shutting down: draining in-flight requests");
        draining.start_draining();
    };
    // Streamed tokens are small writes: without TCP_NODELAY, Nagle's algorithm holds the first
    // chunk back until the client's delayed ACK (~40 ms of false time to first token).
    let listener = listener.tap_io(|stream| {
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY on a connection");
        }
    });
    axum::serve(listener, app(state))
        .with_graceful_shutdown(signal)
        .await?;
    tokio::task::spawn_blocking(move || engine.shutdown())
        .await
        .map_err(std::io::Error::other)?;
    tracing::info!("server stopped");
    Ok(())
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

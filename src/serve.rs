//! `switchboard serve`: settings from flags, `SWITCHBOARD_*` environment variables and a TOML
//! file (in that order of precedence), then the engine and the HTTP server.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use serde::Deserialize;
use switchboard_engine::{AdapterDirPolicy, Engine, EngineConfig, RegistryConfig};
use switchboard_rag::{PromptTemplate, Retriever};
use switchboard_server::{AppState, DomainRouter, KbRetrieval, RagDefault, ServerConfig};

/// Where the bundled default model and adapters live, relative to the repository.
pub(crate) const DEFAULT_MODEL: &str =
    "models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf";
/// The bundled model's name in the API.
const DEFAULT_MODEL_NAME: &str = "smollm2-135m-instruct";
const DEFAULT_ADAPTERS: &str = "adapters";
const DEFAULT_KB: &str = "kb";

/// Every setting of the server. Each flag also reads `SWITCHBOARD_<NAME>` and the key of the same
/// name (with underscores) in the `--config` TOML file.
#[derive(Debug, Clone, Default, Args, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeArgs {
    /// TOML file with any of these settings (flags and environment variables win over it).
    #[arg(long, env = "SWITCHBOARD_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1].
    #[arg(long, env = "SWITCHBOARD_HOST")]
    pub host: Option<String>,
    /// Port to listen on (0 picks a free one) [default: 8080].
    #[arg(long, env = "SWITCHBOARD_PORT")]
    pub port: Option<u16>,
    /// Base model: a Hugging Face checkpoint directory, a GGUF file, or a hub id (`Org/Name`,
    /// from the local Hugging Face cache, downloaded when online) [default: the bundled
    /// SmolLM2-135M-Instruct Q4_1 GGUF].
    #[arg(long, env = "SWITCHBOARD_MODEL")]
    pub model: Option<String>,
    /// Directory whose adapter folders are loaded at start [default: the bundled adapters].
    #[arg(long, env = "SWITCHBOARD_ADAPTERS")]
    pub adapters: Option<PathBuf>,
    /// Adapters may be loaded over HTTP only from inside this directory [default: --adapters].
    #[arg(long, env = "SWITCHBOARD_ADAPTER_ROOT")]
    pub adapter_root: Option<PathBuf>,
    /// The base model's name in the API [default: `smollm2-135m-instruct` for the bundled model,
    /// else the directory's name or the GGUF file's stem].
    #[arg(long, env = "SWITCHBOARD_SERVED_MODEL_NAME")]
    pub served_model_name: Option<String>,
    /// API key required on /v1/* (also: --api-key-file).
    #[arg(long, env = "SWITCHBOARD_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// File holding the API key (first line).
    #[arg(long, env = "SWITCHBOARD_API_KEY_FILE")]
    pub api_key_file: Option<PathBuf>,
    /// Key required to load and unload adapters [default: the API key].
    #[arg(long, env = "SWITCHBOARD_ADMIN_KEY", hide_env_values = true)]
    pub admin_key: Option<String>,
    /// File holding the admin key (first line).
    #[arg(long, env = "SWITCHBOARD_ADMIN_KEY_FILE")]
    pub admin_key_file: Option<PathBuf>,
    /// Require the API key on /health and /metrics too.
    #[arg(long, env = "SWITCHBOARD_PROTECT_HEALTH_AND_METRICS", num_args = 0..=1, default_missing_value = "true")]
    pub protect_health_and_metrics: Option<bool>,
    /// Most sequences in one forward pass [default: 16].
    #[arg(long, env = "SWITCHBOARD_MAX_RUNNING_SEQUENCES")]
    pub max_running_sequences: Option<usize>,
    /// Most tokens per step, decodes plus prefill chunks [default: 256].
    #[arg(long, env = "SWITCHBOARD_MAX_BATCHED_TOKENS")]
    pub max_batched_tokens: Option<usize>,
    /// Most requests waiting; beyond it requests get 503 with Retry-After [default: 256].
    #[arg(long, env = "SWITCHBOARD_MAX_WAITING_REQUESTS")]
    pub max_waiting_requests: Option<usize>,
    /// KV-cache budget in MiB [default: 4096].
    #[arg(long, env = "SWITCHBOARD_KV_CACHE_MIB")]
    pub kv_cache_mib: Option<usize>,
    /// Context window in tokens [default: the model's max_position_embeddings].
    #[arg(long, env = "SWITCHBOARD_MAX_MODEL_LEN")]
    pub max_model_len: Option<usize>,
    /// Most adapters kept in memory; idle ones beyond are evicted and reloaded on use.
    #[arg(long, env = "SWITCHBOARD_MAX_LOADED_ADAPTERS")]
    pub max_loaded_adapters: Option<usize>,
    /// Largest request body in bytes [default: 4 MiB].
    #[arg(long, env = "SWITCHBOARD_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Knowledge base for retrieval (Markdown with front matter) [default: the bundled kb/].
    #[arg(long, env = "SWITCHBOARD_KB")]
    pub kb: Option<PathBuf>,
    /// Where the kb's search index is kept [default: <kb>/.index].
    #[arg(long, env = "SWITCHBOARD_KB_INDEX")]
    pub kb_index: Option<PathBuf>,
    /// Retrieval for requests without a `rag` field: auto (requests routed to a domain
    /// adapter), on, or off [default: auto].
    #[arg(long, env = "SWITCHBOARD_RAG")]
    pub rag: Option<String>,
    /// Passages retrieved per request [default: 4].
    #[arg(long, env = "SWITCHBOARD_RAG_K")]
    pub rag_k: Option<usize>,
    /// Seconds between checks of the kb for changes (re-indexed without interrupting serving);
    /// 0 disables [default: 30].
    #[arg(long, env = "SWITCHBOARD_KB_WATCH_SECS")]
    pub kb_watch_secs: Option<u64>,
    /// Router model for `model: "auto"` [default: the bundled one].
    #[arg(long, env = "SWITCHBOARD_ROUTER_MODEL")]
    pub router_model: Option<PathBuf>,
    /// Router confidence below which the base model answers `auto` requests [default: 0.5].
    #[arg(long, env = "SWITCHBOARD_ROUTER_THRESHOLD")]
    pub router_threshold: Option<f32>,
    /// Routing table (TOML file only): `[routing]` with `threshold` and
    /// `[routing.routes.<domain>]` entries `{ adapter = "name", enabled = true }`.
    #[arg(skip)]
    pub routing: Option<switchboard_router::RoutingTable>,
    /// No retrieval at all (no kb is loaded).
    #[arg(long, env = "SWITCHBOARD_NO_KB", num_args = 0..=1, default_missing_value = "true")]
    pub no_kb: Option<bool>,
}

impl ServeArgs {
    /// Fills every setting not given on the command line or in the environment from the
    /// `--config` file.
    pub fn merged_with_file(self) -> Result<Self> {
        let Some(path) = self.config.clone() else {
            return Ok(self);
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading the config file {}", path.display()))?;
        let file: ServeArgs =
            toml::from_str(&text).with_context(|| format!("{}: invalid config", path.display()))?;
        macro_rules! merge {
            ($($field:ident),*) => { Self { config: self.config, $($field: self.$field.or(file.$field)),* } };
        }
        Ok(merge!(
            host,
            port,
            model,
            adapters,
            adapter_root,
            served_model_name,
            api_key,
            api_key_file,
            admin_key,
            admin_key_file,
            protect_health_and_metrics,
            max_running_sequences,
            max_batched_tokens,
            max_waiting_requests,
            kv_cache_mib,
            max_model_len,
            max_loaded_adapters,
            max_body_bytes,
            kb,
            kb_index,
            rag,
            rag_k,
            kb_watch_secs,
            no_kb,
            router_model,
            router_threshold,
            routing
        ))
    }
}

/// The base model's API name when `--served-model-name` is not given: the bundled model's id,
/// else the checkpoint directory's name or the GGUF file's stem.
fn default_served_name(bundled_model: bool, path: &Path) -> String {
    if bundled_model {
        return DEFAULT_MODEL_NAME.to_string();
    }
    let name = if path.is_file() {
        path.file_stem()
    } else {
        path.file_name()
    };
    name.map_or_else(|| "model".to_string(), |n| n.to_string_lossy().into_owned())
}

/// A path of the repository: as given if it exists from here, else inside the source tree this
/// binary was built from (so `cargo run` works from any directory).
pub fn bundled(relative: &str) -> PathBuf {
    let here = PathBuf::from(relative);
    if here.exists() {
        return here;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn read_key(key: Option<String>, file: Option<&Path>, what: &str) -> Result<Vec<String>> {
    let mut keys: Vec<String> = key.into_iter().filter(|k| !k.is_empty()).collect();
    if let Some(file) = file {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("reading the {what} file {}", file.display()))?;
        let key = text.lines().next().unwrap_or_default().trim().to_string();
        if key.is_empty() {
            bail!("{}: the {what} file is empty", file.display());
        }
        keys.push(key);
    }
    Ok(keys)
}

/// A server ready to listen: the state every request sees, where to listen, and the kb watcher.
/// `serve` runs it until a signal; `eval run` runs it inside its own process.
pub struct Prepared {
    /// Engine, configuration, router and retrieval.
    pub state: AppState,
    /// `--host` and `--port`.
    pub address: SocketAddr,
    kb: Option<Kb>,
}

impl Prepared {
    /// The future that re-indexes the kb when it changes, if there is a kb (spawn it on the
    /// runtime that serves).
    pub fn kb_watch(&mut self) -> Option<impl std::future::Future<Output = ()> + Send + 'static> {
        self.kb.take().map(Kb::watch)
    }
}

/// Runs the server until SIGINT or SIGTERM.
pub fn run(args: ServeArgs) -> Result<()> {
    let mut prepared = prepare(args)?;
    let address = prepared.address;
    let kb = prepared.kb_watch();
    let state = prepared.state;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("switchboard-http")
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| format!("listening on {address}"))?;
        let local = listener.local_addr().context("reading the bound address")?;
        // Tests and scripts read this line to find the port.
        println!("switchboard listening on http://{local}");
        tracing::info!(%local, "serving the OpenAI API under /v1");
        if let Some(kb) = kb {
            tokio::spawn(kb);
        }
        switchboard_server::serve(listener, state, switchboard_server::shutdown_signal())
            .await
            .context("serving HTTP")
    })
}

/// Loads the model, adapters, router and kb that `args` name (after merging the `--config`
/// file) into the server's state.
pub fn prepare(args: ServeArgs) -> Result<Prepared> {
    let args = args.merged_with_file()?;
    let model_spec = args
        .model
        .clone()
        .unwrap_or_else(|| bundled(DEFAULT_MODEL).display().to_string());
    let model_path = crate::hub::resolve_model(&model_spec)
        .with_context(|| format!("finding the model `{model_spec}`"))?;
    // An explicit adapters directory must exist; the bundled one may be absent (an installed
    // binary away from the source tree), in which case the base model serves alone.
    // The bundled adapters belong to the bundled model: with another model, those that do not
    // fit it are skipped with a warning. A folder the user names must exist and fit.
    let adapters = match &args.adapters {
        Some(dir) if !dir.is_dir() => {
            bail!("{}: the adapters directory does not exist", dir.display())
        }
        Some(dir) => Some((dir.clone(), AdapterDirPolicy::Strict)),
        None => Some(bundled(DEFAULT_ADAPTERS))
            .filter(|dir| dir.is_dir())
            .map(|dir| (dir, AdapterDirPolicy::SkipMismatched)),
    };
    if adapters.is_none() {
        tracing::warn!("no adapters directory; serving the base model only (see --adapters)");
    }
    let defaults = EngineConfig::default();
    let engine_config = EngineConfig {
        max_running_sequences: args
            .max_running_sequences
            .unwrap_or(defaults.max_running_sequences),
        max_batched_tokens: args
            .max_batched_tokens
            .unwrap_or(defaults.max_batched_tokens),
        max_waiting_requests: args
            .max_waiting_requests
            .unwrap_or(defaults.max_waiting_requests),
        kv_cache_bytes: args
            .kv_cache_mib
            .map_or(defaults.kv_cache_bytes, |mib| mib.saturating_mul(1 << 20)),
        max_model_len: args.max_model_len,
    };
    let registry_config = RegistryConfig {
        max_loaded_adapters: args.max_loaded_adapters,
    };
    let served_model_name = args
        .served_model_name
        .clone()
        .unwrap_or_else(|| default_served_name(args.model.is_none(), &model_path));
    let mut config = ServerConfig::new(served_model_name.clone());
    config.model_root = model_spec.clone();
    config.api_keys = read_key(
        args.api_key.clone(),
        args.api_key_file.as_deref(),
        "API key",
    )?;
    config.admin_keys = read_key(
        args.admin_key.clone(),
        args.admin_key_file.as_deref(),
        "admin key",
    )?;
    config.adapter_root = args
        .adapter_root
        .clone()
        .or_else(|| adapters.as_ref().map(|(dir, _)| dir.clone()));
    config.open_health_and_metrics = !args.protect_health_and_metrics.unwrap_or(false);
    if let Some(bytes) = args.max_body_bytes {
        config.max_body_bytes = bytes;
    }
    let host = args.host.clone().unwrap_or_else(|| "127.0.0.1".into());
    let port = args.port.unwrap_or(8080);
    let address: SocketAddr = format!("{host}:{port}")
        .parse()
        .or_else(|_| format!("[{host}]:{port}").parse())
        .with_context(|| format!("`{host}` is not an IP address to listen on"))?;

    let started = Instant::now();
    let engine = Engine::from_paths(
        &model_path,
        adapters
            .as_ref()
            .map(|(dir, policy)| (dir.as_path(), *policy)),
        registry_config,
        engine_config,
    )
    .with_context(|| match &adapters {
        Some((dir, _)) => format!(
            "loading {} with the adapters in {}",
            model_path.display(),
            dir.display()
        ),
        None => format!("loading {}", model_path.display()),
    })?;
    tracing::info!(
        model = %served_model_name,
        adapters = engine.registry().list().len(),
        seconds = started.elapsed().as_secs_f64(),
        "model loaded"
    );
    let metrics = switchboard_server::install_metrics();
    let mut state = AppState::new(engine, config, metrics);
    let classifier = crate::router::classifier(args.router_model.as_deref())?;
    let mut table = args.routing.clone().unwrap_or_default();
    if let Some(threshold) = args.router_threshold {
        table.threshold = threshold;
    }
    let missing: Vec<&str> = table
        .routes
        .values()
        .filter(|route| route.enabled && !state.engine().registry().contains(&route.adapter))
        .map(|route| route.adapter.as_str())
        .collect();
    if !missing.is_empty() {
        tracing::warn!(
            adapters = %missing.join(", "),
            "the routing table names adapters that are not loaded; the base model answers those domains"
        );
    }
    state = state.with_router(Arc::new(DomainRouter::new(classifier, table)));
    let mut kb = None;
    let bundled_kb_missing = args.kb.is_none() && !bundled(DEFAULT_KB).is_dir();
    if bundled_kb_missing {
        tracing::warn!("no knowledge base; retrieval is off (see --kb)");
    }
    if !args.no_kb.unwrap_or(false) && !bundled_kb_missing {
        let (watcher, retrieval) = open_kb(&args)?;
        state = state.with_retrieval(Arc::new(retrieval));
        kb = Some(watcher);
    }
    Ok(Prepared { state, address, kb })
}

/// The knowledge base the server retrieves from, and how to keep it fresh.
struct Kb {
    retriever: Retriever,
    dir: PathBuf,
    index: PathBuf,
    watch: Duration,
}

/// The kb's index directory by default: inside the kb, hidden (and git-ignored).
pub fn default_index_dir(kb: &Path) -> PathBuf {
    kb.join(".index")
}

fn open_kb(args: &ServeArgs) -> Result<(Kb, KbRetrieval)> {
    let dir = args.kb.clone().unwrap_or_else(|| bundled(DEFAULT_KB));
    let index = args
        .kb_index
        .clone()
        .unwrap_or_else(|| default_index_dir(&dir));
    let default: RagDefault = match &args.rag {
        Some(value) => value
            .parse()
            .map_err(|e: String| anyhow::anyhow!("--rag: {e}"))?,
        None => RagDefault::Auto,
    };
    let started = Instant::now();
    let mut watch = Duration::from_secs(args.kb_watch_secs.unwrap_or(30));
    let kb = match switchboard_rag::KnowledgeBase::open_or_build(&dir, &index) {
        Ok(kb) => kb,
        // The default index lives inside the kb, which may be read-only (an installed or
        // mounted kb): index in memory instead. An explicit --kb-index must work.
        Err(e) if args.kb_index.is_none() => {
            tracing::warn!(
                index = %index.display(),
                error = %e,
                "cannot keep the kb index on disk; indexing in memory (no re-indexing on change)"
            );
            watch = Duration::ZERO;
            switchboard_rag::KnowledgeBase::in_ram(&dir)
                .with_context(|| format!("indexing the knowledge base {}", dir.display()))?
        }
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!(
                "indexing the knowledge base {} into {}",
                dir.display(),
                index.display()
            )))
        }
    };
    tracing::info!(
        kb = %dir.display(),
        documents = kb.stats().documents,
        chunks = kb.stats().chunks,
        rebuilt = kb.stats().rebuilt,
        seconds = started.elapsed().as_secs_f64(),
        "knowledge base ready"
    );
    let retriever = Retriever::new(kb);
    let retrieval = KbRetrieval::new(
        retriever.clone(),
        PromptTemplate::default(),
        default,
        args.rag_k.unwrap_or(4),
    );
    let watcher = Kb {
        retriever,
        dir,
        index,
        watch,
    };
    Ok((watcher, retrieval))
}

impl Kb {
    /// Re-indexes when the kb's files change; searches keep running on the old index meanwhile.
    async fn watch(self) {
        if self.watch.is_zero() {
            return;
        }
        let mut interval = tokio::time::interval(self.watch);
        interval.tick().await;
        loop {
            interval.tick().await;
            let (retriever, dir, index) =
                (self.retriever.clone(), self.dir.clone(), self.index.clone());
            match tokio::task::spawn_blocking(move || retriever.reload(&dir, &index)).await {
                Ok(Ok(switchboard_rag::ReloadOutcome::Unchanged)) => {}
                Ok(Ok(outcome)) => tracing::info!(?outcome, "knowledge base re-indexed"),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "re-indexing the knowledge base failed; keeping the old index")
                }
                Err(e) => tracing::warn!(error = %e, "the re-indexing task failed"),
            }
        }
    }
}

//! [`Engine`]: the handle callers use. It validates and tokenizes requests on the caller's side,
//! then hands them to the step loop ([`crate::scheduler`]) on the engine's own thread.

use std::collections::{BTreeSet, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use serde::Serialize;
use switchboard_model::{CausalLm, DType, Device, KvCache, ModelConfig, ModelSource};
use tokio::sync::mpsc as tokio_mpsc;

use crate::detokenizer::IncrementalDecoder;
use crate::error::{EngineError, Result};
use crate::registry::{AdapterDirPolicy, AdapterRegistry, RegistryConfig};
use crate::request::{AdapterRef, GenerateRequest, GenerationStream, Prompt};
use crate::sampler::{choice_seed, random_seed, Sampler};
use crate::scheduler::{Command, Scheduler};
use crate::sequence::{Group, PromptScores, Sequence, StopTokens};
use crate::stop::StopMatcher;
use crate::tokenizer::TextTokenizer;

/// Limits of the engine. Defaults suit a CPU serving a 0.5B-class model.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct EngineConfig {
    /// Most sequences (choices) in one forward pass.
    pub max_running_sequences: usize,
    /// Most tokens fed in one step; decodes take one each, prefill chunks share the rest.
    pub max_batched_tokens: usize,
    /// Most requests waiting for admission; beyond it submission fails with `Overloaded`.
    pub max_waiting_requests: usize,
    /// KV-cache memory budget in bytes; requests wait for admission until their reservation fits.
    pub kv_cache_bytes: usize,
    /// Context window in tokens (prompt + completion); `None` takes the model's
    /// `max_position_embeddings`.
    pub max_model_len: Option<usize>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            max_running_sequences: 16,
            max_batched_tokens: 256,
            max_waiting_requests: 256,
            kv_cache_bytes: 4 << 30,
            max_model_len: None,
        }
    }
}

impl EngineConfig {
    fn validate(&self) -> Result<()> {
        if self.max_running_sequences == 0 {
            return Err(EngineError::invalid(
                "max_running_sequences",
                "must be at least 1",
            ));
        }
        if self.max_batched_tokens <= self.max_running_sequences {
            return Err(EngineError::invalid(
                "max_batched_tokens",
                "must be greater than max_running_sequences, so prefills always make progress",
            ));
        }
        if self.max_model_len == Some(0) {
            return Err(EngineError::invalid("max_model_len", "must be at least 1"));
        }
        Ok(())
    }
}

/// A snapshot of what the engine is doing, refreshed after every step.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EngineStats {
    /// Requests submitted and not yet admitted.
    pub waiting_requests: usize,
    /// Requests admitted and not finished.
    pub running_requests: usize,
    /// Unfinished sequences of the running requests.
    pub running_sequences: usize,
    /// KV positions reserved by running requests.
    pub kv_reserved_tokens: usize,
    /// KV positions the budget allows.
    pub kv_budget_tokens: usize,
    /// Bytes the running sequences' KV caches hold now.
    pub kv_allocated_bytes: usize,
    /// Forward passes run.
    pub steps: u64,
    /// Tokens fed in the last step.
    pub last_step_tokens: usize,
    /// Prompt tokens prefilled.
    pub prompt_tokens: u64,
    /// Tokens sampled.
    pub generated_tokens: u64,
    /// Requests that ended with `Done`.
    pub finished_requests: u64,
    /// Requests dropped because their stream was dropped.
    pub cancelled_requests: u64,
    /// Requests ended by an error.
    pub failed_requests: u64,
    /// Whether the step loop has exited.
    pub stopped: bool,
}

/// State shared between handles and the step loop.
pub(crate) struct Shared {
    pub stats: Mutex<EngineStats>,
    /// Requests submitted and not yet admitted (in the channel or the queue).
    pub waiting: AtomicUsize,
}

impl Shared {
    pub fn update(&self, f: impl FnOnce(&mut EngineStats)) {
        if let Ok(mut stats) = self.stats.lock() {
            f(&mut stats);
        }
    }

    pub fn leave_queue(&self, n: usize) {
        if n > 0 {
            self.waiting.fetch_sub(n, Ordering::AcqRel);
        }
    }
}

struct Inner {
    model: Arc<CausalLm>,
    tokenizer: Arc<TextTokenizer>,
    registry: Arc<AdapterRegistry>,
    config: EngineConfig,
    max_model_len: usize,
    budget_tokens: usize,
    eos: Arc<BTreeSet<u32>>,
    commands: Mutex<Option<Sender<Command>>>,
    shared: Arc<Shared>,
    next_id: AtomicU64,
    shutting_down: AtomicBool,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// A handle to the generation engine; clone it freely. The engine thread runs until
/// [`Engine::shutdown`] or until the last handle is dropped, finishing queued work first.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Loads a model (a checkpoint directory or a GGUF file: weights, tokenizer, chat template)
    /// in f32 on the CPU and, when given, every adapter folder of `adapters_dir`, then starts
    /// the engine. With [`AdapterDirPolicy::SkipMismatched`], adapters that do not fit this
    /// base are skipped with a warning instead of failing the start.
    pub fn from_paths(
        model_path: &Path,
        adapters_dir: Option<(&Path, AdapterDirPolicy)>,
        registry_config: RegistryConfig,
        config: EngineConfig,
    ) -> Result<Self> {
        let device = Device::Cpu;
        let source = ModelSource::open(model_path)?;
        let model = CausalLm::from_source(&source, DType::F32, &device)?;
        let tokenizer = TextTokenizer::from_source(&source)?;
        drop(source);
        let registry =
            AdapterRegistry::new(model.config().clone(), DType::F32, device, registry_config);
        match adapters_dir {
            Some((dir, AdapterDirPolicy::Strict)) => {
                registry.load_dir(dir)?;
            }
            Some((dir, AdapterDirPolicy::SkipMismatched)) => {
                registry.load_dir_fitting(dir)?;
            }
            None => {}
        }
        Self::start(
            Arc::new(model),
            Arc::new(tokenizer),
            Arc::new(registry),
            config,
        )
    }

    /// Starts the step loop on its own thread.
    pub fn start(
        model: Arc<CausalLm>,
        tokenizer: Arc<TextTokenizer>,
        registry: Arc<AdapterRegistry>,
        config: EngineConfig,
    ) -> Result<Self> {
        config.validate()?;
        let cfg = model.config();
        let max_model_len = config
            .max_model_len
            .unwrap_or(cfg.max_positions())
            .min(cfg.max_positions());
        let bytes_per_token = KvCache::bytes_per_token(cfg, model.dtype()).max(1);
        let budget_tokens = config.kv_cache_bytes / bytes_per_token;
        let mut eos: BTreeSet<u32> = tokenizer.eos_token_ids().clone();
        eos.extend(cfg.eos_token_ids());

        let shared = Arc::new(Shared {
            stats: Mutex::new(EngineStats {
                kv_budget_tokens: budget_tokens,
                ..EngineStats::default()
            }),
            waiting: AtomicUsize::new(0),
        });
        let (tx, rx) = mpsc::channel();
        let scheduler = Scheduler {
            model: model.clone(),
            tokenizer: tokenizer.clone(),
            config: config.clone(),
            budget_tokens,
            commands: rx,
            shared: shared.clone(),
            waiting: VecDeque::new(),
            running: Vec::new(),
            reserved_tokens: 0,
            accepting: true,
        };
        let thread = std::thread::Builder::new()
            .name("switchboard-engine".into())
            .spawn(move || scheduler.run())
            .map_err(|e| EngineError::Generation(format!("cannot start the engine thread: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                model,
                tokenizer,
                registry,
                config,
                max_model_len,
                budget_tokens,
                eos: Arc::new(eos),
                commands: Mutex::new(Some(tx)),
                shared,
                next_id: AtomicU64::new(1),
                shutting_down: AtomicBool::new(false),
                thread: Mutex::new(Some(thread)),
            }),
        })
    }

    /// Submits a request from async code; the (short) blocking part runs on tokio's blocking
    /// pool. Must be called within a tokio runtime.
    pub async fn submit(&self, request: GenerateRequest) -> Result<GenerationStream> {
        let engine = self.clone();
        tokio::task::spawn_blocking(move || engine.submit_blocking(request))
            .await
            .map_err(|e| EngineError::Generation(format!("submission task failed: {e}")))?
    }

    /// Validates, tokenizes and queues a request. Blocks briefly: tokenization, and reading an
    /// evicted adapter back from disk.
    pub fn submit_blocking(&self, request: GenerateRequest) -> Result<GenerationStream> {
        let inner = &*self.inner;
        if inner.shutting_down.load(Ordering::Acquire) {
            return Err(EngineError::Shutdown);
        }
        let GenerateRequest {
            prompt,
            adapter,
            params,
        } = request;
        let cfg = inner.model.config();
        params.validate(cfg.vocab_size)?;
        let prompt = self.prompt_tokens(prompt)?;
        let prompt_len = prompt.len();
        if prompt_len >= inner.max_model_len {
            return Err(EngineError::ContextLengthExceeded {
                prompt_tokens: prompt_len,
                max_tokens: params.max_tokens.unwrap_or(0),
                max_model_len: inner.max_model_len,
            });
        }
        let max_tokens = match params.max_tokens {
            Some(n) if prompt_len + n > inner.max_model_len => {
                return Err(EngineError::ContextLengthExceeded {
                    prompt_tokens: prompt_len,
                    max_tokens: n,
                    max_model_len: inner.max_model_len,
                })
            }
            Some(n) => n,
            None => inner.max_model_len - prompt_len,
        };
        if params.n > inner.config.max_running_sequences {
            return Err(EngineError::invalid(
                "n",
                format!(
                    "this engine runs at most {} sequences at once",
                    inner.config.max_running_sequences
                ),
            ));
        }
        let per_seq = prompt_len + max_tokens;
        if per_seq * params.n > inner.budget_tokens {
            return Err(EngineError::KvBudgetExceeded {
                needed_tokens: per_seq * params.n,
                budget_tokens: inner.budget_tokens,
            });
        }

        let waiting = inner.shared.waiting.fetch_add(1, Ordering::AcqRel);
        if waiting >= inner.config.max_waiting_requests {
            inner.shared.leave_queue(1);
            return Err(EngineError::Overloaded { waiting });
        }
        let active = match adapter.as_deref().map(|name| inner.registry.acquire(name)) {
            Some(Err(e)) => {
                inner.shared.leave_queue(1);
                return Err(e);
            }
            Some(Ok(active)) => Some(active),
            None => None,
        };

        let seed = params.seed.unwrap_or_else(random_seed);
        let seqs = (0..params.n)
            .map(|choice| {
                let mut cache = inner.model.new_cache();
                cache.limit_capacity(per_seq);
                Sequence {
                    choice,
                    tokens: prompt.clone(),
                    prompt_len,
                    max_tokens,
                    cache,
                    reserved: per_seq,
                    sampler: Sampler::new(&params, &prompt, choice_seed(seed, choice)),
                    decoder: IncrementalDecoder::new(params.skip_special_tokens),
                    stop: StopMatcher::new(&params.stop),
                    scheduled: 0,
                    completion_tokens: 0,
                    finished: false,
                    // Every choice sees the same prompt, so choice 0 alone scores it.
                    prompt_scores: params
                        .prompt_logprobs
                        .filter(|_| choice == 0)
                        .zip(prompt.first())
                        .map(|(top, &first)| PromptScores::new(first, top)),
                }
            })
            .collect();
        let id = inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (events_tx, events_rx) = tokio_mpsc::unbounded_channel();
        let adapter_ref = active.as_ref().map(|a| AdapterRef {
            name: a.name.clone(),
            generation: a.generation,
        });
        let group = Group {
            id,
            events: events_tx,
            adapter: active,
            stops: StopTokens {
                eos: inner.eos.clone(),
                ignore_eos: params.ignore_eos,
                extra: params.stop_token_ids.clone(),
            },
            seqs,
            prompt_tokens: prompt_len,
            submitted: Instant::now(),
            failed: false,
        };
        let sent = inner.commands.lock().ok().and_then(|tx| {
            tx.as_ref()
                .map(|tx| tx.send(Command::Submit(Box::new(group))))
        });
        if !matches!(sent, Some(Ok(()))) {
            inner.shared.leave_queue(1);
            return Err(EngineError::Shutdown);
        }
        Ok(GenerationStream {
            id,
            prompt_tokens: prompt_len,
            prompt_token_ids: prompt,
            adapter: adapter_ref,
            events: events_rx,
        })
    }

    fn prompt_tokens(&self, prompt: Prompt) -> Result<Vec<u32>> {
        let vocab = self.inner.model.config().vocab_size;
        let tokenizer = &self.inner.tokenizer;
        let tokens = match prompt {
            Prompt::Text(text) => tokenizer.encode(&text)?,
            Prompt::Tokens(tokens) => {
                if let Some(&id) = tokens.iter().find(|&&id| id as usize >= vocab) {
                    return Err(EngineError::invalid(
                        "prompt",
                        format!("token id {id} is outside the vocabulary (size {vocab})"),
                    ));
                }
                tokens
            }
            Prompt::Chat(messages) => {
                if messages.is_empty() {
                    return Err(EngineError::invalid("messages", "must not be empty"));
                }
                tokenizer.encode(&tokenizer.apply_chat_template(&messages, true)?)?
            }
        };
        if tokens.is_empty() {
            return Err(EngineError::invalid("prompt", "must not be empty"));
        }
        Ok(tokens)
    }

    /// What the engine is doing now.
    pub fn stats(&self) -> EngineStats {
        let mut stats = self
            .inner
            .shared
            .stats
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default();
        stats.waiting_requests = self.inner.shared.waiting.load(Ordering::Acquire);
        stats
    }

    /// Stops accepting requests, lets queued and running ones finish, and waits for the engine
    /// thread to exit. Other handles get `Shutdown` errors afterwards.
    pub fn shutdown(&self) {
        self.inner.shutting_down.store(true, Ordering::Release);
        if let Ok(mut commands) = self.inner.commands.lock() {
            if let Some(tx) = commands.take() {
                // An error means the thread is already gone, which is what we want.
                tx.send(Command::Shutdown).ok();
            }
        }
        let thread = self.inner.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(thread) = thread {
            if thread.join().is_err() {
                tracing::error!("the engine thread panicked");
            }
        }
    }

    /// The model being served.
    pub fn model(&self) -> &Arc<CausalLm> {
        &self.inner.model
    }

    /// The model's config.
    pub fn model_config(&self) -> &ModelConfig {
        self.inner.model.config()
    }

    /// The tokenizer and chat template.
    pub fn tokenizer(&self) -> &Arc<TextTokenizer> {
        &self.inner.tokenizer
    }

    /// The adapter registry (load, unload, list).
    pub fn registry(&self) -> &Arc<AdapterRegistry> {
        &self.inner.registry
    }

    /// The limits the engine runs with.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// The context window in tokens.
    pub fn max_model_len(&self) -> usize {
        self.inner.max_model_len
    }
}

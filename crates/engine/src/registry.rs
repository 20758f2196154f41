//! `AdapterRegistry`: LoRA adapters by name, hot loaded, replaced and unloaded while requests
//! run, evicted from memory when idle above a cap and reloaded from disk on next use.
//!
//! One `Mutex` guards the name map. It is held only to read or swap entries, never while
//! tensors are read from disk. A request holds an `Arc` of the version it started with
//! ([`ActiveAdapter`]), so a replace, unload or eviction never changes what it uses.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use switchboard_model::{DType, Device, LoraAdapter, ModelConfig, ModelError};

use crate::error::{EngineError, Result};

/// Longest accepted adapter name, in characters.
const MAX_NAME_CHARS: usize = 128;

/// The adapter folders of `dir` (subfolders with an `adapter_config.json`), sorted by name.
fn adapter_folders(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let io_error = |e: std::io::Error| EngineError::File {
        path: dir.to_path_buf(),
        reason: e.to_string(),
    };
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_error)? {
        let path = entry.map_err(io_error)?.path();
        let hidden = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if !path.is_dir() || hidden {
            // READMEs beside the adapter folders; `.archive`, `.staging` of `adapter promote`.
            continue;
        }
        if !path.join("adapter_config.json").is_file() {
            tracing::warn!(path = %path.display(), "skipped: no adapter_config.json");
            continue;
        }
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        found.push((name.into_owned(), path));
    }
    found.sort();
    Ok(found)
}

/// What loading an adapters folder does with an adapter that does not fit the base model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdapterDirPolicy {
    /// Fail, naming the adapter (a folder the user named).
    Strict,
    /// Skip it with a warning (the bundled folder, when serving another model).
    SkipMismatched,
}

/// Limits of an [`AdapterRegistry`].
#[derive(Debug, Clone, Default)]
pub struct RegistryConfig {
    /// Soft cap on resident adapters. Above it, the least recently used idle adapters loaded
    /// from disk are evicted (reloaded on next use). Adapters in use, and adapters registered
    /// with [`AdapterRegistry::insert`], are never evicted, so the count can stay above the cap
    /// until they become idle; eviction is retried on every later load and acquire.
    pub max_loaded_adapters: Option<usize>,
}

/// Usage of one adapter name, across its versions.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AdapterStats {
    /// Requests that acquired the adapter.
    pub requests: u64,
    /// Prompt tokens of finished requests.
    pub prompt_tokens: u64,
    /// Generated tokens of finished requests.
    pub generated_tokens: u64,
    /// Last acquire, in seconds since the Unix epoch; `None` before the first.
    pub last_used_unix: Option<f64>,
    /// Times its tensors were read or registered (first load, replaces, reloads after eviction).
    pub loads: u64,
    /// Times its tensors were evicted.
    pub evictions: u64,
}

/// What the registry reports about one adapter name.
#[derive(Debug, Clone, Serialize)]
pub struct AdapterInfo {
    /// The name requests use.
    pub name: String,
    /// The directory it is (re)loaded from; `None` when registered from memory.
    pub path: Option<PathBuf>,
    /// Largest LoRA rank over its modules.
    pub rank: usize,
    /// `lora_alpha` of its `adapter_config.json`.
    pub lora_alpha: f64,
    /// The projections it targets (`q_proj`, `v_proj`...).
    pub targets: Vec<String>,
    /// Version number: 1 for the first load of the name, +1 on every later load or replace.
    pub generation: u64,
    /// Whether its tensors are in memory (false while evicted).
    pub resident: bool,
    /// Bytes of its tensors (held only while `resident`).
    pub memory_bytes: usize,
    /// Usage counters.
    pub stats: AdapterStats,
}

/// A request's hold on one adapter version. While alive, that version is not evicted.
#[derive(Debug, Clone)]
pub struct ActiveAdapter {
    /// The registry name.
    pub name: String,
    /// The version acquired.
    pub generation: u64,
    /// Its tensors.
    pub adapter: Arc<LoraAdapter>,
    stats: Arc<Stats>,
}

impl ActiveAdapter {
    /// Adds a finished request's token counts to the adapter's stats (no lock taken).
    pub fn record_tokens(&self, prompt_tokens: usize, generated_tokens: usize) {
        add(&self.stats.prompt_tokens, prompt_tokens as u64);
        add(&self.stats.generated_tokens, generated_tokens as u64);
    }
}

#[derive(Debug, Default)]
struct Stats {
    requests: AtomicU64,
    prompt_tokens: AtomicU64,
    generated_tokens: AtomicU64,
    /// Milliseconds since the Unix epoch; 0 = never used.
    last_used_ms: AtomicU64,
    loads: AtomicU64,
    evictions: AtomicU64,
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl Stats {
    fn record_request(&self) {
        add(&self.requests, 1);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let ms = u64::try_from(now.as_millis()).unwrap_or(u64::MAX).max(1);
        self.last_used_ms.store(ms, Ordering::Relaxed);
    }

    fn snapshot(&self) -> AdapterStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let last_ms = get(&self.last_used_ms);
        AdapterStats {
            requests: get(&self.requests),
            prompt_tokens: get(&self.prompt_tokens),
            generated_tokens: get(&self.generated_tokens),
            last_used_unix: (last_ms > 0).then(|| last_ms as f64 / 1000.0),
            loads: get(&self.loads),
            evictions: get(&self.evictions),
        }
    }
}

/// One registered name. Its info outlives evicted tensors so `info` keeps answering.
#[derive(Debug)]
struct Entry {
    /// Everything but `resident` and `stats`, filled in when asked.
    info: AdapterInfo,
    /// `None` while evicted.
    adapter: Option<Arc<LoraAdapter>>,
    stats: Arc<Stats>,
    /// LRU clock value of the last load or acquire.
    last_tick: u64,
}

impl Entry {
    fn info(&self) -> AdapterInfo {
        AdapterInfo {
            resident: self.adapter.is_some(),
            stats: self.stats.snapshot(),
            ..self.info.clone()
        }
    }

    /// A hold on the resident version, counted as a request; `None` while evicted.
    fn hand_out(&self) -> Option<ActiveAdapter> {
        let adapter = Arc::clone(self.adapter.as_ref()?);
        self.stats.record_request();
        Some(ActiveAdapter {
            name: self.info.name.clone(),
            generation: self.info.generation,
            adapter,
            stats: Arc::clone(&self.stats),
        })
    }
}

#[derive(Debug, Default)]
struct State {
    entries: HashMap<String, Entry>,
    /// Last generation given to every name ever registered, so unload + load never reuses one.
    last_generation: HashMap<String, u64>,
    /// LRU clock, advanced by every load and acquire.
    tick: u64,
}

impl State {
    fn check_generation(&self, name: &str, expected: Option<u64>) -> Result<()> {
        let actual = self.entries.get(name).map_or(0, |e| e.info.generation);
        match expected {
            Some(expected) if expected != actual => Err(EngineError::GenerationMismatch {
                name: name.to_owned(),
                expected,
                actual,
            }),
            _ => Ok(()),
        }
    }

    fn next_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    /// Evicts least recently used idle adapters (other than `keep`) until at most `cap` are
    /// resident or none can go. Returns the evicted tensors, to be dropped after unlocking.
    fn evict_over(&mut self, cap: Option<usize>, keep: &str) -> Vec<Arc<LoraAdapter>> {
        let Some(cap) = cap else { return Vec::new() };
        let mut resident = self
            .entries
            .values()
            .filter(|e| e.adapter.is_some())
            .count();
        let mut evicted = Vec::new();
        while resident > cap {
            // Idle: no `ActiveAdapter` holds the Arc. New holds are only made under this lock.
            let victim = self
                .entries
                .iter_mut()
                .filter(|(name, e)| {
                    name.as_str() != keep
                        && e.info.path.is_some()
                        && e.adapter
                            .as_ref()
                            .is_some_and(|a| Arc::strong_count(a) == 1)
                })
                .min_by_key(|(_, e)| e.last_tick);
            let Some((name, entry)) = victim else { break };
            tracing::debug!(adapter = %name, generation = entry.info.generation, "evicted adapter");
            evicted.extend(entry.adapter.take());
            add(&entry.stats.evictions, 1);
            resident -= 1;
        }
        evicted
    }
}

/// The engine's adapters by name. Shared as `Arc<AdapterRegistry>` between the HTTP handlers
/// (load, unload) and the scheduler (acquire).
#[derive(Debug)]
pub struct AdapterRegistry {
    base: ModelConfig,
    dtype: DType,
    device: Device,
    config: RegistryConfig,
    state: Mutex<State>,
}

impl AdapterRegistry {
    /// An empty registry for adapters of `base`, loaded as `dtype` on `device`.
    pub fn new(base: ModelConfig, dtype: DType, device: Device, config: RegistryConfig) -> Self {
        Self {
            base,
            dtype,
            device,
            config,
            state: Mutex::default(),
        }
    }

    /// Loads every adapter folder in `dir` (folders holding `adapter_config.json`, named after
    /// the folder; anything else is skipped with a warning) and returns their infos sorted by
    /// name. Stops at the first adapter that fails to load, with an error naming it; those
    /// loaded before it stay registered.
    pub fn load_dir(&self, dir: &Path) -> Result<Vec<AdapterInfo>> {
        let found = adapter_folders(dir)?;
        for (name, path) in &found {
            self.load(name, path, None)?;
        }
        Ok(self.infos(found.iter().map(|(name, _)| name.as_str())))
    }

    /// Like [`AdapterRegistry::load_dir`], but an adapter that does not fit the base model (made
    /// for another base) is skipped with a warning naming it. For a default adapters folder
    /// that belongs to the default model, when the user serves another model.
    pub fn load_dir_fitting(&self, dir: &Path) -> Result<Vec<AdapterInfo>> {
        let mut loaded = Vec::new();
        for (name, path) in adapter_folders(dir)? {
            match self.load(&name, &path, None) {
                Ok(_) => loaded.push(name),
                Err(EngineError::Model(ModelError::InvalidAdapter { reason, .. })) => {
                    tracing::warn!(
                        adapter = %name,
                        path = %path.display(),
                        %reason,
                        "skipped: the adapter does not fit this base model"
                    );
                }
                Err(other) => return Err(other),
            }
        }
        Ok(self.infos(loaded.iter().map(String::as_str)))
    }

    fn infos<'a>(&self, names: impl Iterator<Item = &'a str>) -> Vec<AdapterInfo> {
        let state = self.lock();
        names
            .filter_map(|name| Some(state.entries.get(name)?.info()))
            .collect()
    }

    /// Loads `path` as `name`, replacing the current version if any. With
    /// `expected_generation`, fails with [`EngineError::GenerationMismatch`] unless the name is
    /// at that generation (0: not registered), both before reading and when swapping in.
    pub fn load(
        &self,
        name: &str,
        path: &Path,
        expected_generation: Option<u64>,
    ) -> Result<AdapterInfo> {
        validate_name(name)?;
        self.lock().check_generation(name, expected_generation)?;
        let adapter = LoraAdapter::load(path, &self.base, self.dtype, &self.device)?;
        let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        self.install(name, adapter, Some(path), expected_generation)
    }

    /// Registers an already-built adapter (tests, training). It has no path, so it cannot be
    /// reloaded and is never evicted.
    pub fn insert(
        &self,
        name: &str,
        adapter: LoraAdapter,
        expected_generation: Option<u64>,
    ) -> Result<AdapterInfo> {
        validate_name(name)?;
        adapter.check_fits(&self.base)?;
        self.install(name, adapter, None, expected_generation)
    }

    /// Swaps `adapter` in as the next generation of `name`; stats carry over from the old one.
    fn install(
        &self,
        name: &str,
        adapter: LoraAdapter,
        path: Option<PathBuf>,
        expected_generation: Option<u64>,
    ) -> Result<AdapterInfo> {
        let mut state = self.lock();
        // Again under the lock: a concurrent replace may have won while we read the disk.
        state.check_generation(name, expected_generation)?;
        let generation = state.last_generation.get(name).map_or(1, |g| g + 1);
        state.last_generation.insert(name.to_owned(), generation);
        let stats = state
            .entries
            .get(name)
            .map_or_else(Arc::default, |e| Arc::clone(&e.stats));
        add(&stats.loads, 1);
        let entry = Entry {
            info: AdapterInfo {
                name: name.to_owned(),
                path,
                rank: adapter.max_rank(),
                lora_alpha: adapter.config().lora_alpha,
                targets: adapter
                    .target_projs()
                    .iter()
                    .map(|p| p.name().to_owned())
                    .collect(),
                generation,
                resident: true,
                memory_bytes: adapter.memory_bytes(),
                stats: AdapterStats::default(),
            },
            adapter: Some(Arc::new(adapter)),
            stats,
            last_tick: state.next_tick(),
        };
        let info = entry.info();
        let old = state.entries.insert(name.to_owned(), entry);
        let evicted = state.evict_over(self.config.max_loaded_adapters, name);
        drop(state);
        tracing::info!(adapter = name, generation, "loaded adapter");
        drop((old, evicted));
        Ok(info)
    }

    /// Removes `name`; requests holding it finish with their version. Returns its info as it
    /// was just before.
    pub fn unload(&self, name: &str) -> Result<AdapterInfo> {
        let entry = self.lock().entries.remove(name);
        let entry = entry.ok_or_else(|| EngineError::AdapterNotFound(name.to_owned()))?;
        tracing::info!(
            adapter = name,
            generation = entry.info.generation,
            "unloaded adapter"
        );
        Ok(entry.info())
    }

    /// The current version for a new request: reloads it from disk if evicted, counts a
    /// request and updates last-used.
    pub fn acquire(&self, name: &str) -> Result<ActiveAdapter> {
        let not_found = || EngineError::AdapterNotFound(name.to_owned());
        let mut reloaded = None;
        loop {
            let mut state = self.lock();
            let tick = state.next_tick();
            let entry = state.entries.get_mut(name).ok_or_else(not_found)?;
            entry.last_tick = tick;
            // Put our reload in, unless a concurrent reload or a replace got there first.
            if let Some((generation, adapter)) = reloaded.take() {
                if entry.info.generation == generation && entry.adapter.is_none() {
                    entry.adapter = Some(Arc::new(adapter));
                    add(&entry.stats.loads, 1);
                }
            }
            if let Some(active) = entry.hand_out() {
                let evicted = state.evict_over(self.config.max_loaded_adapters, name);
                drop(state);
                drop(evicted);
                return Ok(active);
            }
            // Evicted: reload outside the lock. Adapters without a path are never evicted.
            let path = entry.info.path.clone().ok_or_else(not_found)?;
            let generation = entry.info.generation;
            drop(state);
            let adapter = LoraAdapter::load(&path, &self.base, self.dtype, &self.device)?;
            reloaded = Some((generation, adapter));
        }
    }

    /// The info of `name`.
    pub fn info(&self, name: &str) -> Result<AdapterInfo> {
        let info = self.lock().entries.get(name).map(Entry::info);
        info.ok_or_else(|| EngineError::AdapterNotFound(name.to_owned()))
    }

    /// Every registered adapter, sorted by name.
    pub fn list(&self) -> Vec<AdapterInfo> {
        let mut infos: Vec<_> = self.lock().entries.values().map(Entry::info).collect();
        infos.sort_by(|a, b| a.name.cmp(&b.name));
        infos
    }

    /// Whether `name` is registered (resident or evicted).
    pub fn contains(&self, name: &str) -> bool {
        self.lock().entries.contains_key(name)
    }

    /// Adapters whose tensors are in memory.
    pub fn loaded_count(&self) -> usize {
        let state = self.lock();
        state
            .entries
            .values()
            .filter(|e| e.adapter.is_some())
            .count()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update leaves the state consistent before anything can panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn validate_name(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        "the name is empty"
    } else if name.chars().count() > MAX_NAME_CHARS {
        "the name is longer than 128 characters"
    } else if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        "the name contains whitespace or control characters"
    } else if name.contains('/') {
        "the name contains '/'"
    } else {
        return Ok(());
    };
    Err(EngineError::InvalidAdapterName {
        name: name.to_owned(),
        reason: reason.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    fn golden(rel: &str) -> PathBuf {
        Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/golden"
        ))
        .join(rel)
    }

    fn registry(max_loaded_adapters: Option<usize>) -> AdapterRegistry {
        let base = ModelConfig::from_file(&golden("base/config.json")).expect("base config");
        let config = RegistryConfig {
            max_loaded_adapters,
        };
        AdapterRegistry::new(base, DType::F32, Device::Cpu, config)
    }

    fn copy_dir(src: &Path, dst: &Path) {
        fs::create_dir_all(dst).expect("create dir");
        for entry in fs::read_dir(src).expect("read dir") {
            let path = entry.expect("dir entry").path();
            let name = path.file_name().expect("file name");
            fs::copy(&path, dst.join(name)).expect("copy");
        }
    }

    /// An adapters directory holding copies of the golden adapters as `a` and `b`.
    fn adapters_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        copy_dir(&golden("adapter_a"), &dir.path().join("a"));
        copy_dir(&golden("adapter_b"), &dir.path().join("b"));
        dir
    }

    fn loaded(cap: Option<usize>) -> (tempfile::TempDir, AdapterRegistry) {
        let dir = adapters_dir();
        let registry = registry(cap);
        registry.load_dir(dir.path()).expect("load_dir");
        (dir, registry)
    }

    #[test]
    fn load_dir_loads_adapter_folders_by_name_and_skips_the_rest() {
        let dir = adapters_dir();
        fs::write(dir.path().join("notes.txt"), "not an adapter").expect("write");
        fs::create_dir(dir.path().join("empty")).expect("mkdir");
        let registry = registry(None);
        let infos = registry.load_dir(dir.path()).expect("load_dir");
        let names: Vec<_> = infos.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        let a = &infos[0];
        assert_eq!((a.generation, a.resident, a.stats.loads), (1, true, 1));
        assert!(
            a.rank > 0 && a.memory_bytes > 0 && !a.targets.is_empty(),
            "{a:?}"
        );
        assert_eq!(a.lora_alpha, 16.0);
        assert!(a.targets.iter().all(|t| t.ends_with("_proj")), "{a:?}");
        assert!(a.path.as_ref().expect("path").ends_with("a"));
        assert_eq!(registry.list().len(), 2);
        assert_eq!(registry.loaded_count(), 2);
        assert!(registry.contains("b") && !registry.contains("empty"));
    }

    #[test]
    fn a_broken_adapter_in_the_dir_is_an_error_naming_it() {
        let dir = adapters_dir();
        let broken = dir.path().join("broken");
        fs::create_dir(&broken).expect("mkdir");
        fs::write(broken.join("adapter_config.json"), "{}").expect("write");
        let err = registry(None)
            .load_dir(dir.path())
            .expect_err("broken adapter");
        assert!(matches!(err, EngineError::Model(_)), "{err:?}");
        assert!(err.to_string().contains("broken"), "{err}");
    }

    #[test]
    fn replace_increments_the_generation_and_old_holders_keep_their_version() {
        let (dir, registry) = loaded(None);
        let old = registry.acquire("a").expect("acquire");
        let info = registry
            .load("a", &dir.path().join("b"), None)
            .expect("replace");
        assert_eq!((info.generation, info.stats.loads), (2, 2));
        let new = registry.acquire("a").expect("acquire");
        assert_eq!((old.generation, new.generation), (1, 2));
        assert!(!Arc::ptr_eq(&old.adapter, &new.adapter));
        assert!(old.adapter.source().expect("source").ends_with("a"));
        assert!(new.adapter.source().expect("source").ends_with("b"));
    }

    #[test]
    fn compare_and_swap_on_the_generation() {
        let (dir, registry) = loaded(None);
        let b = dir.path().join("b");
        match registry.load("a", &b, Some(5)) {
            Err(EngineError::GenerationMismatch {
                name,
                expected: 5,
                actual: 1,
            }) => assert_eq!(name, "a"),
            other => panic!("expected GenerationMismatch, got {other:?}"),
        }
        let info = registry.info("a").expect("info");
        assert_eq!((info.generation, info.stats.loads), (1, 1));
        assert!(info.path.expect("path").ends_with("a"));
        assert_eq!(registry.load("a", &b, Some(1)).expect("cas").generation, 2);
        assert_eq!(registry.load("c", &b, Some(0)).expect("new").generation, 1);
        assert!(matches!(
            registry.load("a", &b, Some(0)),
            Err(EngineError::GenerationMismatch { actual: 2, .. })
        ));
        // `insert` reads nothing, so only the check made again when swapping in can refuse this.
        let mem = LoraAdapter::load(&b, &registry.base, DType::F32, &Device::Cpu).expect("load");
        assert!(matches!(
            registry.insert("c", mem, Some(3)),
            Err(EngineError::GenerationMismatch { actual: 1, .. })
        ));
    }

    #[test]
    fn unload_refuses_new_requests_but_not_held_ones_and_generations_never_repeat() {
        let (dir, registry) = loaded(None);
        let held = registry.acquire("a").expect("acquire");
        assert_eq!(registry.unload("a").expect("unload").generation, 1);
        assert!(matches!(registry.acquire("a"), Err(EngineError::AdapterNotFound(n)) if n == "a"));
        assert!(matches!(
            registry.unload("a"),
            Err(EngineError::AdapterNotFound(_))
        ));
        assert!(!registry.contains("a") && registry.info("a").is_err());
        assert!(held.adapter.max_rank() > 0);
        held.record_tokens(1, 1);
        let a = dir.path().join("a");
        assert_eq!(registry.load("a", &a, None).expect("reload").generation, 2);
        registry.unload("a").expect("unload");
        assert_eq!(
            registry.load("a", &a, Some(0)).expect("reload").generation,
            3
        );
    }

    #[test]
    fn least_recently_used_idle_adapters_are_evicted_and_reloaded_on_acquire() {
        let dir = adapters_dir();
        let registry = registry(Some(1));
        registry
            .load("a", &dir.path().join("a"), None)
            .expect("load a");
        registry
            .load("b", &dir.path().join("b"), None)
            .expect("load b");
        let a = registry.info("a").expect("info");
        assert_eq!((a.resident, a.stats.evictions, a.generation), (false, 1, 1));
        assert_eq!(registry.loaded_count(), 1);

        let active = registry.acquire("a").expect("acquire reloads");
        assert_eq!(active.generation, 1);
        let a = registry.info("a").expect("info");
        assert_eq!((a.resident, a.stats.loads, a.stats.requests), (true, 2, 1));
        let b = registry.info("b").expect("info");
        assert_eq!((b.resident, b.stats.evictions), (false, 1));

        // `a` is held: acquiring `b` cannot evict it, so the registry stays above the cap.
        let held_b = registry.acquire("b").expect("acquire b");
        assert_eq!(registry.loaded_count(), 2);
        assert!(registry.info("a").expect("info").resident);
        drop(active);
        let _held_a = registry.acquire("a").expect("acquire a");
        assert_eq!(registry.loaded_count(), 2, "b is still held");
        drop(held_b);
        registry.acquire("a").expect("acquire a");
        assert_eq!(
            registry.loaded_count(),
            1,
            "idle b evicted once the cap is retried"
        );
        assert!(!registry.info("b").expect("info").resident);
    }

    #[test]
    fn adapters_inserted_from_memory_are_never_evicted() {
        let dir = adapters_dir();
        let registry = registry(Some(1));
        let path = dir.path().join("a");
        let mem = LoraAdapter::load(&path, &registry.base, DType::F32, &Device::Cpu).expect("load");
        let info = registry.insert("mem", mem, None).expect("insert");
        assert_eq!((info.path, info.generation), (None, 1));
        registry.load("a", &path, None).expect("load a");
        registry
            .load("b", &dir.path().join("b"), None)
            .expect("load b");
        assert!(registry.info("mem").expect("info").resident);
        assert!(!registry.info("a").expect("info").resident);
        assert_eq!(registry.loaded_count(), 2);
    }

    #[test]
    fn stats_count_requests_and_tokens() {
        let (_dir, registry) = loaded(None);
        assert_eq!(registry.info("a").expect("info").stats.last_used_unix, None);
        registry.acquire("a").expect("acquire").record_tokens(10, 5);
        registry.acquire("a").expect("acquire").record_tokens(3, 2);
        let stats = registry.info("a").expect("info").stats;
        assert_eq!(
            (stats.requests, stats.prompt_tokens, stats.generated_tokens),
            (2, 13, 7)
        );
        assert!(stats.last_used_unix.is_some_and(|t| t > 1.6e9), "{stats:?}");
        assert_eq!(registry.info("b").expect("info").stats.requests, 0);
    }

    #[test]
    fn invalid_names_are_refused() {
        let registry = registry(None);
        let long = "x".repeat(129);
        for name in ["", "a b", "tab\t", "bell\u{7}", "a/b", long.as_str()] {
            match registry.load(name, &golden("adapter_a"), None) {
                Err(EngineError::InvalidAdapterName { name: n, .. }) => assert_eq!(n, name),
                other => panic!("{name:?}: expected InvalidAdapterName, got {other:?}"),
            }
        }
        assert!(registry.list().is_empty());
        let ok = "é".repeat(128);
        assert_eq!(
            registry
                .load(&ok, &golden("adapter_a"), None)
                .expect("load")
                .name,
            ok
        );
    }

    #[test]
    fn concurrent_loads_and_acquires_leave_a_consistent_state() {
        fn shareable<T: Send + Sync>() {}
        shareable::<AdapterRegistry>();
        let (dir, registry) = loaded(Some(1));
        let (threads, rounds) = (6, 4);
        let won: Vec<u64> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let (registry, dir) = (&registry, dir.path());
                    s.spawn(move || {
                        let mut won = Vec::new();
                        for round in 0..rounds {
                            let source = dir.join(if (t + round) % 2 == 0 { "a" } else { "b" });
                            registry.load("x", &source, None).expect("load");
                            let g = registry.info("x").expect("info").generation;
                            match registry.load("x", &source, Some(g)) {
                                Ok(_) => won.push(g),
                                Err(EngineError::GenerationMismatch { .. }) => {}
                                Err(e) => panic!("{e}"),
                            }
                            let held = registry.acquire("x").expect("acquire x");
                            let other = registry.acquire(["a", "b"][t % 2]).expect("acquire");
                            other.record_tokens(1, 1);
                            drop(held);
                        }
                        won
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("thread"))
                .collect()
        });
        let mut distinct = won.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(
            distinct.len(),
            won.len(),
            "two CAS loads won from one generation"
        );
        let x = registry.info("x").expect("info");
        let loads = (threads * rounds) as u64 + won.len() as u64;
        assert_eq!(x.generation, loads);
        assert_eq!(x.stats.requests, (threads * rounds) as u64);
        let (a, b) = (
            registry.info("a").expect("a"),
            registry.info("b").expect("b"),
        );
        assert_eq!(
            a.stats.requests + b.stats.requests,
            (threads * rounds) as u64
        );
        assert_eq!(
            a.stats.generated_tokens + b.stats.generated_tokens,
            (threads * rounds) as u64
        );
        registry.acquire("x").expect("acquire");
        assert_eq!(
            registry.loaded_count(),
            1,
            "everything idle again: back at the cap"
        );
    }
}

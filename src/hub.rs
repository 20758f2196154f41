//! Finding the model that `--model` names: a local directory or file, a Hugging Face Hub id
//! (`Org/Name[@revision]`) already in a local hub cache, or else one downloaded from the Hub.
//!
//! Downloads go into the standard hub cache layout (`<cache>/models--Org--Name/{blobs,
//! snapshots/<commit>, refs/<revision>}`, the layout `huggingface-cli download` writes), in the
//! first of [`switchboard_model::default_hub_caches`], so the next start finds the model offline.
//! Every file is written under a temporary name in its final folder and renamed into place, and a
//! snapshot's `config.json` is linked last: a snapshot holding `config.json` is complete.
//!
//! Nothing here needs the network unless the model is missing from every cache, and offline mode
//! (`HF_HUB_OFFLINE=1` or `SWITCHBOARD_OFFLINE=1`) forbids it altogether.

use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The Hub used when `HF_ENDPOINT` is not set.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// Files fetched when they exist; a 404 for one of these is fine.
const OPTIONAL_FILES: [&str; 3] = [
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
];
const CONFIG: &str = "config.json";
const SINGLE_WEIGHTS: &str = "model.safetensors";
const WEIGHTS_INDEX: &str = "model.safetensors.index.json";
/// How many redirects one file may take (the Hub sends large files to a CDN).
const MAX_REDIRECTS: usize = 10;

/// Where and how to look for and fetch models; [`HubSettings::from_env`] is the only place that
/// reads the environment, so tests can pass their own.
#[derive(Debug, Clone)]
pub struct HubSettings {
    /// The Hub's base URL, without a trailing slash (`HF_ENDPOINT`).
    pub endpoint: String,
    /// A bearer token for private or gated repositories (`HF_TOKEN`).
    pub token: Option<String>,
    /// The environment variable that switched offline mode on, if one did.
    pub offline: Option<&'static str>,
    /// The hub caches to search, in order; downloads go into the first.
    pub caches: Vec<PathBuf>,
    /// Whether to draw progress bars (they also stay hidden when stderr is not a terminal).
    pub progress: bool,
}

impl HubSettings {
    /// Reads `HF_ENDPOINT`, `HF_TOKEN` (or the token file `huggingface-cli login` writes),
    /// `HF_HUB_OFFLINE`, `SWITCHBOARD_OFFLINE` and the cache variables.
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let endpoint = var("HF_ENDPOINT")
            .map(|e| e.trim().trim_end_matches('/').to_string())
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
        let truthy = |k: &str| {
            var(k).is_some_and(|v| {
                matches!(
                    v.trim().to_ascii_lowercase().as_str(),
                    "1" | "true" | "yes" | "on"
                )
            })
        };
        let offline = ["SWITCHBOARD_OFFLINE", "HF_HUB_OFFLINE"]
            .into_iter()
            .find(|k| truthy(k));
        Self {
            endpoint,
            token: token_from_env(),
            offline,
            caches: switchboard_model::default_hub_caches(),
            progress: true,
        }
    }
}

/// `HF_TOKEN`, else the file named by `HF_TOKEN_PATH`, else `$HF_HOME/token` or
/// `~/.cache/huggingface/token` (where `huggingface-cli login` saves it).
fn token_from_env() -> Option<String> {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(t) = var("HF_TOKEN").and_then(|t| t.into_string().ok()) {
        return Some(t.trim().to_string()).filter(|t| !t.is_empty());
    }
    let file = var("HF_TOKEN_PATH").map(PathBuf::from).or_else(|| {
        var("HF_HOME")
            .map(|h| PathBuf::from(h).join("token"))
            .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".cache/huggingface/token")))
    })?;
    let token = std::fs::read_to_string(file).ok()?;
    Some(token.trim().to_string()).filter(|t| !t.is_empty())
}

/// Resolves `--model` with the settings of the environment; see [`resolve_model_with`].
pub fn resolve_model(spec: &str) -> Result<PathBuf> {
    resolve_model_with(spec, &HubSettings::from_env())
}

/// Resolves `--model`: an existing path is itself; a hub id (`Org/Name[@revision]`) is looked up
/// in the local caches and, failing that and unless offline, downloaded into the first cache.
/// Returns the checkpoint directory (or the local file).
pub fn resolve_model_with(spec: &str, settings: &HubSettings) -> Result<PathBuf> {
    let path = Path::new(spec);
    if path.exists() {
        return Ok(path.to_path_buf());
    }
    let Some(repo) = HubRepo::parse(spec) else {
        bail!(
            "`{spec}` is neither an existing file or directory nor a Hugging Face Hub id of the \
             form Org/Name[@revision]"
        );
    };
    if let Ok(dir) = switchboard_model::resolve_model_dir(spec, &settings.caches) {
        return Ok(dir);
    }
    if let Some(var) = settings.offline {
        return Err(not_available(
            &repo,
            settings,
            &format!("offline mode is on ({var} is set), so it is not downloaded"),
        ));
    }
    let cache = settings.caches.first().ok_or_else(|| {
        anyhow!(
            "no Hugging Face cache directory to download {} into: set HF_HUB_CACHE or HF_HOME",
            repo.id
        )
    })?;
    download(&repo, settings, cache)
}

/// A parsed hub id.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HubRepo {
    /// `Org/Name`.
    id: String,
    /// A branch, tag or commit; `main` when not given.
    revision: String,
}

impl HubRepo {
    /// `Org/Name` or `Org/Name@revision`, with the characters the Hub allows in names; `None`
    /// for anything else (so that a mistyped path is never sent to the network).
    fn parse(spec: &str) -> Option<Self> {
        let (id, revision) = spec.split_once('@').unwrap_or((spec, "main"));
        let name_ok = |s: &str| {
            !s.is_empty()
                && !s.starts_with('.')
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        };
        let (org, name) = id.split_once('/')?;
        if !name_ok(org) || !name_ok(name) {
            return None;
        }
        // Revisions may hold slashes (`refs/pr/1`), never an empty or dot-only segment.
        let revision_ok = !revision.is_empty()
            && revision.split('/').all(|seg| {
                !seg.is_empty()
                    && seg != "."
                    && seg != ".."
                    && seg
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            });
        revision_ok.then(|| Self {
            id: id.to_string(),
            revision: revision.to_string(),
        })
    }

    /// Whether the revision is already a full commit hash.
    fn revision_is_commit(&self) -> bool {
        is_commit(&self.revision)
    }
}

fn is_commit(s: &str) -> bool {
    s.len() == 40 && s.chars().all(|c| c.is_ascii_hexdigit())
}

/// The error for a model that is not cached and cannot be fetched: names the model, why, and
/// how to get the files onto this machine.
fn not_available(repo: &HubRepo, settings: &HubSettings, why: &str) -> anyhow::Error {
    let caches = if settings.caches.is_empty() {
        "none configured".to_string()
    } else {
        settings
            .caches
            .iter()
            .map(|c| c.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let revision_flag = if repo.revision == "main" {
        String::new()
    } else {
        format!(" --revision {}", repo.revision)
    };
    let mut msg = format!(
        "the model {} (revision {}) is not in the local Hugging Face cache ({caches}) and {why}. \
         To use it, run `huggingface-cli download {}{revision_flag}` on a machine with network \
         access and copy its hub cache (~/.cache/huggingface/hub) here (or point HF_HUB_CACHE at \
         it), or pass a local checkpoint directory or .gguf file to --model",
        repo.id, repo.revision, repo.id
    );
    if settings.offline.is_some() {
        msg.push_str("; or unset HF_HUB_OFFLINE and SWITCHBOARD_OFFLINE to download it");
    }
    anyhow!(msg)
}

/// Whether a transport error on the first request means "no network" (refused, unresolvable,
/// timed out, TLS intercepted) rather than a malformed answer. DNS failures arrive as plain I/O
/// errors ("failed to lookup address information"), so every I/O error counts.
fn is_unreachable(err: &ureq::Error) -> bool {
    matches!(
        err,
        ureq::Error::HostNotFound
            | ureq::Error::ConnectionFailed
            | ureq::Error::Timeout(_)
            | ureq::Error::Io(_)
            | ureq::Error::Tls(_)
            | ureq::Error::Rustls(_)
            | ureq::Error::ConnectProxyFailed(_)
            | ureq::Error::InvalidProxyUrl
    )
}

/// One file's answer from the Hub, after redirects.
struct Fetched {
    /// The final response, whose body is the file.
    response: ureq::http::Response<ureq::Body>,
    /// `x-repo-commit` of the Hub's answer.
    commit: Option<String>,
    /// The blob name: `x-linked-etag` (an LFS file's sha256) or else the Hub's `etag`.
    etag: Option<String>,
    /// `x-linked-size`, or else the final `content-length`.
    size: Option<u64>,
}

/// Why a file could not be fetched.
enum FetchError {
    /// The server answered with this status (and the Hub's `x-error-code`/`x-error-message`).
    Status(u16, String),
    /// The request never got an answer.
    Transport(ureq::Error),
    /// Anything else (bad redirects).
    Other(anyhow::Error),
}

struct Downloader<'a> {
    agent: ureq::Agent,
    settings: &'a HubSettings,
    repo: &'a HubRepo,
    /// `<cache>/models--Org--Name`.
    repo_dir: PathBuf,
}

fn download(repo: &HubRepo, settings: &HubSettings, cache: &Path) -> Result<PathBuf> {
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_resolve(Some(Duration::from_secs(15)))
        .timeout_connect(Some(Duration::from_secs(15)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .timeout_per_read(Some(Duration::from_secs(60)))
        .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
        .build();
    let dl = Downloader {
        agent: config.new_agent(),
        settings,
        repo,
        repo_dir: cache.join(format!("models--{}", repo.id.replace('/', "--"))),
    };
    tracing::info!(
        model = %repo.id,
        revision = %repo.revision,
        endpoint = %settings.endpoint,
        cache = %cache.display(),
        "the model is not cached: downloading it from the Hub"
    );
    dl.run()
}

impl Downloader<'_> {
    fn run(&self) -> Result<PathBuf> {
        let repo = self.repo;
        // config.json first: it tells whether the repository exists, and its commit.
        let fetched = match self.fetch(&repo.revision, CONFIG) {
            Ok(f) => f,
            Err(FetchError::Transport(e)) if is_unreachable(&e) => {
                return Err(not_available(
                    repo,
                    self.settings,
                    &format!(
                        "the Hub at {} could not be reached ({e})",
                        self.settings.endpoint
                    ),
                ));
            }
            Err(FetchError::Status(status @ (401 | 403 | 404), detail)) => {
                let token = if self.settings.token.is_some() {
                    "HF_TOKEN is set: check that it grants access to this repository"
                } else {
                    "if it is private or gated, set HF_TOKEN to an access token that may read it"
                };
                bail!(
                    "the Hugging Face Hub at {} answered {status} for {}/{CONFIG} at revision {}{detail}: \
                     the repository or revision does not exist, or it needs a token ({token})",
                    self.settings.endpoint,
                    repo.id,
                    repo.revision
                );
            }
            Err(e) => {
                return Err(self.fetch_error(e, CONFIG)).context(format!(
                    "downloading {} (revision {}) from {}",
                    repo.id, repo.revision, self.settings.endpoint
                ))
            }
        };
        let commit = if repo.revision_is_commit() {
            repo.revision.to_ascii_lowercase()
        } else {
            fetched
                .commit
                .clone()
                .filter(|c| is_plain_name(c))
                .ok_or_else(|| {
                    anyhow!(
                        "{}: the Hub gave no usable commit (x-repo-commit) for revision {}",
                        repo.id,
                        repo.revision
                    )
                })?
        };
        let snapshot = self.repo_dir.join("snapshots").join(&commit);
        std::fs::create_dir_all(&snapshot)
            .with_context(|| format!("creating {}", snapshot.display()))?;
        let context = || {
            format!(
                "downloading {} (revision {}, commit {commit}) from {} into {}",
                repo.id,
                repo.revision,
                self.settings.endpoint,
                self.repo_dir.display()
            )
        };
        // The config's blob now; it is linked into the snapshot last, once all else is there.
        let config_blob = self.store(fetched, CONFIG).with_context(context)?;
        self.fetch_rest(&commit, &snapshot).with_context(context)?;
        self.link(&config_blob, &snapshot, CONFIG)
            .with_context(context)?;
        if !repo.revision_is_commit() {
            let ref_file = self.repo_dir.join("refs").join(&repo.revision);
            write_atomically(&ref_file, commit.as_bytes()).with_context(context)?;
        }
        tracing::info!(model = %repo.id, dir = %snapshot.display(), "downloaded");
        Ok(snapshot)
    }

    /// The optional files and the weights, pinned to `commit`.
    fn fetch_rest(&self, commit: &str, snapshot: &Path) -> Result<()> {
        for file in OPTIONAL_FILES {
            self.get_into(commit, file, snapshot, false)?;
        }
        if self.get_into(commit, SINGLE_WEIGHTS, snapshot, false)? {
            return Ok(());
        }
        if !self.get_into(commit, WEIGHTS_INDEX, snapshot, false)? {
            bail!(
                "the repository has neither {SINGLE_WEIGHTS} nor {WEIGHTS_INDEX}; only safetensors \
                 checkpoints can be downloaded"
            );
        }
        let index_path = snapshot.join(WEIGHTS_INDEX);
        let text = std::fs::read_to_string(&index_path)
            .with_context(|| format!("reading {}", index_path.display()))?;
        for shard in shard_names(&text).with_context(|| format!("reading {WEIGHTS_INDEX}"))? {
            self.get_into(commit, &shard, snapshot, true)?;
        }
        Ok(())
    }

    /// Downloads `file` at `commit` into the snapshot unless it is there already. Returns whether
    /// the file exists; a missing file is an error only when `required`.
    fn get_into(&self, commit: &str, file: &str, snapshot: &Path, required: bool) -> Result<bool> {
        if snapshot.join(file).is_file() {
            return Ok(true);
        }
        match self.fetch(commit, file) {
            Ok(fetched) => {
                let blob = self.store(fetched, file)?;
                self.link(&blob, snapshot, file)?;
                Ok(true)
            }
            Err(FetchError::Status(404, _)) if !required => Ok(false),
            Err(e) => Err(self.fetch_error(e, file)),
        }
    }

    fn fetch_error(&self, err: FetchError, file: &str) -> anyhow::Error {
        match err {
            FetchError::Status(status, detail) => {
                anyhow!("fetching {file}: the server answered {status}{detail}")
            }
            FetchError::Transport(e) => anyhow!(e).context(format!("fetching {file}")),
            FetchError::Other(e) => e.context(format!("fetching {file}")),
        }
    }

    /// GETs `/{id}/resolve/{revision}/{file}`, following redirects by hand so the Hub's own
    /// headers (commit, etag) are seen and the token is sent to the Hub's host only.
    fn fetch(&self, revision: &str, file: &str) -> std::result::Result<Fetched, FetchError> {
        let endpoint = &self.settings.endpoint;
        let mut url = format!(
            "{endpoint}/{}/resolve/{}/{file}",
            self.repo.id,
            revision.replace('/', "%2F")
        );
        let hub_origin = origin(endpoint);
        let (mut commit, mut linked_etag, mut etag, mut linked_size) = (None, None, None, None);
        for _ in 0..=MAX_REDIRECTS {
            let mut request = self.agent.get(&url);
            if let Some(token) = &self.settings.token {
                if origin(&url) == hub_origin {
                    request = request.header("authorization", format!("Bearer {token}"));
                }
            }
            let response = request.call().map_err(FetchError::Transport)?;
            let header = |name: &str| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(|v| v.trim().to_string())
                    .filter(|v| !v.is_empty())
            };
            commit = commit.or_else(|| header("x-repo-commit"));
            linked_etag = linked_etag.or_else(|| header("x-linked-etag"));
            etag = etag.or_else(|| header("etag"));
            linked_size = linked_size.or_else(|| header("x-linked-size"));
            let status = response.status().as_u16();
            if response.status().is_redirection() {
                let location = header("location").ok_or_else(|| {
                    FetchError::Other(anyhow!("a {status} redirect without a location"))
                })?;
                url = join_url(&url, &location);
                continue;
            }
            if !response.status().is_success() {
                let mut detail = String::new();
                for name in ["x-error-code", "x-error-message"] {
                    if let Some(v) = header(name) {
                        let _ = write!(detail, " ({v})");
                    }
                }
                return Err(FetchError::Status(status, detail));
            }
            let size = linked_size
                .as_deref()
                .and_then(|s| s.parse().ok())
                .or_else(|| header("content-length").and_then(|s| s.parse().ok()));
            return Ok(Fetched {
                response,
                commit,
                etag: linked_etag.or(etag).map(|e| normalize_etag(&e)),
                size,
            });
        }
        Err(FetchError::Other(anyhow!(
            "more than {MAX_REDIRECTS} redirects"
        )))
    }

    /// Writes a fetched file's body into `blobs/` (unless that blob exists) and returns its path.
    fn store(&self, fetched: Fetched, file: &str) -> Result<PathBuf> {
        let blobs = self.repo_dir.join("blobs");
        std::fs::create_dir_all(&blobs).with_context(|| format!("creating {}", blobs.display()))?;
        let name = fetched
            .etag
            .clone()
            .filter(|e| is_plain_name(e))
            .unwrap_or_else(|| {
                // No usable etag: a name that is at least stable for this commit and file.
                let commit = fetched.commit.as_deref().unwrap_or("unknown");
                format!(
                    "{}-{file}",
                    commit.replace(|c: char| !c.is_ascii_alphanumeric(), "")
                )
            });
        let blob = blobs.join(&name);
        if blob.is_file() {
            return Ok(blob);
        }
        let bar = self.progress_bar(file, fetched.size);
        let mut reader = fetched.response.into_body().into_reader();
        let written = write_atomically_with(&blob, |out| {
            let mut out = bar.wrap_write(out);
            copy(&mut reader, &mut out)
        });
        bar.finish_and_clear();
        let written = written.with_context(|| format!("downloading {file}"))?;
        if let Some(size) = fetched.size {
            if written != size {
                let _ = std::fs::remove_file(&blob);
                bail!("downloading {file}: got {written} bytes of {size}");
            }
        }
        Ok(blob)
    }

    /// Makes `snapshot/file` point at `blob` (a relative symlink, as the Hub's tools write),
    /// replacing any earlier one atomically.
    fn link(&self, blob: &Path, snapshot: &Path, file: &str) -> Result<()> {
        let target = snapshot.join(file);
        let tmp = temp_name(&target);
        #[cfg(unix)]
        {
            let blob_name = blob
                .file_name()
                .ok_or_else(|| anyhow!("{}: no file name", blob.display()))?;
            let relative = Path::new("../../blobs").join(blob_name);
            std::os::unix::fs::symlink(&relative, &tmp)
                .with_context(|| format!("linking {}", tmp.display()))?;
        }
        #[cfg(not(unix))]
        std::fs::copy(blob, &tmp).with_context(|| format!("copying to {}", tmp.display()))?;
        std::fs::rename(&tmp, &target).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            anyhow!(e).context(format!("renaming to {}", target.display()))
        })
    }

    fn progress_bar(&self, file: &str, size: Option<u64>) -> ProgressBar {
        if !self.settings.progress {
            return ProgressBar::hidden();
        }
        let bar = match size {
            Some(size) => ProgressBar::with_draw_target(Some(size), ProgressDrawTarget::stderr())
                .with_style(
                    ProgressStyle::with_template(
                        "{msg:30!} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                ),
            None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_style(
                ProgressStyle::with_template("{spinner} {msg:30!} {bytes} {bytes_per_sec}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            ),
        };
        bar.set_message(file.to_string());
        bar
    }
}

/// The shard file names an index's `weight_map` names, each once, in order; each must be a plain
/// file name (nothing that could leave the snapshot directory).
fn shard_names(index: &str) -> Result<Vec<String>> {
    let value: serde_json::Value = serde_json::from_str(index).context("not valid JSON")?;
    let map = value
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| anyhow!("no `weight_map` object"))?;
    let mut shards: Vec<String> = Vec::new();
    for (tensor, file) in map {
        let file = file
            .as_str()
            .ok_or_else(|| anyhow!("the weight_map entry of {tensor} is not a string"))?;
        if !is_plain_name(file) {
            bail!("the shard name {file:?} (of tensor {tensor}) is not a plain file name");
        }
        if !shards.iter().any(|s| s == file) {
            shards.push(file.to_string());
        }
    }
    if shards.is_empty() {
        bail!("the weight_map is empty");
    }
    Ok(shards)
}

/// A name safe as one path component and in a URL: `[A-Za-z0-9._-]`, not starting with a dot.
fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// `"abc"` and `W/"abc"` -> `abc`.
fn normalize_etag(etag: &str) -> String {
    etag.trim()
        .trim_start_matches("W/")
        .trim_matches('"')
        .to_string()
}

/// `scheme://host[:port]` of a URL.
fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find(['/', '?', '#']) {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

/// Resolves a redirect's `location` against the URL that answered it.
fn join_url(base: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.to_string();
    }
    if let Some(rest) = location.strip_prefix("//") {
        let scheme = base.split("://").next().unwrap_or("https");
        return format!("{scheme}://{rest}");
    }
    if location.starts_with('/') {
        return format!("{}{location}", origin(base));
    }
    let path = base.split(['?', '#']).next().unwrap_or(base);
    let dir = match path.rfind('/') {
        Some(i) if i >= origin(base).len() => &path[..=i],
        _ => return format!("{}/{location}", origin(base)),
    };
    format!("{dir}{location}")
}

/// Copies all of `reader` into `writer` with a large buffer; returns the byte count.
fn copy(reader: &mut impl Read, writer: &mut impl Write) -> io::Result<u64> {
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        writer.write_all(&buf[..n])?;
        total += n as u64;
    }
}

/// A temporary name beside `path`, unique within this machine's processes.
fn temp_name(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}-{n}.incomplete", std::process::id()))
}

/// Writes through `fill` into a temporary file beside `path`, then renames it into place; the
/// temporary file is removed on failure.
fn write_atomically_with<T>(
    path: &Path,
    fill: impl FnOnce(&mut std::fs::File) -> io::Result<T>,
) -> Result<T> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let tmp = temp_name(path);
    let result = (|| -> Result<T> {
        let mut file =
            std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        let value = fill(&mut file).with_context(|| format!("writing {}", tmp.display()))?;
        file.sync_all()
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path)
            .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
        Ok(value)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomically_with(path, |f| f.write_all(bytes))
}

#[cfg(test)]
mod tests;

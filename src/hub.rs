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
mod tests {
    use super::*;

    use std::collections::HashMap;
    use std::io::{BufRead, BufReader};
    use std::net::{TcpListener, TcpStream};
    use std::sync::atomic::AtomicBool;
    use std::sync::{Arc, Mutex};
    use std::thread::JoinHandle;

    const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
    const LFS_SHA: &str = "5f3c0ffee5f3c0ffee5f3c0ffee5f3c0ffee5f3c0ffee5f3c0ffee5f3c0ffee0";

    fn golden_base() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden/base")
    }

    /// What the fake Hub saw.
    #[derive(Default)]
    struct Seen {
        requests: Vec<String>,
        auth: Vec<Option<String>>,
    }

    /// A tiny fake of the Hub's `GET /{org}/{name}/resolve/{revision}/{file}` on loopback:
    /// * `Org/Tiny`: the golden base checkpoint; `model.safetensors` is an LFS file, redirected to
    ///   `/cdn/...` as the Hub does;
    /// * `Org/Sharded`: no `model.safetensors`, an index naming two shards;
    /// * `Org/Evil`: an index whose shard name climbs out of the snapshot;
    /// * `Org/Gated`: 401; anything else: 404 `RepoNotFound`.
    struct FakeHub {
        url: String,
        stop: Arc<AtomicBool>,
        seen: Arc<Mutex<Seen>>,
        thread: Option<JoinHandle<()>>,
    }

    impl FakeHub {
        fn start() -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
            let url = format!("http://{}", listener.local_addr().expect("addr"));
            listener.set_nonblocking(true).expect("nonblocking");
            let stop = Arc::new(AtomicBool::new(false));
            let seen = Arc::new(Mutex::new(Seen::default()));
            let (stop2, seen2) = (stop.clone(), seen.clone());
            let thread = std::thread::spawn(move || {
                while !stop2.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            stream.set_nonblocking(false).expect("blocking");
                            serve_one(stream, &seen2);
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(5));
                        }
                        Err(e) => panic!("accept: {e}"),
                    }
                }
            });
            Self {
                url,
                stop,
                seen,
                thread: Some(thread),
            }
        }

        fn requests(&self) -> Vec<String> {
            self.seen.lock().expect("lock").requests.clone()
        }

        /// Stops listening: the port refuses connections afterwards.
        fn stop(&mut self) {
            self.stop.store(true, Ordering::SeqCst);
            if let Some(t) = self.thread.take() {
                t.join().expect("server thread");
            }
        }
    }

    impl Drop for FakeHub {
        fn drop(&mut self) {
            self.stop();
        }
    }

    fn serve_one(stream: TcpStream, seen: &Mutex<Seen>) {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut reader = BufReader::new(stream.try_clone().expect("clone"));
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).is_err() {
            return;
        }
        let mut headers = HashMap::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .to_string();
        {
            let mut seen = seen.lock().expect("lock");
            seen.requests.push(path.clone());
            seen.auth.push(headers.get("authorization").cloned());
        }
        let (status, extra, body) = route(&path);
        let mut out = stream;
        let reason = match status {
            200 => "OK",
            302 => "Found",
            401 => "Unauthorized",
            _ => "Not Found",
        };
        let mut head = format!(
            "HTTP/1.1 {status} {reason}\r\ncontent-length: {}\r\nconnection: close\r\n",
            body.len()
        );
        for (k, v) in extra {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let _ = out.write_all(head.as_bytes());
        let _ = out.write_all(&body);
        let _ = out.flush();
    }

    type Reply = (u16, Vec<(&'static str, String)>, Vec<u8>);

    fn not_found(code: &str) -> Reply {
        (
            404,
            vec![("x-error-code", code.to_string())],
            b"not found".to_vec(),
        )
    }

    fn route(path: &str) -> Reply {
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let golden = |file: &str| std::fs::read(golden_base().join(file)).ok();
        if let ["cdn", file] = parts.as_slice() {
            return match golden(file) {
                // The CDN's own etag must not be taken for the blob name.
                Some(body) => (200, vec![("etag", "\"cdn-etag\"".into())], body),
                None => not_found("EntryNotFound"),
            };
        }
        let [org, name, "resolve", revision, file] = parts.as_slice() else {
            return not_found("RepoNotFound");
        };
        if *org != "Org" {
            return not_found("RepoNotFound");
        }
        if *revision != "main" && *revision != COMMIT {
            return not_found("RevisionNotFound");
        }
        let hub = |etag: String| {
            vec![
                ("x-repo-commit", COMMIT.to_string()),
                ("etag", format!("\"{etag}\"")),
            ]
        };
        let small = |file: &str| match golden(file) {
            Some(body) => (200, hub(format!("etag-{}", file.replace('.', "-"))), body),
            None => not_found("EntryNotFound"),
        };
        let index = |shards: [&str; 2]| {
            let json = serde_json::json!({
                "metadata": {"total_size": 2},
                "weight_map": {"a": shards[0], "b": shards[1], "c": shards[0]},
            });
            (200, hub("etag-index".into()), json.to_string().into_bytes())
        };
        match (*name, *file) {
            ("Gated", _) => (
                401,
                vec![("x-error-code", "GatedRepo".to_string())],
                b"gated".to_vec(),
            ),
            ("Tiny", "model.safetensors") => {
                let size = golden(file).expect("weights").len();
                let mut headers = hub("git-etag".into());
                headers.push(("x-linked-etag", format!("\"{LFS_SHA}\"")));
                headers.push(("x-linked-size", size.to_string()));
                headers.push(("location", format!("/cdn/{file}")));
                (302, headers, Vec::new())
            }
            ("Tiny", f) => small(f),
            ("Sharded" | "Evil", "model.safetensors") => not_found("EntryNotFound"),
            ("Sharded", "model.safetensors.index.json") => index([
                "model-00001-of-00002.safetensors",
                "model-00002-of-00002.safetensors",
            ]),
            ("Sharded", f) if f.starts_with("model-0000") => (
                200,
                hub(format!("shard-{}", &f[6..11])),
                f.as_bytes().to_vec(),
            ),
            ("Evil", "model.safetensors.index.json") => index([
                "model-00001-of-00002.safetensors",
                "../../escape.safetensors",
            ]),
            ("Sharded" | "Evil", "tokenizer.json") => not_found("EntryNotFound"),
            ("Sharded" | "Evil", f) => small(f),
            _ => not_found("RepoNotFound"),
        }
    }

    fn settings(endpoint: &str, cache: &Path) -> HubSettings {
        HubSettings {
            endpoint: endpoint.to_string(),
            token: Some("secret-token".into()),
            offline: None,
            caches: vec![cache.to_path_buf()],
            progress: false,
        }
    }

    fn leftovers(dir: &Path) -> Vec<PathBuf> {
        let mut found = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).expect("read dir") {
                let path = entry.expect("entry").path();
                if path.is_dir() && !path.is_symlink() {
                    stack.push(path);
                } else if path.to_string_lossy().ends_with(".incomplete") {
                    found.push(path);
                }
            }
        }
        found
    }

    #[test]
    fn downloads_into_the_cache_layout_then_resolves_offline() {
        let mut hub = FakeHub::start();
        let tmp = tempfile::tempdir().expect("tmp");
        let cache = tmp.path().join("hub");
        let settings = settings(&hub.url, &cache);

        let dir = resolve_model_with("Org/Tiny", &settings).expect("download");
        let repo = cache.join("models--Org--Tiny");
        assert_eq!(dir, repo.join("snapshots").join(COMMIT));
        for file in [
            "config.json",
            "generation_config.json",
            "tokenizer.json",
            "tokenizer_config.json",
            "model.safetensors",
        ] {
            let got = std::fs::read(dir.join(file)).expect(file);
            let want = std::fs::read(golden_base().join(file)).expect(file);
            assert!(got == want, "{file} differs from the served file");
            assert!(
                dir.join(file).is_symlink(),
                "{file} should link into blobs/"
            );
        }
        // LFS files are stored under their sha256 (x-linked-etag), others under the etag.
        assert!(repo.join("blobs").join(LFS_SHA).is_file());
        assert!(repo.join("blobs/etag-config-json").is_file());
        assert_eq!(
            std::fs::read_to_string(repo.join("refs/main")).expect("ref"),
            COMMIT
        );
        assert!(
            leftovers(tmp.path()).is_empty(),
            "{:?}",
            leftovers(tmp.path())
        );
        let requests = hub.requests();
        assert!(requests.contains(&"/cdn/model.safetensors".to_string()));
        // After config.json, files are fetched at the pinned commit.
        assert!(requests
            .iter()
            .any(|r| r == &format!("/Org/Tiny/resolve/{COMMIT}/model.safetensors")));
        // The token went to the Hub's host (here the redirect stays on it too).
        let auth = hub.seen.lock().expect("lock").auth.clone();
        assert!(auth
            .iter()
            .all(|a| a.as_deref() == Some("Bearer secret-token")));

        // With the server gone, the cache alone answers, also in offline mode.
        hub.stop();
        let mut offline = settings.clone();
        offline.endpoint = "http://127.0.0.1:1".into();
        assert_eq!(
            resolve_model_with("Org/Tiny", &offline).expect("cached"),
            dir
        );
        offline.offline = Some("HF_HUB_OFFLINE");
        assert_eq!(
            resolve_model_with("Org/Tiny", &offline).expect("cached"),
            dir
        );
        let pinned = format!("Org/Tiny@{COMMIT}");
        assert_eq!(resolve_model_with(&pinned, &offline).expect("pinned"), dir);
        assert_eq!(
            switchboard_model::resolve_model_dir("Org/Tiny", &offline.caches).expect("model crate"),
            dir
        );
    }

    #[test]
    fn downloads_sharded_checkpoints_at_a_pinned_commit() {
        let hub = FakeHub::start();
        let tmp = tempfile::tempdir().expect("tmp");
        let settings = settings(&hub.url, tmp.path());
        let spec = format!("Org/Sharded@{COMMIT}");
        let dir = resolve_model_with(&spec, &settings).expect("download");
        let repo = tmp.path().join("models--Org--Sharded");
        assert_eq!(dir, repo.join("snapshots").join(COMMIT));
        for shard in [
            "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors",
        ] {
            assert_eq!(
                std::fs::read_to_string(dir.join(shard)).expect(shard),
                shard
            );
        }
        assert!(dir.join("model.safetensors.index.json").is_file());
        assert!(dir.join("config.json").is_file());
        // Optional files may be missing; a commit revision writes no ref.
        assert!(!dir.join("tokenizer.json").exists());
        assert!(!repo.join("refs").exists());
        let requests = hub.requests();
        assert_eq!(
            requests
                .iter()
                .filter(|r| r.ends_with("model-00001-of-00002.safetensors"))
                .count(),
            1,
            "each shard once: {requests:?}"
        );
    }

    #[test]
    fn rejects_shard_names_that_are_not_plain_file_names() {
        let hub = FakeHub::start();
        let tmp = tempfile::tempdir().expect("tmp");
        let err = resolve_model_with("Org/Evil", &settings(&hub.url, tmp.path()))
            .expect_err("evil index");
        let msg = format!("{err:#}");
        assert!(msg.contains("not a plain file name"), "{msg}");
        // The snapshot is left incomplete (no config.json), so nothing resolves it.
        let snapshot = tmp.path().join("models--Org--Evil/snapshots").join(COMMIT);
        assert!(!snapshot.join("config.json").exists());
        assert!(!tmp.path().join("models--Org--Evil/refs/main").exists());
        assert!(!hub.requests().iter().any(|r| r.contains("escape")));
    }

    #[test]
    fn offline_mode_gives_a_clear_error_without_touching_the_network() {
        let hub = FakeHub::start();
        let tmp = tempfile::tempdir().expect("tmp");
        let mut settings = settings(&hub.url, tmp.path());
        settings.offline = Some("SWITCHBOARD_OFFLINE");
        let msg = format!(
            "{:#}",
            resolve_model_with("Org/Tiny@v2", &settings).expect_err("offline")
        );
        for want in [
            "Org/Tiny",
            "revision v2",
            "SWITCHBOARD_OFFLINE is set",
            "huggingface-cli download Org/Tiny --revision v2",
            ".gguf",
        ] {
            assert!(msg.contains(want), "missing {want:?} in: {msg}");
        }
        assert!(hub.requests().is_empty(), "{:?}", hub.requests());
    }

    #[test]
    fn an_unreachable_hub_gives_a_clear_error() {
        let tmp = tempfile::tempdir().expect("tmp");
        let settings = settings("http://127.0.0.1:1", tmp.path());
        let msg = format!(
            "{:#}",
            resolve_model_with("Org/Tiny", &settings).expect_err("unreachable")
        );
        for want in [
            "Org/Tiny",
            "could not be reached",
            "http://127.0.0.1:1",
            "huggingface-cli download Org/Tiny`",
            "local checkpoint directory or .gguf file",
        ] {
            assert!(msg.contains(want), "missing {want:?} in: {msg}");
        }
        assert!(!msg.contains("OFFLINE is set"), "{msg}");
    }

    #[test]
    fn missing_or_gated_repositories_say_so() {
        let hub = FakeHub::start();
        let tmp = tempfile::tempdir().expect("tmp");
        let mut settings = settings(&hub.url, tmp.path());
        let msg = format!(
            "{:#}",
            resolve_model_with("Nobody/Nothing", &settings).expect_err("404")
        );
        assert!(msg.contains("404"), "{msg}");
        assert!(msg.contains("does not exist"), "{msg}");
        assert!(msg.contains("RepoNotFound"), "{msg}");
        settings.token = None;
        let msg = format!(
            "{:#}",
            resolve_model_with("Org/Gated", &settings).expect_err("401")
        );
        assert!(msg.contains("401") && msg.contains("set HF_TOKEN"), "{msg}");
        let msg = format!(
            "{:#}",
            resolve_model_with("Org/Tiny@no-such-branch", &settings).expect_err("404")
        );
        assert!(msg.contains("RevisionNotFound"), "{msg}");
        // Nothing was half-written.
        assert!(!tmp
            .path()
            .join("models--Nobody--Nothing/snapshots")
            .exists());
    }

    #[test]
    fn local_paths_and_non_ids_never_reach_the_network() {
        let tmp = tempfile::tempdir().expect("tmp");
        let settings = settings("http://127.0.0.1:1", tmp.path());
        let file = tmp.path().join("model.gguf");
        std::fs::write(&file, b"GGUF").expect("write");
        let spec = file.to_str().expect("utf-8");
        assert_eq!(resolve_model_with(spec, &settings).expect("file"), file);
        let dir = tmp.path().to_str().expect("utf-8");
        assert_eq!(resolve_model_with(dir, &settings).expect("dir"), tmp.path());
        for spec in [
            "/no/such/dir",
            "./missing/model.gguf",
            "a/b/c",
            "../x",
            "Org/Name@../x",
        ] {
            let msg = format!("{:#}", resolve_model_with(spec, &settings).expect_err(spec));
            assert!(msg.contains("neither an existing file"), "{spec}: {msg}");
        }
    }

    #[test]
    fn parses_hub_ids() {
        let repo = HubRepo::parse("Qwen/Qwen2.5-0.5B-Instruct").expect("id");
        assert_eq!(repo.id, "Qwen/Qwen2.5-0.5B-Instruct");
        assert_eq!(repo.revision, "main");
        let repo = HubRepo::parse("Org/Name@refs/pr/1").expect("pr");
        assert_eq!(repo.revision, "refs/pr/1");
        assert!(!repo.revision_is_commit());
        assert!(HubRepo::parse(&format!("Org/Name@{COMMIT}"))
            .expect("commit")
            .revision_is_commit());
        for bad in [
            "Org",
            "Org/",
            "/Name",
            "Org/Name@",
            "Org/../x",
            ".hidden/x",
            "Org/Na me",
        ] {
            assert_eq!(HubRepo::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn classifies_no_network_errors() {
        let dns =
            io::Error::other("failed to lookup address information: Name or service not known");
        assert!(is_unreachable(&ureq::Error::Io(dns)));
        assert!(is_unreachable(&ureq::Error::HostNotFound));
        assert!(is_unreachable(&ureq::Error::ConnectionFailed));
        assert!(!is_unreachable(&ureq::Error::BadUri("x".into())));
        assert!(!is_unreachable(&ureq::Error::TooManyRedirects));
    }

    #[test]
    fn resolves_redirect_locations_and_etags() {
        let base = "https://huggingface.co/Org/Name/resolve/main/model.safetensors";
        assert_eq!(
            join_url(base, "https://cdn.example/x?sig=1"),
            "https://cdn.example/x?sig=1"
        );
        assert_eq!(
            join_url(
                base,
                "/api/resolve-cache/models/Org/Name/abc/model.safetensors"
            ),
            "https://huggingface.co/api/resolve-cache/models/Org/Name/abc/model.safetensors"
        );
        assert_eq!(
            join_url(base, "other.bin"),
            "https://huggingface.co/Org/Name/resolve/main/other.bin"
        );
        assert_eq!(join_url(base, "//cdn.example/y"), "https://cdn.example/y");
        assert_eq!(origin("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
        assert_eq!(origin(base), "https://huggingface.co");
        assert_eq!(normalize_etag("W/\"abc\""), "abc");
        assert!(is_plain_name("model-00001-of-00002.safetensors"));
        for bad in ["", ".", "..", "../x", "a/b", "a\\b", ".hidden"] {
            assert!(!is_plain_name(bad), "{bad}");
        }
    }
}

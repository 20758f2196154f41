//! The hub resolver against a local fake Hub: downloads, cache layout, offline and error paths.

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
    let err =
        resolve_model_with("Org/Evil", &settings(&hub.url, tmp.path())).expect_err("evil index");
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
        "../no-such-switchboard-model",
        "Org/Name@../no-such-switchboard-model",
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
    let dns = io::Error::other("failed to lookup address information: Name or service not known");
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

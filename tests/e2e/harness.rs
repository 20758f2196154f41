//! Starts the real `switchboard serve` binary on a free loopback port, with a copy of the golden
//! tiny model (context widened so requests can run long) and its adapters.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// A small tokio runtime for a test's client side.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

pub fn golden() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden")
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("dir entry");
        if entry.file_type().expect("file type").is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
        }
    }
}

/// A model directory named `tiny` and an adapters directory holding `golden-a` and `golden-b`.
pub struct Files {
    /// Keeps the files alive.
    pub _tmp: TempDir,
    pub model: PathBuf,
    pub adapters: PathBuf,
}

impl Files {
    pub fn new(context: usize) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let model = dir.path().join("tiny");
        copy_dir(&golden().join("base"), &model);
        let config_path = model.join("config.json");
        let mut config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&config_path).expect("config"))
                .expect("config json");
        config["max_position_embeddings"] = context.into();
        std::fs::write(&config_path, config.to_string()).expect("write config");
        let adapters = dir.path().join("adapters");
        copy_dir(&golden().join("adapter_a"), &adapters.join("golden-a"));
        copy_dir(&golden().join("adapter_b"), &adapters.join("golden-b"));
        Self {
            _tmp: dir,
            model,
            adapters,
        }
    }

    /// Adds adapters named after the router's domains (copies of the golden ones).
    pub fn with_domain_adapters(self) -> Self {
        for (name, golden_name) in [
            ("biology", "adapter_a"),
            ("history", "adapter_b"),
            ("security", "adapter_a"),
            ("teaching", "adapter_b"),
        ] {
            copy_dir(&golden().join(golden_name), &self.adapters.join(name));
        }
        self
    }
}

/// The eval crate builds reqwest with rustls but without a crypto backend of its own, and Cargo
/// unifies that into the tests' reqwest and async-openai: their clients need the process-wide
/// provider the eval crate installs. Every test starts a server before it makes a client.
pub fn install_tls_provider() {
    switchboard_eval::client::install_tls_provider();
}

/// A running server; killed when dropped.
pub struct Server {
    pub child: Child,
    pub base: String,
    pub files: Files,
}

impl Server {
    /// Starts the server with a 4096-token model and `extra` flags.
    pub fn start(extra: &[&str]) -> Self {
        Self::start_with(Files::new(4096), extra)
    }

    pub fn start_with(files: Files, extra: &[&str]) -> Self {
        Self::start_env(files, extra, &[])
    }

    /// Starts the server with extra flags and environment variables.
    pub fn start_env(files: Files, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let mut args: Vec<std::ffi::OsString> = vec!["--model".into(), files.model.clone().into()];
        args.extend(["--adapters".into(), files.adapters.clone().into()]);
        // Each server indexes the bundled kb into its own directory.
        args.extend([
            "--kb-index".into(),
            files.adapters.with_file_name("kb-index").into(),
        ]);
        args.extend(extra.iter().map(Into::into));
        Self::spawn(files, &args, env)
    }

    /// Starts `switchboard serve --port 0` with exactly `args` (no model or adapters given:
    /// the bundled defaults unless `args` names them).
    pub fn spawn(files: Files, args: &[std::ffi::OsString], env: &[(&str, &str)]) -> Self {
        install_tls_provider();
        let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .arg("serve")
            .args(["--port", "0"])
            .args(args)
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start switchboard");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("switchboard listening on ") {
                    tx.send(url.to_string()).ok();
                }
            }
        });
        let base = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(url) => url,
            Err(_) => {
                child.kill().ok();
                panic!("the server did not start: {:?}", child.wait());
            }
        };
        Self { child, base, files }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn openai(
        &self,
        key: Option<&str>,
    ) -> async_openai::Client<async_openai::config::OpenAIConfig> {
        let mut config = async_openai::config::OpenAIConfig::new().with_api_base(self.url("/v1"));
        if let Some(key) = key {
            config = config.with_api_key(key);
        }
        async_openai::Client::with_config(config)
    }

    /// POSTs `body` to the chat route; the raw response, for streams and headers.
    pub async fn send_chat(
        &self,
        http: &reqwest::Client,
        body: &serde_json::Value,
    ) -> reqwest::Response {
        http.post(self.url("/v1/chat/completions"))
            .json(body)
            .send()
            .await
            .expect("send")
    }

    /// POSTs JSON to `path`: the status and the JSON body (null when it is not JSON).
    pub async fn post(
        &self,
        http: &reqwest::Client,
        path: &str,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let response = http
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("send");
        let status = response.status().as_u16();
        (
            status,
            response.json().await.unwrap_or(serde_json::Value::Null),
        )
    }

    /// A chat completion: the status and the JSON body.
    pub async fn chat(
        &self,
        http: &reqwest::Client,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        self.post(http, "/v1/chat/completions", body).await
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// Waits for the process to exit (at most `limit`).
    pub fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(start.elapsed() < limit, "the server did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// Reads `/metrics` and returns the value of the first sample line starting with `prefix`.
pub async fn metric(client: &reqwest::Client, server: &Server, prefix: &str) -> Option<f64> {
    let text = client
        .get(server.url("/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Parses an SSE body into its `data:` payloads.
pub fn sse_data(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter(|event| !event.trim().is_empty())
        .filter_map(|event| {
            let data: Vec<&str> = event
                .lines()
                .filter_map(|l| l.strip_prefix("data: ").or_else(|| l.strip_prefix("data:")))
                .collect();
            (!data.is_empty()).then(|| data.join("\n"))
        })
        .collect()
}

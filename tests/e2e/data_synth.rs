//! `switchboard data synth` as a user runs it, with our own `switchboard serve` (the bundled
//! SmolLM2-135M-Instruct) as the teacher on loopback. SmolLM2 ignores the JSON it is asked
//! for and writes `Question: ... Answer: ...` text: the records these tests see come from
//! `synth`'s repair of that text. A raw-HTTP responder stands in for a rate-limited teacher.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::harness::{Files, Server};

const MODEL: &str = "smollm2-135m-instruct";

const FACTS: [(&str, &str); 6] = [
    ("bio", "Photosynthesis is the process by which green plants use sunlight, water and carbon dioxide to make glucose and oxygen. It takes place in the chloroplasts."),
    ("sec", "A firewall filters network traffic according to rules. It can block incoming connections to ports that should not be reachable from the internet."),
    ("hist", "The French Revolution began in 1789 with the storming of the Bastille. It ended the absolute monarchy of Louis XVI."),
    ("chem", "Water is a molecule made of two hydrogen atoms and one oxygen atom. It boils at 100 degrees Celsius at sea level."),
    ("phys", "Newton's first law says that an object stays at rest or in uniform motion unless a force acts on it."),
    ("geo", "The Nile is a river in Africa. It flows north into the Mediterranean Sea and was central to ancient Egypt."),
];

fn teacher() -> Server {
    let files = Files::new(512);
    let args = vec![
        "--kb-index".into(),
        files.adapters.with_file_name("kb-index").into(),
    ];
    Server::spawn(files, &args, &[])
}

fn write_chunks(path: &Path, n: usize) {
    let lines: Vec<String> = FACTS[..n]
        .iter()
        .map(|(id, text)| {
            serde_json::json!({"id": id, "text": text, "source": format!("{id}.md"), "page": 1})
                .to_string()
        })
        .collect();
    std::fs::write(path, lines.join("\n") + "\n").expect("write chunks");
}

fn synth_command(dir: &Path, url: &str, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    command
        .args(["data", "synth", "--quiet", "--teacher-model", MODEL])
        .args(["--teacher-url", url, "--temperature", "0", "--seed", "1"])
        .arg("--chunks")
        .arg(dir.join("chunks.jsonl"))
        .arg("--out")
        .arg(dir.join("out.jsonl"))
        .args(extra)
        .env("RUST_LOG", "warn");
    command
}

fn synth(dir: &Path, url: &str, extra: &[&str]) -> Output {
    synth_command(dir, url, extra)
        .output()
        .expect("switchboard runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn assert_ok(output: &Output) -> String {
    let stdout = text(&output.stdout);
    assert!(
        output.status.success(),
        "stdout: {stdout}\nstderr: {}",
        text(&output.stderr)
    );
    stdout
}

/// Every line of `path`, each a whole JSON object (a torn line fails the test).
fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("torn line {l:?}: {e}")))
        .collect()
}

/// Asserts every chunk of the first `n` is done exactly once (records or a reject), every
/// record is readable by the trainer, no record repeats; returns (records, rejects).
fn assert_each_chunk_once(dir: &Path, n: usize) -> (Vec<Value>, Vec<Value>) {
    let records = lines(&dir.join("out.jsonl"));
    let rejects = lines(&dir.join("out.rejects.jsonl"));
    let mut per_chunk: HashMap<String, usize> = HashMap::new();
    for record in &records {
        switchboard_train::parse_record(&record.to_string())
            .unwrap_or_else(|e| panic!("the trainer refuses {record}: {e}"));
        let id = record["chunk_id"].as_str().expect("chunk_id").to_string();
        assert_eq!(record["source"], format!("{id}.md"));
        *per_chunk.entry(id).or_default() += 1;
    }
    for record in &records {
        let id = record["chunk_id"].as_str().unwrap_or_default();
        assert_eq!(Some(per_chunk[id] as u64), record["chunk_records"].as_u64());
    }
    let mut unique: Vec<String> = records.iter().map(Value::to_string).collect();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), records.len(), "a record is duplicated");
    for reject in &rejects {
        let id = reject["chunk_id"].as_str().expect("chunk_id");
        assert!(!per_chunk.contains_key(id), "{id} is done twice");
        per_chunk.insert(id.to_string(), 0);
    }
    let mut done: Vec<&str> = per_chunk.keys().map(String::as_str).collect();
    done.sort_unstable();
    let mut want: Vec<&str> = FACTS[..n].iter().map(|(id, _)| *id).collect();
    want.sort_unstable();
    assert_eq!(done, want);
    (records, rejects)
}

#[test]
fn smollm2_replies_are_repaired_into_records() {
    let server = teacher();
    let dir = tempfile::tempdir().expect("tempdir");
    write_chunks(&dir.path().join("chunks.jsonl"), 2);
    let run = synth(
        dir.path(),
        &server.base,
        &[
            "--max-tokens",
            "160",
            "--pairs-per-chunk",
            "1",
            "--concurrency",
            "2",
            "--domain",
            "science",
        ],
    );
    let stdout = assert_ok(&run);
    assert!(stdout.contains("of 2"), "{stdout}");
    assert!(stdout.contains("tokens: "), "{stdout}");
    let (records, _) = assert_each_chunk_once(dir.path(), 2);
    assert!(!records.is_empty(), "no records: {stdout}");
    for record in &records {
        assert_eq!(record["domain"], "science");
        assert_eq!(record["page"], 1);
        let question = record["qa_pair"]["question"].as_str().expect("question");
        assert!(!question.is_empty());
    }
    assert!(stdout.contains("repaired"), "{stdout}");

    // A rerun finds everything done and asks nothing.
    let again = assert_ok(&synth(dir.path(), &server.base, &["--max-tokens", "160"]));
    assert!(
        again.contains("0 done, 2 skipped as already done"),
        "{again}"
    );
}

#[test]
fn malformed_replies_end_in_the_rejects_file() {
    let server = teacher();
    let dir = tempfile::tempdir().expect("tempdir");
    write_chunks(&dir.path().join("chunks.jsonl"), 2);
    // Three tokens cannot hold a question and its answer.
    let run = synth(
        dir.path(),
        &server.base,
        &[
            "--max-tokens",
            "3",
            "--max-attempts",
            "2",
            "--format",
            "alpaca",
        ],
    );
    let stdout = assert_ok(&run);
    assert!(
        stdout.contains("0 done, 0 skipped as already done, 2 rejected"),
        "{stdout}"
    );
    assert!(stdout.contains("2 replies asked again"), "{stdout}");
    let (records, rejects) = assert_each_chunk_once(dir.path(), 2);
    assert!(records.is_empty());
    for reject in &rejects {
        assert_eq!(reject["attempts"], 2);
        assert!(!reject["raw"].as_str().expect("raw").is_empty(), "{reject}");
        assert!(
            reject["reason"]
                .as_str()
                .expect("reason")
                .contains("max_tokens"),
            "{reject}"
        );
    }
}

#[test]
fn a_killed_run_resumes_without_loss_or_duplicates() {
    let server = teacher();
    let dir = tempfile::tempdir().expect("tempdir");
    write_chunks(&dir.path().join("chunks.jsonl"), 6);
    let args = [
        "--max-tokens",
        "60",
        "--pairs-per-chunk",
        "2",
        "--concurrency",
        "1",
        "--max-attempts",
        "1",
    ];
    let mut child = synth_command(dir.path(), &server.base, &args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("switchboard runs");
    let written = |dir: &Path| {
        ["out.jsonl", "out.rejects.jsonl"]
            .iter()
            .map(|f| std::fs::read_to_string(dir.join(f)).map_or(0, |t| t.lines().count()))
            .sum::<usize>()
    };
    let started = Instant::now();
    while written(dir.path()) == 0 && started.elapsed() < Duration::from_secs(120) {
        assert!(
            child.try_wait().expect("poll").is_none(),
            "finished before the kill"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    let before = written(dir.path());
    assert!(
        before > 0 && before < 6 * 2,
        "{before} lines before the kill"
    );

    let stdout = assert_ok(&synth(dir.path(), &server.base, &args));
    assert!(stdout.contains("of 6"), "{stdout}");
    assert_each_chunk_once(dir.path(), 6);
}

/// A teacher that answers 429 (`Retry-After: 1`), then 503, then a chat completion.
fn rate_limited_teacher() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let completion = serde_json::json!({
        "id": "x", "object": "chat.completion", "created": 1, "model": MODEL,
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant",
            "content": "Question: What do plants make?\n\nAnswer: Glucose and oxygen."}}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 9, "total_tokens": 20}
    })
    .to_string();
    let responses = [
        (
            "429 Too Many Requests",
            "retry-after: 1\r\n",
            r#"{"error": {"message": "slow down"}}"#.to_string(),
        ),
        ("503 Service Unavailable", "", "overloaded".to_string()),
        ("200 OK", "", completion),
    ];
    std::thread::spawn(move || {
        for (i, stream) in listener.incoming().enumerate() {
            let Ok(mut stream) = stream else { return };
            read_request(&mut stream);
            let (status, headers, body) = &responses[i.min(responses.len() - 1)];
            let reply = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n{headers}\r\n{body}",
                body.len()
            );
            stream.write_all(reply.as_bytes()).ok();
        }
    });
    url
}

fn read_request(stream: &mut std::net::TcpStream) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while let Ok(n) = stream.read(&mut chunk) {
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        let head = String::from_utf8_lossy(&buf).into_owned();
        if let Some(end) = head.find("\r\n\r\n") {
            let length = head[..end]
                .lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                return;
            }
        }
    }
}

#[test]
fn rate_limits_and_server_errors_are_retried() {
    let url = rate_limited_teacher();
    let dir = tempfile::tempdir().expect("tempdir");
    write_chunks(&dir.path().join("chunks.jsonl"), 1);
    let started = Instant::now();
    let stdout = assert_ok(&synth(dir.path(), &url, &["--pairs-per-chunk", "1"]));
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "{:?}",
        started.elapsed()
    );
    assert!(stdout.contains("2 HTTP retries"), "{stdout}");
    assert!(stdout.contains("tokens: 11 input, 9 output"), "{stdout}");
    let (records, _) = assert_each_chunk_once(dir.path(), 1);
    assert_eq!(records[0]["qa_pair"]["answer"], "Glucose and oxygen.");
}

#[test]
fn bad_input_names_the_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Nothing listens here: input is checked before the teacher is asked anything.
    let url = "http://127.0.0.1:9";
    let run = synth(dir.path(), url, &[]);
    assert!(!run.status.success());
    let stderr = text(&run.stderr);
    assert!(stderr.contains("chunks.jsonl"), "{stderr}");

    std::fs::write(
        dir.path().join("chunks.jsonl"),
        "{\"id\": \"a\", \"text\": \"fine\"}\n{\"id\": \"b\", \"body\": \"no text\"}\n",
    )
    .expect("write");
    let run = synth(dir.path(), url, &[]);
    assert!(!run.status.success());
    let stderr = text(&run.stderr);
    assert!(
        stderr.contains("chunks.jsonl:2: the chunk has no `text`"),
        "{stderr}"
    );
    assert!(!dir.path().join("out.jsonl").exists());
}

//! `synth` through its public API: a scripted in-process teacher for the run's logic (records,
//! rejects, resume, interrupts), and a raw-HTTP loopback endpoint for the real client's
//! handling of 429, 5xx and errors.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use switchboard_data::synth::{
    synthesize, BackoffPolicy, Chunk, OpenAiTeacher, SynthConfig, SynthError, SynthFormat, Teacher,
    TeacherError, TeacherReply, TeacherRequest, Usage,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;

/// Answers with `reply(prompt, call number)`; can fire `notify` on a given call.
struct Scripted<F> {
    reply: F,
    calls: AtomicUsize,
    notify_on: Option<(usize, Arc<Notify>)>,
}

impl<F: Fn(&str, usize) -> String + Sync> Scripted<F> {
    fn new(reply: F) -> Self {
        Self {
            reply,
            calls: AtomicUsize::new(0),
            notify_on: None,
        }
    }
}

impl<F: Fn(&str, usize) -> String + Sync> Teacher for Scripted<F> {
    fn url(&self) -> &str {
        "scripted"
    }

    async fn complete(&self, request: &TeacherRequest) -> Result<TeacherReply, TeacherError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some((at, notify)) = &self.notify_on {
            if call == *at {
                notify.notify_one();
            }
        }
        Ok(TeacherReply {
            text: (self.reply)(&request.prompt, call),
            usage: Usage {
                prompt_tokens: 10,
                completion_tokens: 5,
            },
            truncated: false,
            http_retries: 0,
        })
    }
}

fn chunks(n: usize) -> Vec<Chunk> {
    (0..n)
        .map(|i| {
            let mut metadata = serde_json::Map::new();
            metadata.insert("source".into(), "bio.md".into());
            metadata.insert("page".into(), i.into());
            Chunk {
                id: format!("c{i}"),
                text: format!("Fact number {i}."),
                source: Some("bio.md".into()),
                metadata,
                line: i + 1,
            }
        })
        .collect()
}

fn config(dir: &Path) -> SynthConfig {
    SynthConfig {
        concurrency: 2,
        pairs_per_chunk: 2,
        domain: Some("biology".into()),
        ..SynthConfig::new(dir.join("out.jsonl"))
    }
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A labelled-text reply naming the chunk's fact, so records can be told apart.
fn labelled(prompt: &str) -> String {
    let fact = prompt
        .split("Fact number ")
        .nth(1)
        .and_then(|s| s.split('.').next())
        .unwrap_or("?");
    format!("Question: What is fact {fact}?\n\nAnswer: It is fact {fact}.\n\nQuestion: Why {fact}?\nAnswer: Because.")
}

#[tokio::test]
async fn records_carry_provenance_and_pass_the_trainers_reader() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let teacher = Scripted::new(|prompt: &str, _| labelled(prompt));
    let report = synthesize(&chunks(3), &config, &teacher, &(), std::future::pending())
        .await
        .unwrap();
    assert_eq!(report.chunks_done, 3);
    assert_eq!(report.records_written, 6);
    assert_eq!(report.repaired_records, 6);
    assert_eq!(report.usage.prompt_tokens, 30);
    assert_eq!(report.cost(1.0, 2.0), (30.0 + 2.0 * 15.0) / 1e6);
    let records = lines(&config.out);
    assert_eq!(records.len(), 6);
    for record in &records {
        switchboard_train::parse_record(&record.to_string()).unwrap();
        assert_eq!(record["domain"], "biology");
        assert_eq!(record["source"], "bio.md");
        assert_eq!(record["chunk_records"], 2);
        assert!(record["qa_pair"]["question"].is_string());
    }
    let page_of_c2 = records.iter().find(|r| r["chunk_id"] == "c2").unwrap();
    assert_eq!(page_of_c2["page"], 2);
    assert_eq!(page_of_c2["qa_pair"]["question"], "What is fact 2?");
}

#[tokio::test]
async fn unusable_replies_are_retried_then_rejected_with_the_raw_text() {
    let dir = tempfile::tempdir().unwrap();
    let config = SynthConfig {
        format: SynthFormat::Alpaca,
        ..config(dir.path())
    };
    // c0 answers in fenced JSON with a trailing comma; c1 never answers usably.
    let teacher = Scripted::new(|prompt: &str, _| {
        if prompt.contains("Fact number 1.") {
            "I am not sure.".to_string()
        } else {
            "```json\n[{\"instruction\": \"Say it\", \"input\": \"\", \"output\": \"Fact.\"},]\n```"
                .to_string()
        }
    });
    let report = synthesize(&chunks(2), &config, &teacher, &(), std::future::pending())
        .await
        .unwrap();
    assert_eq!((report.chunks_done, report.rejected), (1, 1));
    assert_eq!(report.retries, 2);
    let rejects = lines(&config.rejects_path());
    assert_eq!(rejects.len(), 1);
    assert_eq!(rejects[0]["chunk_id"], "c1");
    assert_eq!(rejects[0]["attempts"], 3);
    assert_eq!(rejects[0]["raw"], "I am not sure.");
    assert!(rejects[0]["reason"].as_str().unwrap().contains("no JSON"));

    // A rerun asks nothing: the record and the reject are both done.
    let again = Scripted::new(|_: &str, _| unreachable!());
    let report = synthesize(&chunks(2), &config, &again, &(), std::future::pending())
        .await
        .unwrap();
    assert_eq!((report.skipped, report.chunks_done), (2, 0));
}

#[tokio::test]
async fn an_interrupted_run_resumes_without_loss_or_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let config = SynthConfig {
        concurrency: 1,
        ..config(dir.path())
    };
    let stop = Arc::new(Notify::new());
    let mut teacher = Scripted::new(|prompt: &str, _| labelled(prompt));
    teacher.notify_on = Some((3, stop.clone()));
    let report = synthesize(&chunks(6), &config, &teacher, &(), stop.notified())
        .await
        .unwrap();
    assert!(report.interrupted);
    assert!(
        report.chunks_done >= 2 && report.chunks_done < 6,
        "{report:?}"
    );

    // A crash between two records of one chunk: its first record only, then a torn line.
    let mut text = std::fs::read_to_string(&config.out).unwrap();
    let half = serde_json::json!({"qa_pair": {"question": "What is fact 5?", "thought_process": [],
        "answer": "It is fact 5.", "related_concepts": []}, "chunk_id": "c5", "chunk_records": 2});
    text.push_str(&format!("{half}\n{{\"qa_pair\": {{\"quest"));
    std::fs::write(&config.out, text).unwrap();

    let teacher = Scripted::new(|prompt: &str, _| labelled(prompt));
    let report = synthesize(&chunks(6), &config, &teacher, &(), std::future::pending())
        .await
        .unwrap();
    assert_eq!(report.removed_partial_records, 1);
    assert_eq!(report.skipped + report.chunks_done, 6);
    let records = lines(&config.out);
    assert_eq!(records.len(), 12);
    let mut keys: Vec<String> = records
        .iter()
        .map(|r| format!("{}/{}", r["chunk_id"], r["qa_pair"]["question"]))
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 12, "duplicates: {keys:?}");
}

/// A loopback endpoint answering each request with the next of `responses` (raw HTTP), then
/// with the last one; returns its URL and the request count.
async fn responder(responses: Vec<String>) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let n = seen.fetch_add(1, Ordering::SeqCst);
            let response = responses[n.min(responses.len() - 1)].clone();
            tokio::spawn(async move {
                read_request(&mut socket).await;
                socket.write_all(response.as_bytes()).await.ok();
                socket.shutdown().await.ok();
            });
        }
    });
    (url, count)
}

/// Reads one request: headers, then `Content-Length` bytes of body.
async fn read_request(socket: &mut tokio::net::TcpStream) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let Ok(n) = socket.read(&mut chunk).await else {
            return;
        };
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                return;
            }
        }
    }
}

fn http(status: &str, headers: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n{headers}\r\n{body}",
        body.len()
    )
}

fn completion(content: &str) -> String {
    let body = serde_json::json!({
        "id": "x", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
    });
    http("200 OK", "", &body.to_string())
}

fn teacher(url: &str) -> OpenAiTeacher {
    let backoff = BackoffPolicy {
        max_retries: 3,
        initial: Duration::from_millis(20),
        max: Duration::from_secs(5),
    };
    OpenAiTeacher::new(url, "m", Some("k".into()), Duration::from_secs(10), backoff).unwrap()
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_waited_out() {
    let (url, count) = responder(vec![
        http(
            "429 Too Many Requests",
            "retry-after: 1\r\n",
            r#"{"error": {"message": "slow down"}}"#,
        ),
        http("503 Service Unavailable", "", "busy"),
        completion("Question: What is fact 0?\nAnswer: It is fact 0."),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = SynthConfig {
        concurrency: 1,
        ..config(dir.path())
    };
    let started = Instant::now();
    let report = synthesize(
        &chunks(1),
        &config,
        &teacher(&url),
        &(),
        std::future::pending(),
    )
    .await
    .unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(report.http_retries, 2);
    assert_eq!(count.load(Ordering::SeqCst), 3);
    assert_eq!(report.records_written, 1);
    assert_eq!(report.usage.prompt_tokens, 7);
}

#[tokio::test]
async fn a_bad_key_stops_the_run_and_a_refused_prompt_rejects_its_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let (url, _) = responder(vec![http(
        "401 Unauthorized",
        "",
        r#"{"error": {"message": "bad key"}}"#,
    )])
    .await;
    let config = config(dir.path());
    let err = synthesize(
        &chunks(2),
        &config,
        &teacher(&url),
        &(),
        std::future::pending(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, SynthError::Teacher { status: Some(401), reason, .. } if reason.contains("bad key")),
        "{err}"
    );
    assert!(lines(&config.rejects_path()).is_empty());

    let (url, _) = responder(vec![http(
        "400 Bad Request",
        "",
        r#"{"error": {"message": "prompt too long"}}"#,
    )])
    .await;
    let report = synthesize(
        &chunks(1),
        &config,
        &teacher(&url),
        &(),
        std::future::pending(),
    )
    .await
    .unwrap();
    assert_eq!(report.rejected, 1);
    let rejects = lines(&config.rejects_path());
    assert!(rejects[0]["reason"]
        .as_str()
        .unwrap()
        .contains("prompt too long"));

    // Nothing listening: connection errors are retried, then the run stops.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let other = SynthConfig::new(dir.path().join("other.jsonl"));
    let err = synthesize(
        &chunks(1),
        &other,
        &teacher(&closed),
        &(),
        std::future::pending(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("gave up after 3 retries"), "{err}");
}

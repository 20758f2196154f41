//! `switchboard eval judge` against the real server (golden model, two adapters) and a judge
//! endpoint run by the test. No judge model runs offline, so the judge here is a deterministic
//! OpenAI-compatible responder with a known rule: the tests check what the command does with
//! the verdicts (both orders asked, mapped back, averaged, ties on disagreement), not a model's
//! taste.

use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::harness::{runtime, Files, Server};

/// How the test's judge decides.
#[derive(Clone, Copy)]
enum JudgeRule {
    /// Prefers the longer answer, whatever its position (5 against 2); equal lengths tie at 3.
    Longer,
    /// Always prefers the answer shown first: pure position bias.
    First,
    /// Replies with prose and no JSON.
    Garbage,
}

/// The two answers out of the judge prompt the command sends.
fn answers(prompt: &str) -> (String, String) {
    let between = |start: &str, end: &str| {
        let from = prompt.find(start).map(|i| i + start.len()).unwrap_or(0);
        let to = prompt[from..]
            .find(end)
            .map(|i| from + i)
            .unwrap_or(prompt.len());
        prompt[from..to].trim().to_string()
    };
    (
        between("[Answer 1]\n", "\n[End of answer 1]"),
        between("[Answer 2]\n", "\n[End of answer 2]"),
    )
}

fn verdict(rule: JudgeRule, prompt: &str) -> String {
    let (first, second) = answers(prompt);
    let scores = |s: u8| json!({"helpfulness": s, "tone": s, "task_adherence": s});
    let (one, two, better) = match rule {
        JudgeRule::Garbage => return "I liked both answers very much.".to_string(),
        JudgeRule::First => (5, 2, "1"),
        JudgeRule::Longer => match first.chars().count().cmp(&second.chars().count()) {
            std::cmp::Ordering::Greater => (5, 2, "1"),
            std::cmp::Ordering::Less => (2, 5, "2"),
            std::cmp::Ordering::Equal => (3, 3, "tie"),
        },
    };
    format!(
        "Here is my verdict:\n{}",
        json!({"answer_1": scores(one), "answer_2": scores(two), "better": better})
    )
}

/// Serves `/v1/chat/completions` on a loopback port with `rule`; counts requests.
async fn judge_server(rule: JudgeRule) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let Some(body) = read_request(&mut socket).await else {
                    return;
                };
                seen.fetch_add(1, Ordering::SeqCst);
                let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let prompt = request["messages"][1]["content"].as_str().unwrap_or("");
                let reply = json!({
                    "id": "judge-1", "object": "chat.completion", "created": 0,
                    "model": request["model"],
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": verdict(rule, prompt)}}],
                })
                .to_string();
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{reply}",
                    reply.len()
                );
                socket.write_all(response.as_bytes()).await.ok();
                socket.shutdown().await.ok();
            });
        }
    });
    (url, count)
}

/// The body of one HTTP/1.1 request (Content-Length framing, as reqwest sends JSON).
async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
    let mut data = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = socket.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
        let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while data.len() < end + 4 + length {
            let n = socket.read(&mut buf).await.ok()?;
            if n == 0 {
                return None;
            }
            data.extend_from_slice(&buf[..n]);
        }
        return Some(data[end + 4..end + 4 + length].to_vec());
    }
}

fn judge_cmd(server: &Server, judge_url: &str, dir: &std::path::Path, extra: &[&str]) -> Output {
    let prompts = dir.join("prompts.jsonl");
    std::fs::write(
        &prompts,
        "{\"id\": \"p1\", \"prompt\": \"Explain osmosis to a child.\"}\n\
         {\"id\": \"p2\", \"question\": \"What is mitosis?\", \"reference\": \"cell division\"}\n\
         {\"id\": \"p3\", \"prompt\": \"Name a cipher.\"}\n",
    )
    .expect("prompts");
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args([
            "eval",
            "judge",
            "--url",
            &server.base,
            "--judge-url",
            judge_url,
        ])
        .args([
            "--judge-model",
            "test-judge",
            "--a",
            "golden-a",
            "--b",
            "golden-b",
        ])
        .args(["--max-tokens", "12", "--quiet"])
        .arg("--prompts")
        .arg(&prompts)
        .arg("--out")
        .arg(dir.join("judge.json"))
        .arg("--markdown")
        .arg(dir.join("judge.md"))
        .args(extra)
        .env("RUST_LOG", "warn")
        .env_remove("OPENAI_API_KEY")
        .env_remove("JUDGE_API_KEY")
        .output()
        .expect("switchboard runs")
}

#[test]
fn both_orders_are_judged_and_mapped_back_to_the_variants() {
    let server = Server::start_with(Files::new(256), &[]);
    let rt = runtime();
    let (judge_url, requests) = rt.block_on(judge_server(JudgeRule::Longer));
    let dir = tempfile::tempdir().expect("tempdir");
    let output = judge_cmd(&server, &judge_url, dir.path(), &[]);
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // Three prompts, each judged in both orders.
    assert_eq!(requests.load(Ordering::SeqCst), 6);
    let report: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("judge.json")).expect("report"))
            .expect("json");
    assert_eq!(report["a"]["variant"], "golden-a");
    assert_eq!(report["b"]["variant"], "golden-b");
    let items = report["items"].as_array().expect("items");
    assert_eq!(items.len(), 3);
    let (mut a_wins, mut b_wins, mut ties) = (0, 0, 0);
    for item in items {
        let (a, b) = (
            item["answer_a"].as_str().expect("a").trim().chars().count(),
            item["answer_b"].as_str().expect("b").trim().chars().count(),
        );
        // (The judge reads the answers trimmed.) A position-independent judge: both orders
        // agree, so the longer answer wins and
        // gets 5 on every criterion after averaging the two orders.
        let expected = match a.cmp(&b) {
            std::cmp::Ordering::Greater => {
                a_wins += 1;
                ("a_wins", 5.0, 2.0)
            }
            std::cmp::Ordering::Less => {
                b_wins += 1;
                ("b_wins", 2.0, 5.0)
            }
            std::cmp::Ordering::Equal => {
                ties += 1;
                ("tie", 3.0, 3.0)
            }
        };
        assert_eq!(item["outcome"], expected.0, "{item}");
        assert_eq!(item["scores_a"]["helpfulness"], expected.1, "{item}");
        assert_eq!(item["scores_b"]["tone"], expected.2, "{item}");
    }
    assert_eq!(report["a_wins"], a_wins);
    assert_eq!(report["b_wins"], b_wins);
    assert_eq!(report["ties"], ties);
    assert_eq!(report["inconsistent"], 0);
    assert_eq!(report["a"]["success_rate"], f64::from(a_wins) / 3.0);
    let markdown = std::fs::read_to_string(dir.path().join("judge.md")).expect("markdown");
    assert!(
        markdown.contains("# Judge: golden-a vs golden-b"),
        "{markdown}"
    );
    assert!(markdown.contains("## p2"), "{markdown}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("| golden-a | 3 |"), "{stdout}");
}

#[test]
fn a_position_biased_judge_yields_ties_and_a_silent_one_fails() {
    let server = Server::start_with(Files::new(256), &[]);
    let rt = runtime();
    let (biased_url, _) = rt.block_on(judge_server(JudgeRule::First));
    let dir = tempfile::tempdir().expect("tempdir");
    let output = judge_cmd(&server, &biased_url, dir.path(), &[]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("judge.json")).expect("report"))
            .expect("json");
    // Every pair: A preferred when shown first, B when shown first: the orders disagree.
    assert_eq!(report["ties"], 3);
    assert_eq!(report["inconsistent"], 3);
    assert_eq!(
        (report["a_wins"].clone(), report["b_wins"].clone()),
        (json!(0), json!(0))
    );
    // Averaging both orders cancels the bias: 3.5 each.
    assert_eq!(report["items"][0]["scores_a"]["helpfulness"], 3.5);
    assert_eq!(report["items"][0]["scores_b"]["helpfulness"], 3.5);

    let (garbage_url, requests) = rt.block_on(judge_server(JudgeRule::Garbage));
    let output = judge_cmd(
        &server,
        &garbage_url,
        dir.path(),
        &["--attempts", "2", "--limit", "1"],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no usable verdict"), "{stderr}");
    // One prompt, two orders, two attempts each.
    assert_eq!(requests.load(Ordering::SeqCst), 4);

    let output = judge_cmd(&server, "http://127.0.0.1:9", dir.path(), &["--limit", "1"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("127.0.0.1:9"), "{stderr}");
}

//! The runner against servers that are not switchboard: one without `/tokenize` (OpenAI-like:
//! text prompts, continuation by `text_offset`) and one that echoes no prompt log-probabilities
//! (llama.cpp-like: lettered questions instead). Each is a loopback responder that computes its
//! answers from the request, so the expected numbers follow from the prompts sent.

use std::sync::Arc;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{RunOptions, Runner};
use crate::client::{ClientOptions, OpenAiClient};
use crate::results::Scoring;
use crate::suite::{Item, Suite, Task};

type Handler = Arc<dyn Fn(&str, &Value) -> (u16, Value) + Send + Sync>;

/// Serves `handler` on a free loopback port; one request per connection.
async fn serve(handler: Handler) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let handler = handler.clone();
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                let mut chunk = [0u8; 8192];
                let (head_end, length) = loop {
                    let n = socket.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buffer.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buffer).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text[..end]
                            .lines()
                            .find_map(|l| {
                                let l = l.to_ascii_lowercase();
                                l.strip_prefix("content-length:")
                                    .and_then(|v| v.trim().parse::<usize>().ok())
                            })
                            .unwrap_or(0);
                        break (end + 4, length);
                    }
                };
                while buffer.len() < head_end + length {
                    let n = socket.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buffer.extend_from_slice(&chunk[..n]);
                }
                let head = String::from_utf8_lossy(&buffer[..head_end]).to_string();
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                let body: Value =
                    serde_json::from_slice(&buffer[head_end..]).unwrap_or(Value::Null);
                let (status, reply) = handler(&path, &body);
                let reply = reply.to_string();
                let response = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{reply}",
                    reply.len()
                );
                socket.write_all(response.as_bytes()).await.ok();
                socket.shutdown().await.ok();
            });
        }
    });
    format!("http://{address}")
}

fn suite() -> Suite {
    let item = |id: &str, choices: &[&str], answer: usize| Item {
        id: id.into(),
        domain: "biology".into(),
        question: "Which one?".into(),
        task: Task::MultipleChoice {
            choices: choices.iter().map(|c| c.to_string()).collect(),
            answer,
        },
    };
    Suite {
        name: "fake".into(),
        paths: Vec::new(),
        items: vec![
            item("1", &["ATP", "glucose"], 0),
            item("2", &["a long answer", "short"], 0),
        ],
    }
}

fn models() -> Value {
    json!({"object": "list", "data": [{"id": "m"}]})
}

async fn run(url: &str) -> crate::results::EvalResults {
    let client = OpenAiClient::new(url, ClientOptions::default()).expect("client");
    let options = RunOptions {
        quiet: true,
        ..RunOptions::default()
    };
    Runner::new(client, options)
        .run(&suite())
        .await
        .expect("run")
}

/// Echo where every character is a token of logprob -1 and the generated token is -0.5.
fn char_echo(prompt: &str) -> Value {
    let chars: Vec<String> = prompt.chars().map(String::from).collect();
    let mut token_logprobs: Vec<Value> = vec![Value::Null];
    token_logprobs.extend((1..chars.len()).map(|_| json!(-1.0)));
    token_logprobs.push(json!(-0.5));
    let mut tokens = chars.clone();
    tokens.push("!".into());
    json!({
        "text": format!("{prompt}!"),
        "logprobs": {
            "tokens": tokens,
            "token_logprobs": token_logprobs,
            "text_offset": (0..=chars.len()).collect::<Vec<_>>(),
        }
    })
}

#[tokio::test]
async fn without_tokenize_prompts_go_as_text_and_text_offsets_find_the_continuation() {
    let url = serve(Arc::new(|path, body| match path {
        "/v1/models" => (200, models()),
        "/v1/completions" if body["echo"] == true => {
            let prompts = body["prompt"].as_array().cloned().unwrap_or_default();
            let choices: Vec<Value> = prompts
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let mut c = char_echo(p.as_str().unwrap_or_default());
                    c["index"] = i.into();
                    c
                })
                .collect();
            (200, json!({"choices": choices}))
        }
        _ => (404, json!({"error": {"message": "Not Found"}})),
    }))
    .await;
    let results = run(&url).await;
    let first = &results.items[0];
    // " ATP" is 4 characters of -1 each; the generated token is left out.
    assert_eq!(first.loglikelihoods, [-4.0, -8.0]);
    assert_eq!(first.scoring, Scoring::Loglikelihood);
    assert!(first.correct);
    // acc_norm divides by the choice's length without the delimiter: -14/13 beats -6/5.
    let second = &results.items[1];
    assert_eq!(second.predicted, Some(1));
    assert_eq!(second.correct_norm, Some(true));
    assert!(
        results
            .run
            .notes
            .iter()
            .any(|n| n.contains("/tokenize is not available")),
        "{:?}",
        results.run.notes
    );
}

#[tokio::test]
async fn without_prompt_logprobs_items_are_asked_as_lettered_questions() {
    let url = serve(Arc::new(|path, body| match path {
        "/v1/models" => (200, models()),
        "/tokenize" => (200, json!({"tokens": [1, 2, 3]})),
        // llama.cpp: only the generated token's logprob, whatever the echo.
        "/v1/completions" => (
            200,
            json!({"choices": [{"index": 0, "text": "x",
                   "logprobs": {"tokens": ["x"], "token_logprobs": [-0.1], "text_offset": [0]}}]}),
        ),
        "/v1/chat/completions" => {
            let asked = body["messages"][0]["content"].as_str().unwrap_or_default();
            // Answers A when the first option is ATP, else B.
            let letter = if asked.contains("A. ATP") { "A" } else { "B" };
            (
                200,
                json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": format!("The answer is {letter}.")}}]}),
            )
        }
        _ => (404, json!({"error": {"message": "Not Found"}})),
    }))
    .await;
    let results = run(&url).await;
    let (first, second) = (&results.items[0], &results.items[1]);
    assert_eq!(first.scoring, Scoring::GenerativeChoice);
    assert_eq!((first.predicted, first.correct), (Some(0), true));
    assert_eq!((second.predicted, second.correct), (Some(1), false));
    assert!(first.loglikelihoods.is_empty());
    assert!(
        results
            .run
            .notes
            .iter()
            .any(|n| n.contains("lettered questions")),
        "{:?}",
        results.run.notes
    );
}

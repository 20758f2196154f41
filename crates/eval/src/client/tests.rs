//! The client against loopback responders: URL forms, retries, errors.
use super::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[test]
fn urls_of_every_usual_form_find_the_same_server() {
    for given in [
        "http://127.0.0.1:8080",
        "http://127.0.0.1:8080/",
        "http://127.0.0.1:8080/v1",
        "http://127.0.0.1:8080/v1/",
        "http://127.0.0.1:8080/v1/completions",
        "http://127.0.0.1:8080/v1/chat/completions",
        " http://127.0.0.1:8080/v1/completions/ ",
    ] {
        let url = ServerUrl::parse(given).expect(given);
        assert_eq!(url.root(), "http://127.0.0.1:8080", "{given}");
        assert_eq!(url.api("/models"), "http://127.0.0.1:8080/v1/models");
        assert_eq!(url.at_root("/tokenize"), "http://127.0.0.1:8080/tokenize");
    }
    let proxied = ServerUrl::parse("http://gw.example/llm/v1").expect("prefix");
    assert_eq!(
        proxied.api("/completions"),
        "http://gw.example/llm/v1/completions"
    );
    let secure = ServerUrl::parse("https://api.example/v1/").expect("https");
    assert_eq!(secure.api("/models"), "https://api.example/v1/models");
    for bad in [
        "127.0.0.1:8080",
        "ftp://x",
        "http://",
        "http:///v1",
        "http://h/v1?x=1",
        "https://",
    ] {
        let err = ServerUrl::parse(bad).expect_err(bad).to_string();
        assert!(err.contains("invalid server URL"), "{err}");
    }
}

/// A loopback HTTP responder that answers each connection with the next canned response.
async fn canned(responses: Vec<String>) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("addr");
    let served = Arc::new(AtomicUsize::new(0));
    let counter = served.clone();
    tokio::spawn(async move {
        for response in responses {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let mut buffer = vec![0u8; 65536];
            let mut read = 0;
            // Read the head and the announced body before answering.
            loop {
                let n = socket.read(&mut buffer[read..]).await.unwrap_or(0);
                read += n;
                let head = String::from_utf8_lossy(&buffer[..read]).to_string();
                if let Some(end) = head.find("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if read >= end + 4 + length {
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
            counter.fetch_add(1, Ordering::SeqCst);
            socket.write_all(response.as_bytes()).await.ok();
            socket.shutdown().await.ok();
        }
    });
    (format!("http://{address}"), served)
}

fn http(status: &str, headers: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n{headers}\r\n{body}",
        body.len()
    )
}

fn fast(retries: u32) -> ClientOptions {
    ClientOptions {
        max_retries: retries,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(1500),
        timeout: Duration::from_secs(10),
        ..ClientOptions::default()
    }
}

#[tokio::test]
async fn retries_429_and_503_honouring_retry_after() {
    let models = r#"{"object": "list", "data": [{"id": "base"}, {"id": "a", "parent": "base"}]}"#;
    let (url, served) = canned(vec![
        http(
            "429 Too Many Requests",
            "retry-after: 1\r\n",
            r#"{"error": {"message": "slow down"}}"#,
        ),
        http(
            "503 Service Unavailable",
            "",
            r#"{"error": {"message": "overloaded"}}"#,
        ),
        http("200 OK", "", models),
    ])
    .await;
    let client = OpenAiClient::new(&format!("{url}/v1"), fast(3)).expect("client");
    let started = std::time::Instant::now();
    let entries = client.models().await.expect("models after retries");
    assert!(
        started.elapsed() >= Duration::from_millis(1000),
        "Retry-After: 1 was honoured"
    );
    assert_eq!(served.load(Ordering::SeqCst), 3);
    assert_eq!(entries[1].parent.as_deref(), Some("base"));
}

#[tokio::test]
async fn client_errors_are_not_retried_and_name_url_and_message() {
    let (url, served) = canned(vec![
        http(
            "400 Bad Request",
            "",
            r#"{"error": {"message": "Unsupported param: echo"}}"#,
        ),
        http("200 OK", "", "{}"),
    ])
    .await;
    let client = OpenAiClient::new(&url, fast(3)).expect("client");
    let err = client
        .completion_echo("m", vec![PromptInput::Tokens(vec![1, 2])], 1)
        .await
        .expect_err("400");
    assert_eq!(served.load(Ordering::SeqCst), 1, "a 400 is final");
    let text = err.to_string();
    assert!(
        text.contains(&format!("{url}/v1/completions"))
            && text.contains("HTTP 400")
            && text.contains("Unsupported param: echo"),
        "{text}"
    );
}

#[tokio::test]
async fn missing_tokenize_route_is_none_and_unreachable_servers_say_so() {
    let (url, _) = canned(vec![http(
        "404 Not Found",
        "",
        r#"{"detail": "Not Found"}"#,
    )])
    .await;
    let client = OpenAiClient::new(&url, fast(0)).expect("client");
    assert_eq!(
        client.tokenize("x", false).await.expect("404 is None"),
        None
    );

    // Bind then drop a listener: the port is (almost certainly) closed now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let client = OpenAiClient::new(&format!("http://127.0.0.1:{port}"), fast(1)).expect("client");
    let err = client.models().await.expect_err("closed").to_string();
    assert!(
        err.contains(&format!("http://127.0.0.1:{port}/v1/models"))
            && err.contains("after 2 attempts"),
        "{err}"
    );
}

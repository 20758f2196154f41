//! `model: "auto"` and retrieval end to end: the router picks the domain adapter, the knowledge
//! base adds cited passages, and both show up in the response and in `/metrics`.

use serde_json::{json, Value};

use super::harness::{runtime, Files, Server};

fn ask(model: &str, question: &str) -> Value {
    json!({
        "model": model,
        "messages": [{"role": "user", "content": question}],
        "max_tokens": 4,
        "temperature": 0,
    })
}

#[test]
fn auto_routes_clear_questions_to_their_domain_adapter_and_retrieves_sources() {
    let server = Server::start_with(Files::new(4096).with_domain_adapters(), &[]);
    runtime().block_on(async {
        let http = reqwest::Client::new();
        let cases = [
            ("How does the mitochondrial electron transport chain make ATP in eukaryotic cells?", "biology"),
            ("What were the main causes of the French Revolution in 1789?", "history"),
            ("How do I prevent SQL injection attacks in my login form?", "security"),
            ("Can you write a lesson plan with learning objectives for teaching linear regression to my students?", "teaching"),
        ];
        for (question, domain) in cases {
            let (status, reply) = server.chat(&http, &ask("auto", question)).await;
            assert_eq!(status, 200, "{reply}");
            assert_eq!(reply["route"]["domain"], domain, "{question}: {reply}");
            assert_eq!(reply["model"], domain);
            assert_eq!(reply["route"]["adapter"], domain);
            assert_eq!(reply["route"]["generation"], 1);
            assert!(reply["route"]["confidence"].as_f64().expect("confidence") > 0.5);
            // --rag auto: routed requests get passages from their domain, cited by number.
            let sources = reply["sources"].as_array().expect("sources");
            assert!(!sources.is_empty(), "{reply}");
            assert_eq!(sources[0]["id"], 1);
            assert!(sources.iter().all(|s| s["path"].as_str().expect("path").starts_with(domain)));
        }

        // Everyday questions go to the base model, without retrieval.
        let (_, general) = server.chat(&http, &ask("auto", "What is a good recipe for banana bread?")).await;
        assert_eq!(general["model"], "tiny", "{general}");
        assert!(general["route"]["adapter"].is_null());
        assert_eq!(general["route"]["domain"], "general");
        assert_eq!(general["route"]["reason"], "general_domain");
        assert!(general.get("sources").is_none());

        // An explicit adapter bypasses the router; retrieval on request, within a domain.
        let mut explicit = ask("security", "Who broke the Enigma cipher at Bletchley Park?");
        explicit["rag"] = json!({"k": 2, "domain": "history"});
        let (_, with_rag) = server.chat(&http, &explicit.clone()).await;
        assert_eq!(with_rag["model"], "security");
        assert!(with_rag["route"]["domain"].is_null());
        let sources = with_rag["sources"].as_array().expect("sources");
        assert!(!sources.is_empty() && sources.len() <= 2);
        assert_eq!(sources[0]["path"], "history/enigma-and-bletchley-park.md");
        explicit["rag"] = json!(false);
        let (_, without) = server.chat(&http, &explicit.clone()).await;
        assert!(without.get("sources").is_none());
        assert!(
            with_rag["usage"]["prompt_tokens"].as_u64() > without["usage"]["prompt_tokens"].as_u64(),
            "passages are in the prompt"
        );
        explicit["rag"] = json!({"domain": "astrology"});
        let (status, bad) = server.chat(&http, &explicit).await;
        assert_eq!(status, 400);
        assert_eq!(bad["error"]["param"], "rag.domain");

        let metrics = http.get(server.url("/metrics")).send().await.expect("send").text().await.expect("text");
        for expected in [
            "switchboard_router_decisions_total{domain=\"history\",reason=\"routed\"}",
            "switchboard_router_decisions_total{domain=\"general\",reason=\"general_domain\"}",
            "switchboard_router_confidence_bucket{domain=\"biology\"",
            "switchboard_rag_retrieval_seconds_bucket",
            "switchboard_rag_hits_total",
        ] {
            assert!(metrics.contains(expected), "missing {expected}");
        }
    });
}

#[test]
fn auto_falls_back_to_the_base_when_the_adapter_is_missing() {
    // Only the golden adapters: the router's domain adapters are not loaded.
    let server = Server::start(&["--no-kb"]);
    runtime().block_on(async {
        let http = reqwest::Client::new();
        let (status, reply) = server
            .chat(
                &http,
                &ask(
                    "auto",
                    "What were the main causes of the French Revolution in 1789?",
                ),
            )
            .await;
        assert_eq!(status, 200, "{reply}");
        assert_eq!(reply["model"], "tiny");
        assert_eq!(reply["route"]["domain"], "history");
        assert_eq!(reply["route"]["reason"], "adapter_not_loaded");
        // Without a knowledge base, asking for retrieval is a clear 400.
        let mut body = ask("tiny", "anything");
        body["rag"] = true.into();
        let (status, refused) = server.chat(&http, &body).await;
        assert_eq!(status, 400);
        assert_eq!(refused["error"]["param"], "rag");
    });
}

#[test]
fn the_knowledge_base_is_re_indexed_while_serving() {
    let files = Files::new(4096);
    let kb = files.adapters.with_file_name("kb");
    super::harness::copy_dir(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("kb/history"),
        &kb.join("history"),
    );
    let kb_arg = kb.to_str().expect("utf-8 path").to_string();
    let server = Server::start_with(files, &["--kb", &kb_arg, "--kb-watch-secs", "1"]);
    runtime().block_on(async {
        let http = reqwest::Client::new();
        let mut question = ask("tiny", "How long did the Anglo-Zanzibar war of 1896 last?");
        question["rag"] = json!({"k": 1, "domain": "history"});
        let (_, before) = server.chat(&http, &question.clone()).await;
        let first = before["sources"][0]["path"].clone();
        assert_ne!(first, "history/anglo-zanzibar-war.md");

        std::fs::write(
            kb.join("history/anglo-zanzibar-war.md"),
            "---\ntitle: The Anglo-Zanzibar War\ndomain: history\ntags: [empire, africa]\n---\n\
             # The Anglo-Zanzibar War\n\nOn 27 August 1896 a British naval squadron bombarded the \
             palace of Sultan Khalid bin Barghash in Zanzibar. The Anglo-Zanzibar war lasted \
             between 38 and 45 minutes, the shortest war on record.\n",
        )
        .expect("write doc");
        let start = std::time::Instant::now();
        loop {
            let (status, reply) = server.chat(&http, &question.clone()).await;
            assert_eq!(status, 200, "serving continues while re-indexing: {reply}");
            if reply["sources"][0]["path"] == "history/anglo-zanzibar-war.md" {
                break;
            }
            assert!(
                start.elapsed() < std::time::Duration::from_secs(20),
                "never re-indexed: {reply}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    });
}

#[test]
fn passages_never_overflow_the_context() {
    // A 512-token context: passages must fit beside the question and max_tokens.
    let server = Server::start_with(Files::new(512), &[]);
    runtime().block_on(async {
        let http = reqwest::Client::new();
        for max_tokens in [64u64, 200, 350, 480] {
            let mut question = ask(
                "tiny",
                "Explain how vaccines train the adaptive immune system",
            );
            question["max_tokens"] = max_tokens.into();
            question["rag"] = json!({"k": 10, "domain": "biology"});
            let (status, reply) = server.chat(&http, &question).await;
            assert_eq!(status, 200, "max_tokens {max_tokens}: {reply}");
            let prompt = reply["usage"]["prompt_tokens"].as_u64().expect("usage");
            assert!(
                prompt + max_tokens <= 512,
                "max_tokens {max_tokens}: prompt {prompt}"
            );
            if max_tokens == 64 {
                assert!(!reply["sources"].as_array().expect("sources").is_empty());
            }
        }
    });
}

//! Retrieval quality and behaviour on the project's real knowledge base (`kb/`).
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::OnceLock;

use switchboard_rag::{evaluate, load_eval_set, load_kb, KnowledgeBase, SearchOptions, DOMAINS};

fn kb_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../kb")
}

/// Built once: every test here only reads it.
fn kb() -> &'static KnowledgeBase {
    static KB: OnceLock<KnowledgeBase> = OnceLock::new();
    KB.get_or_init(|| KnowledgeBase::in_ram(kb_dir()).unwrap())
}

#[test]
fn every_kb_file_is_a_valid_document() {
    let documents = load_kb(kb_dir()).unwrap();
    assert!(documents.len() >= 40, "only {} documents", documents.len());
    for domain in DOMAINS {
        assert!(
            documents.iter().any(|d| d.domain == *domain),
            "no {domain} document"
        );
    }
    assert!(
        kb().stats().skipped.is_empty(),
        "{:?}",
        kb().stats().skipped
    );
}

#[test]
fn recall_at_5_is_at_least_90_percent_on_every_eval_set() {
    let questions = load_eval_set(kb_dir().join("eval")).unwrap();
    assert!(!questions.is_empty());
    let report = evaluate(kb(), &questions, 10).unwrap();
    println!("{report}");
    for (domain, scores) in &report.per_domain {
        assert!(
            scores.unfiltered.recall_at_5 >= 0.9,
            "{domain}: recall@5 {:.3} over the whole kb\n{report}",
            scores.unfiltered.recall_at_5
        );
        assert!(
            scores.filtered.recall_at_5 >= scores.unfiltered.recall_at_5 - 1e-9,
            "{domain}: filtering by domain lost recall\n{report}"
        );
    }
}

#[test]
fn a_domain_filter_returns_only_that_domain() {
    // Words every domain uses, so an unfiltered search would mix them.
    for query in [
        "history of the attack on cells",
        "learning students protect system evolution",
    ] {
        let mixed = kb().search(query, &SearchOptions::top(20)).unwrap();
        assert!(!mixed.is_empty());
        for domain in DOMAINS {
            let hits = kb()
                .search(query, &SearchOptions::top(20).in_domain(*domain))
                .unwrap();
            assert!(!hits.is_empty(), "{domain}: nothing for {query:?}");
            assert!(hits
                .iter()
                .all(|p| p.domain == *domain && p.path.starts_with(domain)));
        }
    }
}

#[test]
fn passages_carry_ids_snippets_and_decreasing_scores() {
    let hits = kb()
        .search(
            "How does a stack canary stop buffer overflows?",
            &SearchOptions::top(5),
        )
        .unwrap();
    assert_eq!(hits.len(), 5);
    assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
    for hit in &hits {
        assert_eq!(hit.id, format!("{}#{}", hit.path, hit.chunk));
        assert!(!hit.title.is_empty() && !hit.text.is_empty() && !hit.snippet.is_empty());
        assert!(hit.snippet.chars().count() <= 241, "{}", hit.snippet);
        let json = serde_json::to_value(hit).unwrap();
        assert!(json["id"].is_string() && json["score"].is_number());
    }
}

#[test]
fn hostile_queries_never_fail() {
    let long = "attack ".repeat(1500) + &"x".repeat(1000);
    let queries = [
        "\"",
        "\"unbalanced quote",
        "AND OR",
        "AND",
        "NOT",
        "title:",
        "title:immune",
        "domain:biology",
        "*",
        "*:*",
        "?",
        "(",
        ")))",
        "[1 TO 5]",
        "{}",
        "^2",
        "~",
        "+-!&|\\/",
        "immune^10 cells~2",
        "日本語のテキスト",
        "Ελληνικά и кириллица",
        "emoji 🦠🧬🔐",
        "\u{0}\u{1}\u{200b}",
        "",
        &long,
    ];
    for query in queries {
        for options in [
            SearchOptions::top(5),
            SearchOptions::top(5).in_domain("security"),
        ] {
            let result = kb().search(query, &options);
            assert!(result.is_ok(), "{query:?}: {result:?}");
        }
    }
    assert!(!kb()
        .search(&long, &SearchOptions::top(5))
        .unwrap()
        .is_empty());
}

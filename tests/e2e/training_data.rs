//! The bundled training data (`data/train/`): evaluation data is never training data, every
//! domain has enough of it, and every record is one the trainer reads.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const DOMAINS: [&str; 4] = ["biology", "history", "security", "teaching"];
const MIN_PER_DOMAIN: usize = 400;

fn repo(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn overlap(args: &[&Path]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["data", "overlap", "--in"])
        .args(args)
        .arg("--evals")
        .arg(repo("evals"))
        .output()
        .expect("run switchboard data overlap")
}

#[test]
fn no_training_record_copies_or_paraphrases_an_evaluation_item() {
    let out = overlap(&[&repo("data/train")]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(": 0 overlapping"), "{stdout}");
}

#[test]
fn the_check_catches_a_planted_copy_of_an_evaluation_item() {
    // The check itself must be able to fail: one item of the biology suite, copied.
    let dir = tempfile::tempdir().expect("tempdir");
    let item: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(repo("evals/biology.jsonl"))
            .expect("biology suite")
            .lines()
            .next()
            .expect("an item"),
    )
    .expect("item json");
    let planted = dir.path().join("planted.jsonl");
    let record = serde_json::json!({
        "instruction": item["question"],
        "output": item["choices"][item["answer"].as_u64().expect("answer") as usize],
    });
    std::fs::write(&planted, format!("{record}\n")).expect("write");
    let out = overlap(&[&planted]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("overlaps bio-001"), "{stdout}");
}

#[test]
fn each_domain_has_enough_records_covering_most_of_its_kb() {
    for domain in DOMAINS {
        let dir = repo("data/train").join(domain);
        let mut records = 0;
        let mut sources = BTreeSet::new();
        for entry in std::fs::read_dir(&dir).expect("domain folder") {
            let path = entry.expect("entry").path();
            if path.extension().is_none_or(|e| e != "jsonl") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("read");
            for (i, line) in text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
            {
                switchboard_train::parse_record(line)
                    .unwrap_or_else(|e| panic!("{}:{}: {e}", path.display(), i + 1));
                let value: serde_json::Value = serde_json::from_str(line).expect("json");
                assert_eq!(value["domain"], domain, "{}:{}", path.display(), i + 1);
                if let Some(source) = value["source"].as_str() {
                    sources.insert(source.to_string());
                }
                records += 1;
            }
        }
        assert!(
            records >= MIN_PER_DOMAIN,
            "{domain}: {records} records, want {MIN_PER_DOMAIN}"
        );
        let kb_docs = std::fs::read_dir(repo("kb").join(domain))
            .expect("kb folder")
            .count();
        assert!(
            sources.len() * 10 >= kb_docs * 8,
            "{domain}: records cite {} of {kb_docs} kb documents",
            sources.len()
        );
    }
}

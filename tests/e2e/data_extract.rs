//! `switchboard data extract` as a user runs it, on the fixtures in
//! `tests/fixtures/data/extract/` (binary ones written by its `make_fixtures.py`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/data/extract")
}

fn extract(args: &[&str], input: &Path, out: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["data", "extract", "--in"])
        .arg(input)
        .arg("--out")
        .arg(out)
        .args(args)
        .output()
        .expect("switchboard runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn assert_no_panic(output: &Output) {
    let stderr = text(&output.stderr);
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
}

#[test]
fn extracts_every_kind_reports_failures_and_is_deterministic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("chunks.jsonl");
    let run = extract(&["--quiet"], &fixtures().join("input"), &out);
    let stdout = text(&run.stdout);
    assert!(
        run.status.success(),
        "stdout: {stdout}\nstderr: {}",
        text(&run.stderr)
    );
    assert_no_panic(&run);
    // Files by kind and encodings, each skipped file named with its reason.
    assert!(
        stdout.contains("markdown 1") && stdout.contains("pdf 1"),
        "{stdout}"
    );
    assert!(
        stdout.contains("notebook 1") && stdout.contains("text 3"),
        "{stdout}"
    );
    assert!(
        stdout.contains("windows-1252 1") && stdout.contains("UTF-16LE 1"),
        "{stdout}"
    );
    assert!(stdout.contains("skipped 4 files"), "{stdout}");
    for (file, reason) in [
        ("misc/truncated.pdf", "unreadable PDF"),
        ("misc/garbage.pdf", "PDF"),
        ("misc/locked.pdf", "encrypted PDF"),
        ("misc/table.csv", "unsupported file type"),
    ] {
        let line = stdout
            .lines()
            .find(|l| l.contains(file))
            .unwrap_or_else(|| panic!("{file} not reported: {stdout}"));
        assert!(line.contains(reason), "{line}");
    }
    assert!(stdout.contains("(1 duplicates dropped)"), "{stdout}");

    let jsonl = std::fs::read_to_string(&out).expect("output");
    let chunks: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert!(
        stdout.contains(&format!("wrote {} chunks", chunks.len())),
        "{stdout}"
    );
    let pages: Vec<(i64, &str)> = chunks
        .iter()
        .filter(|c| c["source"] == "course/cells.pdf")
        .map(|c| {
            (
                c["page"].as_i64().expect("page"),
                c["text"].as_str().expect("text"),
            )
        })
        .collect();
    assert_eq!(pages.len(), 3, "{pages:?}");
    assert!(
        pages[1].0 == 2 && pages[1].1.contains("Ribosomes build proteins"),
        "{pages:?}"
    );
    let notebook = chunks
        .iter()
        .filter(|c| c["source"] == "course/lesson.ipynb")
        .map(|c| c["text"].as_str().expect("text"))
        .collect::<String>();
    assert!(
        notebook.contains("print(c)") && !notebook.contains("NOTEBOOK-OUTPUT"),
        "{notebook}"
    );
    assert!(jsonl.contains("Le café de la gare"), "Latin-1 decoded");
    assert!(!jsonl.contains("Never read"), "hidden files are left out");

    let again = dir.path().join("again.jsonl");
    let rerun = extract(&["--quiet"], &fixtures().join("input"), &again);
    assert!(rerun.status.success());
    assert_eq!(
        std::fs::read(&out).expect("first"),
        std::fs::read(&again).expect("second"),
        "same input, byte-identical output"
    );
}

#[test]
fn rules_file_and_chunk_size_flags_apply() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("chunks.jsonl");
    let rules = fixtures().join("rules.toml");
    let run = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args([
            "data",
            "extract",
            "--quiet",
            "--chunk-chars",
            "60",
            "--overlap",
            "10",
        ])
        .arg("--in")
        .arg(fixtures().join("input"))
        .arg("--out")
        .arg(&out)
        .arg("--rules")
        .arg(&rules)
        .output()
        .expect("switchboard runs");
    assert!(run.status.success(), "stderr: {}", text(&run.stderr));
    let jsonl = std::fs::read_to_string(&out).expect("output");
    assert!(
        !jsonl.contains("CONFIDENTIAL"),
        "custom rule dropped the line"
    );
    assert!(
        jsonl.contains("adenosine triphosphate"),
        "custom rule replaced ATP"
    );
    for line in jsonl.lines() {
        let chunk: Value = serde_json::from_str(line).expect("JSON");
        let len = chunk["text"].as_str().expect("text").chars().count();
        assert!(len <= 60, "{chunk}");
    }
}

#[test]
fn bad_input_fails_with_a_message_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("chunks.jsonl");

    let missing = dir.path().join("no-such-folder");
    let run = extract(&[], &missing, &out);
    let stderr = text(&run.stderr);
    assert!(!run.status.success());
    assert!(stderr.contains("no-such-folder"), "{stderr}");
    assert_no_panic(&run);
    assert!(!out.exists());

    let rules = dir.path().join("broken-rules.toml");
    std::fs::write(&rules, "[[rule]]\npattern = '(unclosed'\n").expect("write rules");
    let run = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["data", "extract", "--in"])
        .arg(fixtures().join("input"))
        .arg("--out")
        .arg(&out)
        .arg("--rules")
        .arg(&rules)
        .output()
        .expect("switchboard runs");
    let stderr = text(&run.stderr);
    assert!(!run.status.success());
    assert!(
        stderr.contains("broken-rules.toml") && stderr.contains("rule 1"),
        "{stderr}"
    );
    assert_no_panic(&run);

    let run = extract(
        &["--chunk-chars", "10", "--overlap", "10"],
        &fixtures().join("input"),
        &out,
    );
    let stderr = text(&run.stderr);
    assert!(!run.status.success());
    assert!(stderr.contains("overlap"), "{stderr}");
    assert_no_panic(&run);
}

//! `switchboard kb` and `switchboard router` as a user runs them.

use std::process::{Command, Output};

fn switchboard(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("binary runs")
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn kb_index_search_and_eval() {
    let tmp = tempfile::tempdir().expect("tmp");
    let index = tmp.path().join("index");
    let index = index.to_str().expect("utf-8");
    let built = stdout(&switchboard(&["kb", "index", "--index", index]));
    assert!(built.contains("rebuilt"), "{built}");
    let again = stdout(&switchboard(&["kb", "index", "--index", index]));
    assert!(again.contains("up to date"), "{again}");

    let found = stdout(&switchboard(&[
        "kb",
        "search",
        "how did Bletchley Park break Enigma",
        "--domain",
        "history",
        "-k",
        "2",
        "--index",
        index,
    ]));
    assert!(
        found.contains("history/enigma-and-bletchley-park.md"),
        "{found}"
    );
    assert!(
        !found.contains(" 3. "),
        "k = 2 shows two passages:\n{found}"
    );

    let report = stdout(&switchboard(&["kb", "eval"]));
    assert!(report.contains("R@5") && report.contains("all"), "{report}");

    let bad = switchboard(&[
        "kb",
        "search",
        "x",
        "--kb",
        "/nonexistent/kb",
        "--index",
        index,
    ]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("/nonexistent/kb"));
}

#[test]
fn router_eval_classify_and_train() {
    let report = stdout(&switchboard(&["router", "eval", "--data", "data/router"]));
    assert!(
        report.contains("== classifier") && report.contains("== keyword baseline"),
        "{report}"
    );
    assert!(report.contains("confusion"), "{report}");

    let decision = stdout(&switchboard(&[
        "router",
        "classify",
        "Write a rubric for grading my students' lab reports",
    ]));
    let decision: serde_json::Value = serde_json::from_str(&decision).expect("json");
    assert_eq!(decision["domain"], "teaching");

    let tmp = tempfile::tempdir().expect("tmp");
    let model = tmp.path().join("router.bin");
    let model = model.to_str().expect("utf-8");
    let trained = stdout(&switchboard(&[
        "router",
        "train",
        "--data",
        "data/router/history.train.jsonl,data/router/general.train.jsonl",
        "--out",
        model,
        "--epochs",
        "3",
    ]));
    assert!(trained.contains("wrote"), "{trained}");
    let decision = stdout(&switchboard(&[
        "router",
        "classify",
        "Why did Rome fall?",
        "--model",
        model,
    ]));
    assert!(decision.contains("\"history\""), "{decision}");

    let bad = tempfile::NamedTempFile::new().expect("tmp");
    std::fs::write(bad.path(), "{\"text\": \"x\", \"label\": \"astrology\"}\n").expect("write");
    let refused = switchboard(&[
        "router",
        "eval",
        "--data",
        bad.path().to_str().expect("utf-8"),
    ]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains(":1") || stderr.contains("line 1"),
        "{stderr}"
    );
}

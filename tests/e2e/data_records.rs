//! `switchboard data filter | split | convert | stats` as a user runs them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};
use switchboard_engine::TextTokenizer;
use switchboard_train::{parse_record, Renderer};

use super::harness::golden;

fn data(args: &[&str], paths: &[(&str, &Path)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    command.arg("data").args(args);
    for (flag, path) in paths {
        command.arg(flag).arg(path);
    }
    let output = command.output().expect("switchboard runs");
    let stderr = text(&output.stderr);
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
    output
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "stdout: {}\nstderr: {}",
        text(&output.stdout),
        text(&output.stderr)
    );
    text(&output.stdout)
}

fn write(dir: &Path, name: &str, lines: &[Value]) -> PathBuf {
    let path = dir.join(name);
    let body: Vec<String> = lines.iter().map(Value::to_string).collect();
    std::fs::write(&path, body.join("\n") + "\n").expect("write records");
    path
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .expect("read output")
        .lines()
        .map(str::to_string)
        .collect()
}

/// Rows shaped like Dolly-15k's (`response`, not a trainer format: filtered by field).
fn dolly(dir: &Path) -> PathBuf {
    let rows = [
        (
            "Write a formal letter declining the invitation",
            "Dear Ms. Smith, I regret...",
        ),
        (
            "Tell me a joke about cats",
            "Why did the cat sit on the computer?",
        ),
        (
            "Draft a FORMAL email to the landlord",
            "Dear Sir or Madam, ...",
        ),
        ("What is informal speech?", "Casual language among friends."),
        ("Summarise the meeting", "We agreed on the budget."),
    ];
    let records: Vec<Value> = rows
        .iter()
        .enumerate()
        .map(|(i, (instruction, response))| {
            json!({"instruction": instruction, "context": "", "response": response,
                   "category": "open_qa", "id": i})
        })
        .collect();
    write(dir, "dolly.jsonl", &records)
}

#[test]
fn filter_keeps_matching_records_and_counts_each_rule() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dolly(dir.path());
    let out = dir.path().join("formal.jsonl");
    let rejects = dir.path().join("rejects.jsonl");
    let stdout = ok(&data(
        &[
            "filter",
            "--keyword",
            "formal,dear",
            "--whole-word",
            "--field",
            "instruction",
            "--field",
            "response",
            "--max-len",
            "12",
            "--len-unit",
            "words",
        ],
        &[("--in", &input), ("--out", &out), ("--rejects", &rejects)],
    ));
    // "informal" is not the whole word "formal"; both letters are under 12 words.
    let kept = lines(&out);
    assert_eq!(kept.len(), 2, "{stdout}");
    assert!(kept[0].contains("\"id\":0") && kept[1].contains("\"id\":2"));
    assert_eq!(lines(&rejects).len(), 3);
    assert!(stdout.contains("kept 2 of 5 (dropped 3)"), "{stdout}");
    let summary: Value = serde_json::from_slice(
        &data(
            &[
                "filter",
                "--keyword",
                "cat",
                "--regex",
                "(?i)joke",
                "--field",
                "instruction",
                "--json",
            ],
            &[("--in", &input), ("--out", &out)],
        )
        .stdout,
    )
    .expect("json summary");
    assert_eq!(summary["total"], 5);
    assert_eq!(summary["kept"], 1);
    assert_eq!(summary["rules"][0]["dropped"], 4);
    assert_eq!(summary["rules"][1]["dropped"], 4);
}

fn split_input(dir: &Path) -> PathBuf {
    let mut records = Vec::new();
    for i in 0..30 {
        let domain = if i % 3 == 0 { "math" } else { "history" };
        records.push(json!({
            "id": i,
            "messages": [
                {"role": "user", "content": format!("Question {i}: describe event number {} in detail for a short report that a \
                     history class of older pupils can read aloud in about five minutes at the start of the next lesson on Monday morning", i * 37)},
                {"role": "assistant", "content": format!("Reply {i}.")},
            ],
            "domain": domain,
        }));
    }
    // A near-duplicate of record 4: other casing, punctuation and one word changed.
    records.push(json!({
        "id": "twin",
        "messages": [
            {"role": "user", "content": "QUESTION 4 -- describe EVENT number 148 in detail, for a brief report that a HISTORY \
                 class of older pupils can read aloud in about five minutes at the start of the next lesson on Monday morning!"},
            {"role": "assistant", "content": "reply 4"},
        ],
        "domain": "history",
    }));
    write(dir, "all.jsonl", &records)
}

fn split(input: &Path, out: &Path, seed: &str) -> (String, Vec<Vec<u8>>) {
    let stdout = ok(&data(
        &[
            "split",
            "--ratios",
            "0.6,0.2,0.2",
            "--seed",
            seed,
            "--stratify-by",
            "domain",
        ],
        &[("--in", input), ("--out-dir", out)],
    ));
    let files = ["train", "validation", "test"]
        .iter()
        .map(|s| std::fs::read(out.join(format!("{s}.jsonl"))).expect("split file"))
        .collect();
    (stdout, files)
}

fn split_of(files: &[Vec<u8>], id: &str) -> usize {
    files
        .iter()
        .position(|f| String::from_utf8_lossy(f).contains(&format!("\"id\":{id},")))
        .expect("record in some split")
}

#[test]
fn split_is_reproducible_and_keeps_near_duplicates_together() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = split_input(dir.path());
    let (stdout, a) = split(&input, &dir.path().join("a"), "7");
    let (_, b) = split(&input, &dir.path().join("b"), "7");
    assert_eq!(a, b, "same seed, same bytes");
    assert!(
        stdout.contains("31 records in 30 groups (1 duplicate groups holding 2 records)"),
        "{stdout}"
    );
    assert!(stdout.contains("per stratum"), "{stdout}");
    let total: usize = a
        .iter()
        .map(|f| f.iter().filter(|&&c| c == b'\n').count())
        .sum();
    assert_eq!(total, 31);
    assert_eq!(split_of(&a, "4"), split_of(&a, "\"twin\""));
    let mut differs = false;
    for seed in ["8", "9", "10"] {
        let (_, other) = split(&input, &dir.path().join(format!("s{seed}")), seed);
        assert_eq!(split_of(&other, "4"), split_of(&other, "\"twin\""));
        differs |= other != a;
    }
    assert!(differs, "other seeds give other assignments");
}

/// A record every format can hold, with metadata.
fn universal() -> Value {
    json!({
        "id": "u1",
        "messages": [
            {"role": "user", "content": "What is a prime number?"},
            {"role": "assistant", "content": "Let's reason step by step.\n1. Look at its divisors.\n2. Count them.\n\nAnswer: A number with exactly two divisors.\n\nRelated concepts: divisibility, factorisation"},
        ],
        "source": "primes.md",
    })
}

fn convert(input: &Path, out: &Path, to: &str) -> String {
    ok(&data(
        &["convert", "--to", to],
        &[("--in", input), ("--out", out)],
    ))
}

fn example(path: &Path) -> switchboard_train::Example {
    let line = lines(path).into_iter().next().expect("one record");
    parse_record(&line).expect("trainer reads it").1
}

#[test]
fn convert_round_trips_every_format_pair_through_the_cli() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = write(dir.path(), "base.jsonl", &[universal()]);
    let formats = [
        "alpaca", "sharegpt", "openai", "teaching", "dialogue", "text",
    ];
    for a in formats {
        let in_a = dir.path().join(format!("{a}.jsonl"));
        let stdout = convert(&base, &in_a, a);
        assert!(stdout.contains("converted 1"), "{a}: {stdout}");
        let expected = example(&in_a);
        for b in formats {
            let in_b = dir.path().join(format!("{a}-{b}.jsonl"));
            convert(&in_a, &in_b, b);
            let back = dir.path().join(format!("{a}-{b}-{a}.jsonl"));
            convert(&in_b, &back, a);
            assert_eq!(example(&back), expected, "{a} -> {b} -> {a}");
            let record: Value = serde_json::from_str(&lines(&back)[0]).expect("json");
            assert_eq!(record["id"], "u1", "{a} -> {b} -> {a}");
            assert_eq!(record["source"], "primes.md", "{a} -> {b} -> {a}");
        }
    }
}

#[test]
fn convert_reports_what_the_target_cannot_hold() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = write(
        dir.path(),
        "in.jsonl",
        &[
            json!({"instruction": "Hi", "output": "Hello"}),
            json!({"messages": [
                {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                {"role": "user", "content": "c"}, {"role": "assistant", "content": "d"}]}),
        ],
    );
    let out = dir.path().join("out.jsonl");
    let stdout = convert(&input, &out, "alpaca");
    assert!(
        stdout.contains("in.jsonl:2: alpaca holds one instruction"),
        "{stdout}"
    );
    assert!(
        stdout.contains("converted 1 to alpaca, skipped 1"),
        "{stdout}"
    );
    let strict = data(
        &["convert", "--to", "alpaca", "--strict"],
        &[
            ("--in", &input),
            ("--out", &dir.path().join("strict.jsonl")),
        ],
    );
    assert!(!strict.status.success());
    assert!(text(&strict.stderr).contains("in.jsonl:2: cannot convert to alpaca"));
    let unknown = data(
        &["convert", "--to", "csv"],
        &[("--in", &input), ("--out", &out)],
    );
    assert!(!unknown.status.success());
    assert!(text(&unknown.stderr).contains("unknown format \"csv\""));
}

#[test]
fn stats_count_formats_duplicates_and_tokens_under_the_model() {
    let dir = tempfile::tempdir().expect("tempdir");
    let records = [
        json!({"instruction": "Add", "input": "2 and 3", "output": "5", "domain": "math"}),
        json!({"instruction": "Add", "input": "2 and 3", "output": "5", "domain": "math"}),
        json!({"conversations": [{"from": "human", "value": "Hello"}, {"from": "gpt", "value": "Hi there, friend."}], "source": "chat"}),
        json!({"text": "Plain words for pre-training."}),
    ];
    let input = write(dir.path(), "s.jsonl", &records);
    let model = golden().join("base");
    let output = data(
        &["stats", "--json", "--max-seq-len", "25"],
        &[("--in", &input), ("--model", &model)],
    );
    let stats: Value = serde_json::from_str(&ok(&output)).expect("json stats");
    assert_eq!(stats["records"], 4);
    assert_eq!(stats["by_format"]["alpaca"], 2);
    assert_eq!(stats["by_format"]["sharegpt"], 1);
    assert_eq!(stats["by_domain"]["math"], 2);
    assert_eq!(stats["exact_duplicate_groups"], 1);
    assert_eq!(stats["near_duplicate_records"], 2);
    let renderer = Renderer::new(
        TextTokenizer::from_dir(&model).expect("tokenizer"),
        usize::MAX,
    );
    let mut lengths: Vec<u64> = records
        .iter()
        .map(|r| {
            let (_, example) = parse_record(&r.to_string()).expect("record");
            renderer.render(&example).expect("renders").tokens.len() as u64
        })
        .collect();
    lengths.sort_unstable();
    let tokens = &stats["tokens"];
    assert_eq!(tokens["min"], lengths[0]);
    assert_eq!(tokens["p50"], lengths[1]);
    assert_eq!(tokens["max"], lengths[3]);
    assert_eq!(tokens["total"], lengths.iter().sum::<u64>());
    assert_eq!(
        tokens["over_max_seq_len"],
        lengths.iter().filter(|&&n| n > 25).count()
    );

    // The bundled model is the default.
    let human = ok(&data(&["stats"], &[("--in", &input)]));
    assert!(human.contains("tokens (4 records)"), "{human}");
    assert!(human.contains("exact duplicates: 1 groups"), "{human}");
}

#[test]
fn bad_input_fails_naming_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad_json = dir.path().join("bad.jsonl");
    std::fs::write(&bad_json, "{\"text\": \"fine\"}\n{\"text\": \n").expect("write");
    let unknown = dir.path().join("unknown.jsonl");
    std::fs::write(&unknown, "{\"text\": \"fine\"}\n{\"prompt\": \"x\"}\n").expect("write");
    let missing = dir.path().join("missing.jsonl");
    let out = dir.path().join("out.jsonl");
    let out_dir = dir.path().join("splits");
    for (input, needle) in [
        (&bad_json, "bad.jsonl:2: invalid JSON"),
        (&unknown, "unknown.jsonl:2: unknown record format"),
        (&missing, "missing.jsonl"),
    ] {
        for run in [
            data(&["filter"], &[("--in", input), ("--out", &out)]),
            data(&["split"], &[("--in", input), ("--out-dir", &out_dir)]),
            data(
                &["convert", "--to", "openai"],
                &[("--in", input), ("--out", &out)],
            ),
            data(&["stats", "--no-tokens"], &[("--in", input)]),
        ] {
            assert!(!run.status.success(), "{needle}");
            let all = text(&run.stderr) + &text(&run.stdout);
            assert!(all.contains(needle), "{needle}: {all}");
        }
    }
    assert!(!out.exists(), "nothing written from bad input");
}

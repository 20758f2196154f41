//! Filter, split, convert and stats over record files, through the public API.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};
use switchboard_data::records::{
    self, convert_file, convert_record, read_records, split, FieldPath, NearDupConfig, SplitConfig,
    StatsOptions, ALL_FORMATS,
};
use switchboard_engine::TextTokenizer;
use switchboard_train::{parse_record, Example, RecordFormat, Renderer};

fn write(dir: &Path, name: &str, lines: &[Value]) -> PathBuf {
    let path = dir.join(name);
    let text: Vec<String> = lines.iter().map(Value::to_string).collect();
    std::fs::write(&path, text.join("\n") + "\n").unwrap();
    path
}

fn object(v: &Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn convert(v: &Value, target: RecordFormat) -> Result<Value, String> {
    let (format, example) = parse_record(&v.to_string()).unwrap();
    convert_record(&object(v), format, &example, target).map(Value::Object)
}

/// A record every format can hold: one question, an answer in the teaching layout, no system.
fn universal() -> Value {
    json!({
        "id": "r1",
        "messages": [
            {"role": "user", "content": "Why is the sky blue?"},
            {"role": "assistant", "content": "Let's reason step by step.\n1. Sunlight holds all colours.\n2. Air scatters short wavelengths most.\n\nAnswer: Rayleigh scattering.\n\nRelated concepts: scattering, wavelength"},
        ],
        "domain": "physics",
        "chunk_id": 7,
    })
}

#[test]
fn every_format_pair_round_trips_what_the_trainer_sees_and_the_metadata() {
    let base = universal();
    for a in ALL_FORMATS {
        let in_a = convert(&base, a).unwrap_or_else(|e| panic!("into {a:?}: {e}"));
        let (format_a, example_a) = parse_record(&in_a.to_string()).unwrap();
        assert_eq!(format_a, a);
        for b in ALL_FORMATS {
            let in_b = convert(&in_a, b).unwrap_or_else(|e| panic!("{a:?} -> {b:?}: {e}"));
            let (format_b, example_b) = parse_record(&in_b.to_string()).unwrap();
            assert_eq!(format_b, b);
            // Within chat formats (or text to text) the trainer sees the same thing at once.
            if matches!(example_a, Example::Chat(_)) == matches!(example_b, Example::Chat(_)) {
                assert_eq!(example_b, example_a, "{a:?} -> {b:?}");
            }
            let back = convert(&in_b, a).unwrap_or_else(|e| panic!("{a:?}->{b:?}->{a:?}: {e}"));
            let (_, example_back) = parse_record(&back.to_string()).unwrap();
            assert_eq!(example_back, example_a, "{a:?} -> {b:?} -> {a:?}");
            for key in ["id", "domain", "chunk_id"] {
                assert_eq!(back[key], base[key], "{a:?} -> {b:?} -> {a:?}: {key}");
                assert_eq!(in_b[key], base[key], "{a:?} -> {b:?}: {key}");
            }
        }
    }
}

#[test]
fn records_a_target_cannot_hold_are_reported_with_their_lines() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(
        dir.path(),
        "in.jsonl",
        &[
            json!({"instruction": "Say hi", "output": "Hi", "id": 1}),
            json!({"conversations": [
                {"from": "human", "value": "a"}, {"from": "gpt", "value": "b"},
                {"from": "human", "value": "c"}, {"from": "gpt", "value": "d"}]}),
            json!({"text": "free prose"}),
            json!({"instruction": "q", "output": "Answer: x", "system": "be formal"}),
        ],
    );
    let out = dir.path().join("alpaca.jsonl");
    let report = convert_file(&input, &out, RecordFormat::Alpaca, false).unwrap();
    assert_eq!(report.converted, 2);
    let lines: Vec<usize> = report.skipped.iter().map(|s| s.line).collect();
    assert_eq!(lines, vec![2, 3]);
    assert_eq!(read_records(&out).unwrap().len(), 2);

    let report = convert_file(&input, &out, RecordFormat::TeachingQa, false).unwrap();
    let lines: Vec<usize> = report.skipped.iter().map(|s| s.line).collect();
    // Line 1: a plain reply; 2: multi-turn; 3: prose; 4: a system message.
    assert_eq!(lines, vec![1, 2, 3, 4]);
    assert!(
        report.skipped[3].reason.contains("system"),
        "{:?}",
        report.skipped[3]
    );

    let strict = dir.path().join("strict.jsonl");
    let err = convert_file(&input, &strict, RecordFormat::Alpaca, true).unwrap_err();
    assert!(
        err.to_string()
            .contains("in.jsonl:2: cannot convert to alpaca"),
        "{err}"
    );
    assert!(!strict.exists());
}

fn qa(i: usize, question: &str, domain: &str) -> Value {
    json!({
        "id": i,
        "instruction": question,
        "output": format!("Answer number {i}."),
        "domain": domain,
    })
}

/// Forty distinct questions, and near-duplicates of some of them planted at the end.
fn split_input(dir: &Path) -> (PathBuf, Vec<(usize, usize)>) {
    let subjects = [
        "volcanoes",
        "tides",
        "eclipses",
        "glaciers",
        "monsoons",
        "earthquakes",
        "auroras",
        "tsunamis",
        "hurricanes",
        "deserts",
    ];
    let angles = ["form", "end", "affect farming", "get measured"];
    let mut lines = Vec::new();
    for (s, subject) in subjects.iter().enumerate() {
        for (a, angle) in angles.iter().enumerate() {
            let i = lines.len();
            let domain = if s % 2 == 0 { "geology" } else { "weather" };
            lines.push(qa(
                i,
                &format!(
                    "Explain in plain words how {subject} {angle}, giving one example from \
                     history and one from today, for a class of twelve year old pupils (case {s}-{a})"
                ),
                domain,
            ));
        }
    }
    let mut planted = Vec::new();
    for original in [0usize, 5, 13, 22, 39] {
        let text = lines[original]["instruction"].as_str().unwrap().to_string();
        let i = lines.len();
        // Different casing and punctuation, and one changed word.
        let twin = text
            .to_uppercase()
            .replace(", ", "; ")
            .replacen("plain", "simple", 1);
        let mut record = qa(i, &twin, lines[original]["domain"].as_str().unwrap());
        record["output"] = lines[original]["output"].clone();
        lines.push(record);
        planted.push((original, i));
    }
    (write(dir, "all.jsonl", &lines), planted)
}

fn split_config(seed: u64) -> SplitConfig {
    SplitConfig {
        ratios: [0.6, 0.2, 0.2],
        seed,
        stratify_by: Some(FieldPath::parse("domain").unwrap()),
        near_dup: NearDupConfig::default(),
    }
}

#[test]
fn splits_are_reproducible_seeded_stratified_and_keep_near_duplicates_together() {
    let dir = tempfile::tempdir().unwrap();
    let (input, planted) = split_input(dir.path());
    let records = read_records(&input).unwrap();
    let run = |seed: u64, out: &str| {
        let assignment = records::split_records(&records, &split_config(seed)).unwrap();
        let paths = split::write_splits(&records, &assignment, &dir.path().join(out)).unwrap();
        let bytes: Vec<Vec<u8>> = paths.iter().map(|p| std::fs::read(p).unwrap()).collect();
        (assignment, bytes)
    };
    let (first, bytes_a) = run(11, "a");
    let (again, bytes_b) = run(11, "b");
    assert_eq!(bytes_a, bytes_b);
    assert_eq!(first, again);
    let (other, _) = run(12, "c");
    assert_ne!(first.split_of, other.split_of);

    for assignment in [&first, &other] {
        for &(original, twin) in &planted {
            assert_eq!(
                assignment.split_of[original], assignment.split_of[twin],
                "{original} and {twin} leaked across splits"
            );
        }
        assert_eq!(assignment.report.duplicate_groups, planted.len());
        assert_eq!(assignment.report.groups, 40);
    }
    // Each stratum (24 records incl. the twins... counted per record) is split within a group.
    for (stratum, counts) in &first.report.strata {
        let n: usize = counts.records.iter().sum();
        for (split, &count) in counts.records.iter().enumerate() {
            let target = first.report.ratios[split] * n as f64;
            // Groups of two can overshoot by one more record than singletons.
            assert!(
                (count as f64 - target).abs() < 2.0,
                "{stratum}/{split}: {count} vs {target}"
            );
        }
    }
    let total: usize = bytes_a
        .iter()
        .map(|b| b.iter().filter(|&&c| c == b'\n').count())
        .sum();
    assert_eq!(total, records.len());
}

fn tokenizer() -> TextTokenizer {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/golden/base");
    TextTokenizer::from_dir(&dir).unwrap()
}

#[test]
fn stats_count_tokens_as_the_trainer_renders_them() {
    let dir = tempfile::tempdir().unwrap();
    let lines = [
        json!({"instruction": "Add", "input": "2 and 3", "output": "5", "domain": "math"}),
        json!({"messages": [{"role": "user", "content": "Hello there"}, {"role": "assistant", "content": "Hi! How can I help you today with anything at all?"}], "source": "chat.md"}),
        json!({"text": "A plain document that trains on every token it has."}),
        json!({"instruction": "Add", "input": "2 and 3", "output": "5"}),
    ];
    let path = write(dir.path(), "s.jsonl", &lines);
    let options = StatsOptions {
        near_dup: NearDupConfig::default(),
        max_seq_len: 20,
    };
    let stats =
        records::compute_stats(std::slice::from_ref(&path), Some(tokenizer()), &options).unwrap();
    let renderer = Renderer::new(tokenizer(), usize::MAX);
    let mut expected: Vec<usize> = lines
        .iter()
        .map(|l| {
            let (_, example) = parse_record(&l.to_string()).unwrap();
            renderer.render(&example).unwrap().tokens.len()
        })
        .collect();
    expected.sort_unstable();
    let tokens = stats.tokens.unwrap();
    assert_eq!(tokens.count, 4);
    assert_eq!(tokens.min, expected[0]);
    assert_eq!(tokens.max, expected[3]);
    assert_eq!(tokens.p50, expected[1]);
    assert_eq!(tokens.p95, expected[3]);
    assert_eq!(tokens.total, expected.iter().sum::<usize>());
    assert!((tokens.mean - tokens.total as f64 / 4.0).abs() < 1e-9);
    assert_eq!(
        tokens.over_max_seq_len,
        expected.iter().filter(|&&n| n > 20).count()
    );
    // The text record: its words plus the end-of-text token.
    let text_ids = tokenizer()
        .encode("A plain document that trains on every token it has.")
        .unwrap();
    assert!(
        expected.contains(&(text_ids.len() + 1)),
        "{expected:?} vs {}",
        text_ids.len()
    );
    assert_eq!(stats.by_format["alpaca"], 2);
    assert_eq!(stats.by_format["text"], 1);
    assert_eq!(stats.by_domain["math"], 1);
    assert_eq!(stats.by_source["chat.md"], 1);
    assert_eq!(
        (stats.exact_duplicate_groups, stats.exact_duplicate_copies),
        (1, 1)
    );
}

#[test]
fn bad_input_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.jsonl");
    std::fs::write(
        &path,
        "{\"text\": \"ok\"}\n{\"text\": \"ok\"\n{\"prompt\": \"x\"}\n",
    )
    .unwrap();
    let err = read_records(&path).unwrap_err().to_string();
    assert!(err.contains("bad.jsonl:2: invalid JSON"), "{err}");
    let options = StatsOptions {
        near_dup: NearDupConfig::default(),
        max_seq_len: 2048,
    };
    let stats = records::compute_stats(std::slice::from_ref(&path), None, &options).unwrap();
    let invalid: Vec<String> = stats.invalid.iter().map(ToString::to_string).collect();
    assert_eq!(invalid.len(), 2);
    assert!(
        invalid[1].contains("bad.jsonl:3: unknown record format"),
        "{invalid:?}"
    );
    let missing = read_records(&dir.path().join("missing.jsonl")).unwrap_err();
    assert!(missing.to_string().contains("missing.jsonl"), "{missing}");
}

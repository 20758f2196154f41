//! `extract_dir` on the committed fixtures (`tests/fixtures/data/extract/`, binary ones written
//! by its `make_fixtures.py`): every kind of file, the failures, clean-up, chunking, duplicates.

use std::path::{Path, PathBuf};

use switchboard_data::extract::{
    extract_dir, load_rules, Chunk, ExtractConfig, ExtractError, ExtractReport, FileKind,
    FileOutcome,
};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/data/extract")
}

fn run(config: &ExtractConfig) -> ExtractReport {
    extract_dir(&fixtures().join("input"), config, |_| {}).unwrap_or_else(|e| panic!("{e}"))
}

fn chunks_of<'a>(report: &'a ExtractReport, source: &str) -> Vec<&'a Chunk> {
    report
        .chunks
        .iter()
        .filter(|c| c.source == source)
        .collect()
}

fn outcome<'a>(report: &'a ExtractReport, path: &str) -> &'a FileOutcome {
    &report
        .files
        .iter()
        .find(|f| f.path == Path::new(path))
        .unwrap_or_else(|| panic!("{path} not in the report"))
        .outcome
}

fn all_text(report: &ExtractReport, source: &str) -> String {
    chunks_of(report, source)
        .iter()
        .map(|c| c.text.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn markdown_keeps_headings_as_context_and_applies_default_rules() {
    let report = run(&ExtractConfig::default());
    let chunks = chunks_of(&report, "course/biology.md");
    let headings: Vec<Option<&str>> = chunks.iter().map(|c| c.heading.as_deref()).collect();
    assert!(headings.contains(&Some("Biology")), "{headings:?}");
    assert!(
        headings.contains(&Some("Biology > Respiration")),
        "{headings:?}"
    );
    let respiration = chunks
        .iter()
        .find(|c| c.heading.as_deref() == Some("Biology > Respiration"))
        .unwrap_or_else(|| panic!("no respiration chunk"));
    // Hyphenated line break joined, the bare page number "7" dropped, the code comment kept.
    assert!(
        respiration.text.contains("stored in glucose."),
        "{}",
        respiration.text
    );
    assert!(!respiration.text.contains("\n7\n"), "{}", respiration.text);
    assert!(
        respiration.text.contains("# not a heading"),
        "{}",
        respiration.text
    );
    assert!(chunks
        .iter()
        .all(|c| c.kind == FileKind::Markdown && c.page.is_none()));
}

#[test]
fn multi_page_pdf_gives_each_page_its_number() {
    let report = run(&ExtractConfig::default());
    let chunks = chunks_of(&report, "course/cells.pdf");
    let pages: Vec<(Option<u32>, &str)> =
        chunks.iter().map(|c| (c.page, c.text.as_str())).collect();
    assert_eq!(pages.len(), 3, "{pages:?}");
    for (page, expected) in [
        (1, "The nucleus holds the genetic material."),
        (2, "Ribosomes build proteins from amino acids."),
        (3, "Mitochondria make ATP by respiration."),
    ] {
        let (_, text) = pages[page - 1];
        assert_eq!(pages[page - 1].0, Some(page as u32));
        assert!(text.contains(expected), "page {page}: {text:?}");
        // The footer page number is a bare line and is cleaned away.
        assert!(
            !text.lines().any(|l| l.trim() == page.to_string()),
            "{text:?}"
        );
    }
    assert!(matches!(
        outcome(&report, "course/cells.pdf"),
        FileOutcome::Extracted {
            pages: Some(3),
            encoding: None,
            chunks: 3,
            ..
        }
    ));
}

#[test]
fn broken_and_encrypted_pdfs_are_reported_and_skipped() {
    let report = run(&ExtractConfig::default());
    for path in ["misc/truncated.pdf", "misc/garbage.pdf"] {
        match outcome(&report, path) {
            FileOutcome::Failed {
                kind: Some(FileKind::Pdf),
                error,
            } => {
                assert!(error.to_string().contains(path), "{error}");
            }
            other => panic!("{path}: {other:?}"),
        }
        assert!(chunks_of(&report, path).is_empty());
    }
    match outcome(&report, "misc/locked.pdf") {
        FileOutcome::Failed {
            error: ExtractError::Encrypted { path },
            ..
        } => {
            assert!(path.ends_with("misc/locked.pdf"));
        }
        other => panic!("locked.pdf: {other:?}"),
    }
    assert!(matches!(
        outcome(&report, "misc/table.csv"),
        FileOutcome::Unsupported
    ));
    assert!(report
        .files
        .iter()
        .all(|f| !f.path.starts_with(".draft.md")));
}

#[test]
fn notebook_cells_in_outputs_out() {
    let report = run(&ExtractConfig::default());
    let text = all_text(&report, "course/lesson.ipynb");
    assert!(text.contains("We count cells with a loop."), "{text}");
    assert!(
        text.contains("```python\ncells = [\"a\", \"b\"]\nfor c in cells:\n    print(c)\n```"),
        "{text}"
    );
    assert!(text.contains("len(cells)"), "{text}");
    assert!(!text.contains("NOTEBOOK-OUTPUT"), "{text}");
    assert!(chunks_of(&report, "course/lesson.ipynb")
        .iter()
        .all(|c| c.heading.as_deref() == Some("Counting cells")));
}

#[test]
fn encodings_are_detected_decoded_and_reported() {
    let report = run(&ExtractConfig::default());
    assert_eq!(
        all_text(&report, "course/francais.txt"),
        "Le café de la gare est très animé à midi.\nDéjà vu: une façade naïve, un résumé trop long."
    );
    assert!(matches!(
        outcome(&report, "course/francais.txt"),
        FileOutcome::Extracted {
            encoding: Some("windows-1252"),
            ..
        }
    ));
    assert_eq!(
        all_text(&report, "course/gruesse.txt"),
        "Über die Straße gehen: Grüße aus Köln."
    );
    assert!(matches!(
        outcome(&report, "course/gruesse.txt"),
        FileOutcome::Extracted {
            encoding: Some("UTF-16LE"),
            ..
        }
    ));
}

#[test]
fn duplicates_across_files_are_dropped_and_counted() {
    let report = run(&ExtractConfig::default());
    // biology.md's "Photosynthesis" section comes first (sorted order); misc/echo.txt says the
    // same in other case and spacing.
    assert_eq!(report.duplicates, 1);
    assert!(chunks_of(&report, "misc/echo.txt").is_empty());
    assert!(matches!(
        outcome(&report, "misc/echo.txt"),
        FileOutcome::Extracted {
            chunks: 0,
            duplicates: 1,
            ..
        }
    ));
    let mut ids: Vec<&str> = report.chunks.iter().map(|c| c.id.as_str()).collect();
    let total = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), total, "ids are unique");
}

#[test]
fn custom_rules_apply_and_defaults_can_be_switched_off() {
    let rules = load_rules(&fixtures().join("rules.toml")).unwrap_or_else(|e| panic!("{e}"));
    let report = run(&ExtractConfig {
        rules: rules.clone(),
        ..ExtractConfig::default()
    });
    let md = all_text(&report, "course/biology.md");
    assert!(!md.contains("CONFIDENTIAL"), "{md}");
    assert!(md.contains("\"adenosine triphosphate\""), "{md}");
    assert!(md.contains("glucose"), "{md}");
    let bare = run(&ExtractConfig {
        rules,
        default_rules: false,
        ..ExtractConfig::default()
    });
    let md = all_text(&bare, "course/biology.md");
    assert!(md.contains("glu-\ncose") && md.contains("\n7\n"), "{md}");
}

#[test]
fn chunks_respect_the_size_and_offsets_point_into_the_cleaned_text() {
    let config = ExtractConfig {
        chunk_chars: 40,
        overlap: 10,
        ..ExtractConfig::default()
    };
    let report = run(&config);
    assert!(report.chunks.len() > 10);
    for chunk in &report.chunks {
        let len = chunk.text.chars().count();
        assert!(len <= 40, "{len}: {:?}", chunk.text);
        assert_eq!(chunk.end - chunk.start, len, "{chunk:?}");
        assert_eq!(chunk.text, chunk.text.trim());
    }
    let bio = chunks_of(&report, "course/biology.md");
    for pair in bio.windows(2) {
        assert_eq!(pair[0].chunk + 1, pair[1].chunk);
        assert!(pair[0].start < pair[1].start);
    }
    // With room for a sentence but not a paragraph, chunks end at sentence ends.
    let report = run(&ExtractConfig {
        chunk_chars: 60,
        ..ExtractConfig::default()
    });
    let texts: Vec<&str> = chunks_of(&report, "course/biology.md")
        .iter()
        .map(|c| c.text.as_str())
        .collect();
    assert!(
        texts.contains(&"Respiration releases the energy stored in glucose."),
        "{texts:?}"
    );
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("It happens in the mitochondria.")),
        "{texts:?}"
    );
}

#[test]
fn output_is_deterministic() {
    let first = run(&ExtractConfig::default()).to_jsonl();
    let second = run(&ExtractConfig::default()).to_jsonl();
    assert_eq!(first, second);
    let line: serde_json::Value = serde_json::from_str(first.lines().next().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}"));
    for key in ["id", "source", "kind", "chunk", "start", "end", "text"] {
        assert!(line.get(key).is_some(), "{key} missing in {line}");
    }
}

#[test]
fn bad_configuration_and_missing_folders_are_errors() {
    let missing = extract_dir(
        Path::new("/no/such/folder"),
        &ExtractConfig::default(),
        |_| {},
    );
    assert!(matches!(missing, Err(ExtractError::Io { .. })));
    let overlap = ExtractConfig {
        chunk_chars: 10,
        overlap: 10,
        ..ExtractConfig::default()
    };
    assert!(matches!(
        extract_dir(&fixtures().join("input"), &overlap, |_| {}),
        Err(ExtractError::InvalidChunking { .. })
    ));
}

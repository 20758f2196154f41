//! The on-disk index: reuse, rebuild on change, hot reload while searching.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use switchboard_rag::{KnowledgeBase, RagError, ReloadOutcome, Retriever, SearchOptions};

fn write_doc(kb: &Path, relative: &str, title: &str, body: &str) {
    let path = kb.join(relative);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let domain = relative.split('/').next().unwrap();
    std::fs::write(
        path,
        format!("---\ntitle: {title}\ndomain: {domain}\n---\n{body}"),
    )
    .unwrap();
}

fn small_kb(kb: &Path) {
    write_doc(
        kb,
        "biology/cells.md",
        "Cells",
        "# Cells\n\nMitochondria make ATP for the cell.",
    );
    write_doc(
        kb,
        "history/rome.md",
        "Rome",
        "# Rome\n\nThe Senate advised the consuls of Rome.",
    );
    write_doc(
        kb,
        "security/xss.md",
        "XSS",
        "# XSS\n\nEscape output to stop cross-site scripting.",
    );
}

#[test]
fn opening_twice_reuses_the_index_and_a_change_rebuilds_it() {
    let kb = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let index_dir = out.path().join("kb-index");
    small_kb(kb.path());

    let first = KnowledgeBase::open_or_build(kb.path(), &index_dir).unwrap();
    assert!(first.stats().rebuilt);
    assert_eq!((first.stats().documents, first.stats().chunks), (3, 3));
    drop(first);

    let second = KnowledgeBase::open_or_build(kb.path(), &index_dir).unwrap();
    assert!(!second.stats().rebuilt, "unchanged kb must reuse the index");
    assert_eq!(
        second
            .search("mitochondria", &SearchOptions::default())
            .unwrap()
            .len(),
        1
    );
    drop(second);

    write_doc(
        kb.path(),
        "biology/cells.md",
        "Cells",
        "# Cells\n\nRibosomes translate messenger RNA.",
    );
    let third = KnowledgeBase::open_or_build(kb.path(), &index_dir).unwrap();
    assert!(third.stats().rebuilt);
    let hits = third
        .search("ribosomes translate", &SearchOptions::default())
        .unwrap();
    assert_eq!(hits[0].path, "biology/cells.md");
    assert!(third
        .search("mitochondria", &SearchOptions::default())
        .unwrap()
        .is_empty());

    // Only the index directory is left beside it: no staging or retired copies.
    let entries: Vec<_> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries, ["kb-index"]);
}

#[test]
fn a_damaged_index_is_rebuilt() {
    let kb = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let index_dir = out.path().join("idx");
    small_kb(kb.path());
    drop(KnowledgeBase::open_or_build(kb.path(), &index_dir).unwrap());
    std::fs::remove_file(index_dir.join("meta.json")).unwrap();
    let kb = KnowledgeBase::open_or_build(kb.path(), &index_dir).unwrap();
    assert!(kb.stats().rebuilt);
    assert_eq!(
        kb.search("senate", &SearchOptions::default())
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn a_file_with_bad_front_matter_is_reported_by_path() {
    let kb = tempfile::tempdir().unwrap();
    small_kb(kb.path());
    let bad = kb.path().join("teaching/broken.md");
    std::fs::create_dir_all(bad.parent().unwrap()).unwrap();
    std::fs::write(&bad, "title: no fences\n\nSome text.").unwrap();

    let err = switchboard_rag::load_kb(kb.path()).unwrap_err();
    assert!(
        matches!(&err, RagError::FrontMatter { path, .. } if *path == bad),
        "{err}"
    );

    let indexed = KnowledgeBase::in_ram(kb.path()).unwrap();
    assert_eq!(indexed.stats().documents, 3);
    assert_eq!(indexed.stats().skipped.len(), 1);
    assert_eq!(indexed.stats().skipped[0].0, bad);

    let out = tempfile::tempdir().unwrap();
    let on_disk = KnowledgeBase::open_or_build(kb.path(), out.path().join("idx")).unwrap();
    assert_eq!(on_disk.stats().skipped, indexed.stats().skipped);
    let reopened = KnowledgeBase::open_or_build(kb.path(), out.path().join("idx")).unwrap();
    assert!(!reopened.stats().rebuilt);
    assert_eq!(reopened.stats().skipped, indexed.stats().skipped);
}

#[test]
fn reload_while_searching_from_other_threads() {
    let kb = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let index_dir = out.path().join("idx");
    small_kb(kb.path());
    let retriever = Retriever::new(KnowledgeBase::open_or_build(kb.path(), &index_dir).unwrap());

    let stop = AtomicBool::new(false);
    let searches = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..2 {
            let retriever = retriever.clone();
            let (stop, searches) = (&stop, &searches);
            scope.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    // The Senate document is in every version of the kb.
                    let hits = retriever
                        .search("senate consuls", &SearchOptions::default())
                        .unwrap();
                    assert_eq!(hits[0].path, "history/rome.md");
                    searches.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        for round in 0..5 {
            let fact = format!("Enzyme number {round} catalyses reaction zeta{round}.");
            write_doc(
                kb.path(),
                "biology/cells.md",
                "Cells",
                &format!("# Cells\n\n{fact}"),
            );
            let outcome = retriever.reload(kb.path(), &index_dir).unwrap();
            assert!(
                matches!(outcome, ReloadOutcome::Reloaded { documents: 3, .. }),
                "{outcome:?}"
            );
            let hits = retriever
                .search(&format!("zeta{round}"), &SearchOptions::default())
                .unwrap();
            assert_eq!(hits.len(), 1, "round {round}");
        }
        assert_eq!(
            retriever.reload(kb.path(), &index_dir).unwrap(),
            ReloadOutcome::Unchanged
        );
        stop.store(true, Ordering::Relaxed);
    });
    assert!(searches.load(Ordering::Relaxed) > 0);
}

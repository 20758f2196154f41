//! Resuming: which chunks an earlier run already finished.
//!
//! A chunk is finished when its records are in the output file or its rejection is in the
//! rejects file. Records are appended one synced line at a time, so a killed run leaves at most
//! a torn last line (cut by [`Appender::open`]) and, if it died between two records of one
//! chunk, that chunk's first records only. Each record says how many its chunk has
//! (`chunk_records`), so such a partial chunk is recognised, its records removed (the file is
//! rewritten atomically) and the chunk done again: nothing is lost and nothing duplicated.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde_json::Value;

use crate::jsonl::{self, Appender, Line};

use super::error::Result;

/// The field naming a record's chunk.
pub const CHUNK_ID: &str = "chunk_id";
/// The field giving how many records the chunk has.
pub const CHUNK_RECORDS: &str = "chunk_records";

/// What an earlier run left.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resume {
    /// Chunk ids with all their records written, or rejected.
    pub done: HashSet<String>,
    /// Records removed because their chunk was only partly written.
    pub removed_records: usize,
}

/// Scans (and if need be repairs) the output and rejects files of an earlier run.
pub fn prepare(out: &Path, rejects: &Path) -> Result<Resume> {
    let mut resume = Resume::default();
    for (path, is_out) in [(out, true), (rejects, false)] {
        // Opening cuts a torn last line.
        let (_, cut) = Appender::open(path)?;
        if cut > 0 {
            tracing::warn!(file = %path.display(), bytes = cut, "cut a torn last line left by an interrupted run");
        }
        let lines = jsonl::read_objects(path)?;
        if !is_out {
            resume.done.extend(lines.iter().filter_map(chunk_id));
            continue;
        }
        let (complete, partial) = scan(&lines);
        if !partial.is_empty() {
            let keep: Vec<Value> = lines
                .iter()
                .filter(|l| chunk_id(l).is_none_or(|id| !partial.contains(&id)))
                .map(|l| Value::Object(l.object.clone()))
                .collect();
            resume.removed_records = lines.len() - keep.len();
            tracing::warn!(file = %path.display(), chunks = partial.len(), records = resume.removed_records, "removed the records of chunks an interrupted run left half-written; they are done again");
            jsonl::write_atomic(path, jsonl::to_jsonl(&keep).as_bytes())?;
        }
        resume.done.extend(complete);
    }
    Ok(resume)
}

fn chunk_id(line: &Line) -> Option<String> {
    line.object
        .get(CHUNK_ID)
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// Chunk ids whose records are all present, and those with some missing. A record without
/// `chunk_records` (written by hand, or by an older tool) counts as complete on its own.
fn scan(lines: &[Line]) -> (HashSet<String>, HashSet<String>) {
    let mut seen: HashMap<String, (usize, usize)> = HashMap::new();
    for line in lines {
        let Some(id) = chunk_id(line) else { continue };
        let expected = line
            .object
            .get(CHUNK_RECORDS)
            .and_then(Value::as_u64)
            .map_or(1, |n| n as usize);
        let entry = seen.entry(id).or_insert((0, expected));
        entry.0 += 1;
        entry.1 = entry.1.max(expected);
    }
    let mut complete = HashSet::new();
    let mut partial = HashSet::new();
    for (id, (found, expected)) in seen {
        if found >= expected {
            complete.insert(id);
        } else {
            partial.insert(id);
        }
    }
    (complete, partial)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn finished_chunks_are_done_and_partial_ones_removed() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.jsonl");
        let rejects = dir.path().join("out.rejects.jsonl");
        std::fs::write(
            &out,
            concat!(
                "{\"chunk_id\":\"a\",\"chunk_records\":2,\"x\":1}\n",
                "{\"chunk_id\":\"a\",\"chunk_records\":2,\"x\":2}\n",
                "{\"chunk_id\":\"b\",\"chunk_records\":2,\"x\":3}\n",
                "{\"chunk_id\":\"c\",\"x\":4}\n",
                "{\"chunk_id\":\"b\",\"chunk_rec"
            ),
        )
        .unwrap();
        std::fs::write(&rejects, "{\"chunk_id\":\"d\",\"attempts\":3}\n").unwrap();
        let resume = prepare(&out, &rejects).unwrap();
        let mut done: Vec<_> = resume.done.into_iter().collect();
        done.sort();
        assert_eq!(done, ["a", "c", "d"]);
        assert_eq!(resume.removed_records, 1);
        let left = std::fs::read_to_string(&out).unwrap();
        assert_eq!(left.lines().count(), 3);
        assert!(!left.contains("\"b\""), "{left}");
    }

    #[test]
    fn no_files_yet_is_nothing_done() {
        let dir = tempfile::tempdir().unwrap();
        let resume = prepare(&dir.path().join("o.jsonl"), &dir.path().join("r.jsonl")).unwrap();
        assert_eq!(resume, Resume::default());
    }
}

//! The chunks `synth` reads: JSONL objects with an `id` and a `text`, plus any metadata.

use std::collections::HashMap;
use std::path::Path;

use serde_json::{Map, Value};

use crate::jsonl;

use super::error::{Result, SynthError};

/// One chunk of course material.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    /// Unique id (a string, or a number written as one); records carry it as `chunk_id`.
    pub id: String,
    /// The text the teacher writes about.
    pub text: String,
    /// Where the text came from (`source`), when the line says.
    pub source: Option<String>,
    /// Every other scalar field of the line (strings, numbers, booleans), passed on to the
    /// chunk's records.
    pub metadata: Map<String, Value>,
    /// 1-based line of the chunks file.
    pub line: usize,
}

/// Reads the chunks in `path`; an error names the file and line of any line that is not a
/// JSON object, lacks a string `id` or a non-empty `text`, or repeats an id.
pub fn read_chunks(path: &Path) -> Result<Vec<Chunk>> {
    let lines = jsonl::read_objects(path)?;
    let mut first_line: HashMap<String, usize> = HashMap::new();
    let mut chunks = Vec::with_capacity(lines.len());
    for line in lines {
        let bad = |reason: String| SynthError::BadChunk {
            path: path.to_path_buf(),
            line: line.number,
            reason,
        };
        let mut object = line.object;
        let id = match object.remove("id") {
            Some(Value::String(s)) if !s.trim().is_empty() => s,
            Some(Value::Number(n)) => n.to_string(),
            Some(_) => return Err(bad("`id` must be a non-empty string".into())),
            None => return Err(bad("the chunk has no `id`".into())),
        };
        let text = match object.remove("text") {
            Some(Value::String(s)) if !s.trim().is_empty() => s,
            Some(Value::String(_)) => return Err(bad("`text` is empty".into())),
            Some(_) => return Err(bad("`text` must be a string".into())),
            None => return Err(bad("the chunk has no `text`".into())),
        };
        if let Some(first) = first_line.insert(id.clone(), line.number) {
            return Err(bad(format!("duplicate id {id:?} (first on line {first})")));
        }
        let source = object
            .get("source")
            .and_then(Value::as_str)
            .map(str::to_string);
        object.retain(|_, v| matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_)));
        chunks.push(Chunk {
            id,
            text,
            source,
            metadata: object,
            line: line.number,
        });
    }
    Ok(chunks)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Vec<Chunk>> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chunks.jsonl");
        std::fs::write(&path, text).unwrap();
        read_chunks(&path)
    }

    #[test]
    fn chunks_keep_scalar_metadata() {
        let chunks =
            read("{\"id\": \"a\", \"text\": \"T\", \"source\": \"s.md\", \"page\": 3, \"tags\": [1]}\n{\"id\": 7, \"text\": \"U\"}\n")
                .unwrap();
        assert_eq!(chunks[0].source.as_deref(), Some("s.md"));
        assert_eq!(chunks[0].metadata.get("page"), Some(&Value::from(3)));
        assert!(!chunks[0].metadata.contains_key("tags"));
        assert_eq!(chunks[1].id, "7");
        assert_eq!(chunks[1].line, 2);
    }

    #[test]
    fn bad_chunks_name_file_and_line() {
        let err = read("{\"id\": \"a\", \"text\": \"T\"}\n{\"id\": \"b\"}\n").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.ends_with("chunks.jsonl:2: the chunk has no `text`"),
            "{msg}"
        );
        let err = read("{\"id\": \"a\", \"text\": \"T\"}\n{\"id\": \"a\", \"text\": \"U\"}\n");
        assert!(err
            .unwrap_err()
            .to_string()
            .contains("duplicate id \"a\" (first on line 1)"));
        let err = read("{\"text\": \"T\"}\n").unwrap_err();
        assert!(err.to_string().ends_with(":1: the chunk has no `id`"));
    }
}

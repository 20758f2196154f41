//! JSONL files: reading objects with errors that name the file and the line, writing a whole
//! file atomically, and appending one complete line at a time (for runs that must resume).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// What can go wrong with a JSONL file.
#[derive(Debug, thiserror::Error)]
pub enum JsonlError {
    /// The file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A line is not a JSON object.
    #[error("{}:{line}: {reason}", path.display())]
    BadLine {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

/// One JSON object of a JSONL file and the (1-based) line it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// 1-based line number in the file.
    pub number: usize,
    /// The object.
    pub object: Map<String, Value>,
}

/// Reads every JSON object of `path`. Blank lines are skipped; anything else that is not a JSON
/// object is an error naming the file and the line.
pub fn read_objects(path: &Path) -> Result<Vec<Line>, JsonlError> {
    let text = std::fs::read_to_string(path).map_err(|source| JsonlError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_objects(path, &text)
}

/// [`read_objects`] over text already read; `path` only names the source in errors.
pub fn parse_objects(path: &Path, text: &str) -> Result<Vec<Line>, JsonlError> {
    let mut out = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        let bad = |reason: String| JsonlError::BadLine {
            path: path.to_path_buf(),
            line: index + 1,
            reason,
        };
        match serde_json::from_str::<Value>(trimmed) {
            Ok(Value::Object(object)) => out.push(Line {
                number: index + 1,
                object,
            }),
            Ok(_) => return Err(bad("a record must be a JSON object".into())),
            Err(e) => return Err(bad(format!("invalid JSON: {e}"))),
        }
    }
    Ok(out)
}

/// Serialises `values` one per line.
pub fn to_jsonl<'a>(values: impl IntoIterator<Item = &'a Value>) -> String {
    let mut out = String::new();
    for value in values {
        out.push_str(&value.to_string());
        out.push('\n');
    }
    out
}

/// Writes `bytes` to `path` through a temporary file in the same directory, synced, then
/// renamed over `path`: readers see the old file or the new one, never half of one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), JsonlError> {
    let io = |source| JsonlError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(io)?;
    let name = path
        .file_name()
        .map_or_else(|| "out".to_string(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        std::fs::remove_file(&tmp).ok();
    }
    result.map_err(io)
}

/// A JSONL file that grows one whole record at a time: each record is one `write` of a complete
/// line on a file opened for appending, then synced, so a run killed at any moment leaves only
/// whole lines behind (and at worst one torn last line, which [`Appender::open`] cuts off).
#[derive(Debug)]
pub struct Appender {
    path: PathBuf,
    file: std::fs::File,
}

impl Appender {
    /// Opens (creating) `path` for appending. A last line without its newline, left by a run
    /// that died mid-write, is truncated away first; returns how many bytes were cut.
    pub fn open(path: &Path) -> Result<(Self, u64), JsonlError> {
        let io = |source| JsonlError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let cut = truncate_torn_line(path).map_err(io)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        Ok((
            Self {
                path: path.to_path_buf(),
                file,
            },
            cut,
        ))
    }

    /// Appends `value` as one line and syncs it to disk.
    pub fn append(&mut self, value: &Value) -> Result<(), JsonlError> {
        let mut line = value.to_string();
        line.push('\n');
        let io = |source| JsonlError::Io {
            path: self.path.clone(),
            source,
        };
        self.file.write_all(line.as_bytes()).map_err(io)?;
        self.file.sync_data().map_err(io)
    }

    /// The file being appended to.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Cuts a trailing partial line (no final newline) off `path`; 0 when there is none or no file.
fn truncate_torn_line(path: &Path) -> std::io::Result<u64> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    if bytes.is_empty() || bytes.ends_with(b"\n") {
        return Ok(0);
    }
    let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let file = std::fs::OpenOptions::new().write(true).open(path)?;
    file.set_len(keep as u64)?;
    file.sync_all()?;
    Ok((bytes.len() - keep) as u64)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_file_and_line() {
        let path = Path::new("data.jsonl");
        let err = parse_objects(path, "{\"a\": 1}\n\n[1]\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "data.jsonl:3: a record must be a JSON object"
        );
        let err = parse_objects(path, "{\"a\": 1\n").unwrap_err();
        assert!(
            err.to_string().starts_with("data.jsonl:1: invalid JSON"),
            "{err}"
        );
        let ok = parse_objects(path, "\n{\"a\": 1}\n").unwrap();
        assert_eq!(ok[0].number, 2);
    }

    #[test]
    fn an_appender_cuts_a_torn_last_line_and_appends_whole_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        std::fs::write(&path, "{\"a\":1}\n{\"a\":").unwrap();
        let (mut out, cut) = Appender::open(&path).unwrap();
        assert_eq!(cut, 5);
        out.append(&serde_json::json!({"a": 2})).unwrap();
        drop(out);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"a\":1}\n{\"a\":2}\n"
        );
        let (_, cut) = Appender::open(&path).unwrap();
        assert_eq!(cut, 0);
    }

    #[test]
    fn atomic_writes_replace_the_file_and_leave_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/x.jsonl");
        write_atomic(&path, b"one\n").unwrap();
        write_atomic(&path, b"two\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two\n");
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1
        );
    }
}

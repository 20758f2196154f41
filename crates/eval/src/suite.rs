//! Evaluation suites: JSONL files of items, one per line.
//!
//! * Multiple choice: `{"id", "domain", "question", "choices": [..], "answer": <index>}`, scored
//!   by the log-likelihood of each choice given the question (as lm-evaluation-harness does).
//!   `answer` may also be the text of the right choice.
//! * Generative: `{"id", "domain", "question", "reference"}`, scored by comparing the model's
//!   answer with the reference (exact match, contains, token F1).
//!
//! Extra keys are ignored, so suites can carry provenance (`source`, `notes`).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{EvalError, Result};

/// What kind of answer an item expects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Task {
    /// Pick one of `choices`; `answer` is the index of the right one.
    MultipleChoice {
        /// The candidate answers, in order.
        choices: Vec<String>,
        /// Index into `choices` of the right answer.
        answer: usize,
    },
    /// Write an answer, compared with `reference`.
    Generative {
        /// The expected answer.
        reference: String,
    },
}

/// One evaluation item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// Unique within the suite; pairs records of two runs.
    pub id: String,
    /// The domain it measures (`biology`, `history`, ..., `general`).
    pub domain: String,
    /// The question, as the user would ask it.
    pub question: String,
    /// What is expected.
    #[serde(flatten)]
    pub task: Task,
}

impl Item {
    /// Whether the item is multiple choice.
    pub fn is_multiple_choice(&self) -> bool {
        matches!(self.task, Task::MultipleChoice { .. })
    }
}

/// A loaded suite.
#[derive(Debug, Clone, PartialEq)]
pub struct Suite {
    /// Its name: the file stem (`biology` for `evals/biology.jsonl`), or as given.
    pub name: String,
    /// Where it was read from (one or several files).
    pub paths: Vec<PathBuf>,
    /// Its items, in file order.
    pub items: Vec<Item>,
}

impl Suite {
    /// Reads one JSONL file. Blank lines and lines starting with `//` are skipped.
    pub fn load(path: impl AsRef<Path>) -> Result<Suite> {
        Self::load_many(&[path.as_ref().to_path_buf()], None)
    }

    /// Reads several JSONL files into one suite named `name` (default: the stem of the first
    /// file, or of the directory when a directory is given). A directory stands for its
    /// `*.jsonl` files, sorted by name. Ids must be unique across all of them.
    pub fn load_many(paths: &[PathBuf], name: Option<&str>) -> Result<Suite> {
        let mut files = Vec::new();
        for path in paths {
            if path.is_dir() {
                files.extend(jsonl_files_in(path)?);
            } else {
                files.push(path.clone());
            }
        }
        let first = paths.first().ok_or_else(|| EvalError::BadFile {
            path: PathBuf::new(),
            reason: "no suite file given".to_string(),
        })?;
        let name = match name {
            Some(name) => name.to_string(),
            None => first
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "suite".to_string()),
        };
        let mut items = Vec::new();
        let mut seen = HashSet::new();
        for file in &files {
            for item in read_items(file)? {
                if !seen.insert(item.id.clone()) {
                    return Err(EvalError::BadFile {
                        path: file.clone(),
                        reason: format!("duplicate item id {:?}", item.id),
                    });
                }
                items.push(item);
            }
        }
        if items.is_empty() {
            return Err(EvalError::BadFile {
                path: first.clone(),
                reason: "the suite has no items".to_string(),
            });
        }
        Ok(Suite {
            name,
            paths: files,
            items,
        })
    }

    /// The domains of the suite, sorted, each once.
    pub fn domains(&self) -> Vec<String> {
        let mut domains: Vec<String> = self.items.iter().map(|i| i.domain.clone()).collect();
        domains.sort();
        domains.dedup();
        domains
    }
}

fn jsonl_files_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let io = |source| EvalError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.extension().is_some_and(|e| e == "jsonl") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn read_items(path: &Path) -> Result<Vec<Item>> {
    read_jsonl(path, |value, _| parse_item(value))
}

/// Reads a JSONL file into records with `parse` (given each object and how many records came
/// before it). Blank lines and lines starting with `//` are skipped; errors name the file and
/// the line.
pub(crate) fn read_jsonl<T>(
    path: &Path,
    mut parse: impl FnMut(&Value, usize) -> std::result::Result<T, String>,
) -> Result<Vec<T>> {
    let text = std::fs::read_to_string(path).map_err(|source| EvalError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut records = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with("//") {
            continue;
        }
        let bad = |reason: String| EvalError::BadLine {
            path: path.to_path_buf(),
            line: index + 1,
            reason,
        };
        let value: Value = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
        records.push(parse(&value, records.len()).map_err(bad)?);
    }
    Ok(records)
}

/// Checks one JSON object against the item schema, with a message naming the field.
fn parse_item(value: &Value) -> std::result::Result<Item, String> {
    let object = value.as_object().ok_or("an item must be a JSON object")?;
    let text = |field: &str| -> std::result::Result<String, String> {
        match object.get(field) {
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
            Some(Value::String(_)) => Err(format!("`{field}` is empty")),
            Some(Value::Number(n)) if field == "id" => Ok(n.to_string()),
            Some(_) => Err(format!("`{field}` must be a string")),
            None => Err(format!("missing `{field}`")),
        }
    };
    let id = text("id")?;
    let domain = text("domain")?;
    let question = text("question")?;
    let task = match (object.get("choices"), object.get("reference")) {
        (Some(choices), None) => multiple_choice(choices, object.get("answer"))?,
        (None, Some(Value::String(reference))) if !reference.trim().is_empty() => {
            Task::Generative {
                reference: reference.clone(),
            }
        }
        (None, Some(_)) => return Err("`reference` must be a non-empty string".to_string()),
        (Some(_), Some(_)) => return Err(
            "an item has either `choices` (multiple choice) or `reference` (generative), not both"
                .to_string(),
        ),
        (None, None) => return Err(
            "an item needs `choices` and `answer` (multiple choice) or `reference` (generative)"
                .to_string(),
        ),
    };
    Ok(Item {
        id,
        domain,
        question,
        task,
    })
}

fn multiple_choice(choices: &Value, answer: Option<&Value>) -> std::result::Result<Task, String> {
    let choices: Vec<String> = choices
        .as_array()
        .ok_or("`choices` must be a list of strings")?
        .iter()
        .map(|c| c.as_str().map(str::to_string))
        .collect::<Option<_>>()
        .ok_or("`choices` must be a list of strings")?;
    if choices.len() < 2 {
        return Err("`choices` needs at least two entries".to_string());
    }
    if choices.iter().any(|c| c.trim().is_empty()) {
        return Err("`choices` has an empty entry".to_string());
    }
    let answer = match answer {
        Some(Value::Number(n)) => n
            .as_u64()
            .map(|n| n as usize)
            .ok_or("`answer` must be a choice index (0-based) or the text of a choice")?,
        Some(Value::String(s)) => match s.parse::<usize>() {
            Ok(index) => index,
            Err(_) => choices
                .iter()
                .position(|c| c == s)
                .ok_or_else(|| format!("`answer` {s:?} is not one of the choices"))?,
        },
        Some(_) => {
            return Err(
                "`answer` must be a choice index (0-based) or the text of a choice".to_string(),
            )
        }
        None => return Err("missing `answer`".to_string()),
    };
    if answer >= choices.len() {
        return Err(format!(
            "`answer` is {answer} but there are only {} choices (0-based)",
            choices.len()
        ));
    }
    Ok(Task::MultipleChoice { choices, answer })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        path
    }

    #[test]
    fn reads_both_kinds_and_answer_by_text() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(
            dir.path(),
            "mixed.jsonl",
            concat!(
                r#"{"id": "b1", "domain": "biology", "question": "Q?", "choices": ["a", "b"], "answer": 1}"#,
                "\n\n// a comment\n",
                r#"{"id": 7, "domain": "history", "question": "Q2?", "choices": ["x", "y", "z"], "answer": "z", "source": "kb"}"#,
                "\n",
                r#"{"id": "g1", "domain": "general", "question": "2+2?", "reference": "4"}"#,
                "\n"
            ),
        );
        let suite = Suite::load(&path).expect("load");
        assert_eq!(suite.name, "mixed");
        assert_eq!(suite.items.len(), 3);
        assert_eq!(suite.items[1].id, "7");
        assert_eq!(
            suite.items[1].task,
            Task::MultipleChoice {
                choices: vec!["x".into(), "y".into(), "z".into()],
                answer: 2
            }
        );
        assert!(!suite.items[2].is_multiple_choice());
        assert_eq!(suite.domains(), vec!["biology", "general", "history"]);
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cases = [
            (
                r#"{"id": "a", "domain": "d", "question": "q", "choices": ["a", "b"], "answer": 2}"#,
                "only 2 choices",
            ),
            (
                r#"{"id": "a", "domain": "d", "question": "q", "choices": ["a"], "answer": 0}"#,
                "at least two",
            ),
            (
                r#"{"id": "a", "domain": "d", "choices": ["a", "b"], "answer": 0}"#,
                "missing `question`",
            ),
            (
                r#"{"id": "a", "domain": "d", "question": "q"}"#,
                "needs `choices`",
            ),
            (
                r#"{"id": "a", "domain": "d", "question": "q", "choices": ["a", "b"], "answer": "c"}"#,
                "not one of the choices",
            ),
            ("not json", "expected"),
        ];
        for (line, expected) in cases {
            let path = write(dir.path(), "bad.jsonl", &format!("\n{line}\n"));
            let err = Suite::load(&path).expect_err(line).to_string();
            assert!(err.contains("bad.jsonl:2:"), "{err}");
            assert!(err.contains(expected), "{err} should say {expected}");
        }
    }

    #[test]
    fn duplicate_ids_and_empty_suites_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let line = r#"{"id": "a", "domain": "d", "question": "q", "reference": "r"}"#;
        let path = write(dir.path(), "dup.jsonl", &format!("{line}\n{line}\n"));
        assert!(Suite::load(&path)
            .expect_err("dup")
            .to_string()
            .contains("duplicate item id"));
        let path = write(dir.path(), "empty.jsonl", "\n");
        assert!(Suite::load(&path)
            .expect_err("empty")
            .to_string()
            .contains("no items"));
    }

    #[test]
    fn a_directory_stands_for_its_jsonl_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(
            dir.path(),
            "b.jsonl",
            r#"{"id": "2", "domain": "d", "question": "q", "reference": "r"}"#,
        );
        write(
            dir.path(),
            "a.jsonl",
            r#"{"id": "1", "domain": "d", "question": "q", "reference": "r"}"#,
        );
        write(dir.path(), "notes.md", "ignored");
        let suite = Suite::load_many(&[dir.path().to_path_buf()], Some("all")).expect("load");
        assert_eq!(suite.name, "all");
        let ids: Vec<&str> = suite.items.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["1", "2"]);
    }
}

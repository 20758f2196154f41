//! Labelled examples and the JSONL files they are kept in.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::domain::{Domain, Message, Turn};
use crate::error::{Result, RouterError};

/// One labelled conversation (a plain text example is a single user message).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Example {
    /// The conversation.
    pub messages: Vec<Message>,
    /// The domain it should be routed to.
    pub label: Domain,
}

impl Example {
    /// An example made of a single user message.
    pub fn text(text: impl Into<String>, label: Domain) -> Self {
        Example {
            messages: vec![Message {
                role: "user".to_owned(),
                content: text.into(),
            }],
            label,
        }
    }

    /// The conversation as borrowed turns, ready for [`Classify`](crate::Classify).
    pub fn turns(&self) -> Vec<Turn<'_>> {
        self.messages.iter().map(Message::as_turn).collect()
    }
}

/// A JSONL line: exactly one of `text` and `messages`, plus `label`; other keys are ignored.
#[derive(Deserialize)]
struct Line {
    text: Option<String>,
    messages: Option<Vec<Message>>,
    label: String,
}

fn parse_line(line: &str) -> std::result::Result<Example, String> {
    let parsed: Line = serde_json::from_str(line).map_err(|error| error.to_string())?;
    let label = parsed
        .label
        .parse::<Domain>()
        .map_err(|error| error.to_string())?;
    match (parsed.text, parsed.messages) {
        (Some(text), None) => Ok(Example::text(text, label)),
        (None, Some(messages)) if messages.is_empty() => Err("`messages` is empty".to_owned()),
        (None, Some(messages)) => Ok(Example { messages, label }),
        (Some(_), Some(_)) => Err("has both `text` and `messages`".to_owned()),
        (None, None) => Err("has neither `text` nor `messages`".to_owned()),
    }
}

/// Reads a JSONL file of examples: one `{"text": "...", "label": "biology"}` or
/// `{"messages": [{"role": "user", "content": "..."}], "label": "..."}` object per line.
/// Blank lines are skipped; a bad line is an error naming the file and its line number.
pub fn load_examples(path: impl AsRef<Path>) -> Result<Vec<Example>> {
    let path = path.as_ref();
    let content = fs::read_to_string(path).map_err(|source| RouterError::Io {
        path: path.to_owned(),
        source,
    })?;
    content
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| {
            parse_line(line).map_err(|reason| RouterError::Data {
                path: path.to_owned(),
                line: index + 1,
                reason,
            })
        })
        .collect()
}

/// Reads every `*.<split>.jsonl` file of `dir` (e.g. split `train` reads `biology.train.jsonl`,
/// `history.train.jsonl`...), in file-name order so the result is deterministic.
pub fn load_split(dir: impl AsRef<Path>, split: &str) -> Result<Vec<Example>> {
    let dir = dir.as_ref();
    let io_error = |source| RouterError::Io {
        path: dir.to_owned(),
        source,
    };
    let suffix = format!(".{split}.jsonl");
    let mut files: Vec<PathBuf> = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error)? {
        let path = entry.map_err(io_error)?.path();
        let matches = path
            .file_name()
            .and_then(|name| name.to_str())
            .is_some_and(|name| name.ends_with(&suffix));
        if matches {
            files.push(path);
        }
    }
    files.sort();
    let mut examples = Vec::new();
    for file in files {
        examples.extend(load_examples(&file)?);
    }
    Ok(examples)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_text_and_message_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mixed.train.jsonl");
        fs::write(
            &path,
            concat!(
                r#"{"text": "What does a ribosome do?", "label": "biology", "source": "a"}"#,
                "\n\n",
                r#"{"messages": [{"role": "user", "content": "Who was Hammurabi?"}], "label": "History"}"#,
                "\n",
            ),
        )
        .unwrap();
        fs::write(dir.path().join("other.test.jsonl"), "not json\n").unwrap();

        let examples = load_split(dir.path(), "train").unwrap();
        assert_eq!(examples.len(), 2);
        assert_eq!(
            examples[0],
            Example::text("What does a ribosome do?", Domain::Biology)
        );
        assert_eq!(examples[1].label, Domain::History);
        assert_eq!(examples[1].turns(), vec![Turn::user("Who was Hammurabi?")]);
    }

    #[test]
    fn bad_lines_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            (
                "{\"text\": \"x\", \"label\": \"chemistry\"}",
                "unknown domain",
            ),
            ("{\"label\": \"general\"}", "neither"),
            (
                "{\"text\": \"x\", \"messages\": [], \"label\": \"general\"}",
                "both",
            ),
            ("{\"messages\": [], \"label\": \"general\"}", "empty"),
            ("{\"text\": \"unterminated", "EOF"),
        ];
        for (line, expected) in cases {
            let path = dir.path().join("bad.jsonl");
            fs::write(
                &path,
                format!("{{\"text\": \"ok\", \"label\": \"general\"}}\n{line}\n"),
            )
            .unwrap();
            let error = load_examples(&path).unwrap_err();
            let message = error.to_string();
            assert!(
                matches!(error, RouterError::Data { line: 2, .. }),
                "{message}"
            );
            assert!(message.contains("bad.jsonl:2"), "{message}");
            assert!(message.contains(expected), "{message}");
        }
        let missing = load_examples(dir.path().join("missing.jsonl")).unwrap_err();
        assert!(matches!(missing, RouterError::Io { .. }));
    }
}

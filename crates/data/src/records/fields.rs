//! Which text of a record a rule looks at: dotted field paths over the raw JSON, or by default
//! the text the trainer sees.

use serde_json::{Map, Value};
use switchboard_train::Example;

use super::{RecordError, Result};

/// One step of a [`FieldPath`].
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// An object key (or, on an array, an index when it is a number).
    Key(String),
    /// Every element of an array or every value of an object.
    Any,
}

/// A dotted path into a record: `instruction`, `qa_pair.question`, `messages.*.content`,
/// `conversations.0.value`. `*` matches every element of an array (or value of an object); a
/// number indexes an array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath {
    spec: String,
    steps: Vec<Step>,
}

impl FieldPath {
    /// Parses `spec`; empty segments (`a..b`, a leading or trailing dot) are refused.
    pub fn parse(spec: &str) -> Result<Self> {
        let bad = |reason: &str| RecordError::BadField {
            path: spec.to_string(),
            reason: reason.to_string(),
        };
        if spec.trim().is_empty() {
            return Err(bad("empty path"));
        }
        let steps = spec
            .split('.')
            .map(|segment| match segment {
                "" => Err(bad("empty segment")),
                "*" => Ok(Step::Any),
                key => Ok(Step::Key(key.to_string())),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            spec: spec.to_string(),
            steps,
        })
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.spec
    }

    /// The strings the path reaches in `object`, in document order. A path ending on an array
    /// or object yields the strings inside it (at any depth); numbers and booleans are written
    /// as JSON; a path that reaches nothing yields nothing.
    pub fn strings(&self, object: &Map<String, Value>) -> Vec<String> {
        let mut current: Vec<&Value> = Vec::new();
        let mut first = true;
        for step in &self.steps {
            let mut next = Vec::new();
            if first {
                match step {
                    Step::Key(key) => next.extend(object.get(key)),
                    Step::Any => next.extend(object.values()),
                }
                first = false;
            } else {
                for value in current {
                    descend(value, step, &mut next);
                }
            }
            current = next;
        }
        let mut out = Vec::new();
        for value in current {
            leaves(value, &mut out);
        }
        out
    }
}

impl std::fmt::Display for FieldPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.spec)
    }
}

fn descend<'a>(value: &'a Value, step: &Step, out: &mut Vec<&'a Value>) {
    match (value, step) {
        (Value::Object(map), Step::Key(key)) => out.extend(map.get(key)),
        (Value::Array(items), Step::Key(key)) => {
            if let Some(item) = key.parse::<usize>().ok().and_then(|i| items.get(i)) {
                out.push(item);
            }
        }
        (Value::Object(map), Step::Any) => out.extend(map.values()),
        (Value::Array(items), Step::Any) => out.extend(items),
        _ => {}
    }
}

fn leaves(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Null => {}
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| leaves(v, out)),
        Value::Object(map) => map.values().for_each(|v| leaves(v, out)),
        other => out.push(other.to_string()),
    }
}

/// The text the trainer sees for a record: each message's content on its own (joined by a blank
/// line, roles left out), or the plain text. Teaching QA answers appear rendered, with their
/// reasoning steps and related concepts, as they are trained.
pub fn trainer_text(example: &Example) -> String {
    match example {
        Example::Chat(messages) => messages
            .iter()
            .map(|m| m.content.as_str())
            .collect::<Vec<_>>()
            .join("\n\n"),
        Example::Text(text) => text.clone(),
    }
}

/// The text of the fields `paths` select (joined by a blank line), or the trainer's text when
/// `paths` is empty.
pub fn selected_text(
    paths: &[FieldPath],
    object: &Map<String, Value>,
    example: &Example,
) -> String {
    if paths.is_empty() {
        return trainer_text(example);
    }
    paths
        .iter()
        .flat_map(|p| p.strings(object))
        .collect::<Vec<_>>()
        .join("\n\n")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;
    use switchboard_train::parse_record;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn paths_reach_nested_fields_and_wildcards() {
        let record = obj(json!({
            "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
            "qa_pair": {"question": "Why?", "thought_process": ["x", "y"]},
            "n": 3
        }));
        let get = |p: &str| FieldPath::parse(p).unwrap().strings(&record);
        assert_eq!(get("messages.*.content"), vec!["q", "a"]);
        assert_eq!(get("messages.1.content"), vec!["a"]);
        assert_eq!(get("qa_pair.question"), vec!["Why?"]);
        assert_eq!(get("qa_pair.thought_process"), vec!["x", "y"]);
        assert_eq!(get("n"), vec!["3"]);
        assert!(get("missing.field").is_empty());
        assert!(FieldPath::parse("a..b").is_err());
        assert!(FieldPath::parse("").is_err());
    }

    #[test]
    fn the_default_text_is_what_the_trainer_sees() {
        let line = r#"{"qa_pair": {"question": "Q?", "answer": "A.", "related_concepts": ["c"]}}"#;
        let (_, example) = parse_record(line).unwrap();
        let record = obj(serde_json::from_str(line).unwrap());
        assert_eq!(
            selected_text(&[], &record, &example),
            "Q?\n\nAnswer: A.\n\nRelated concepts: c"
        );
        let q = FieldPath::parse("qa_pair.question").unwrap();
        assert_eq!(selected_text(&[q], &record, &example), "Q?");
    }
}

//! Turning a teacher's reply into records: JSON as asked, JSON wrapped in code fences or prose
//! (with trailing commas fixed), or, failing that, the labelled text small teachers write
//! instead (`Question: ...`, `Answer: ...`; see [`super::labelled`]).

use std::collections::HashSet;

use serde_json::Value;

use super::labelled;
use super::schema::{normalize, SynthFormat};

/// Why no record could be made of a reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RepairError {
    /// The reply is empty.
    #[error("the reply is empty")]
    Empty,
    /// Neither JSON nor labelled text was found.
    #[error("no JSON and no labelled question/answer text in the reply")]
    NoStructure,
    /// Items were found but none fits the format; the first item's problem.
    #[error("no item fits the {format} format: {reason}")]
    NoValidItem {
        /// The format asked for.
        format: SynthFormat,
        /// Why the first item failed.
        reason: String,
    },
}

/// The records made of one reply.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedReply {
    /// Valid records of the format, duplicates removed, in reply order.
    pub records: Vec<Value>,
    /// Whether anything had to be fixed: JSON dug out of text, trailing commas, labelled text,
    /// reshaped items, items dropped.
    pub repaired: bool,
}

/// Reads `text` (a teacher's reply) as records of `format`.
pub fn parse_teacher_reply(format: SynthFormat, text: &str) -> Result<ParsedReply, RepairError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(RepairError::Empty);
    }
    let (items, mut repaired) = if let Ok(value) = serde_json::from_str::<Value>(trimmed) {
        (unwrap_items(value), false)
    } else if let Some(value) = extract_json(trimmed) {
        (unwrap_items(value), true)
    } else {
        let items = labelled::parse(format, trimmed);
        if items.is_empty() {
            return Err(RepairError::NoStructure);
        }
        (items, true)
    };
    let mut records = Vec::new();
    let mut seen = HashSet::new();
    let mut first_error = None;
    for item in &items {
        match normalize(format, item) {
            Ok((record, reshaped)) => {
                repaired |= reshaped;
                if seen.insert(record.to_string()) {
                    records.push(record);
                } else {
                    repaired = true;
                }
            }
            Err(reason) => {
                repaired = true;
                first_error.get_or_insert(reason);
            }
        }
    }
    if records.is_empty() {
        return Err(RepairError::NoValidItem {
            format,
            reason: first_error.unwrap_or_else(|| "the reply holds an empty list".into()),
        });
    }
    Ok(ParsedReply { records, repaired })
}

/// A list is its items; `{"qa_pairs": [...]}` (or `pairs`, `records`, `examples`, `data`,
/// `items`) is the list; any other value is one item.
fn unwrap_items(value: Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items,
        Value::Object(object) => {
            let list_key = ["qa_pairs", "pairs", "records", "examples", "data", "items"]
                .into_iter()
                .find(|k| object.get(*k).is_some_and(Value::is_array));
            match list_key.and_then(|k| object.get(k)) {
                Some(Value::Array(items)) => items.clone(),
                _ => vec![Value::Object(object)],
            }
        }
        other => vec![other],
    }
}

/// The first JSON object or array inside `text` (after any code fence's opening), parsed as is
/// or with trailing commas removed.
fn extract_json(text: &str) -> Option<Value> {
    let body = strip_fence(text);
    let mut search = 0;
    while let Some(offset) = body[search..].find(['{', '[']) {
        let start = search + offset;
        if let Some(end) = matching_close(&body[start..]) {
            let candidate = &body[start..start + end];
            if let Ok(value) = serde_json::from_str(candidate) {
                return Some(value);
            }
            if let Ok(value) = serde_json::from_str(&remove_trailing_commas(candidate)) {
                return Some(value);
            }
        }
        search = start + 1;
    }
    None
}

/// The text inside the first ```` ``` ```` fence (language tag dropped), or `text` itself.
fn strip_fence(text: &str) -> &str {
    let Some(open) = text.find("```") else {
        return text;
    };
    let after = &text[open + 3..];
    // The language tag runs to the end of the fence's line.
    let body = after.find('\n').map_or(after, |nl| &after[nl + 1..]);
    body.find("```").map_or(body, |close| &body[..close])
}

/// The length of the JSON value starting at `text[0]` (`{` or `[`) up to its matching closer,
/// brackets inside strings ignored; `None` when it never closes.
fn matching_close(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '{' | '[' => depth += 1,
            '}' | ']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

/// `[1, 2,]` → `[1, 2]`, `{"a": 1,}` → `{"a": 1}`; commas inside strings are kept.
fn remove_trailing_commas(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let mut in_string = false;
    let mut escaped = false;
    let chars: Vec<char> = json.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
        } else if c == ',' {
            let next = chars[i + 1..].iter().find(|c| !c.is_whitespace());
            if matches!(next, Some('}' | ']')) {
                continue;
            }
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    fn qa(question: &str, answer: &str) -> Value {
        json!({"qa_pair": {"question": question, "thought_process": [], "answer": answer,
            "related_concepts": []}})
    }

    #[test]
    fn clean_json_is_not_a_repair() {
        let reply = r#"[{"qa_pair": {"question": "Q1", "thought_process": [], "answer": "A1", "related_concepts": []}}]"#;
        let parsed = parse_teacher_reply(SynthFormat::Teaching, reply).unwrap();
        assert_eq!(parsed.records, [qa("Q1", "A1")]);
        assert!(!parsed.repaired);
    }

    #[test]
    fn fenced_json_with_prose_and_trailing_commas_is_repaired() {
        let reply = "Sure! Here you go:\n```json\n{\"qa_pairs\": [\n  {\"question\": \"Q1\", \"answer\": \"A, [1]\",},\n  {\"question\": \"Q2\", \"answer\": \"A2\"},\n]}\n```\nHope it helps.";
        let parsed = parse_teacher_reply(SynthFormat::Teaching, reply).unwrap();
        assert_eq!(parsed.records, [qa("Q1", "A, [1]"), qa("Q2", "A2")]);
        assert!(parsed.repaired);
    }

    #[test]
    fn json_after_prose_without_fences_is_found() {
        let reply = "The pair is {not json} then {\"instruction\": \"I\", \"input\": \"\", \"output\": \"O\"} ok";
        let parsed = parse_teacher_reply(SynthFormat::Alpaca, reply).unwrap();
        assert_eq!(
            parsed.records,
            [json!({"instruction": "I", "input": "", "output": "O"})]
        );
    }

    #[test]
    fn duplicates_are_dropped_and_bad_items_skipped() {
        let reply = r#"[{"question": "Q", "answer": "A"}, {"question": "Q", "answer": "A"}, {"question": "only"}]"#;
        let parsed = parse_teacher_reply(SynthFormat::Teaching, reply).unwrap();
        assert_eq!(parsed.records, [qa("Q", "A")]);
        assert!(parsed.repaired);
    }

    #[test]
    fn unusable_replies_say_why() {
        assert_eq!(
            parse_teacher_reply(SynthFormat::Teaching, "  "),
            Err(RepairError::Empty)
        );
        assert_eq!(
            parse_teacher_reply(SynthFormat::Teaching, "I cannot help with that."),
            Err(RepairError::NoStructure)
        );
        let err = parse_teacher_reply(SynthFormat::Teaching, r#"{"question": "Q"}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no item fits the teaching format: no `answer`"
        );
        // Truncated JSON (a reply cut by max_tokens) is not guessed at.
        let err = parse_teacher_reply(
            SynthFormat::Teaching,
            r#"{"qa_pair": {"question": "Q", "ans"#,
        );
        assert_eq!(err, Err(RepairError::NoStructure));
    }
}

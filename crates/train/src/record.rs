//! Training records: one JSON object per line, in any of six formats detected by their keys.

use serde_json::{Map, Value};
use switchboard_engine::ChatMessage;

/// The formats a record can be in, named by the key that identifies them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordFormat {
    /// `{instruction, input, output}` (input optional).
    Alpaca,
    /// `{conversations: [{from, value}]}`.
    ShareGpt,
    /// `{messages: [{role, content}]}`.
    OpenAi,
    /// `{qa_pair: {question, thought_process: [..], answer, related_concepts: [..]}}`.
    TeachingQa,
    /// `{dialogue: [{role: teacher|student, content}]}`; the teacher is the assistant.
    Dialogue,
    /// `{text}`: plain text for pre-training, every token trained.
    Text,
}

/// A record turned into what the model sees, before tokenization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Example {
    /// A conversation; the loss covers the assistant messages only.
    Chat(Vec<ChatMessage>),
    /// Raw text; the loss covers every token.
    Text(String),
}

type Parsed = std::result::Result<Example, String>;

/// Detects the format of one JSONL line and converts it. The error says what is wrong with the
/// record, for the caller to prefix with file and line.
pub fn parse_record(line: &str) -> std::result::Result<(RecordFormat, Example), String> {
    let value: Value = serde_json::from_str(line).map_err(|e| format!("invalid JSON: {e}"))?;
    let Value::Object(record) = value else {
        return Err("a record must be a JSON object".into());
    };
    let format = detect(&record)?;
    let example = match format {
        RecordFormat::Alpaca => alpaca(&record),
        RecordFormat::ShareGpt => sharegpt(&record),
        RecordFormat::OpenAi => openai(&record),
        RecordFormat::TeachingQa => teaching_qa(&record),
        RecordFormat::Dialogue => dialogue(&record),
        RecordFormat::Text => text(&record),
    }?;
    if let Example::Chat(messages) = &example {
        if !messages.iter().any(|m| m.role == "assistant") {
            return Err("the conversation has no assistant message to learn from".into());
        }
    }
    Ok((format, example))
}

fn detect(record: &Map<String, Value>) -> std::result::Result<RecordFormat, String> {
    let has = |key: &str| record.contains_key(key);
    Ok(if has("messages") {
        RecordFormat::OpenAi
    } else if has("conversations") {
        RecordFormat::ShareGpt
    } else if has("qa_pair") {
        RecordFormat::TeachingQa
    } else if has("dialogue") {
        RecordFormat::Dialogue
    } else if has("instruction") || has("output") {
        RecordFormat::Alpaca
    } else if has("text") {
        RecordFormat::Text
    } else {
        let keys: Vec<&str> = record.keys().map(String::as_str).collect();
        return Err(format!(
            "unknown record format (keys {keys:?}); expected one of: instruction/input/output, \
             conversations, messages, qa_pair, dialogue, text"
        ));
    })
}

/// A required string field.
fn string<'a>(obj: &'a Map<String, Value>, key: &str) -> std::result::Result<&'a str, String> {
    match obj.get(key) {
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(format!("`{key}` must be a string, not {}", kind(other))),
        None => Err(format!("missing `{key}`")),
    }
}

fn optional_string<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
) -> std::result::Result<Option<&'a str>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => string(obj, key).map(Some),
    }
}

fn array<'a>(obj: &'a Map<String, Value>, key: &str) -> std::result::Result<&'a [Value], String> {
    match obj.get(key) {
        Some(Value::Array(items)) => Ok(items),
        Some(other) => Err(format!("`{key}` must be an array, not {}", kind(other))),
        None => Err(format!("missing `{key}`")),
    }
}

fn object<'a>(value: &'a Value, what: &str) -> std::result::Result<&'a Map<String, Value>, String> {
    value
        .as_object()
        .ok_or_else(|| format!("{what} must be an object, not {}", kind(value)))
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn alpaca(record: &Map<String, Value>) -> Parsed {
    let instruction = string(record, "instruction")?;
    let output = string(record, "output")?;
    let mut prompt = instruction.to_string();
    if let Some(input) = optional_string(record, "input")?.filter(|s| !s.trim().is_empty()) {
        prompt.push_str("\n\n");
        prompt.push_str(input);
    }
    let mut messages = Vec::with_capacity(3);
    if let Some(system) = optional_string(record, "system")?.filter(|s| !s.is_empty()) {
        messages.push(ChatMessage::new("system", system));
    }
    messages.push(ChatMessage::new("user", prompt));
    messages.push(ChatMessage::new("assistant", output));
    Ok(Example::Chat(messages))
}

fn sharegpt(record: &Map<String, Value>) -> Parsed {
    let turns = array(record, "conversations")?;
    let mut messages = Vec::with_capacity(turns.len());
    for (i, turn) in turns.iter().enumerate() {
        let turn = object(turn, &format!("conversations[{i}]"))?;
        let from = string(turn, "from").map_err(|e| format!("conversations[{i}]: {e}"))?;
        let role = match from {
            "human" | "user" => "user",
            "gpt" | "assistant" | "chatgpt" | "bard" | "model" => "assistant",
            "system" => "system",
            other => return Err(format!("conversations[{i}]: unknown speaker {other:?}")),
        };
        let value = string(turn, "value").map_err(|e| format!("conversations[{i}]: {e}"))?;
        messages.push(ChatMessage::new(role, value));
    }
    Ok(Example::Chat(messages))
}

fn openai(record: &Map<String, Value>) -> Parsed {
    let items = array(record, "messages")?;
    let mut messages = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let item = object(item, &format!("messages[{i}]"))?;
        let role = match string(item, "role").map_err(|e| format!("messages[{i}]: {e}"))? {
            "developer" | "system" => "system",
            role @ ("user" | "assistant") => role,
            other => return Err(format!("messages[{i}]: unsupported role {other:?}")),
        };
        let content = match item.get("content") {
            Some(Value::String(s)) => s.clone(),
            // The array form: text parts joined; other parts (images...) cannot be trained on.
            Some(Value::Array(parts)) => {
                let mut text = String::new();
                for part in parts {
                    match part.get("text").and_then(Value::as_str) {
                        Some(t) => text.push_str(t),
                        None => return Err(format!("messages[{i}]: a content part has no text")),
                    }
                }
                text
            }
            _ => return Err(format!("messages[{i}]: missing or non-text `content`")),
        };
        messages.push(ChatMessage::new(role, content));
    }
    Ok(Example::Chat(messages))
}

fn strings(obj: &Map<String, Value>, key: &str) -> std::result::Result<Vec<String>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("`{key}` must hold strings, not {}", kind(v)))
            })
            .collect(),
        Some(other) => Err(format!("`{key}` must be an array, not {}", kind(other))),
    }
}

/// The assistant's side of a teaching QA pair: numbered reasoning steps, the answer, then the
/// related concepts.
pub fn render_teaching_answer(thoughts: &[String], answer: &str, related: &[String]) -> String {
    let mut out = String::new();
    if !thoughts.is_empty() {
        out.push_str("Let's reason step by step.\n");
        for (i, step) in thoughts.iter().enumerate() {
            out.push_str(&format!("{}. {}\n", i + 1, step.trim()));
        }
        out.push('\n');
    }
    out.push_str("Answer: ");
    out.push_str(answer.trim());
    if !related.is_empty() {
        out.push_str("\n\nRelated concepts: ");
        out.push_str(&related.join(", "));
    }
    out
}

fn teaching_qa(record: &Map<String, Value>) -> Parsed {
    let qa = object(record.get("qa_pair").unwrap_or(&Value::Null), "`qa_pair`")?;
    let question = string(qa, "question").map_err(|e| format!("qa_pair: {e}"))?;
    let answer = string(qa, "answer").map_err(|e| format!("qa_pair: {e}"))?;
    let thoughts = strings(qa, "thought_process").map_err(|e| format!("qa_pair: {e}"))?;
    let related = strings(qa, "related_concepts").map_err(|e| format!("qa_pair: {e}"))?;
    Ok(Example::Chat(vec![
        ChatMessage::new("user", question),
        ChatMessage::new(
            "assistant",
            render_teaching_answer(&thoughts, answer, &related),
        ),
    ]))
}

fn dialogue(record: &Map<String, Value>) -> Parsed {
    let turns = array(record, "dialogue")?;
    let mut messages = Vec::with_capacity(turns.len());
    for (i, turn) in turns.iter().enumerate() {
        let turn = object(turn, &format!("dialogue[{i}]"))?;
        let role = match string(turn, "role").map_err(|e| format!("dialogue[{i}]: {e}"))? {
            "teacher" | "assistant" => "assistant",
            "student" | "user" => "user",
            "system" => "system",
            other => return Err(format!("dialogue[{i}]: unknown role {other:?}")),
        };
        let content = string(turn, "content").map_err(|e| format!("dialogue[{i}]: {e}"))?;
        messages.push(ChatMessage::new(role, content));
    }
    Ok(Example::Chat(messages))
}

fn text(record: &Map<String, Value>) -> Parsed {
    let text = string(record, "text")?;
    if text.is_empty() {
        return Err("`text` is empty".into());
    }
    Ok(Example::Text(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(line: &str) -> (RecordFormat, Vec<(String, String)>) {
        let (format, example) = parse_record(line).expect("valid record");
        let Example::Chat(messages) = example else {
            panic!("not a chat: {line}")
        };
        (
            format,
            messages.into_iter().map(|m| (m.role, m.content)).collect(),
        )
    }

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(r, c)| (r.to_string(), c.to_string()))
            .collect()
    }

    #[test]
    fn every_format_is_detected_and_converted() {
        assert_eq!(
            chat(r#"{"instruction": "Add", "input": "2 and 3", "output": "5"}"#),
            (
                RecordFormat::Alpaca,
                pairs(&[("user", "Add\n\n2 and 3"), ("assistant", "5")])
            )
        );
        assert_eq!(
            chat(
                r#"{"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]}"#
            ),
            (
                RecordFormat::ShareGpt,
                pairs(&[("user", "hi"), ("assistant", "hello")])
            )
        );
        assert_eq!(
            chat(
                r#"{"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": [{"type": "text", "text": "q"}]}, {"role": "assistant", "content": "a"}]}"#
            ),
            (
                RecordFormat::OpenAi,
                pairs(&[("system", "be brief"), ("user", "q"), ("assistant", "a")])
            )
        );
        assert_eq!(
            chat(r#"{"qa_pair": {"question": "Why?", "thought_process": ["first", "second"], "answer": "Because.", "related_concepts": ["x", "y"]}}"#),
            (
                RecordFormat::TeachingQa,
                pairs(&[
                    ("user", "Why?"),
                    (
                        "assistant",
                        "Let's reason step by step.\n1. first\n2. second\n\nAnswer: Because.\n\nRelated concepts: x, y"
                    )
                ])
            )
        );
        assert_eq!(
            chat(
                r#"{"dialogue": [{"role": "student", "content": "help"}, {"role": "teacher", "content": "sure"}]}"#
            ),
            (
                RecordFormat::Dialogue,
                pairs(&[("user", "help"), ("assistant", "sure")])
            )
        );
        assert_eq!(
            parse_record(r#"{"text": "plain words"}"#).expect("text"),
            (RecordFormat::Text, Example::Text("plain words".into()))
        );
    }

    #[test]
    fn bad_records_say_what_is_wrong() {
        for (line, needle) in [
            ("not json", "invalid JSON"),
            ("[1]", "JSON object"),
            (r#"{"prompt": "x"}"#, "unknown record format"),
            (r#"{"instruction": "x"}"#, "missing `output`"),
            (
                r#"{"instruction": "x", "output": 3}"#,
                "`output` must be a string",
            ),
            (
                r#"{"conversations": [{"from": "robot", "value": "x"}]}"#,
                "unknown speaker",
            ),
            (
                r#"{"messages": [{"role": "user", "content": "x"}]}"#,
                "no assistant message",
            ),
            (
                r#"{"messages": [{"role": "tool", "content": "x"}]}"#,
                "unsupported role",
            ),
            (
                r#"{"qa_pair": {"question": "x"}}"#,
                "qa_pair: missing `answer`",
            ),
            (
                r#"{"dialogue": [{"role": "parent", "content": "x"}]}"#,
                "unknown role",
            ),
            (r#"{"text": ""}"#, "empty"),
        ] {
            let err = parse_record(line).expect_err(line);
            assert!(
                err.contains(needle),
                "{line}: {err} should mention {needle}"
            );
        }
    }
}

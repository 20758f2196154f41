//! `data convert`: records into any of the six formats, keeping what the trainer sees.
//!
//! Every converted record is read back with the trainer's own reader and compared with the
//! original before it is written: a conversation (or text) converts only when the target holds
//! it exactly. Otherwise the record is skipped and reported with its line and the reason (or,
//! strictly, the run fails). What each target holds:
//!
//! * Alpaca: an optional system message, one user message, one assistant message.
//! * ShareGPT, OpenAI, dialogue: any conversation of system, user and assistant messages
//!   (`human`/`gpt`, `student`/`teacher`).
//! * Teaching QA: one user message and one assistant reply laid out as a teaching answer (see
//!   [`super::teaching`]); a system message or a plain reply does not fit.
//! * Text: plain text as is; a conversation in the layout of [`super::text_layout`] (which then
//!   trains on every token, headers and user turns included). Text converts to a chat format
//!   only when it is in that layout.
//!
//! Keys that are not part of the source format (`id`, `domain`, `source`, `chunk_id`, ...) are
//! carried over in their places; one that the target format would read is refused.

use std::path::Path;

use serde_json::{json, Map, Value};
use switchboard_engine::ChatMessage;
use switchboard_train::{parse_record, Example, RecordFormat};

use super::teaching::parse_teaching_answer;
use super::text_layout::{chat_to_text, text_to_chat};
use super::{format_name, read_records, write_objects, RecordError, Result};

/// The keys a format reads.
fn format_keys(format: RecordFormat) -> &'static [&'static str] {
    match format {
        RecordFormat::Alpaca => &["instruction", "input", "output", "system"],
        RecordFormat::ShareGpt => &["conversations"],
        RecordFormat::OpenAi => &["messages"],
        RecordFormat::TeachingQa => &["qa_pair"],
        RecordFormat::Dialogue => &["dialogue"],
        RecordFormat::Text => &["text"],
    }
}

/// Converts one record (its raw object, detected format and what the trainer sees) into
/// `target`. `Err` says why the target cannot hold it.
pub fn convert_record(
    object: &Map<String, Value>,
    format: RecordFormat,
    example: &Example,
    target: RecordFormat,
) -> std::result::Result<Map<String, Value>, String> {
    // What the converted record must read back as.
    let (body, expected) = match (example, target) {
        (Example::Text(text), RecordFormat::Text) => {
            (json!({ "text": text }), Example::Text(text.clone()))
        }
        (Example::Chat(messages), RecordFormat::Text) => {
            let text = chat_to_text(messages)?;
            (json!({ "text": text }), Example::Text(text))
        }
        (Example::Text(text), _) => {
            let messages = text_to_chat(text).ok_or_else(|| {
                "plain text is not a conversation in the role-header layout \
                 (<|user|> / <|assistant|> lines)"
                    .to_string()
            })?;
            (chat_body(&messages, target)?, Example::Chat(messages))
        }
        (Example::Chat(messages), _) => (chat_body(messages, target)?, example.clone()),
    };
    let Value::Object(body) = body else {
        return Err("internal: a converted body is not an object".into());
    };
    let out = with_metadata(object, format, body, target)?;
    let line = serde_json::to_string(&out).map_err(|e| e.to_string())?;
    match parse_record(&line) {
        Ok((got_format, got)) if got_format == target && got == expected => Ok(out),
        Ok((got_format, _)) if got_format != target => Err(format!(
            "the converted record reads as {} (a metadata key decides its format)",
            format_name(got_format)
        )),
        Ok(_) => Err(format!(
            "{} cannot hold this record exactly (the trainer would see something else)",
            format_name(target)
        )),
        Err(reason) => Err(format!("the converted record is not valid: {reason}")),
    }
}

/// The target format's own keys for a conversation.
fn chat_body(messages: &[ChatMessage], target: RecordFormat) -> std::result::Result<Value, String> {
    let roles: Vec<&str> = messages.iter().map(|m| m.role.as_str()).collect();
    Ok(match target {
        RecordFormat::Alpaca => {
            let (system, rest) = match messages.split_first() {
                Some((first, rest)) if first.role == "system" => (Some(first), rest),
                _ => (None, messages),
            };
            let [user, assistant] = rest else {
                return Err(format!(
                    "alpaca holds one instruction and one output, not a conversation of {roles:?}"
                ));
            };
            if user.role != "user" || assistant.role != "assistant" {
                return Err(format!(
                    "alpaca holds a user instruction then an output, not {roles:?}"
                ));
            }
            let mut body = json!({
                "instruction": user.content,
                "input": "",
                "output": assistant.content,
            });
            if let (Some(system), Some(map)) = (system, body.as_object_mut()) {
                map.insert("system".into(), Value::String(system.content.clone()));
            }
            body
        }
        RecordFormat::ShareGpt => {
            let turns: Vec<Value> = messages
                .iter()
                .map(|m| {
                    let from = match m.role.as_str() {
                        "user" => "human",
                        "assistant" => "gpt",
                        other => other,
                    };
                    json!({ "from": from, "value": m.content })
                })
                .collect();
            json!({ "conversations": turns })
        }
        RecordFormat::OpenAi => {
            let items: Vec<Value> = messages
                .iter()
                .map(|m| json!({ "role": m.role, "content": m.content }))
                .collect();
            json!({ "messages": items })
        }
        RecordFormat::Dialogue => {
            let turns: Vec<Value> = messages
                .iter()
                .map(|m| {
                    let role = match m.role.as_str() {
                        "user" => "student",
                        "assistant" => "teacher",
                        other => other,
                    };
                    json!({ "role": role, "content": m.content })
                })
                .collect();
            json!({ "dialogue": turns })
        }
        RecordFormat::TeachingQa => {
            let [user, assistant] = messages else {
                return Err(format!(
                    "teaching QA holds one question and one answer, not {roles:?}"
                ));
            };
            if user.role != "user" || assistant.role != "assistant" {
                return Err(format!(
                    "teaching QA holds a user question then an answer, not {roles:?}"
                ));
            }
            let parts = parse_teaching_answer(&assistant.content).ok_or_else(|| {
                "the answer is not in the teaching layout (\"Let's reason step by step.\" with \
                 numbered steps, \"Answer: ...\", \"Related concepts: ...\"), so teaching QA \
                 would render it differently"
                    .to_string()
            })?;
            json!({ "qa_pair": {
                "question": user.content,
                "thought_process": parts.thought_process,
                "answer": parts.answer,
                "related_concepts": parts.related_concepts,
            }})
        }
        RecordFormat::Text => return Err("internal: text is not a chat format".into()),
    })
}

/// The source's metadata around the target's keys: keys before the source's first format key
/// stay in front, the target's keys take its place, the rest follow.
fn with_metadata(
    object: &Map<String, Value>,
    source: RecordFormat,
    body: Map<String, Value>,
    target: RecordFormat,
) -> std::result::Result<Map<String, Value>, String> {
    let source_keys = format_keys(source);
    let target_keys = format_keys(target);
    let mut out = Map::new();
    let mut body = Some(body);
    for (key, value) in object {
        if source_keys.contains(&key.as_str()) {
            if let Some(body) = body.take() {
                out.extend(body);
            }
            continue;
        }
        if target_keys.contains(&key.as_str()) {
            return Err(format!(
                "metadata key `{key}` is a key of the {} format",
                format_name(target)
            ));
        }
        out.insert(key.clone(), value.clone());
    }
    if let Some(body) = body {
        out.extend(body);
    }
    Ok(out)
}

/// A record that was not converted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Skipped {
    /// 1-based line in the input.
    pub line: usize,
    /// Why the target cannot hold it.
    pub reason: String,
}

/// What a conversion did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConvertReport {
    /// Records read.
    pub records: usize,
    /// Records written.
    pub converted: usize,
    /// Records the target cannot hold.
    pub skipped: Vec<Skipped>,
    /// Input records per source format.
    pub by_format: std::collections::BTreeMap<&'static str, usize>,
    /// The target format.
    pub target: &'static str,
}

/// Converts every record of `input` into `target` and writes them to `output` atomically.
/// Records the target cannot hold are skipped and reported, or with `strict` fail the run
/// (nothing is written then). A line the trainer cannot read fails the run.
pub fn convert_file(
    input: &Path,
    output: &Path,
    target: RecordFormat,
    strict: bool,
) -> Result<ConvertReport> {
    let records = read_records(input)?;
    let mut converted = Vec::with_capacity(records.len());
    let mut skipped = Vec::new();
    let mut by_format = std::collections::BTreeMap::new();
    for record in &records {
        *by_format.entry(format_name(record.format)).or_default() += 1;
        match convert_record(&record.object, record.format, &record.example, target) {
            Ok(object) => converted.push(object),
            Err(reason) if strict => {
                return Err(RecordError::NotRepresentable {
                    path: input.to_path_buf(),
                    line: record.line,
                    target: format_name(target),
                    reason,
                })
            }
            Err(reason) => {
                tracing::debug!(line = record.line, %reason, "record skipped");
                skipped.push(Skipped {
                    line: record.line,
                    reason,
                });
            }
        }
    }
    write_objects(output, &converted)?;
    Ok(ConvertReport {
        records: records.len(),
        converted: converted.len(),
        skipped,
        by_format,
        target: format_name(target),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn convert(line: &str, target: RecordFormat) -> std::result::Result<Value, String> {
        let (format, example) = parse_record(line).unwrap();
        let Value::Object(object) = serde_json::from_str(line).unwrap() else {
            panic!()
        };
        convert_record(&object, format, &example, target).map(Value::Object)
    }

    #[test]
    fn metadata_keeps_its_place_and_clashes_are_refused() {
        let out = convert(
            r#"{"id": 1, "instruction": "q", "input": "", "output": "a", "domain": "math"}"#,
            RecordFormat::OpenAi,
        )
        .unwrap();
        assert_eq!(
            out.to_string(),
            r#"{"id":1,"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"a"}],"domain":"math"}"#
        );
        let err = convert(
            r#"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "text": "note"}"#,
            RecordFormat::Text,
        )
        .unwrap_err();
        assert!(err.contains("metadata key `text`"), "{err}");
    }

    #[test]
    fn what_a_target_cannot_hold_is_explained() {
        let multi = r#"{"messages": [{"role": "user", "content": "1"}, {"role": "assistant", "content": "2"}, {"role": "user", "content": "3"}, {"role": "assistant", "content": "4"}]}"#;
        assert!(convert(multi, RecordFormat::Alpaca)
            .unwrap_err()
            .contains("alpaca"));
        assert!(convert(multi, RecordFormat::TeachingQa).is_err());
        assert!(convert(multi, RecordFormat::ShareGpt).is_ok());
        let system = r#"{"instruction": "q", "output": "Answer: a", "system": "s"}"#;
        assert!(convert(system, RecordFormat::TeachingQa).is_err());
        let plain = r#"{"instruction": "q", "output": "a"}"#;
        let err = convert(plain, RecordFormat::TeachingQa).unwrap_err();
        assert!(err.contains("teaching layout"), "{err}");
        let prose = r#"{"text": "just prose"}"#;
        assert!(convert(prose, RecordFormat::Dialogue)
            .unwrap_err()
            .contains("layout"));
        assert!(convert(prose, RecordFormat::Text).is_ok());
    }

    #[test]
    fn a_chat_becomes_layout_text_and_comes_back() {
        let line = r#"{"conversations": [{"from": "system", "value": "s"}, {"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]}"#;
        let text = convert(line, RecordFormat::Text).unwrap();
        assert_eq!(text["text"], "<|system|>\ns\n<|user|>\nq\n<|assistant|>\na");
        let back = convert(&text.to_string(), RecordFormat::ShareGpt).unwrap();
        assert_eq!(parse_record(&back.to_string()), parse_record(line));
    }
}

//! The four record formats `synth` writes, and the check every record passes before it is
//! written: shaped to the format here, then read back by the trainer's own reader
//! ([`switchboard_train::parse_record`]) so nothing is written that training would refuse.

use serde_json::{json, Map, Value};
use switchboard_train::{parse_record, RecordFormat};

/// Which shape the teacher's records take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SynthFormat {
    /// `{"qa_pair": {"question", "thought_process": [..], "answer", "related_concepts": [..]}}`.
    #[default]
    Teaching,
    /// `{"instruction", "input", "output"}`.
    Alpaca,
    /// `{"messages": [{"role": "user"|"assistant", "content"}]}`.
    OpenAi,
    /// `{"dialogue": [{"role": "teacher"|"student", "content"}]}`.
    Dialogue,
}

impl SynthFormat {
    /// Every format, in the order the CLI lists them.
    pub const ALL: [SynthFormat; 4] = [
        SynthFormat::Teaching,
        SynthFormat::Alpaca,
        SynthFormat::OpenAi,
        SynthFormat::Dialogue,
    ];

    /// The CLI name: `teaching`, `alpaca`, `openai`, `dialogue`.
    pub fn name(self) -> &'static str {
        match self {
            SynthFormat::Teaching => "teaching",
            SynthFormat::Alpaca => "alpaca",
            SynthFormat::OpenAi => "openai",
            SynthFormat::Dialogue => "dialogue",
        }
    }

    /// The trainer's name for the same shape.
    fn record_format(self) -> RecordFormat {
        match self {
            SynthFormat::Teaching => RecordFormat::TeachingQa,
            SynthFormat::Alpaca => RecordFormat::Alpaca,
            SynthFormat::OpenAi => RecordFormat::OpenAi,
            SynthFormat::Dialogue => RecordFormat::Dialogue,
        }
    }
}

impl std::str::FromStr for SynthFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SynthFormat::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("unknown format {s:?} (teaching, alpaca, openai, dialogue)"))
    }
}

impl std::fmt::Display for SynthFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Shapes one item of a teacher's reply into a record of `format`, then checks it with the
/// trainer's reader. Returns the record and whether it had to be reshaped (a bare
/// `{question, answer}`, a string where a list belongs...); `Err` says why it is unusable.
pub fn normalize(format: SynthFormat, item: &Value) -> Result<(Value, bool), String> {
    let Value::Object(object) = item else {
        return Err(format!("expected an object, got {}", kind(item)));
    };
    let (record, reshaped) = match format {
        SynthFormat::Teaching => teaching(object)?,
        SynthFormat::Alpaca => alpaca(object)?,
        SynthFormat::OpenAi => openai(object)?,
        SynthFormat::Dialogue => dialogue(object)?,
    };
    check(format, &record)?;
    Ok((record, reshaped))
}

/// Whether `record` is what the trainer reads as `format` (extra keys allowed).
pub fn check(format: SynthFormat, record: &Value) -> Result<(), String> {
    let (found, _) = parse_record(&record.to_string())?;
    if found != format.record_format() {
        return Err(format!("read as {found:?}, not {format}"));
    }
    Ok(())
}

fn teaching(object: &Map<String, Value>) -> Result<(Value, bool), String> {
    let (qa, nested) = match object.get("qa_pair") {
        Some(Value::Object(qa)) => (qa, true),
        Some(other) => return Err(format!("`qa_pair` is {}, not an object", kind(other))),
        None => (object, false),
    };
    let question = text_field(qa, &["question", "q", "instruction"])?;
    let answer = text_field(qa, &["answer", "a", "output", "response"])?;
    let (thoughts, thoughts_fixed) =
        list_field(qa, &["thought_process", "thoughts", "steps", "reasoning"]);
    let (related, related_fixed) = list_field(qa, &["related_concepts", "concepts", "related"]);
    let exact = nested
        && qa.contains_key("question")
        && qa.contains_key("answer")
        && qa.contains_key("thought_process")
        && qa.contains_key("related_concepts");
    let record = json!({"qa_pair": {
        "question": question,
        "thought_process": thoughts,
        "answer": answer,
        "related_concepts": related,
    }});
    Ok((record, !exact || thoughts_fixed || related_fixed))
}

fn alpaca(object: &Map<String, Value>) -> Result<(Value, bool), String> {
    let instruction = text_field(object, &["instruction", "question", "q"])?;
    let output = text_field(object, &["output", "answer", "response", "a"])?;
    let input = match object.get("input") {
        Some(Value::String(s)) => s.trim().to_string(),
        _ => String::new(),
    };
    let exact = ["instruction", "input", "output"]
        .iter()
        .all(|k| object.get(*k).is_some_and(Value::is_string));
    let record = json!({"instruction": instruction, "input": input, "output": output});
    Ok((record, !exact))
}

fn openai(object: &Map<String, Value>) -> Result<(Value, bool), String> {
    if let Some(messages) = object.get("messages") {
        let turns = turns(messages, "messages", |role| match role {
            "user" | "student" | "human" => Some("user"),
            "assistant" | "teacher" | "gpt" => Some("assistant"),
            "system" | "developer" => Some("system"),
            _ => None,
        })?;
        let reshaped = turns.1;
        return Ok((json!({"messages": turns.0}), reshaped));
    }
    let question = text_field(object, &["question", "instruction", "q"])?;
    let answer = text_field(object, &["answer", "output", "response", "a"])?;
    let record = json!({"messages": [
        {"role": "user", "content": question},
        {"role": "assistant", "content": answer},
    ]});
    Ok((record, true))
}

fn dialogue(object: &Map<String, Value>) -> Result<(Value, bool), String> {
    for key in ["dialogue", "messages", "conversation"] {
        if let Some(list) = object.get(key) {
            let turns = turns(list, key, |role| match role {
                "teacher" | "assistant" | "tutor" => Some("teacher"),
                "student" | "user" | "learner" => Some("student"),
                _ => None,
            })?;
            return Ok((json!({"dialogue": turns.0}), turns.1 || key != "dialogue"));
        }
    }
    let question = text_field(object, &["question", "instruction", "q"])?;
    let answer = text_field(object, &["answer", "output", "response", "a"])?;
    let record = json!({"dialogue": [
        {"role": "student", "content": question},
        {"role": "teacher", "content": answer},
    ]});
    Ok((record, true))
}

/// A list of `{role, content}` turns with roles mapped by `role_of` (case-insensitive); also
/// whether any role had to be renamed.
fn turns(
    list: &Value,
    key: &str,
    role_of: impl Fn(&str) -> Option<&'static str>,
) -> Result<(Vec<Value>, bool), String> {
    let Value::Array(items) = list else {
        return Err(format!("`{key}` is {}, not a list", kind(list)));
    };
    let mut out = Vec::with_capacity(items.len());
    let mut renamed = false;
    for (i, item) in items.iter().enumerate() {
        let given = item.get("role").and_then(Value::as_str).unwrap_or_default();
        let role = role_of(&given.trim().to_ascii_lowercase())
            .ok_or_else(|| format!("`{key}[{i}]`: unknown role {given:?}"))?;
        renamed |= role != given;
        let content = item
            .get("content")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .ok_or_else(|| format!("`{key}[{i}]`: no text `content`"))?;
        out.push(json!({"role": role, "content": content}));
    }
    if out.is_empty() {
        return Err(format!("`{key}` is empty"));
    }
    Ok((out, renamed))
}

/// The first of `keys` holding a non-empty string (keys compared case-insensitively).
fn text_field(object: &Map<String, Value>, keys: &[&str]) -> Result<String, String> {
    for key in keys {
        let found = object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v);
        if let Some(Value::String(s)) = found {
            let s = s.trim();
            if !s.is_empty() {
                return Ok(s.to_string());
            }
        }
    }
    Err(format!("no `{}`", keys[0]))
}

/// The first of `keys` as a list of strings: a list is kept (non-strings dropped), a string
/// is split into lines or comma-separated items; absent is empty. Also whether it was changed.
fn list_field(object: &Map<String, Value>, keys: &[&str]) -> (Vec<String>, bool) {
    let found = keys.iter().find_map(|key| {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    });
    match found {
        None | Some(Value::Null) => (Vec::new(), false),
        Some(Value::Array(items)) => {
            let strings: Vec<String> = items
                .iter()
                .filter_map(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            let changed = strings.len() != items.len();
            (strings, changed)
        }
        Some(Value::String(s)) => (split_list(s), true),
        Some(_) => (Vec::new(), true),
    }
}

/// Splits a list written as text: one item per line (bullets and numbers removed), or, on a
/// single line, items separated by commas or semicolons.
pub(crate) fn split_list(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let items: Vec<String> = if lines.len() > 1 {
        lines.iter().map(|l| strip_bullet(l).to_string()).collect()
    } else {
        text.split([',', ';'])
            .map(|s| strip_bullet(s.trim()).to_string())
            .collect()
    };
    items
        .into_iter()
        .map(|s| s.trim().trim_end_matches('.').trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// `- x`, `* x`, `• x`, `1. x`, `2) x` → `x`.
pub(crate) fn strip_bullet(line: &str) -> &str {
    let line = line.trim_start();
    if let Some(rest) = line.strip_prefix(['-', '*', '•']) {
        return rest.trim_start();
    }
    let digits = line.chars().take_while(char::is_ascii_digit).count();
    if digits > 0 {
        let rest = &line[digits..];
        if let Some(rest) = rest.strip_prefix(['.', ')', ':']) {
            return rest.trim_start();
        }
    }
    line
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn exact_records_pass_unchanged_and_bare_pairs_are_reshaped() {
        let exact = json!({"qa_pair": {"question": "Why?", "thought_process": ["a"],
            "answer": "Because.", "related_concepts": ["b"]}});
        let (record, reshaped) = normalize(SynthFormat::Teaching, &exact).unwrap();
        assert_eq!(record, exact);
        assert!(!reshaped);

        let bare = json!({"question": "Why?", "answer": "Because.",
            "related_concepts": "light, water"});
        let (record, reshaped) = normalize(SynthFormat::Teaching, &bare).unwrap();
        assert!(reshaped);
        assert_eq!(
            record["qa_pair"]["related_concepts"],
            json!(["light", "water"])
        );
        assert_eq!(record["qa_pair"]["thought_process"], json!([]));

        for format in [
            SynthFormat::Alpaca,
            SynthFormat::OpenAi,
            SynthFormat::Dialogue,
        ] {
            let (record, _) = normalize(format, &bare).unwrap();
            check(format, &record).unwrap();
        }
    }

    #[test]
    fn unusable_items_say_why() {
        let err = normalize(SynthFormat::Teaching, &json!({"question": "Why?"})).unwrap_err();
        assert_eq!(err, "no `answer`");
        let err = normalize(SynthFormat::Dialogue, &json!({"dialogue": [{"role": "x"}]}));
        assert!(err.unwrap_err().contains("unknown role"));
        let err = normalize(SynthFormat::Alpaca, &json!([1])).unwrap_err();
        assert!(err.contains("a list"), "{err}");
        // OpenAI messages with no assistant turn: the trainer's reader refuses it.
        let only_user = json!({"messages": [{"role": "user", "content": "hi"}]});
        assert!(normalize(SynthFormat::OpenAi, &only_user).is_err());
    }

    #[test]
    fn text_lists_are_split() {
        assert_eq!(
            split_list("1. first\n2) second\n- third."),
            ["first", "second", "third"]
        );
        assert_eq!(split_list("a, b; c"), ["a", "b", "c"]);
        assert_eq!("alpaca".parse::<SynthFormat>(), Ok(SynthFormat::Alpaca));
        assert!("csv".parse::<SynthFormat>().is_err());
    }
}

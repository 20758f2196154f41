//! Labelled text: what small teachers write when asked for JSON. SmolLM2-135M-Instruct, asked
//! for `{"qa_pair": ...}`, answers `Question: ...\n\nAnswer: ...` (often the same pair several
//! times over). Lines starting with a known label (`Question:`, `Q1:`, `**Answer:**`,
//! `Steps:`, `Thought process:`, `Related concepts:`, `Teacher:`, `Student:` ...) open a field;
//! the lines after it belong to it. Fields are grouped into items shaped like JSON replies, so
//! [`super::schema::normalize`] treats both alike.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::{json, Value};

use super::schema::{split_list, SynthFormat};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Label {
    Question,
    Answer,
    Input,
    Steps,
    /// One numbered `Step 1:` line of a thought process.
    Step,
    Related,
    Teacher,
    Student,
}

/// A label at the start of a line, maybe bulleted, numbered, bold or a heading, maybe with a
/// number of its own (`Question 2:`, `Q2:`), then a colon and the first line of its text.
static LABEL: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^\s*(?:[#>*\-•]+\s*)?(?:\*\*|__)?\s*(?:\d+[.)]\s*)?(thought[ _]process|thoughts|thinking|reasoning|step[- ]by[- ]step|steps|step|related[ _]concepts|key[ _]concepts|concepts|question|instruction|answer|response|output|input|teacher|student|q|a)(?:\s*\d+)?\s*(?:\*\*|__)?\s*[:：]\s*(?:\*\*|__)?\s*(.*)$",
    )
    .ok()
});

fn label_of(name: &str) -> Label {
    let name = name.to_ascii_lowercase();
    match name.as_str() {
        "question" | "instruction" | "q" => Label::Question,
        "answer" | "response" | "output" | "a" => Label::Answer,
        "input" => Label::Input,
        "teacher" => Label::Teacher,
        "student" => Label::Student,
        "step" => Label::Step,
        _ if name.contains("concept") => Label::Related,
        _ => Label::Steps,
    }
}

/// The labelled fields of `text`, in order; text before the first label is dropped.
fn fields(text: &str) -> Vec<(Label, String)> {
    let Some(label) = LABEL.as_ref() else {
        return Vec::new();
    };
    let mut out: Vec<(Label, String)> = Vec::new();
    for line in text.lines() {
        if let Some(caps) = label.captures(line) {
            let name = caps.get(1).map_or("", |m| m.as_str());
            let rest = caps.get(2).map_or("", |m| m.as_str());
            out.push((label_of(name), rest.trim().to_string()));
        } else if let Some((_, body)) = out.last_mut() {
            body.push('\n');
            body.push_str(line);
        }
    }
    for (_, body) in &mut out {
        *body = body.trim().trim_matches('*').trim().to_string();
    }
    out
}

/// Items (`{question, answer, thought_process, related_concepts, input}` objects, or for the
/// dialogue format one `{dialogue: [...]}` when `Teacher:`/`Student:` turns are present) read
/// from labelled `text`; empty when none is complete.
pub fn parse(format: SynthFormat, text: &str) -> Vec<Value> {
    let fields = fields(text);
    let has_turns = fields
        .iter()
        .any(|(l, _)| matches!(l, Label::Teacher | Label::Student));
    if format == SynthFormat::Dialogue && has_turns {
        return dialogue(&fields).into_iter().collect();
    }
    pairs(&fields)
}

#[derive(Default)]
struct Pair {
    question: Option<String>,
    answer: Option<String>,
    input: Option<String>,
    steps: Vec<String>,
    related: Vec<String>,
}

impl Pair {
    fn into_item(self) -> Option<Value> {
        let question = self.question.filter(|q| !q.is_empty())?;
        let answer = self.answer.filter(|a| !a.is_empty())?;
        Some(json!({
            "question": question,
            "input": self.input.unwrap_or_default(),
            "thought_process": self.steps,
            "answer": answer,
            "related_concepts": self.related,
        }))
    }
}

/// Question/answer pairs: a question opens a pair; a second answer inside one pair, or a
/// question asked again (small models repeat themselves, the last time cut off by
/// `max_tokens`), is ignored.
fn pairs(fields: &[(Label, String)]) -> Vec<Value> {
    let mut items = Vec::new();
    let mut questions = std::collections::HashSet::new();
    let mut pair = Pair::default();
    for (label, body) in fields {
        match label {
            Label::Question | Label::Student => {
                if pair.question.is_some() {
                    push(&mut items, &mut questions, std::mem::take(&mut pair));
                }
                pair.question = Some(body.clone());
            }
            Label::Answer | Label::Teacher => {
                pair.answer.get_or_insert_with(|| body.clone());
            }
            Label::Input => pair.input = Some(body.clone()),
            Label::Steps => pair.steps = split_list(body),
            Label::Step => pair
                .steps
                .push(body.split_whitespace().collect::<Vec<_>>().join(" ")),
            Label::Related => pair.related = split_list(body),
        }
    }
    push(&mut items, &mut questions, pair);
    items
}

/// Adds `pair` unless incomplete or its question was seen (case and spacing aside).
fn push(items: &mut Vec<Value>, questions: &mut std::collections::HashSet<String>, pair: Pair) {
    let key = pair
        .question
        .as_deref()
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    if let Some(item) = pair.into_item() {
        if questions.insert(key) {
            items.push(item);
        }
    }
}

/// One dialogue of the `Teacher:`/`Student:` turns (questions count as the student's, answers
/// as the teacher's).
fn dialogue(fields: &[(Label, String)]) -> Option<Value> {
    let turns: Vec<Value> = fields
        .iter()
        .filter(|(_, body)| !body.is_empty())
        .filter_map(|(label, body)| {
            let role = match label {
                Label::Student | Label::Question => "student",
                Label::Teacher | Label::Answer => "teacher",
                _ => return None,
            };
            Some(json!({"role": role, "content": body}))
        })
        .collect();
    let has_teacher = turns.iter().any(|t| t["role"] == "teacher");
    (has_teacher).then(|| json!({ "dialogue": turns }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::repair::parse_teacher_reply;
    use super::*;

    /// What SmolLM2-135M-Instruct wrote for a photosynthesis chunk at temperature 0 (cut).
    const SMOLLM2: &str = "Question: What is the process of photosynthesis?\n\nAnswer: The process of photosynthesis is a complex biochemical reaction that occurs in the chloroplasts of plant cells.\n\nAnswer: 1.\n\nQuestion: What is the process of photosynthesis?\n\nAnswer: The process of photosynthesis is a complex biochemical reaction that occurs in the chloroplasts of plant cells.\n\nQuestion: What is the process of photo";

    #[test]
    fn smollm2_style_repeats_become_one_pair() {
        let parsed = parse_teacher_reply(SynthFormat::Teaching, SMOLLM2).unwrap();
        assert!(parsed.repaired);
        assert_eq!(parsed.records.len(), 1);
        let qa = &parsed.records[0]["qa_pair"];
        assert_eq!(qa["question"], "What is the process of photosynthesis?");
        assert!(qa["answer"].as_str().unwrap().ends_with("plant cells."));
    }

    #[test]
    fn steps_and_related_concepts_become_lists() {
        let reply = "Here is a pair.\n**Q1:** Why is the sky blue?\n**Thought process:**\n1. Sunlight has all colours.\n2. Blue scatters most.\n**A1:** Rayleigh scattering.\nRelated concepts: scattering, wavelength\n\nQuestion 2: What is light?\nAnswer 2: A wave.";
        let parsed = parse_teacher_reply(SynthFormat::Teaching, reply).unwrap();
        assert_eq!(parsed.records.len(), 2);
        let first = &parsed.records[0]["qa_pair"];
        assert_eq!(
            first["thought_process"],
            json!(["Sunlight has all colours", "Blue scatters most"])
        );
        assert_eq!(first["answer"], "Rayleigh scattering.");
        assert_eq!(
            first["related_concepts"],
            json!(["scattering", "wavelength"])
        );
        assert_eq!(parsed.records[1]["qa_pair"]["question"], "What is light?");
    }

    #[test]
    fn labelled_text_fits_every_format() {
        let reply = "Instruction: Name the pigment.\nInput: plants\nOutput: Chlorophyll.";
        let alpaca = parse_teacher_reply(SynthFormat::Alpaca, reply).unwrap();
        assert_eq!(
            alpaca.records,
            [
                json!({"instruction": "Name the pigment.", "input": "plants", "output": "Chlorophyll."})
            ]
        );
        let openai = parse_teacher_reply(SynthFormat::OpenAi, reply).unwrap();
        assert_eq!(openai.records[0]["messages"][1]["role"], "assistant");
        let turns = "Student: What is ATP?\nTeacher: The cell's energy currency.\nStudent: Thanks!";
        let dialogue = parse_teacher_reply(SynthFormat::Dialogue, turns).unwrap();
        assert_eq!(dialogue.records[0]["dialogue"].as_array().unwrap().len(), 3);
    }

    /// SmolLM2 on a history chunk: numbered steps after the answer, then the pair again, cut.
    #[test]
    fn numbered_steps_join_the_pair_and_a_repeated_question_is_dropped() {
        let reply = "Question: What was the French Revolution?\n\nAnswer: A historical event that began in 1789.\n\nStep 1: Identify the main topic of the text.\nThe French Revolution\n\nStep 2: Identify the main idea.\n\nQuestion: What was the French Revolution?\n\nAnswer: A historical event that began in";
        let parsed = parse_teacher_reply(SynthFormat::Teaching, reply).unwrap();
        assert_eq!(parsed.records.len(), 1);
        let qa = &parsed.records[0]["qa_pair"];
        assert_eq!(qa["answer"], "A historical event that began in 1789.");
        assert_eq!(
            qa["thought_process"],
            json!([
                "Identify the main topic of the text. The French Revolution",
                "Identify the main idea."
            ])
        );
    }

    #[test]
    fn a_question_without_an_answer_is_nothing() {
        let reply = "Question: What is the answer to the question \"What is photosynthesis?\"";
        assert!(parse(SynthFormat::Teaching, reply).is_empty());
    }
}

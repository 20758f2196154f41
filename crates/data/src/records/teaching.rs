//! The inverse of [`switchboard_train::render_teaching_answer`]: an assistant answer laid out
//! as
//!
//! ```text
//! Let's reason step by step.
//! 1. first step
//! 2. second step
//!
//! Answer: the answer
//!
//! Related concepts: a, b
//! ```
//!
//! back into its steps, answer and related concepts. The inverse is exact or nothing: a parse is
//! accepted only when rendering it again gives the same text, so a teaching QA record converted
//! from a chat trains on exactly the same answer. An answer without this layout (a plain reply)
//! has no inverse; rendering it as `answer` alone would add `Answer: ` in front of it, which the
//! model would then learn, so such a reply is reported as not representable instead.

use switchboard_train::render_teaching_answer;

/// The parts of a teaching answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeachingAnswer {
    /// The numbered reasoning steps (`thought_process`).
    pub thought_process: Vec<String>,
    /// The answer.
    pub answer: String,
    /// The related concepts.
    pub related_concepts: Vec<String>,
}

const STEPS_HEADER: &str = "Let's reason step by step.\n";
const ANSWER: &str = "Answer: ";
const RELATED: &str = "\n\nRelated concepts: ";

/// Parses a rendered teaching answer; `None` when `text` is not exactly what
/// [`render_teaching_answer`] writes for some parts.
pub fn parse_teaching_answer(text: &str) -> Option<TeachingAnswer> {
    let (thought_process, rest) = match text.strip_prefix(STEPS_HEADER) {
        Some(body) => {
            let end = body.find(&format!("\n\n{ANSWER}"))?;
            (steps(&body[..end])?, &body[end + 2..])
        }
        None => (Vec::new(), text),
    };
    let rest = rest.strip_prefix(ANSWER)?;
    // The related concepts come last and are a comma list, so the last marker is theirs.
    let (answer, related_concepts) = match rest.rfind(RELATED) {
        Some(at) => (
            &rest[..at],
            rest[at + RELATED.len()..]
                .split(", ")
                .map(str::to_string)
                .collect(),
        ),
        None => (rest, Vec::new()),
    };
    let parts = TeachingAnswer {
        thought_process,
        answer: answer.to_string(),
        related_concepts,
    };
    let again = render_teaching_answer(
        &parts.thought_process,
        &parts.answer,
        &parts.related_concepts,
    );
    (again == text).then_some(parts)
}

/// `1. a\n2. b` → `[a, b]`; a line not starting with the next number continues the step
/// before it (a step may span lines).
fn steps(block: &str) -> Option<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for line in block.split('\n') {
        let marker = format!("{}. ", out.len() + 1);
        match line.strip_prefix(&marker) {
            Some(step) => out.push(step.to_string()),
            None => {
                let last = out.last_mut()?;
                last.push('\n');
                last.push_str(line);
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn round_trip(thoughts: &[&str], answer: &str, related: &[&str]) {
        let thoughts: Vec<String> = thoughts.iter().map(|s| s.to_string()).collect();
        let related: Vec<String> = related.iter().map(|s| s.to_string()).collect();
        let text = render_teaching_answer(&thoughts, answer, &related);
        let parsed = parse_teaching_answer(&text).unwrap_or_else(|| panic!("{text:?}"));
        assert_eq!(
            render_teaching_answer(
                &parsed.thought_process,
                &parsed.answer,
                &parsed.related_concepts
            ),
            text
        );
        assert_eq!(parsed.thought_process, thoughts);
        assert_eq!(parsed.answer, answer);
        assert_eq!(parsed.related_concepts, related);
    }

    #[test]
    fn rendered_answers_parse_back() {
        round_trip(&["first", "second"], "Because.", &["x", "y"]);
        round_trip(&[], "Only an answer.", &[]);
        round_trip(&["one"], "Multi\nline\n\nanswer", &["c"]);
        round_trip(&["a step\nover two lines", "2. looks numbered"], "A", &[]);
        round_trip(&[], "A", &["solo"]);
        let ten: Vec<String> = (1..=10).map(|i| format!("step {i}")).collect();
        let refs: Vec<&str> = ten.iter().map(String::as_str).collect();
        round_trip(&refs, "done", &["p", "q", "r"]);
    }

    #[test]
    fn other_layouts_have_no_inverse() {
        assert_eq!(parse_teaching_answer("Just a plain reply."), None);
        assert_eq!(parse_teaching_answer("Answer:  padded "), None);
        assert_eq!(
            parse_teaching_answer("Let's reason step by step.\nno number\n\nAnswer: x"),
            None
        );
        assert_eq!(parse_teaching_answer(""), None);
    }
}

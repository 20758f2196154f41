//! The teacher's prompt: a minijinja template rendered per chunk, sent as one user message.
//!
//! Placeholders: `{{ chunk }}` (the chunk's text), `{{ n }}` (records wanted), `{{ source }}`,
//! `{{ id }}`, `{{ domain }}` (empty when unknown) and `{{ format }}`. An unknown placeholder is
//! an error rather than an empty string, so a typo does not silently send a blank prompt.

use std::path::Path;

use minijinja::{context, Environment, UndefinedBehavior};

use super::error::{Result, SynthError};
use super::schema::SynthFormat;

// The text comes first and the instruction after it: SmolLM2-135M-Instruct, asked this way,
// writes usable `Question:`/`Answer:` pairs; with the instruction first it mostly writes
// questions only. Larger teachers follow either order.
const TEACHING: &str = r#"Text{% if source %} (from {{ source }}){% endif %}:
{{ chunk }}

Write {{ n }} question{% if n != 1 %}s{% endif %} a student might ask about the text above, each with its answer. For each: the question, a step-by-step thought process, the answer, and related concepts.

Reply with JSON only, in this form:
{"qa_pairs": [{"question": "...", "thought_process": ["step 1", "step 2"], "answer": "...", "related_concepts": ["..."]}]}"#;

const ALPACA: &str = r#"Text{% if source %} (from {{ source }}){% endif %}:
{{ chunk }}

Write {{ n }} instruction{% if n != 1 %}s{% endif %} a student could be given about the text above, each with the ideal response.

Reply with JSON only, in this form:
[{"instruction": "...", "input": "", "output": "..."}]"#;

const OPENAI: &str = r#"Text{% if source %} (from {{ source }}){% endif %}:
{{ chunk }}

Write {{ n }} question{% if n != 1 %}s{% endif %} a user might ask about the text above, each with a helpful, correct answer.

Reply with JSON only, in this form:
[{"messages": [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}]}]"#;

const DIALOGUE: &str = r#"Text{% if source %} (from {{ source }}){% endif %}:
{{ chunk }}

Write {{ n }} short dialogue{% if n != 1 %}s{% endif %} in which a student asks about the text above and a teacher explains, step by step.

Reply with JSON only, in this form:
[{"dialogue": [{"role": "student", "content": "..."}, {"role": "teacher", "content": "..."}]}]"#;

/// The built-in template of `format`.
pub fn default_template(format: SynthFormat) -> &'static str {
    match format {
        SynthFormat::Teaching => TEACHING,
        SynthFormat::Alpaca => ALPACA,
        SynthFormat::OpenAi => OPENAI,
        SynthFormat::Dialogue => DIALOGUE,
    }
}

/// What one prompt is rendered from.
#[derive(Debug, Clone, Copy)]
pub struct PromptVars<'a> {
    /// The chunk's text.
    pub chunk: &'a str,
    /// The chunk's id.
    pub id: &'a str,
    /// The chunk's source file, when known.
    pub source: Option<&'a str>,
    /// The domain stamped on the records, when given.
    pub domain: Option<&'a str>,
    /// Records wanted.
    pub n: usize,
    /// The format asked for.
    pub format: SynthFormat,
}

/// A parsed prompt template.
#[derive(Debug)]
pub struct PromptTemplate {
    env: Environment<'static>,
    name: String,
}

impl PromptTemplate {
    /// The built-in template for `format`.
    pub fn builtin(format: SynthFormat) -> Result<Self> {
        Self::from_source(
            format!("built-in {format}"),
            default_template(format).to_string(),
        )
    }

    /// The template in `path`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let source = std::fs::read_to_string(path).map_err(|source| SynthError::TemplateFile {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_source(path.display().to_string(), source)
    }

    /// A template from text; `name` names it in errors.
    pub fn from_source(name: String, source: String) -> Result<Self> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Prompts keep their trailing newline as written.
        env.set_keep_trailing_newline(true);
        env.add_template_owned("prompt", source)
            .map_err(|e| SynthError::Template {
                name: name.clone(),
                reason: e.to_string(),
            })?;
        Ok(Self { env, name })
    }

    /// The prompt for one chunk.
    pub fn render(&self, vars: &PromptVars<'_>) -> Result<String> {
        let fail = |e: minijinja::Error| SynthError::Template {
            name: self.name.clone(),
            reason: e.to_string(),
        };
        let template = self.env.get_template("prompt").map_err(fail)?;
        template
            .render(context! {
                chunk => vars.chunk,
                id => vars.id,
                source => vars.source.unwrap_or_default(),
                domain => vars.domain.unwrap_or_default(),
                n => vars.n,
                format => vars.format.name(),
            })
            .map_err(fail)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn vars(n: usize) -> PromptVars<'static> {
        PromptVars {
            chunk: "Cells divide.",
            id: "c1",
            source: Some("bio.md"),
            domain: None,
            n,
            format: SynthFormat::Teaching,
        }
    }

    #[test]
    fn builtin_templates_render_every_format() {
        for format in SynthFormat::ALL {
            let prompt = PromptTemplate::builtin(format)
                .unwrap()
                .render(&PromptVars { format, ..vars(2) })
                .unwrap();
            assert!(prompt.contains("Cells divide."), "{prompt}");
            assert!(prompt.contains("(from bio.md)"), "{prompt}");
            assert!(prompt.contains(" 2 "), "{prompt}");
        }
        let one = PromptTemplate::builtin(SynthFormat::Teaching)
            .unwrap()
            .render(&vars(1))
            .unwrap();
        assert!(one.contains("Write 1 question a student"), "{one}");
    }

    #[test]
    fn custom_templates_fill_placeholders_and_reject_unknown_ones() {
        let t = PromptTemplate::from_source(
            "t.j2".into(),
            "{{ n }} about {{ source }}/{{ id }}: {{ chunk }}".into(),
        )
        .unwrap();
        assert_eq!(
            t.render(&vars(3)).unwrap(),
            "3 about bio.md/c1: Cells divide."
        );
        let t = PromptTemplate::from_source("t.j2".into(), "{{ chunck }}".into()).unwrap();
        let err = t.render(&vars(1)).unwrap_err().to_string();
        assert!(err.starts_with("template t.j2:"), "{err}");
        let err = PromptTemplate::from_source("bad.j2".into(), "{% if %}".into()).unwrap_err();
        assert!(err.to_string().starts_with("template bad.j2:"), "{err}");
    }
}

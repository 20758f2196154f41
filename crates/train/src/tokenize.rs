//! Examples to token ids and loss masks, through the base model's own chat template.

use std::ops::Range;

use switchboard_engine::{ChatMessage, TextTokenizer};

use crate::record::Example;

/// A tokenized example: the ids the model reads and which of them it is trained to predict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenizedExample {
    /// Token ids, at most `max_seq_len` of them.
    pub tokens: Vec<u32>,
    /// `targets[t]`: the loss includes predicting `tokens[t]` from the tokens before it.
    /// Always false at 0 (nothing to predict from).
    pub targets: Vec<bool>,
    /// Whether the example was cut to `max_seq_len`.
    pub truncated: bool,
}

impl TokenizedExample {
    /// Positions that contribute to the loss.
    pub fn target_count(&self) -> usize {
        self.targets.iter().filter(|&&t| t).count()
    }
}

/// Renders examples with the chat template and tokenizes them with the loss mask.
pub struct Renderer {
    tokenizer: TextTokenizer,
    max_seq_len: usize,
    end_of_text: Option<u32>,
}

impl Renderer {
    /// A renderer cutting examples to `max_seq_len` tokens.
    pub fn new(tokenizer: TextTokenizer, max_seq_len: usize) -> Self {
        // Documents for pre-training end with the end-of-text token so the model learns where
        // a document stops; fall back to the first end-of-sequence id.
        let end_of_text = tokenizer
            .inner()
            .token_to_id("<|endoftext|>")
            .or_else(|| tokenizer.eos_token_ids().iter().next().copied());
        Self {
            tokenizer,
            max_seq_len,
            end_of_text,
        }
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &TextTokenizer {
        &self.tokenizer
    }

    /// Tokens of a chat prompt ending where the assistant's reply starts (for generation).
    pub fn prompt_tokens(&self, messages: &[ChatMessage]) -> std::result::Result<Vec<u32>, String> {
        let text = self
            .tokenizer
            .apply_chat_template(messages, true)
            .map_err(|e| e.to_string())?;
        self.tokenizer.encode(&text).map_err(|e| e.to_string())
    }

    /// Tokenizes one example; the error explains why it cannot be (for the caller to place).
    pub fn render(&self, example: &Example) -> std::result::Result<TokenizedExample, String> {
        let (text, spans) = match example {
            Example::Chat(messages) => self.chat_text(messages)?,
            Example::Text(text) => (
                text.clone(),
                vec![Range {
                    start: 0,
                    end: text.len(),
                }],
            ),
        };
        let encoding = self
            .tokenizer
            .inner()
            .encode(text.as_str(), true)
            .map_err(|e| format!("tokenizer: {e}"))?;
        let mut tokens = encoding.get_ids().to_vec();
        let mut targets: Vec<bool> = encoding
            .get_offsets()
            .iter()
            .map(|&(start, _)| spans.iter().any(|s| s.contains(&start)))
            .collect();
        if let (Example::Text(_), Some(end)) = (example, self.end_of_text) {
            tokens.push(end);
            targets.push(true);
        }
        if let Some(first) = targets.first_mut() {
            *first = false;
        }
        let truncated = tokens.len() > self.max_seq_len;
        tokens.truncate(self.max_seq_len);
        targets.truncate(self.max_seq_len);
        Ok(TokenizedExample {
            tokens,
            targets,
            truncated,
        })
    }

    /// The rendered conversation and the byte ranges of the assistant replies in it, each from
    /// the start of the reply through its end-of-turn marker.
    fn chat_text(
        &self,
        messages: &[ChatMessage],
    ) -> std::result::Result<(String, Vec<Range<usize>>), String> {
        let render = |upto: usize, generation_prompt: bool| {
            self.tokenizer
                .apply_chat_template(&messages[..upto], generation_prompt)
                .map_err(|e| e.to_string())
        };
        let full = render(messages.len(), false)?;
        let mut spans = Vec::new();
        for (i, message) in messages.iter().enumerate() {
            if message.role != "assistant" {
                continue;
            }
            let before = render(i, true)?;
            let through = render(i + 1, false)?;
            // Masking by prefixes needs a template that renders a conversation as the
            // concatenation of its turns; templates that rewrite earlier turns are refused.
            if !through.starts_with(&before) || !full.starts_with(&through) {
                return Err(format!(
                    "the chat template does not render message {i} as an extension of the \
                     earlier ones, so its assistant tokens cannot be located"
                ));
            }
            // The newline after the end-of-turn marker is template glue, not the reply.
            let reply_len = through[before.len()..].trim_end().len();
            spans.push(before.len()..before.len() + reply_len);
        }
        Ok((full, spans))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::parse_record;
    use std::path::Path;

    fn renderer(max_seq_len: usize) -> Renderer {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/golden/base");
        Renderer::new(
            TextTokenizer::from_dir(&dir).expect("fixture tokenizer"),
            max_seq_len,
        )
    }

    /// The text of the trained tokens, and of all tokens.
    fn trained_text(r: &Renderer, line: &str) -> (String, String) {
        let (_, example) = parse_record(line).expect("record");
        let ex = r.render(&example).expect("render");
        let trained: Vec<u32> = ex
            .tokens
            .iter()
            .zip(&ex.targets)
            .filter(|(_, &t)| t)
            .map(|(&id, _)| id)
            .collect();
        let tok = r.tokenizer();
        (
            tok.decode(&trained, false).expect("decode"),
            tok.decode(&ex.tokens, false).expect("decode"),
        )
    }

    #[test]
    fn only_assistant_replies_and_their_end_marker_are_trained() {
        let r = renderer(512);
        let (trained, all) = trained_text(
            &r,
            r#"{"instruction": "Name a colour", "output": "Blue is one"}"#,
        );
        assert_eq!(trained, "Blue is one<|im_end|>");
        assert_eq!(
            all,
            "<|im_start|>user\nName a colour<|im_end|>\n<|im_start|>assistant\nBlue is one<|im_end|>\n"
        );
        // Several replies in one conversation; the teacher is the assistant.
        let (trained, _) = trained_text(
            &r,
            r#"{"dialogue": [{"role": "teacher", "content": "Ready?"}, {"role": "student", "content": "Yes"}, {"role": "teacher", "content": "Go"}]}"#,
        );
        assert_eq!(trained, "Ready?<|im_end|>Go<|im_end|>");
        for line in [
            r#"{"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "the answer"}]}"#,
            r#"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "the answer"}]}"#,
        ] {
            assert_eq!(trained_text(&r, line).0, "the answer<|im_end|>", "{line}");
        }
        let (trained, _) = trained_text(
            &r,
            r#"{"qa_pair": {"question": "q", "thought_process": ["a"], "answer": "b", "related_concepts": ["c"]}}"#,
        );
        assert_eq!(
            trained,
            "Let's reason step by step.\n1. a\n\nAnswer: b\n\nRelated concepts: c<|im_end|>"
        );
    }

    #[test]
    fn plain_text_is_trained_whole_and_long_examples_are_truncated() {
        let r = renderer(512);
        let (_, example) = parse_record(r#"{"text": "the cell divides"}"#).expect("record");
        let ex = r.render(&example).expect("render");
        assert!(!ex.targets[0] && ex.targets[1..].iter().all(|&t| t));
        assert_eq!(
            r.tokenizer().decode(&ex.tokens, false).expect("decode"),
            "the cell divides<|endoftext|>"
        );
        assert!(!ex.truncated);
        let short = renderer(3).render(&example).expect("render");
        assert_eq!(short.tokens.len(), 3);
        assert_eq!(short.tokens[..], ex.tokens[..3]);
        assert!(short.truncated);
    }
}

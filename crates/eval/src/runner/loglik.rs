//! Multiple choice by log-likelihood, request for request as lm-evaluation-harness 0.4's
//! `local-completions` model builds and reads it with its remote tokenizer
//! (`tokenized_requests=True`), so both tools score the same items the same way:
//!
//! * `_encode_pair` (`lm_eval/api/model.py`): trailing whitespace of the context moves to the
//!   front of the continuation; `whole = tok(context + continuation)`, `ctx = tok(context)`,
//!   continuation tokens = `whole[len(ctx):]`. The remote tokenizer always sends
//!   `add_special_tokens: false` (`RemoteTokenizer.encode`, `lm_eval/utils.py`).
//! * `batch_loglikelihood_requests` (`lm_eval/models/api_models.py`): the prompt is
//!   `(ctx + cont)[-max_length:]` with `ctxlen = len(ctx) - overflow`, where `max_length` is
//!   the model argument minus one (2048 - 1 by default) "as we always have 1 token for
//!   generation".
//! * `parse_logprobs` (`lm_eval/models/openai_completions.py`):
//!   `ll = sum(token_logprobs[ctxlen:-1])`.
//!
//! Without `/tokenize` (OpenAI, some proxies) prompts go as text and the continuation is the
//! tokens whose `text_offset` falls inside it.

use crate::client::EchoChoice;
use crate::error::{EvalError, Result};

/// lm-eval's `doc_to_text` of the suites' task files: `"Question: {{question}}\nAnswer:"`.
pub fn question_context(question: &str) -> String {
    format!("Question: {question}\nAnswer:")
}

/// lm-eval's `target_delimiter` (the default) before each choice.
pub const TARGET_DELIMITER: &str = " ";

/// Whitespace as Python's `str.isspace` sees it (for `rstrip`): Rust's `char::is_whitespace`
/// plus the ASCII information separators that Python also counts.
fn py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `_encode_pair`'s first step: the context without its trailing whitespace, and the
/// continuation with that whitespace in front.
pub fn split_pair(context: &str, continuation: &str) -> (String, String) {
    let kept = context.trim_end_matches(py_space);
    let moved = &context[kept.len()..];
    (kept.to_string(), format!("{moved}{continuation}"))
}

/// One choice's prompt in token ids, and where its continuation starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenPrompt {
    /// `(ctx + cont)[-max_length:]`.
    pub ids: Vec<u32>,
    /// Tokens of `ids` that belong to the context.
    pub ctxlen: usize,
}

/// lm-eval's `(context_enc, continuation_enc)` → the request prompt. `max_length` is the
/// already-reduced limit (lm-eval's `max_length - 1`).
pub fn token_prompt(context: &[u32], whole: &[u32], max_length: usize) -> TokenPrompt {
    let continuation = whole.get(context.len()..).unwrap_or_default();
    let mut ids: Vec<u32> = context.iter().chain(continuation).copied().collect();
    let overflow = ids.len().saturating_sub(max_length);
    ids.drain(..overflow);
    TokenPrompt {
        ids,
        ctxlen: context.len().saturating_sub(overflow),
    }
}

/// `sum(token_logprobs[ctxlen:-1])`, after checking that the server echoed every prompt token
/// (one entry per prompt token plus the generated one, the first `null`): a server that returns
/// only the generated token's logprob (llama.cpp) would otherwise score every choice 0.
pub fn token_loglikelihood(url: &str, prompt: &TokenPrompt, choice: &EchoChoice) -> Result<f64> {
    let lps = &choice.token_logprobs;
    let bad = |reason: String| EvalError::BadResponse {
        url: url.to_string(),
        reason,
    };
    if lps.len() != prompt.ids.len() + 1 {
        return Err(bad(format!(
            "{} token_logprobs for a prompt of {} tokens with echo and max_tokens 1 (expected {}): \
             the server does not return prompt log-probabilities",
            lps.len(),
            prompt.ids.len(),
            prompt.ids.len() + 1
        )));
    }
    if lps.first().is_some_and(Option::is_some) {
        return Err(bad(
            "the first token_logprob is not null: the echo is not of the prompt".to_string(),
        ));
    }
    if prompt.ctxlen == 0 {
        return Err(bad("the context is empty after truncation".to_string()));
    }
    let end = lps.len() - 1;
    let mut sum = 0.0;
    for (position, lp) in lps[prompt.ctxlen.min(end)..end].iter().enumerate() {
        sum += lp.ok_or_else(|| {
            bad(format!(
                "token_logprobs[{}] is null inside the prompt",
                prompt.ctxlen + position
            ))
        })?;
    }
    Ok(sum)
}

/// Text prompts: the summed logprobs of the echoed tokens that start inside the continuation,
/// `[chars(context), chars(context + continuation))` in characters as `text_offset` counts
/// (the generated token starts at the end and is left out).
pub fn text_loglikelihood(
    url: &str,
    context: &str,
    continuation: &str,
    choice: &EchoChoice,
) -> Result<f64> {
    let bad = |reason: String| EvalError::BadResponse {
        url: url.to_string(),
        reason,
    };
    let lps = &choice.token_logprobs;
    if choice.text_offset.len() != lps.len() {
        return Err(bad(format!(
            "{} text_offset entries for {} token_logprobs: cannot find the continuation",
            choice.text_offset.len(),
            lps.len()
        )));
    }
    if lps.first().is_some_and(Option::is_some) || lps.len() < 2 {
        return Err(bad(
            "the prompt was not echoed with log-probabilities (first entry must be null)"
                .to_string(),
        ));
    }
    let start = context.chars().count();
    let end = start + continuation.chars().count();
    let mut sum = 0.0;
    let mut found = 0;
    for (i, (offset, lp)) in choice.text_offset.iter().zip(lps).enumerate() {
        if (start..end).contains(offset) {
            sum +=
                lp.ok_or_else(|| bad(format!("token_logprobs[{i}] is null inside the prompt")))?;
            found += 1;
        }
    }
    if found == 0 {
        return Err(bad(format!(
            "no echoed token starts inside the continuation {continuation:?}"
        )));
    }
    Ok(sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_whitespace_moves_to_the_continuation() {
        assert_eq!(
            split_pair("Question: q\nAnswer:", " yes"),
            ("Question: q\nAnswer:".to_string(), " yes".to_string())
        );
        assert_eq!(
            split_pair("ctx \n\t", " a"),
            ("ctx".to_string(), " \n\t a".to_string())
        );
        assert_eq!(
            split_pair("x\u{1f}", "y"),
            ("x".to_string(), "\u{1f}y".to_string())
        );
    }

    #[test]
    fn prompts_keep_the_context_encoding_and_truncate_on_the_left() {
        // The whole encoding merged differently at the boundary: lm-eval still sends ctx + the
        // tail of whole after len(ctx).
        let prompt = token_prompt(&[1, 2, 3], &[1, 2, 9, 4, 5], 100);
        assert_eq!(
            prompt,
            TokenPrompt {
                ids: vec![1, 2, 3, 4, 5],
                ctxlen: 3
            }
        );
        let cut = token_prompt(&[1, 2, 3], &[1, 2, 3, 4, 5], 4);
        assert_eq!(
            cut,
            TokenPrompt {
                ids: vec![2, 3, 4, 5],
                ctxlen: 2
            }
        );
    }

    fn echo(lps: &[Option<f64>], offsets: &[usize]) -> EchoChoice {
        EchoChoice {
            tokens: vec![String::new(); lps.len()],
            token_logprobs: lps.to_vec(),
            text_offset: offsets.to_vec(),
            text: String::new(),
        }
    }

    #[test]
    fn sums_the_continuation_and_drops_the_generated_token() {
        let prompt = TokenPrompt {
            ids: vec![1, 2, 3, 4],
            ctxlen: 2,
        };
        let reply = echo(
            &[None, Some(-1.0), Some(-0.5), Some(-0.25), Some(-9.0)],
            &[],
        );
        assert_eq!(
            token_loglikelihood("u", &prompt, &reply).expect("ll"),
            -0.75
        );
        // llama.cpp: only the generated token.
        let short = echo(&[Some(-0.1)], &[]);
        let err = token_loglikelihood("u", &prompt, &short)
            .expect_err("short")
            .to_string();
        assert!(
            err.contains("does not return prompt log-probabilities"),
            "{err}"
        );
    }

    #[test]
    fn text_offsets_find_the_continuation() {
        // "Answer:" + " yes" echoed as ["Answer", ":", " yes", <generated>].
        let reply = echo(&[None, Some(-1.0), Some(-2.0), Some(-3.0)], &[0, 6, 7, 11]);
        assert_eq!(
            text_loglikelihood("u", "Answer:", " yes", &reply).expect("ll"),
            -2.0
        );
        // A continuation that starts inside a token: no token starts within it.
        let err = text_loglikelihood("u", "Answer: ye", "s", &reply).expect_err("none");
        assert!(err.to_string().contains("no echoed token"), "{err}");
    }
}

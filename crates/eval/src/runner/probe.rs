//! Before a run: how this server can score multiple choice.

use crate::client::PromptInput;
use crate::error::{EvalError, Result};

use super::{loglik, McMode, Runner};

impl Runner {
    /// Finds how this server can score multiple choice: one echo request for a short pair with
    /// the base model. Servers without `/tokenize` get text prompts; servers without prompt
    /// logprobs get lettered questions. Each fallback is written into the notes.
    pub(super) async fn probe(&self, base: &str, notes: &mut Vec<String>) -> Result<McMode> {
        let (context, continuation) = loglik::split_pair(
            &loglik::question_context("Which colour is the sky?"),
            " blue",
        );
        let url = self.client.url().api("/completions");
        // A `/tokenize` that refuses vLLM's request shape (llama.cpp wants `content`) or
        // answers nothing is as good as none: text prompts then.
        let tokenized = match self.client.tokenize(&context, false).await {
            Ok(Some(ids)) if !ids.is_empty() => Some(ids),
            Ok(_) => None,
            Err(EvalError::Api { status, .. }) if (400..500).contains(&status) => None,
            Err(e) => return Err(e),
        };
        let attempt = match &tokenized {
            Some(ctx) => {
                let whole = self
                    .client
                    .tokenize(&format!("{context}{continuation}"), false)
                    .await?
                    .unwrap_or_default();
                let prompt = loglik::token_prompt(ctx, &whole, usize::MAX);
                match self
                    .client
                    .completion_echo(base, vec![PromptInput::Tokens(prompt.ids.clone())], 1)
                    .await
                {
                    Ok(replies) => replies
                        .first()
                        .ok_or_else(|| EvalError::BadResponse {
                            url: url.clone(),
                            reason: "no choice".into(),
                        })
                        .and_then(|reply| loglik::token_loglikelihood(&url, &prompt, reply))
                        .map(|_| McMode::Tokens),
                    Err(e) => Err(e),
                }
            }
            None => {
                let prompt = PromptInput::Text(format!("{context}{continuation}"));
                match self.client.completion_echo(base, vec![prompt], 1).await {
                    Ok(replies) => replies
                        .first()
                        .ok_or_else(|| EvalError::BadResponse {
                            url: url.clone(),
                            reason: "no choice".into(),
                        })
                        .and_then(|reply| {
                            loglik::text_loglikelihood(&url, &context, &continuation, reply)
                        })
                        .map(|_| McMode::Text),
                    Err(e) => Err(e),
                }
            }
        };
        match attempt {
            Ok(McMode::Text) => {
                notes.push(format!(
                    "{}/tokenize is not available: multiple-choice prompts were sent as text \
                     and each continuation was found by text_offset (lm-eval sends token ids)",
                    self.client.url()
                ));
                Ok(McMode::Text)
            }
            Ok(mode) => Ok(mode),
            // The server refused echo/logprobs, or answered without prompt logprobs: ask the
            // items as lettered questions rather than score every choice 0.
            Err(EvalError::Api {
                status, message, ..
            }) if (400..500).contains(&status) => {
                let why = format!("HTTP {status}: {message}");
                notes.push(lettered_note(&why));
                tracing::warn!(reason = %why, "no prompt log-probabilities; multiple choice asked as lettered questions");
                Ok(McMode::Lettered)
            }
            Err(EvalError::BadResponse { reason, .. }) => {
                notes.push(lettered_note(&reason));
                tracing::warn!(%reason, "no prompt log-probabilities; multiple choice asked as lettered questions");
                Ok(McMode::Lettered)
            }
            Err(e) => Err(e),
        }
    }
}

fn lettered_note(why: &str) -> String {
    format!(
        "the server does not return prompt log-probabilities ({why}): multiple-choice items \
         were asked as lettered questions through chat and scored from the letter answered \
         (scoring generative_choice), not comparable with log-likelihood accuracy"
    )
}

//! One item under one variant: its target, its passages, its request, its record.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::client::{ChatMessage, PromptInput};
use crate::error::{EvalError, Result};
use crate::results::ItemRecord;
use crate::score::{
    lettered_prompt, score_generative, score_lettered, score_multiple_choice, Answerer,
};
use crate::suite::{Item, Task};

use super::variants::{self, Plan, Served, Target};
use super::{loglik, system_passages, with_passages, Passage, Runner};

/// How multiple-choice items are scored on this server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum McMode {
    /// Token-id prompts from `/tokenize` (lm-eval's `tokenized_requests=True`).
    Tokens,
    /// Text prompts, continuation found by `text_offset`.
    Text,
    /// Lettered question through chat (no prompt logprobs).
    Lettered,
}

/// What one run shares between its requests.
pub(super) struct RunState<'a> {
    pub served: Served,
    pub mode: McMode,
    pub tokens: Mutex<HashMap<String, Arc<Vec<u32>>>>,
    pub runner: &'a Runner,
}

impl RunState<'_> {
    pub(super) async fn score(&self, plan: &Plan, item: &Item) -> Result<ItemRecord> {
        let runner = self.runner;
        let target: Target =
            variants::target(&plan.kind, item, &self.served, runner.router.as_deref());
        let passages = match &target.retrieve {
            Some(domain) => self.retrieve(&item.question, domain.clone()).await?,
            None => Vec::new(),
        };
        let who = Answerer {
            variant: &plan.name,
            model: &target.model,
        };
        let mut record = match (&item.task, self.mode) {
            (Task::MultipleChoice { choices, .. }, McMode::Tokens | McMode::Text) => {
                let context = with_passages(&passages, &loglik::question_context(&item.question));
                let lls = self
                    .loglikelihoods(&target.model, &context, choices)
                    .await?;
                score_multiple_choice(item, lls, who)?
            }
            (Task::MultipleChoice { choices, .. }, McMode::Lettered) => {
                let prompt = lettered_prompt(&item.question, choices)?;
                let output = self.chat(&target.model, &passages, prompt).await?;
                score_lettered(item, &output, who)?
            }
            (Task::Generative { .. }, _) => {
                let output = self
                    .chat(&target.model, &passages, item.question.clone())
                    .await?;
                score_generative(item, &output, who)?
            }
        };
        record.routed_domain = target.routed_domain;
        record.sources = passages.into_iter().map(|p| p.source).collect();
        Ok(record)
    }

    /// Retrieval runs on the blocking pool: an index search is compute and file reads.
    async fn retrieve(&self, query: &str, domain: Option<String>) -> Result<Vec<Passage>> {
        let Some(retriever) = self.runner.retriever.clone() else {
            return Ok(Vec::new());
        };
        let owned = query.to_string();
        tokio::task::spawn_blocking(move || retriever.retrieve(&owned, domain.as_deref()))
            .await
            .map_err(|e| EvalError::Retrieval {
                query: query.to_string(),
                reason: e.to_string(),
            })?
    }

    async fn chat(&self, model: &str, passages: &[Passage], user: String) -> Result<String> {
        let options = &self.runner.options;
        let mut messages = Vec::new();
        if !passages.is_empty() {
            messages.push(ChatMessage::new("system", system_passages(passages)));
        }
        messages.push(ChatMessage::new("user", user));
        self.runner
            .client
            .chat(
                model,
                &messages,
                options.max_tokens,
                0.0,
                Some(options.seed),
            )
            .await
    }

    /// One echo request with every choice of the item; the summed continuation logprobs.
    async fn loglikelihoods(
        &self,
        model: &str,
        context: &str,
        choices: &[String],
    ) -> Result<Vec<f64>> {
        let client = &self.runner.client;
        let url = client.url().api("/completions");
        let pairs: Vec<(String, String)> = choices
            .iter()
            .map(|choice| {
                loglik::split_pair(context, &format!("{}{choice}", loglik::TARGET_DELIMITER))
            })
            .collect();
        if self.mode == McMode::Text {
            let prompts = pairs
                .iter()
                .map(|(ctx, cont)| PromptInput::Text(format!("{ctx}{cont}")))
                .collect();
            let replies = client.completion_echo(model, prompts, 1).await?;
            return pairs
                .iter()
                .zip(&replies)
                .map(|((ctx, cont), reply)| loglik::text_loglikelihood(&url, ctx, cont, reply))
                .collect();
        }
        let limit = self.runner.options.max_length.saturating_sub(1).max(1);
        let mut prompts = Vec::with_capacity(pairs.len());
        for (ctx, cont) in &pairs {
            let context_ids = self.tokens(ctx).await?;
            let whole = self.tokens(&format!("{ctx}{cont}")).await?;
            prompts.push(loglik::token_prompt(&context_ids, &whole, limit));
        }
        let inputs = prompts
            .iter()
            .map(|p| PromptInput::Tokens(p.ids.clone()))
            .collect();
        let replies = client.completion_echo(model, inputs, 1).await?;
        prompts
            .iter()
            .zip(&replies)
            .map(|(prompt, reply)| loglik::token_loglikelihood(&url, prompt, reply))
            .collect()
    }

    /// `/tokenize` without special tokens (lm-eval's remote tokenizer), cached: every variant
    /// without retrieval shares the same contexts.
    async fn tokens(&self, text: &str) -> Result<Arc<Vec<u32>>> {
        if let Some(hit) = self.lock_tokens().get(text) {
            return Ok(hit.clone());
        }
        let client = &self.runner.client;
        let ids = client
            .tokenize(text, false)
            .await?
            .ok_or_else(|| EvalError::BadResponse {
                url: client.url().at_root("/tokenize"),
                reason: "the route answered before and is gone now".to_string(),
            })?;
        let ids = Arc::new(ids);
        self.lock_tokens().insert(text.to_string(), ids.clone());
        Ok(ids)
    }

    fn lock_tokens(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Vec<u32>>>> {
        // A poisoned cache only means another task panicked mid-insert; the map is still valid.
        self.tokens.lock().unwrap_or_else(|e| e.into_inner())
    }
}

//! `eval run`: a [`Suite`] over a list of variants against an OpenAI-compatible server, into
//! [`EvalResults`].
//!
//! * Multiple choice is scored by log-likelihood exactly as lm-evaluation-harness's
//!   `local-completions` does (see [`loglik`]), one `/v1/completions` request per item carrying
//!   all its choices. A server that does not echo prompt log-probabilities (llama.cpp) gets the
//!   items as lettered questions instead, and the run says so in its notes.
//! * Generative items go to `/v1/chat/completions` at temperature 0 with a seed.
//! * Many items are in flight at once (`concurrency`), so the server batches them; base and
//!   adapter requests interleave, as in production.
//! * Retrieval and routing are the caller's ([`Retriever`], [`Router`]): this crate stays an
//!   HTTP client, so the same run works against vLLM serving the same adapter names.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use futures_util::stream::{self, StreamExt};
use indicatif::{ProgressBar, ProgressStyle};

use crate::aggregate::summarize;
use crate::client::OpenAiClient;
use crate::error::Result;
use crate::results::{EvalResults, ItemRecord, RunInfo};
use crate::suite::{Item, Suite};

mod check;
#[cfg(test)]
mod fallback_tests;
mod item;
pub mod loglik;
mod probe;
mod variants;

use item::{McMode, RunState};
use variants::{Plan, Served};
pub use variants::{ADAPTER, ADAPTER_RAG, AUTO, BASE, RAG};

/// A retrieved passage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passage {
    /// Where it comes from (`biology/cells.md#2`), recorded in the item's `sources`.
    pub source: String,
    /// Its text.
    pub text: String,
}

/// Finds passages for a question (the binary implements it over the knowledge base).
pub trait Retriever: Send + Sync {
    /// The passages for `query`, best first, within `domain` when given.
    fn retrieve(&self, query: &str, domain: Option<&str>) -> Result<Vec<Passage>>;
}

/// Where the router sends a question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The domain it classified the question as.
    pub domain: String,
    /// The adapter for that domain, `None` for the base (general, low confidence, no route).
    pub adapter: Option<String>,
}

/// Picks the domain and adapter of a question, as `model: "auto"` does in production.
pub trait Router: Send + Sync {
    /// The route of `query`. An adapter the server does not serve falls back to the base.
    fn route(&self, query: &str) -> Route;
}

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Variant names: `base`, `adapter`, `rag`, `adapter+rag`, `auto`, or a served model.
    pub variants: Vec<String>,
    /// The base model's served name [default: the first `/v1/models` entry without `parent`].
    pub base_model: Option<String>,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Most tokens of a generated answer.
    pub max_tokens: u32,
    /// Seed of chat requests.
    pub seed: u64,
    /// At most this many items per domain (the first ones), as lm-eval's `--limit` per task.
    pub limit: Option<usize>,
    /// lm-eval's `max_length` model argument: prompts are cut on the left to `max_length - 1`
    /// tokens.
    pub max_length: usize,
    /// No progress bar.
    pub quiet: bool,
    /// What to record as the endpoint [default: the server URL].
    pub endpoint: Option<String>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            variants: vec![BASE.to_string()],
            base_model: None,
            concurrency: 8,
            max_tokens: 128,
            seed: crate::client::LM_EVAL_SEED,
            limit: None,
            max_length: 2048,
            quiet: false,
            endpoint: None,
        }
    }
}

/// Runs suites against one server.
pub struct Runner {
    client: OpenAiClient,
    retriever: Option<Arc<dyn Retriever>>,
    router: Option<Arc<dyn Router>>,
    options: RunOptions,
}

impl Runner {
    /// A runner over `client`.
    pub fn new(client: OpenAiClient, options: RunOptions) -> Self {
        Self {
            client,
            retriever: None,
            router: None,
            options,
        }
    }

    /// Retrieval for `rag`, `adapter+rag` and `auto`.
    pub fn with_retriever(mut self, retriever: Arc<dyn Retriever>) -> Self {
        self.retriever = Some(retriever);
        self
    }

    /// Routing for `auto`.
    pub fn with_router(mut self, router: Arc<dyn Router>) -> Self {
        self.router = Some(router);
        self
    }

    /// Scores `suite` under every variant. Fails on the first request that fails for good (after
    /// the client's retries), and when an adapter variant scored exactly like the base.
    pub async fn run(&self, suite: &Suite) -> Result<EvalResults> {
        let started = Instant::now();
        let started_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let items = match self.options.limit {
            Some(n) => limit_per_domain(&suite.items, n),
            None => suite.items.clone(),
        };
        let models = self.client.models().await?;
        let served = Served::new(&models, self.options.base_model.as_deref())?;
        let plans = variants::plan(
            &self.options.variants,
            &served,
            self.retriever.as_deref(),
            self.router.as_deref(),
        )?;
        let mut notes = Vec::new();
        let mode = if items.iter().any(Item::is_multiple_choice) {
            self.probe(&served.base, &mut notes).await?
        } else {
            McMode::Tokens
        };
        tracing::info!(
            suite = %suite.name,
            items = items.len(),
            variants = plans.len(),
            base = %served.base,
            multiple_choice = ?mode,
            "scoring"
        );
        let state = RunState {
            served,
            mode,
            tokens: Mutex::new(HashMap::new()),
            runner: self,
        };
        let records = self.score_all(&state, &plans, &items).await?;
        check::adapters_applied(&plans, &records, &state.served.base)?;
        notes.extend(check::variant_notes(&plans, &records, &state.served.base));
        Ok(EvalResults {
            suite: suite.name.clone(),
            model: state.served.base.clone(),
            variants: summarize(&records),
            items: records,
            run: RunInfo {
                endpoint: self
                    .options
                    .endpoint
                    .clone()
                    .unwrap_or_else(|| self.client.url().to_string()),
                started_at,
                duration_seconds: started.elapsed().as_secs_f64(),
                notes,
            },
        })
    }

    /// Every (variant, item) pair, `concurrency` at a time, in variant then item order.
    async fn score_all(
        &self,
        state: &RunState<'_>,
        plans: &[Plan],
        items: &[Item],
    ) -> Result<Vec<ItemRecord>> {
        let jobs: Vec<(&Plan, &Item)> = plans
            .iter()
            .flat_map(|plan| items.iter().map(move |item| (plan, item)))
            .collect();
        let bar = self.progress(jobs.len() as u64);
        let mut results: Vec<Option<ItemRecord>> = vec![None; jobs.len()];
        let mut stream = stream::iter(jobs.into_iter().enumerate())
            .map(|(index, (plan, item))| async move {
                state.score(plan, item).await.map(|record| (index, record))
            })
            .buffer_unordered(self.options.concurrency.max(1));
        while let Some(outcome) = stream.next().await {
            let (index, record) = outcome?;
            results[index] = Some(record);
            bar.inc(1);
        }
        bar.finish_and_clear();
        Ok(results.into_iter().flatten().collect())
    }

    fn progress(&self, total: u64) -> ProgressBar {
        if self.options.quiet || !std::io::stderr().is_terminal() {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(total);
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} scoring [{bar:30}] {pos}/{len} items, {per_sec}, eta {eta}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar
    }
}

/// Numbered passages, `[n] source` then the text, separated by blank lines.
fn passage_block(passages: &[Passage]) -> String {
    passages
        .iter()
        .enumerate()
        .map(|(i, p)| format!("[{}] {}\n{}", i + 1, p.source, p.text.trim()))
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// The multiple-choice context of a retrieval variant: the passages, then the question as
/// lm-eval's task files ask it (so the answer still follows `Answer:`).
pub fn with_passages(passages: &[Passage], context: &str) -> String {
    if passages.is_empty() {
        return context.to_string();
    }
    format!(
        "Reference passages:\n\n{}\n\n{context}",
        passage_block(passages)
    )
}

/// The system message of a generative retrieval variant.
pub fn system_passages(passages: &[Passage]) -> String {
    format!(
        "Answer the question using the numbered reference passages below when they are \
         relevant.\n\nReference passages:\n\n{}",
        passage_block(passages)
    )
}

/// The first `n` items of each domain, in suite order (lm-eval's `--limit` applies per task,
/// and the suites' tasks are one per domain).
pub fn limit_per_domain(items: &[Item], n: usize) -> Vec<Item> {
    let mut taken: HashMap<&str, usize> = HashMap::new();
    items
        .iter()
        .filter(|item| {
            let count = taken.entry(item.domain.as_str()).or_default();
            *count += 1;
            *count <= n
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::Task;

    #[test]
    fn passages_come_before_the_question() {
        let passages = [Passage {
            source: "biology/cells.md#0".into(),
            text: "Cells divide.\n".into(),
        }];
        let context = with_passages(&passages, "Question: q\nAnswer:");
        assert_eq!(
            context,
            "Reference passages:\n\n[1] biology/cells.md#0\nCells divide.\n\nQuestion: q\nAnswer:"
        );
        assert_eq!(
            with_passages(&[], "Question: q\nAnswer:"),
            "Question: q\nAnswer:"
        );
        assert!(system_passages(&passages).ends_with("[1] biology/cells.md#0\nCells divide."));
    }

    #[test]
    fn limit_takes_the_first_items_of_each_domain() {
        let item = |id: &str, domain: &str| Item {
            id: id.into(),
            domain: domain.into(),
            question: "q".into(),
            task: Task::Generative {
                reference: "r".into(),
            },
        };
        let items = [
            item("1", "a"),
            item("2", "b"),
            item("3", "a"),
            item("4", "b"),
            item("5", "a"),
        ];
        let ids: Vec<String> = limit_per_domain(&items, 2)
            .into_iter()
            .map(|i| i.id)
            .collect();
        assert_eq!(ids, ["1", "2", "3", "4"]);
    }
}

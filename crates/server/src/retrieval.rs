//! [`KbRetrieval`]: the knowledge base (`switchboard-rag`) as the server's [`Retrieval`], with
//! retrieval latency and hit/miss metrics.

use std::time::Instant;

use metrics::{counter, histogram};
use switchboard_rag::{build_context, PromptTemplate, Retriever, SearchOptions, DOMAINS};

use crate::openai::{RouteInfo, Source};
use crate::pipeline::{Augmentation, Retrieval};

/// When requests without a `rag` field get retrieval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RagDefault {
    /// For requests the router sent to a domain adapter.
    #[default]
    Auto,
    /// Always.
    On,
    /// Never (only when a request asks).
    Off,
}

impl std::str::FromStr for RagDefault {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "on" => Ok(Self::On),
            "off" => Ok(Self::Off),
            other => Err(format!("`{other}` is not one of auto, on, off")),
        }
    }
}

/// Retrieval from a [`Retriever`] (hot-reloadable index) into a [`PromptTemplate`].
pub struct KbRetrieval {
    retriever: Retriever,
    template: PromptTemplate,
    default: RagDefault,
    k: usize,
    min_score: Option<f32>,
}

impl KbRetrieval {
    /// Retrieval of `k` passages per request by default.
    pub fn new(
        retriever: Retriever,
        template: PromptTemplate,
        default: RagDefault,
        k: usize,
    ) -> Self {
        Self {
            retriever,
            template,
            default,
            k: k.max(1),
            min_score: None,
        }
    }

    /// Drops passages scoring below `min_score`.
    pub fn with_min_score(mut self, min_score: Option<f32>) -> Self {
        self.min_score = min_score;
        self
    }
}

impl Retrieval for KbRetrieval {
    fn enabled_by_default(&self, route: &RouteInfo) -> bool {
        match self.default {
            RagDefault::On => true,
            RagDefault::Off => false,
            RagDefault::Auto => {
                route.adapter.is_some()
                    && route
                        .domain
                        .as_deref()
                        .is_some_and(|d| self.knows_domain(d))
            }
        }
    }

    fn knows_domain(&self, domain: &str) -> bool {
        DOMAINS.contains(&domain)
    }

    fn augment(
        &self,
        query: &str,
        k: Option<usize>,
        domain: Option<&str>,
        budget_tokens: usize,
        count_tokens: &dyn Fn(&str) -> usize,
    ) -> Result<Option<Augmentation>, String> {
        let started = Instant::now();
        let options = SearchOptions {
            k: k.unwrap_or(self.k),
            domain: domain.filter(|d| self.knows_domain(d)).map(str::to_string),
            min_score: self.min_score,
        };
        let searched = self.retriever.search(query, &options);
        histogram!("switchboard_rag_retrieval_seconds").record(started.elapsed().as_secs_f64());
        let passages = searched.map_err(|e| e.to_string())?;
        let injection = build_context(&passages, &self.template, budget_tokens, count_tokens);
        if injection.is_empty() {
            counter!("switchboard_rag_misses_total").increment(1);
            return Ok(None);
        }
        counter!("switchboard_rag_hits_total").increment(1);
        let sources = injection
            .used
            .iter()
            .enumerate()
            .map(|(i, p)| Source {
                id: i + 1,
                title: p.title.clone(),
                path: p.path.clone(),
                score: p.score,
            })
            .collect();
        Ok(Some(Augmentation {
            system_text: injection.system_text,
            sources,
        }))
    }
}

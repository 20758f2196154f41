//! The eval crate's [`Retriever`] and [`Router`] over the knowledge base and the domain
//! classifier, the same pieces `switchboard serve` uses for `rag` and `model: "auto"`.

use std::path::Path;

use anyhow::{Context, Result};
use switchboard_eval::runner::{Passage, Retriever, Route, Router};
use switchboard_eval::EvalError;
use switchboard_rag::{KnowledgeBase, SearchOptions, DOMAINS};
use switchboard_router::{Classifier, RoutingTable};

/// Passages from the kb, searched in memory (nothing is written into the kb directory).
pub struct KbRetriever {
    kb: KnowledgeBase,
    k: usize,
}

impl KbRetriever {
    /// Indexes `dir` in memory; `k` passages per question.
    pub fn open(dir: &Path, k: usize) -> Result<Self> {
        let kb = KnowledgeBase::in_ram(dir)
            .with_context(|| format!("indexing the knowledge base {}", dir.display()))?;
        tracing::info!(kb = %dir.display(), chunks = kb.stats().chunks, "knowledge base indexed for eval");
        Ok(Self { kb, k: k.max(1) })
    }
}

impl Retriever for KbRetriever {
    fn retrieve(
        &self,
        query: &str,
        domain: Option<&str>,
    ) -> switchboard_eval::Result<Vec<Passage>> {
        // Like the server, a domain the kb has no folder for (`general`) searches everything.
        let options = SearchOptions {
            k: self.k,
            domain: domain.filter(|d| DOMAINS.contains(d)).map(str::to_string),
            min_score: None,
        };
        let passages = self
            .kb
            .search(query, &options)
            .map_err(|e| EvalError::Retrieval {
                query: query.to_string(),
                reason: e.to_string(),
            })?;
        Ok(passages
            .into_iter()
            .map(|p| Passage {
                source: p.id,
                text: p.text,
            })
            .collect())
    }
}

/// The classifier and routing table of `model: "auto"`.
pub struct DomainRouter {
    classifier: Classifier,
    table: RoutingTable,
}

impl DomainRouter {
    pub fn new(classifier: Classifier, table: RoutingTable) -> Self {
        Self { classifier, table }
    }
}

impl Router for DomainRouter {
    fn route(&self, query: &str) -> Route {
        let decision = self.classifier.classify_text(query);
        // Whether the adapter is served is the runner's check (it knows the server's models).
        let outcome = self.table.route(&decision, |_| true);
        Route {
            domain: decision.domain.as_str().to_string(),
            adapter: outcome.adapter,
        }
    }
}

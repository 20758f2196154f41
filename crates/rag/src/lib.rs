//! # switchboard-rag
//!
//! Retrieval over the local knowledge base (`kb/`): Markdown documents with front matter, one
//! folder per domain, indexed with BM25 (tantivy) so the model gets facts and the user sources.
//!
//! * [`load_kb`] / [`load_kb_report`]: parse the kb's [`Document`]s (strictly, or skipping
//!   invalid files); [`chunk_document`] cuts them by heading into overlapping [`Chunk`]s.
//! * [`KnowledgeBase`]: the index. [`KnowledgeBase::open_or_build`] keeps a persistent one that
//!   rebuilds itself when the kb content changes; [`KnowledgeBase::search`] turns free text into
//!   scored [`Passage`]s, optionally within one domain.
//! * [`Retriever`]: the shared handle a server holds; [`Retriever::reload`] swaps in a rebuilt
//!   index without disturbing searches in flight.
//! * [`build_context`]: numbered passages in a [`PromptTemplate`], within a token budget.
//! * [`load_eval_set`] and [`evaluate`]: recall@1/@5 and MRR against question sets.
#![warn(missing_docs)]

mod analyzer;
mod chunk;
mod document;
mod error;
mod eval;
mod kb;
mod prompt;
mod retriever;
mod schema;
mod search;
mod store;
mod text;

pub use chunk::{chunk_document, Chunk, ChunkOptions};
pub use document::{load_kb, load_kb_report, Document, LoadReport, DOMAINS};
pub use error::{RagError, Result};
pub use eval::{
    evaluate, load_eval_set, DomainScores, EvalMiss, EvalQuestion, RetrievalReport, Scores,
};
pub use kb::{KbStats, KnowledgeBase};
pub use prompt::{
    build_context, Injection, PromptTemplate, DEFAULT_TEMPLATE, PASSAGES_PLACEHOLDER,
};
pub use retriever::{ReloadOutcome, Retriever};
pub use search::{Passage, SearchOptions};

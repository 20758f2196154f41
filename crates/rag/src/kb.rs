//! [`KnowledgeBase`]: an opened, searchable index of the kb.

use std::path::{Path, PathBuf};

use serde::Serialize;
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{Index, IndexReader, ReloadPolicy};

use crate::analyzer::analyzer;
use crate::chunk::ChunkOptions;
use crate::document::Document;
use crate::error::Result;
use crate::schema::{create_index, register_analyzer, write_documents, Fields, INDEX_FORMAT};
use crate::store::{build_on_disk, read_manifest, Manifest, Snapshot};

/// Facts about an opened knowledge base.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KbStats {
    /// Documents indexed.
    pub documents: usize,
    /// Chunks indexed.
    pub chunks: usize,
    /// Hash of the kb content the index reflects (`None` when built from in-memory documents).
    pub content_hash: Option<String>,
    /// Files that were not valid documents, with the reason; they are not searchable.
    pub skipped: Vec<(PathBuf, String)>,
    /// Whether opening had to (re)build the index rather than reuse one from disk.
    pub rebuilt: bool,
}

/// A searchable BM25 index over kb chunks; see [`KnowledgeBase::search`].
///
/// It is `Send + Sync`: share one behind an `Arc` (or a [`crate::Retriever`]) across threads.
pub struct KnowledgeBase {
    pub(crate) reader: IndexReader,
    pub(crate) fields: Fields,
    pub(crate) analyzer: TextAnalyzer,
    stats: KbStats,
    chunk_options: ChunkOptions,
}

impl std::fmt::Debug for KnowledgeBase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KnowledgeBase")
            .field("stats", &self.stats)
            .field("chunk_options", &self.chunk_options)
            .finish_non_exhaustive()
    }
}

impl KnowledgeBase {
    /// Opens the persistent index of the kb at `kb_dir` stored in `index_dir`, building it
    /// first when it is missing, unreadable or out of date with the kb's content.
    ///
    /// Invalid kb files are skipped with a warning and listed in [`KbStats::skipped`].
    pub fn open_or_build(kb_dir: impl AsRef<Path>, index_dir: impl AsRef<Path>) -> Result<Self> {
        Self::open_or_build_with(kb_dir, index_dir, &ChunkOptions::default())
    }

    /// [`KnowledgeBase::open_or_build`] with explicit chunking (part of the content hash).
    pub fn open_or_build_with(
        kb_dir: impl AsRef<Path>,
        index_dir: impl AsRef<Path>,
        options: &ChunkOptions,
    ) -> Result<Self> {
        let snapshot = Snapshot::read(kb_dir.as_ref(), options)?;
        Self::open_or_build_snapshot(&snapshot, index_dir.as_ref(), options)
    }

    pub(crate) fn open_or_build_snapshot(
        snapshot: &Snapshot,
        index_dir: &Path,
        options: &ChunkOptions,
    ) -> Result<Self> {
        if let Some(manifest) = read_manifest(index_dir) {
            if manifest.format == INDEX_FORMAT && manifest.content_hash == snapshot.hash {
                match Self::open_dir(index_dir, &manifest, options, false) {
                    Ok(kb) => return Ok(kb),
                    Err(error) => {
                        tracing::warn!(%error, path = %index_dir.display(), "index unreadable; rebuilding");
                    }
                }
            }
        }
        tracing::info!(path = %index_dir.display(), "building the knowledge-base index");
        let manifest = build_on_disk(snapshot, index_dir, options)?;
        Self::open_dir(index_dir, &manifest, options, true)
    }

    fn open_dir(
        index_dir: &Path,
        manifest: &Manifest,
        options: &ChunkOptions,
        rebuilt: bool,
    ) -> Result<Self> {
        let index = Index::open_in_dir(index_dir)?;
        register_analyzer(&index);
        let stats = KbStats {
            documents: manifest.documents,
            chunks: manifest.chunks,
            content_hash: Some(manifest.content_hash.clone()),
            skipped: manifest.skipped.clone(),
            rebuilt,
        };
        Self::new(&index, stats, options)
    }

    /// Indexes the kb at `kb_dir` in memory (nothing is written to disk); invalid files are
    /// skipped like in [`KnowledgeBase::open_or_build`].
    pub fn in_ram(kb_dir: impl AsRef<Path>) -> Result<Self> {
        Self::in_ram_with(kb_dir, &ChunkOptions::default())
    }

    /// [`KnowledgeBase::in_ram`] with explicit chunking.
    pub fn in_ram_with(kb_dir: impl AsRef<Path>, options: &ChunkOptions) -> Result<Self> {
        let snapshot = Snapshot::read(kb_dir.as_ref(), options)?;
        let report = snapshot.load();
        let mut kb = Self::from_documents_with(&report.documents, options)?;
        kb.stats.content_hash = Some(snapshot.hash);
        kb.stats.skipped = report.skipped;
        Ok(kb)
    }

    /// Indexes `documents` in memory.
    pub fn from_documents(documents: &[Document]) -> Result<Self> {
        Self::from_documents_with(documents, &ChunkOptions::default())
    }

    /// [`KnowledgeBase::from_documents`] with explicit chunking.
    pub fn from_documents_with(documents: &[Document], options: &ChunkOptions) -> Result<Self> {
        let (index, fields) = create_index(None)?;
        let chunks = write_documents(&index, &fields, documents, options)?;
        let stats = KbStats {
            documents: documents.len(),
            chunks,
            content_hash: None,
            skipped: Vec::new(),
            rebuilt: true,
        };
        Self::new(&index, stats, options)
    }

    fn new(index: &Index, stats: KbStats, options: &ChunkOptions) -> Result<Self> {
        // The index never changes once opened (a rebuild makes a new `KnowledgeBase`), so no
        // reload policy and no file watcher thread.
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(Self {
            reader,
            fields: Fields::of(index)?,
            analyzer: analyzer(),
            stats,
            chunk_options: options.clone(),
        })
    }

    /// What was indexed.
    pub fn stats(&self) -> &KbStats {
        &self.stats
    }

    /// How documents were chunked.
    pub fn chunk_options(&self) -> &ChunkOptions {
        &self.chunk_options
    }
}

//! [`Retriever`]: a shared handle on the current knowledge base that can be swapped for a
//! rebuilt one while searches run.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use serde::Serialize;

use crate::error::Result;
use crate::kb::KnowledgeBase;
use crate::search::{Passage, SearchOptions};
use crate::store::Snapshot;

/// What [`Retriever::reload`] did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum ReloadOutcome {
    /// The kb content is what the current index reflects: nothing was rebuilt or swapped.
    Unchanged,
    /// A new index is in service.
    Reloaded {
        /// Documents now indexed.
        documents: usize,
        /// Chunks now indexed.
        chunks: usize,
        /// Files that were not valid documents, with the reason.
        skipped: Vec<(PathBuf, String)>,
    },
}

/// The knowledge base in service, cheap to clone and share across threads.
///
/// A search takes the current [`KnowledgeBase`] (an `Arc` clone under a read lock held for
/// nanoseconds) and runs without any lock, so a [`Retriever::reload`] never waits for searches
/// and searches never wait for a rebuild: the ones in flight finish on the old index, which is
/// freed when the last of them drops it.
#[derive(Debug, Clone)]
pub struct Retriever {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    current: RwLock<Arc<KnowledgeBase>>,
    /// Serialises rebuilds: two at once would race on the index directory.
    reloading: Mutex<()>,
}

impl Retriever {
    /// Puts `kb` in service.
    pub fn new(kb: KnowledgeBase) -> Self {
        Self {
            shared: Arc::new(Shared {
                current: RwLock::new(Arc::new(kb)),
                reloading: Mutex::new(()),
            }),
        }
    }

    /// The knowledge base in service now; later reloads do not affect the returned one.
    pub fn current(&self) -> Arc<KnowledgeBase> {
        // A panic while holding the lock cannot leave a half-written `Arc`, so poison is moot.
        let guard = self
            .shared
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner());
        Arc::clone(&guard)
    }

    /// Searches the knowledge base in service; see [`KnowledgeBase::search`].
    pub fn search(&self, query: &str, options: &SearchOptions) -> Result<Vec<Passage>> {
        self.current().search(query, options)
    }

    /// Rebuilds from `kb_dir` into `index_dir` if the kb content changed since the index in
    /// service was built, then swaps the new index in. On error the old one stays in service.
    pub fn reload(
        &self,
        kb_dir: impl AsRef<Path>,
        index_dir: impl AsRef<Path>,
    ) -> Result<ReloadOutcome> {
        let _one_at_a_time = self
            .shared
            .reloading
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let options = self.current().chunk_options().clone();
        let snapshot = Snapshot::read(kb_dir.as_ref(), &options)?;
        if self.current().stats().content_hash.as_deref() == Some(snapshot.hash.as_str()) {
            return Ok(ReloadOutcome::Unchanged);
        }
        let fresh = KnowledgeBase::open_or_build_snapshot(&snapshot, index_dir.as_ref(), &options)?;
        let stats = fresh.stats().clone();
        self.replace(fresh);
        tracing::info!(
            documents = stats.documents,
            chunks = stats.chunks,
            "knowledge base reloaded"
        );
        Ok(ReloadOutcome::Reloaded {
            documents: stats.documents,
            chunks: stats.chunks,
            skipped: stats.skipped,
        })
    }

    /// Puts `kb` in service in place of the current one.
    pub fn replace(&self, kb: KnowledgeBase) {
        let fresh = Arc::new(kb);
        let old = {
            let mut guard = self
                .shared
                .current
                .write()
                .unwrap_or_else(|e| e.into_inner());
            std::mem::replace(&mut *guard, fresh)
        };
        // Dropped outside the lock: freeing an index must not stall searchers.
        drop(old);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync + Clone>() {}

    #[test]
    fn retriever_is_shareable() {
        assert_send_sync::<Retriever>();
    }

    #[test]
    fn reload_swaps_only_when_content_changes() {
        let kb = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        let index_dir = out.path().join("index");
        let write = |body: &str| {
            std::fs::create_dir_all(kb.path().join("history")).unwrap();
            std::fs::write(
                kb.path().join("history/a.md"),
                format!("---\ntitle: A\ndomain: history\n---\n{body}"),
            )
            .unwrap();
        };
        write("Carthage fell in 146 BC.");
        let retriever =
            Retriever::new(KnowledgeBase::open_or_build(kb.path(), &index_dir).unwrap());
        let held = retriever.current();
        assert_eq!(
            retriever.reload(kb.path(), &index_dir).unwrap(),
            ReloadOutcome::Unchanged
        );

        write("Byzantium became Constantinople.");
        let outcome = retriever.reload(kb.path(), &index_dir).unwrap();
        assert!(matches!(
            outcome,
            ReloadOutcome::Reloaded { documents: 1, .. }
        ));
        let options = SearchOptions::default();
        assert_eq!(
            retriever.search("constantinople", &options).unwrap().len(),
            1
        );
        assert!(retriever.search("carthage", &options).unwrap().is_empty());
        // A handle taken before the reload still searches the old index.
        assert_eq!(held.search("carthage", &options).unwrap().len(), 1);
    }
}

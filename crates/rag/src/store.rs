//! The persistent index: deciding whether it is current, and replacing it safely.
//!
//! An index directory holds tantivy's files plus [`MANIFEST_FILE`], which records the content
//! hash of the kb it was built from. A rebuild writes a complete index into a hidden sibling
//! directory and only then renames it into place, so a crash leaves either the old index, the
//! new one, or (between the two renames) none, never a half-written one.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::chunk::ChunkOptions;
use crate::document::{list_kb_files, read_bytes, KbFile, LoadReport};
use crate::error::{RagError, Result};
use crate::schema::{create_index, write_documents, INDEX_FORMAT};

/// File beside tantivy's own, naming the kb content the index was built from.
pub(crate) const MANIFEST_FILE: &str = "switchboard-kb.json";

/// Leftover build directories older than this are from a crashed build, not a running one.
const STALE_BUILD_AGE: Duration = Duration::from_secs(600);

/// The kb's files read once: hashed to decide on a rebuild, then parsed for it.
pub(crate) struct Snapshot {
    files: Vec<(KbFile, Vec<u8>)>,
    /// Hex SHA-256 over the index format, the chunk options and every file's path and bytes.
    pub hash: String,
}

impl Snapshot {
    pub(crate) fn read(kb_dir: &Path, options: &ChunkOptions) -> Result<Snapshot> {
        let mut hasher = Sha256::new();
        hasher.update(INDEX_FORMAT.to_le_bytes());
        for value in [options.max_words, options.overlap_words] {
            hasher.update((value as u64).to_le_bytes());
        }
        let mut files = Vec::new();
        for file in list_kb_files(kb_dir)? {
            let bytes = read_bytes(&file.absolute)?;
            // Lengths first, so no two different (path, content) lists hash the same bytes.
            hasher.update((file.relative.len() as u64).to_le_bytes());
            hasher.update(file.relative.as_bytes());
            hasher.update((bytes.len() as u64).to_le_bytes());
            hasher.update(&bytes);
            files.push((file, bytes));
        }
        let hash = hasher
            .finalize()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        Ok(Snapshot { files, hash })
    }

    /// Parses the files, skipping (and reporting) invalid ones.
    pub(crate) fn load(&self) -> LoadReport {
        let mut report = LoadReport::default();
        for (file, bytes) in &self.files {
            report.add(file, bytes);
        }
        report
    }
}

/// What an on-disk index was built from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Manifest {
    pub format: u32,
    pub content_hash: String,
    pub documents: usize,
    pub chunks: usize,
    pub skipped: Vec<(PathBuf, String)>,
}

/// The manifest of the index at `index_dir`, if there is a readable one.
pub(crate) fn read_manifest(index_dir: &Path) -> Option<Manifest> {
    let bytes = std::fs::read(index_dir.join(MANIFEST_FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Builds a fresh index of `snapshot` and moves it to `index_dir`, replacing what was there.
pub(crate) fn build_on_disk(
    snapshot: &Snapshot,
    index_dir: &Path,
    options: &ChunkOptions,
) -> Result<Manifest> {
    let (parent, name) = split_dir(index_dir);
    std::fs::create_dir_all(&parent).map_err(|e| RagError::io(&parent, e))?;
    remove_stale_builds(&parent, &name);

    let staging = unique_sibling(&parent, &name, "tmp");
    std::fs::create_dir(&staging).map_err(|e| RagError::io(&staging, e))?;
    let built = write_staging(snapshot, &staging, options);
    let manifest = match built {
        Ok(manifest) => manifest,
        Err(error) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(error);
        }
    };
    swap_into_place(&staging, index_dir, &parent, &name)?;
    Ok(manifest)
}

fn write_staging(snapshot: &Snapshot, staging: &Path, options: &ChunkOptions) -> Result<Manifest> {
    let report = snapshot.load();
    let (index, fields) = create_index(Some(staging))?;
    let chunks = write_documents(&index, &fields, &report.documents, options)?;
    let manifest = Manifest {
        format: INDEX_FORMAT,
        content_hash: snapshot.hash.clone(),
        documents: report.documents.len(),
        chunks,
        skipped: report.skipped,
    };
    let path = staging.join(MANIFEST_FILE);
    let json = serde_json::to_vec_pretty(&manifest).map_err(|e| RagError::io(&path, e.into()))?;
    std::fs::write(&path, json).map_err(|e| RagError::io(&path, e))?;
    Ok(manifest)
}

/// Renames the finished `staging` directory to `target`, moving any old index out of the way
/// first and deleting it afterwards (readers that still map its files keep them until done).
fn swap_into_place(staging: &Path, target: &Path, parent: &Path, name: &str) -> Result<()> {
    if !target.exists() {
        return std::fs::rename(staging, target).map_err(|e| RagError::io(target, e));
    }
    let retired = unique_sibling(parent, name, "old");
    std::fs::rename(target, &retired).map_err(|e| RagError::io(target, e))?;
    if let Err(error) = std::fs::rename(staging, target) {
        // Put the previous index back rather than leave nothing.
        let _ = std::fs::rename(&retired, target);
        let _ = std::fs::remove_dir_all(staging);
        return Err(RagError::io(target, error));
    }
    if let Err(error) = std::fs::remove_dir_all(&retired) {
        tracing::warn!(path = %retired.display(), %error, "could not delete the previous index");
    }
    Ok(())
}

/// `(parent, file name)` of the index directory; a bare relative name lives in `.`.
fn split_dir(index_dir: &Path) -> (PathBuf, String) {
    let parent = match index_dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = index_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "index".to_owned());
    (parent, name)
}

/// A hidden sibling name no other build in this or another process is using.
fn unique_sibling(parent: &Path, name: &str, kind: &str) -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    parent.join(format!(".{name}.{kind}-{}-{nanos}", std::process::id()))
}

/// Deletes build and retired directories that a crashed process left behind.
fn remove_stale_builds(parent: &Path, name: &str) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    let prefixes = [format!(".{name}.tmp-"), format!(".{name}.old-")];
    for entry in entries.flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        if !prefixes.iter().any(|p| file_name.starts_with(p.as_str())) {
            continue;
        }
        let age = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|modified| modified.elapsed().ok());
        if age.is_some_and(|age| age > STALE_BUILD_AGE) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn kb_with(dir: &Path, body: &str) {
        std::fs::create_dir_all(dir.join("biology")).unwrap();
        std::fs::write(
            dir.join("biology/a.md"),
            format!("---\ntitle: A\ndomain: biology\n---\n{body}"),
        )
        .unwrap();
    }

    #[test]
    fn the_hash_follows_content_paths_and_options() {
        let dir = tempfile::tempdir().unwrap();
        kb_with(dir.path(), "one");
        let options = ChunkOptions::default();
        let first = Snapshot::read(dir.path(), &options).unwrap().hash;
        assert_eq!(first, Snapshot::read(dir.path(), &options).unwrap().hash);
        assert_eq!(first.len(), 64);

        let other_options = ChunkOptions {
            max_words: 7,
            ..options.clone()
        };
        assert_ne!(
            first,
            Snapshot::read(dir.path(), &other_options).unwrap().hash
        );

        kb_with(dir.path(), "two");
        assert_ne!(first, Snapshot::read(dir.path(), &options).unwrap().hash);

        kb_with(dir.path(), "one");
        std::fs::rename(
            dir.path().join("biology/a.md"),
            dir.path().join("biology/b.md"),
        )
        .unwrap();
        assert_ne!(first, Snapshot::read(dir.path(), &options).unwrap().hash);
    }

    #[test]
    fn builds_replace_the_old_index_and_leave_no_staging_dirs() {
        let kb = tempfile::tempdir().unwrap();
        kb_with(kb.path(), "text");
        let out = tempfile::tempdir().unwrap();
        let index_dir = out.path().join("index");
        let options = ChunkOptions::default();
        for body in ["first", "second"] {
            kb_with(kb.path(), body);
            let snapshot = Snapshot::read(kb.path(), &options).unwrap();
            let manifest = build_on_disk(&snapshot, &index_dir, &options).unwrap();
            assert_eq!(read_manifest(&index_dir), Some(manifest));
        }
        let names: Vec<_> = std::fs::read_dir(out.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["index"]);
    }

    #[test]
    fn relative_index_dirs_have_a_parent() {
        assert_eq!(
            split_dir(Path::new("idx")),
            (PathBuf::from("."), "idx".to_owned())
        );
        assert_eq!(
            split_dir(Path::new("/a/b")),
            (PathBuf::from("/a"), "b".to_owned())
        );
    }
}

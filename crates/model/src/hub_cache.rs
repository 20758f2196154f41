//! Finding a Hugging Face Hub model in the local hub cache, offline.
//!
//! The cache (what `huggingface-cli download` and transformers write) looks like
//! `<cache>/models--Org--Name/{refs/<branch>, snapshots/<commit>/<files>, blobs/<sha>}`, where
//! snapshot files are usually symlinks into `blobs/`. Nothing here touches the network.

use std::path::{Path, PathBuf};

use crate::error::{ModelError, Result};

/// The hub cache directories to search, in the order the Hugging Face tools use:
/// `$HF_HUB_CACHE`, `$HF_HOME/hub`, `$XDG_CACHE_HOME/huggingface/hub`, `~/.cache/huggingface/hub`.
pub fn default_hub_caches() -> Vec<PathBuf> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let mut dirs = Vec::new();
    dirs.extend(env("HF_HUB_CACHE"));
    dirs.extend(env("HF_HOME").map(|h| h.join("hub")));
    dirs.extend(env("XDG_CACHE_HOME").map(|c| c.join("huggingface/hub")));
    dirs.extend(env("HOME").map(|h| h.join(".cache/huggingface/hub")));
    dirs
}

/// Resolves a model given as a directory or as a hub id (`Org/Name`, optionally
/// `Org/Name@revision` with a branch, tag or commit) to a checkpoint directory.
pub fn resolve_model_dir(spec: &str, caches: &[PathBuf]) -> Result<PathBuf> {
    let as_path = Path::new(spec);
    if as_path.is_dir() {
        return Ok(as_path.to_path_buf());
    }
    let (id, revision) = spec.split_once('@').unwrap_or((spec, "main"));
    let parts: Vec<&str> = id.split('/').collect();
    let valid = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    let is_hub_id =
        matches!(parts.as_slice(), [org, name] if valid(org) && valid(name) && *org != "..");
    if !is_hub_id {
        return Err(ModelError::MissingFile {
            path: as_path.to_path_buf(),
            reason: "not a directory, nor a hub id of the form Org/Name".into(),
        });
    }
    let folder = format!("models--{}", id.replace('/', "--"));
    for cache in caches {
        let repo = cache.join(&folder);
        if !repo.is_dir() {
            continue;
        }
        let commit = if revision.len() == 40 && revision.chars().all(|c| c.is_ascii_hexdigit()) {
            revision.to_string()
        } else {
            let ref_file = repo.join("refs").join(revision);
            match std::fs::read_to_string(&ref_file) {
                Ok(c) => c.trim().to_string(),
                Err(_) => continue,
            }
        };
        let snapshot = repo.join("snapshots").join(&commit);
        if snapshot.join("config.json").is_file() {
            return Ok(snapshot);
        }
    }
    Err(ModelError::MissingFile {
        path: as_path.to_path_buf(),
        reason: format!(
            "no local copy of hub model {id} (revision {revision}) in {}; download it while online \
             (e.g. `huggingface-cli download {id}`) or pass a directory",
            caches.iter().map(|c| c.display().to_string()).collect::<Vec<_>>().join(", ")
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds the layout the Hub tools write: blobs, a snapshot of symlinks, a ref.
    fn fake_cache(root: &Path, commit: &str) -> PathBuf {
        let repo = root.join("models--Org--Tiny-Model");
        let (blobs, snapshot) = (repo.join("blobs"), repo.join("snapshots").join(commit));
        std::fs::create_dir_all(&blobs).expect("mkdir");
        std::fs::create_dir_all(&snapshot).expect("mkdir");
        std::fs::create_dir_all(repo.join("refs")).expect("mkdir");
        std::fs::write(blobs.join("0123abcd"), "{}").expect("blob");
        std::os::unix::fs::symlink("../../blobs/0123abcd", snapshot.join("config.json"))
            .expect("link");
        std::fs::write(repo.join("refs/main"), format!("{commit}\n")).expect("ref");
        snapshot
    }

    #[test]
    fn resolves_directories_hub_ids_and_revisions() {
        let tmp = tempfile::tempdir().expect("tmp");
        let commit = "a".repeat(40);
        let snapshot = fake_cache(tmp.path(), &commit);
        let caches = vec![tmp.path().join("missing"), tmp.path().to_path_buf()];
        assert_eq!(
            resolve_model_dir("Org/Tiny-Model", &caches).expect("by id"),
            snapshot
        );
        let pinned = format!("Org/Tiny-Model@{commit}");
        assert_eq!(
            resolve_model_dir(&pinned, &caches).expect("by commit"),
            snapshot
        );
        let dir = snapshot.to_str().expect("utf-8");
        assert_eq!(resolve_model_dir(dir, &caches).expect("by path"), snapshot);

        let err = resolve_model_dir("Org/Other", &caches)
            .expect_err("not cached")
            .to_string();
        assert!(
            err.contains("no local copy of hub model Org/Other"),
            "{err}"
        );
        let err = resolve_model_dir("Org/Tiny-Model@dev", &caches)
            .expect_err("no such ref")
            .to_string();
        assert!(err.contains("revision dev"), "{err}");
        let err = resolve_model_dir("../../etc", &caches)
            .expect_err("not an id")
            .to_string();
        assert!(err.contains("nor a hub id"), "{err}");
    }
}

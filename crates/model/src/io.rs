//! Atomic writes: a reader sees either the old state or the complete new file or directory.

use std::path::{Path, PathBuf};

use candle_core::Tensor;

use crate::error::{ModelError, Result};

fn temp_sibling(dest: &Path) -> PathBuf {
    let name = dest
        .file_name()
        .map_or_else(|| "out".into(), |n| n.to_string_lossy().into_owned());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    dest.with_file_name(format!(".{name}.tmp-{}-{nanos}", std::process::id()))
}

/// Writes `tensors` as a safetensors file at `path` via a temporary file and a rename.
pub fn write_safetensors(
    path: &Path,
    tensors: &[(String, Tensor)],
    metadata: Option<std::collections::HashMap<String, String>>,
) -> Result<()> {
    let tmp = temp_sibling(path);
    let contiguous = tensors
        .iter()
        .map(|(name, t)| Ok((name.as_str(), t.contiguous()?)))
        .collect::<Result<Vec<_>>>()?;
    let data = contiguous.iter().map(|(n, t)| (*n, t));
    let written =
        safetensors::serialize_to_file(data, metadata, &tmp).map_err(|e| ModelError::Safetensors {
            path: path.to_path_buf(),
            reason: e.to_string(),
        });
    // safetensors writes through a private (0600) temporary file; weights are meant to be
    // shared like the other files of a checkpoint.
    let written = written.and_then(|()| readable_by_all(&tmp));
    finish_file(written, &tmp, path)
}

#[cfg(unix)]
fn readable_by_all(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
        .map_err(|e| ModelError::io(path, e))
}

#[cfg(not(unix))]
fn readable_by_all(_path: &Path) -> Result<()> {
    Ok(())
}

/// Writes `bytes` to `path` via a temporary file and a rename.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_sibling(path);
    let written = std::fs::write(&tmp, bytes).map_err(|e| ModelError::io(&tmp, e));
    finish_file(written, &tmp, path)
}

fn finish_file(written: Result<()>, tmp: &Path, dest: &Path) -> Result<()> {
    let synced = written.and_then(|()| {
        std::fs::File::open(tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| ModelError::io(tmp, e))
    });
    if let Err(e) = synced {
        let _ = std::fs::remove_file(tmp);
        return Err(e);
    }
    std::fs::rename(tmp, dest).map_err(|e| {
        let _ = std::fs::remove_file(tmp);
        ModelError::io(dest, e)
    })
}

/// Builds a directory at `dest` by filling a temporary sibling and renaming it into place.
/// Refuses to replace an existing non-empty `dest`; on failure nothing is left behind.
pub fn write_dir(dest: &Path, fill: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    if dest.exists() {
        let empty = std::fs::read_dir(dest)
            .map_err(|e| ModelError::io(dest, e))?
            .next()
            .is_none();
        if !empty {
            return Err(ModelError::io(
                dest,
                std::io::Error::new(std::io::ErrorKind::AlreadyExists, "exists and is not empty"),
            ));
        }
    }
    if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| ModelError::io(parent, e))?;
    }
    let tmp = temp_sibling(dest);
    std::fs::create_dir(&tmp).map_err(|e| ModelError::io(&tmp, e))?;
    let filled = fill(&tmp).and_then(|()| {
        if dest.exists() {
            std::fs::remove_dir(dest).map_err(|e| ModelError::io(dest, e))?;
        }
        std::fs::rename(&tmp, dest).map_err(|e| ModelError::io(dest, e))
    });
    if filled.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    filled
}

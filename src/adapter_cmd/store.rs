//! The adapter root on disk, as `promote` and `restore` change it.
//!
//! ```text
//! <root>/<name>/                    the live version (what `serve` loads at start)
//! <root>/.staging/<name>-<stamp>/   a candidate while it is evaluated
//! <root>/.archive/<name>/<stamp>/   earlier live versions, newest stamp last
//! ```
//!
//! Every directory appears whole or not at all: files are copied into a hidden temporary
//! directory beside the destination and renamed into place. Folders starting with `.` are not
//! adapters, so `serve` skips them.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};

const STAGING: &str = ".staging";
const ARCHIVE: &str = ".archive";
/// The files that make a PEFT adapter.
const REQUIRED: [&str; 2] = ["adapter_config.json", "adapter_model.safetensors"];

/// An adapter root directory (the server's `--adapter-root`).
pub struct AdapterStore {
    root: PathBuf,
}

impl AdapterStore {
    /// Opens `root`, which must be a directory.
    pub fn open(root: &Path) -> Result<Self> {
        if !root.is_dir() {
            bail!(
                "{}: the adapter root does not exist (give --adapter-root: the directory the \
                 server loads adapters from)",
                root.display()
            );
        }
        Ok(Self {
            root: root.to_path_buf(),
        })
    }

    /// The live version's directory (may not exist yet).
    pub fn live(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// A path relative to the root, such as [`Self::stage`] returns.
    pub fn resolve(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }

    /// Copies the candidate's top-level files into the staging area; returns the staged path
    /// relative to the root (what the server is asked to load).
    pub fn stage(&self, name: &str, candidate: &Path, stamp: &str) -> Result<String> {
        check_adapter(candidate)?;
        let relative = format!("{STAGING}/{name}-{stamp}");
        copy_dir_atomic(candidate, &self.root.join(&relative))?;
        Ok(relative)
    }

    /// Removes a staged candidate.
    pub fn discard(&self, relative: &str) -> Result<()> {
        let path = self.root.join(relative);
        fs::remove_dir_all(&path).with_context(|| format!("removing {}", path.display()))
    }

    /// Copies the live version of `name` into the archive as `stamp`; `None` when there is no
    /// live version.
    pub fn archive_live(&self, name: &str, stamp: &str) -> Result<Option<String>> {
        let live = self.live(name);
        if !live.is_dir() {
            return Ok(None);
        }
        copy_dir_atomic(&live, &self.archived(name, stamp))?;
        Ok(Some(stamp.to_string()))
    }

    /// Makes the adapter in `from` the live version of `name`: the new files are copied beside
    /// it, then two renames swap them in.
    pub fn install(&self, name: &str, from: &Path) -> Result<()> {
        check_adapter(from)?;
        let live = self.live(name);
        let incoming = self.root.join(format!(".{name}.incoming"));
        copy_dir_atomic(from, &incoming)?;
        let outgoing = self.root.join(format!(".{name}.outgoing"));
        remove_if_present(&outgoing)?;
        if live.exists() {
            fs::rename(&live, &outgoing)
                .with_context(|| format!("moving {} aside", live.display()))?;
        }
        fs::rename(&incoming, &live).with_context(|| format!("installing {}", live.display()))?;
        remove_if_present(&outgoing)
    }

    /// The archived versions of `name`, oldest first.
    pub fn versions(&self, name: &str) -> Result<Vec<String>> {
        let dir = self.root.join(ARCHIVE).join(name);
        if !dir.is_dir() {
            return Ok(Vec::new());
        }
        let mut versions: Vec<String> = fs::read_dir(&dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|v| !v.starts_with('.'))
            .collect();
        versions.sort();
        Ok(versions)
    }

    /// Where version `stamp` of `name` is archived.
    pub fn archived(&self, name: &str, stamp: &str) -> PathBuf {
        self.root.join(ARCHIVE).join(name).join(stamp)
    }

    /// A stamp for now that names no archived version of `name` and no staged candidate yet.
    pub fn fresh_stamp(&self, name: &str) -> String {
        let base = utc_stamp(SystemTime::now());
        let taken = |s: &str| {
            self.archived(name, s).exists()
                || self.root.join(STAGING).join(format!("{name}-{s}")).exists()
        };
        let mut stamp = base.clone();
        let mut n = 2;
        while taken(&stamp) {
            stamp = format!("{base}-{n}");
            n += 1;
        }
        stamp
    }
}

/// Fails, naming the directory, unless it holds a PEFT adapter.
pub fn check_adapter(dir: &Path) -> Result<()> {
    if !dir.is_dir() {
        bail!("{}: no such adapter directory", dir.display());
    }
    for file in REQUIRED {
        if !dir.join(file).is_file() {
            bail!(
                "{}: not a PEFT adapter (no {file}; expected {})",
                dir.display(),
                REQUIRED.join(" and ")
            );
        }
    }
    Ok(())
}

/// Copies the regular files at the top of `from` (not sub-directories such as training
/// checkpoints) into `to`, which appears whole: a temporary sibling is renamed into place.
fn copy_dir_atomic(from: &Path, to: &Path) -> Result<()> {
    let parent = to
        .parent()
        .with_context(|| format!("{} has no parent directory", to.display()))?;
    fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    if to.exists() {
        bail!("{} already exists", to.display());
    }
    let name = to.file_name().unwrap_or_default().to_string_lossy();
    let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    remove_if_present(&tmp)?;
    fs::create_dir(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let copied = (|| -> Result<()> {
        for entry in fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
            let path = entry?.path();
            if path.is_file() {
                let target = tmp.join(path.file_name().unwrap_or_default());
                fs::copy(&path, &target).with_context(|| {
                    format!("copying {} to {}", path.display(), target.display())
                })?;
            }
        }
        fs::rename(&tmp, to).with_context(|| format!("renaming into {}", to.display()))
    })();
    if copied.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    copied
}

fn remove_if_present(path: &Path) -> Result<()> {
    match fs::remove_dir_all(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// `20261206T032400Z`: sorts by time and is a valid file name everywhere.
fn utc_stamp(at: SystemTime) -> String {
    let secs = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn adapter(dir: &Path, marker: &str) {
        fs::create_dir_all(dir.join("checkpoints")).unwrap();
        fs::write(dir.join("adapter_config.json"), marker).unwrap();
        fs::write(dir.join("adapter_model.safetensors"), marker).unwrap();
    }

    #[test]
    fn stamps_are_utc_and_sortable() {
        let at = UNIX_EPOCH + Duration::from_secs(1_796_527_440); // 2026-12-06T03:24:00Z
        assert_eq!(utc_stamp(at), "20261206T032400Z");
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn install_archive_and_restore_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("adapters");
        fs::create_dir(&root).unwrap();
        let store = AdapterStore::open(&root).unwrap();
        adapter(&store.live("bio"), "v1");
        let candidate = dir.path().join("run");
        adapter(&candidate, "v2");

        let staged = store.stage("bio", &candidate, "s1").unwrap();
        assert!(
            !root.join(&staged).join("checkpoints").exists(),
            "only top files"
        );
        assert_eq!(
            store.archive_live("bio", "s1").unwrap().as_deref(),
            Some("s1")
        );
        store.install("bio", &root.join(&staged)).unwrap();
        store.discard(&staged).unwrap();
        let read = |p: PathBuf| fs::read_to_string(p.join("adapter_config.json")).unwrap();
        assert_eq!(read(store.live("bio")), "v2");
        assert_eq!(store.versions("bio").unwrap(), ["s1"]);

        store.install("bio", &store.archived("bio", "s1")).unwrap();
        assert_eq!(read(store.live("bio")), "v1");
        let leftovers: Vec<_> = fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("incoming") || n.contains("outgoing") || n.contains("tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn a_directory_without_adapter_files_is_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = AdapterStore::open(dir.path()).unwrap();
        let empty = dir.path().join("empty");
        fs::create_dir(&empty).unwrap();
        let err = store.stage("bio", &empty, "s").unwrap_err().to_string();
        assert!(
            err.contains("empty") && err.contains("adapter_config.json"),
            "{err}"
        );
        assert!(AdapterStore::open(&dir.path().join("nope")).is_err());
    }
}

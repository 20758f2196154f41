//! The files under a directory, recursively, in sorted order so that output is the same on every
//! machine. Hidden files and folders (`.name`) are left out; symlinked folders are not followed
//! (a link cycle would never end).

use std::path::{Path, PathBuf};

use super::error::{ExtractError, Result};

/// What the walk found: files (relative to the root) and folders that could not be listed.
#[derive(Debug, Default)]
pub struct Walk {
    /// Files, relative to the root, sorted.
    pub files: Vec<PathBuf>,
    /// Sub-folders that could not be read, with the error.
    pub unreadable: Vec<(PathBuf, ExtractError)>,
}

/// Lists `root`. An error only if `root` itself cannot be read or is not a directory.
pub fn walk(root: &Path) -> Result<Walk> {
    let metadata = std::fs::metadata(root).map_err(|source| ExtractError::Io {
        path: root.to_path_buf(),
        source,
    })?;
    if !metadata.is_dir() {
        return Err(ExtractError::NotADirectory {
            path: root.to_path_buf(),
        });
    }
    let mut out = Walk::default();
    visit(root, Path::new(""), &mut out).map_err(|source| ExtractError::Io {
        path: root.to_path_buf(),
        source,
    })?;
    Ok(out)
}

fn visit(root: &Path, relative: &Path, out: &mut Walk) -> std::io::Result<()> {
    let mut entries =
        std::fs::read_dir(root.join(relative))?.collect::<std::io::Result<Vec<_>>>()?;
    entries.sort_by_key(|entry| entry.file_name());
    for entry in entries {
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let path = relative.join(&name);
        let file_type = entry.file_type()?;
        let is_file = if file_type.is_symlink() {
            std::fs::metadata(entry.path()).is_ok_and(|m| m.is_file())
        } else {
            file_type.is_file()
        };
        if file_type.is_dir() {
            if let Err(source) = visit(root, &path, out) {
                out.unreadable.push((
                    path.clone(),
                    ExtractError::Io {
                        path: root.join(&path),
                        source,
                    },
                ));
            }
        } else if is_file {
            out.files.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_recursive_without_hidden() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        for file in [
            "b.md",
            "a/z.txt",
            "a/c.pdf",
            ".hidden.md",
            ".git/x.md",
            "a/.h/y.md",
        ] {
            let path = dir.path().join(file);
            std::fs::create_dir_all(path.parent().unwrap_or(dir.path()))
                .unwrap_or_else(|e| panic!("{e}"));
            std::fs::write(path, "x").unwrap_or_else(|e| panic!("{e}"));
        }
        let got = walk(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            got.files,
            [PathBuf::from("a/c.pdf"), "a/z.txt".into(), "b.md".into()]
        );
    }

    #[test]
    fn missing_and_non_directories_are_errors() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            walk(&dir.path().join("nope")),
            Err(ExtractError::Io { .. })
        ));
        let file = dir.path().join("f.md");
        std::fs::write(&file, "x").unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            walk(&file),
            Err(ExtractError::NotADirectory { .. })
        ));
    }
}

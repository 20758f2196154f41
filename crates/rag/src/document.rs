//! Knowledge-base documents: Markdown files with a small front matter, one folder per domain.
//!
//! ```text
//! ---
//! title: Human Immune System
//! domain: biology
//! tags: [immunology, physiology]
//! ---
//! # Human Immune System
//! ...
//! ```
//!
//! The front matter is a tiny subset of YAML (`key: value` lines, inline `[a, b]` or block `- a`
//! lists, optional quotes), parsed by hand so a stray colon in a title cannot pull in a YAML
//! dependency's surprises.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{RagError, Result};

/// The domains a document may belong to: the adapters the router can send a request to.
pub const DOMAINS: &[&str] = &["biology", "history", "security", "teaching"];

/// Folders under the kb root that hold no documents.
const NON_DOCUMENT_DIRS: &[&str] = &["eval"];

/// One knowledge-base document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Document {
    /// Path relative to the kb root with `/` separators (`biology/immune-system.md`); it is the
    /// document's identity in citations and evaluation sets.
    pub path: String,
    /// Title from the front matter.
    pub title: String,
    /// Domain from the front matter, one of [`DOMAINS`].
    pub domain: String,
    /// Tags from the front matter (possibly empty).
    pub tags: Vec<String>,
    /// The Markdown after the front matter.
    pub body: String,
}

impl Document {
    /// Parses a document's text; `path` is its kb-relative path and names it in errors.
    pub fn parse(path: &str, text: &str) -> Result<Document> {
        parse_document(path, Path::new(path), text)
    }
}

/// What [`load_kb_report`] found: the documents that parsed and the files it had to skip.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    /// Valid documents, sorted by path.
    pub documents: Vec<Document>,
    /// Files that are not valid documents, with the reason, in path order.
    pub skipped: Vec<(PathBuf, String)>,
}

/// Loads every document of the kb at `dir`, failing on the first invalid file.
///
/// Documents are the `.md` files below the kb's subfolders (one per domain); files at the root
/// (a README), hidden entries and the `eval/` folder are not documents.
pub fn load_kb(dir: impl AsRef<Path>) -> Result<Vec<Document>> {
    let dir = dir.as_ref();
    let mut documents = Vec::new();
    for file in list_kb_files(dir)? {
        let bytes = read_bytes(&file.absolute)?;
        documents.push(parse_file(&file, &bytes)?);
    }
    Ok(documents)
}

/// Loads the kb at `dir` like [`load_kb`] but skips invalid files (with a warning) instead of
/// failing; only an unreadable kb directory is an error.
pub fn load_kb_report(dir: impl AsRef<Path>) -> Result<LoadReport> {
    let dir = dir.as_ref();
    let mut report = LoadReport::default();
    for file in list_kb_files(dir)? {
        match read_bytes(&file.absolute) {
            Ok(bytes) => report.add(&file, &bytes),
            Err(error) => report.skipped.push((file.absolute, error.to_string())),
        }
    }
    Ok(report)
}

impl LoadReport {
    /// Parses one file into the report, recording it as skipped when it is not a document.
    pub(crate) fn add(&mut self, file: &KbFile, bytes: &[u8]) {
        match parse_file(file, bytes) {
            Ok(document) => self.documents.push(document),
            Err(error) => {
                tracing::warn!(%error, "skipping knowledge-base file");
                self.skipped
                    .push((file.absolute.clone(), error.to_string()));
            }
        }
    }
}

/// A document file found in the kb.
#[derive(Debug, Clone)]
pub(crate) struct KbFile {
    /// `/`-separated path relative to the kb root.
    pub relative: String,
    /// Path usable to open the file.
    pub absolute: PathBuf,
}

/// Lists the kb's document files in a stable (sorted) order.
pub(crate) fn list_kb_files(dir: &Path) -> Result<Vec<KbFile>> {
    let mut files = Vec::new();
    for entry in sorted_entries(dir)? {
        let name = file_name(&entry);
        if entry.is_dir() && !name.starts_with('.') && !NON_DOCUMENT_DIRS.contains(&name.as_str()) {
            collect_markdown(&entry, &name, &mut files)?;
        }
    }
    Ok(files)
}

fn collect_markdown(dir: &Path, relative: &str, files: &mut Vec<KbFile>) -> Result<()> {
    for entry in sorted_entries(dir)? {
        let name = file_name(&entry);
        if name.starts_with('.') {
            continue;
        }
        let child = format!("{relative}/{name}");
        if entry.is_dir() {
            collect_markdown(&entry, &child, files)?;
        } else if name.ends_with(".md") {
            files.push(KbFile {
                relative: child,
                absolute: entry,
            });
        }
    }
    Ok(())
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let reader = std::fs::read_dir(dir).map_err(|e| RagError::io(dir, e))?;
    let mut entries = Vec::new();
    for entry in reader {
        entries.push(entry.map_err(|e| RagError::io(dir, e))?.path());
    }
    entries.sort();
    Ok(entries)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

pub(crate) fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| RagError::io(path, e))
}

/// Parses a kb file's bytes; errors name the file's full path.
pub(crate) fn parse_file(file: &KbFile, bytes: &[u8]) -> Result<Document> {
    let text = std::str::from_utf8(bytes).map_err(|_| RagError::FrontMatter {
        path: file.absolute.clone(),
        reason: "the file is not valid UTF-8".into(),
    })?;
    parse_document(&file.relative, &file.absolute, text)
}

fn parse_document(relative: &str, shown_path: &Path, text: &str) -> Result<Document> {
    let bad = |reason: String| RagError::FrontMatter {
        path: shown_path.to_owned(),
        reason,
    };
    let (front, body) = split_front_matter(text).map_err(bad)?;
    let fields = FrontMatter::parse(front).map_err(bad)?;

    let title = fields.title.unwrap_or_default();
    if title.is_empty() {
        return Err(bad("missing `title`".into()));
    }
    let domain = fields.domain.unwrap_or_default().to_lowercase();
    if !DOMAINS.contains(&domain.as_str()) {
        return Err(RagError::UnknownDomain {
            path: shown_path.to_owned(),
            domain,
            expected: DOMAINS.join(", "),
        });
    }
    // The folder is only a convention; the front matter decides, but a mismatch is worth a word.
    if let Some(folder) = relative.split('/').next() {
        if relative.contains('/') && folder != domain {
            tracing::warn!(path = %shown_path.display(), %domain, %folder, "domain differs from its folder");
        }
    }
    Ok(Document {
        path: relative.to_owned(),
        title,
        domain,
        tags: fields.tags,
        body: body.to_owned(),
    })
}

/// Splits `---\n<front matter>\n---\n<body>`; the error says what is missing.
fn split_front_matter(text: &str) -> std::result::Result<(&str, &str), String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = LineCursor::new(text);
    match lines.next() {
        Some((_, first)) if first.trim_end() == "---" => {}
        _ => return Err("the file does not start with a `---` front-matter block".into()),
    }
    let front_start = lines.offset;
    while let Some((start, line)) = lines.next() {
        let line = line.trim_end();
        if line == "---" || line == "..." {
            return Ok((&text[front_start..start], &text[lines.offset..]));
        }
    }
    Err("the front-matter block is never closed with `---`".into())
}

/// Iterates lines with their byte offsets, keeping `\r` for the caller to trim.
struct LineCursor<'a> {
    text: &'a str,
    offset: usize,
}

impl<'a> LineCursor<'a> {
    fn new(text: &'a str) -> Self {
        Self { text, offset: 0 }
    }

    fn next(&mut self) -> Option<(usize, &'a str)> {
        if self.offset >= self.text.len() {
            return None;
        }
        let start = self.offset;
        let rest = &self.text[start..];
        let (line, advance) = match rest.find('\n') {
            Some(end) => (&rest[..end], end + 1),
            None => (rest, rest.len()),
        };
        self.offset += advance;
        Some((start, line))
    }
}

/// The front-matter keys we use; others are accepted and ignored.
#[derive(Debug, Default)]
struct FrontMatter {
    title: Option<String>,
    domain: Option<String>,
    tags: Vec<String>,
}

impl FrontMatter {
    fn parse(block: &str) -> std::result::Result<FrontMatter, String> {
        let mut fields = FrontMatter::default();
        // The key whose block list (`- item` lines) we are reading, if any.
        let mut open_list: Option<String> = None;
        for (index, raw) in block.lines().enumerate() {
            let line = raw.trim_end();
            let trimmed = line.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            if let Some(item) = trimmed.strip_prefix("- ").or(trimmed.strip_prefix('-')) {
                match open_list.as_deref() {
                    Some("tags") => push_tag(&mut fields.tags, item),
                    Some(_) => {}
                    None => return Err(format!("line {}: list item without a key", index + 2)),
                }
                continue;
            }
            let Some((key, value)) = line.split_once(':') else {
                return Err(format!("line {}: expected `key: value`", index + 2));
            };
            let key = key.trim().to_lowercase();
            let value = value.trim();
            open_list = value.is_empty().then(|| key.clone());
            match key.as_str() {
                "title" => fields.title = Some(unquote(value).trim().to_owned()),
                "domain" => fields.domain = Some(unquote(value).trim().to_owned()),
                "tags" => fields.tags = parse_inline_list(value),
                _ => {}
            }
        }
        Ok(fields)
    }
}

/// `[a, "b c"]` or `a, b` (a bare scalar is a one-element list).
fn parse_inline_list(value: &str) -> Vec<String> {
    let inner = value
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .unwrap_or(value);
    let mut tags = Vec::new();
    for item in inner.split(',') {
        push_tag(&mut tags, item);
    }
    tags
}

fn push_tag(tags: &mut Vec<String>, item: &str) {
    let tag = unquote(item.trim()).trim();
    if !tag.is_empty() {
        tags.push(tag.to_owned());
    }
}

fn unquote(value: &str) -> &str {
    for quote in ['"', '\''] {
        if let Some(inner) = value
            .strip_prefix(quote)
            .and_then(|v| v.strip_suffix(quote))
        {
            return inner;
        }
    }
    value
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const GOOD: &str = "---\ntitle: Human Immune System\ndomain: biology\ntags: [immunology, \"cell biology\"]\n---\n# Human Immune System\n\nText.\n";

    #[test]
    fn parses_front_matter_and_keeps_the_body() {
        let doc = Document::parse("biology/immune.md", GOOD).unwrap();
        assert_eq!(doc.title, "Human Immune System");
        assert_eq!(doc.domain, "biology");
        assert_eq!(doc.tags, ["immunology", "cell biology"]);
        assert_eq!(doc.body, "# Human Immune System\n\nText.\n");
    }

    #[test]
    fn accepts_crlf_bom_quotes_and_block_lists() {
        let text = "\u{feff}---\r\ntitle: 'Rome: the Republic'\r\ndomain: History\r\ntags:\r\n  - rome\r\n  - republic\r\nauthor: x\r\n---\r\nBody";
        let doc = Document::parse("history/rome.md", text).unwrap();
        assert_eq!(doc.title, "Rome: the Republic");
        assert_eq!(doc.domain, "history");
        assert_eq!(doc.tags, ["rome", "republic"]);
        assert_eq!(doc.body, "Body");
    }

    #[test]
    fn tags_are_optional() {
        let doc =
            Document::parse("security/x.md", "---\ntitle: T\ndomain: security\n---\n").unwrap();
        assert!(doc.tags.is_empty());
        assert_eq!(doc.body, "");
    }

    #[test]
    fn rejects_missing_or_broken_front_matter() {
        for text in [
            "# No front matter\n",
            "---\ntitle: T\ndomain: biology\n",
            "---\ndomain: biology\n---\n",
            "---\ntitle: T\nthis line has no colon\ndomain: biology\n---\n",
        ] {
            let err = Document::parse("biology/bad.md", text).unwrap_err();
            assert!(
                matches!(err, RagError::FrontMatter { .. }),
                "{text:?}: {err}"
            );
            assert!(err.to_string().contains("biology/bad.md"));
        }
    }

    #[test]
    fn rejects_unknown_or_missing_domain() {
        for text in [
            "---\ntitle: T\ndomain: astrology\n---\n",
            "---\ntitle: T\n---\n",
        ] {
            let err = Document::parse("x/bad.md", text).unwrap_err();
            assert!(matches!(err, RagError::UnknownDomain { .. }), "{err}");
        }
    }

    #[test]
    fn loads_a_tree_and_reports_bad_files_by_path() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("biology/deeper")).unwrap();
        std::fs::create_dir_all(root.join("eval")).unwrap();
        std::fs::write(root.join("README.md"), "not a document").unwrap();
        std::fs::write(root.join("eval/biology.md"), "not a document").unwrap();
        std::fs::write(root.join("biology/a.md"), GOOD).unwrap();
        std::fs::write(root.join("biology/deeper/b.md"), GOOD).unwrap();
        std::fs::write(root.join("biology/notes.txt"), "ignored").unwrap();
        std::fs::write(root.join("biology/broken.md"), "# oops\n").unwrap();

        let report = load_kb_report(root).unwrap();
        let paths: Vec<_> = report.documents.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(paths, ["biology/a.md", "biology/deeper/b.md"]);
        assert_eq!(report.skipped.len(), 1);
        assert_eq!(report.skipped[0].0, root.join("biology/broken.md"));

        let err = load_kb(root).unwrap_err();
        assert!(err.to_string().contains("broken.md"), "{err}");
    }

    #[test]
    fn a_missing_kb_dir_is_an_io_error() {
        let err = load_kb("/definitely/not/here").unwrap_err();
        assert!(matches!(err, RagError::Io { .. }));
    }
}

//! One file → chunks: read, decode, split into sections, clean each, chunk each.

use std::path::Path;

use sha2::{Digest, Sha256};

use super::clean::Cleaner;
use super::error::{ExtractError, Result};
use super::{chunk, encoding, markdown, notebook, pdf, Chunk, FileKind, Section};

/// What every file is extracted with.
pub struct Settings<'a> {
    pub cleaner: &'a Cleaner,
    pub chunk_chars: usize,
    pub overlap: usize,
}

/// A file's chunks, each with its de-duplication key (normalised text).
pub struct Extracted {
    pub chunks: Vec<(String, Chunk)>,
    /// Chunks before de-duplication.
    pub total: usize,
    pub encoding: Option<&'static str>,
    pub pages: Option<u32>,
}

/// Extracts `root/relative`, a file of `kind`.
pub fn extract(
    root: &Path,
    relative: &Path,
    kind: FileKind,
    settings: &Settings<'_>,
) -> Result<Extracted> {
    let path = root.join(relative);
    let bytes = std::fs::read(&path).map_err(|source| ExtractError::Io {
        path: path.clone(),
        source,
    })?;
    let (sections, encoding) = match kind {
        FileKind::Pdf => (pdf::sections(&path, &bytes)?, None),
        FileKind::Text => {
            let (text, name) = encoding::decode(&path, &bytes)?;
            let section = Section {
                text,
                page: None,
                heading: None,
            };
            (vec![section], Some(name))
        }
        FileKind::Markdown => {
            let (text, name) = encoding::decode(&path, &bytes)?;
            (markdown::sections(&text), Some(name))
        }
        FileKind::Notebook => {
            let (json, name) = encoding::decode(&path, &bytes)?;
            let text = notebook::to_markdown(&path, &json)?;
            (markdown::sections(&text), Some(name))
        }
    };
    let pages = (kind == FileKind::Pdf).then_some(sections.len() as u32);
    let source = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/");
    let mut chunks = Vec::new();
    // Offsets count characters of the cleaned document: the cleaned sections joined by "\n\n".
    let mut offset = 0;
    for section in sections {
        let text = settings.cleaner.clean(&section.text);
        if text.is_empty() {
            continue;
        }
        let mut char_pos = CharPos::new(&text);
        for span in chunk::split(&text, settings.chunk_chars, settings.overlap) {
            let body = &text[span.start..span.end];
            let key = normalise(body);
            chunks.push((
                key.clone(),
                Chunk {
                    id: id_of(&key),
                    source: source.clone(),
                    kind,
                    page: section.page,
                    heading: section.heading.clone(),
                    chunk: chunks.len(),
                    start: offset + char_pos.at(span.start),
                    end: offset + char_pos.at(span.end),
                    text: body.to_owned(),
                },
            ));
        }
        offset += text.chars().count() + 2;
    }
    Ok(Extracted {
        total: chunks.len(),
        chunks,
        encoding,
        pages,
    })
}

/// Lower case, whitespace runs as one space: what two chunks must share to be duplicates.
fn normalise(text: &str) -> String {
    text.split_whitespace()
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The first 128 bits of the SHA-256 of the normalised text, in hex.
fn id_of(key: &str) -> String {
    Sha256::digest(key.as_bytes())[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Byte offset → character offset for increasing byte offsets, without rescanning from the
/// start each time.
struct CharPos<'a> {
    text: &'a str,
    byte: usize,
    chars: usize,
}

impl<'a> CharPos<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            text,
            byte: 0,
            chars: 0,
        }
    }

    fn at(&mut self, byte: usize) -> usize {
        if byte < self.byte {
            // Overlapping chunks start before the previous end: count from the start again.
            self.byte = 0;
            self.chars = 0;
        }
        self.chars += self.text[self.byte..byte].chars().count();
        self.byte = byte;
        self.chars
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalised_keys_and_ids() {
        assert_eq!(normalise("  Hello\n\tWORLD  "), "hello world");
        assert_eq!(id_of("hello world").len(), 32);
        assert_eq!(id_of("a"), id_of("a"));
        assert_ne!(id_of("a"), id_of("b"));
    }

    #[test]
    fn char_positions_follow_multibyte_text() {
        let text = "aé b€c";
        let mut pos = CharPos::new(text);
        assert_eq!(pos.at(3), 2);
        assert_eq!(pos.at(text.len()), 6);
        assert_eq!(pos.at(1), 1);
    }
}

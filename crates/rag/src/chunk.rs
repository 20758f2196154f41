//! Splitting documents into retrievable chunks.
//!
//! A document is cut into sections at its `#` and `##` headings; each section is then cut into
//! windows of whole paragraphs of at most [`ChunkOptions::max_words`] words. Consecutive windows
//! of a section share their boundary text (the previous window's last paragraph, or its last
//! sentences when that paragraph is long) so a fact that straddles a cut is still found whole in
//! one chunk. Deeper headings (`###`...) stay inside their section as short paragraphs, and
//! fenced code blocks are never split or mistaken for headings.

use serde::Serialize;

use crate::document::Document;
use crate::text::{first_words, sentence_spans, word_count};

/// How documents are cut into chunks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChunkOptions {
    /// Most words in one chunk (a single sentence longer than this is cut between words).
    pub max_words: usize,
    /// Most words repeated from the end of one window at the start of the next.
    pub overlap_words: usize,
}

impl Default for ChunkOptions {
    /// About 200 words: a passage of a few hundred tokens, so five of them fit a small model's
    /// prompt, yet long enough to hold a fact with its context.
    fn default() -> Self {
        Self {
            max_words: 200,
            overlap_words: 40,
        }
    }
}

/// One retrievable piece of a document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Chunk {
    /// Position of the chunk in its document, from 0.
    pub number: usize,
    /// Headings above the chunk, outermost first: the `#` heading (the document title when the
    /// body has none) and the `##` heading, if any.
    pub headings: Vec<String>,
    /// The chunk's Markdown, paragraphs separated by blank lines.
    pub text: String,
}

impl Chunk {
    /// The heading path as one line: `Human Immune System > Innate immunity`.
    pub fn heading_path(&self) -> String {
        self.headings.join(" > ")
    }
}

/// Cuts a document into chunks; a document without text gives none.
pub fn chunk_document(document: &Document, options: &ChunkOptions) -> Vec<Chunk> {
    let max_words = options.max_words.max(1);
    // An overlap as long as a window would never let the window move forward.
    let overlap_words = options.overlap_words.min(max_words / 2);
    let mut chunks = Vec::new();
    for section in sections(document) {
        for text in windows(&section.paragraphs, max_words, overlap_words) {
            chunks.push(Chunk {
                number: chunks.len(),
                headings: section.headings.clone(),
                text,
            });
        }
    }
    chunks
}

/// Paragraphs under one `#`/`##` heading.
struct Section {
    headings: Vec<String>,
    paragraphs: Vec<String>,
}

fn sections(document: &Document) -> Vec<Section> {
    let mut sections = vec![Section {
        headings: vec![document.title.clone()],
        paragraphs: Vec::new(),
    }];
    let mut top_heading = document.title.clone();
    let mut paragraph: Vec<&str> = Vec::new();
    let mut fence: Option<&str> = None;

    for line in document.body.lines() {
        let trimmed = line.trim();
        if let Some(marker) = fence {
            paragraph.push(line);
            if trimmed.starts_with(marker) {
                fence = None;
            }
            continue;
        }
        if let Some(marker) = ["```", "~~~"].into_iter().find(|m| trimmed.starts_with(m)) {
            fence = Some(marker);
            paragraph.push(line);
            continue;
        }
        let heading = heading_of(trimmed);
        if trimmed.is_empty() || heading.is_some() {
            flush(&mut paragraph, sections.last_mut());
        }
        match heading {
            Some((1, text)) => {
                top_heading = text.to_owned();
                sections.push(Section {
                    headings: vec![top_heading.clone()],
                    paragraphs: Vec::new(),
                });
            }
            Some((2, text)) => sections.push(Section {
                headings: vec![top_heading.clone(), text.to_owned()],
                paragraphs: Vec::new(),
            }),
            // A minor heading is kept as a one-line paragraph: its words still describe the text.
            Some((_, text)) => {
                if let Some(section) = sections.last_mut() {
                    section.paragraphs.push(text.to_owned());
                }
            }
            None if !trimmed.is_empty() => paragraph.push(line),
            None => {}
        }
    }
    flush(&mut paragraph, sections.last_mut());
    sections.retain(|s| !s.paragraphs.is_empty());
    sections
}

fn flush(paragraph: &mut Vec<&str>, section: Option<&mut Section>) {
    if paragraph.is_empty() {
        return;
    }
    let text = paragraph.join("\n").trim().to_owned();
    paragraph.clear();
    if let (Some(section), false) = (section, text.is_empty()) {
        section.paragraphs.push(text);
    }
}

/// `## Title` → `(2, "Title")`; needs the space after the hashes, like CommonMark.
fn heading_of(line: &str) -> Option<(usize, &str)> {
    let level = line.bytes().take_while(|&b| b == b'#').count();
    if level == 0 || level > 6 {
        return None;
    }
    let rest = &line[level..];
    if !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
        return None;
    }
    let text = rest.trim().trim_end_matches('#').trim();
    (!text.is_empty()).then_some((level, text))
}

/// A unit the windowing never splits.
#[derive(Debug, Clone)]
struct Piece {
    text: String,
    words: usize,
    /// Continues the previous piece's paragraph (joined by a space, not a blank line).
    continues: bool,
}

fn windows(paragraphs: &[String], max_words: usize, overlap_words: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut window: Vec<Piece> = Vec::new();
    let mut window_words = 0;
    // Pieces in the window that no earlier window has emitted.
    let mut fresh = 0;
    for piece in paragraphs.iter().flat_map(|p| pieces(p, max_words)) {
        if window_words + piece.words > max_words && fresh > 0 {
            out.push(render(&window));
            window = overlap(&window, overlap_words);
            window_words = window.iter().map(|p| p.words).sum();
            fresh = 0;
            if window_words + piece.words > max_words {
                window.clear();
                window_words = 0;
            }
        }
        window_words += piece.words;
        window.push(piece);
        fresh += 1;
    }
    if fresh > 0 {
        out.push(render(&window));
    }
    out
}

/// A paragraph that fits a window is one piece; a longer one becomes one piece per sentence
/// (and a sentence longer than a window, runs of words) so windows can pack it tightly.
fn pieces(paragraph: &str, max_words: usize) -> Vec<Piece> {
    let words = word_count(paragraph);
    if words <= max_words {
        return vec![Piece {
            text: paragraph.to_owned(),
            words,
            continues: false,
        }];
    }
    let mut out: Vec<Piece> = Vec::new();
    for (start, end) in sentence_spans(paragraph) {
        let mut sentence = &paragraph[start..end];
        while !sentence.is_empty() {
            let head = first_words(sentence, max_words);
            if head.is_empty() {
                break;
            }
            out.push(Piece {
                text: head.to_owned(),
                words: word_count(head),
                continues: !out.is_empty(),
            });
            sentence = sentence[head.len()..].trim_start();
        }
    }
    out
}

/// The tail of an emitted window that starts the next one: its last pieces that fit in
/// `overlap_words`, or else the last sentences of its last piece.
fn overlap(window: &[Piece], overlap_words: usize) -> Vec<Piece> {
    let mut start = window.len();
    let mut taken = 0;
    while start > 0 && taken + window[start - 1].words <= overlap_words {
        start -= 1;
        taken += window[start].words;
    }
    if start < window.len() {
        return window[start..].to_vec();
    }
    let Some(last) = window.last() else {
        return Vec::new();
    };
    let mut from = None;
    let mut words = 0;
    for &(sentence_start, sentence_end) in sentence_spans(&last.text).iter().rev() {
        words += word_count(&last.text[sentence_start..sentence_end]);
        if words > overlap_words {
            break;
        }
        from = Some(sentence_start);
    }
    from.map(|from| {
        let text = last.text[from..].to_owned();
        Piece {
            words: word_count(&text),
            text,
            continues: false,
        }
    })
    .into_iter()
    .collect()
}

fn render(window: &[Piece]) -> String {
    let mut text = String::new();
    for piece in window {
        if !text.is_empty() {
            text.push_str(if piece.continues { " " } else { "\n\n" });
        }
        text.push_str(&piece.text);
    }
    text
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn doc(body: &str) -> Document {
        Document {
            path: "biology/x.md".into(),
            title: "Doc Title".into(),
            domain: "biology".into(),
            tags: vec![],
            body: body.into(),
        }
    }

    fn words(prefix: &str, n: usize) -> String {
        (0..n)
            .map(|i| format!("{prefix}{i}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn sections_follow_h1_and_h2_with_heading_paths() {
        let body = "# Main\n\nIntro text.\n\n## First\n\nOne.\n\n### Minor\n\nTwo.\n\n## Second\n\nThree.\n";
        let chunks = chunk_document(&doc(body), &ChunkOptions::default());
        let got: Vec<_> = chunks
            .iter()
            .map(|c| (c.number, c.heading_path(), c.text.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (0, "Main".to_owned(), "Intro text."),
                (1, "Main > First".to_owned(), "One.\n\nMinor\n\nTwo."),
                (2, "Main > Second".to_owned(), "Three."),
            ]
        );
    }

    #[test]
    fn text_before_any_heading_uses_the_title_and_empty_sections_vanish() {
        let chunks = chunk_document(
            &doc("Lead.\n\n## Empty\n## Full\nBody."),
            &ChunkOptions::default(),
        );
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[0].headings, ["Doc Title"]);
        assert_eq!(chunks[1].headings, ["Doc Title", "Full"]);
        assert!(chunk_document(&doc(""), &ChunkOptions::default()).is_empty());
    }

    #[test]
    fn code_fences_are_not_headings_or_paragraph_breaks() {
        let body = "## Code\n\n```sh\n# not a heading\n\necho hi\n```\n\nAfter.";
        let chunks = chunk_document(&doc(body), &ChunkOptions::default());
        assert_eq!(chunks.len(), 1);
        assert!(chunks[0]
            .text
            .starts_with("```sh\n# not a heading\n\necho hi\n```"));
        assert!(chunks[0].text.ends_with("\n\nAfter."));
    }

    #[test]
    fn windows_respect_the_limit_and_overlap_by_the_last_paragraph() {
        let paragraphs: Vec<String> = (0..6).map(|i| words(&format!("p{i}w"), 30)).collect();
        let body = format!("## S\n\n{}", paragraphs.join("\n\n"));
        let options = ChunkOptions {
            max_words: 100,
            overlap_words: 40,
        };
        let chunks = chunk_document(&doc(&body), &options);
        assert!(chunks.len() >= 2);
        for chunk in &chunks {
            assert!(word_count(&chunk.text) <= 100, "{}", chunk.text);
        }
        for pair in chunks.windows(2) {
            let last_paragraph = pair[0].text.rsplit("\n\n").next().unwrap();
            assert!(pair[1].text.starts_with(last_paragraph));
        }
        // Every paragraph lands in some chunk.
        for paragraph in &paragraphs {
            assert!(chunks.iter().any(|c| c.text.contains(paragraph.as_str())));
        }
    }

    #[test]
    fn long_paragraphs_are_cut_at_sentences_and_overlap_by_sentences() {
        let sentences: Vec<String> = (0..20)
            .map(|i| format!("{}.", words(&format!("s{i}w"), 9)))
            .collect();
        let body = sentences.join(" ");
        let options = ChunkOptions {
            max_words: 50,
            overlap_words: 15,
        };
        let chunks = chunk_document(&doc(&body), &options);
        assert!(chunks.len() >= 4);
        for chunk in &chunks {
            assert!(word_count(&chunk.text) <= 50);
            assert!(
                chunk.text.ends_with('.'),
                "cut mid-sentence: {}",
                chunk.text
            );
        }
        for pair in chunks.windows(2) {
            let last_sentence = sentences
                .iter()
                .rev()
                .find(|s| pair[0].text.ends_with(s.as_str()))
                .unwrap();
            assert!(pair[1].text.starts_with(last_sentence.as_str()));
        }
    }

    #[test]
    fn a_huge_sentence_is_cut_between_words() {
        let body = words("w", 250);
        let options = ChunkOptions {
            max_words: 100,
            overlap_words: 0,
        };
        let chunks = chunk_document(&doc(&body), &options);
        let counts: Vec<_> = chunks.iter().map(|c| word_count(&c.text)).collect();
        assert_eq!(counts, [100, 100, 50]);
    }

    #[test]
    fn heading_syntax_needs_a_space() {
        assert_eq!(heading_of("## Two"), Some((2, "Two")));
        assert_eq!(heading_of("# One #"), Some((1, "One")));
        assert_eq!(heading_of("#hashtag"), None);
        assert_eq!(heading_of("####### seven"), None);
    }
}

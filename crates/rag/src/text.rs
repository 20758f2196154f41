//! Small plain-text helpers shared by the chunker, the snippets and the prompt budgeter.
//!
//! Sentences are found with a deliberately simple rule (terminal punctuation followed by
//! whitespace): good enough to cut text at a natural point, and it never fails on odd input.

/// Number of whitespace-separated words.
pub(crate) fn word_count(text: &str) -> usize {
    text.split_whitespace().count()
}

/// Byte ranges of the sentences of `text`, covering it from its first to its last
/// non-whitespace character; whitespace between sentences belongs to no range.
///
/// A sentence ends at `.`, `!`, `?` or `…`, plus any closing quotes or brackets right after
/// it, when whitespace or the end of the text follows. Snippets run this over every returned
/// passage, so it only looks closely at the bytes that can end a sentence.
pub(crate) fn sentence_spans(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut spans = Vec::new();
    let mut from = 0;
    let mut at = 0;
    while at < bytes.len() {
        let terminal_len = match bytes[at] {
            b'.' | b'!' | b'?' => 1,
            // Byte-wise: `at` may sit inside a multi-byte character.
            _ if bytes[at..].starts_with("…".as_bytes()) => "…".len(),
            _ => 0,
        };
        if terminal_len == 0 {
            at += 1;
            continue;
        }
        let mut end = at + terminal_len;
        while let Some(closer) = text[end..].chars().next().filter(|&c| is_closer(c)) {
            end += closer.len_utf8();
        }
        if text[end..].chars().next().is_none_or(char::is_whitespace) {
            push_trimmed(text, from, end, &mut spans);
            from = end;
        }
        at = end;
    }
    push_trimmed(text, from, text.len(), &mut spans);
    spans
}

/// Records `text[from..to]` without its surrounding whitespace, if anything is left.
fn push_trimmed(text: &str, from: usize, to: usize, spans: &mut Vec<(usize, usize)>) {
    let piece = &text[from..to];
    let start = from + (piece.len() - piece.trim_start().len());
    let end = from + piece.trim_end().len();
    if start < end {
        spans.push((start, end));
    }
}

/// Quotes and brackets that may close a sentence right after its full stop (`."`, `.)`).
fn is_closer(c: char) -> bool {
    matches!(c, '"' | '\'' | ')' | ']' | '”' | '’' | '»')
}

/// The longest prefix of `text` holding at most `max_words` words, cut right after a word.
pub(crate) fn first_words(text: &str, max_words: usize) -> &str {
    if max_words == 0 {
        return "";
    }
    let mut seen = 0;
    let mut in_word = false;
    for (at, c) in text.char_indices() {
        if c.is_whitespace() {
            if in_word {
                seen += 1;
                if seen == max_words {
                    return &text[..at];
                }
            }
            in_word = false;
        } else {
            in_word = true;
        }
    }
    text.trim_end()
}

/// Collapses every run of whitespace (newlines included) into one space.
pub(crate) fn squash_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sentences(text: &str) -> Vec<&str> {
        sentence_spans(text)
            .into_iter()
            .map(|(a, b)| &text[a..b])
            .collect()
    }

    #[test]
    fn splits_sentences_at_terminal_punctuation() {
        assert_eq!(
            sentences("  One. Two?  Three!\n\"Four.\" He said \"hi\" twice"),
            [
                "One.",
                "Two?",
                "Three!",
                "\"Four.\"",
                "He said \"hi\" twice"
            ]
        );
        assert_eq!(sentences("v1.2 is out. Yes"), ["v1.2 is out.", "Yes"]);
        assert_eq!(
            sentences("Wait… what?! (Really.) Ok"),
            ["Wait…", "what?!", "(Really.)", "Ok"]
        );
        assert_eq!(sentences("é. ü"), ["é.", "ü"]);
        assert!(sentences("   ").is_empty());
    }

    #[test]
    fn never_splits_a_character() {
        let tricky = "a… «b.» ”c?’ 日本。 ü! … .x!? \u{200b}e.\t\n";
        let boundaries: Vec<usize> = (0..=tricky.len())
            .filter(|&i| tricky.is_char_boundary(i))
            .collect();
        for &from in &boundaries {
            for &to in boundaries.iter().filter(|&&to| to >= from) {
                let text = &tricky[from..to];
                for (start, end) in sentence_spans(text) {
                    assert!(
                        start < end && !text[start..end].trim().is_empty(),
                        "{text:?}"
                    );
                }
                for words in 0..4 {
                    let _ = first_words(text, words);
                }
            }
        }
    }

    #[test]
    fn takes_first_words_at_a_word_boundary() {
        assert_eq!(first_words("alpha beta  gamma", 2), "alpha beta");
        assert_eq!(first_words("alpha beta", 5), "alpha beta");
        assert_eq!(first_words("alpha", 0), "");
        assert_eq!(first_words("héllo wörld ünï", 2), "héllo wörld");
    }

    #[test]
    fn counts_and_squashes() {
        assert_eq!(word_count(" a  b\nc "), 3);
        assert_eq!(squash_whitespace(" a  b\nc "), "a b c");
    }
}

//! The text analysis shared by indexing, querying and snippets.
//!
//! English text is split on non-alphanumeric characters, lower-cased, folded to ASCII, cleared
//! of stop words and stemmed, so "Vaccines", "vaccine" and "vaccinated" meet. Queries go
//! through the same analyzer and become plain term lookups: no query syntax is ever parsed, so
//! no user input can make a query fail.

use std::collections::HashSet;

use tantivy::tokenizer::{
    AsciiFoldingFilter, Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer,
    StopWordFilter, TextAnalyzer,
};

/// Name under which the analyzer is registered in every index.
pub(crate) const ANALYZER_NAME: &str = "switchboard_en";

/// Tokens longer than this are noise (hashes, base64), not words.
const MAX_TOKEN_BYTES: usize = 40;

/// Most distinct terms a query keeps: a 10k-character paste must not become thousands of
/// clauses, and the leading words of a question carry its intent.
pub(crate) const MAX_QUERY_TERMS: usize = 64;

/// Function words plus the question words users type ("what", "how", "explain"...): they say
/// nothing about which passage answers, yet would score where the kb happens to use them.
const STOP_WORDS: &[&str] = &[
    "a", "about", "after", "all", "also", "am", "an", "and", "any", "are", "as", "at", "be",
    "because", "been", "before", "being", "between", "both", "but", "by", "can", "could",
    "describe", "did", "do", "does", "doing", "during", "each", "explain", "for", "from", "had",
    "has", "have", "having", "he", "her", "here", "hers", "him", "his", "how", "i", "if", "in",
    "into", "is", "it", "its", "me", "more", "most", "my", "no", "nor", "not", "of", "on", "only",
    "or", "other", "our", "ours", "over", "own", "same", "she", "should", "so", "some", "such",
    "tell", "than", "that", "the", "their", "theirs", "them", "then", "there", "these", "they",
    "this", "those", "through", "to", "too", "under", "until", "up", "very", "was", "we", "were",
    "what", "when", "where", "which", "while", "who", "whom", "why", "will", "with", "would",
    "you", "your", "yours",
];

/// Builds the analyzer; it must be registered under [`ANALYZER_NAME`] on every index, including
/// one re-opened from disk (tantivy does not persist tokenizers).
pub(crate) fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(MAX_TOKEN_BYTES))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .filter(StopWordFilter::remove(
            STOP_WORDS.iter().map(|word| (*word).to_owned()),
        ))
        .filter(Stemmer::new(Language::English))
        .build()
}

/// The distinct analyzed terms of `text`, in order of first appearance, at most `limit`.
pub(crate) fn distinct_terms(analyzer: &TextAnalyzer, text: &str, limit: usize) -> Vec<String> {
    // `token_stream` needs `&mut`; a clone keeps the shared analyzer immutable across threads.
    let mut analyzer = analyzer.clone();
    let mut stream = analyzer.token_stream(text);
    let mut seen = HashSet::new();
    let mut terms = Vec::new();
    while terms.len() < limit && stream.advance() {
        let term = &stream.token().text;
        if seen.insert(term.clone()) {
            terms.push(term.clone());
        }
    }
    terms
}

/// Finds the words of a text that analyze to one of a query's terms (for snippets).
///
/// Stemming every word of every returned passage would cost more than the search itself, so a
/// word is only analyzed when its first letters match a term's: English stems keep a word's
/// first two letters, bar a few irregular forms ("dying" → "die") whose only cost is a snippet
/// that misses them.
pub(crate) struct TermMatcher<'a> {
    analyzer: TextAnalyzer,
    terms: &'a [String],
    /// The first (up to) two bytes of every term, or `None` when a term starts with non-ASCII
    /// text and the shortcut cannot be trusted.
    prefixes: Option<Vec<&'a [u8]>>,
    /// Bit `b` is set when some prefix starts with the ASCII byte `b`: most words fail this
    /// one test.
    first_bytes: u128,
}

impl<'a> TermMatcher<'a> {
    /// A matcher for `terms` as produced by [`distinct_terms`] (at most 64 of them).
    pub(crate) fn new(analyzer: &TextAnalyzer, terms: &'a [String]) -> Self {
        let prefixes = terms
            .iter()
            .map(|term| {
                let bytes = term.as_bytes();
                let prefix = &bytes[..bytes.len().min(2)];
                prefix.is_ascii().then_some(prefix)
            })
            .collect::<Option<Vec<_>>>();
        let first_bytes = prefixes
            .iter()
            .flatten()
            .filter_map(|prefix| prefix.first())
            .fold(0u128, |bits, &byte| bits | 1u128 << byte);
        Self {
            analyzer: analyzer.clone(),
            terms,
            prefixes,
            first_bytes,
        }
    }

    /// `(byte offset, term index)` of every word of `text` that analyzes to a term, in order.
    pub(crate) fn find(&mut self, text: &str) -> Vec<(usize, usize)> {
        let bytes = text.as_bytes();
        let mut found = Vec::new();
        let mut word_start = None;
        let mut at = 0;
        // Words are alphanumeric runs, exactly as the index's tokenizer cuts them; ASCII (most
        // of the kb) is classified per byte, anything else per decoded character.
        while at <= bytes.len() {
            let (alphanumeric, width) = match bytes.get(at) {
                None => (false, 1),
                Some(&byte) if byte.is_ascii() => (byte.is_ascii_alphanumeric(), 1),
                Some(_) => match text[at..].chars().next() {
                    Some(c) => (c.is_alphanumeric(), c.len_utf8()),
                    None => (false, 1),
                },
            };
            if alphanumeric {
                word_start.get_or_insert(at);
            } else if let Some(start) = word_start.take() {
                let word = &text[start..at];
                if self.may_match(word) {
                    if let Some(term) = self.term_of(word) {
                        found.push((start, term));
                    }
                }
            }
            at += width;
        }
        found
    }

    fn may_match(&self, word: &str) -> bool {
        let Some(prefixes) = &self.prefixes else {
            return true;
        };
        let bytes = word.as_bytes();
        if !bytes[..bytes.len().min(2)].is_ascii() {
            return true;
        }
        let first = bytes.first().map_or(0, u8::to_ascii_lowercase);
        if self.first_bytes & (1u128 << first) == 0 {
            return false;
        }
        prefixes.iter().any(|prefix| {
            bytes.len() >= prefix.len() && bytes[..prefix.len()].eq_ignore_ascii_case(prefix)
        })
    }

    fn term_of(&mut self, word: &str) -> Option<usize> {
        let mut stream = self.analyzer.token_stream(word);
        if !stream.advance() {
            return None;
        }
        let analyzed = &stream.token().text;
        self.terms.iter().position(|term| term == analyzed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_folds_and_drops_stop_words() {
        let terms = distinct_terms(
            &analyzer(),
            "What are the Vaccines? vaccine VACCINATION, naïve café",
            10,
        );
        assert_eq!(terms, ["vaccin", "naiv", "cafe"]);
    }

    #[test]
    fn hostile_text_is_just_words() {
        let terms = distinct_terms(&analyzer(), "title:\"x\" AND OR * (y) -z ^2 ~ 日本語", 10);
        assert!(terms.contains(&"titl".to_owned()) || terms.contains(&"title".to_owned()));
        assert!(terms.iter().all(|t| !t.contains([':', '"', '*', '('])));
        assert!(distinct_terms(&analyzer(), "\"*:()", 10).is_empty());
    }

    #[test]
    fn limits_the_number_of_terms() {
        let text: String = (0..500).map(|i| format!("word{i} ")).collect();
        assert_eq!(
            distinct_terms(&analyzer(), &text, MAX_QUERY_TERMS).len(),
            MAX_QUERY_TERMS
        );
    }

    #[test]
    fn finds_the_words_that_match_query_terms() {
        let terms = distinct_terms(&analyzer(), "immune vaccination naïve", 10);
        let text = "Vaccines train the IMMUNE system; Naive cells, immunity, vacuum. Immune";
        let found = TermMatcher::new(&analyzer(), &terms).find(text);
        let words: Vec<_> = found
            .iter()
            .map(|&(at, term)| (&text[at..at + 5], terms[term].as_str()))
            .collect();
        assert_eq!(
            words,
            [
                ("Vacci", "vaccin"),
                ("IMMUN", "immun"),
                ("Naive", "naiv"),
                ("immun", "immun"),
                ("Immun", "immun")
            ]
        );
    }

    #[test]
    fn any_text_is_scanned_without_panicking() {
        let terms = distinct_terms(&analyzer(), "cafe b 日本", 10);
        let mut matcher = TermMatcher::new(&analyzer(), &terms);
        let tricky = "Café… b.日本語 x\u{301}y ÿ\u{0}z";
        for (from, _) in tricky.char_indices() {
            for (at, term) in matcher.find(&tricky[from..]) {
                assert!(tricky[from..].is_char_boundary(at) && term < terms.len());
            }
        }
    }

    #[test]
    fn non_ascii_terms_disable_the_shortcut_but_still_match() {
        let terms = distinct_terms(&analyzer(), "日本 ωμέγα", 10);
        let text = "x 日本 y ΩΜΈΓΑ";
        let found = TermMatcher::new(&analyzer(), &terms).find(text);
        assert_eq!(found.len(), 2, "{terms:?}");
    }
}

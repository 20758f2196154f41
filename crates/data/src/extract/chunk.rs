//! Splitting cleaned text into chunks of at most N characters at natural boundaries: whole
//! paragraphs where they fit, else whole sentences, else lines, else words; a word longer than a chunk is
//! cut. Consecutive chunks may overlap by up to M characters, starting at a word.

/// A chunk as a byte range of the text it was cut from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

/// Cuts `text` into spans of at most `max_chars` characters each (`max_chars` ≥ 1, `overlap` <
/// `max_chars`). Spans start and end on non-whitespace; whitespace between them is dropped.
pub fn split(text: &str, max_chars: usize, overlap: usize) -> Vec<Span> {
    let mut units = Vec::new();
    for paragraph in pieces(text, 0, text.len(), is_paragraph_break) {
        push_units(text, paragraph, max_chars, &mut units);
    }
    let mut spans: Vec<Span> = Vec::new();
    let mut next = 0;
    while next < units.len() {
        let mut start = units[next].start;
        if let Some(previous) = spans.last() {
            if let Some(lead) = overlap_start(text, *previous, overlap) {
                if chars(text, lead, units[next].end) <= max_chars {
                    start = lead;
                }
            }
        }
        let mut end = units[next].end;
        next += 1;
        while next < units.len() && chars(text, start, units[next].end) <= max_chars {
            end = units[next].end;
            next += 1;
        }
        spans.push(Span { start, end });
    }
    spans
}

/// Splits a paragraph that is too long into sentences, a sentence into lines, a line into words,
/// and a word into `max_chars`-character pieces, so that every unit fits in a chunk on its own.
fn push_units(text: &str, paragraph: Span, max_chars: usize, out: &mut Vec<Span>) {
    if chars(text, paragraph.start, paragraph.end) <= max_chars {
        out.push(paragraph);
        return;
    }
    for sentence in pieces(text, paragraph.start, paragraph.end, is_sentence_break) {
        if chars(text, sentence.start, sentence.end) <= max_chars {
            out.push(sentence);
            continue;
        }
        for line in pieces(text, sentence.start, sentence.end, |t, i| {
            t[i..].starts_with('\n')
        }) {
            if chars(text, line.start, line.end) <= max_chars {
                out.push(line);
                continue;
            }
            for word in pieces(text, line.start, line.end, |_, _| true) {
                cut_word(text, word, max_chars, out);
            }
        }
    }
}

fn cut_word(text: &str, word: Span, max_chars: usize, out: &mut Vec<Span>) {
    let mut start = word.start;
    let mut count = 0;
    for (offset, _) in text[word.start..word.end].char_indices() {
        if count == max_chars {
            out.push(Span {
                start,
                end: word.start + offset,
            });
            start = word.start + offset;
            count = 0;
        }
        count += 1;
    }
    out.push(Span {
        start,
        end: word.end,
    });
}

/// The non-blank pieces of `text[from..to]` between breaks, trimmed. `is_break(text, i)` says a
/// piece ends before byte `i` (`i` is a char boundary holding whitespace).
fn pieces(text: &str, from: usize, to: usize, is_break: impl Fn(&str, usize) -> bool) -> Vec<Span> {
    let mut out = Vec::new();
    let mut start = from;
    let slice = &text[..to];
    for (offset, c) in text[from..to].char_indices() {
        let i = from + offset;
        if c.is_whitespace() && i > start && is_break(slice, i) {
            push_trimmed(text, start, i, &mut out);
            start = i;
        }
    }
    push_trimmed(text, start, to, &mut out);
    out
}

fn push_trimmed(text: &str, start: usize, end: usize, out: &mut Vec<Span>) {
    let piece = &text[start..end];
    let trimmed = piece.trim();
    if trimmed.is_empty() {
        return;
    }
    let lead = piece.len() - piece.trim_start().len();
    out.push(Span {
        start: start + lead,
        end: start + lead + trimmed.len(),
    });
}

/// A blank line: a newline followed by optional spaces and another newline.
fn is_paragraph_break(text: &str, i: usize) -> bool {
    text[i..].starts_with('\n')
        && text[i + 1..]
            .trim_start_matches([' ', '\t', '\r'])
            .starts_with('\n')
}

/// Whitespace after `.`, `!` or `?` (possibly behind a closing quote or bracket). A newline
/// alone is not one: prose is often wrapped mid-sentence.
fn is_sentence_break(text: &str, i: usize) -> bool {
    let before = text[..i].trim_end_matches(['"', '\'', ')', ']', '”', '’']);
    before.ends_with(['.', '!', '?', '…'])
}

/// Where the next chunk starts so that it repeats at most `overlap` characters of `previous`:
/// the first word that begins in the last `overlap` characters, if any.
fn overlap_start(text: &str, previous: Span, overlap: usize) -> Option<usize> {
    if overlap == 0 {
        return None;
    }
    let tail = &text[previous.start..previous.end];
    let total = tail.chars().count();
    if total <= overlap {
        return None;
    }
    let (cut, _) = tail.char_indices().nth(total - overlap)?;
    let rest = &tail[cut..];
    // Inside a word: skip to its end. Then skip the whitespace to the next word.
    let gap = if tail[..cut].ends_with(char::is_whitespace) {
        0
    } else {
        rest.find(char::is_whitespace)?
    };
    let word = cut + rest.len() - rest[gap..].trim_start().len();
    (word < tail.len()).then_some(previous.start + word)
}

fn chars(text: &str, start: usize, end: usize) -> usize {
    text[start..end].chars().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(text: &str, max: usize, overlap: usize) -> Vec<&str> {
        split(text, max, overlap)
            .into_iter()
            .map(|s| &text[s.start..s.end])
            .collect()
    }

    #[test]
    fn whole_paragraphs_are_packed_up_to_the_limit() {
        let text = "One two.\n\nThree four.\n\n\nFive six seven.";
        assert_eq!(texts(text, 100, 0), [text]);
        assert_eq!(
            texts(text, 22, 0),
            ["One two.\n\nThree four.", "Five six seven."]
        );
    }

    #[test]
    fn long_paragraphs_split_at_sentences_then_words() {
        let text = "Alpha beta gamma. Delta epsilon! Zeta eta theta iota kappa lambda mu.";
        let got = texts(text, 20, 0);
        assert_eq!(
            got,
            [
                "Alpha beta gamma.",
                "Delta epsilon! Zeta",
                "eta theta iota kappa",
                "lambda mu."
            ]
        );
        assert!(got.iter().all(|c| c.chars().count() <= 20));
    }

    #[test]
    fn wrapped_sentences_break_at_lines_before_words() {
        let text = "First sentence here. A long one wrapped\nacross two lines.";
        assert_eq!(
            texts(text, 26, 0),
            [
                "First sentence here.",
                "A long one wrapped",
                "across two lines."
            ]
        );
    }

    #[test]
    fn words_longer_than_a_chunk_are_cut() {
        assert_eq!(texts("abcdéfghij", 4, 0), ["abcd", "éfgh", "ij"]);
    }

    #[test]
    fn overlap_repeats_whole_words_within_the_limit() {
        let text = "aa bb cc dd ee ff gg hh";
        let got = texts(text, 11, 5);
        assert_eq!(got, ["aa bb cc dd", "cc dd ee ff", "ee ff gg hh"]);
        for c in &got {
            assert!(c.chars().count() <= 11);
        }
    }

    #[test]
    fn overlap_never_starts_on_whitespace() {
        let text = "aaaa.\n\nbbbb cc";
        for overlap in 1..7 {
            for chunk in texts(text, 7, overlap) {
                assert_eq!(chunk, chunk.trim(), "overlap {overlap}");
            }
        }
    }

    #[test]
    fn blank_text_gives_no_chunks() {
        assert!(split("  \n\n \t ", 10, 0).is_empty());
    }
}

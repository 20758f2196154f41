//! Reading the chosen letter out of a free-text answer to a lettered question.
//!
//! Chat models rarely answer with the bare letter they were asked for: "B.", "(B)", "**B**",
//! "The answer is B", "b) the mitochondrion". The parser tries the most explicit forms first and
//! gives up (`None`, counted wrong) when an answer names several letters, because guessing
//! would credit a model for hedging.

/// What one way of reading the answer found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found {
    Letter(usize),
    Ambiguous,
    Nothing,
}

impl Found {
    /// One letter if all the letters found are the same, ambiguous if they differ.
    fn from_letters(letters: impl IntoIterator<Item = usize>) -> Found {
        let mut found = Found::Nothing;
        for letter in letters {
            found = match found {
                Found::Nothing => Found::Letter(letter),
                Found::Letter(seen) if seen == letter => found,
                _ => return Found::Ambiguous,
            };
        }
        found
    }
}

/// A run of alphanumeric characters and where it sits in the text.
#[derive(Debug, Clone, Copy)]
struct Word<'a> {
    text: &'a str,
    start: usize,
    end: usize,
}

fn words(text: &str) -> Vec<Word<'_>> {
    let mut words = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_alphanumeric(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                words.push(Word {
                    text: &text[s..i],
                    start: s,
                    end: i,
                });
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        words.push(Word {
            text: &text[s..],
            start: s,
            end: text.len(),
        });
    }
    words
}

/// The index of a one-letter word naming one of `n` options, in either case.
fn letter_index(word: &str, n: usize) -> Option<usize> {
    let &[byte] = word.as_bytes() else {
        return None;
    };
    if !byte.is_ascii_alphabetic() {
        return None;
    }
    let index = usize::from(byte.to_ascii_uppercase() - b'A');
    (index < n).then_some(index)
}

/// Words after which "A" or "I" is still an option letter: "A or B", "A is correct".
const LETTER_CONTEXT: &[&str] = &[
    "or", "and", "is", "was", "would", "seems", "looks", "should", "might", "could",
];

/// Whether a one-letter word is the English word "a" or "I" rather than an option letter:
/// followed by a space and a lowercase word ("a cell", "I think"), or by an apostrophe and more
/// letters ("I'm"). Other letters are never words.
fn reads_as_word(text: &str, word: &Word<'_>) -> bool {
    if !matches!(word.text, "a" | "A" | "i" | "I") {
        return false;
    }
    let rest = &text[word.end..];
    let mut chars = rest.chars();
    match chars.next() {
        Some('\'' | '\u{2019}') => chars.next().is_some_and(char::is_alphabetic),
        Some(c) if c.is_whitespace() => {
            let next: String = rest
                .trim_start()
                .chars()
                .take_while(|c| c.is_alphanumeric())
                .collect();
            next.chars().next().is_some_and(char::is_lowercase)
                && !LETTER_CONTEXT.contains(&next.as_str())
        }
        _ => false,
    }
}

/// The index of the option chosen in `output`, a model's answer to a question whose `n_choices`
/// options were lettered A, B, ...; `None` when it names none of them, or several.
pub fn parse_letter(output: &str, n_choices: usize) -> Option<usize> {
    let n = n_choices.min(26);
    let readings = [bare, after_keyword, leading_marker, lone_capital];
    for read in readings {
        match read(output, n) {
            Found::Letter(index) => return Some(index),
            Found::Ambiguous => return None,
            Found::Nothing => {}
        }
    }
    None
}

/// The whole answer is a letter, maybe dressed: "B", "b.", "(B)", "**B**", "'B'".
fn bare(output: &str, n: usize) -> Found {
    let dressing = |c: char| c.is_whitespace() || "*_`\"'()[]{}.:,!".contains(c);
    match letter_index(output.trim_matches(dressing), n) {
        Some(index) => Found::Letter(index),
        None => Found::Nothing,
    }
}

/// Words that may stand between "answer" and the letter: "the answer is B", "the correct
/// option would be (C)", "Answer: D".
const FILLERS: &[&str] = &[
    "is", "would", "be", "should", "will", "the", "correct", "right", "final", "best", "letter",
    "option", "choice", "answer",
];

/// "answer is B", "Answer: (C)", "correct option is d)". Several different letters stated that
/// way, or "B or C", make the answer ambiguous.
fn after_keyword(output: &str, n: usize) -> Found {
    let words = words(output);
    let lower: Vec<String> = words.iter().map(|w| w.text.to_lowercase()).collect();
    let mut letters = Vec::new();
    for (i, keyword) in lower.iter().enumerate() {
        if !matches!(keyword.as_str(), "answer" | "option" | "choice") {
            continue;
        }
        let mut j = i + 1;
        while j < words.len() && j <= i + 4 && FILLERS.contains(&lower[j].as_str()) {
            j += 1;
        }
        let Some(word) = words.get(j) else { continue };
        let Some(index) = letter_index(word.text, n) else {
            continue;
        };
        // Lowercase "a" followed by a word is the article: "the answer is a cell". A capital
        // right after "answer is" is the letter even when a word follows ("A because ...").
        if word.text.chars().all(char::is_lowercase) && reads_as_word(output, word) {
            continue;
        }
        letters.push(index);
        if let Some(other) = alternative(&words, &lower, j + 1, n) {
            letters.push(other);
        }
    }
    Found::from_letters(letters)
}

/// A second letter offered right after the first: "B, C", "B or C", "B and C", "B/C".
fn alternative(words: &[Word<'_>], lower: &[String], at: usize, n: usize) -> Option<usize> {
    let next = words.get(at)?;
    if let Some(index) = letter_index(next.text, n) {
        return Some(index);
    }
    if matches!(lower.get(at).map(String::as_str), Some("or" | "and")) {
        return words.get(at + 1).and_then(|w| letter_index(w.text, n));
    }
    None
}

/// The answer starts with an option marker: "b) the cytoplasm", "B. Mitochondria", "(C) ...".
/// If several lines start with markers of different letters (the options echoed back), it is
/// ambiguous.
fn leading_marker(output: &str, n: usize) -> Found {
    let mut lines = output.lines().filter(|line| !line.trim().is_empty());
    let Some(first) = lines.next() else {
        return Found::Nothing;
    };
    let Some(letter) = line_marker(first, n) else {
        return Found::Nothing;
    };
    Found::from_letters(std::iter::once(letter).chain(lines.filter_map(|l| line_marker(l, n))))
}

fn line_marker(line: &str, n: usize) -> Option<usize> {
    let first = words(line).into_iter().next()?;
    let before = &line[..first.start];
    let after = line[first.end..].chars().next();
    let opened = before
        .chars()
        .all(|c| c.is_whitespace() || "*([".contains(c));
    let closed = matches!(after, Some(')' | '.' | ':' | ']'));
    if opened && closed {
        letter_index(first.text, n)
    } else {
        None
    }
}

/// A capital letter standing alone somewhere in the answer: "I'd go with C here." Capitals used
/// as words ("A cell", "I think") do not count; two different letters are ambiguous.
fn lone_capital(output: &str, n: usize) -> Found {
    let letters = words(output)
        .into_iter()
        .filter(|w| w.text.bytes().all(|b| b.is_ascii_uppercase()))
        .filter(|w| !reads_as_word(output, w))
        .filter_map(|w| letter_index(w.text, n));
    Found::from_letters(letters)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_usual_answer_shapes() {
        let cases = [
            ("B", Some(1)),
            ("B.", Some(1)),
            ("(B)", Some(1)),
            ("  **c**\n", Some(2)),
            ("'D'", Some(3)),
            ("The answer is B", Some(1)),
            ("The correct answer is (C) because A is wrong.", Some(2)),
            ("Answer: d", Some(3)),
            ("b) the cytoplasm", Some(1)),
            ("B. Mitochondria produce ATP.", Some(1)),
            ("I'd go with C here.", Some(2)),
            ("A is correct.", Some(0)),
            ("The answer is A because cells divide.", Some(0)),
        ];
        for (output, expected) in cases {
            assert_eq!(parse_letter(output, 4), expected, "{output:?}");
        }
    }

    #[test]
    fn refuses_ambiguous_or_absent_letters() {
        let cases = [
            "The answer is B or C",
            "Answer: B, C",
            "answer is B. Final answer: C",
            "A or B",
            "I think B, but maybe D.",
            "A. first\nB. second\nC. third",
            "E",
            "I don't know.",
            "A cell membrane.",
            "the answer is a cell wall",
            "",
        ];
        for output in cases {
            assert_eq!(parse_letter(output, 4), None, "{output:?}");
        }
    }

    #[test]
    fn letters_beyond_the_options_do_not_count() {
        assert_eq!(parse_letter("E", 5), Some(4));
        assert_eq!(parse_letter("The answer is E", 4), None);
        assert_eq!(parse_letter("B", 0), None);
    }
}

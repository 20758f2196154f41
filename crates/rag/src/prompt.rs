//! Putting retrieved passages into the prompt, within a token budget.

use serde::Serialize;

use crate::error::{RagError, Result};
use crate::search::Passage;
use crate::text::{first_words, sentence_spans, word_count};

/// The placeholder a template must contain; it becomes the numbered passages.
pub const PASSAGES_PLACEHOLDER: &str = "{passages}";

/// The instructions used when none are configured.
pub const DEFAULT_TEMPLATE: &str = "Answer the question using the numbered reference passages \
below. Cite the passages you rely on by their number in square brackets, like [1] or [2][3]. \
If the passages do not contain the answer, say so plainly instead of guessing.\n\n\
Reference passages:\n\n{passages}";

/// A passage truncated to fewer words than this is dropped instead: a sentence fragment is
/// more likely to mislead the model than to help it.
const MIN_TRUNCATED_WORDS: usize = 12;

/// Marks a passage cut between words.
const CUT_MARK: &str = " …";

/// The system text wrapped around the passages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PromptTemplate {
    text: String,
}

impl Default for PromptTemplate {
    fn default() -> Self {
        Self {
            text: DEFAULT_TEMPLATE.to_owned(),
        }
    }
}

impl PromptTemplate {
    /// A template; `text` must contain [`PASSAGES_PLACEHOLDER`] once or more (each occurrence is
    /// replaced).
    pub fn new(text: impl Into<String>) -> Result<Self> {
        let text = text.into();
        if !text.contains(PASSAGES_PLACEHOLDER) {
            return Err(RagError::InvalidTemplate);
        }
        Ok(Self { text })
    }

    /// The template text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The template with `passages` numbered from 1 as `[n] Title (path)` and their text.
    pub fn render(&self, passages: &[Passage]) -> String {
        let block = passages
            .iter()
            .enumerate()
            .map(|(index, p)| format!("[{}] {} ({})\n{}", index + 1, p.title, p.path, p.text))
            .collect::<Vec<_>>()
            .join("\n\n");
        self.text.replace(PASSAGES_PLACEHOLDER, &block)
    }
}

/// The system text to add to a prompt, and the passages it cites.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Injection {
    /// The rendered template; empty when nothing fits.
    pub system_text: String,
    /// The passages in the text, in citation order: `used[i]` is `[i + 1]`. A truncated
    /// passage carries the text as injected.
    pub used: Vec<Passage>,
    /// Whether the last passage was shortened to fit.
    pub truncated: bool,
}

impl Injection {
    /// Whether there is nothing to inject.
    pub fn is_empty(&self) -> bool {
        self.used.is_empty()
    }
}

/// Renders the best of `passages` into `template` using at most `budget_tokens` tokens as
/// measured by `count_tokens`.
///
/// Passages go in by descending score; those that do not fit are dropped (lowest score first)
/// and the last one that partly fits is cut at a sentence, or else a word, boundary. When not
/// even a useful part of the best passage fits, the injection is empty. The result never
/// exceeds the budget, even for a tokenizer whose count is not monotonic in the text length.
pub fn build_context(
    passages: &[Passage],
    template: &PromptTemplate,
    budget_tokens: usize,
    count_tokens: &dyn Fn(&str) -> usize,
) -> Injection {
    let mut ranked = passages.to_vec();
    ranked.sort_by(|a, b| b.score.total_cmp(&a.score));
    let measure = |list: &[Passage]| -> Option<String> {
        let text = template.render(list);
        (count_tokens(&text) <= budget_tokens).then_some(text)
    };

    // Largest prefix that fits whole (token counts grow with the text, so binary search).
    let (mut low, mut high) = (0, ranked.len());
    while low < high {
        let mid = (low + high).div_ceil(2);
        if measure(&ranked[..mid]).is_some() {
            low = mid;
        } else {
            high = mid - 1;
        }
    }
    let whole = low;
    let mut chosen: Vec<Passage> = ranked[..whole].to_vec();

    let mut truncated = false;
    if let Some(next) = ranked.get(whole) {
        if let Some(cut) = truncate_to_fit(next, &mut chosen, &measure) {
            chosen.push(cut);
            truncated = true;
        }
    }
    match measure(&chosen) {
        Some(system_text) if !chosen.is_empty() => Injection {
            system_text,
            used: chosen,
            truncated,
        },
        _ => Injection::default(),
    }
}

/// The longest useful cut of `passage` that still fits after `before`.
fn truncate_to_fit(
    passage: &Passage,
    before: &mut Vec<Passage>,
    measure: &dyn Fn(&[Passage]) -> Option<String>,
) -> Option<Passage> {
    let total = word_count(&passage.text);
    let with_text = |before: &mut Vec<Passage>, text: String| {
        let mut cut = passage.clone();
        cut.text = text;
        before.push(cut);
        let fits = measure(before).is_some();
        let cut = before.pop();
        cut.filter(|_| fits)
    };
    let word_cut = |words: usize| format!("{}{CUT_MARK}", first_words(&passage.text, words));

    // Most words that fit, with the cut mark counted.
    let (mut low, mut high) = (0, total.saturating_sub(1));
    while low < high {
        let mid = (low + high).div_ceil(2);
        if with_text(before, word_cut(mid)).is_some() {
            low = mid;
        } else {
            high = mid - 1;
        }
    }
    if low < MIN_TRUNCATED_WORDS {
        return None;
    }
    // Prefer ending on a whole sentence when that keeps most of what fits.
    let room = first_words(&passage.text, low).len();
    let sentence_end = sentence_spans(&passage.text)
        .into_iter()
        .map(|(_, end)| end)
        .take_while(|&end| end <= room)
        .last();
    if let Some(end) = sentence_end {
        let sentence_cut = &passage.text[..end];
        let kept = word_count(sentence_cut);
        if kept >= MIN_TRUNCATED_WORDS && kept * 2 >= low {
            if let Some(cut) = with_text(before, sentence_cut.to_owned()) {
                return Some(cut);
            }
        }
    }
    with_text(before, word_cut(low))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn passage(n: usize, score: f32, words: usize) -> Passage {
        let text = (0..words)
            .map(|i| {
                if i % 8 == 7 {
                    format!("w{i}.")
                } else {
                    format!("w{i}")
                }
            })
            .collect::<Vec<_>>()
            .join(" ");
        Passage {
            id: format!("biology/p{n}.md#0"),
            title: format!("Title {n}"),
            path: format!("biology/p{n}.md"),
            domain: "biology".into(),
            heading: format!("Title {n}"),
            chunk: 0,
            score,
            text,
            snippet: String::new(),
        }
    }

    fn words(text: &str) -> usize {
        text.split_whitespace().count()
    }

    #[test]
    fn templates_need_the_placeholder() {
        assert!(matches!(
            PromptTemplate::new("no slot"),
            Err(RagError::InvalidTemplate)
        ));
        let template = PromptTemplate::new("Use these:\n{passages}").unwrap();
        let text = template.render(&[passage(1, 1.0, 3)]);
        assert_eq!(text, "Use these:\n[1] Title 1 (biology/p1.md)\nw0 w1 w2");
    }

    #[test]
    fn everything_fits_in_score_order() {
        let passages = [
            passage(1, 1.0, 20),
            passage(2, 3.0, 20),
            passage(3, 2.0, 20),
        ];
        let injection = build_context(&passages, &PromptTemplate::default(), 10_000, &words);
        let order: Vec<_> = injection.used.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(order, ["biology/p2.md", "biology/p3.md", "biology/p1.md"]);
        assert!(!injection.truncated);
        assert!(injection
            .system_text
            .contains("[1] Title 2 (biology/p2.md)"));
        assert!(injection
            .system_text
            .contains("[3] Title 1 (biology/p1.md)"));
    }

    #[test]
    fn never_exceeds_the_budget_and_numbers_consistently() {
        let passages: Vec<_> = (0..6).map(|n| passage(n, n as f32, 40 + 10 * n)).collect();
        let template = PromptTemplate::default();
        let chars = |text: &str| text.chars().count().div_ceil(4);
        let counters: [&dyn Fn(&str) -> usize; 2] = [&words, &chars];
        for count in counters {
            for budget in 0..700 {
                let injection = build_context(&passages, &template, budget, count);
                assert!(count(&injection.system_text) <= budget, "budget {budget}");
                if injection.is_empty() {
                    assert!(injection.system_text.is_empty());
                    continue;
                }
                assert_eq!(injection.system_text, template.render(&injection.used));
                for (index, used) in injection.used.iter().enumerate() {
                    let label = format!("[{}] {} ({})", index + 1, used.title, used.path);
                    assert!(injection.system_text.contains(&label));
                }
                let scores: Vec<_> = injection.used.iter().map(|p| p.score).collect();
                assert!(scores.windows(2).all(|w| w[0] >= w[1]));
                // Only the last passage may be cut, and a cut keeps a useful amount of text.
                for used in &injection.used[..injection.used.len() - 1] {
                    assert!(passages.contains(used));
                }
                if injection.truncated {
                    let last = injection.used.last().unwrap();
                    assert!(word_count(&last.text) >= MIN_TRUNCATED_WORDS);
                }
            }
        }
    }

    #[test]
    fn cuts_prefer_sentence_ends() {
        let passages = [passage(1, 1.0, 200)];
        let template = PromptTemplate::new("{passages}").unwrap();
        // Room for the label line and about 60 words.
        let injection = build_context(&passages, &template, 64, &words);
        assert!(injection.truncated);
        let text = &injection.used[0].text;
        assert!(text.ends_with('.'), "{text}");
        assert!(word_count(text) >= 30);
    }

    #[test]
    fn zero_room_gives_no_injection() {
        let passages = [passage(1, 1.0, 50)];
        let injection = build_context(&passages, &PromptTemplate::default(), 0, &words);
        assert_eq!(injection, Injection::default());
        let injection = build_context(&[], &PromptTemplate::default(), 1000, &words);
        assert!(injection.is_empty());
        // Room for the instructions but not for a useful piece of a passage.
        let instructions = words(DEFAULT_TEMPLATE);
        let injection = build_context(
            &passages,
            &PromptTemplate::default(),
            instructions + 5,
            &words,
        );
        assert!(injection.is_empty());
    }
}

//! Contamination checks: training records that copy or paraphrase evaluation items.
//!
//! Two tests, as decontamination in evaluation harnesses does: a shared run of `ngram` words
//! (lower-cased, punctuation dropped) between anything the trainer sees and an item's question
//! (alone, or followed by its answer); and a user turn whose content words overlap an item's
//! question with Jaccard ≥ `question_jaccard` (a reworded question keeps its content words).

use std::collections::{BTreeSet, HashMap};

use switchboard_train::Example;

use super::fields::trainer_text;
use super::neardup::{normalised_words, stable_hash};
use super::Record;

/// Words too common to say two questions ask the same thing.
const STOPWORDS: &[&str] = &[
    "the", "a", "an", "of", "to", "in", "and", "or", "is", "are", "was", "were", "what", "which",
    "who", "how", "why", "when", "where", "does", "do", "did", "that", "this", "for", "on", "with",
    "by", "as", "at", "from", "its", "it", "be", "into", "their", "his", "her",
];

/// An evaluation item as the check sees it.
#[derive(Debug, Clone)]
pub struct EvalText {
    /// The item's id.
    pub id: String,
    /// Its question.
    pub question: String,
    /// Its right answer (choice text or reference), checked after the question.
    pub answer: String,
}

/// How strict the check is.
#[derive(Debug, Clone, Copy)]
pub struct OverlapConfig {
    /// Words in a shared run that count as copying (8: long enough that common phrases such
    /// as "what is the role of the" never reach it).
    pub ngram: usize,
    /// Content-word Jaccard between a user turn and an item's question that counts as a
    /// paraphrase.
    pub question_jaccard: f64,
}

impl Default for OverlapConfig {
    fn default() -> Self {
        Self {
            ngram: 8,
            question_jaccard: 0.5,
        }
    }
}

/// Why a record was flagged.
#[derive(Debug, Clone, PartialEq)]
pub enum OverlapKind {
    /// Both contain this run of words.
    SharedNgram(String),
    /// A user turn asks nearly the item's question.
    SimilarQuestion(f64),
}

/// One training record that overlaps one evaluation item.
#[derive(Debug, Clone, PartialEq)]
pub struct OverlapHit {
    /// Index of the record in the slice checked.
    pub record: usize,
    /// The evaluation item.
    pub eval_id: String,
    /// Why.
    pub kind: OverlapKind,
}

fn content_words(text: &str) -> BTreeSet<String> {
    normalised_words(text)
        .into_iter()
        .filter(|w| w.chars().count() > 2 && !STOPWORDS.contains(&w.as_str()))
        .collect()
}

fn word_jaccard(a: &BTreeSet<String>, b: &BTreeSet<String>) -> f64 {
    let union = a.union(b).count();
    if union == 0 {
        return 0.0;
    }
    a.intersection(b).count() as f64 / union as f64
}

/// The user turns of a chat (what a paraphrased question would be).
fn user_turns(example: &Example) -> Vec<&str> {
    match example {
        Example::Chat(messages) => messages
            .iter()
            .filter(|m| m.role == "user")
            .map(|m| m.content.as_str())
            .collect(),
        Example::Text(_) => Vec::new(),
    }
}

/// Every (record, item) pair that overlaps, in record order; one hit per pair (a shared run
/// wins over a similar question).
pub fn find_overlaps(
    records: &[Record],
    evals: &[EvalText],
    config: &OverlapConfig,
) -> Vec<OverlapHit> {
    let n = config.ngram.max(1);
    // Hash of each n-word run of the items → the items that hold it.
    let mut runs: HashMap<u64, Vec<usize>> = HashMap::new();
    for (i, item) in evals.iter().enumerate() {
        for text in [
            item.question.clone(),
            format!("{} {}", item.question, item.answer),
        ] {
            for window in normalised_words(&text).windows(n) {
                let entry = runs
                    .entry(stable_hash(window.join(" ").as_bytes()))
                    .or_default();
                if !entry.contains(&i) {
                    entry.push(i);
                }
            }
        }
    }
    let questions: Vec<BTreeSet<String>> =
        evals.iter().map(|e| content_words(&e.question)).collect();
    let mut hits = Vec::new();
    for (r, record) in records.iter().enumerate() {
        let mut flagged: HashMap<usize, OverlapKind> = HashMap::new();
        for window in normalised_words(&trainer_text(&record.example)).windows(n) {
            if let Some(items) = runs.get(&stable_hash(window.join(" ").as_bytes())) {
                for &i in items {
                    flagged
                        .entry(i)
                        .or_insert_with(|| OverlapKind::SharedNgram(window.join(" ")));
                }
            }
        }
        for turn in user_turns(&record.example) {
            let words = content_words(turn);
            for (i, question) in questions.iter().enumerate() {
                let similarity = word_jaccard(&words, question);
                if similarity >= config.question_jaccard {
                    flagged
                        .entry(i)
                        .or_insert(OverlapKind::SimilarQuestion(similarity));
                }
            }
        }
        let mut items: Vec<_> = flagged.into_iter().collect();
        items.sort_by_key(|(i, _)| *i);
        hits.extend(items.into_iter().map(|(i, kind)| OverlapHit {
            record: r,
            eval_id: evals[i].id.clone(),
            kind,
        }));
    }
    hits
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use switchboard_train::parse_record;

    fn record(line: &str) -> Record {
        let (format, example) = parse_record(line).unwrap();
        Record {
            path: PathBuf::from("t.jsonl"),
            line: 1,
            object: serde_json::from_str(line).unwrap(),
            format,
            example,
        }
    }

    fn item() -> EvalText {
        EvalText {
            id: "bio-001".into(),
            question:
                "In a honeybee's waggle dance, what does the duration of the waggle run signal?"
                    .into(),
            answer: "how far away the food is".into(),
        }
    }

    #[test]
    fn copies_and_paraphrases_are_flagged_and_other_facts_are_not() {
        let copied = record(
            r#"{"instruction": "Explain: the duration of the waggle run signal is what?", "output": "In a honeybee's waggle dance, what does the duration of the waggle run signal? Distance."}"#,
        );
        let reworded = record(
            r#"{"messages": [{"role": "user", "content": "What does the waggle run duration signal in the honeybee dance?"}, {"role": "assistant", "content": "Distance to food."}]}"#,
        );
        let other = record(
            r#"{"instruction": "Which direction does the waggle run point?", "output": "Toward the food relative to the sun."}"#,
        );
        let hits = find_overlaps(
            &[copied, reworded, other],
            &[item()],
            &OverlapConfig::default(),
        );
        assert_eq!(hits.len(), 2, "{hits:?}");
        assert_eq!(hits[0].record, 0);
        assert!(matches!(hits[0].kind, OverlapKind::SharedNgram(_)));
        assert_eq!(hits[1].record, 1);
        assert!(matches!(hits[1].kind, OverlapKind::SimilarQuestion(j) if j >= 0.5));
    }

    #[test]
    fn the_answer_after_the_question_counts_as_a_run() {
        let answer_copied = record(
            r#"{"instruction": "Recall the bee fact.", "output": "the duration of the waggle run signal how far away the food is"}"#,
        );
        let hits = find_overlaps(&[answer_copied], &[item()], &OverlapConfig::default());
        assert_eq!(hits.len(), 1);
    }
}

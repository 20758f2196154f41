//! Scoring one item: multiple choice by log-likelihood (as lm-evaluation-harness does), multiple
//! choice asked with lettered options (servers without prompt logprobs), and generative answers
//! against a reference (SQuAD's normalisation, exact match, contains, token F1).
//!
//! Each `score_*` function turns an item and what the server returned into an
//! [`ItemRecord`](crate::results::ItemRecord);
//! the runner fills in what only it knows (`routed_domain`, `sources`) afterwards.

use std::collections::HashMap;

use crate::error::{EvalError, Result};
use crate::results::{ItemRecord, Scoring};
use crate::suite::{Item, Task};

/// The choices lm-eval's `acc` and `acc_norm` would pick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChoicePick {
    /// Index of the highest log-likelihood.
    pub acc: usize,
    /// Index of the highest log-likelihood per character of the choice.
    pub acc_norm: usize,
}

/// lm-eval's `process_results` for multiple choice (`lm_eval/api/task.py`):
/// `acc = argmax(lls)`, `acc_norm = argmax(lls / len(choice))`, where `len` counts the Unicode
/// scalar values of the choice without its leading delimiter (Python's `len(str)`, not bytes).
///
/// Ties go to the first index and a NaN wins as soon as it is seen, as with `numpy.argmax`.
/// Both slices are expected to have one entry per choice; only the common prefix is looked at
/// ([`score_multiple_choice`] refuses mismatched lengths), and empty input picks 0.
pub fn pick_choice(loglikelihoods: &[f64], choices: &[String]) -> ChoicePick {
    let normalised: Vec<f64> = loglikelihoods
        .iter()
        .zip(choices)
        // An empty choice gives ±inf or NaN, as numpy's division does; suites refuse them.
        .map(|(ll, choice)| ll / choice.chars().count() as f64)
        .collect();
    let n = loglikelihoods.len().min(choices.len());
    ChoicePick {
        acc: argmax(&loglikelihoods[..n]),
        acc_norm: argmax(&normalised),
    }
}

/// `numpy.argmax`: first maximum; NaN compares greater than everything, first NaN wins.
fn argmax(values: &[f64]) -> usize {
    let mut best = 0;
    for (i, &value) in values.iter().enumerate() {
        let current = values[best];
        if current.is_nan() {
            break;
        }
        if value.is_nan() || value > current {
            best = i;
        }
    }
    best
}

/// Who answered: the variant evaluated and the `model` the request was sent with.
#[derive(Debug, Clone, Copy)]
pub struct Answerer<'a> {
    /// The variant (`base`, an adapter name, `rag`, ...).
    pub variant: &'a str,
    /// The `model` of the request.
    pub model: &'a str,
}

/// A record with the item's identity and nothing scored yet.
fn blank_record(item: &Item, who: Answerer<'_>, scoring: Scoring) -> ItemRecord {
    ItemRecord::unscored(&item.id, &item.domain, who.variant, who.model, scoring)
}

/// The choices and gold index of a multiple-choice item, or a scoring error naming it.
fn choices_of(item: &Item) -> Result<(&[String], usize)> {
    match &item.task {
        Task::MultipleChoice { choices, answer } => Ok((choices, *answer)),
        Task::Generative { .. } => Err(EvalError::Scoring {
            id: item.id.clone(),
            reason: "scored as multiple choice but it is generative".to_string(),
        }),
    }
}

/// Scores a multiple-choice item from the summed log-probability of each choice's tokens:
/// `correct` is lm-eval's `acc`, `correct_norm` its `acc_norm`.
pub fn score_multiple_choice(
    item: &Item,
    loglikelihoods: Vec<f64>,
    who: Answerer<'_>,
) -> Result<ItemRecord> {
    let (choices, gold) = choices_of(item)?;
    if loglikelihoods.len() != choices.len() {
        return Err(EvalError::Scoring {
            id: item.id.clone(),
            reason: format!(
                "{} log-likelihoods for {} choices",
                loglikelihoods.len(),
                choices.len()
            ),
        });
    }
    let pick = pick_choice(&loglikelihoods, choices);
    let mut record = blank_record(item, who, Scoring::Loglikelihood);
    record.correct = pick.acc == gold;
    record.correct_norm = Some(pick.acc_norm == gold);
    record.gold = Some(gold);
    record.predicted = Some(pick.acc);
    record.loglikelihoods = loglikelihoods;
    Ok(record)
}

/// Scores a multiple-choice item asked with [`lettered_prompt`] from the model's text answer.
/// An answer naming no letter, or several, is wrong (`predicted` stays empty).
pub fn score_lettered(item: &Item, output: &str, who: Answerer<'_>) -> Result<ItemRecord> {
    let (choices, gold) = choices_of(item)?;
    if choices.len() > LETTERS.len() {
        return Err(EvalError::TooManyChoices {
            choices: choices.len(),
        });
    }
    let predicted = parse_letter(output, choices.len());
    let mut record = blank_record(item, who, Scoring::GenerativeChoice);
    record.correct = predicted == Some(gold);
    record.gold = Some(gold);
    record.predicted = predicted;
    record.output = Some(output.to_string());
    Ok(record)
}

/// Scores a generative item. `correct` is [`contains`]: chat models answer in sentences
/// ("The powerhouse of the cell is the mitochondrion."), which exact match would count wrong
/// even when right; exact match and F1 are kept beside it.
pub fn score_generative(item: &Item, output: &str, who: Answerer<'_>) -> Result<ItemRecord> {
    let reference = match &item.task {
        Task::Generative { reference } => reference,
        Task::MultipleChoice { .. } => {
            return Err(EvalError::Scoring {
                id: item.id.clone(),
                reason: "scored as generative but it is multiple choice".to_string(),
            })
        }
    };
    let mut record = blank_record(item, who, Scoring::Generative);
    let contained = contains(output, reference);
    record.correct = contained;
    record.contains = Some(contained);
    record.exact_match = Some(exact_match(output, reference));
    record.f1 = Some(token_f1(output, reference));
    record.output = Some(output.to_string());
    Ok(record)
}

/// SQuAD's `normalize_answer`: lowercase, drop ASCII punctuation (Python's
/// `string.punctuation`), drop the words a/an/the, collapse whitespace.
pub fn normalize_answer(text: &str) -> String {
    let lowered = text.to_lowercase();
    let unpunctuated: String = lowered
        .chars()
        .filter(|c| !c.is_ascii_punctuation())
        .collect();
    without_articles(&unpunctuated)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// SQuAD's `re.sub(r'\b(a|an|the)\b', ' ', text)`: an article is a whole run of word
/// characters (letters, digits, `_`), so "theory" and "another" keep their letters.
fn without_articles(text: &str) -> String {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if matches!(word.as_str(), "a" | "an" | "the") {
            out.push(' ');
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if is_word(c) {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// Whether the normalised output equals the normalised reference.
pub fn exact_match(output: &str, reference: &str) -> bool {
    normalize_answer(output) == normalize_answer(reference)
}

/// Whether the normalised reference appears in the normalised output as whole words
/// ("paris" in "it is paris", not in "parisian"). A reference that normalises to nothing
/// ("The") is contained only in an output that does too.
pub fn contains(output: &str, reference: &str) -> bool {
    let output = normalize_answer(output);
    let reference = normalize_answer(reference);
    if reference.is_empty() {
        return output.is_empty();
    }
    // Normalised text is words joined by single spaces, so padding both with spaces turns
    // "whole words" into a plain substring test.
    format!(" {output} ").contains(&format!(" {reference} "))
}

/// SQuAD's token F1 between the normalised output and reference (bags of words). When either
/// normalises to no words, 1 if both do and 0 otherwise (SQuAD v2's rule).
pub fn token_f1(output: &str, reference: &str) -> f64 {
    let output = normalize_answer(output);
    let reference = normalize_answer(reference);
    let predicted: Vec<&str> = output.split_whitespace().collect();
    let gold: Vec<&str> = reference.split_whitespace().collect();
    if predicted.is_empty() || gold.is_empty() {
        return if predicted.is_empty() && gold.is_empty() {
            1.0
        } else {
            0.0
        };
    }
    let mut gold_counts: HashMap<&str, usize> = HashMap::new();
    for token in &gold {
        *gold_counts.entry(token).or_default() += 1;
    }
    let mut same = 0usize;
    for token in &predicted {
        if let Some(count) = gold_counts.get_mut(token).filter(|c| **c > 0) {
            *count -= 1;
            same += 1;
        }
    }
    if same == 0 {
        return 0.0;
    }
    let precision = same as f64 / predicted.len() as f64;
    let recall = same as f64 / gold.len() as f64;
    2.0 * precision * recall / (precision + recall)
}

/// The option letters, in order.
const LETTERS: &[u8; 26] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// The multiple-choice question as text with lettered options, for servers that cannot return
/// prompt log-probabilities:
///
/// ```text
/// Question: <question>
/// A. <choice 0>
/// B. <choice 1>
/// Answer with the letter only.
/// ```
///
/// Fails for more than 26 choices rather than leave some out of the question.
pub fn lettered_prompt(question: &str, choices: &[String]) -> Result<String> {
    if choices.len() > LETTERS.len() {
        return Err(EvalError::TooManyChoices {
            choices: choices.len(),
        });
    }
    let mut prompt = format!("Question: {}\n", question.trim());
    for (letter, choice) in LETTERS.iter().zip(choices) {
        prompt.push_str(&format!("{}. {}\n", char::from(*letter), choice.trim()));
    }
    prompt.push_str("Answer with the letter only.");
    Ok(prompt)
}

mod letter;
pub use letter::parse_letter;

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn mc_item(choices: &[&str], answer: usize) -> Item {
        Item {
            id: "q1".into(),
            domain: "biology".into(),
            question: "Which?".into(),
            task: Task::MultipleChoice {
                choices: strings(choices),
                answer,
            },
        }
    }

    fn gen_item(reference: &str) -> Item {
        Item {
            id: "g1".into(),
            domain: "general".into(),
            question: "Capital of France?".into(),
            task: Task::Generative {
                reference: reference.into(),
            },
        }
    }

    const WHO: Answerer<'static> = Answerer {
        variant: "biology",
        model: "qwen+biology",
    };

    #[test]
    fn acc_and_acc_norm_disagree_by_hand() {
        // -4/2 = -2 < -6/6 = -1: the longer choice wins once normalised.
        let pick = pick_choice(&[-4.0, -6.0], &strings(&["ab", "abcdef"]));
        assert_eq!(
            pick,
            ChoicePick {
                acc: 0,
                acc_norm: 1
            }
        );
    }

    #[test]
    fn acc_norm_counts_characters_not_bytes() {
        // "ééé" is 3 characters but 6 bytes. By characters: -3.3/3 = -1.1 < -4.0/4 = -1.0, so
        // "abcd" wins; by bytes it would be -3.3/6 = -0.55 and "ééé" would win.
        let pick = pick_choice(&[-3.3, -4.0], &strings(&["ééé", "abcd"]));
        assert_eq!(pick.acc_norm, 1);
        assert_eq!(pick.acc, 0);
    }

    #[test]
    fn ties_go_to_the_first_and_nan_wins_like_numpy() {
        let choices = strings(&["a", "b", "c"]);
        assert_eq!(pick_choice(&[-1.0, -1.0, -2.0], &choices).acc, 0);
        assert_eq!(pick_choice(&[-2.0, f64::NAN, -1.0], &choices).acc, 1);
        assert_eq!(
            pick_choice(&[], &choices),
            ChoicePick {
                acc: 0,
                acc_norm: 0
            }
        );
    }

    #[test]
    fn multiple_choice_record_fills_acc_and_acc_norm() {
        let item = mc_item(&["ab", "abcdef"], 1);
        let record = score_multiple_choice(&item, vec![-4.0, -6.0], WHO).expect("score");
        assert!(!record.correct);
        assert_eq!(record.correct_norm, Some(true));
        assert_eq!((record.gold, record.predicted), (Some(1), Some(0)));
        assert_eq!(record.scoring, Scoring::Loglikelihood);
        assert_eq!(
            (record.variant.as_str(), record.model.as_str()),
            ("biology", "qwen+biology")
        );
        assert_eq!(record.loglikelihoods, vec![-4.0, -6.0]);
        let err = score_multiple_choice(&item, vec![-1.0], WHO).expect_err("one ll missing");
        assert!(
            err.to_string().contains("1 log-likelihoods for 2 choices"),
            "{err}"
        );
        let err = score_multiple_choice(&gen_item("x"), vec![], WHO).expect_err("generative");
        assert!(err.to_string().contains("\"g1\""), "{err}");
    }

    #[test]
    fn squad_normalisation() {
        assert_eq!(
            normalize_answer("The  Eiffel-Tower, in PARIS!"),
            "eiffeltower in paris"
        );
        assert_eq!(normalize_answer("an apple a day"), "apple day");
        // Articles only as whole words; "theory" and "anagram" keep their letters.
        assert_eq!(normalize_answer("A theory, an anagram"), "theory anagram");
        assert_eq!(normalize_answer("Ça va"), "ça va");
    }

    #[test]
    fn generative_metrics() {
        assert!(exact_match("The Mitochondrion.", "mitochondrion"));
        assert!(!exact_match("It is the mitochondrion", "mitochondrion"));
        assert!(contains("It is the mitochondrion.", "Mitochondrion"));
        assert!(!contains("Parisian cafés", "Paris"));
        assert!(contains("The city of New York, USA", "new york"));
        assert!(!contains("York New", "new york"));
        assert!(contains("", "The"));
        assert!(!contains("Paris", "The"));
        // pred "paris france" vs gold "paris": p = 1/2, r = 1 -> f1 = 2/3.
        assert!((token_f1("Paris, France", "Paris") - 2.0 / 3.0).abs() < 1e-12);
        // Repeated tokens count once per occurrence: "x y y" vs "y": common 1, p 1/3, r 1.
        assert!((token_f1("x y y", "y") - 0.5).abs() < 1e-12);
        assert_eq!(token_f1("London", "Paris"), 0.0);
        assert_eq!(token_f1("the", "a"), 1.0);
    }

    #[test]
    fn generative_record_is_correct_when_contained() {
        let item = gen_item("Paris");
        let record = score_generative(&item, "The capital is Paris.", WHO).expect("score");
        assert!(record.correct);
        assert_eq!(record.contains, Some(true));
        assert_eq!(record.exact_match, Some(false));
        assert_eq!(record.scoring, Scoring::Generative);
        assert!(record.f1.is_some_and(|f| f > 0.0 && f < 1.0));
        let wrong = score_generative(&item, "Lyon", WHO).expect("score");
        assert!(!wrong.correct);
        assert!(score_generative(&mc_item(&["a", "b"], 0), "a", WHO).is_err());
    }

    #[test]
    fn lettered_prompt_and_record() {
        let prompt = lettered_prompt("Which organelle?", &strings(&["Nucleus", "Mitochondrion"]))
            .expect("prompt");
        assert_eq!(
            prompt,
            "Question: Which organelle?\nA. Nucleus\nB. Mitochondrion\nAnswer with the letter only."
        );
        let many: Vec<String> = (0..27).map(|i| format!("c{i}")).collect();
        assert!(lettered_prompt("q", &many).is_err());
        let item = mc_item(&["Nucleus", "Mitochondrion"], 1);
        let record = score_lettered(&item, "The answer is B.", WHO).expect("score");
        assert!(record.correct);
        assert_eq!(record.scoring, Scoring::GenerativeChoice);
        assert_eq!(record.correct_norm, None);
        let hedged = score_lettered(&item, "A or B", WHO).expect("score");
        assert!(!hedged.correct);
        assert_eq!(hedged.predicted, None);
    }
}

//! `data filter`: keep the records that pass every rule, and count what each rule dropped.
//!
//! Rules are independent: every rule is checked on every record, so a record can be dropped by
//! several rules and each rule's count says how many records it alone would drop. A record is
//! kept when it passes all of them.

use std::path::Path;

use regex::Regex;
use switchboard_train::{parse_record, Example};

use super::fields::{selected_text, trainer_text, FieldPath};
use super::{Record, RecordError, Result};
use crate::jsonl::Line;

/// Whether any or all keywords must occur.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeywordMode {
    /// At least one keyword.
    #[default]
    Any,
    /// Every keyword.
    All,
}

/// What a length rule counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LengthUnit {
    /// Unicode scalar values.
    #[default]
    Chars,
    /// Whitespace-separated words.
    Words,
}

/// The rules of one `data filter` run, as given.
#[derive(Debug, Clone, Default)]
pub struct FilterRules {
    /// Keywords, matched case-insensitively.
    pub keywords: Vec<String>,
    /// Any or all keywords.
    pub keyword_mode: KeywordMode,
    /// Keywords match whole words only (`form` does not match `formal`).
    pub whole_word: bool,
    /// Patterns that must each match.
    pub include: Vec<String>,
    /// Patterns that must not match.
    pub exclude: Vec<String>,
    /// Minimum length (inclusive).
    pub min_len: Option<usize>,
    /// Maximum length (inclusive).
    pub max_len: Option<usize>,
    /// What the length rules count.
    pub length_unit: LengthUnit,
    /// The fields the rules look at; empty: the text the trainer sees.
    pub fields: Vec<FieldPath>,
}

/// A compiled rule.
#[derive(Debug)]
enum Rule {
    /// The compiled keywords, the mode, and the keywords as given (for the report).
    Keywords(Vec<Regex>, KeywordMode, Vec<String>),
    Include(Regex),
    Exclude(Regex),
    MinLen(usize, LengthUnit),
    MaxLen(usize, LengthUnit),
}

impl Rule {
    fn describe(&self) -> String {
        match self {
            Rule::Keywords(_, mode, given) => {
                let list: Vec<&str> = given.iter().map(String::as_str).collect();
                format!(
                    "keywords ({}): {}",
                    match mode {
                        KeywordMode::Any => "any",
                        KeywordMode::All => "all",
                    },
                    list.join(" | ")
                )
            }
            Rule::Include(r) => format!("regex {}", r.as_str()),
            Rule::Exclude(r) => format!("exclude regex {}", r.as_str()),
            Rule::MinLen(n, unit) => format!("min length {n} {}", unit_name(*unit)),
            Rule::MaxLen(n, unit) => format!("max length {n} {}", unit_name(*unit)),
        }
    }

    fn passes(&self, text: &str) -> bool {
        match self {
            Rule::Keywords(words, KeywordMode::Any, _) => words.iter().any(|r| r.is_match(text)),
            Rule::Keywords(words, KeywordMode::All, _) => words.iter().all(|r| r.is_match(text)),
            Rule::Include(r) => r.is_match(text),
            Rule::Exclude(r) => !r.is_match(text),
            Rule::MinLen(n, unit) => length(text, *unit) >= *n,
            Rule::MaxLen(n, unit) => length(text, *unit) <= *n,
        }
    }
}

fn unit_name(unit: LengthUnit) -> &'static str {
    match unit {
        LengthUnit::Chars => "chars",
        LengthUnit::Words => "words",
    }
}

fn length(text: &str, unit: LengthUnit) -> usize {
    match unit {
        LengthUnit::Chars => text.chars().count(),
        LengthUnit::Words => text.split_whitespace().count(),
    }
}

fn compile(pattern: &str) -> Result<Regex> {
    Regex::new(pattern).map_err(|source| RecordError::BadRegex {
        pattern: pattern.to_string(),
        source,
    })
}

/// A keyword as a case-insensitive regex; whole words are bounded by `\b` only on the sides
/// where the keyword itself starts or ends with a word character (so `c++` still matches).
fn keyword_regex(word: &str, whole_word: bool) -> Result<Regex> {
    let escaped = regex::escape(word);
    let is_word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    let (pre, post) = if whole_word {
        (
            if is_word(word.chars().next()) {
                r"\b"
            } else {
                ""
            },
            if is_word(word.chars().last()) {
                r"\b"
            } else {
                ""
            },
        )
    } else {
        ("", "")
    };
    compile(&format!("(?i){pre}{escaped}{post}"))
}

/// How many records a rule dropped.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RuleCount {
    /// The rule, in words.
    pub rule: String,
    /// Records that pass it.
    pub passed: usize,
    /// Records that fail it.
    pub dropped: usize,
}

/// The result of [`filter_records`]: indices into the input, and the counts.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FilterOutcome {
    /// Records read.
    pub total: usize,
    /// Indices of the kept records, in input order.
    pub kept: Vec<usize>,
    /// Indices of the dropped records, in input order.
    pub rejected: Vec<usize>,
    /// Per rule, in the order: keywords, regexes, exclude regexes, min length, max length.
    pub rules: Vec<RuleCount>,
}

impl FilterRules {
    fn compile(&self) -> Result<Vec<Rule>> {
        let mut rules = Vec::new();
        let keywords: Vec<&String> = self.keywords.iter().filter(|k| !k.is_empty()).collect();
        if !keywords.is_empty() {
            let compiled = keywords
                .iter()
                .map(|k| keyword_regex(k, self.whole_word))
                .collect::<Result<Vec<_>>>()?;
            rules.push(Rule::Keywords(
                compiled,
                self.keyword_mode,
                keywords.iter().map(|k| k.to_string()).collect(),
            ));
        }
        for pattern in &self.include {
            rules.push(Rule::Include(compile(pattern)?));
        }
        for pattern in &self.exclude {
            rules.push(Rule::Exclude(compile(pattern)?));
        }
        if let (Some(min), Some(max)) = (self.min_len, self.max_len) {
            if min > max {
                return Err(RecordError::BadOption {
                    option: "--min-len",
                    reason: format!("{min} is above --max-len {max}"),
                });
            }
        }
        rules.extend(self.min_len.map(|n| Rule::MinLen(n, self.length_unit)));
        rules.extend(self.max_len.map(|n| Rule::MaxLen(n, self.length_unit)));
        Ok(rules)
    }
}

/// Checks every rule on every record. With no rules, every record is kept.
pub fn filter_records(records: &[Record], rules: &FilterRules) -> Result<FilterOutcome> {
    let texts = records
        .iter()
        .map(|r| selected_text(&rules.fields, &r.object, &r.example));
    filter_texts(texts, rules)
}

/// [`filter_records`] over raw JSON objects read from `path`: with `--field` paths any JSON
/// objects will do (raw Dolly rows, say); without them each object must be a record the trainer
/// can read, since its text is what the trainer sees (otherwise an error naming the line).
pub fn filter_lines(path: &Path, lines: &[Line], rules: &FilterRules) -> Result<FilterOutcome> {
    let mut texts = Vec::with_capacity(lines.len());
    for line in lines {
        if !rules.fields.is_empty() {
            texts.push(selected_text(
                &rules.fields,
                &line.object,
                &Example::Text(String::new()),
            ));
            continue;
        }
        let raw = serde_json::to_string(&line.object).unwrap_or_default();
        let (_, example) = parse_record(&raw).map_err(|reason| RecordError::BadRecord {
            path: path.to_path_buf(),
            line: line.number,
            reason,
        })?;
        texts.push(trainer_text(&example));
    }
    filter_texts(texts.into_iter(), rules)
}

fn filter_texts(texts: impl Iterator<Item = String>, rules: &FilterRules) -> Result<FilterOutcome> {
    let compiled = rules.compile()?;
    let mut counts: Vec<RuleCount> = compiled
        .iter()
        .map(|r| RuleCount {
            rule: r.describe(),
            passed: 0,
            dropped: 0,
        })
        .collect();
    let mut kept = Vec::new();
    let mut rejected = Vec::new();
    let mut total = 0;
    for (index, text) in texts.enumerate() {
        total += 1;
        let mut keep = true;
        for (rule, count) in compiled.iter().zip(counts.iter_mut()) {
            if rule.passes(&text) {
                count.passed += 1;
            } else {
                count.dropped += 1;
                keep = false;
            }
        }
        if keep {
            kept.push(index);
        } else {
            rejected.push(index);
        }
    }
    Ok(FilterOutcome {
        total,
        kept,
        rejected,
        rules: counts,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::records::scan_text;
    use std::path::Path;

    fn records() -> Vec<Record> {
        let text = [
            r#"{"instruction": "Write a formal letter to the board", "output": "Dear members, ..."}"#,
            r#"{"instruction": "Tell a joke", "output": "Why did the chicken cross the road?"}"#,
            r#"{"instruction": "Write a FORMAL email", "output": "Dear Sir or Madam"}"#,
            r#"{"instruction": "Describe formality", "output": "It is about manners"}"#,
        ]
        .join("\n");
        let (records, invalid) = scan_text(Path::new("t.jsonl"), &text);
        assert!(invalid.is_empty());
        records
    }

    #[test]
    fn keywords_are_case_insensitive_and_optionally_whole_words() {
        let records = records();
        let mut rules = FilterRules {
            keywords: vec!["formal".into()],
            ..FilterRules::default()
        };
        assert_eq!(
            filter_records(&records, &rules).unwrap().kept,
            vec![0, 2, 3]
        );
        rules.whole_word = true;
        let out = filter_records(&records, &rules).unwrap();
        assert_eq!(out.kept, vec![0, 2]);
        assert_eq!(out.rejected, vec![1, 3]);
        assert_eq!((out.rules[0].passed, out.rules[0].dropped), (2, 2));
        rules.keywords = vec!["formal".into(), "dear".into()];
        rules.keyword_mode = KeywordMode::All;
        assert_eq!(filter_records(&records, &rules).unwrap().kept, vec![0, 2]);
        rules.keywords = vec!["joke".into(), "email".into()];
        rules.keyword_mode = KeywordMode::Any;
        assert_eq!(filter_records(&records, &rules).unwrap().kept, vec![1, 2]);
    }

    #[test]
    fn each_rule_counts_what_it_drops_on_its_own() {
        let records = records();
        let rules = FilterRules {
            include: vec!["(?i)dear".into()],
            exclude: vec!["board".into()],
            min_len: Some(4),
            max_len: Some(7),
            length_unit: LengthUnit::Words,
            fields: vec![FieldPath::parse("instruction").unwrap()],
            ..FilterRules::default()
        };
        // `instruction` only: "dear" is in no instruction, so the include rule drops all four.
        let out = filter_records(&records, &rules).unwrap();
        assert!(out.kept.is_empty());
        let dropped: Vec<usize> = out.rules.iter().map(|r| r.dropped).collect();
        // include, exclude (record 0), min 4 words (records 1, 3), max 7 words (none).
        assert_eq!(dropped, vec![4, 1, 2, 0]);
        assert_eq!(out.total, 4);
    }

    #[test]
    fn raw_objects_filter_by_field_and_need_a_format_only_without_one() {
        let text =
            r#"{"instruction": "Write a formal note", "response": "Dear team", "category": "x"}"#;
        let lines = crate::jsonl::parse_objects(Path::new("dolly.jsonl"), text).unwrap();
        let rules = FilterRules {
            keywords: vec!["dear".into()],
            fields: vec![FieldPath::parse("response").unwrap()],
            ..FilterRules::default()
        };
        let out = filter_lines(Path::new("dolly.jsonl"), &lines, &rules).unwrap();
        assert_eq!(out.kept, vec![0]);
        let rules = FilterRules {
            keywords: vec!["dear".into()],
            ..FilterRules::default()
        };
        let err = filter_lines(Path::new("dolly.jsonl"), &lines, &rules).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("dolly.jsonl:1: missing `output`"),
            "{err}"
        );
    }

    #[test]
    fn bad_rules_are_errors() {
        let bad = FilterRules {
            include: vec!["(".into()],
            ..FilterRules::default()
        };
        assert!(matches!(
            filter_records(&[], &bad),
            Err(RecordError::BadRegex { .. })
        ));
        let inverted = FilterRules {
            min_len: Some(5),
            max_len: Some(2),
            ..FilterRules::default()
        };
        assert!(filter_records(&[], &inverted).is_err());
    }
}

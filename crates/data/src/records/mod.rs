//! Training records (the six JSONL formats the trainer reads): filter, split, convert, count.
//!
//! Every command reads records through [`read_records`] (or the lenient [`scan_records`]), which
//! runs the trainer's own reader ([`switchboard_train::parse_record`]) on each line, so what is
//! filtered, split, converted or counted is exactly what training would see.
//!
//! * [`fields`]: dotted field paths (`qa_pair.question`, `messages.*.content`) and the text the
//!   trainer sees for a record.
//! * [`filter`]: keyword, regex and length rules with per-rule counts.
//! * [`neardup`]: word shingles, MinHash with banding, exact Jaccard, union-find.
//! * [`split`]: seeded, optionally stratified train/validation/test split that keeps each
//!   near-duplicate group inside one split.
//! * [`convert`]: between the six formats, verified against the trainer's reader;
//!   [`teaching`] inverts the teaching-answer layout, [`text_layout`] lays a chat out as text.
//! * [`stats`]: counts, token lengths under the base model's template, duplicates.
//! * [`overlap`]: training records that copy or paraphrase evaluation items.

pub mod convert;
pub mod fields;
pub mod filter;
pub mod neardup;
pub mod overlap;
pub mod split;
pub mod stats;
pub mod teaching;
pub mod text_layout;

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use switchboard_train::{parse_record, Example, RecordFormat};

pub use convert::{convert_file, convert_record, ConvertReport, Skipped};
pub use fields::{trainer_text, FieldPath};
pub use filter::{
    filter_lines, filter_records, FilterOutcome, FilterRules, KeywordMode, LengthUnit, RuleCount,
};
pub use neardup::{NearDupConfig, UnionFind};
pub use overlap::{find_overlaps, EvalText, OverlapConfig, OverlapHit, OverlapKind};
pub use split::{split_records, SplitAssignment, SplitConfig, SplitReport, SPLIT_NAMES};
pub use stats::{compute_stats, Stats, StatsOptions, TokenStats};

/// What can go wrong with records.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A line is not a record the trainer can read (bad JSON, unknown format, wrong field type).
    #[error("{}:{line}: {reason}", path.display())]
    BadRecord {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong, as the trainer's reader says it.
        reason: String,
    },
    /// `convert --strict`: a record the target format cannot hold.
    #[error("{}:{line}: cannot convert to {target}: {reason}", path.display())]
    NotRepresentable {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The target format's name.
        target: &'static str,
        /// Why the target cannot hold it.
        reason: String,
    },
    /// A record the tokenizer or chat template could not render.
    #[error("{}:{line}: cannot tokenize: {reason}", path.display())]
    Tokenize {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The tokenizer's or template's complaint.
        reason: String,
    },
    /// A `--field` path that cannot be parsed.
    #[error("bad field path {path:?}: {reason}")]
    BadField {
        /// The path as given.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A regular expression that does not compile.
    #[error("bad regular expression {pattern:?}: {source}")]
    BadRegex {
        /// The pattern as given.
        pattern: String,
        /// The regex crate's complaint.
        #[source]
        source: regex::Error,
    },
    /// An option with a value that makes no sense (ratios, thresholds, names).
    #[error("{option}: {reason}")]
    BadOption {
        /// The option, as the command line spells it.
        option: &'static str,
        /// What is wrong.
        reason: String,
    },
}

impl From<crate::jsonl::JsonlError> for RecordError {
    fn from(e: crate::jsonl::JsonlError) -> Self {
        match e {
            crate::jsonl::JsonlError::Io { path, source } => Self::Io { path, source },
            crate::jsonl::JsonlError::BadLine { path, line, reason } => {
                Self::BadRecord { path, line, reason }
            }
        }
    }
}

/// The result type of this module.
pub type Result<T> = std::result::Result<T, RecordError>;

/// One record as the trainer reads it, with where it came from and its raw object (which keeps
/// the metadata keys the trainer ignores, in their order).
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The file it was read from.
    pub path: PathBuf,
    /// 1-based line number.
    pub line: usize,
    /// The JSON object as written.
    pub object: Map<String, Value>,
    /// The detected format.
    pub format: RecordFormat,
    /// What the trainer sees.
    pub example: Example,
}

/// A line the trainer could not read, with why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InvalidLine {
    /// The file.
    pub path: PathBuf,
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

impl std::fmt::Display for InvalidLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.path.display(), self.line, self.reason)
    }
}

/// Reads every record of `path`; the first line the trainer could not read is an error naming
/// the file and the line. Blank lines are skipped, as the trainer skips them.
pub fn read_records(path: &Path) -> Result<Vec<Record>> {
    let (records, invalid) = scan_records(path)?;
    match invalid.into_iter().next() {
        Some(bad) => Err(RecordError::BadRecord {
            path: bad.path,
            line: bad.line,
            reason: bad.reason,
        }),
        None => Ok(records),
    }
}

/// Reads the records of several files in order (see [`read_records`]).
pub fn read_all(paths: &[PathBuf]) -> Result<Vec<Record>> {
    let mut out = Vec::new();
    for path in paths {
        out.extend(read_records(path)?);
    }
    Ok(out)
}

/// Reads `path` leniently: the records the trainer can read, and every line it cannot. Only a
/// file that cannot be read at all is an error.
pub fn scan_records(path: &Path) -> Result<(Vec<Record>, Vec<InvalidLine>)> {
    let text = std::fs::read_to_string(path).map_err(|source| RecordError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(scan_text(path, &text))
}

/// [`scan_records`] over text already read; `path` only names the source.
pub fn scan_text(path: &Path, text: &str) -> (Vec<Record>, Vec<InvalidLine>) {
    let mut records = Vec::new();
    let mut invalid = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        let parsed = parse_record(trimmed).and_then(|(format, example)| {
            match serde_json::from_str::<Value>(trimmed) {
                Ok(Value::Object(object)) => Ok((object, format, example)),
                // parse_record already refused anything that is not an object.
                _ => Err("a record must be a JSON object".to_string()),
            }
        });
        match parsed {
            Ok((object, format, example)) => records.push(Record {
                path: path.to_path_buf(),
                line: index + 1,
                object,
                format,
                example,
            }),
            Err(reason) => invalid.push(InvalidLine {
                path: path.to_path_buf(),
                line: index + 1,
                reason,
            }),
        }
    }
    (records, invalid)
}

/// The command-line name of a format (`--to`), also used in reports.
pub fn format_name(format: RecordFormat) -> &'static str {
    match format {
        RecordFormat::Alpaca => "alpaca",
        RecordFormat::ShareGpt => "sharegpt",
        RecordFormat::OpenAi => "openai",
        RecordFormat::TeachingQa => "teaching",
        RecordFormat::Dialogue => "dialogue",
        RecordFormat::Text => "text",
    }
}

/// Every format, in the order of [`format_name`]'s list.
pub const ALL_FORMATS: [RecordFormat; 6] = [
    RecordFormat::Alpaca,
    RecordFormat::ShareGpt,
    RecordFormat::OpenAi,
    RecordFormat::TeachingQa,
    RecordFormat::Dialogue,
    RecordFormat::Text,
];

/// Parses a format name (case-insensitive; `teaching_qa`, `qa`, `chat` and `messages` are
/// accepted as aliases).
pub fn parse_format(name: &str) -> Result<RecordFormat> {
    Ok(match name.to_ascii_lowercase().as_str() {
        "alpaca" => RecordFormat::Alpaca,
        "sharegpt" => RecordFormat::ShareGpt,
        "openai" | "chat" | "messages" => RecordFormat::OpenAi,
        "teaching" | "teaching_qa" | "teaching-qa" | "qa" => RecordFormat::TeachingQa,
        "dialogue" => RecordFormat::Dialogue,
        "text" => RecordFormat::Text,
        other => {
            return Err(RecordError::BadOption {
                option: "--to",
                reason: format!(
                    "unknown format {other:?}; expected alpaca, sharegpt, openai, teaching, \
                     dialogue or text"
                ),
            })
        }
    })
}

/// Writes `objects` as JSONL to `path` atomically.
pub fn write_objects<'a>(
    path: &Path,
    objects: impl IntoIterator<Item = &'a Map<String, Value>>,
) -> Result<()> {
    let mut out = String::new();
    for object in objects {
        // Map -> Value by reference would need a clone; serialising the map directly is the same
        // text as `to_jsonl` writes for the equivalent Value.
        out.push_str(&serde_json::to_string(object).unwrap_or_default());
        out.push('\n');
    }
    crate::jsonl::write_atomic(path, out.as_bytes())?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn scanning_keeps_good_records_and_names_bad_lines() {
        let text = "{\"text\": \"a\"}\n\nnot json\n{\"prompt\": 1}\n{\"instruction\": \"i\", \"output\": \"o\", \"id\": 7}\n";
        let (records, invalid) = scan_text(Path::new("f.jsonl"), text);
        assert_eq!(records.len(), 2);
        assert_eq!(records[1].line, 5);
        assert_eq!(records[1].format, RecordFormat::Alpaca);
        assert_eq!(records[1].object["id"], 7);
        let lines: Vec<usize> = invalid.iter().map(|i| i.line).collect();
        assert_eq!(lines, vec![3, 4]);
        assert!(invalid[0]
            .to_string()
            .starts_with("f.jsonl:3: invalid JSON"));
        assert!(invalid[1].reason.contains("unknown record format"));
    }

    #[test]
    fn reading_strictly_fails_on_the_first_bad_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.jsonl");
        std::fs::write(&path, "{\"text\": \"a\"}\n{\"text\": 3}\n").unwrap();
        let err = read_records(&path).unwrap_err().to_string();
        assert!(
            err.ends_with("x.jsonl:2: `text` must be a string, not a number"),
            "{err}"
        );
        let missing = read_records(&dir.path().join("nope.jsonl")).unwrap_err();
        assert!(matches!(missing, RecordError::Io { .. }));
    }

    #[test]
    fn format_names_round_trip() {
        for format in ALL_FORMATS {
            assert_eq!(parse_format(format_name(format)).unwrap(), format);
        }
        assert!(parse_format("csv").is_err());
    }
}

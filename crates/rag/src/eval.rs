//! Retrieval evaluation: does the search put the document that answers a question on top?
//!
//! An evaluation set is JSON lines `{"question": "...", "doc": "<domain>/<file>.md"}`. Each
//! question is searched twice, over the whole kb and within its own domain (as after routing);
//! its rank is the position of the named document among the distinct documents returned.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::document::DOMAINS;
use crate::error::{RagError, Result};
use crate::kb::KnowledgeBase;
use crate::search::SearchOptions;

/// Misses listed by the report's `Display`; the full list is in [`RetrievalReport::misses`].
const MISSES_SHOWN: usize = 15;

/// One question and the document that answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EvalQuestion {
    /// The question, as a user would ask it.
    pub question: String,
    /// Path of the answering document relative to the kb root.
    pub doc: String,
    /// The document's domain (its first path component).
    pub domain: String,
}

#[derive(Deserialize)]
struct EvalLine {
    question: String,
    doc: String,
}

/// Loads an evaluation set: one `.jsonl` file, or every `.jsonl` file of a directory.
pub fn load_eval_set(path: impl AsRef<Path>) -> Result<Vec<EvalQuestion>> {
    let path = path.as_ref();
    if !path.is_dir() {
        return load_eval_file(path);
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).map_err(|e| RagError::io(path, e))? {
        let file = entry.map_err(|e| RagError::io(path, e))?.path();
        if file.extension().is_some_and(|ext| ext == "jsonl") {
            files.push(file);
        }
    }
    files.sort();
    let mut questions = Vec::new();
    for file in files {
        questions.extend(load_eval_file(&file)?);
    }
    Ok(questions)
}

fn load_eval_file(path: &Path) -> Result<Vec<EvalQuestion>> {
    let text = std::fs::read_to_string(path).map_err(|e| RagError::io(path, e))?;
    let mut questions = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |reason: String| RagError::EvalSet {
            path: path.to_owned(),
            line: index + 1,
            reason,
        };
        let parsed: EvalLine = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
        let question = parsed.question.trim().to_owned();
        if question.is_empty() {
            return Err(bad("empty question".into()));
        }
        let domain = parsed.doc.split('/').next().unwrap_or_default().to_owned();
        if !parsed.doc.contains('/') || !DOMAINS.contains(&domain.as_str()) {
            return Err(bad(format!(
                "`doc` must be <domain>/<file>.md with a known domain, got `{}`",
                parsed.doc
            )));
        }
        questions.push(EvalQuestion {
            question,
            doc: parsed.doc,
            domain,
        });
    }
    Ok(questions)
}

/// Recall and reciprocal rank over a group of questions.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Scores {
    /// Questions in the group.
    pub questions: usize,
    /// Share of questions whose document ranked first.
    pub recall_at_1: f64,
    /// Share of questions whose document ranked in the first five.
    pub recall_at_5: f64,
    /// Mean of 1/rank, counting 0 beyond rank k.
    pub mrr: f64,
}

/// Scores of one domain's questions, over the whole kb and within the domain.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DomainScores {
    /// Searched over the whole kb.
    pub unfiltered: Scores,
    /// Searched within the question's domain.
    pub filtered: Scores,
}

/// A question whose document did not make the first five of the unfiltered search.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalMiss {
    /// The question.
    pub question: String,
    /// The expected document.
    pub expected: String,
    /// Its rank among the first k documents, if there.
    pub rank: Option<usize>,
    /// The document that ranked first instead.
    pub top: Option<String>,
}

/// The outcome of [`evaluate`]; `Display` prints it as a table.
///
/// The headline numbers search the whole kb (no routing); [`RetrievalReport::filtered`] and
/// [`DomainScores::filtered`] search each question's own domain.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RetrievalReport {
    /// Documents ranked per question (MRR is MRR@k).
    pub k: usize,
    /// Questions evaluated.
    pub questions: usize,
    /// Share of questions whose document ranked first, whole kb.
    pub recall_at_1: f64,
    /// Share of questions whose document ranked in the first five, whole kb.
    pub recall_at_5: f64,
    /// Mean reciprocal rank, whole kb.
    pub mrr: f64,
    /// The same scores with each search restricted to the question's domain.
    pub filtered: Scores,
    /// Scores by domain.
    pub per_domain: BTreeMap<String, DomainScores>,
    /// Unfiltered misses at rank 5, in question order.
    pub misses: Vec<EvalMiss>,
}

/// Runs every question against `kb`, ranking the first `k` distinct documents (at least five,
/// so recall@5 is always measured).
pub fn evaluate(
    kb: &KnowledgeBase,
    questions: &[EvalQuestion],
    k: usize,
) -> Result<RetrievalReport> {
    let k = k.max(1);
    let depth = k.max(5);
    let mut all = Tally::default();
    let mut all_filtered = Tally::default();
    let mut by_domain: BTreeMap<String, (Tally, Tally)> = BTreeMap::new();
    let mut misses = Vec::new();

    for question in questions {
        let ranked = ranked_documents(kb, &question.question, depth, None)?;
        let rank = ranked
            .iter()
            .position(|doc| *doc == question.doc)
            .map(|i| i + 1);
        let filtered_ranked =
            ranked_documents(kb, &question.question, depth, Some(&question.domain))?;
        let filtered_rank = filtered_ranked
            .iter()
            .position(|doc| *doc == question.doc)
            .map(|i| i + 1);

        let (domain, domain_filtered) = by_domain.entry(question.domain.clone()).or_default();
        for tally in [&mut all, &mut *domain] {
            tally.add(rank, k);
        }
        for tally in [&mut all_filtered, &mut *domain_filtered] {
            tally.add(filtered_rank, k);
        }
        if rank.is_none_or(|r| r > 5) {
            misses.push(EvalMiss {
                question: question.question.clone(),
                expected: question.doc.clone(),
                rank,
                top: ranked.into_iter().next(),
            });
        }
    }

    let overall = all.scores();
    Ok(RetrievalReport {
        k,
        questions: overall.questions,
        recall_at_1: overall.recall_at_1,
        recall_at_5: overall.recall_at_5,
        mrr: overall.mrr,
        filtered: all_filtered.scores(),
        per_domain: by_domain
            .into_iter()
            .map(|(name, (unfiltered, filtered))| {
                let scores = DomainScores {
                    unfiltered: unfiltered.scores(),
                    filtered: filtered.scores(),
                };
                (name, scores)
            })
            .collect(),
        misses,
    })
}

/// The first `depth` distinct document paths for `query`, best first.
fn ranked_documents(
    kb: &KnowledgeBase,
    query: &str,
    depth: usize,
    domain: Option<&str>,
) -> Result<Vec<String>> {
    // Several chunks of one document often rank together; widen until `depth` documents show
    // up or the index has no more matches.
    let mut chunks = depth.saturating_mul(4);
    loop {
        let options = SearchOptions {
            k: chunks,
            domain: domain.map(str::to_owned),
            min_score: None,
        };
        let passages = kb.search(query, &options)?;
        let mut documents: Vec<String> = Vec::new();
        for passage in &passages {
            if !documents.contains(&passage.path) {
                documents.push(passage.path.clone());
            }
        }
        if documents.len() >= depth || passages.len() < chunks {
            documents.truncate(depth);
            return Ok(documents);
        }
        chunks = chunks.saturating_mul(4);
    }
}

#[derive(Debug, Default)]
struct Tally {
    questions: usize,
    at_1: usize,
    at_5: usize,
    reciprocal: f64,
}

impl Tally {
    fn add(&mut self, rank: Option<usize>, k: usize) {
        self.questions += 1;
        if let Some(rank) = rank {
            self.at_1 += usize::from(rank == 1);
            self.at_5 += usize::from(rank <= 5);
            if rank <= k {
                self.reciprocal += 1.0 / rank as f64;
            }
        }
    }

    fn scores(&self) -> Scores {
        let share = |count: f64| {
            if self.questions == 0 {
                0.0
            } else {
                count / self.questions as f64
            }
        };
        Scores {
            questions: self.questions,
            recall_at_1: share(self.at_1 as f64),
            recall_at_5: share(self.at_5 as f64),
            mrr: share(self.reciprocal),
        }
    }
}

impl fmt::Display for RetrievalReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<10} {:>9} | {:^22} | {:^22}",
            "", "", "whole kb", "within domain"
        )?;
        writeln!(
            f,
            "{:<10} {:>9} | {:>6} {:>6} {:>8} | {:>6} {:>6} {:>8}",
            "domain",
            "questions",
            "R@1",
            "R@5",
            format!("MRR@{}", self.k),
            "R@1",
            "R@5",
            format!("MRR@{}", self.k)
        )?;
        let row = |f: &mut fmt::Formatter<'_>, name: &str, whole: &Scores, within: &Scores| {
            writeln!(
                f,
                "{:<10} {:>9} | {:>5.1}% {:>5.1}% {:>8.3} | {:>5.1}% {:>5.1}% {:>8.3}",
                name,
                whole.questions,
                whole.recall_at_1 * 100.0,
                whole.recall_at_5 * 100.0,
                whole.mrr,
                within.recall_at_1 * 100.0,
                within.recall_at_5 * 100.0,
                within.mrr
            )
        };
        for (name, scores) in &self.per_domain {
            row(f, name, &scores.unfiltered, &scores.filtered)?;
        }
        let overall = Scores {
            questions: self.questions,
            recall_at_1: self.recall_at_1,
            recall_at_5: self.recall_at_5,
            mrr: self.mrr,
        };
        row(f, "all", &overall, &self.filtered)?;
        if !self.misses.is_empty() {
            writeln!(f, "\nmissed at 5 (whole kb): {}", self.misses.len())?;
            for miss in self.misses.iter().take(MISSES_SHOWN) {
                let rank = miss.rank.map_or("-".to_owned(), |r| r.to_string());
                let top = miss.top.as_deref().unwrap_or("nothing");
                writeln!(
                    f,
                    "  rank {rank:>2}  {}  (wanted {}, got {top})",
                    miss.question, miss.expected
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::document::Document;

    fn doc(path: &str, title: &str, body: &str) -> Document {
        Document {
            path: path.into(),
            title: title.into(),
            domain: path.split('/').next().unwrap().into(),
            tags: vec![],
            body: body.into(),
        }
    }

    fn question(question: &str, doc: &str) -> EvalQuestion {
        EvalQuestion {
            question: question.into(),
            doc: doc.into(),
            domain: doc.split('/').next().unwrap().into(),
        }
    }

    #[test]
    fn loads_files_and_directories_and_reports_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("biology.jsonl"),
            "{\"question\": \"What do B cells make?\", \"doc\": \"biology/immune.md\"}\n\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("history.jsonl"),
            "{\"question\": \"Who advised consuls?\", \"doc\": \"history/rome.md\"}\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
        let questions = load_eval_set(dir.path()).unwrap();
        assert_eq!(questions.len(), 2);
        assert_eq!(questions[0].domain, "biology");
        assert_eq!(
            load_eval_set(dir.path().join("history.jsonl"))
                .unwrap()
                .len(),
            1
        );

        let bad = dir.path().join("bad.jsonl");
        for line in [
            "not json",
            "{\"question\": \"q\", \"doc\": \"nowhere.md\"}",
            "{\"question\": \" \", \"doc\": \"biology/a.md\"}",
        ] {
            std::fs::write(&bad, format!("\n{line}\n")).unwrap();
            let err = load_eval_set(&bad).unwrap_err();
            assert!(matches!(err, RagError::EvalSet { line: 2, .. }), "{err}");
        }
    }

    #[test]
    fn ranks_distinct_documents() {
        let kb = KnowledgeBase::from_documents(&[
            doc(
                "biology/immune.md",
                "Immune System",
                "B cells make antibodies.\n\n## More\n\nAntibodies again.",
            ),
            doc(
                "biology/cells.md",
                "Cells",
                "Cells have membranes. Antibodies are proteins made by cells.",
            ),
            doc("history/rome.md", "Rome", "The Senate advised the consuls."),
        ])
        .unwrap();
        let questions = [
            question("what makes antibodies", "biology/immune.md"),
            question("cell membranes", "biology/cells.md"),
            question("antibodies proteins", "biology/cells.md"),
            question("who advised the consuls", "history/rome.md"),
            question("quantum chromodynamics", "history/rome.md"),
        ];
        let report = evaluate(&kb, &questions, 10).unwrap();
        assert_eq!(report.questions, 5);
        assert!((report.recall_at_5 - 0.8).abs() < 1e-9);
        assert!(report.recall_at_1 <= report.recall_at_5);
        assert_eq!(report.per_domain["history"].unfiltered.questions, 2);
        assert_eq!(report.misses.len(), 1);
        assert_eq!(report.misses[0].expected, "history/rome.md");
        let table = report.to_string();
        assert!(table.contains("biology") && table.contains("all") && table.contains("missed"));
    }
}

//! Accuracy, per-domain precision/recall/F1, calibration error and the confusion matrix.

use std::fmt;

use serde::Serialize;

use crate::classifier::Classify;
use crate::data::Example;
use crate::domain::Domain;

const CLASSES: usize = Domain::COUNT;
/// Confidence bins of the expected calibration error.
const CALIBRATION_BINS: usize = 10;

/// Precision, recall and F1 of one domain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassMetrics {
    /// The domain.
    pub domain: Domain,
    /// Of the examples predicted as this domain, the share that really are (0 when none).
    pub precision: f64,
    /// Of the examples of this domain, the share predicted as it (0 when none).
    pub recall: f64,
    /// Harmonic mean of precision and recall.
    pub f1: f64,
    /// Number of examples of this domain.
    pub support: usize,
}

/// How well a classifier did on a set of labelled examples.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalReport {
    /// Examples evaluated.
    pub total: usize,
    /// Examples whose predicted domain was the label.
    pub correct: usize,
    /// `correct / total` (0 for an empty set).
    pub accuracy: f64,
    /// Unweighted mean F1 over the domains present in the labels or predictions.
    pub macro_f1: f64,
    /// Expected calibration error: the support-weighted gap between mean confidence and
    /// accuracy over ten confidence bins. 0 is perfectly calibrated.
    pub calibration_error: f64,
    /// One entry per domain, in [`Domain::ALL`] order.
    pub per_class: Vec<ClassMetrics>,
    /// `confusion[label][predicted]` counts, both indexed in [`Domain::ALL`] order.
    pub confusion: [[usize; CLASSES]; CLASSES],
}

fn ratio(numerator: usize, denominator: usize) -> f64 {
    if denominator == 0 {
        0.0
    } else {
        numerator as f64 / denominator as f64
    }
}

/// Runs `classifier` over `examples` and scores its decisions against the labels.
pub fn evaluate(classifier: &(impl Classify + ?Sized), examples: &[Example]) -> EvalReport {
    let mut confusion = [[0usize; CLASSES]; CLASSES];
    // Per bin: examples, correct ones, summed confidence.
    let mut bins = [(0usize, 0usize, 0f64); CALIBRATION_BINS];
    for example in examples {
        let decision = classifier.classify(&example.turns());
        let right = decision.domain == example.label;
        confusion[example.label.index()][decision.domain.index()] += 1;
        let confidence = f64::from(decision.confidence.clamp(0.0, 1.0));
        let bin = ((confidence * CALIBRATION_BINS as f64) as usize).min(CALIBRATION_BINS - 1);
        bins[bin].0 += 1;
        bins[bin].1 += usize::from(right);
        bins[bin].2 += confidence;
    }

    let total = examples.len();
    let correct: usize = (0..CLASSES).map(|class| confusion[class][class]).sum();
    let per_class: Vec<ClassMetrics> = Domain::ALL
        .into_iter()
        .map(|domain| {
            let class = domain.index();
            let hits = confusion[class][class];
            let support: usize = confusion[class].iter().sum();
            let predicted: usize = confusion.iter().map(|row| row[class]).sum();
            let precision = ratio(hits, predicted);
            let recall = ratio(hits, support);
            let f1 = if precision + recall > 0.0 {
                2.0 * precision * recall / (precision + recall)
            } else {
                0.0
            };
            ClassMetrics {
                domain,
                precision,
                recall,
                f1,
                support,
            }
        })
        .collect();
    let seen: Vec<&ClassMetrics> = per_class
        .iter()
        .filter(|metrics| {
            metrics.support > 0 || confusion.iter().any(|row| row[metrics.domain.index()] > 0)
        })
        .collect();
    let macro_f1 = if seen.is_empty() {
        0.0
    } else {
        seen.iter().map(|metrics| metrics.f1).sum::<f64>() / seen.len() as f64
    };
    let calibration_error = bins
        .iter()
        .filter(|bin| bin.0 > 0)
        .map(|&(count, right, confidence)| {
            let gap = (confidence / count as f64 - ratio(right, count)).abs();
            gap * ratio(count, total)
        })
        .sum();

    EvalReport {
        total,
        correct,
        accuracy: ratio(correct, total),
        macro_f1,
        calibration_error,
        per_class,
        confusion,
    }
}

impl fmt::Display for EvalReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "accuracy {:.2}% ({}/{}), macro F1 {:.3}, calibration error {:.3}",
            self.accuracy * 100.0,
            self.correct,
            self.total,
            self.macro_f1,
            self.calibration_error
        )?;
        writeln!(
            f,
            "{:<10} {:>9} {:>7} {:>7} {:>8}",
            "domain", "precision", "recall", "f1", "support"
        )?;
        for metrics in &self.per_class {
            writeln!(
                f,
                "{:<10} {:>9.3} {:>7.3} {:>7.3} {:>8}",
                metrics.domain.as_str(),
                metrics.precision,
                metrics.recall,
                metrics.f1,
                metrics.support
            )?;
        }
        writeln!(f, "confusion (rows: true domain, columns: predicted)")?;
        write!(f, "{:<10}", "")?;
        for domain in Domain::ALL {
            write!(f, " {:>8}", domain.as_str())?;
        }
        writeln!(f)?;
        for domain in Domain::ALL {
            write!(f, "{:<10}", domain.as_str())?;
            for count in self.confusion[domain.index()] {
                write!(f, " {count:>8}")?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classifier::Decision;
    use crate::domain::Turn;

    /// Says "history" for everything, with confidence 0.9.
    struct AlwaysHistory;

    impl Classify for AlwaysHistory {
        fn classify(&self, _conversation: &[Turn<'_>]) -> Decision {
            Decision::from_probabilities([0.025, 0.9, 0.025, 0.025, 0.025])
        }
    }

    #[test]
    fn metrics_of_a_constant_classifier() {
        let examples = vec![
            Example::text("a", Domain::History),
            Example::text("b", Domain::History),
            Example::text("c", Domain::Biology),
            Example::text("d", Domain::General),
        ];
        let report = evaluate(&AlwaysHistory, &examples);
        assert_eq!((report.correct, report.total), (2, 4));
        assert!((report.accuracy - 0.5).abs() < 1e-12);
        let history = &report.per_class[Domain::History.index()];
        assert!((history.precision - 0.5).abs() < 1e-12);
        assert!((history.recall - 1.0).abs() < 1e-12);
        assert_eq!(report.per_class[Domain::Biology.index()].f1, 0.0);
        assert_eq!(
            report.confusion[Domain::Biology.index()][Domain::History.index()],
            1
        );
        // History, biology and general are seen; the F1s are 2/3, 0, 0.
        assert!((report.macro_f1 - (2.0 / 3.0) / 3.0).abs() < 1e-9);
        // Confidence 0.9 against accuracy 0.5.
        assert!((report.calibration_error - 0.4).abs() < 1e-6);

        let table = report.to_string();
        assert!(table.starts_with("accuracy 50.00% (2/4)"), "{table}");
        assert!(table.contains("confusion"), "{table}");
    }

    #[test]
    fn empty_set_gives_zeros() {
        let report = evaluate(&AlwaysHistory, &[]);
        assert_eq!(report.total, 0);
        assert_eq!(report.accuracy, 0.0);
        assert_eq!(report.macro_f1, 0.0);
    }
}

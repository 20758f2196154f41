//! The trained classifier and the decision it returns.

use std::path::Path;

use serde::Serialize;

use crate::domain::{Domain, Turn};
use crate::error::{Result, RouterError};
use crate::{features, format};

/// The shipped model, compiled into the binary so it works from any directory.
static BUNDLED_MODEL: &[u8] =
    include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/model/router.bin"));
/// How the bundled model is named in errors.
const BUNDLED_NAME: &str = "crates/router/model/router.bin (bundled)";

const CLASSES: usize = Domain::COUNT;

/// What a classifier decided for one conversation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// The most probable domain.
    pub domain: Domain,
    /// Its probability, in `0.0..=1.0`.
    pub confidence: f32,
    /// Every domain with its probability, most probable first; the probabilities sum to 1.
    pub scores: Vec<(Domain, f32)>,
}

impl Decision {
    /// Builds a decision from one probability per domain, in [`Domain::ALL`] order.
    pub fn from_probabilities(probabilities: [f32; Domain::COUNT]) -> Self {
        let mut scores: Vec<(Domain, f32)> = Domain::ALL.into_iter().zip(probabilities).collect();
        // Stable sort: ties keep class order, so the result is deterministic.
        scores.sort_by(|a, b| b.1.total_cmp(&a.1));
        let (domain, confidence) = scores[0];
        Decision {
            domain,
            confidence,
            scores,
        }
    }

    /// The probability given to `domain`.
    pub fn probability(&self, domain: Domain) -> f32 {
        self.scores
            .iter()
            .find(|(scored, _)| *scored == domain)
            .map_or(0.0, |&(_, probability)| probability)
    }
}

/// Anything that can route a conversation: the trained [`Classifier`] or the
/// [`KeywordBaseline`](crate::KeywordBaseline) it is compared against.
pub trait Classify {
    /// Decides the domain of a conversation.
    fn classify(&self, conversation: &[Turn<'_>]) -> Decision;

    /// Decides the domain of a single user message.
    fn classify_text(&self, text: &str) -> Decision {
        self.classify(&[Turn::user(text)])
    }
}

/// Multinomial logistic regression over hashed word and character n-gram features.
///
/// Build one with [`train`](crate::train), load the shipped one with [`Classifier::bundled`], or
/// read a saved one with [`Classifier::load`].
#[derive(Debug, Clone, PartialEq)]
pub struct Classifier {
    pub(crate) buckets: u32,
    /// Row-major `buckets x CLASSES`: the weights of one feature are adjacent.
    pub(crate) weights: Vec<f32>,
    pub(crate) bias: [f32; CLASSES],
    /// Softmax temperature fitted on held-out data, so confidences are calibrated.
    pub(crate) temperature: f32,
}

impl Classifier {
    /// A model with all weights zero (predicts from the bias alone).
    pub(crate) fn zeroed(buckets: u32) -> Self {
        Classifier {
            buckets,
            weights: vec![0.0; buckets as usize * CLASSES],
            bias: [0.0; CLASSES],
            temperature: 1.0,
        }
    }

    /// The model shipped with this crate (trained on `data/router`), embedded in the binary.
    ///
    /// Fails only if the crate was built with a broken model file, which its tests rule out.
    pub fn bundled() -> Result<Self> {
        format::decode(BUNDLED_MODEL, Path::new(BUNDLED_NAME))
    }

    /// Reads a model file written by [`Classifier::save`]. A corrupt, truncated or mismatched
    /// file is a [`RouterError::ModelFile`] naming it.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| RouterError::Io {
            path: path.to_owned(),
            source,
        })?;
        format::decode(&bytes, path)
    }

    /// Parses the bytes of a model file.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        format::decode(bytes, Path::new("<in-memory model>"))
    }

    /// The model file's bytes (weights quantised to 16 bits, all-zero rows left out).
    pub fn to_bytes(&self) -> Vec<u8> {
        format::encode(self)
    }

    /// Writes the model to `path` atomically: a temporary sibling file is written, flushed and
    /// renamed over `path`.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        format::write_atomically(path.as_ref(), &self.to_bytes())
    }

    /// Size of the hashed feature space.
    pub fn buckets(&self) -> u32 {
        self.buckets
    }

    /// The calibration temperature that divides the logits before the softmax.
    pub fn temperature(&self) -> f32 {
        self.temperature
    }

    /// Raw class scores (before temperature and softmax), in [`Domain::ALL`] order.
    pub(crate) fn logits(&self, conversation: &[Turn<'_>]) -> [f32; CLASSES] {
        let mut logits = self.bias;
        features::for_each_feature(conversation, self.buckets, &mut |bucket, value| {
            self.add_feature(&mut logits, bucket, value)
        });
        logits
    }

    /// Logits of already extracted (sparse) features.
    pub(crate) fn sparse_logits(&self, features: &[(u32, f32)]) -> [f32; CLASSES] {
        let mut logits = self.bias;
        for &(bucket, value) in features {
            self.add_feature(&mut logits, bucket, value);
        }
        logits
    }

    /// Adds one feature's contribution to every class score.
    fn add_feature(&self, logits: &mut [f32; CLASSES], bucket: u32, value: f32) {
        let start = bucket as usize * CLASSES;
        // Buckets come from the same `buckets` the weights were sized with, so this always
        // hits; `get` just keeps a logic error from becoming a panic in the server.
        if let Some(row) = self.weights.get(start..start + CLASSES) {
            for (logit, weight) in logits.iter_mut().zip(row) {
                *logit += value * weight;
            }
        }
    }

    /// Decides the domain of a conversation. The last user turn weighs most, the few turns
    /// before it a little; system turns are ignored.
    pub fn classify(&self, conversation: &[Turn<'_>]) -> Decision {
        let probabilities = softmax(self.logits(conversation), self.temperature);
        Decision::from_probabilities(probabilities)
    }

    /// Decides the domain of a single user message.
    pub fn classify_text(&self, text: &str) -> Decision {
        self.classify(&[Turn::user(text)])
    }
}

impl Classify for Classifier {
    fn classify(&self, conversation: &[Turn<'_>]) -> Decision {
        Classifier::classify(self, conversation)
    }
}

/// Softmax of `logits / temperature`, shifted by the maximum so it never overflows.
pub(crate) fn softmax(logits: [f32; CLASSES], temperature: f32) -> [f32; CLASSES] {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut out = logits.map(|logit| ((logit - max) / temperature).exp());
    let sum: f32 = out.iter().sum();
    for probability in &mut out {
        *probability /= sum;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_sums_to_one_and_temperature_flattens() {
        let logits = [4.0, 1.0, 0.0, -2.0, 1000.0];
        let sharp = softmax(logits, 1.0);
        assert!((sharp.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(sharp[4] > 0.999);
        let flat = softmax([4.0, 1.0, 0.0, -2.0, 0.0], 10.0);
        let peaked = softmax([4.0, 1.0, 0.0, -2.0, 0.0], 1.0);
        assert!(flat[0] < peaked[0]);
    }

    #[test]
    fn decision_is_sorted_and_reports_the_top_class() {
        let decision = Decision::from_probabilities([0.1, 0.6, 0.05, 0.05, 0.2]);
        assert_eq!(decision.domain, Domain::History);
        assert_eq!(decision.confidence, 0.6);
        assert_eq!(decision.scores[1], (Domain::General, 0.2));
        assert_eq!(decision.probability(Domain::Security), 0.05);
        let json = serde_json::to_value(&decision).unwrap_or_default();
        assert_eq!(json["domain"], "history");
        assert_eq!(json["scores"][0][0], "history");
    }

    #[test]
    fn zeroed_model_is_uniform() {
        let decision = Classifier::zeroed(64).classify_text("anything at all");
        for (_, probability) in &decision.scores {
            assert!((probability - 0.2).abs() < 1e-6);
        }
    }
}

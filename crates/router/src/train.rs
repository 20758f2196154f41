//! Training: SGD on the multinomial logistic loss, then temperature calibration.

use serde::{Deserialize, Serialize};

use crate::classifier::{softmax, Classifier};
use crate::data::Example;
use crate::domain::Domain;
use crate::error::{Result, RouterError};
use crate::features::{self, DEFAULT_BUCKETS};

const CLASSES: usize = Domain::COUNT;
/// Same cap as the model file reader, so whatever is trained can be loaded again.
const MAX_BUCKETS: u32 = 1 << 22;
/// Temperatures outside this range only ever fit quirks of a small held-out set.
const MIN_TEMPERATURE: f32 = 0.2;
const MAX_TEMPERATURE: f32 = 20.0;

/// Hyper-parameters of [`train`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainOptions {
    /// Passes over the training examples.
    pub epochs: usize,
    /// Initial SGD step; it decays linearly towards zero over the run.
    pub learning_rate: f32,
    /// L2 penalty (weight decay) applied to the weights a step touches.
    pub l2: f32,
    /// Size of the hashed feature space.
    pub buckets: u32,
    /// Seed of the shuffling and of the calibration split: same seed, same model.
    pub seed: u64,
    /// Share of each class held out to fit the softmax temperature (0 skips calibration).
    /// The final model is then retrained on every example with that temperature.
    pub holdout_fraction: f32,
    /// Weight examples inversely to their class size, so a large class does not dominate.
    pub balance_classes: bool,
}

impl Default for TrainOptions {
    /// Values picked by 5-fold cross-validation on `data/router/*.train.jsonl` only (see
    /// `examples/crossval_router.rs`): accuracy was flat (within half a point) for 20-100
    /// epochs and learning rates 0.2-1; l2 peaked at 0.1 (0.05 and 0.2 were both worse, 3e-3
    /// clearly so) and [`DEFAULT_BUCKETS`] at 2^20 (fewer buckets collide, more gain nothing).
    fn default() -> Self {
        TrainOptions {
            epochs: 20,
            learning_rate: 0.4,
            l2: 0.1,
            buckets: DEFAULT_BUCKETS,
            seed: 0x5eed,
            holdout_fraction: 0.15,
            balance_classes: true,
        }
    }
}

impl TrainOptions {
    fn validate(&self) -> Result<()> {
        let fail = |reason: String| Err(RouterError::Training(reason));
        if self.epochs == 0 {
            return fail("epochs must be at least 1".to_owned());
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return fail(format!(
                "learning rate {} must be positive",
                self.learning_rate
            ));
        }
        if !(self.l2.is_finite() && self.l2 >= 0.0) {
            return fail(format!("l2 {} must be zero or positive", self.l2));
        }
        if self.buckets == 0 || self.buckets > MAX_BUCKETS {
            return fail(format!(
                "buckets {} out of range 1..={MAX_BUCKETS}",
                self.buckets
            ));
        }
        if !(0.0..=0.5).contains(&self.holdout_fraction) {
            return fail(format!(
                "holdout fraction {} out of range 0..=0.5",
                self.holdout_fraction
            ));
        }
        Ok(())
    }
}

/// SplitMix64: tiny, seedable, and identical on every platform.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for last in (1..items.len()).rev() {
            let pick = (self.next() % (last as u64 + 1)) as usize;
            items.swap(last, pick);
        }
    }
}

/// Examples turned into sparse feature vectors once, reused by every epoch.
struct Prepared {
    features: Vec<Vec<(u32, f32)>>,
    labels: Vec<usize>,
    weights: [f32; CLASSES],
}

/// Trains a classifier on `examples`.
///
/// Deterministic: the same examples (in the same order) and options give the same model.
pub fn train(examples: &[Example], options: &TrainOptions) -> Result<Classifier> {
    options.validate()?;
    let mut class_sizes = [0usize; CLASSES];
    for example in examples {
        class_sizes[example.label.index()] += 1;
    }
    let present = class_sizes.iter().filter(|&&size| size > 0).count();
    if present < 2 {
        return Err(RouterError::Training(format!(
            "need examples of at least two domains, got {} examples of {present}",
            examples.len()
        )));
    }
    let weights = class_sizes.map(|size| {
        if options.balance_classes && size > 0 {
            examples.len() as f32 / (present * size) as f32
        } else {
            1.0
        }
    });
    let prepared = Prepared {
        features: examples
            .iter()
            .map(|example| features::sparse_features(&example.turns(), options.buckets))
            .collect(),
        labels: examples
            .iter()
            .map(|example| example.label.index())
            .collect(),
        weights,
    };

    let mut rng = Rng(options.seed);
    let (fit_part, holdout) =
        stratified_split(&prepared.labels, options.holdout_fraction, &mut rng);
    let everything: Vec<usize> = (0..examples.len()).collect();
    if holdout.is_empty() {
        return Ok(fit(&prepared, &everything, options, &mut rng));
    }
    let trial = fit(&prepared, &fit_part, options, &mut rng);
    let held_out: Vec<([f32; CLASSES], usize)> = holdout
        .iter()
        .map(|&index| {
            (
                trial.sparse_logits(&prepared.features[index]),
                prepared.labels[index],
            )
        })
        .collect();
    let temperature = fit_temperature(&held_out);

    let mut model = fit(&prepared, &everything, options, &mut rng);
    model.temperature = temperature;
    Ok(model)
}

/// Holds out `fraction` of each class (at least one example stays in training).
fn stratified_split(labels: &[usize], fraction: f32, rng: &mut Rng) -> (Vec<usize>, Vec<usize>) {
    let mut fit_part = Vec::new();
    let mut holdout = Vec::new();
    for class in 0..CLASSES {
        let mut members: Vec<usize> = (0..labels.len())
            .filter(|&index| labels[index] == class)
            .collect();
        rng.shuffle(&mut members);
        let held =
            ((members.len() as f32 * fraction) as usize).min(members.len().saturating_sub(1));
        holdout.extend_from_slice(&members[..held]);
        fit_part.extend_from_slice(&members[held..]);
    }
    fit_part.sort_unstable();
    holdout.sort_unstable();
    (fit_part, holdout)
}

/// Plain SGD over `indices` for `options.epochs` shuffled passes.
fn fit(data: &Prepared, indices: &[usize], options: &TrainOptions, rng: &mut Rng) -> Classifier {
    let mut model = Classifier::zeroed(options.buckets);
    let mut order = indices.to_vec();
    let total_steps = (options.epochs * order.len()).max(1) as f32;
    let mut step = 0usize;
    for _ in 0..options.epochs {
        rng.shuffle(&mut order);
        for &index in &order {
            // Linear decay; the small floor keeps the last examples from being ignored.
            let progress = step as f32 / total_steps;
            let rate = options.learning_rate * (1.0 - progress).max(0.02);
            step += 1;

            let features = &data.features[index];
            let label = data.labels[index];
            let probabilities = softmax(model.sparse_logits(features), 1.0);
            let scale = data.weights[label];
            let mut gradient = probabilities;
            gradient[label] -= 1.0;
            for slot in &mut gradient {
                *slot *= scale;
            }

            let decay = 1.0 - rate * options.l2;
            for &(bucket, value) in features {
                let start = bucket as usize * CLASSES;
                let row = &mut model.weights[start..start + CLASSES];
                for (weight, slope) in row.iter_mut().zip(gradient) {
                    *weight = *weight * decay - rate * slope * value;
                }
            }
            for (bias, slope) in model.bias.iter_mut().zip(gradient) {
                *bias -= rate * slope;
            }
        }
    }
    model
}

/// Mean negative log-likelihood of the held-out labels at `temperature`.
fn held_out_loss(held_out: &[([f32; CLASSES], usize)], temperature: f32) -> f64 {
    let total: f64 = held_out
        .iter()
        .map(|(logits, label)| {
            let probability = softmax(*logits, temperature)[*label];
            -f64::from(probability.max(1e-12)).ln()
        })
        .sum();
    total / held_out.len().max(1) as f64
}

/// The temperature minimising held-out log loss. The loss is convex in 1/T, so a golden-section
/// search over log T finds the optimum inside the allowed range.
fn fit_temperature(held_out: &[([f32; CLASSES], usize)]) -> f32 {
    let ratio = (5f64.sqrt() - 1.0) / 2.0;
    let (mut low, mut high) = (
        f64::from(MIN_TEMPERATURE).ln(),
        f64::from(MAX_TEMPERATURE).ln(),
    );
    let loss = |log_t: f64| held_out_loss(held_out, log_t.exp() as f32);
    let mut left = high - ratio * (high - low);
    let mut right = low + ratio * (high - low);
    let (mut left_loss, mut right_loss) = (loss(left), loss(right));
    for _ in 0..40 {
        if left_loss <= right_loss {
            high = right;
            right = left;
            right_loss = left_loss;
            left = high - ratio * (high - low);
            left_loss = loss(left);
        } else {
            low = left;
            left = right;
            left_loss = right_loss;
            right = low + ratio * (high - low);
            right_loss = loss(right);
        }
    }
    ((low + high) / 2.0).exp() as f32
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn toy_examples() -> Vec<Example> {
        let rows = [
            (Domain::Biology, "how do mitochondria make atp in the cell"),
            (Domain::Biology, "explain photosynthesis in plant leaves"),
            (Domain::Biology, "what do enzymes do in digestion"),
            (Domain::History, "why did the roman empire fall"),
            (Domain::History, "causes of the first world war"),
            (Domain::History, "who led the french revolution"),
            (Domain::Security, "how does a sql injection attack work"),
            (
                Domain::Security,
                "explain cross site scripting and csrf tokens",
            ),
            (Domain::Security, "what is a buffer overflow exploit"),
            (Domain::Teaching, "write a lesson plan on linear regression"),
            (
                Domain::Teaching,
                "make a grading rubric for a statistics project",
            ),
            (Domain::Teaching, "explain p values to my students simply"),
            (Domain::General, "give me a recipe for banana bread"),
            (Domain::General, "what is the weather like in spain in may"),
            (Domain::General, "recommend a good science fiction novel"),
        ];
        rows.iter()
            .map(|&(label, text)| Example::text(text, label))
            .collect()
    }

    fn small_options() -> TrainOptions {
        TrainOptions {
            buckets: 1 << 14,
            epochs: 30,
            holdout_fraction: 0.0,
            ..TrainOptions::default()
        }
    }

    #[test]
    fn learns_a_toy_set() {
        let examples = toy_examples();
        let model = train(&examples, &small_options()).unwrap();
        for example in &examples {
            let decision = model.classify(&example.turns());
            assert_eq!(decision.domain, example.label, "{:?}", example.messages);
        }
    }

    #[test]
    fn same_seed_same_model_other_seed_other_model() {
        let examples = toy_examples();
        let options = TrainOptions {
            holdout_fraction: 0.34,
            ..small_options()
        };
        let first = train(&examples, &options).unwrap();
        let second = train(&examples, &options).unwrap();
        assert_eq!(first, second);
        let reseeded = train(
            &examples,
            &TrainOptions {
                seed: 7,
                ..options.clone()
            },
        )
        .unwrap();
        assert_ne!(first.weights, reseeded.weights);
    }

    #[test]
    fn calibration_picks_a_temperature_in_range() {
        let examples = toy_examples();
        let options = TrainOptions {
            holdout_fraction: 0.34,
            ..small_options()
        };
        let model = train(&examples, &options).unwrap();
        assert!((MIN_TEMPERATURE..=MAX_TEMPERATURE).contains(&model.temperature()));
    }

    #[test]
    fn temperature_search_recovers_a_known_optimum() {
        // Logits that are twice too confident on a set where the top class is right 75% of
        // the time: the best temperature flattens them.
        let mut held_out = Vec::new();
        for index in 0..400 {
            let label = if index % 4 == 0 { 1 } else { 0 };
            held_out.push(([6.0, 0.0, 0.0, 0.0, 0.0], label));
        }
        let temperature = fit_temperature(&held_out);
        let confidence = softmax([6.0, 0.0, 0.0, 0.0, 0.0], temperature)[0];
        assert!(
            (confidence - 0.75).abs() < 0.01,
            "{temperature} {confidence}"
        );
    }

    #[test]
    fn bad_options_and_data_are_refused() {
        let examples = toy_examples();
        for options in [
            TrainOptions {
                epochs: 0,
                ..TrainOptions::default()
            },
            TrainOptions {
                learning_rate: f32::NAN,
                ..TrainOptions::default()
            },
            TrainOptions {
                buckets: 0,
                ..TrainOptions::default()
            },
            TrainOptions {
                holdout_fraction: 0.9,
                ..TrainOptions::default()
            },
        ] {
            assert!(matches!(
                train(&examples, &options),
                Err(RouterError::Training(_))
            ));
        }
        let one_class = vec![Example::text("only biology", Domain::Biology)];
        assert!(train(&one_class, &small_options()).is_err());
        assert!(train(&[], &small_options()).is_err());
    }

    #[test]
    fn options_deserialise_with_defaults() {
        let options: TrainOptions = serde_json::from_str(r#"{"epochs": 3}"#).unwrap();
        assert_eq!(options.epochs, 3);
        assert_eq!(options.buckets, DEFAULT_BUCKETS);
    }
}

//! Named datasets read from JSONL files, the validation split, and the seeded order in which
//! examples are visited (shuffled, or sampled by ratio across datasets).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Result, TrainError};
use crate::record::{parse_record, RecordFormat};
use crate::rng::{stream, Rng};
use crate::tokenize::{Renderer, TokenizedExample};

/// A data file and the name its dataset goes by (`name=path`, or the file stem).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataSource {
    /// Dataset name, used by `mix`.
    pub name: String,
    /// The JSONL file.
    pub path: PathBuf,
}

impl std::str::FromStr for DataSource {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let s = s.trim();
        // `name=path` unless what precedes `=` looks like a directory (a path containing `=`).
        if let Some((name, path)) = s.split_once('=') {
            if !name.is_empty() && !name.contains(['/', '\\']) {
                return Ok(Self {
                    name: name.to_string(),
                    path: path.into(),
                });
            }
        }
        let path = PathBuf::from(s);
        let name = path
            .file_stem()
            .map(|n| n.to_string_lossy().into_owned())
            .filter(|n| !n.is_empty())
            .ok_or_else(|| format!("{s:?} is not a file path"))?;
        Ok(Self { name, path })
    }
}

/// What loading a dataset found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataStats {
    /// Records per detected format.
    pub formats: BTreeMap<String, usize>,
    /// Examples cut to `max_seq_len`.
    pub truncated: usize,
    /// Examples left with no trained token after truncation (skipped).
    pub skipped: usize,
}

/// The examples of one named dataset.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Name (for mixing and reports).
    pub name: String,
    /// Tokenized examples in file order.
    pub examples: Vec<TokenizedExample>,
    /// What loading found.
    pub stats: DataStats,
}

fn format_name(format: RecordFormat) -> &'static str {
    match format {
        RecordFormat::Alpaca => "alpaca",
        RecordFormat::ShareGpt => "sharegpt",
        RecordFormat::OpenAi => "openai",
        RecordFormat::TeachingQa => "teaching_qa",
        RecordFormat::Dialogue => "dialogue",
        RecordFormat::Text => "text",
    }
}

/// Reads, parses and tokenizes a JSONL file; a bad record fails with its file and line.
pub fn load_dataset(source: &DataSource, renderer: &Renderer) -> Result<Dataset> {
    let text =
        std::fs::read_to_string(&source.path).map_err(|e| TrainError::file(&source.path, e))?;
    let mut examples = Vec::new();
    let mut stats = DataStats::default();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |reason: String| TrainError::BadRecord {
            path: source.path.clone(),
            line: index + 1,
            reason,
        };
        let (format, example) = parse_record(line).map_err(bad)?;
        let tokenized = renderer.render(&example).map_err(bad)?;
        *stats.formats.entry(format_name(format).into()).or_default() += 1;
        stats.truncated += usize::from(tokenized.truncated);
        if tokenized.target_count() == 0 {
            stats.skipped += 1;
            continue;
        }
        examples.push(tokenized);
    }
    Ok(Dataset {
        name: source.name.clone(),
        examples,
        stats,
    })
}

/// Moves a seeded `fraction` of the dataset's examples into a validation set (at least one
/// when the fraction is positive and the dataset has two or more).
pub fn split_off_validation(
    dataset: &mut Dataset,
    fraction: f64,
    seed: u64,
) -> Vec<TokenizedExample> {
    let n = dataset.examples.len();
    let held = ((n as f64 * fraction).round() as usize)
        .clamp(usize::from(fraction > 0.0 && n > 1), n.saturating_sub(1));
    let mut order: Vec<usize> = (0..n).collect();
    Rng::derived(seed, &[stream::SPLIT, fnv(dataset.name.as_bytes())]).shuffle(&mut order);
    let mut held_out: Vec<usize> = order[..held].to_vec();
    held_out.sort_unstable();
    let mut validation = Vec::with_capacity(held);
    for &i in held_out.iter().rev() {
        validation.push(dataset.examples.remove(i));
    }
    validation.reverse();
    validation
}

/// Sampling ratios by dataset name: `biology=0.3,history=0.7`.
#[derive(Debug, Clone, PartialEq)]
pub struct Mix(pub Vec<(String, f64)>);

impl std::str::FromStr for Mix {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let mut ratios = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, ratio) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?} is not name=ratio"))?;
            let ratio: f64 = ratio
                .trim()
                .parse()
                .map_err(|_| format!("{part:?}: the ratio is not a number"))?;
            if !(ratio.is_finite() && ratio >= 0.0) {
                return Err(format!("{part:?}: the ratio must be >= 0"));
            }
            ratios.push((name.trim().to_string(), ratio));
        }
        if ratios.iter().map(|(_, r)| r).sum::<f64>() <= 0.0 {
            return Err("the ratios add up to zero".into());
        }
        Ok(Self(ratios))
    }
}

/// An example of the training set: `(dataset index, example index)`.
pub type ExampleRef = (usize, usize);

/// Decides the order examples are visited in, epoch by epoch.
#[derive(Debug, Clone)]
pub struct Sampler {
    sizes: Vec<usize>,
    /// Per dataset, its normalised ratio; `None` for a shuffle of everything.
    weights: Option<Vec<f64>>,
    seed: u64,
}

impl Sampler {
    /// A sampler over datasets of these sizes; with a mix, every dataset must have a ratio and
    /// every ratio a dataset.
    pub fn new(datasets: &[Dataset], mix: Option<&Mix>, seed: u64) -> Result<Self> {
        let sizes: Vec<usize> = datasets.iter().map(|d| d.examples.len()).collect();
        let weights = match mix {
            None => None,
            Some(Mix(ratios)) => {
                for (name, _) in ratios {
                    if !datasets.iter().any(|d| &d.name == name) {
                        let names: Vec<&str> = datasets.iter().map(|d| d.name.as_str()).collect();
                        return Err(TrainError::setting(
                            "mix",
                            format!("no dataset named {name:?} (datasets: {names:?})"),
                        ));
                    }
                }
                let total: f64 = ratios.iter().map(|(_, r)| r).sum();
                let mut weights = Vec::with_capacity(datasets.len());
                for dataset in datasets {
                    let Some((_, ratio)) = ratios.iter().find(|(n, _)| n == &dataset.name) else {
                        return Err(TrainError::setting(
                            "mix",
                            format!("dataset {:?} has no ratio", dataset.name),
                        ));
                    };
                    if *ratio > 0.0 && dataset.examples.is_empty() {
                        return Err(TrainError::NoData(format!(
                            "dataset {:?} has a ratio in the mix but no examples",
                            dataset.name
                        )));
                    }
                    weights.push(ratio / total);
                }
                Some(weights)
            }
        };
        if sizes.iter().sum::<usize>() == 0 {
            return Err(TrainError::NoData(
                "the training data has no usable example".into(),
            ));
        }
        Ok(Self {
            sizes,
            weights,
            seed,
        })
    }

    /// Examples per epoch: every example once (with a mix, as many draws as examples).
    pub fn epoch_len(&self) -> usize {
        self.sizes.iter().sum()
    }

    /// The examples of every epoch in visiting order. Deterministic in the seed.
    pub fn plan(&self, epochs: usize) -> Vec<Vec<ExampleRef>> {
        match &self.weights {
            None => (0..epochs).map(|e| self.shuffled_epoch(e)).collect(),
            Some(weights) => self.mixed_epochs(weights, epochs),
        }
    }

    fn shuffled_epoch(&self, epoch: usize) -> Vec<ExampleRef> {
        let mut all: Vec<ExampleRef> = self
            .sizes
            .iter()
            .enumerate()
            .flat_map(|(d, &n)| (0..n).map(move |i| (d, i)))
            .collect();
        Rng::derived(self.seed, &[stream::SHUFFLE, epoch as u64]).shuffle(&mut all);
        all
    }

    /// Each draw picks a dataset by ratio, then that dataset's next example in a shuffled
    /// cycle (reshuffled each time it runs out), so small datasets repeat and large ones are
    /// subsampled according to the ratios.
    fn mixed_epochs(&self, weights: &[f64], epochs: usize) -> Vec<Vec<ExampleRef>> {
        let mut pick = Rng::derived(self.seed, &[stream::MIX]);
        let mut cycles: Vec<(Vec<usize>, usize, u64)> =
            self.sizes.iter().map(|_| (Vec::new(), 0, 0)).collect();
        let mut plan = Vec::with_capacity(epochs);
        for _ in 0..epochs {
            let mut epoch = Vec::with_capacity(self.epoch_len());
            for _ in 0..self.epoch_len() {
                let u = pick.next_f64();
                let mut acc = 0.0;
                let mut dataset = weights.iter().rposition(|&w| w > 0.0).unwrap_or(0);
                for (d, &w) in weights.iter().enumerate() {
                    acc += w;
                    if u < acc && w > 0.0 {
                        dataset = d;
                        break;
                    }
                }
                let (order, next, round) = &mut cycles[dataset];
                if *next == order.len() {
                    *order = (0..self.sizes[dataset]).collect();
                    let coords = [stream::SHUFFLE, dataset as u64, *round];
                    Rng::derived(self.seed, &coords).shuffle(order);
                    *next = 0;
                    *round += 1;
                }
                epoch.push((dataset, order[*next]));
                *next += 1;
            }
            plan.push(epoch);
        }
        plan
    }
}

/// FNV-1a, to turn names into stream coordinates and data into a fingerprint.
pub(crate) fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A fingerprint of the tokenized data, so a checkpoint is not resumed on other data.
pub(crate) fn fingerprint(datasets: &[Dataset]) -> u64 {
    let mut bytes = Vec::new();
    for dataset in datasets {
        bytes.extend_from_slice(dataset.name.as_bytes());
        for example in &dataset.examples {
            for (&t, &m) in example.tokens.iter().zip(&example.targets) {
                bytes.extend_from_slice(&t.to_le_bytes());
                bytes.push(u8::from(m));
            }
            bytes.push(0xff);
        }
    }
    fnv(&bytes)
}

/// Whether a path exists as a file, for early, clear errors.
pub(crate) fn check_exists(source: &DataSource) -> Result<()> {
    if Path::new(&source.path).is_file() {
        Ok(())
    } else {
        Err(TrainError::file(&source.path, "data file not found"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dataset(name: &str, n: usize) -> Dataset {
        let example = TokenizedExample {
            tokens: vec![1, 2],
            targets: vec![false, true],
            truncated: false,
        };
        Dataset {
            name: name.into(),
            examples: vec![example; n],
            stats: DataStats::default(),
        }
    }

    #[test]
    fn sources_are_named_by_stem_or_explicitly() {
        let s: DataSource = "data/bio.train.jsonl".parse().expect("path");
        assert_eq!(s.name, "bio.train");
        let s: DataSource = "biology=data/bio.jsonl".parse().expect("named");
        assert_eq!(
            (s.name.as_str(), s.path.as_path()),
            ("biology", Path::new("data/bio.jsonl"))
        );
        let s: DataSource = "./a=b/c.jsonl".parse().expect("path with =");
        assert_eq!(s.name, "c");
    }

    #[test]
    fn mixing_follows_the_ratios_and_is_seeded() {
        let sets = [dataset("a", 10), dataset("b", 1000), dataset("c", 90)];
        let mix: Mix = "a=0.5, b=0.25,c=0.25".parse().expect("mix");
        let sampler = Sampler::new(&sets, Some(&mix), 3).expect("sampler");
        let plan = sampler.plan(2);
        assert_eq!(plan.len(), 2);
        assert_eq!(plan[0].len(), 1100);
        let share = |d| plan[0].iter().filter(|(x, _)| *x == d).count() as f64 / 1100.0;
        assert!((share(0) - 0.5).abs() < 0.05, "{}", share(0));
        assert!((share(1) - 0.25).abs() < 0.05, "{}", share(1));
        // Dataset a is cycled through completely before any example repeats.
        let first_ten: Vec<usize> = plan[0]
            .iter()
            .filter(|(d, _)| *d == 0)
            .take(10)
            .map(|(_, i)| *i)
            .collect();
        let mut sorted = first_ten.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..10).collect::<Vec<_>>());
        assert_eq!(
            plan,
            Sampler::new(&sets, Some(&mix), 3).expect("sampler").plan(2)
        );
        assert_ne!(
            plan,
            Sampler::new(&sets, Some(&mix), 4).expect("sampler").plan(2)
        );

        let err =
            Sampler::new(&sets, Some(&"a=1,zzz=1".parse().expect("mix")), 0).expect_err("unknown");
        assert!(err.to_string().contains("zzz"), "{err}");
        let err =
            Sampler::new(&sets, Some(&"a=1,b=1".parse().expect("mix")), 0).expect_err("missing c");
        assert!(err.to_string().contains("\"c\" has no ratio"), "{err}");
        assert!("a=x".parse::<Mix>().is_err());
    }

    #[test]
    fn plain_epochs_visit_everything_once_in_a_new_order() {
        let sets = [dataset("a", 5), dataset("b", 7)];
        let plan = Sampler::new(&sets, None, 1).expect("sampler").plan(2);
        for epoch in &plan {
            let mut sorted = epoch.clone();
            sorted.sort_unstable();
            let all: Vec<ExampleRef> = (0..5)
                .map(|i| (0, i))
                .chain((0..7).map(|i| (1, i)))
                .collect();
            assert_eq!(sorted, all);
        }
        assert_ne!(plan[0], plan[1]);
    }

    #[test]
    fn validation_split_is_seeded_and_disjoint() {
        let mut set = dataset("a", 20);
        for (i, e) in set.examples.iter_mut().enumerate() {
            e.tokens[0] = i as u32;
        }
        let mut again = set.clone();
        let held = split_off_validation(&mut set, 0.2, 9);
        assert_eq!((held.len(), set.examples.len()), (4, 16));
        assert_eq!(held, split_off_validation(&mut again, 0.2, 9));
        for h in &held {
            assert!(!set.examples.contains(h));
        }
        let mut tiny = dataset("t", 2);
        assert_eq!(
            split_off_validation(&mut tiny, 0.01, 0).len(),
            1,
            "at least one"
        );
    }
}

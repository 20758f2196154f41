//! What the benchmark sends: seeded random-word prompts of a chosen token length, and which
//! model (base or adapter) each request names.
//!
//! Everything random is drawn from ChaCha8 streams keyed by `(seed, purpose, index)`, so a
//! request's prompt and adapter depend only on the seed and its index, never on timing or on
//! how many other requests there are; ChaCha8 is used rather than `StdRng` because rand does
//! not promise `StdRng`'s output stays the same across versions.

use std::sync::LazyLock;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Independent random streams, one per use.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Purpose {
    Prompt = 1,
    Filler = 2,
    Mix = 3,
    Arrivals = 4,
}

/// The random stream for `purpose` and `index` under `seed`.
pub(crate) fn rng(seed: u64, purpose: Purpose, index: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // 16 bits of purpose above 48 bits of index: streams never collide below 2^48 requests.
    rng.set_stream(((purpose as u64) << 48) | (index & ((1 << 48) - 1)));
    rng
}

/// Common short English words, separated by spaces (one string keeps the list compact): in the
/// vocabularies of the usual BPE tokenizers (Llama, Qwen, GPT-2 family) most are one token
/// with their leading space, so without `/tokenize` one word per token is a fair estimate;
/// with it, prompts are cut to the exact count anyway.
const WORDS: &str = "\
    the of and to in is was that for it as with be on not he by are this at from had \
    have or one but were which there all they been an has when who will more no if out \
    so said what up its about into than them can only other new some could time these \
    two may then do first any my now such like our over man me even most made after also \
    did many before must through back years where much your way well down should because \
    each just those people how too little state good very make world still own see men \
    work long get here between both life being under never day same another know while \
    last might us great old year off come since against go came right used take three \
    house use during without again place around however home small found thought went \
    say part once general high upon school every does got united left number course war \
    until always away something fact water though less public put think almost hand \
    enough far took head yet government system better set told nothing night end why \
    called find going look asked later knew point next program city business give group \
    toward young days let room side social present given several order national second \
    possible rather per face among form important often things looked early white case \
    become large big need four within felt along children saw best church ever least \
    power development light thing family interest want members mind area country";

fn vocabulary() -> &'static [&'static str] {
    static WORDS_LIST: LazyLock<Vec<&'static str>> =
        LazyLock::new(|| WORDS.split_ascii_whitespace().collect());
    &WORDS_LIST
}

/// One-token-ish strings tried, in turn, to top a prompt up to the exact length when the last
/// whole word would overshoot it.
const FILLERS: &[&str] = &[
    "a", ".", ",", "I", "s", "x", "!", "?", ";", "-", "e", "o", "t", "1", "the", "of",
];

/// Word `i` of prompt `index`'s endless word sequence: prompts of different lengths under the
/// same seed share their beginnings, which keeps calibration monotone.
pub(crate) struct Words {
    rng: ChaCha8Rng,
    words: Vec<&'static str>,
}

impl Words {
    pub(crate) fn new(seed: u64, index: u64) -> Self {
        Self {
            rng: rng(seed, Purpose::Prompt, index),
            words: Vec::new(),
        }
    }

    /// The first `n` words joined by spaces.
    pub(crate) fn text(&mut self, n: usize) -> String {
        while self.words.len() < n {
            let vocabulary = vocabulary();
            self.words
                .push(vocabulary[self.rng.random_range(0..vocabulary.len())]);
        }
        self.words[..n].join(" ")
    }
}

/// The filler candidates for prompt `index`, in a seeded order (so top-ups vary by prompt but
/// not by run).
pub(crate) fn fillers(seed: u64, index: u64) -> Vec<&'static str> {
    let mut order: Vec<&'static str> = FILLERS.to_vec();
    let mut rng = rng(seed, Purpose::Filler, index);
    for i in (1..order.len()).rev() {
        order.swap(i, rng.random_range(0..=i));
    }
    order
}

/// `prompt` + `piece`, separated by a space unless `prompt` is empty.
pub(crate) fn append(prompt: &str, piece: &str) -> String {
    if prompt.is_empty() {
        piece.to_string()
    } else {
        format!("{prompt} {piece}")
    }
}

/// Which model each request names.
#[derive(Debug, Clone, PartialEq)]
pub enum AdapterMix {
    /// Every request names the one model (`--model`, else the server's first).
    Single,
    /// Each request picks one of these uniformly at random (seeded).
    Uniform(Vec<String>),
    /// Request `i` names adapter `i mod n`.
    RoundRobin(Vec<String>),
    /// Each request picks an adapter with probability proportional to its weight (seeded).
    Weighted(Vec<(String, f64)>),
}

impl AdapterMix {
    /// The adapters named, in order (empty for [`AdapterMix::Single`]).
    pub fn adapters(&self) -> Vec<String> {
        self.names().into_iter().map(str::to_string).collect()
    }

    fn names(&self) -> Vec<&str> {
        match self {
            AdapterMix::Single => Vec::new(),
            AdapterMix::Uniform(names) | AdapterMix::RoundRobin(names) => {
                names.iter().map(String::as_str).collect()
            }
            AdapterMix::Weighted(weights) => weights.iter().map(|(n, _)| n.as_str()).collect(),
        }
    }

    /// How requests are spread, for the report.
    pub fn label(&self) -> &'static str {
        match self {
            AdapterMix::Single => "single",
            AdapterMix::Uniform(_) => "uniform",
            AdapterMix::RoundRobin(_) => "round-robin",
            AdapterMix::Weighted(_) => "weighted",
        }
    }

    /// The model request `index` names; `model` for [`AdapterMix::Single`].
    pub(crate) fn pick<'a>(&'a self, model: &'a str, seed: u64, index: u64) -> &'a str {
        match self {
            AdapterMix::Single => model,
            AdapterMix::RoundRobin(names) => names
                .get((index % names.len().max(1) as u64) as usize)
                .map_or(model, String::as_str),
            AdapterMix::Uniform(names) => {
                let mut rng = rng(seed, Purpose::Mix, index);
                names
                    .get(rng.random_range(0..names.len().max(1)))
                    .map_or(model, String::as_str)
            }
            AdapterMix::Weighted(weights) => {
                let total: f64 = weights.iter().map(|(_, w)| w).sum();
                let mut draw = rng(seed, Purpose::Mix, index).random::<f64>() * total;
                for (name, weight) in weights {
                    if draw < *weight {
                        return name;
                    }
                    draw -= weight;
                }
                // Rounding can leave `draw` a hair above the last weight.
                weights.last().map_or(model, |(name, _)| name.as_str())
            }
        }
    }

    /// The model warmup request `index` names: round-robin over the mix, so every adapter is
    /// loaded (and its first-use cost paid) before the measured requests.
    pub(crate) fn warmup_pick<'a>(&'a self, model: &'a str, index: u64) -> &'a str {
        let names = self.names();
        match names.len() {
            0 => model,
            n => names[(index % n as u64) as usize],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_cycles_in_order() {
        let mix = AdapterMix::RoundRobin(vec!["a".into(), "b".into(), "c".into()]);
        let picks: Vec<&str> = (0..7).map(|i| mix.pick("base", 0, i)).collect();
        assert_eq!(picks, ["a", "b", "c", "a", "b", "c", "a"]);
        assert_eq!(AdapterMix::Single.pick("base", 0, 3), "base");
    }

    #[test]
    fn weighted_mix_follows_its_weights() {
        let mix = AdapterMix::Weighted(vec![("a".into(), 3.0), ("b".into(), 1.0)]);
        let n = 20_000;
        let a = (0..n).filter(|&i| mix.pick("base", 7, i) == "a").count();
        let share = a as f64 / n as f64;
        // Binomial sd at n = 20000, p = 0.75 is 0.003: 0.015 is five of them.
        assert!((share - 0.75).abs() < 0.015, "share of a = {share}");
        // Reproducible by seed and index, and different under another seed.
        let again: Vec<&str> = (0..50).map(|i| mix.pick("base", 7, i)).collect();
        let first: Vec<&str> = (0..50).map(|i| mix.pick("base", 7, i)).collect();
        let other: Vec<&str> = (0..50).map(|i| mix.pick("base", 8, i)).collect();
        assert_eq!(again, first);
        assert_ne!(other, first);
    }

    #[test]
    fn uniform_mix_uses_every_adapter_about_equally() {
        let names: Vec<String> = ["a", "b", "c", "d"].map(String::from).to_vec();
        let mix = AdapterMix::Uniform(names.clone());
        let n = 20_000;
        for name in &names {
            let count = (0..n).filter(|&i| mix.pick("base", 1, i) == name).count();
            let share = count as f64 / n as f64;
            assert!((share - 0.25).abs() < 0.015, "{name}: {share}");
        }
    }

    #[test]
    fn warmup_visits_every_adapter() {
        let mix = AdapterMix::Weighted(vec![("a".into(), 100.0), ("b".into(), 1.0)]);
        let picks: Vec<&str> = (0..4).map(|i| mix.warmup_pick("base", i)).collect();
        assert_eq!(picks, ["a", "b", "a", "b"]);
    }

    #[test]
    fn prompts_are_seeded_and_extend_each_other() {
        let short = Words::new(42, 3).text(5);
        let mut words = Words::new(42, 3);
        let long = words.text(9);
        assert!(long.starts_with(&short), "{long:?} / {short:?}");
        assert_eq!(long.split(' ').count(), 9);
        assert_eq!(words.text(5), short);
        assert_ne!(Words::new(42, 4).text(9), long);
        assert_ne!(Words::new(43, 3).text(9), long);
        assert_eq!(fillers(1, 2), fillers(1, 2));
        assert_eq!(fillers(1, 2).len(), FILLERS.len());
    }
}

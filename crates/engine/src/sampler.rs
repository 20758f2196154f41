//! Per-sequence token sampling: logit processors (bias, repetition / presence / frequency
//! penalties), then greedy or temperature + top-k + min-p + top-p sampling, with log-probabilities
//! taken from the raw logits as OpenAI and vLLM report them.
//!
//! Every sequence owns its RNG, seeded from the request's seed and the choice index, and draws
//! exactly one number per sampled token. So a seeded request gives the same tokens whatever else
//! is batched beside it.
//!
//! The vocabulary of real checkpoints is ~150k tokens, so nothing here sorts the whole of it:
//! top-k uses a linear selection, top-p sorts only the candidates above a probability threshold
//! that provably contains the nucleus, and top logprobs keep a small sorted list.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};

use serde::Serialize;

use crate::error::{EngineError, Result};
use crate::params::SamplingParams;

/// One token and its log-probability.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenLogprob {
    /// Token id.
    pub token: u32,
    /// Natural-log probability under the model's raw logits.
    pub logprob: f32,
}

/// What one sampling step chose.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sampled {
    pub token: u32,
    /// Log-probability of `token`, when the request asked for logprobs.
    pub logprob: Option<f32>,
    /// The most likely tokens, best first, when the request asked for `top_logprobs`.
    pub top_logprobs: Vec<TokenLogprob>,
}

/// A fresh seed for requests that did not give one.
pub(crate) fn random_seed() -> u64 {
    // RandomState is seeded from the OS once per process and varied per instance.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    );
    hasher.finish()
}

/// The seed of choice `choice` of a request seeded with `seed`: choices differ, and choice 0
/// keeps the request's seed so `n = 1` and the first of `n = 2` agree.
pub(crate) fn choice_seed(seed: u64, choice: usize) -> u64 {
    if choice == 0 {
        seed
    } else {
        splitmix64(
            &mut seed
                .wrapping_add(choice as u64)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15),
        )
    }
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// xoshiro256++: small, fast, and stable across builds and platforms (unlike a library RNG whose
/// stream may change between versions, which would break seeded reproducibility).
#[derive(Debug, Clone)]
struct Rng([u64; 4]);

impl Rng {
    fn new(seed: u64) -> Self {
        let mut sm = seed;
        Self([
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
        ])
    }

    fn next_u64(&mut self) -> u64 {
        let s = &mut self.0;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in `[0, 1)` with 53 bits of precision.
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// The sampling state of one sequence.
#[derive(Debug, Clone)]
pub(crate) struct Sampler {
    temperature: f32,
    top_k: usize,
    top_p: f32,
    min_p: f32,
    repetition_penalty: f32,
    presence_penalty: f32,
    frequency_penalty: f32,
    logit_bias: Vec<(u32, f32)>,
    logprobs: bool,
    top_logprobs: usize,
    greedy: bool,
    /// Prompt tokens, kept only when the repetition penalty needs them.
    prompt_tokens: HashSet<u32>,
    /// How often each token has been generated so far.
    generated: HashMap<u32, u32>,
    rng: Rng,
}

impl Sampler {
    /// A sampler for one choice of a request with `params` and `prompt`.
    pub fn new(params: &SamplingParams, prompt: &[u32], seed: u64) -> Self {
        let prompt_tokens = if params.repetition_penalty != 1.0 {
            prompt.iter().copied().collect()
        } else {
            HashSet::new()
        };
        Self {
            temperature: params.temperature,
            top_k: params.top_k,
            top_p: params.top_p,
            min_p: params.min_p,
            repetition_penalty: params.repetition_penalty,
            presence_penalty: params.presence_penalty,
            frequency_penalty: params.frequency_penalty,
            logit_bias: params.logit_bias.iter().map(|(&k, &v)| (k, v)).collect(),
            logprobs: params.logprobs || params.top_logprobs > 0,
            top_logprobs: params.top_logprobs,
            greedy: params.is_greedy(),
            prompt_tokens,
            generated: HashMap::new(),
            rng: Rng::new(seed),
        }
    }

    /// Chooses the next token from the model's logits for this sequence (`[vocab]`), and
    /// remembers it for the penalties of later steps. Takes the logits by value: processors
    /// work on them in place, so the common case (no logprobs) copies nothing.
    pub fn sample(&mut self, mut logits: Vec<f32>) -> Result<Sampled> {
        check_logits(&logits)?;
        // Logprobs are reported on the raw logits, so a copy is kept before any processor runs;
        // the sampled token's own logprob needs them until it is chosen.
        let raw = self.logprobs.then(|| logits.clone());

        self.apply_processors(&mut logits);
        let token = if self.greedy {
            argmax(&logits)
        } else {
            self.draw(&mut logits)?
        };
        *self.generated.entry(token).or_insert(0) += 1;
        let (logprob, top_logprobs) = match raw {
            Some(raw) => {
                let raw = RawLogprobs::new(&raw);
                (Some(raw.of(token)), raw.top(self.top_logprobs))
            }
            None => (None, Vec::new()),
        };
        Ok(Sampled {
            token,
            logprob,
            top_logprobs,
        })
    }

    fn apply_processors(&self, logits: &mut [f32]) {
        for &(id, bias) in &self.logit_bias {
            if let Some(l) = logits.get_mut(id as usize) {
                *l += bias;
            }
        }
        if self.repetition_penalty != 1.0 {
            let penalise = |l: &mut f32| {
                *l = if *l > 0.0 {
                    *l / self.repetition_penalty
                } else {
                    *l * self.repetition_penalty
                };
            };
            let seen = self.prompt_tokens.iter().chain(
                self.generated
                    .keys()
                    .filter(|id| !self.prompt_tokens.contains(id)),
            );
            for &id in seen {
                if let Some(l) = logits.get_mut(id as usize) {
                    penalise(l);
                }
            }
        }
        if self.presence_penalty != 0.0 || self.frequency_penalty != 0.0 {
            for (&id, &count) in &self.generated {
                if let Some(l) = logits.get_mut(id as usize) {
                    *l -= self.presence_penalty + self.frequency_penalty * count as f32;
                }
            }
        }
    }

    /// Temperature, top-k, min-p and top-p over `logits`, then one draw.
    fn draw(&mut self, logits: &mut [f32]) -> Result<u32> {
        let inv_t = 1.0 / self.temperature;
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        if !max.is_finite() {
            return Err(EngineError::Generation(
                "every token has zero probability".into(),
            ));
        }
        // Candidates as (token, unnormalised probability).
        let mut candidates: Vec<(u32, f32)> = if self.top_k > 0 && self.top_k < logits.len() {
            let mut ids: Vec<u32> = (0..logits.len() as u32).collect();
            ids.select_nth_unstable_by(self.top_k - 1, |&a, &b| {
                logits[b as usize].total_cmp(&logits[a as usize])
            });
            ids.truncate(self.top_k);
            ids.into_iter()
                .map(|id| (id, ((logits[id as usize] - max) * inv_t).exp()))
                .collect()
        } else {
            logits
                .iter()
                .enumerate()
                .map(|(id, &l)| (id as u32, ((l - max) * inv_t).exp()))
                .collect()
        };
        if self.min_p > 0.0 {
            // The top token has probability ∝ exp(0) = 1.
            candidates.retain(|&(_, p)| p >= self.min_p);
        }
        if self.top_p < 1.0 {
            candidates = nucleus(candidates, self.top_p);
        }
        let total: f64 = candidates.iter().map(|&(_, p)| f64::from(p)).sum();
        let mut target = self.rng.next_f64() * total;
        for &(id, p) in &candidates {
            target -= f64::from(p);
            if target < 0.0 {
                return Ok(id);
            }
        }
        // Rounding left a sliver at the end: the last candidate with any mass takes it.
        candidates
            .iter()
            .rev()
            .find(|&&(_, p)| p > 0.0)
            .map(|&(id, _)| id)
            .ok_or_else(|| EngineError::Generation("every token has zero probability".into()))
    }
}

/// The smallest set of most likely candidates whose probability reaches `top_p` of the total,
/// sorted best first. Sorts only candidates above a threshold, lowered until they hold enough
/// mass: every candidate outside that set is less likely than all inside it, so the nucleus is a
/// prefix of the set's sorted order.
fn nucleus(mut candidates: Vec<(u32, f32)>, top_p: f32) -> Vec<(u32, f32)> {
    let total: f64 = candidates.iter().map(|&(_, p)| f64::from(p)).sum();
    let goal = f64::from(top_p) * total;
    let best = candidates.iter().map(|&(_, p)| p).fold(0.0, f32::max);
    let mut threshold = best * 1e-2;
    let mut above: Vec<(u32, f32)> = loop {
        let above: Vec<(u32, f32)> = candidates
            .iter()
            .copied()
            .filter(|&(_, p)| p >= threshold)
            .collect();
        let mass: f64 = above.iter().map(|&(_, p)| f64::from(p)).sum();
        if mass >= goal || threshold == 0.0 {
            break above;
        }
        threshold = if threshold < f32::MIN_POSITIVE {
            0.0
        } else {
            threshold * 1e-2
        };
    };
    above.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut mass = 0.0;
    let mut keep = above.len();
    for (i, &(_, p)) in above.iter().enumerate() {
        mass += f64::from(p);
        if mass >= goal {
            keep = i + 1;
            break;
        }
    }
    above.truncate(keep.max(1));
    candidates.clear();
    above
}

/// Refuses logits no distribution can be read from: none at all, or NaN.
pub(crate) fn check_logits(logits: &[f32]) -> Result<()> {
    if logits.is_empty() {
        return Err(EngineError::Generation(
            "the model returned empty logits".into(),
        ));
    }
    if logits.iter().any(|l| l.is_nan()) {
        return Err(EngineError::Generation(
            "the model produced NaN logits".into(),
        ));
    }
    Ok(())
}

/// Log-probabilities under one row of raw logits (no bias, penalty or temperature): what
/// OpenAI and vLLM report for generated tokens, and what prompt scoring reports for the prompt.
pub(crate) struct RawLogprobs<'a> {
    logits: &'a [f32],
    log_z: f64,
}

impl<'a> RawLogprobs<'a> {
    /// The distribution of `logits` (checked with [`check_logits`] by the caller).
    pub fn new(logits: &'a [f32]) -> Self {
        Self {
            logits,
            log_z: log_sum_exp(logits),
        }
    }

    /// The log-probability of `token` (−∞ for an id outside the row).
    pub fn of(&self, token: u32) -> f32 {
        self.logits
            .get(token as usize)
            .map_or(f32::NEG_INFINITY, |&l| (f64::from(l) - self.log_z) as f32)
    }

    /// The `n` most likely tokens with their log-probabilities, best first.
    pub fn top(&self, n: usize) -> Vec<TokenLogprob> {
        top_n(self.logits, n)
            .into_iter()
            .map(|token| TokenLogprob {
                token,
                logprob: self.of(token),
            })
            .collect()
    }
}

/// Index of the largest value; the first one on ties (as torch's argmax).
fn argmax(values: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best as u32
}

/// `ln Σ exp(x)`, in f64 for accuracy over a large vocabulary.
fn log_sum_exp(values: &[f32]) -> f64 {
    let max = f64::from(values.iter().copied().fold(f32::NEG_INFINITY, f32::max));
    if !max.is_finite() {
        return max;
    }
    let sum: f64 = values.iter().map(|&v| (f64::from(v) - max).exp()).sum();
    max + sum.ln()
}

/// The `n` largest values' indices, best first (lower index first on ties), in one pass.
fn top_n(values: &[f32], n: usize) -> Vec<u32> {
    if n == 0 {
        return Vec::new();
    }
    let mut top: Vec<(f32, u32)> = Vec::with_capacity(n + 1);
    for (i, &v) in values.iter().enumerate() {
        if top.len() == n && v <= top[n - 1].0 {
            continue;
        }
        let at = top.partition_point(|&(t, _)| t >= v);
        top.insert(at, (v, i as u32));
        top.truncate(n);
    }
    top.into_iter().map(|(_, i)| i).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn params(f: impl FnOnce(&mut SamplingParams)) -> SamplingParams {
        let mut p = SamplingParams::default();
        f(&mut p);
        p
    }

    fn histogram(sampler: &mut Sampler, logits: &[f32], draws: usize) -> Vec<usize> {
        let mut counts = vec![0; logits.len()];
        for _ in 0..draws {
            sampler.generated.clear();
            counts[sampler.sample(logits.to_vec()).unwrap().token as usize] += 1;
        }
        counts
    }

    #[test]
    fn greedy_takes_the_first_maximum() {
        let mut s = Sampler::new(&SamplingParams::greedy(1), &[], 0);
        assert_eq!(s.sample(vec![0.0, 3.0, 3.0, 1.0]).unwrap().token, 1);
    }

    #[test]
    fn temperature_sampling_follows_the_softmax() {
        let logits = [0.0f32, 1.0, 2.0];
        let mut s = Sampler::new(&params(|_| {}), &[], 42);
        let counts = histogram(&mut s, &logits, 20_000);
        let z: f64 = logits.iter().map(|&l| f64::from(l).exp()).sum();
        for (i, &c) in counts.iter().enumerate() {
            let expected = f64::from(logits[i]).exp() / z;
            let got = c as f64 / 20_000.0;
            assert!(
                (got - expected).abs() < 0.015,
                "token {i}: {got} vs {expected}"
            );
        }
    }

    #[test]
    fn top_k_top_p_and_min_p_cut_the_tail() {
        let logits = [5.0f32, 4.0, 3.0, 0.0, -1.0];
        let seen = |p: SamplingParams| {
            let mut s = Sampler::new(&p, &[], 1);
            let counts = histogram(&mut s, &logits, 2000);
            counts.iter().map(|&c| c > 0).collect::<Vec<_>>()
        };
        assert_eq!(
            seen(params(|p| p.top_k = 2)),
            [true, true, false, false, false]
        );
        // softmax ≈ [.661, .243, .089, .004, .002]: 0.9 needs two tokens, 0.95 three.
        assert_eq!(
            seen(params(|p| p.top_p = 0.9)),
            [true, true, false, false, false]
        );
        assert_eq!(
            seen(params(|p| p.top_p = 0.95)),
            [true, true, true, false, false]
        );
        assert_eq!(
            seen(params(|p| p.top_p = 0.5)),
            [true, false, false, false, false]
        );
        // min_p 0.1 keeps tokens with p >= 0.1 · p_max: exp(-2) ≈ 0.135 passes, exp(-5) not.
        assert_eq!(
            seen(params(|p| p.min_p = 0.1)),
            [true, true, true, false, false]
        );
    }

    #[test]
    fn nucleus_handles_flat_distributions() {
        let flat: Vec<(u32, f32)> = (0..10_000).map(|i| (i, 1.0)).collect();
        assert_eq!(nucleus(flat, 0.5).len(), 5000);
    }

    #[test]
    fn penalties_and_bias_change_the_choice() {
        let logits = [2.0f32, 1.9, 0.0];
        let mut biased = Sampler::new(
            &params(|p| {
                p.temperature = 0.0;
                p.logit_bias = [(2, 5.0)].into();
            }),
            &[],
            0,
        );
        assert_eq!(biased.sample(logits.to_vec()).unwrap().token, 2);

        let mut presence = Sampler::new(
            &params(|p| {
                p.temperature = 0.0;
                p.presence_penalty = 0.5;
            }),
            &[],
            0,
        );
        assert_eq!(presence.sample(logits.to_vec()).unwrap().token, 0);
        assert_eq!(
            presence.sample(logits.to_vec()).unwrap().token,
            1,
            "token 0 was penalised"
        );

        let mut repetition = Sampler::new(
            &params(|p| {
                p.temperature = 0.0;
                p.repetition_penalty = 1.2;
            }),
            &[0],
            0,
        );
        // 2.0 / 1.2 < 1.9: the prompt's token loses.
        assert_eq!(repetition.sample(logits.to_vec()).unwrap().token, 1);

        let mut frequency = Sampler::new(
            &params(|p| {
                p.temperature = 0.0;
                p.frequency_penalty = 0.06;
            }),
            &[],
            0,
        );
        let picks: Vec<u32> = (0..4)
            .map(|_| frequency.sample(logits.to_vec()).unwrap().token)
            .collect();
        assert_eq!(picks, [0, 0, 1, 0]);
    }

    #[test]
    fn logprobs_come_from_the_raw_logits() {
        let logits = [1.0f32, 3.0, 2.0, 0.5];
        let mut s = Sampler::new(
            &params(|p| {
                p.temperature = 0.0;
                p.logprobs = true;
                p.top_logprobs = 3;
                p.logit_bias = [(0, 50.0)].into();
            }),
            &[],
            0,
        );
        let out = s.sample(logits.to_vec()).unwrap();
        assert_eq!(out.token, 0);
        let log_z = logits.iter().map(|&l| f64::from(l).exp()).sum::<f64>().ln();
        assert!((f64::from(out.logprob.unwrap()) - (1.0 - log_z)).abs() < 1e-6);
        let top: Vec<u32> = out.top_logprobs.iter().map(|t| t.token).collect();
        assert_eq!(top, [1, 2, 0]);
    }

    #[test]
    fn seeds_reproduce_and_choices_differ() {
        let logits: Vec<f32> = (0..100).map(|i| (i as f32 * 0.37).sin()).collect();
        let run = |seed| {
            let mut s = Sampler::new(&SamplingParams::default(), &[], seed);
            (0..20)
                .map(|_| s.sample(logits.to_vec()).unwrap().token)
                .collect::<Vec<_>>()
        };
        assert_eq!(run(5), run(5));
        assert_ne!(run(choice_seed(5, 0)), run(choice_seed(5, 1)));
        assert_eq!(choice_seed(5, 0), 5);
    }

    #[test]
    fn nan_logits_are_an_error_not_a_panic() {
        let mut s = Sampler::new(&SamplingParams::default(), &[], 0);
        assert!(matches!(
            s.sample(vec![0.0, f32::NAN]),
            Err(EngineError::Generation(_))
        ));
        assert!(s.sample(Vec::new()).is_err());
    }

    #[test]
    fn raw_logprobs_normalise_the_row() {
        let logits = [0.5f32, 2.0, -1.0];
        let raw = RawLogprobs::new(&logits);
        let total: f64 = (0..3).map(|t| f64::from(raw.of(t)).exp()).sum();
        assert!((total - 1.0).abs() < 1e-6);
        let top = raw.top(2);
        assert_eq!(top.iter().map(|t| t.token).collect::<Vec<_>>(), [1, 0]);
        assert_eq!(top[0].logprob, raw.of(1));
        assert_eq!(raw.of(7), f32::NEG_INFINITY);
        assert!(check_logits(&[]).is_err());
        assert!(check_logits(&[1.0, f32::NAN]).is_err());
        assert!(check_logits(&logits).is_ok());
    }

    #[test]
    fn top_n_keeps_the_best_in_order() {
        assert_eq!(top_n(&[0.1, 0.9, 0.5, 0.9, 0.2], 3), [1, 3, 2]);
        assert_eq!(top_n(&[1.0, 2.0], 5), [1, 0]);
    }
}

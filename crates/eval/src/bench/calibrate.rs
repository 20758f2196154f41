//! Cutting prompts to an exact token count with the server's own tokenizer (`POST /tokenize`,
//! vLLM's route, which switchboard serves too), so `--input-len 512` means 512 prompt tokens
//! whatever the model. Without that route prompts are one word per intended token and the
//! report says the lengths are approximate.

use std::collections::HashMap;
use std::future::Future;

use crate::error::{EvalError, Result};

use super::workload::{append, fillers, Words};

/// A prompt and its token count (exact when calibrated, else the estimate).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Prompt {
    pub text: String,
    pub tokens: usize,
}

/// The uncalibrated prompt `index`: one word per wanted token.
pub(crate) fn approximate(seed: u64, index: u64, target: usize) -> Prompt {
    Prompt {
        text: Words::new(seed, index).text(target),
        tokens: target,
    }
}

/// How far the calibration for one prompt can wander before giving up: more words than this
/// many rounds of growth means the tokenizer is not counting what it is given.
const MAX_GROWTH_ROUNDS: usize = 32;

/// Prompt `index` cut to exactly `target` tokens as counted by `count` (the server's
/// `/tokenize`), or as close below as the filler strings allow (`Prompt::tokens` says which).
///
/// Words are added until the text reaches `target`, then the longest whole-word prefix that
/// does not exceed it is found (token counts only grow as words are appended: a guess, a
/// gallop to bracket it, a bisection), and one-token fillers top it up, since a word can be
/// several tokens in a small vocabulary.
pub(crate) async fn calibrate<F, Fut>(
    mut count: F,
    seed: u64,
    index: u64,
    target: usize,
) -> Result<Prompt>
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = Result<usize>>,
{
    let mut words = Words::new(seed, index);
    let mut counts: HashMap<usize, usize> = HashMap::new();
    // The empty prompt counts as 0 so that it is never sent: some servers refuse it.
    counts.insert(0, 0);
    let mut hi = target.max(1);
    let mut rounds = 0;
    loop {
        let tokens = count(words.text(hi)).await?;
        counts.insert(hi, tokens);
        if tokens >= target {
            break;
        }
        rounds += 1;
        if rounds > MAX_GROWTH_ROUNDS {
            return Err(EvalError::BadSetting {
                setting: "input-len".into(),
                reason: format!(
                    "/tokenize counts {tokens} tokens for {hi} words, short of {target}"
                ),
            });
        }
        // Every word is at least one token, so this many more words cannot overshoot by
        // much, and at least one more is always added.
        hi += (target - tokens).max(1);
    }
    // Bracket the answer near the proportional guess (one word is about one token in real
    // vocabularies, so this usually lands within a word or two), galloping outwards...
    let mut lo = 0;
    let at_hi = counts.get(&hi).copied().unwrap_or(target);
    if at_hi == target {
        lo = hi;
    } else {
        let guess = (hi * target / at_hi).min(hi - 1);
        if guess > 0 {
            let mut step = 1;
            if cached(&mut count, &mut counts, &mut words, guess).await? <= target {
                lo = guess;
                while lo + step < hi {
                    if cached(&mut count, &mut counts, &mut words, lo + step).await? <= target {
                        lo += step;
                        step *= 2;
                    } else {
                        hi = lo + step;
                        break;
                    }
                }
            } else {
                hi = guess;
                while hi > step {
                    if cached(&mut count, &mut counts, &mut words, hi - step).await? <= target {
                        lo = hi - step;
                        break;
                    }
                    hi -= step;
                    step *= 2;
                }
            }
        }
    }
    // ...then bisect: the longest prefix of at most `target` tokens.
    while hi - lo > 1 && counts.get(&lo) != Some(&target) {
        let mid = lo + (hi - lo) / 2;
        if cached(&mut count, &mut counts, &mut words, mid).await? <= target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let (mut text, mut tokens) = (words.text(lo), counts.get(&lo).copied().unwrap_or(0));
    // Top up with fillers until exact, or until a whole pass over them gains nothing.
    let candidates = fillers(seed, index);
    let mut progressed = true;
    while tokens < target && progressed {
        progressed = false;
        for filler in &candidates {
            let candidate = append(&text, filler);
            let n = count(candidate.clone()).await?;
            if n > tokens && n <= target {
                (text, tokens) = (candidate, n);
                progressed = true;
                break;
            }
        }
    }
    Ok(Prompt { text, tokens })
}

/// The token count of the first `k` words, asked once.
async fn cached<F, Fut>(
    count: &mut F,
    counts: &mut HashMap<usize, usize>,
    words: &mut Words,
    k: usize,
) -> Result<usize>
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = Result<usize>>,
{
    if let Some(&tokens) = counts.get(&k) {
        return Ok(tokens);
    }
    let tokens = count(words.text(k)).await?;
    counts.insert(k, tokens);
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A toy tokenizer: one BOS, then every word is ceil(len / 3) tokens and every other
    /// character (spaces, punctuation) is free, like a small BPE vocabulary that splits words.
    fn toy_count(text: &str) -> usize {
        1 + text
            .split(' ')
            .filter(|w| !w.is_empty())
            .map(|w| w.len().div_ceil(3))
            .sum::<usize>()
    }

    async fn toy(text: String) -> Result<usize> {
        Ok(toy_count(&text))
    }

    fn block_on<F: Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(future)
    }

    #[test]
    fn prompts_are_cut_to_the_exact_count() {
        for target in [2, 3, 16, 17, 100, 513] {
            for index in 0..5 {
                let prompt = block_on(calibrate(toy, 9, index, target)).expect("calibrates");
                assert_eq!(prompt.tokens, target, "target {target} index {index}");
                assert_eq!(toy_count(&prompt.text), target, "{:?}", prompt.text);
            }
        }
    }

    #[test]
    fn one_token_words_need_few_tokenize_calls() {
        let calls = std::cell::Cell::new(0);
        let count = |text: String| {
            calls.set(calls.get() + 1);
            async move { Ok(1 + text.split(' ').filter(|w| !w.is_empty()).count()) }
        };
        let prompt = block_on(calibrate(count, 1, 0, 512)).expect("calibrates");
        assert_eq!(prompt.tokens, 512);
        assert!(calls.get() <= 3, "{} calls", calls.get());
    }

    #[test]
    fn calibration_is_reproducible() {
        let a = block_on(calibrate(toy, 3, 1, 64)).expect("a");
        let b = block_on(calibrate(toy, 3, 1, 64)).expect("b");
        assert_eq!(a, b);
        let other = block_on(calibrate(toy, 4, 1, 64)).expect("other");
        assert_ne!(a.text, other.text);
    }

    #[test]
    fn a_tokenizer_that_never_reaches_the_target_is_an_error() {
        let err = block_on(calibrate(|_| async { Ok(3) }, 0, 0, 10)).expect_err("stuck");
        assert!(err.to_string().contains("input-len"), "{err}");
    }

    #[test]
    fn approximate_prompts_have_one_word_per_token() {
        let p = approximate(5, 2, 12);
        assert_eq!(p.tokens, 12);
        assert_eq!(p.text.split(' ').count(), 12);
    }
}

//! Text to sparse hashed features: word unigrams, word bigrams and character n-grams.
//!
//! Every feature is hashed straight into one of `buckets` rows of the weight matrix, so no
//! vocabulary is stored and unseen words still land somewhere meaningful through their
//! character n-grams. Each feature family is scaled to unit length on its own, so a long
//! message does not produce bigger logits than a short one and no family drowns the others.

use crate::domain::Turn;

/// Default size of the hashed feature space. With ~10k training conversations, 2^18 buckets
/// collided enough to cost cross-validated accuracy; 2^20 is where the gain levels off. Rows
/// that quantise to zero are not stored, so the model file stays near 1.3 MB.
pub const DEFAULT_BUCKETS: u32 = 1 << 20;

/// Words kept from the start of a very long message...
const HEAD_WORDS: usize = 384;
/// ...and from its end, where the actual question usually sits after a pasted document.
const TAIL_WORDS: usize = 128;

/// Character n-gram lengths, counted with the word-boundary markers.
const CHAR_NGRAM_MIN: usize = 3;
const CHAR_NGRAM_MAX: usize = 5;
/// Tokens longer than this (hashes, base64, long identifiers) get no character n-grams: they
/// would add many unique, useless features.
const MAX_CHAR_NGRAM_WORD: usize = 32;

/// Relative weight of each feature family after its own normalisation.
const UNIGRAM_WEIGHT: f32 = 1.0;
const BIGRAM_WEIGHT: f32 = 0.7;
const CHAR_WEIGHT: f32 = 1.0;

/// How much the user turns before the last one count, relative to the last. Low, because a
/// new question often changes the subject (cross-validation on the training data preferred
/// low values); not zero, so a terse follow-up still leans on its context.
pub(crate) const EARLIER_USER_WEIGHT: f32 = 0.25;
/// Assistant replies only hint at the topic of a follow-up question.
pub(crate) const ASSISTANT_WEIGHT: f32 = 0.1;
/// Turns further back than this before the last user turn are ignored.
const CONTEXT_TURNS: usize = 6;

// Distinct seeds keep the three families apart in the shared hash space.
const UNIGRAM_SEED: u64 = 0x9e37_79b9_7f4a_7c15;
const BIGRAM_SEED: u64 = 0xc2b2_ae3d_27d4_eb4f;
const CHAR_SEED: u64 = 0x1656_67b1_9e37_79f9;
const WORD_START: u8 = 0x02;
const WORD_END: u8 = 0x03;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv_byte(hash: u64, byte: u8) -> u64 {
    (hash ^ u64::from(byte)).wrapping_mul(FNV_PRIME)
}

fn fnv_bytes(mut hash: u64, bytes: &[u8]) -> u64 {
    for &byte in bytes {
        hash = fnv_byte(hash, byte);
    }
    hash
}

/// FNV alone clusters short keys in its low bits; this finaliser (from MurmurHash3) spreads
/// every input bit over the whole word before the bucket is taken from the high bits.
fn avalanche(mut hash: u64) -> u64 {
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    hash ^ (hash >> 33)
}

/// Maps a hash onto `0..buckets` without a division (multiply-shift on the high 32 bits).
fn bucket_of(hash: u64, buckets: u32) -> u32 {
    let high = avalanche(hash) >> 32;
    ((high * u64::from(buckets)) >> 32) as u32
}

/// Number of character n-grams of a word with `chars` characters (boundary markers included).
fn char_ngram_count(chars: usize) -> usize {
    if chars > MAX_CHAR_NGRAM_WORD {
        return 0;
    }
    let symbols = chars + 2;
    (CHAR_NGRAM_MIN..=CHAR_NGRAM_MAX)
        .map(|n| (symbols + 1).saturating_sub(n))
        .sum()
}

/// Calls `emit(bucket, value)` for every feature of `text`, values scaled by `weight`.
///
/// A feature that occurs twice is emitted twice; callers add the values up.
pub(crate) fn for_each_text_feature(
    text: &str,
    weight: f32,
    buckets: u32,
    emit: &mut impl FnMut(u32, f32),
) {
    if weight <= 0.0 || buckets == 0 {
        return;
    }
    let lower = text.to_lowercase();
    let mut words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .collect();
    if words.is_empty() {
        return;
    }
    if words.len() > HEAD_WORDS + TAIL_WORDS {
        words.drain(HEAD_WORDS..words.len() - TAIL_WORDS);
    }

    let char_ngrams: usize = words
        .iter()
        .map(|word| char_ngram_count(word.chars().count()))
        .sum();
    let unigram_value = weight * UNIGRAM_WEIGHT / (words.len() as f32).sqrt();
    let bigram_value = weight * BIGRAM_WEIGHT / ((words.len().max(2) - 1) as f32).sqrt();
    let char_value = weight * CHAR_WEIGHT / (char_ngrams.max(1) as f32).sqrt();

    let mut previous: Option<u64> = None;
    let mut offsets: Vec<usize> = Vec::with_capacity(MAX_CHAR_NGRAM_WORD + 1);
    for word in &words {
        let word_hash = fnv_bytes(UNIGRAM_SEED ^ FNV_OFFSET, word.as_bytes());
        emit(bucket_of(word_hash, buckets), unigram_value);
        if let Some(previous_hash) = previous {
            let pair = previous_hash.rotate_left(23) ^ word_hash ^ BIGRAM_SEED;
            emit(bucket_of(pair, buckets), bigram_value);
        }
        previous = Some(word_hash);

        offsets.clear();
        offsets.extend(word.char_indices().map(|(at, _)| at));
        let chars = offsets.len();
        if chars > MAX_CHAR_NGRAM_WORD {
            continue;
        }
        offsets.push(word.len());
        emit_char_ngrams(word.as_bytes(), &offsets, buckets, char_value, emit);
    }
}

/// Emits the n-grams of the symbol sequence `[start] c1 .. ck [end]`; `offsets` holds the byte
/// offset of every character of `word` plus its length.
fn emit_char_ngrams(
    word: &[u8],
    offsets: &[usize],
    buckets: u32,
    value: f32,
    emit: &mut impl FnMut(u32, f32),
) {
    let chars = offsets.len() - 1;
    let symbols = chars + 2;
    for n in CHAR_NGRAM_MIN..=CHAR_NGRAM_MAX {
        if n > symbols {
            break;
        }
        for first in 0..=symbols - n {
            let last = first + n; // exclusive, in symbols
            let mut hash = (CHAR_SEED ^ FNV_OFFSET).wrapping_add(n as u64);
            if first == 0 {
                hash = fnv_byte(hash, WORD_START);
            }
            // Symbol s (1..=chars) is character s - 1.
            let from = first.max(1) - 1;
            let to = last.min(chars + 1) - 1;
            if from < to {
                hash = fnv_bytes(hash, &word[offsets[from]..offsets[to]]);
            }
            if last == symbols {
                hash = fnv_byte(hash, WORD_END);
            }
            emit(bucket_of(hash, buckets), value);
        }
    }
}

/// How much each turn of a conversation counts: the last user turn fully, the few turns before
/// it a little, anything after it (an assistant prefill) and system/tool turns not at all.
///
/// A conversation without any user turn is read as plain text, every turn at full weight.
pub(crate) fn turn_weights<'a>(
    conversation: &'a [Turn<'a>],
) -> impl Iterator<Item = (&'a str, f32)> + 'a {
    let last_user = conversation
        .iter()
        .rposition(|turn| turn.role.eq_ignore_ascii_case("user"));
    conversation
        .iter()
        .enumerate()
        .map(move |(index, turn)| {
            let weight = match last_user {
                None => 1.0,
                Some(last) if index == last => 1.0,
                Some(last) if index > last || last - index > CONTEXT_TURNS => 0.0,
                Some(_) if turn.role.eq_ignore_ascii_case("user") => EARLIER_USER_WEIGHT,
                Some(_) if turn.role.eq_ignore_ascii_case("assistant") => ASSISTANT_WEIGHT,
                Some(_) => 0.0,
            };
            (turn.content, weight)
        })
        .filter(|&(_, weight)| weight > 0.0)
}

/// Calls `emit(bucket, value)` for every feature of a conversation, turns weighted by
/// [`turn_weights`].
pub(crate) fn for_each_feature(
    conversation: &[Turn<'_>],
    buckets: u32,
    emit: &mut impl FnMut(u32, f32),
) {
    for (content, weight) in turn_weights(conversation) {
        for_each_text_feature(content, weight, buckets, emit);
    }
}

/// The features of a conversation with duplicates merged, sorted by bucket (training input).
pub(crate) fn sparse_features(conversation: &[Turn<'_>], buckets: u32) -> Vec<(u32, f32)> {
    let mut features = Vec::new();
    for_each_feature(conversation, buckets, &mut |bucket, value| {
        features.push((bucket, value))
    });
    features.sort_unstable_by_key(|&(bucket, _)| bucket);
    let mut merged: Vec<(u32, f32)> = Vec::with_capacity(features.len());
    for (bucket, value) in features {
        match merged.last_mut() {
            Some(last) if last.0 == bucket => last.1 += value,
            _ => merged.push((bucket, value)),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(text: &str) -> Vec<(u32, f32)> {
        sparse_features(&[Turn::user(text)], DEFAULT_BUCKETS)
    }

    #[test]
    fn case_and_punctuation_do_not_change_features() {
        assert_eq!(
            collect("What is a Buffer Overflow?"),
            collect("what is a buffer overflow")
        );
    }

    #[test]
    fn feature_counts_match_the_families() {
        // "ab cd": 2 unigrams, 1 bigram, and per word "<ab>" gives 2 trigrams + 1 four-gram.
        let mut count = 0;
        for_each_text_feature("ab cd", 1.0, DEFAULT_BUCKETS, &mut |_, _| count += 1);
        assert_eq!(count, 2 + 1 + 2 * 3);
        assert_eq!(char_ngram_count(2), 3);
        assert_eq!(char_ngram_count(MAX_CHAR_NGRAM_WORD + 1), 0);
    }

    #[test]
    fn each_family_has_unit_norm_before_weighting() {
        let mut unigram_square_sum = 0.0f32;
        let text = "one two three four";
        let words = 4.0f32;
        for_each_text_feature(text, 1.0, DEFAULT_BUCKETS, &mut |_, value| {
            if (value - UNIGRAM_WEIGHT / words.sqrt()).abs() < 1e-6 {
                unigram_square_sum += value * value;
            }
        });
        assert!((unigram_square_sum - 1.0).abs() < 1e-5);
    }

    #[test]
    fn non_ascii_text_is_handled_on_character_boundaries() {
        let features = collect("Ça déjà vu — naïve façade 細胞 生物学");
        assert!(!features.is_empty());
        assert!(features.iter().all(|&(bucket, _)| bucket < DEFAULT_BUCKETS));
    }

    #[test]
    fn empty_or_symbol_only_text_has_no_features() {
        assert!(collect("").is_empty());
        assert!(collect("?!  ...").is_empty());
    }

    #[test]
    fn very_long_text_is_capped() {
        let long = "word ".repeat(10_000);
        let mut count = 0;
        for_each_text_feature(&long, 1.0, DEFAULT_BUCKETS, &mut |_, _| count += 1);
        let kept = HEAD_WORDS + TAIL_WORDS;
        assert_eq!(count, kept + (kept - 1) + kept * char_ngram_count(4));
    }

    #[test]
    fn last_user_turn_counts_fully_and_context_less() {
        let conversation = [
            Turn::system("be nice"),
            Turn::user("first"),
            Turn::assistant("reply"),
            Turn::user("second"),
            Turn::assistant("prefill"),
        ];
        let weights: Vec<(&str, f32)> = turn_weights(&conversation).collect();
        assert_eq!(
            weights,
            vec![
                ("first", EARLIER_USER_WEIGHT),
                ("reply", ASSISTANT_WEIGHT),
                ("second", 1.0)
            ]
        );
        let no_user = [Turn::system("only a system prompt")];
        assert_eq!(
            turn_weights(&no_user).collect::<Vec<_>>(),
            vec![("only a system prompt", 1.0)]
        );
    }
}

//! Near-duplicate detection: word shingles of normalised text, MinHash signatures with banding
//! to find candidate pairs, exact Jaccard to confirm them, union-find to group.
//!
//! Normalisation lower-cases and keeps only runs of letters and digits, so records that differ
//! in casing, punctuation or spacing are identical here. Two records are near-duplicates when
//! the Jaccard similarity of their `shingle_words`-word shingle sets is at least `threshold`;
//! identical normalised texts always are (even texts shorter than a shingle, or empty ones).
//! Banding only proposes candidates, every pair is confirmed with exact Jaccard, so there are
//! no false positives; the band width is chosen so that a pair at the threshold is proposed with
//! probability above 0.999 (higher similarity: higher still).
//!
//! Hashes are FNV-1a and SplitMix64 written here, not `std`'s hasher, so groups are the same on
//! every platform and Rust version.

use std::collections::BTreeMap;

use super::{RecordError, Result};

/// Settings of near-duplicate grouping.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NearDupConfig {
    /// Jaccard similarity (0 < t ≤ 1) at and above which two records are near-duplicates.
    pub threshold: f64,
    /// Words per shingle.
    pub shingle_words: usize,
    /// MinHash signature length.
    pub num_hashes: usize,
}

impl Default for NearDupConfig {
    fn default() -> Self {
        Self {
            threshold: 0.8,
            shingle_words: 3,
            num_hashes: 128,
        }
    }
}

impl NearDupConfig {
    /// Refuses a threshold outside (0, 1], no shingle width or no hashes.
    pub fn validate(&self) -> Result<()> {
        if !(self.threshold > 0.0 && self.threshold <= 1.0) {
            return Err(RecordError::BadOption {
                option: "--near-dup",
                reason: format!("{} is not in (0, 1]", self.threshold),
            });
        }
        if self.shingle_words == 0 || self.num_hashes == 0 {
            return Err(RecordError::BadOption {
                option: "--shingle-words",
                reason: "shingles and signatures need at least one word and one hash".into(),
            });
        }
        Ok(())
    }

    /// Rows per band: the widest band (fewest spurious candidates) for which a pair exactly at
    /// the threshold is still proposed with probability ≥ 0.999.
    fn rows_per_band(&self) -> usize {
        let mut best = 1;
        for rows in 1..=self.num_hashes {
            let bands = self.num_hashes / rows;
            if bands == 0 {
                break;
            }
            let p_band = self.threshold.powi(rows as i32);
            let p_candidate = 1.0 - (1.0 - p_band).powi(bands as i32);
            if p_candidate >= 0.999 {
                best = rows;
            }
        }
        best
    }
}

/// FNV-1a over bytes, finished with SplitMix64 for better high bits.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    splitmix64(hash)
}

/// The SplitMix64 finaliser: a cheap, well-mixed bijection on u64.
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Lower-cased runs of letters and digits.
pub fn normalised_words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// The sorted, de-duplicated hashes of the `k`-word shingles of `words`; a text shorter than
/// `k` words is one shingle (empty text: none).
pub fn shingles(words: &[String], k: usize) -> Vec<u64> {
    let k = k.max(1);
    let mut out: Vec<u64> = if words.is_empty() {
        Vec::new()
    } else if words.len() <= k {
        vec![stable_hash(words.join(" ").as_bytes())]
    } else {
        words
            .windows(k)
            .map(|w| stable_hash(w.join(" ").as_bytes()))
            .collect()
    };
    out.sort_unstable();
    out.dedup();
    out
}

/// Exact Jaccard similarity of two sorted, de-duplicated sets (1 for two empty sets).
pub fn jaccard(a: &[u64], b: &[u64]) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    let (mut i, mut j, mut both) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                both += 1;
                i += 1;
                j += 1;
            }
        }
    }
    both as f64 / (a.len() + b.len() - both) as f64
}

fn minhash(set: &[u64], seeds: &[u64]) -> Vec<u64> {
    seeds
        .iter()
        .map(|&seed| {
            set.iter()
                .map(|&x| splitmix64(x ^ seed))
                .min()
                .unwrap_or(u64::MAX)
        })
        .collect()
}

/// Disjoint sets over `0..n` with path halving and union by size.
#[derive(Debug, Clone)]
pub struct UnionFind {
    parent: Vec<usize>,
    size: Vec<usize>,
}

impl UnionFind {
    /// `n` singletons.
    pub fn new(n: usize) -> Self {
        Self {
            parent: (0..n).collect(),
            size: vec![1; n],
        }
    }

    /// The representative of `x`'s set.
    pub fn find(&mut self, mut x: usize) -> usize {
        while self.parent[x] != x {
            self.parent[x] = self.parent[self.parent[x]];
            x = self.parent[x];
        }
        x
    }

    /// Joins the sets of `a` and `b`; false when they were already one.
    pub fn union(&mut self, a: usize, b: usize) -> bool {
        let (mut a, mut b) = (self.find(a), self.find(b));
        if a == b {
            return false;
        }
        if self.size[a] < self.size[b] {
            std::mem::swap(&mut a, &mut b);
        }
        self.parent[b] = a;
        self.size[a] += self.size[b];
        true
    }

    /// For each element, the smallest element of its set: a group id that does not depend on
    /// the order of the unions.
    pub fn group_ids(&mut self) -> Vec<usize> {
        let n = self.parent.len();
        let mut smallest: Vec<usize> = vec![usize::MAX; n];
        for x in 0..n {
            let root = self.find(x);
            smallest[root] = smallest[root].min(x);
        }
        (0..n).map(|x| smallest[self.find(x)]).collect()
    }
}

/// Groups `texts` into near-duplicate groups; returns, for each text, the smallest index of its
/// group (a text alone is its own group).
pub fn group_near_duplicates(texts: &[String], config: &NearDupConfig) -> Result<Vec<usize>> {
    config.validate()?;
    let mut sets = Vec::with_capacity(texts.len());
    let mut uf = UnionFind::new(texts.len());
    // Identical normalised texts first: exact duplicates need no signatures.
    let mut first_of: BTreeMap<String, usize> = BTreeMap::new();
    let mut representatives = Vec::new();
    for (i, text) in texts.iter().enumerate() {
        let words = normalised_words(text);
        let key = words.join(" ");
        sets.push(shingles(&words, config.shingle_words));
        match first_of.get(&key) {
            Some(&first) => {
                uf.union(first, i);
            }
            None => {
                first_of.insert(key, i);
                representatives.push(i);
            }
        }
    }
    let seeds: Vec<u64> = (0..config.num_hashes as u64)
        .map(|i| splitmix64(i.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ 0x5eed))
        .collect();
    let rows = config.rows_per_band();
    let bands = config.num_hashes / rows;
    let mut buckets: BTreeMap<(usize, u64), Vec<usize>> = BTreeMap::new();
    for &i in &representatives {
        if sets[i].is_empty() {
            continue;
        }
        let signature = minhash(&sets[i], &seeds);
        for band in 0..bands {
            let mut bytes = Vec::with_capacity(rows * 8);
            for value in &signature[band * rows..(band + 1) * rows] {
                bytes.extend_from_slice(&value.to_le_bytes());
            }
            buckets
                .entry((band, stable_hash(&bytes)))
                .or_default()
                .push(i);
        }
    }
    for members in buckets.values().filter(|m| m.len() > 1) {
        for (x, &a) in members.iter().enumerate() {
            for &b in &members[x + 1..] {
                if uf.find(a) != uf.find(b) && jaccard(&sets[a], &sets[b]) >= config.threshold {
                    uf.union(a, b);
                }
            }
        }
    }
    Ok(uf.group_ids())
}

/// Sizes of the groups of more than one member, from [`group_near_duplicates`]'s ids: how many
/// such groups there are and how many records they hold.
pub fn multi_member_groups(ids: &[usize]) -> (usize, usize) {
    let mut sizes: BTreeMap<usize, usize> = BTreeMap::new();
    for &id in ids {
        *sizes.entry(id).or_default() += 1;
    }
    sizes
        .values()
        .filter(|&&n| n > 1)
        .fold((0, 0), |(groups, records), &n| (groups + 1, records + n))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn long(words: &str) -> String {
        format!("{words} and the rest of this sentence is the same long tail of ordinary words that pads the record to a realistic length for a question")
    }

    #[test]
    fn casing_punctuation_and_one_changed_word_are_near_duplicates() {
        let texts = vec![
            long("What is the capital city of France"),
            long("what is the CAPITAL city of france?!"),
            long("What is the capital town of France"),
            "Completely unrelated text about sourdough bread baking and starter care".to_string(),
            "completely unrelated text about sourdough bread baking, and starter care.".to_string(),
            "A third record".to_string(),
        ];
        let ids = group_near_duplicates(&texts, &NearDupConfig::default()).unwrap();
        assert_eq!(ids, vec![0, 0, 0, 3, 3, 5]);
        assert_eq!(multi_member_groups(&ids), (2, 5));
    }

    #[test]
    fn different_texts_stay_apart_and_thresholds_are_checked() {
        let texts = vec![
            "the cat sat on the mat".to_string(),
            "a dog ran in the park".to_string(),
        ];
        let ids = group_near_duplicates(&texts, &NearDupConfig::default()).unwrap();
        assert_eq!(ids, vec![0, 1]);
        let bad = NearDupConfig {
            threshold: 1.5,
            ..NearDupConfig::default()
        };
        assert!(group_near_duplicates(&texts, &bad).is_err());
    }

    #[test]
    fn jaccard_and_union_find_basics() {
        assert_eq!(jaccard(&[1, 2, 3], &[2, 3, 4]), 0.5);
        assert_eq!(jaccard(&[], &[]), 1.0);
        let mut uf = UnionFind::new(5);
        assert!(uf.union(3, 1));
        assert!(uf.union(4, 3));
        assert!(!uf.union(1, 4));
        assert_eq!(uf.group_ids(), vec![0, 1, 2, 1, 1]);
        assert_eq!(NearDupConfig::default().rows_per_band(), 5);
    }
}

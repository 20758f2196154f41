//! Hugging Face tokenizer files (`tokenizer.json`, `tokenizer_config.json`,
//! `generation_config.json`) from a GGUF file's `tokenizer.ggml.*` metadata.
//!
//! Only byte-level BPE vocabularies (`tokenizer.ggml.model = "gpt2"`) are supported. The
//! pre-tokenizer follows `tokenizer.ggml.pre` as llama.cpp applies it, spelled the way
//! Hugging Face's own `tokenizer.json` files for those models spell it.

use std::collections::HashMap;
use std::path::Path;

use candle_core::quantized::gguf_file::Value as GgufValue;
use serde_json::{json, Map, Value};

use crate::error::{ModelError, Result};

/// The Hugging Face tokenizer files a GGUF file's metadata describes.
#[derive(Debug, Clone)]
pub struct HfTokenizerFiles {
    /// `tokenizer.json`: the `tokenizers` pipeline (BPE model, pre-tokenizer, added tokens...).
    pub tokenizer_json: Value,
    /// `tokenizer_config.json`: chat template, bos/eos/pad/unk token strings, `add_bos_token`,
    /// `add_eos_token` and, when the GGUF gives the context length, `model_max_length`.
    pub tokenizer_config: Value,
    /// `generation_config.json`: `bos_token_id`, `eos_token_id`, `pad_token_id` when known.
    pub generation_config: Value,
}

const MODEL_KEY: &str = "tokenizer.ggml.model";
const PRE_KEY: &str = "tokenizer.ggml.pre";
const TOKENS_KEY: &str = "tokenizer.ggml.tokens";
const TOKEN_TYPE_KEY: &str = "tokenizer.ggml.token_type";
const MERGES_KEY: &str = "tokenizer.ggml.merges";
const BOS_KEY: &str = "tokenizer.ggml.bos_token_id";
const EOS_KEY: &str = "tokenizer.ggml.eos_token_id";
const PAD_KEY: &str = "tokenizer.ggml.padding_token_id";
const UNK_KEY: &str = "tokenizer.ggml.unknown_token_id";
const ADD_BOS_KEY: &str = "tokenizer.ggml.add_bos_token";
const ADD_EOS_KEY: &str = "tokenizer.ggml.add_eos_token";
const CHAT_TEMPLATE_KEY: &str = "tokenizer.chat_template";
const ARCH_KEY: &str = "general.architecture";

/// Qwen2's split regex, as in Hugging Face's Qwen2 `tokenizer.json`.
const QWEN2_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Llama 3's split regex, as in Hugging Face's Llama 3 `tokenizer.json`.
const LLAMA3_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// The `tokenizer.ggml.pre` values accepted, for error messages.
const SUPPORTED_PRE: &str =
    "qwen2, llama3, llama-bpe, llama-v3, smaug-bpe, smollm, starcoder, gpt2, default";

/// GGUF token types (gguf-py `TokenType`).
const TOKEN_TYPE_CONTROL: i64 = 3;
const TOKEN_TYPE_USER_DEFINED: i64 = 4;
/// The largest token type gguf-py defines (`BYTE`).
const TOKEN_TYPE_MAX: i64 = 6;

/// Builds the Hugging Face tokenizer files a GGUF file's metadata describes.
///
/// `path` only names the file in errors. Refuses, naming the metadata key at fault, any
/// tokenizer model but `gpt2` (byte-level BPE), an unknown `tokenizer.ggml.pre`, values of the
/// wrong type, a `token_type` list whose length differs from `tokens`, malformed merges and
/// special-token ids outside the vocabulary.
pub fn hf_tokenizer_files(
    path: &Path,
    metadata: &HashMap<String, GgufValue>,
) -> Result<HfTokenizerFiles> {
    let meta = Meta {
        path,
        map: metadata,
    };
    check_model(&meta)?;
    let pre = Pre::read(&meta)?;
    let vocab = Vocab::read(&meta)?;
    let merges = read_merges(&meta, &vocab)?;
    let specials = Specials::read(&meta, &vocab)?;
    let tokenizer_json = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added_tokens(&vocab),
        "normalizer": pre.normalizer(),
        "pre_tokenizer": pre.pre_tokenizer(),
        "post_processor": post_processor(&vocab, &specials),
        "decoder": byte_level(true, true, true),
        "model": bpe_model(&vocab, merges, &specials, pre),
    });
    Ok(HfTokenizerFiles {
        tokenizer_json,
        tokenizer_config: tokenizer_config(&meta, &vocab, &specials)?,
        generation_config: generation_config(&specials),
    })
}

/// Typed access to the metadata map; every error names the key.
struct Meta<'a> {
    path: &'a Path,
    map: &'a HashMap<String, GgufValue>,
}

impl<'a> Meta<'a> {
    fn error(&self, key: &str, reason: impl Into<String>) -> ModelError {
        ModelError::gguf(self.path, key, reason)
    }

    fn wrong_type(&self, key: &str, expected: &str, value: &GgufValue) -> ModelError {
        self.error(
            key,
            format!("expected {expected}, found {:?}", value.value_type()),
        )
    }

    fn string(&self, key: &str) -> Result<Option<&'a str>> {
        match self.map.get(key) {
            None => Ok(None),
            Some(GgufValue::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.wrong_type(key, "a string", other)),
        }
    }

    fn bool(&self, key: &str) -> Result<Option<bool>> {
        match self.map.get(key) {
            None => Ok(None),
            Some(GgufValue::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(self.wrong_type(key, "a bool", other)),
        }
    }

    fn integer(&self, key: &str) -> Result<Option<i64>> {
        match self.map.get(key) {
            None => Ok(None),
            Some(value) => integer(value)
                .map(Some)
                .ok_or_else(|| self.wrong_type(key, "an integer", value)),
        }
    }

    fn array(&self, key: &str) -> Result<Option<&'a [GgufValue]>> {
        match self.map.get(key) {
            None => Ok(None),
            Some(GgufValue::Array(values)) => Ok(Some(values)),
            Some(other) => Err(self.wrong_type(key, "an array", other)),
        }
    }

    fn strings(&self, key: &str) -> Result<Option<Vec<&'a str>>> {
        let Some(values) = self.array(key)? else {
            return Ok(None);
        };
        let strings = values.iter().enumerate().map(|(i, value)| match value {
            GgufValue::String(s) => Ok(s.as_str()),
            other => Err(self.error(
                key,
                format!(
                    "element {i}: expected a string, found {:?}",
                    other.value_type()
                ),
            )),
        });
        strings.collect::<Result<Vec<_>>>().map(Some)
    }

    fn integers(&self, key: &str) -> Result<Option<Vec<i64>>> {
        let Some(values) = self.array(key)? else {
            return Ok(None);
        };
        let integers = values.iter().enumerate().map(|(i, value)| {
            integer(value).ok_or_else(|| {
                self.error(
                    key,
                    format!(
                        "element {i}: expected an integer, found {:?}",
                        value.value_type()
                    ),
                )
            })
        });
        integers.collect::<Result<Vec<_>>>().map(Some)
    }
}

/// The value of any GGUF integer type (a `u64` past `i64::MAX` is not one).
fn integer(value: &GgufValue) -> Option<i64> {
    match *value {
        GgufValue::U8(v) => Some(v.into()),
        GgufValue::I8(v) => Some(v.into()),
        GgufValue::U16(v) => Some(v.into()),
        GgufValue::I16(v) => Some(v.into()),
        GgufValue::U32(v) => Some(v.into()),
        GgufValue::I32(v) => Some(v.into()),
        GgufValue::U64(v) => i64::try_from(v).ok(),
        GgufValue::I64(v) => Some(v),
        _ => None,
    }
}

/// Refuses every tokenizer model but byte-level BPE.
fn check_model(meta: &Meta) -> Result<()> {
    match meta.string(MODEL_KEY)? {
        Some("gpt2") => Ok(()),
        Some(other) => Err(meta.error(
            MODEL_KEY,
            format!("unsupported tokenizer model \"{other}\" (supported: gpt2, byte-level BPE)"),
        )),
        None => Err(meta.error(MODEL_KEY, "missing: the file has no tokenizer")),
    }
}

/// The pre-tokenizer family named by `tokenizer.ggml.pre`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pre {
    /// NFC, then Qwen2's regex (single digits).
    Qwen2,
    /// Llama 3's regex (digits in groups of up to three); merges ignored for whole-word tokens.
    Llama3,
    /// Every digit alone, then the GPT-2 regex (SmolLM, StarCoder).
    SmolLm,
    /// The GPT-2 regex alone.
    Gpt2,
}

impl Pre {
    fn read(meta: &Meta) -> Result<Self> {
        Ok(match meta.string(PRE_KEY)? {
            Some("qwen2") => Self::Qwen2,
            Some("llama3" | "llama-bpe" | "llama-v3" | "smaug-bpe") => Self::Llama3,
            Some("smollm" | "starcoder") => Self::SmolLm,
            Some("gpt2" | "default") | None => Self::Gpt2,
            Some(other) => {
                return Err(meta.error(
                    PRE_KEY,
                    format!("unknown pre-tokenizer \"{other}\" (supported: {SUPPORTED_PRE})"),
                ))
            }
        })
    }

    fn normalizer(self) -> Value {
        match self {
            Self::Qwen2 => json!({ "type": "NFC" }),
            Self::Llama3 | Self::SmolLm | Self::Gpt2 => Value::Null,
        }
    }

    fn pre_tokenizer(self) -> Value {
        match self {
            Self::Qwen2 => split_then_byte_level(QWEN2_REGEX),
            Self::Llama3 => split_then_byte_level(LLAMA3_REGEX),
            Self::SmolLm => json!({
                "type": "Sequence",
                "pretokenizers": [
                    { "type": "Digits", "individual_digits": true },
                    byte_level(false, true, true),
                ],
            }),
            Self::Gpt2 => byte_level(false, true, true),
        }
    }
}

/// A `ByteLevel` pre-tokenizer, post-processor or decoder.
fn byte_level(add_prefix_space: bool, trim_offsets: bool, use_regex: bool) -> Value {
    json!({
        "type": "ByteLevel",
        "add_prefix_space": add_prefix_space,
        "trim_offsets": trim_offsets,
        "use_regex": use_regex,
    })
}

/// `Sequence[Split(regex, Isolated), ByteLevel(use_regex false)]`.
fn split_then_byte_level(regex: &str) -> Value {
    json!({
        "type": "Sequence",
        "pretokenizers": [
            {
                "type": "Split",
                "pattern": { "Regex": regex },
                "behavior": "Isolated",
                "invert": false,
            },
            byte_level(false, false, false),
        ],
    })
}

/// The token list with its types and the id of each distinct token string.
struct Vocab<'a> {
    tokens: Vec<&'a str>,
    types: Vec<i64>,
    /// Token string to id; a string listed twice keeps its first id.
    ids: HashMap<&'a str, u32>,
}

impl<'a> Vocab<'a> {
    fn read(meta: &Meta<'a>) -> Result<Self> {
        let tokens = meta
            .strings(TOKENS_KEY)?
            .ok_or_else(|| meta.error(TOKENS_KEY, "missing"))?;
        if tokens.is_empty() {
            return Err(meta.error(TOKENS_KEY, "the token list is empty"));
        }
        if u32::try_from(tokens.len()).is_err() {
            return Err(meta.error(TOKENS_KEY, format!("{} tokens is too many", tokens.len())));
        }
        // Absent types mean every token is normal, as llama.cpp reads it.
        let types = meta
            .integers(TOKEN_TYPE_KEY)?
            .unwrap_or_else(|| vec![1; tokens.len()]);
        check_types(meta, &types, tokens.len())?;
        let mut ids = HashMap::with_capacity(tokens.len());
        for (id, token) in (0u32..).zip(&tokens) {
            ids.entry(*token).or_insert(id);
        }
        Ok(Self { tokens, types, ids })
    }

    /// The token string of `id`, if the vocabulary has it.
    fn token(&self, id: u32) -> Option<&'a str> {
        self.tokens.get(id as usize).copied()
    }
}

fn check_types(meta: &Meta, types: &[i64], n_tokens: usize) -> Result<()> {
    if types.len() != n_tokens {
        return Err(meta.error(
            TOKEN_TYPE_KEY,
            format!(
                "{} token types for {n_tokens} tokens in {TOKENS_KEY}",
                types.len()
            ),
        ));
    }
    match types.iter().position(|t| !(0..=TOKEN_TYPE_MAX).contains(t)) {
        Some(i) => Err(meta.error(
            TOKEN_TYPE_KEY,
            format!("token {i} has unknown type {}", types[i]),
        )),
        None => Ok(()),
    }
}

/// The merges as `[left, right]` pairs, each part and their concatenation in the vocabulary.
fn read_merges(meta: &Meta, vocab: &Vocab) -> Result<Vec<Value>> {
    let merges = meta
        .strings(MERGES_KEY)?
        .ok_or_else(|| meta.error(MERGES_KEY, "missing (byte-level BPE needs merges)"))?;
    let mut pairs = Vec::with_capacity(merges.len());
    for (i, merge) in merges.iter().enumerate() {
        let (left, right) = split_merge(merge)
            .ok_or_else(|| meta.error(MERGES_KEY, format!("merge {i} {merge:?} has no space")))?;
        let merged = format!("{left}{right}");
        if let Some(missing) = [left, right, merged.as_str()]
            .into_iter()
            .find(|token| !vocab.ids.contains_key(token))
        {
            return Err(meta.error(
                MERGES_KEY,
                format!("merge {i} {merge:?}: {missing:?} is not in {TOKENS_KEY}"),
            ));
        }
        pairs.push(json!([left, right]));
    }
    Ok(pairs)
}

/// Splits a merge at its first space after the first character, as llama.cpp does.
fn split_merge(merge: &str) -> Option<(&str, &str)> {
    let first_len = merge.chars().next()?.len_utf8();
    let space = merge[first_len..].find(' ')? + first_len;
    Some((&merge[..space], &merge[space + 1..]))
}

/// The special-token ids the metadata gives, each checked against the vocabulary.
struct Specials {
    bos: Option<u32>,
    eos: Option<u32>,
    pad: Option<u32>,
    unk: Option<u32>,
    add_bos: bool,
    add_eos: bool,
}

impl Specials {
    fn read(meta: &Meta, vocab: &Vocab) -> Result<Self> {
        let id = |key: &str| special_id(meta, vocab, key);
        let specials = Self {
            bos: id(BOS_KEY)?,
            eos: id(EOS_KEY)?,
            pad: id(PAD_KEY)?,
            unk: id(UNK_KEY)?,
            add_bos: meta.bool(ADD_BOS_KEY)?.unwrap_or(false),
            add_eos: meta.bool(ADD_EOS_KEY)?.unwrap_or(false),
        };
        if specials.add_bos && specials.bos.is_none() {
            return Err(meta.error(ADD_BOS_KEY, format!("true but {BOS_KEY} is missing")));
        }
        if specials.add_eos && specials.eos.is_none() {
            return Err(meta.error(ADD_EOS_KEY, format!("true but {EOS_KEY} is missing")));
        }
        Ok(specials)
    }
}

fn special_id(meta: &Meta, vocab: &Vocab, key: &str) -> Result<Option<u32>> {
    let Some(id) = meta.integer(key)? else {
        return Ok(None);
    };
    match u32::try_from(id) {
        Ok(id) if (id as usize) < vocab.tokens.len() => Ok(Some(id)),
        _ => Err(meta.error(
            key,
            format!(
                "token id {id} is outside the vocabulary of {} tokens",
                vocab.tokens.len()
            ),
        )),
    }
}

/// Control tokens as special added tokens, user-defined ones as plain added tokens.
fn added_tokens(vocab: &Vocab) -> Vec<Value> {
    let mut added = Vec::new();
    for (id, (token, kind)) in (0u32..).zip(vocab.tokens.iter().zip(&vocab.types)) {
        let special = match *kind {
            TOKEN_TYPE_CONTROL => true,
            TOKEN_TYPE_USER_DEFINED => false,
            _ => continue,
        };
        // A duplicated string is one token, with its first id.
        if vocab.ids.get(token) != Some(&id) {
            continue;
        }
        added.push(json!({
            "id": id,
            "content": token,
            "single_word": false,
            "lstrip": false,
            "rstrip": false,
            "normalized": false,
            "special": special,
        }));
    }
    added
}

fn bpe_model(vocab: &Vocab, merges: Vec<Value>, specials: &Specials, pre: Pre) -> Value {
    let mut ids = Map::with_capacity(vocab.ids.len());
    for (id, token) in (0u32..).zip(&vocab.tokens) {
        if vocab.ids.get(token) == Some(&id) {
            ids.insert((*token).to_string(), id.into());
        }
    }
    json!({
        "type": "BPE",
        "dropout": null,
        "unk_token": specials.unk.and_then(|id| vocab.token(id)),
        "continuing_subword_prefix": null,
        "end_of_word_suffix": null,
        "fuse_unk": false,
        "byte_fallback": false,
        "ignore_merges": pre == Pre::Llama3,
        "vocab": ids,
        "merges": merges,
    })
}

/// `ByteLevel`, or a `TemplateProcessing` adding BOS/EOS when the metadata asks for them
/// (the single and pair templates Hugging Face's Llama tokenizers build).
fn post_processor(vocab: &Vocab, specials: &Specials) -> Value {
    let bos = specials
        .bos
        .filter(|_| specials.add_bos)
        .and_then(|id| Some((id, vocab.token(id)?)));
    let eos = specials
        .eos
        .filter(|_| specials.add_eos)
        .and_then(|id| Some((id, vocab.token(id)?)));
    if bos.is_none() && eos.is_none() {
        return byte_level(false, false, false);
    }
    let special =
        |token: &str, type_id: u32| json!({ "SpecialToken": { "id": token, "type_id": type_id } });
    let sequence =
        |seq: &str, type_id: u32| json!({ "Sequence": { "id": seq, "type_id": type_id } });
    let template = |seq: &str, type_id: u32| {
        let mut pieces = Vec::new();
        pieces.extend(bos.map(|(_, token)| special(token, type_id)));
        pieces.push(sequence(seq, type_id));
        pieces.extend(eos.map(|(_, token)| special(token, type_id)));
        pieces
    };
    let single = template("A", 0);
    let mut pair = single.clone();
    pair.extend(template("B", 1));
    let mut special_tokens = Map::new();
    for (id, token) in bos.into_iter().chain(eos) {
        special_tokens.insert(
            token.to_string(),
            json!({ "id": token, "ids": [id], "tokens": [token] }),
        );
    }
    json!({
        "type": "TemplateProcessing",
        "single": single,
        "pair": pair,
        "special_tokens": special_tokens,
    })
}

fn tokenizer_config(meta: &Meta, vocab: &Vocab, specials: &Specials) -> Result<Value> {
    let mut config = Map::new();
    config.insert("add_bos_token".into(), specials.add_bos.into());
    config.insert("add_eos_token".into(), specials.add_eos.into());
    let named = [
        ("bos_token", specials.bos),
        ("eos_token", specials.eos),
        ("pad_token", specials.pad),
        ("unk_token", specials.unk),
    ];
    for (name, id) in named {
        if let Some(token) = id.and_then(|id| vocab.token(id)) {
            config.insert(name.into(), token.into());
        }
    }
    if let Some(template) = meta.string(CHAT_TEMPLATE_KEY)? {
        config.insert("chat_template".into(), template.into());
    }
    config.insert("clean_up_tokenization_spaces".into(), false.into());
    if let Some(length) = context_length(meta)? {
        config.insert("model_max_length".into(), length.into());
    }
    config.insert("tokenizer_class".into(), "PreTrainedTokenizerFast".into());
    Ok(Value::Object(config))
}

/// `{general.architecture}.context_length`, when both are present.
fn context_length(meta: &Meta) -> Result<Option<u64>> {
    let Some(arch) = meta.string(ARCH_KEY)? else {
        return Ok(None);
    };
    let key = format!("{arch}.context_length");
    match meta.integer(&key)? {
        None => Ok(None),
        Some(length) => u64::try_from(length)
            .map(Some)
            .map_err(|_| meta.error(&key, format!("negative context length {length}"))),
    }
}

fn generation_config(specials: &Specials) -> Value {
    let mut config = Map::new();
    let named = [
        ("bos_token_id", specials.bos),
        ("eos_token_id", specials.eos),
        ("pad_token_id", specials.pad),
    ];
    for (name, id) in named {
        if let Some(id) = id {
            config.insert(name.into(), id.into());
        }
    }
    Value::Object(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn s(text: &str) -> GgufValue {
        GgufValue::String(text.to_string())
    }

    fn strings(items: &[&str]) -> GgufValue {
        GgufValue::Array(items.iter().map(|t| s(t)).collect())
    }

    /// A tiny byte-level vocabulary: "a", "b", "ab", "Ġ", "Ġa", digits, and three specials.
    fn metadata(pre: Option<&str>) -> HashMap<String, GgufValue> {
        let tokens = [
            "a",
            "b",
            "ab",
            "Ġ",
            "Ġa",
            "1",
            "2",
            "3",
            "<|endoftext|>",
            "<|im_start|>",
            "<|im_end|>",
            "<tool>",
        ];
        let types = [1, 1, 1, 1, 1, 1, 1, 1, 3, 3, 3, 4];
        let mut map = HashMap::new();
        map.insert(ARCH_KEY.into(), s("llama"));
        map.insert("llama.context_length".into(), GgufValue::U32(4096));
        map.insert(MODEL_KEY.into(), s("gpt2"));
        if let Some(pre) = pre {
            map.insert(PRE_KEY.into(), s(pre));
        }
        map.insert(TOKENS_KEY.into(), strings(&tokens));
        map.insert(
            TOKEN_TYPE_KEY.into(),
            GgufValue::Array(types.iter().map(|&t| GgufValue::I32(t)).collect()),
        );
        map.insert(MERGES_KEY.into(), strings(&["a b", "Ġ a"]));
        map.insert(BOS_KEY.into(), GgufValue::U32(9));
        map.insert(EOS_KEY.into(), GgufValue::U32(10));
        map.insert(PAD_KEY.into(), GgufValue::U32(8));
        map.insert(CHAT_TEMPLATE_KEY.into(), s("{{ messages }}"));
        map
    }

    fn files(map: &HashMap<String, GgufValue>) -> Result<HfTokenizerFiles> {
        hf_tokenizer_files(Path::new("model.gguf"), map)
    }

    fn tokenizer(files: &HfTokenizerFiles) -> tokenizers::Tokenizer {
        tokenizers::Tokenizer::from_str(&files.tokenizer_json.to_string())
            .expect("tokenizers accepts the generated tokenizer.json")
    }

    fn ids(tokenizer: &tokenizers::Tokenizer, text: &str) -> Vec<u32> {
        tokenizer
            .encode(text, true)
            .expect("encodes")
            .get_ids()
            .to_vec()
    }

    fn error_text(map: &HashMap<String, GgufValue>) -> String {
        match files(map) {
            Ok(_) => panic!("metadata accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn every_pre_tokenizer_builds_a_loadable_tokenizer() {
        for pre in [
            None,
            Some("qwen2"),
            Some("llama3"),
            Some("llama-bpe"),
            Some("llama-v3"),
            Some("smaug-bpe"),
            Some("smollm"),
            Some("starcoder"),
            Some("gpt2"),
            Some("default"),
        ] {
            let files = files(&metadata(pre)).expect("supported metadata");
            let tokenizer = tokenizer(&files);
            assert_eq!(ids(&tokenizer, "ab a"), vec![2, 4], "pre {pre:?}");
            assert_eq!(
                files.tokenizer_json["model"]["ignore_merges"],
                json!(matches!(
                    pre,
                    Some("llama3" | "llama-bpe" | "llama-v3" | "smaug-bpe")
                )),
                "pre {pre:?}"
            );
        }
    }

    #[test]
    fn qwen2_uses_nfc_and_the_qwen2_split() {
        let files = files(&metadata(Some("qwen2"))).expect("qwen2");
        let json = &files.tokenizer_json;
        assert_eq!(json["normalizer"], json!({ "type": "NFC" }));
        let split = &json["pre_tokenizer"]["pretokenizers"][0];
        assert_eq!(split["pattern"]["Regex"], json!(QWEN2_REGEX));
        assert_eq!(split["behavior"], json!("Isolated"));
        assert_eq!(
            json["pre_tokenizer"]["pretokenizers"][1],
            byte_level(false, false, false)
        );
    }

    #[test]
    fn smollm_splits_digits_one_by_one() {
        let tokenizer = tokenizer(&files(&metadata(Some("smollm"))).expect("smollm"));
        assert_eq!(ids(&tokenizer, "123"), vec![5, 6, 7]);
    }

    #[test]
    fn control_tokens_are_special_added_tokens() {
        let files = files(&metadata(Some("qwen2"))).expect("qwen2");
        let added = files.tokenizer_json["added_tokens"]
            .as_array()
            .expect("a list");
        let summary: Vec<_> = added
            .iter()
            .map(|t| (t["id"].clone(), t["content"].clone(), t["special"].clone()))
            .collect();
        assert_eq!(
            summary,
            vec![
                (json!(8), json!("<|endoftext|>"), json!(true)),
                (json!(9), json!("<|im_start|>"), json!(true)),
                (json!(10), json!("<|im_end|>"), json!(true)),
                (json!(11), json!("<tool>"), json!(false)),
            ]
        );
        let tokenizer = tokenizer(&files);
        assert_eq!(ids(&tokenizer, "<|im_start|>ab<|im_end|>"), vec![9, 2, 10]);
        assert_eq!(ids(&tokenizer, "a<tool>b"), vec![0, 11, 1]);
        let decoded = tokenizer.decode(&[9, 2, 11, 10], true).expect("decodes");
        assert_eq!(decoded, "ab<tool>");
    }

    #[test]
    fn config_files_name_the_special_tokens() {
        let files = files(&metadata(Some("qwen2"))).expect("qwen2");
        assert_eq!(
            files.tokenizer_config,
            json!({
                "add_bos_token": false,
                "add_eos_token": false,
                "bos_token": "<|im_start|>",
                "eos_token": "<|im_end|>",
                "pad_token": "<|endoftext|>",
                "chat_template": "{{ messages }}",
                "clean_up_tokenization_spaces": false,
                "model_max_length": 4096,
                "tokenizer_class": "PreTrainedTokenizerFast",
            })
        );
        assert_eq!(
            files.generation_config,
            json!({ "bos_token_id": 9, "eos_token_id": 10, "pad_token_id": 8 })
        );
        assert_eq!(files.tokenizer_json["model"]["unk_token"], Value::Null);
    }

    #[test]
    fn unknown_token_id_sets_the_bpe_unk_token() {
        let mut map = metadata(None);
        map.insert(UNK_KEY.into(), GgufValue::U32(8));
        let files = files(&map).expect("accepted");
        assert_eq!(
            files.tokenizer_json["model"]["unk_token"],
            json!("<|endoftext|>")
        );
        assert_eq!(files.tokenizer_config["unk_token"], json!("<|endoftext|>"));
        tokenizer(&files);
    }

    #[test]
    fn add_bos_and_eos_use_a_template_processor() {
        let mut map = metadata(Some("llama3"));
        map.insert(ADD_BOS_KEY.into(), GgufValue::Bool(true));
        map.insert(ADD_EOS_KEY.into(), GgufValue::Bool(true));
        let tokenizer = tokenizer(&files(&map).expect("accepted"));
        assert_eq!(ids(&tokenizer, "ab"), vec![9, 2, 10]);
        let pair = tokenizer.encode(("a", "b"), true).expect("encodes a pair");
        assert_eq!(pair.get_ids(), &[9, 0, 10, 9, 1, 10]);
    }

    #[test]
    fn no_bos_is_added_by_default() {
        let tokenizer = tokenizer(&files(&metadata(Some("smollm"))).expect("accepted"));
        assert_eq!(ids(&tokenizer, "ab"), vec![2]);
    }

    #[test]
    fn unknown_pre_is_refused_by_name() {
        let message = error_text(&metadata(Some("mystery")));
        assert!(message.contains("tokenizer.ggml.pre"), "{message}");
        assert!(message.contains("\"mystery\""), "{message}");
        assert!(message.contains("model.gguf"), "{message}");
    }

    #[test]
    fn sentencepiece_and_other_models_are_refused_by_name() {
        for model in ["llama", "bert", "rwkv"] {
            let mut map = metadata(None);
            map.insert(MODEL_KEY.into(), s(model));
            let message = error_text(&map);
            assert!(message.contains("tokenizer.ggml.model"), "{message}");
            assert!(message.contains(model), "{message}");
        }
        let mut map = metadata(None);
        map.remove(MODEL_KEY);
        assert!(error_text(&map).contains("tokenizer.ggml.model"));
    }

    #[test]
    fn token_type_length_mismatch_is_refused() {
        let mut map = metadata(None);
        map.insert(
            TOKEN_TYPE_KEY.into(),
            GgufValue::Array(vec![GgufValue::I32(1); 3]),
        );
        let message = error_text(&map);
        assert!(message.contains("tokenizer.ggml.token_type"), "{message}");
    }

    #[test]
    fn malformed_values_are_refused_naming_the_key() {
        let cases: Vec<(&str, GgufValue)> = vec![
            (PRE_KEY, GgufValue::U32(1)),
            (TOKENS_KEY, s("a")),
            (TOKENS_KEY, GgufValue::Array(vec![GgufValue::U8(1)])),
            (TOKENS_KEY, GgufValue::Array(vec![])),
            (TOKEN_TYPE_KEY, strings(&["1"; 12])),
            (
                TOKEN_TYPE_KEY,
                GgufValue::Array(vec![GgufValue::I32(9); 12]),
            ),
            (MERGES_KEY, strings(&["ab"])),
            (MERGES_KEY, strings(&["a c"])),
            (MERGES_KEY, strings(&["b a"])),
            (BOS_KEY, GgufValue::U32(12)),
            (EOS_KEY, GgufValue::I32(-1)),
            (PAD_KEY, s("0")),
            (ADD_BOS_KEY, GgufValue::U8(1)),
            (CHAT_TEMPLATE_KEY, GgufValue::Bool(true)),
            ("llama.context_length", s("4096")),
        ];
        for (key, value) in cases {
            let mut map = metadata(Some("qwen2"));
            map.insert(key.into(), value);
            let message = error_text(&map);
            assert!(message.contains(key), "{key}: {message}");
        }
        let mut map = metadata(None);
        map.remove(MERGES_KEY);
        assert!(error_text(&map).contains(MERGES_KEY));
        let mut map = metadata(None);
        map.remove(BOS_KEY);
        map.insert(ADD_BOS_KEY.into(), GgufValue::Bool(true));
        assert!(error_text(&map).contains(ADD_BOS_KEY));
    }

    #[test]
    fn missing_token_types_mean_normal_tokens() {
        let mut map = metadata(None);
        map.remove(TOKEN_TYPE_KEY);
        let files = files(&map).expect("accepted");
        assert_eq!(files.tokenizer_json["added_tokens"], json!([]));
        tokenizer(&files);
    }

    #[test]
    fn merges_split_at_the_first_space_after_the_first_character() {
        assert_eq!(split_merge("Ġ t"), Some(("Ġ", "t")));
        assert_eq!(split_merge("a b c"), Some(("a", "b c")));
        assert_eq!(split_merge("  x"), Some((" ", "x")));
        assert_eq!(split_merge("ab"), None);
        assert_eq!(split_merge(""), None);
        assert_eq!(split_merge(" "), None);
    }
}

//! The model's tokenizer (`tokenizer.json`), its special tokens (`tokenizer_config.json`,
//! `generation_config.json`) and its chat template.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use candle_core::quantized::gguf_file::Value as GgufValue;
use serde::Deserialize;
use serde_json::Value;
use switchboard_model::ModelSource;

use crate::chat_template::{ChatMessage, ChatTemplate};
use crate::error::{EngineError, Result};

/// Tokenizer, special tokens and chat template of one model (a directory or a GGUF file).
pub struct TextTokenizer {
    inner: tokenizers::Tokenizer,
    template: ChatTemplate,
    eos_token_ids: BTreeSet<u32>,
    special_ids: BTreeSet<u32>,
    /// `tokenizer_config.json`'s own fields, reported as they are (`/tokenizer_info`).
    config_fields: ConfigFields,
}

/// What `tokenizer_config.json` says about itself, for clients that rebuild the tokenizer.
#[derive(Debug, Clone, Default)]
struct ConfigFields {
    bos_token: Option<String>,
    eos_token: Option<String>,
    pad_token: Option<String>,
    chat_template: Option<String>,
    tokenizer_class: Option<String>,
}

fn read_json(path: &Path) -> Result<Option<Value>> {
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).map_err(|e| EngineError::File {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| EngineError::File {
            path: path.to_path_buf(),
            reason: format!("invalid JSON: {e}"),
        })
}

/// A token given in `tokenizer_config.json` either as a string or as `{"content": ...}`.
fn token_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("content")?.as_str().map(str::to_string),
        _ => None,
    }
}

/// The chat template source of `tokenizer_config.json`: a string, or the one named "default"
/// of a list.
fn chat_template_source(config: &Value) -> Option<String> {
    match config.get("chat_template")? {
        Value::String(source) => Some(source.clone()),
        Value::Array(named) => named
            .iter()
            .find(|t| t.get("name").and_then(Value::as_str) == Some("default"))
            .and_then(|t| t.get("template"))
            .and_then(Value::as_str)
            .map(str::to_string),
        _ => None,
    }
}

/// `generation_config.json`'s `eos_token_id`: one id or a list.
fn eos_ids(generation: &Value) -> BTreeSet<u32> {
    let as_id = |v: &Value| v.as_u64().and_then(|n| u32::try_from(n).ok());
    match generation.get("eos_token_id") {
        Some(Value::Array(ids)) => ids.iter().filter_map(as_id).collect(),
        Some(id) => as_id(id).into_iter().collect(),
        None => BTreeSet::new(),
    }
}

impl TextTokenizer {
    /// Loads `tokenizer.json` (required), `tokenizer_config.json` and `generation_config.json`
    /// (optional) from a model directory.
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let path = dir.join("tokenizer.json");
        if !path.is_file() {
            return Err(EngineError::File {
                path,
                reason: "missing tokenizer.json".into(),
            });
        }
        let tokenizer_json = read_json(&path)?.unwrap_or(Value::Null);
        let config = read_json(&dir.join("tokenizer_config.json"))?.unwrap_or(Value::Null);
        let generation = read_json(&dir.join("generation_config.json"))?.unwrap_or(Value::Null);
        Self::from_parts(&path, &tokenizer_json, &config, &generation)
    }

    /// The tokenizer of an opened model: its directory's files, or a GGUF file's metadata.
    pub fn from_source(source: &ModelSource) -> Result<Self> {
        match source {
            ModelSource::Checkpoint(c) => Self::from_dir(&c.dir),
            ModelSource::Gguf(g) => Self::from_gguf_metadata(&g.path, g.metadata()),
        }
    }

    /// Builds the tokenizer of a GGUF file from its `tokenizer.ggml.*` metadata (see
    /// [`switchboard_model::hf_tokenizer_files`]); `path` names the file in errors.
    pub fn from_gguf_metadata(path: &Path, metadata: &HashMap<String, GgufValue>) -> Result<Self> {
        let files = switchboard_model::hf_tokenizer_files(path, metadata)?;
        Self::from_parts(
            path,
            &files.tokenizer_json,
            &files.tokenizer_config,
            &files.generation_config,
        )
    }

    /// Builds the tokenizer from the contents of `tokenizer.json`, `tokenizer_config.json`
    /// and `generation_config.json` (`Value::Null` for a missing optional file); `source`
    /// names where they come from in errors.
    pub fn from_parts(
        source: &Path,
        tokenizer_json: &Value,
        tokenizer_config: &Value,
        generation_config: &Value,
    ) -> Result<Self> {
        let inner =
            tokenizers::Tokenizer::deserialize(tokenizer_json).map_err(|e| EngineError::File {
                path: source.to_path_buf(),
                reason: format!("invalid tokenizer.json: {e}"),
            })?;
        let bos = token_text(tokenizer_config.get("bos_token"));
        let eos = token_text(tokenizer_config.get("eos_token"));
        let source = chat_template_source(tokenizer_config);
        let template = match &source {
            Some(source) => ChatTemplate::new(source, bos.clone(), eos.clone())?,
            None => ChatTemplate::chatml(),
        };
        let config_fields = ConfigFields {
            bos_token: bos,
            eos_token: eos.clone(),
            pad_token: token_text(tokenizer_config.get("pad_token")),
            chat_template: source,
            tokenizer_class: tokenizer_config
                .get("tokenizer_class")
                .and_then(Value::as_str)
                .map(str::to_string),
        };
        let mut eos_token_ids = eos_ids(generation_config);
        if let Some(id) = eos.as_deref().and_then(|t| inner.token_to_id(t)) {
            eos_token_ids.insert(id);
        }
        let special_ids = inner
            .get_added_tokens_decoder()
            .into_iter()
            .filter(|(_, token)| token.special)
            .map(|(id, _)| id)
            .collect();
        Ok(Self {
            inner,
            template,
            eos_token_ids,
            special_ids,
            config_fields,
        })
    }

    /// Token ids of `text`; special tokens typed in the text are matched (as in Qwen2).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = self
            .inner
            .encode(text, true)
            .map_err(|e| EngineError::Tokenizer(e.to_string()))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Text of `ids`, optionally without special tokens.
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String> {
        self.inner
            .decode(ids, skip_special_tokens)
            .map_err(|e| EngineError::Tokenizer(e.to_string()))
    }

    /// Renders a conversation with the model's chat template (or ChatML when it has none).
    pub fn apply_chat_template(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String> {
        self.template.render(messages, add_generation_prompt)
    }

    /// Ids that end generation: `generation_config.json`'s `eos_token_id`(s) and the
    /// tokenizer's `eos_token`.
    pub fn eos_token_ids(&self) -> &BTreeSet<u32> {
        &self.eos_token_ids
    }

    /// `tokenizer_config.json`'s `bos_token`, if it names one.
    pub fn bos_token(&self) -> Option<&str> {
        self.config_fields.bos_token.as_deref()
    }

    /// `tokenizer_config.json`'s `eos_token`, if it names one.
    pub fn eos_token(&self) -> Option<&str> {
        self.config_fields.eos_token.as_deref()
    }

    /// `tokenizer_config.json`'s `pad_token`, if it names one.
    pub fn pad_token(&self) -> Option<&str> {
        self.config_fields.pad_token.as_deref()
    }

    /// The checkpoint's chat template source; `None` when it has none (ChatML is used then).
    pub fn chat_template_source(&self) -> Option<&str> {
        self.config_fields.chat_template.as_deref()
    }

    /// `tokenizer_config.json`'s `tokenizer_class` (`Qwen2Tokenizer`...), if given.
    pub fn tokenizer_class(&self) -> Option<&str> {
        self.config_fields.tokenizer_class.as_deref()
    }

    /// Whether `id` is a special token (left out of text when skipping special tokens).
    pub fn is_special(&self, id: u32) -> bool {
        self.special_ids.contains(&id)
    }

    /// The raw bytes of one token, as OpenAI's logprobs report them: a byte-level BPE token that
    /// holds part of a UTF-8 character gives those bytes, not a replacement character.
    pub fn token_bytes(&self, id: u32) -> Vec<u8> {
        let byte_level = matches!(
            self.inner.get_decoder(),
            Some(tokenizers::DecoderWrapper::ByteLevel(_))
        );
        match self.inner.id_to_token(id) {
            Some(token) if byte_level && !self.is_special(id) => {
                let bytes: Option<Vec<u8>> = token.chars().map(byte_level_byte).collect();
                bytes.unwrap_or_else(|| token.into_bytes())
            }
            Some(token) => token.into_bytes(),
            None => Vec::new(),
        }
    }

    /// Vocabulary size including added tokens.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The underlying `tokenizers` tokenizer.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }
}

/// The byte a GPT-2 byte-level alphabet character stands for: printable bytes stand for
/// themselves, the others were shifted to U+0100 and up in byte order.
fn byte_level_byte(c: char) -> Option<u8> {
    let printable =
        |b: u32| (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
    let code = c as u32;
    if code < 256 {
        return printable(code).then_some(code as u8);
    }
    let shifted = (code - 256) as usize;
    (0u32..256)
        .filter(|&b| !printable(b))
        .nth(shifted)
        .map(|b| b as u8)
}

#[cfg(test)]
mod tests {
    use super::byte_level_byte;

    #[test]
    fn byte_level_alphabet_round_trips() {
        assert_eq!(byte_level_byte('a'), Some(b'a'));
        assert_eq!(byte_level_byte('Ġ'), Some(b' '));
        assert_eq!(byte_level_byte('Ċ'), Some(b'\n'));
        assert_eq!(byte_level_byte('\u{100}'), Some(0));
        assert_eq!(byte_level_byte('中'), None);
    }
}

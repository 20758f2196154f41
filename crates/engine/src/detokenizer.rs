//! Incremental detokenization for streaming: text is emitted as tokens arrive, never a broken
//! UTF-8 sequence, and the concatenated pieces equal the decode of all tokens.
//!
//! Byte-level BPE tokens can end inside a multi-byte character, and some decoders change
//! earlier text when later tokens arrive (e.g. leading-space handling). So each step decodes a
//! short window of recent tokens twice, with and without the newest one, and emits only the
//! difference, holding back anything that still ends in an incomplete character.

use crate::error::Result;
use crate::tokenizer::TextTokenizer;

/// Per-sequence state of incremental decoding.
#[derive(Debug, Clone, Default)]
pub struct IncrementalDecoder {
    ids: Vec<u32>,
    /// Start of the window re-decoded for context.
    prefix_offset: usize,
    /// Tokens before this index have been emitted as text.
    read_offset: usize,
    skip_special_tokens: bool,
}

impl IncrementalDecoder {
    /// A decoder for a new sequence of generated tokens.
    pub fn new(skip_special_tokens: bool) -> Self {
        Self {
            skip_special_tokens,
            ..Self::default()
        }
    }

    /// Adds one token and returns the text it completes, if any.
    pub fn push(&mut self, tokenizer: &TextTokenizer, id: u32) -> Result<Option<String>> {
        self.ids.push(id);
        let skip = self.skip_special_tokens;
        let prefix = tokenizer.decode(&self.ids[self.prefix_offset..self.read_offset], skip)?;
        let full = tokenizer.decode(&self.ids[self.prefix_offset..], skip)?;
        if full.len() <= prefix.len() || full.ends_with('\u{FFFD}') || !full.starts_with(&prefix) {
            // Nothing new, an incomplete character, or text still being rewritten: wait.
            return Ok(None);
        }
        let new_text = full[prefix.len()..].to_string();
        self.prefix_offset = self.read_offset;
        self.read_offset = self.ids.len();
        Ok(Some(new_text))
    }

    /// Text of tokens not emitted yet (at the end of a sequence), lossily completed.
    pub fn flush(&mut self, tokenizer: &TextTokenizer) -> Result<Option<String>> {
        if self.read_offset == self.ids.len() {
            return Ok(None);
        }
        let skip = self.skip_special_tokens;
        let prefix = tokenizer.decode(&self.ids[self.prefix_offset..self.read_offset], skip)?;
        let full = tokenizer.decode(&self.ids[self.prefix_offset..], skip)?;
        self.prefix_offset = self.read_offset;
        self.read_offset = self.ids.len();
        Ok(full
            .strip_prefix(&prefix)
            .map(str::to_string)
            .filter(|s| !s.is_empty()))
    }

    /// Every token pushed so far.
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }
}

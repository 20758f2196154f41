//! Per-request sampling and stopping parameters, with OpenAI's defaults and ranges.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};

/// The most `top_logprobs` a request may ask for (OpenAI's limit).
pub const MAX_TOP_LOGPROBS: usize = 20;
/// The most choices (`n`) one request may ask for.
pub const MAX_N: usize = 16;

/// How one request samples and when it stops. Defaults are OpenAI's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SamplingParams {
    /// Softmax temperature in `[0, 2]`; 0 means greedy (argmax).
    pub temperature: f32,
    /// Nucleus sampling: the smallest set of tokens whose probability sums to `top_p`, in `(0, 1]`.
    pub top_p: f32,
    /// Keep only the `top_k` most likely tokens; 0 keeps all.
    pub top_k: usize,
    /// Drop tokens whose probability is below `min_p` times the top token's, in `[0, 1]`.
    pub min_p: f32,
    /// Multiplicative penalty (HF/vLLM semantics) on tokens of the prompt and the completion;
    /// 1 is off, must be > 0.
    pub repetition_penalty: f32,
    /// Subtracted once from the logit of every token already generated, in `[-2, 2]`.
    pub presence_penalty: f32,
    /// Subtracted per occurrence from the logit of tokens already generated, in `[-2, 2]`.
    pub frequency_penalty: f32,
    /// Added to the logits of these token ids, each in `[-100, 100]`.
    pub logit_bias: BTreeMap<u32, f32>,
    /// Makes sampling reproducible: the same seed gives the same tokens whatever runs beside it.
    pub seed: Option<u64>,
    /// Most tokens to generate per choice; `None` means up to the end of the context window.
    pub max_tokens: Option<usize>,
    /// Strings that end generation; they are not part of the output.
    pub stop: Vec<String>,
    /// Token ids that end generation (besides EOS); they are not part of the output text.
    pub stop_token_ids: Vec<u32>,
    /// Keep generating past EOS tokens (benchmarks).
    pub ignore_eos: bool,
    /// Number of choices to generate for the prompt.
    pub n: usize,
    /// Return the log-probability of each generated token.
    pub logprobs: bool,
    /// With `logprobs`, also the this many most likely alternatives at each position (0..=20).
    pub top_logprobs: usize,
    /// Score the prompt: `Some(k)` reports the log-probability of every prompt token (the first
    /// has none) and its `k` most likely alternatives (0..=20), in one
    /// [`crate::GenerateEvent::PromptLogprobs`] before any output. `None`: off.
    pub prompt_logprobs: Option<usize>,
    /// Leave special tokens out of the text.
    pub skip_special_tokens: bool,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            temperature: 1.0,
            top_p: 1.0,
            top_k: 0,
            min_p: 0.0,
            repetition_penalty: 1.0,
            presence_penalty: 0.0,
            frequency_penalty: 0.0,
            logit_bias: BTreeMap::new(),
            seed: None,
            max_tokens: None,
            stop: Vec::new(),
            stop_token_ids: Vec::new(),
            ignore_eos: false,
            n: 1,
            logprobs: false,
            top_logprobs: 0,
            prompt_logprobs: None,
            skip_special_tokens: true,
        }
    }
}

impl SamplingParams {
    /// Greedy decoding of at most `max_tokens` tokens.
    pub fn greedy(max_tokens: usize) -> Self {
        Self {
            temperature: 0.0,
            max_tokens: Some(max_tokens),
            ..Self::default()
        }
    }

    /// Whether the next token is the argmax (no randomness involved).
    pub fn is_greedy(&self) -> bool {
        self.temperature == 0.0 || self.top_k == 1
    }

    /// Checks every field against its range; `vocab_size` bounds token ids.
    pub fn validate(&self, vocab_size: usize) -> Result<()> {
        let in_range = |v: f32, lo: f32, hi: f32| v.is_finite() && (lo..=hi).contains(&v);
        if !in_range(self.temperature, 0.0, 2.0) {
            return Err(EngineError::invalid(
                "temperature",
                "must be between 0 and 2",
            ));
        }
        if !(self.top_p.is_finite() && self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(EngineError::invalid("top_p", "must be in (0, 1]"));
        }
        if !in_range(self.min_p, 0.0, 1.0) {
            return Err(EngineError::invalid("min_p", "must be between 0 and 1"));
        }
        if !(self.repetition_penalty.is_finite() && self.repetition_penalty > 0.0) {
            return Err(EngineError::invalid(
                "repetition_penalty",
                "must be greater than 0",
            ));
        }
        if !in_range(self.presence_penalty, -2.0, 2.0) {
            return Err(EngineError::invalid(
                "presence_penalty",
                "must be between -2 and 2",
            ));
        }
        if !in_range(self.frequency_penalty, -2.0, 2.0) {
            return Err(EngineError::invalid(
                "frequency_penalty",
                "must be between -2 and 2",
            ));
        }
        for (&id, &bias) in &self.logit_bias {
            if id as usize >= vocab_size {
                return Err(EngineError::invalid(
                    "logit_bias",
                    format!("token id {id} is outside the vocabulary (size {vocab_size})"),
                ));
            }
            if !in_range(bias, -100.0, 100.0) {
                return Err(EngineError::invalid(
                    "logit_bias",
                    format!("bias {bias} for token {id} must be between -100 and 100"),
                ));
            }
        }
        if let Some(&id) = self
            .stop_token_ids
            .iter()
            .find(|&&id| id as usize >= vocab_size)
        {
            return Err(EngineError::invalid(
                "stop_token_ids",
                format!("token id {id} is outside the vocabulary (size {vocab_size})"),
            ));
        }
        if self.max_tokens == Some(0) {
            return Err(EngineError::invalid("max_tokens", "must be at least 1"));
        }
        if self.stop.iter().any(String::is_empty) {
            return Err(EngineError::invalid(
                "stop",
                "stop strings must not be empty",
            ));
        }
        if self.n == 0 || self.n > MAX_N {
            return Err(EngineError::invalid(
                "n",
                format!("must be between 1 and {MAX_N}"),
            ));
        }
        if self.top_logprobs > MAX_TOP_LOGPROBS {
            return Err(EngineError::invalid(
                "top_logprobs",
                format!("must be between 0 and {MAX_TOP_LOGPROBS}"),
            ));
        }
        if self.prompt_logprobs.is_some_and(|k| k > MAX_TOP_LOGPROBS) {
            return Err(EngineError::invalid(
                "prompt_logprobs",
                format!("must be between 0 and {MAX_TOP_LOGPROBS}"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_out_of_range_values_name_their_field() {
        assert!(SamplingParams::default().validate(100).is_ok());
        let scored = SamplingParams {
            prompt_logprobs: Some(MAX_TOP_LOGPROBS),
            ..Default::default()
        };
        assert!(scored.validate(100).is_ok());
        let cases: Vec<(&str, SamplingParams)> = vec![
            (
                "temperature",
                SamplingParams {
                    temperature: 2.5,
                    ..Default::default()
                },
            ),
            (
                "temperature",
                SamplingParams {
                    temperature: f32::NAN,
                    ..Default::default()
                },
            ),
            (
                "top_p",
                SamplingParams {
                    top_p: 0.0,
                    ..Default::default()
                },
            ),
            (
                "min_p",
                SamplingParams {
                    min_p: -0.1,
                    ..Default::default()
                },
            ),
            (
                "repetition_penalty",
                SamplingParams {
                    repetition_penalty: 0.0,
                    ..Default::default()
                },
            ),
            (
                "presence_penalty",
                SamplingParams {
                    presence_penalty: 3.0,
                    ..Default::default()
                },
            ),
            (
                "frequency_penalty",
                SamplingParams {
                    frequency_penalty: -2.1,
                    ..Default::default()
                },
            ),
            (
                "logit_bias",
                SamplingParams {
                    logit_bias: [(100, 1.0)].into(),
                    ..Default::default()
                },
            ),
            (
                "logit_bias",
                SamplingParams {
                    logit_bias: [(5, 101.0)].into(),
                    ..Default::default()
                },
            ),
            (
                "stop_token_ids",
                SamplingParams {
                    stop_token_ids: vec![100],
                    ..Default::default()
                },
            ),
            (
                "max_tokens",
                SamplingParams {
                    max_tokens: Some(0),
                    ..Default::default()
                },
            ),
            (
                "stop",
                SamplingParams {
                    stop: vec![String::new()],
                    ..Default::default()
                },
            ),
            (
                "n",
                SamplingParams {
                    n: 0,
                    ..Default::default()
                },
            ),
            (
                "top_logprobs",
                SamplingParams {
                    top_logprobs: 21,
                    ..Default::default()
                },
            ),
            (
                "prompt_logprobs",
                SamplingParams {
                    prompt_logprobs: Some(MAX_TOP_LOGPROBS + 1),
                    ..Default::default()
                },
            ),
        ];
        for (field, params) in cases {
            match params.validate(100) {
                Err(EngineError::InvalidParam { param, .. }) => assert_eq!(param, field),
                other => panic!("{field}: expected InvalidParam, got {other:?}"),
            }
        }
    }
}

//! Greedy decoding through the model crate, to check what a trained adapter learned.

use std::collections::BTreeSet;

use candle_core::D;
use switchboard_model::{CausalLm, ForwardMode, LogitsWanted, LoraAdapter, SeqInput};

use crate::error::Result;

/// Extends `prompt` by up to `max_new_tokens` most likely tokens, stopping before any token in
/// `stop`. Returns the new tokens only.
pub fn greedy_decode(
    model: &CausalLm,
    adapter: Option<&LoraAdapter>,
    prompt: &[u32],
    max_new_tokens: usize,
    stop: &BTreeSet<u32>,
) -> Result<Vec<u32>> {
    let mut cache = model.new_cache();
    let mut generated = Vec::new();
    let mut next_input = prompt.to_vec();
    while generated.len() < max_new_tokens && !next_input.is_empty() {
        let mut batch = [SeqInput {
            tokens: &next_input,
            cache: &mut cache,
            adapter,
            logits: LogitsWanted::Last,
        }];
        let logits = model.forward(&mut batch, ForwardMode::Inference)?.remove(0);
        let token = logits.argmax(D::Minus1)?.flatten_all()?.to_vec1::<u32>()?[0];
        if stop.contains(&token) {
            break;
        }
        generated.push(token);
        next_input = vec![token];
    }
    Ok(generated)
}

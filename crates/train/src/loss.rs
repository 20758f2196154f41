//! The training objective: next-token negative log-likelihood on the target positions only.

use candle_core::{DType, Tensor, D};
use switchboard_model::{CausalLm, ForwardMode, LogitsWanted, LoraAdapter, SeqInput};

use crate::error::Result;
use crate::tokenize::TokenizedExample;

/// One sequence of a loss batch and the adapter it runs with (`None`: the model alone).
pub type LossItem<'a> = (&'a TokenizedExample, Option<&'a LoraAdapter>);

/// Runs the batch through the model in one forward pass and returns the summed negative
/// log-likelihood of every target token (a scalar tensor that can be back-propagated) and how
/// many target tokens there were.
///
/// A sum rather than a mean, so that the trainer can divide by the target count of the whole
/// optimizer step: gradient accumulation then equals one large batch exactly.
pub fn batch_nll(
    model: &CausalLm,
    batch: &[LossItem<'_>],
    mode: ForwardMode,
) -> Result<(Tensor, usize)> {
    let mut caches: Vec<_> = batch.iter().map(|_| model.new_cache()).collect();
    let mut inputs: Vec<SeqInput<'_>> = batch
        .iter()
        .zip(caches.iter_mut())
        .map(|((example, adapter), cache)| SeqInput {
            tokens: &example.tokens,
            cache,
            adapter: *adapter,
            logits: LogitsWanted::All,
        })
        .collect();
    let logits = model.forward(&mut inputs, mode)?;
    let device = model.device();
    let mut rows = Vec::with_capacity(batch.len());
    let mut labels = Vec::new();
    for ((example, _), seq_logits) in batch.iter().zip(&logits) {
        // Position t - 1 predicts token t.
        let positions: Vec<u32> = (1..example.tokens.len())
            .filter(|&t| example.targets[t])
            .map(|t| t as u32 - 1)
            .collect();
        if positions.is_empty() {
            continue;
        }
        labels.extend(positions.iter().map(|&p| example.tokens[p as usize + 1]));
        let index = Tensor::from_vec(positions.clone(), positions.len(), device)?;
        rows.push(seq_logits.index_select(&index, 0)?);
    }
    let count = labels.len();
    if count == 0 {
        return Ok((Tensor::zeros((), DType::F32, device)?, 0));
    }
    let logits = Tensor::cat(&rows, 0)?; // [count, vocab]
    let log_probs = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
    let labels = Tensor::from_vec(labels, (count, 1), device)?;
    let nll = log_probs.gather(&labels, 1)?.sum_all()?.neg()?;
    Ok((nll, count))
}

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
    // Position t - 1 predicts token t; only the span of positions that predict a target gets
    // logits (the prompt before the first answer token needs none).
    let predicting: Vec<Vec<u32>> = batch
        .iter()
        .map(|(example, _)| {
            (1..example.tokens.len())
                .filter(|&t| example.targets[t])
                .map(|t| t as u32 - 1)
                .collect()
        })
        .collect();
    let with_targets: Vec<usize> = (0..batch.len())
        .filter(|&i| !predicting[i].is_empty())
        .collect();
    let device = model.device();
    if with_targets.is_empty() {
        return Ok((Tensor::zeros((), DType::F32, device)?, 0));
    }
    let mut caches: Vec<_> = with_targets.iter().map(|_| model.new_cache()).collect();
    let mut inputs: Vec<SeqInput<'_>> = with_targets
        .iter()
        .zip(caches.iter_mut())
        .map(|(&i, cache)| {
            let (example, adapter) = batch[i];
            let positions = &predicting[i];
            SeqInput {
                tokens: &example.tokens,
                cache,
                adapter,
                logits: LogitsWanted::Range {
                    start: positions[0] as usize,
                    end: positions[positions.len() - 1] as usize + 1,
                },
            }
        })
        .collect();
    let logits = model.forward(&mut inputs, mode)?;
    let mut rows = Vec::with_capacity(with_targets.len());
    let mut labels = Vec::new();
    for (&i, seq_logits) in with_targets.iter().zip(&logits) {
        let (example, _) = batch[i];
        let positions = &predicting[i];
        labels.extend(positions.iter().map(|&p| example.tokens[p as usize + 1]));
        let first = positions[0];
        let span = positions[positions.len() - 1] - first + 1;
        if span as usize == positions.len() {
            rows.push(seq_logits.clone());
        } else {
            let offsets: Vec<u32> = positions.iter().map(|&p| p - first).collect();
            let index = Tensor::from_vec(offsets, positions.len(), device)?;
            rows.push(seq_logits.index_select(&index, 0)?);
        }
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

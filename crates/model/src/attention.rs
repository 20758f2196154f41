//! Causal attention of each sequence's new queries against its own cached keys and values.
//!
//! Two implementations with the same semantics: a fused CPU kernel (f32, multi-threaded, no
//! intermediate tensors) for serving, and one built from differentiable candle ops for training
//! and for other devices and dtypes.

use std::ops::Range;

use candle_core::{DType, Device, Storage, Tensor, D};
use rayon::prelude::*;

use crate::error::Result;
use crate::small_batch::dot_portable;

/// One sequence's share of an attention call.
pub(crate) struct SeqAttention {
    /// Rows of the flattened batch holding this sequence's new queries.
    pub rows: Range<usize>,
    /// Every key of the sequence, new ones included: `[kv_len, n_kv_heads, head_dim]`.
    pub k: Tensor,
    /// Every value of the sequence: `[kv_len, n_kv_heads, head_dim]`.
    pub v: Tensor,
}

/// `q: [n_tokens, n_heads, head_dim]` -> `[n_tokens, n_heads * head_dim]`. The queries of a
/// sequence are its last `rows.len()` positions, so query `i` sees keys `0..=kv_len - lq + i`.
pub(crate) fn causal_attention(q: &Tensor, seqs: &[SeqAttention], fused: bool) -> Result<Tensor> {
    if fused && q.dtype() == DType::F32 && matches!(q.device(), Device::Cpu) {
        fused_cpu_f32(q, seqs)
    } else {
        composed(q, seqs)
    }
}

fn composed(q: &Tensor, seqs: &[SeqAttention]) -> Result<Tensor> {
    let (_, n_heads, head_dim) = q.dims3()?;
    let scale = 1.0 / (head_dim as f64).sqrt();
    let mut outs = Vec::with_capacity(seqs.len());
    for seq in seqs {
        let lq = seq.rows.len();
        let (kv_len, n_kv_heads, _) = seq.k.dims3()?;
        let groups = n_heads / n_kv_heads;
        let q_s = q
            .narrow(0, seq.rows.start, lq)?
            .transpose(0, 1)?
            .contiguous()?; // [h, lq, d]
        let repeat = |t: &Tensor| -> Result<Tensor> {
            let t = t.transpose(0, 1)?; // [kvh, kv_len, d]
            Ok(t.unsqueeze(1)?
                .expand((n_kv_heads, groups, kv_len, head_dim))?
                .reshape((n_heads, kv_len, head_dim))?)
        };
        let (k, v) = (repeat(&seq.k)?, repeat(&seq.v)?);
        let scores = (q_s.matmul(&k.t()?)? * scale)?; // [h, lq, kv_len]
        let offset = kv_len - lq;
        let mask: Vec<f32> = (0..lq)
            .flat_map(|i| {
                (0..kv_len).map(move |j| {
                    if j <= offset + i {
                        0.0
                    } else {
                        f32::NEG_INFINITY
                    }
                })
            })
            .collect();
        let mask = Tensor::from_vec(mask, (lq, kv_len), q.device())?;
        let scores = scores.to_dtype(DType::F32)?.broadcast_add(&mask)?;
        let probs = candle_nn::ops::softmax(&scores, D::Minus1)?.to_dtype(q.dtype())?;
        let out = probs.matmul(&v)?; // [h, lq, d]
        outs.push(out.transpose(0, 1)?.reshape((lq, n_heads * head_dim))?);
    }
    Ok(Tensor::cat(&outs, 0)?)
}

fn cpu_slice(t: &Tensor) -> Result<(impl std::ops::Deref<Target = Storage> + '_, usize)> {
    let (storage, layout) = t.storage_and_layout();
    if !layout.is_contiguous() {
        return Err(
            candle_core::Error::Msg("attention kernel needs contiguous tensors".into()).into(),
        );
    }
    Ok((storage, layout.start_offset()))
}

fn as_f32(storage: &Storage, offset: usize, len: usize) -> Result<&[f32]> {
    match storage {
        Storage::Cpu(cpu) => Ok(&cpu.as_slice::<f32>()?[offset..offset + len]),
        _ => Err(candle_core::Error::Msg("attention kernel needs CPU tensors".into()).into()),
    }
}

fn fused_cpu_f32(q: &Tensor, seqs: &[SeqAttention]) -> Result<Tensor> {
    let q = q.contiguous()?;
    let (n_tokens, n_heads, head_dim) = q.dims3()?;
    let scale = 1.0 / (head_dim as f32).sqrt();

    let (q_store, q_off) = cpu_slice(&q)?;
    let q_data = as_f32(&q_store, q_off, n_tokens * n_heads * head_dim)?;
    let mut kv_stores = Vec::with_capacity(seqs.len());
    for seq in seqs {
        kv_stores.push((cpu_slice(&seq.k)?, cpu_slice(&seq.v)?, seq.k.dims3()?));
    }
    // Per token: (keys, values, n_kv_heads, how many keys it sees).
    let mut per_token: Vec<(&[f32], &[f32], usize, usize)> = Vec::with_capacity(n_tokens);
    for (seq, ((k_store, k_off), (v_store, v_off), (kv_len, n_kv_heads, _))) in
        seqs.iter().zip(&kv_stores)
    {
        let len = kv_len * n_kv_heads * head_dim;
        let k = as_f32(k_store, *k_off, len)?;
        let v = as_f32(v_store, *v_off, len)?;
        let offset = kv_len - seq.rows.len();
        for i in 0..seq.rows.len() {
            per_token.push((k, v, *n_kv_heads, offset + i + 1));
        }
    }
    if per_token.len() != n_tokens {
        let msg = format!(
            "{n_tokens} query rows but the sequences cover {}",
            per_token.len()
        );
        return Err(crate::error::ModelError::InvalidInput(msg));
    }

    let mut out = vec![0f32; n_tokens * n_heads * head_dim];
    out.par_chunks_mut(head_dim)
        .enumerate()
        .for_each_init(Vec::new, |scores, (row, out_row)| {
            let (token, head) = (row / n_heads, row % n_heads);
            let (k, v, n_kv_heads, visible) = per_token[token];
            let kv_head = head / (n_heads / n_kv_heads);
            let q_row = &q_data[row * head_dim..(row + 1) * head_dim];
            let stride = n_kv_heads * head_dim;
            scores.clear();
            let mut max = f32::NEG_INFINITY;
            for j in 0..visible {
                let base = j * stride + kv_head * head_dim;
                let s = dot_portable(q_row, &k[base..base + head_dim]) * scale;
                max = max.max(s);
                scores.push(s);
            }
            let mut sum = 0f32;
            for s in scores.iter_mut() {
                *s = (*s - max).exp();
                sum += *s;
            }
            let inv = 1.0 / sum;
            for (j, &w) in scores.iter().enumerate() {
                let base = j * stride + kv_head * head_dim;
                let w = w * inv;
                for (o, &x) in out_row.iter_mut().zip(&v[base..base + head_dim]) {
                    *o += w * x;
                }
            }
        });
    drop(kv_stores);
    drop(q_store);
    Ok(Tensor::from_vec(
        out,
        (n_tokens, n_heads * head_dim),
        &Device::Cpu,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fused_kernel_matches_composed_ops() -> Result<()> {
        let dev = Device::Cpu;
        let (n_heads, n_kv_heads, head_dim) = (4, 2, 16);
        // Two sequences: a 5-token prefill on an empty cache, one decode token after 6 cached.
        let q = Tensor::randn(0f32, 1.0, (6, n_heads, head_dim), &dev)?;
        let seqs = vec![
            SeqAttention {
                rows: 0..5,
                k: Tensor::randn(0f32, 1.0, (5, n_kv_heads, head_dim), &dev)?,
                v: Tensor::randn(0f32, 1.0, (5, n_kv_heads, head_dim), &dev)?,
            },
            SeqAttention {
                rows: 5..6,
                k: Tensor::randn(0f32, 1.0, (7, n_kv_heads, head_dim), &dev)?,
                v: Tensor::randn(0f32, 1.0, (7, n_kv_heads, head_dim), &dev)?,
            },
        ];
        let fused = causal_attention(&q, &seqs, true)?;
        let reference = causal_attention(&q, &seqs, false)?;
        let diff = (fused - reference)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 1e-5, "max diff {diff}");
        Ok(())
    }
}

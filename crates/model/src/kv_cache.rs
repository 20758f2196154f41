//! Per-sequence key/value cache, owned by the caller (the engine) and passed into `forward`.
//!
//! Each sequence has its own cache, so sequences join and leave a batch independently. Per layer
//! the keys and values live in a token-major buffer `[capacity, n_kv_heads, head_dim]` that grows
//! geometrically; appends copy only the new tokens.

use candle_core::{DType, Device, Tensor};

use crate::config::ModelConfig;
use crate::error::Result;

#[derive(Debug, Clone, Default)]
struct LayerKv {
    k: Option<Tensor>,
    v: Option<Tensor>,
    len: usize,
}

/// The keys and values of every layer for one sequence, positions `0..len()`.
#[derive(Debug, Clone)]
pub struct KvCache {
    layers: Vec<LayerKv>,
    n_kv_heads: usize,
    head_dim: usize,
    max_len: usize,
}

impl KvCache {
    /// An empty cache for a model with this config.
    pub fn new(cfg: &ModelConfig) -> Self {
        Self {
            layers: vec![LayerKv::default(); cfg.num_hidden_layers],
            n_kv_heads: cfg.num_kv_heads(),
            head_dim: cfg.head_dim(),
            max_len: cfg.max_positions(),
        }
    }

    /// Caps buffer growth at `positions` (a scheduler's reservation), so the cache never
    /// allocates more than it was granted; appends beyond the cap still succeed and grow exactly.
    pub fn limit_capacity(&mut self, positions: usize) {
        self.max_len = positions;
    }

    /// Number of cached positions; the next token of the sequence goes at this position.
    pub fn len(&self) -> usize {
        self.layers.first().map_or(0, |l| l.len)
    }

    pub(crate) fn layer_len(&self, layer: usize) -> usize {
        self.layers.get(layer).map_or(0, |l| l.len)
    }

    /// Whether nothing is cached yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Positions the buffers can hold without growing.
    pub fn capacity(&self) -> usize {
        self.layers
            .first()
            .and_then(|l| l.k.as_ref())
            .map_or(0, |k| k.dims()[0])
    }

    /// Bytes held by the buffers (allocated capacity, not just the used part).
    pub fn allocated_bytes(&self) -> usize {
        self.layers
            .iter()
            .flat_map(|l| [&l.k, &l.v])
            .flatten()
            .map(|t| t.elem_count() * t.dtype().size_in_bytes())
            .sum()
    }

    /// Bytes one cached position takes over all layers, for a given dtype.
    pub fn bytes_per_token(cfg: &ModelConfig, dtype: DType) -> usize {
        2 * cfg.num_hidden_layers * cfg.num_kv_heads() * cfg.head_dim() * dtype.size_in_bytes()
    }

    /// Forgets positions `len..`; the buffers are kept for reuse.
    pub fn truncate(&mut self, len: usize) {
        for layer in &mut self.layers {
            layer.len = layer.len.min(len);
        }
    }

    /// Appends `k_new`, `v_new` (`[n_new, n_kv_heads, head_dim]`) to `layer` and returns views of
    /// all cached keys and values of that layer, `[len, n_kv_heads, head_dim]`.
    pub(crate) fn append(
        &mut self,
        layer: usize,
        k_new: &Tensor,
        v_new: &Tensor,
    ) -> Result<(Tensor, Tensor)> {
        let (n_new, _, _) = k_new.dims3()?;
        let (n_kv_heads, head_dim, max_len) = (self.n_kv_heads, self.head_dim, self.max_len);
        let entry = &mut self.layers[layer];
        let needed = entry.len + n_new;
        let capacity = entry.k.as_ref().map_or(0, |k| k.dims()[0]);
        let (k, v) = match (&entry.k, &entry.v) {
            (Some(k), Some(v)) if needed <= capacity => (k.clone(), v.clone()),
            (old_k, old_v) => {
                let new_capacity = needed.max(capacity * 2).max(16).min(max_len.max(needed));
                let grow = |old: &Option<Tensor>, like: &Tensor| -> Result<Tensor> {
                    let shape = (new_capacity, n_kv_heads, head_dim);
                    let buf = Tensor::zeros(shape, like.dtype(), like.device())?;
                    if let (Some(old), true) = (old, entry.len > 0) {
                        buf.slice_set(&old.narrow(0, 0, entry.len)?, 0, 0)?;
                    }
                    Ok(buf)
                };
                let grown = (grow(old_k, k_new)?, grow(old_v, v_new)?);
                entry.k = Some(grown.0.clone());
                entry.v = Some(grown.1.clone());
                grown
            }
        };
        k.slice_set(&k_new.contiguous()?, 0, entry.len)?;
        v.slice_set(&v_new.contiguous()?, 0, entry.len)?;
        entry.len = needed;
        Ok((k.narrow(0, 0, needed)?, v.narrow(0, 0, needed)?))
    }

    /// Device of the buffers (CPU until the first append).
    pub fn device(&self) -> Device {
        self.layers
            .first()
            .and_then(|l| l.k.as_ref())
            .map_or(Device::Cpu, |k| k.device().clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ModelConfig {
        serde_json::from_value(serde_json::json!({
            "vocab_size": 10, "hidden_size": 8, "intermediate_size": 16,
            "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1,
            "max_position_embeddings": 1024,
        }))
        .expect("test config")
    }

    #[test]
    fn growth_stops_at_the_capacity_limit() -> Result<()> {
        let cfg = config();
        let mut cache = KvCache::new(&cfg);
        cache.limit_capacity(40);
        let kv = Tensor::zeros((1, 1, 4), DType::F32, &Device::Cpu)?;
        for _ in 0..40 {
            for layer in 0..2 {
                cache.append(layer, &kv, &kv)?;
            }
        }
        assert_eq!(cache.len(), 40);
        assert_eq!(cache.capacity(), 40, "16 -> 32 -> 40, not 64");
        assert_eq!(
            cache.allocated_bytes(),
            40 * KvCache::bytes_per_token(&cfg, DType::F32)
        );
        Ok(())
    }
}

//! Linear layers: the one seam where a weight format plugs in ([`Linear`]), and the decorator
//! that adds per-row-group LoRA deltas over it ([`LoraLinear`]).
//!
//! The base product runs once over every token of the batch; each group of rows that shares an
//! adapter then adds `scale * (x A^T) B^T` computed on its own rows only.

use std::ops::Range;

use candle_core::Tensor;

use crate::adapter::LoraAdapter;
use crate::error::Result;
use crate::lora::{LoraPair, Proj};
use crate::mode::ForwardMode;
use crate::small_batch;

/// How a linear layer's weight is stored. Dense tensors today; quantized blocks plug in here.
#[derive(Debug, Clone)]
pub(crate) enum Weight {
    /// A dense `[out, in]` tensor in the compute dtype.
    Dense(Tensor),
}

/// `y = x Wᵀ + b` for one weight format.
#[derive(Debug, Clone)]
pub(crate) struct Linear {
    weight: Weight,
    bias: Option<Tensor>,
}

impl Linear {
    /// A dense layer from `weight: [out, in]` and an optional `bias: [out]`.
    pub(crate) fn dense(weight: Tensor, bias: Option<Tensor>) -> Self {
        Self {
            weight: Weight::Dense(weight),
            bias,
        }
    }

    /// Loads `weight` (and `bias` when `with_bias`) under `vb`, as `candle_nn::linear_b` does.
    pub(crate) fn load(
        in_features: usize,
        out_features: usize,
        with_bias: bool,
        vb: candle_nn::VarBuilder,
    ) -> Result<Self> {
        let weight = vb.get((out_features, in_features), "weight")?;
        let bias = if with_bias {
            Some(vb.get(out_features, "bias")?)
        } else {
            None
        };
        Ok(Self::dense(weight, bias))
    }

    /// The dense weight `[out, in]`.
    pub(crate) fn dense_weight(&self) -> &Tensor {
        match &self.weight {
            Weight::Dense(w) => w,
        }
    }

    /// The bias, if any.
    pub(crate) fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }

    /// `x Wᵀ + b` for `xs: [n, in]` (any dtype the weight has).
    pub(crate) fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let ys = match &self.weight {
            Weight::Dense(w) => xs.matmul(&w.t()?)?,
        };
        Ok(match &self.bias {
            Some(b) => ys.broadcast_add(b)?,
            None => ys,
        })
    }
}

/// A run of consecutive batch rows that all use the same adapter (rows without an adapter are
/// simply not covered by any run).
#[derive(Debug, Clone)]
pub struct AdapterRun<'a> {
    /// Rows of the flattened token batch.
    pub rows: Range<usize>,
    /// The adapter applied to those rows.
    pub adapter: &'a LoraAdapter,
}

/// A base linear layer that LoRA adapters decorate.
#[derive(Debug, Clone)]
pub struct LoraLinear {
    base: Linear,
    layer: usize,
    proj: Proj,
}

impl LoraLinear {
    pub(crate) fn new(base: Linear, layer: usize, proj: Proj) -> Self {
        Self { base, layer, proj }
    }

    /// `x W^T + b`, plus each run's LoRA delta on its own rows. `xs: [n, in]` -> `[n, out]`.
    pub fn forward(
        &self,
        xs: &Tensor,
        runs: &[AdapterRun<'_>],
        mode: ForwardMode,
    ) -> Result<Tensor> {
        let pairs: Vec<(Range<usize>, &LoraPair)> = runs
            .iter()
            .filter_map(|run| Some((run.rows.clone(), run.adapter.pair(self.layer, self.proj)?)))
            .collect();
        let weight = self.base.dense_weight();
        if mode == ForwardMode::Inference
            && small_batch::applies(xs, weight)
            && pairs.iter().all(|(_, p)| small_batch::pair_is_f32(p))
        {
            return small_batch::linear(xs, weight, self.base.bias(), &pairs);
        }
        let ys = self.base.forward(xs)?;
        if pairs.is_empty() {
            return Ok(ys);
        }
        if mode == ForwardMode::Inference && small_batch::applies_in_place(&ys, &pairs) {
            small_batch::add_lora_in_place(&ys, xs, &pairs)?;
            return Ok(ys);
        }
        let (n_rows, out) = ys.dims2()?;
        if let [(rows, pair)] = pairs.as_slice() {
            if rows.start == 0 && rows.end == n_rows {
                return Ok((ys + pair.delta(xs)?)?);
            }
        }
        // Assemble one `[n, out]` delta (zeros where no adapter applies) and add it once.
        let mut parts = Vec::with_capacity(2 * pairs.len() + 1);
        let mut cursor = 0;
        for (rows, pair) in &pairs {
            if rows.start > cursor {
                parts.push(Tensor::zeros(
                    (rows.start - cursor, out),
                    ys.dtype(),
                    ys.device(),
                )?);
            }
            parts.push(pair.delta(&xs.narrow(0, rows.start, rows.len())?)?);
            cursor = rows.end;
        }
        if cursor < n_rows {
            parts.push(Tensor::zeros(
                (n_rows - cursor, out),
                ys.dtype(),
                ys.device(),
            )?);
        }
        Ok((ys + Tensor::cat(&parts, 0)?)?)
    }
}

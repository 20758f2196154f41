//! `LoraLinear`: a frozen base linear layer decorated with per-row-group LoRA deltas.
//!
//! The base GEMM runs once over every token of the batch; each group of rows that shares an
//! adapter then adds `scale * (x A^T) B^T` computed on its own rows only.

use std::ops::Range;

use candle_core::{Module, Tensor};

use crate::adapter::LoraAdapter;
use crate::error::Result;
use crate::qwen2::ForwardMode;
use crate::small_batch;

/// The seven projections of a Qwen2 decoder layer that LoRA can target, named as in
/// Hugging Face (`q_proj`, ..., `down_proj`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proj {
    /// `self_attn.q_proj`
    QProj,
    /// `self_attn.k_proj`
    KProj,
    /// `self_attn.v_proj`
    VProj,
    /// `self_attn.o_proj`
    OProj,
    /// `mlp.gate_proj`
    GateProj,
    /// `mlp.up_proj`
    UpProj,
    /// `mlp.down_proj`
    DownProj,
}

impl Proj {
    /// All projections, in layer order.
    pub const ALL: [Proj; 7] = [
        Proj::QProj,
        Proj::KProj,
        Proj::VProj,
        Proj::OProj,
        Proj::GateProj,
        Proj::UpProj,
        Proj::DownProj,
    ];

    /// Hugging Face module name (`q_proj`).
    pub fn name(self) -> &'static str {
        match self {
            Proj::QProj => "q_proj",
            Proj::KProj => "k_proj",
            Proj::VProj => "v_proj",
            Proj::OProj => "o_proj",
            Proj::GateProj => "gate_proj",
            Proj::UpProj => "up_proj",
            Proj::DownProj => "down_proj",
        }
    }

    /// Parent module inside a decoder layer (`self_attn` or `mlp`).
    pub fn parent(self) -> &'static str {
        match self {
            Proj::QProj | Proj::KProj | Proj::VProj | Proj::OProj => "self_attn",
            Proj::GateProj | Proj::UpProj | Proj::DownProj => "mlp",
        }
    }

    /// Full module path in the base model, e.g. `model.layers.3.self_attn.q_proj`.
    pub fn module_path(self, layer: usize) -> String {
        format!("model.layers.{layer}.{}.{}", self.parent(), self.name())
    }

    /// Parses a Hugging Face module name (`q_proj`).
    pub fn from_name(name: &str) -> Option<Proj> {
        Proj::ALL.into_iter().find(|p| p.name() == name)
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// One LoRA pair for one module: `delta(x) = scale * (x A^T) B^T`.
///
/// Plain tensors: they may be candle `Var`s when a trainer differentiates through them.
#[derive(Debug, Clone)]
pub struct LoraPair {
    /// `lora_A.weight`, shape `[r, in_features]`.
    pub a: Tensor,
    /// `lora_B.weight`, shape `[out_features, r]`.
    pub b: Tensor,
    /// `lora_alpha / r`, or `lora_alpha / sqrt(r)` with rsLoRA.
    pub scale: f64,
}

impl LoraPair {
    /// Rank of the pair.
    pub fn rank(&self) -> usize {
        self.a.dims()[0]
    }

    /// `scale * (x A^T) B^T` for `x: [n, in]`.
    pub fn delta(&self, xs: &Tensor) -> Result<Tensor> {
        // Scaling the narrow [n, r] intermediate is cheaper than scaling the [n, out] result.
        let down = (xs.matmul(&self.a.t()?)? * self.scale)?; // [n, r]
        Ok(down.matmul(&self.b.t()?)?) // [n, out]
    }

    /// `scale * B A`, the dense weight delta of shape `[out, in]`, used to merge.
    pub fn dense_delta(&self) -> Result<Tensor> {
        Ok((self.b.matmul(&self.a)? * self.scale)?)
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

/// A base linear layer (weight `[out, in]`, optional bias) that LoRA adapters can decorate.
#[derive(Debug, Clone)]
pub struct LoraLinear {
    base: candle_nn::Linear,
    layer: usize,
    proj: Proj,
}

impl LoraLinear {
    pub(crate) fn new(base: candle_nn::Linear, layer: usize, proj: Proj) -> Self {
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
        let weight = self.base.weight();
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

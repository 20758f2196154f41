//! The LoRA vocabulary shared by every layer of the crate: which projections can be adapted
//! ([`Proj`]) and one low-rank pair ([`LoraPair`]).

use candle_core::Tensor;

use crate::error::Result;

/// The seven projections of a decoder layer (Qwen2 and Llama alike) that LoRA can target, named as in
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

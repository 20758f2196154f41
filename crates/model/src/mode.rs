//! What a forward call is asked to compute: which kernels, and which logits.

/// Which kernels a forward pass uses. Both compute the same function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ForwardMode {
    /// Fused kernels (RMSNorm, RoPE, attention) where available: for serving.
    #[default]
    Inference,
    /// Only ops that record gradients, so a trainer can differentiate through the pass.
    Differentiable,
}

/// Which logits a sequence wants back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogitsWanted {
    /// Only the last new position: `[1, vocab]`.
    #[default]
    Last,
    /// Every new position: `[n_new, vocab]` (evaluation, training).
    All,
    /// New positions `start..end`: `[end - start, vocab]`. A trainer asks only for the positions
    /// that predict a target token; the LM head over a 49k vocabulary is a fifth of the FLOPs.
    Range {
        /// First wanted position, counted from the first new token.
        start: usize,
        /// One past the last wanted position.
        end: usize,
    },
}

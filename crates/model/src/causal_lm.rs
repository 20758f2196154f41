//! The causal LM of the Qwen2 and Llama families, mirroring transformers' `modeling_qwen2` /
//! `modeling_llama` module by module (they differ only in which projections have biases, a
//! config flag here), with a ragged batched forward: many sequences, each with its own new tokens, KV cache and
//! LoRA adapter, in one pass.

use std::path::Path;

use candle_core::{DType, Device, Tensor, D};
use candle_nn::VarBuilder;

use crate::adapter::LoraAdapter;
use crate::attention::{causal_attention, SeqAttention};
use crate::config::ModelConfig;
use crate::error::{ModelError, Result};
use crate::kv_cache::KvCache;
use crate::linear::{AdapterRun, Linear, LoraLinear};
use crate::lora::Proj;
use crate::mode::{ForwardMode, LogitsWanted};
use crate::small_batch;
use crate::source::ModelSource;

/// One sequence of a batched forward call.
pub struct SeqInput<'a> {
    /// New tokens: a prefill chunk or a single decode token. They take positions
    /// `cache.len()..cache.len() + tokens.len()`.
    pub tokens: &'a [u32],
    /// The sequence's own KV cache; the new keys and values are appended to it.
    pub cache: &'a mut KvCache,
    /// The LoRA adapter for this sequence, or `None` for the base model.
    pub adapter: Option<&'a LoraAdapter>,
    /// Which logits to return.
    pub logits: LogitsWanted,
}

#[derive(Debug, Clone)]
struct RmsNorm {
    weight: Tensor,
    eps: f64,
}

impl RmsNorm {
    fn new(size: usize, eps: f64, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            weight: vb.get(size, "weight")?,
            eps,
        })
    }

    fn forward(&self, xs: &Tensor, mode: ForwardMode) -> Result<Tensor> {
        if mode == ForwardMode::Inference {
            return Ok(candle_nn::ops::rms_norm(xs, &self.weight, self.eps as f32)?);
        }
        // As HF: normalise in f32, cast back, then scale.
        let dtype = xs.dtype();
        let xs32 = xs.to_dtype(DType::F32)?;
        let inv_rms = (xs32.sqr()?.mean_keepdim(D::Minus1)? + self.eps)?
            .sqrt()?
            .recip()?;
        Ok(xs32
            .broadcast_mul(&inv_rms)?
            .to_dtype(dtype)?
            .broadcast_mul(&self.weight)?)
    }
}

/// cos/sin tables of rotate-half (NeoX) RoPE, `[max_positions, head_dim / 2]`, computed in f64.
#[derive(Debug, Clone)]
struct RotaryEmbedding {
    cos: Tensor,
    sin: Tensor,
}

impl RotaryEmbedding {
    fn new(cfg: &ModelConfig, dtype: DType, device: &Device) -> Result<Self> {
        let dim = cfg.head_dim();
        let theta = cfg.rope_theta();
        let max_pos = cfg.max_positions();
        let inv_freq: Vec<f64> = (0..dim / 2)
            .map(|i| 1.0 / theta.powf((2 * i) as f64 / dim as f64))
            .collect();
        let mut cos = Vec::with_capacity(max_pos * dim / 2);
        let mut sin = Vec::with_capacity(max_pos * dim / 2);
        for pos in 0..max_pos {
            for f in &inv_freq {
                let angle = pos as f64 * f;
                cos.push(angle.cos() as f32);
                sin.push(angle.sin() as f32);
            }
        }
        let table = |v| -> Result<Tensor> {
            Ok(Tensor::from_vec(v, (max_pos, dim / 2), device)?.to_dtype(dtype)?)
        };
        Ok(Self {
            cos: table(cos)?,
            sin: table(sin)?,
        })
    }

    /// Rotates `xs: [n, heads, head_dim]`, token `t` at `positions[t]`.
    fn apply(&self, xs: &Tensor, positions: &Tensor, mode: ForwardMode) -> Result<Tensor> {
        let cos = self.cos.index_select(positions, 0)?; // [n, d/2]
        let sin = self.sin.index_select(positions, 0)?;
        if mode == ForwardMode::Inference {
            let (n, heads, dim) = xs.dims3()?;
            let rotated = candle_nn::rotary_emb::rope_thd(
                &xs.reshape((1, n, heads, dim))?.contiguous()?,
                &cos,
                &sin,
            )?;
            return Ok(rotated.reshape((n, heads, dim))?);
        }
        let cos = Tensor::cat(&[&cos, &cos], D::Minus1)?.unsqueeze(1)?; // [n, 1, d]
        let sin = Tensor::cat(&[&sin, &sin], D::Minus1)?.unsqueeze(1)?;
        let half = xs.dim(D::Minus1)? / 2;
        let x1 = xs.narrow(D::Minus1, 0, half)?;
        let x2 = xs.narrow(D::Minus1, half, half)?;
        let rotate_half = Tensor::cat(&[&x2.neg()?, &x1], D::Minus1)?;
        Ok((xs.broadcast_mul(&cos)? + rotate_half.broadcast_mul(&sin)?)?)
    }
}

/// A candle error while building the model is a tensor that is missing or misshapen.
fn weights_error(path: &Path, e: ModelError) -> ModelError {
    match e {
        ModelError::Candle(err) => ModelError::InvalidWeights {
            path: path.to_path_buf(),
            reason: err.to_string(),
        },
        other => other,
    }
}

/// One projection of a decoder layer, with the bias its architecture gives it.
fn lora_linear(cfg: &ModelConfig, layer: usize, proj: Proj, vb: &VarBuilder) -> Result<LoraLinear> {
    let (i, o) = (cfg.proj_in_features(proj), cfg.proj_out_features(proj));
    let base = Linear::load(i, o, cfg.proj_has_bias(proj), vb.pp(proj.name()))?;
    Ok(LoraLinear::new(base, layer, proj))
}

#[derive(Debug, Clone)]
struct Attention {
    q_proj: LoraLinear,
    k_proj: LoraLinear,
    v_proj: LoraLinear,
    o_proj: LoraLinear,
    n_heads: usize,
    n_kv_heads: usize,
    head_dim: usize,
}

/// Per-forward facts shared by every layer.
struct BatchLayout<'a> {
    positions: Tensor,
    runs: Vec<AdapterRun<'a>>,
    seq_rows: Vec<std::ops::Range<usize>>,
    mode: ForwardMode,
}

impl Attention {
    fn new(cfg: &ModelConfig, layer: usize, vb: VarBuilder) -> Result<Self> {
        let lin = |proj: Proj| lora_linear(cfg, layer, proj, &vb);
        Ok(Self {
            q_proj: lin(Proj::QProj)?,
            k_proj: lin(Proj::KProj)?,
            v_proj: lin(Proj::VProj)?,
            o_proj: lin(Proj::OProj)?,
            n_heads: cfg.num_attention_heads,
            n_kv_heads: cfg.num_kv_heads(),
            head_dim: cfg.head_dim(),
        })
    }

    fn forward(
        &self,
        xs: &Tensor,
        layer: usize,
        rope: &RotaryEmbedding,
        caches: &mut [&mut KvCache],
        batch: &BatchLayout,
    ) -> Result<Tensor> {
        let (n, _) = xs.dims2()?;
        let runs = &batch.runs;
        let q =
            self.q_proj
                .forward(xs, runs, batch.mode)?
                .reshape((n, self.n_heads, self.head_dim))?;
        let k = self.k_proj.forward(xs, runs, batch.mode)?.reshape((
            n,
            self.n_kv_heads,
            self.head_dim,
        ))?;
        let v = self.v_proj.forward(xs, runs, batch.mode)?.reshape((
            n,
            self.n_kv_heads,
            self.head_dim,
        ))?;
        let q = rope.apply(&q, &batch.positions, batch.mode)?;
        let k = rope.apply(&k, &batch.positions, batch.mode)?;

        let mut seqs = Vec::with_capacity(caches.len());
        for (cache, rows) in caches.iter_mut().zip(&batch.seq_rows) {
            let k_new = k.narrow(0, rows.start, rows.len())?;
            let v_new = v.narrow(0, rows.start, rows.len())?;
            let was_empty = cache.layer_len(layer) == 0;
            let (k_all, v_all) = cache.append(layer, &k_new, &v_new)?;
            // A trainer's sequence starts on an empty cache: attend to the tensors themselves so
            // the gradient flows through k and v (the cache copy is detached).
            let (k_all, v_all) = if batch.mode == ForwardMode::Differentiable && was_empty {
                (k_new, v_new)
            } else {
                (k_all, v_all)
            };
            seqs.push(SeqAttention {
                rows: rows.clone(),
                k: k_all,
                v: v_all,
            });
        }
        let fused = batch.mode == ForwardMode::Inference;
        let attn = causal_attention(&q, &seqs, fused)?; // [n, heads * head_dim]
        self.o_proj.forward(&attn, runs, batch.mode)
    }
}

#[derive(Debug, Clone)]
struct Mlp {
    gate_proj: LoraLinear,
    up_proj: LoraLinear,
    down_proj: LoraLinear,
}

impl Mlp {
    fn new(cfg: &ModelConfig, layer: usize, vb: VarBuilder) -> Result<Self> {
        let lin = |proj: Proj| lora_linear(cfg, layer, proj, &vb);
        Ok(Self {
            gate_proj: lin(Proj::GateProj)?,
            up_proj: lin(Proj::UpProj)?,
            down_proj: lin(Proj::DownProj)?,
        })
    }

    fn forward(&self, xs: &Tensor, runs: &[AdapterRun], mode: ForwardMode) -> Result<Tensor> {
        let gate = self.gate_proj.forward(xs, runs, mode)?.silu()?;
        let up = self.up_proj.forward(xs, runs, mode)?;
        self.down_proj.forward(&(gate * up)?, runs, mode)
    }
}

#[derive(Debug, Clone)]
struct DecoderLayer {
    self_attn: Attention,
    mlp: Mlp,
    input_layernorm: RmsNorm,
    post_attention_layernorm: RmsNorm,
}

impl DecoderLayer {
    fn new(cfg: &ModelConfig, layer: usize, vb: VarBuilder) -> Result<Self> {
        let (h, eps) = (cfg.hidden_size, cfg.rms_norm_eps);
        Ok(Self {
            self_attn: Attention::new(cfg, layer, vb.pp("self_attn"))?,
            mlp: Mlp::new(cfg, layer, vb.pp("mlp"))?,
            input_layernorm: RmsNorm::new(h, eps, vb.pp("input_layernorm"))?,
            post_attention_layernorm: RmsNorm::new(h, eps, vb.pp("post_attention_layernorm"))?,
        })
    }
}

/// A causal language model (`Qwen2ForCausalLM` or `LlamaForCausalLM`).
///
/// Holds only frozen weights: KV caches and adapters are passed to [`CausalLm::forward`], so one
/// model serves any number of sequences and adapters at once.
#[derive(Debug, Clone)]
pub struct CausalLm {
    embed_tokens: Tensor,
    layers: Vec<DecoderLayer>,
    norm: RmsNorm,
    lm_head: Tensor,
    rotary: RotaryEmbedding,
    config: ModelConfig,
    dtype: DType,
    device: Device,
}

impl CausalLm {
    /// Builds the model from a `VarBuilder` whose names follow the HF checkpoint
    /// (`model.layers.0.self_attn.q_proj.weight`...). For training, pass a `VarMap`-backed builder.
    pub fn new(cfg: &ModelConfig, vb: VarBuilder) -> Result<Self> {
        cfg.validate()
            .map_err(|reason| ModelError::UnsupportedConfig {
                path: "config.json".into(),
                reason,
            })?;
        let vb_m = vb.pp("model");
        let embed_tokens = vb_m.get((cfg.vocab_size, cfg.hidden_size), "embed_tokens.weight")?;
        let layers = (0..cfg.num_hidden_layers)
            .map(|l| DecoderLayer::new(cfg, l, vb_m.pp(format!("layers.{l}"))))
            .collect::<Result<Vec<_>>>()?;
        let norm = RmsNorm::new(cfg.hidden_size, cfg.rms_norm_eps, vb_m.pp("norm"))?;
        let lm_head = if cfg.tie_word_embeddings {
            embed_tokens.clone()
        } else {
            vb.get((cfg.vocab_size, cfg.hidden_size), "lm_head.weight")?
        };
        let rotary = RotaryEmbedding::new(cfg, vb.dtype(), vb.device())?;
        Ok(Self {
            embed_tokens,
            layers,
            norm,
            lm_head,
            rotary,
            config: cfg.clone(),
            dtype: vb.dtype(),
            device: vb.device().clone(),
        })
    }

    /// Loads a checkpoint directory or a GGUF file, computing in `dtype` on `device`.
    pub fn load(path: impl AsRef<Path>, dtype: DType, device: &Device) -> Result<Self> {
        Self::from_source(&ModelSource::open(path)?, dtype, device)
    }

    /// Loads the weights of an opened checkpoint directory or GGUF file.
    pub fn from_source(source: &ModelSource, dtype: DType, device: &Device) -> Result<Self> {
        let vb = source.var_builder(dtype, device)?;
        Self::new(source.config(), vb).map_err(|e| weights_error(source.path(), e))
    }

    /// The model's config.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The dtype computations run in.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// An empty KV cache for one sequence of this model.
    pub fn new_cache(&self) -> KvCache {
        KvCache::new(&self.config)
    }

    /// Runs every sequence's new tokens through the model in one pass and returns, per sequence
    /// in input order, the logits it asked for (`[1, vocab]` or `[n_new, vocab]`, in f32).
    ///
    /// Tokens of all sequences are flattened so that each linear layer is one GEMM; sequences are
    /// grouped by adapter so each adapter's LoRA delta is one pair of small GEMMs; attention runs
    /// per sequence against its own cache. On error every cache is left as it was.
    pub fn forward(&self, batch: &mut [SeqInput<'_>], mode: ForwardMode) -> Result<Vec<Tensor>> {
        let lens_before: Vec<usize> = batch.iter().map(|s| s.cache.len()).collect();
        let result = self.forward_inner(batch, mode);
        if result.is_err() {
            for (seq, len) in batch.iter_mut().zip(lens_before) {
                seq.cache.truncate(len);
            }
        }
        result
    }

    fn forward_inner(&self, batch: &mut [SeqInput<'_>], mode: ForwardMode) -> Result<Vec<Tensor>> {
        self.check_batch(batch)?;
        // Sequences sharing an adapter become one contiguous run of rows (base-model rows first).
        let mut items: Vec<(usize, &mut SeqInput<'_>)> = batch.iter_mut().enumerate().collect();
        items.sort_by_key(|(_, seq)| seq.adapter.map(|a| a as *const LoraAdapter as usize));

        let mut tokens = Vec::new();
        let mut positions = Vec::new();
        let mut seq_rows = Vec::with_capacity(items.len());
        let mut runs: Vec<AdapterRun> = Vec::new();
        for (_, seq) in &items {
            let (start, offset) = (tokens.len(), seq.cache.len());
            tokens.extend_from_slice(seq.tokens);
            positions.extend((offset..offset + seq.tokens.len()).map(|p| p as u32));
            let rows = start..tokens.len();
            if let Some(adapter) = seq.adapter {
                match runs.last_mut() {
                    Some(run) if std::ptr::eq(run.adapter, adapter) => run.rows.end = rows.end,
                    _ => runs.push(AdapterRun {
                        rows: rows.clone(),
                        adapter,
                    }),
                }
            }
            seq_rows.push(rows);
        }
        let n_tokens = tokens.len();
        let token_ids = Tensor::from_vec(tokens, n_tokens, &self.device)?;
        let layout = BatchLayout {
            positions: Tensor::from_vec(positions, n_tokens, &self.device)?,
            runs,
            seq_rows,
            mode,
        };
        let wanted: Vec<(usize, LogitsWanted)> =
            items.iter().map(|(i, s)| (*i, s.logits)).collect();
        let mut caches: Vec<&mut KvCache> = items.into_iter().map(|(_, s)| &mut *s.cache).collect();

        let mut xs = self.embed_tokens.index_select(&token_ids, 0)?; // [n, hidden]
        for (l, layer) in self.layers.iter().enumerate() {
            let residual = &xs;
            let h = layer.input_layernorm.forward(&xs, mode)?;
            let h = layer
                .self_attn
                .forward(&h, l, &self.rotary, &mut caches, &layout)?;
            let xs_mid = (residual + h)?;
            let h = layer.post_attention_layernorm.forward(&xs_mid, mode)?;
            let h = layer.mlp.forward(&h, &layout.runs, mode)?;
            xs = (xs_mid + h)?;
        }

        // Only the rows whose logits are wanted go through the final norm and the LM head.
        let mut wanted_rows = Vec::new();
        let mut slices = vec![(0usize, 0usize); wanted.len()];
        for ((i, logits_wanted), rows) in wanted.iter().zip(&layout.seq_rows) {
            let start = wanted_rows.len();
            match logits_wanted {
                LogitsWanted::Last => wanted_rows.push(rows.end as u32 - 1),
                LogitsWanted::All => wanted_rows.extend(rows.start as u32..rows.end as u32),
                LogitsWanted::Range { start, end } => {
                    wanted_rows.extend((rows.start + start) as u32..(rows.start + end) as u32)
                }
            }
            slices[*i] = (start, wanted_rows.len() - start);
        }
        let n_wanted = wanted_rows.len();
        let selected = if n_wanted == n_tokens {
            xs
        } else {
            xs.index_select(&Tensor::from_vec(wanted_rows, n_wanted, &self.device)?, 0)?
        };
        let normed = self.norm.forward(&selected, mode)?;
        let logits =
            if mode == ForwardMode::Inference && small_batch::applies(&normed, &self.lm_head) {
                small_batch::linear(&normed, &self.lm_head, None, &[])?
            } else {
                normed.matmul(&self.lm_head.t()?)?.to_dtype(DType::F32)?
            }; // [n_wanted, vocab]
        slices
            .into_iter()
            .map(|(start, len)| Ok(logits.narrow(0, start, len)?))
            .collect()
    }

    fn check_batch(&self, batch: &[SeqInput<'_>]) -> Result<()> {
        if batch.is_empty() {
            return Err(ModelError::InvalidInput("empty batch".into()));
        }
        for (i, seq) in batch.iter().enumerate() {
            if seq.tokens.is_empty() {
                return Err(ModelError::InvalidInput(format!(
                    "sequence {i} has no new tokens"
                )));
            }
            if let LogitsWanted::Range { start, end } = seq.logits {
                if start >= end || end > seq.tokens.len() {
                    return Err(ModelError::InvalidInput(format!(
                        "sequence {i} wants logits {start}..{end} of {} new tokens",
                        seq.tokens.len()
                    )));
                }
            }
            let end = seq.cache.len() + seq.tokens.len();
            if end > self.config.max_positions() {
                return Err(ModelError::InvalidInput(format!(
                    "sequence {i} would reach position {end}, past max_position_embeddings {}",
                    self.config.max_positions()
                )));
            }
            if let Some(&bad) = seq
                .tokens
                .iter()
                .find(|&&t| t as usize >= self.config.vocab_size)
            {
                return Err(ModelError::InvalidInput(format!(
                    "sequence {i} has token id {bad} outside the vocabulary ({})",
                    self.config.vocab_size
                )));
            }
            if let Some(adapter) = seq.adapter {
                adapter.check_fits(&self.config)?;
            }
        }
        Ok(())
    }
}

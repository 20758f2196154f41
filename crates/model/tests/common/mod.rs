//! Shared helpers for the golden tests: fixture paths and tensor comparisons.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;

use switchboard_model::{
    CausalLm, DType, Device, KvCache, LogitsWanted, LoraAdapter, SeqInput, Tensor,
};

/// Max abs logit difference allowed against transformers + peft (golden README).
pub const LOGITS_TOL: f32 = 1e-4;

pub fn golden() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/golden")
}

pub fn load_model(dir: &str) -> CausalLm {
    CausalLm::load(golden().join(dir), DType::F32, &Device::Cpu).expect("golden model loads")
}

pub fn load_adapter(model: &CausalLm, name: &str) -> LoraAdapter {
    LoraAdapter::load(
        golden().join(name),
        model.config(),
        DType::F32,
        &Device::Cpu,
    )
    .expect("golden adapter loads")
}

/// The tensors of `expected_<variant>.safetensors`.
pub struct Expected(HashMap<String, Tensor>);

impl Expected {
    pub fn load(variant: &str) -> Self {
        let path = golden().join(format!("expected_{variant}.safetensors"));
        Self(candle_core::safetensors::load(path, &Device::Cpu).expect("expected tensors load"))
    }

    pub fn tensor(&self, key: &str) -> &Tensor {
        self.0
            .get(key)
            .unwrap_or_else(|| panic!("golden has no {key}"))
    }

    pub fn ids(&self, key: &str) -> Vec<u32> {
        let ids = self.tensor(key).to_vec1::<i64>().expect("ids are int64");
        ids.into_iter().map(|i| i as u32).collect()
    }

    /// The token stream prompt ++ greedy continuation of prompt `i`.
    pub fn stream(&self, i: usize) -> Vec<u32> {
        let mut ids = self.ids(&format!("prompt{i}.input_ids"));
        ids.extend(self.ids(&format!("prompt{i}.generated_ids")));
        ids
    }

    /// Reference logits `[vocab]` at position `p` of [`Expected::stream`]`(i)`: from the full
    /// prompt pass before the last prompt token, from the greedy steps after.
    pub fn logits_at(&self, i: usize, p: usize) -> Tensor {
        let prompt_len = self.ids(&format!("prompt{i}.input_ids")).len();
        if p + 1 < prompt_len {
            self.tensor(&format!("prompt{i}.logits"))
                .get(p)
                .expect("position in prompt")
        } else {
            let step = p + 1 - prompt_len;
            self.tensor(&format!("prompt{i}.generated_step_logits"))
                .get(step)
                .expect("step")
        }
    }
}

pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    let a = a.flatten_all().expect("flatten");
    let b = b.flatten_all().expect("flatten");
    assert_eq!(a.dims(), b.dims(), "shapes differ");
    (a - b)
        .expect("sub")
        .abs()
        .expect("abs")
        .max_all()
        .expect("max")
        .to_scalar::<f32>()
        .expect("f32")
}

pub fn argmax(logits: &Tensor) -> u32 {
    logits
        .flatten_all()
        .expect("flatten")
        .argmax(0)
        .expect("argmax")
        .to_scalar::<u32>()
        .expect("u32")
}

/// Runs one sequence alone: prefill `prompt`, then `steps` greedy decode steps. Returns the
/// logits of every step (prefill last position first) and the chosen ids.
pub fn greedy_alone(
    model: &CausalLm,
    adapter: Option<&LoraAdapter>,
    prompt: &[u32],
    steps: usize,
) -> (Vec<Tensor>, Vec<u32>) {
    let mut cache: KvCache = model.new_cache();
    let mut next: Vec<u32> = prompt.to_vec();
    let (mut all_logits, mut ids) = (Vec::new(), Vec::new());
    for _ in 0..steps {
        let mut batch = [SeqInput {
            tokens: &next,
            cache: &mut cache,
            adapter,
            logits: LogitsWanted::Last,
        }];
        let logits = model
            .forward(&mut batch, switchboard_model::ForwardMode::Inference)
            .expect("forward")
            .remove(0);
        let id = argmax(&logits);
        all_logits.push(logits);
        ids.push(id);
        next = vec![id];
    }
    (all_logits, ids)
}

/// Logits at every position of `prompt`, prefilled alone.
pub fn all_logits(model: &CausalLm, adapter: Option<&LoraAdapter>, prompt: &[u32]) -> Tensor {
    let mut cache = model.new_cache();
    let mut batch = [SeqInput {
        tokens: prompt,
        cache: &mut cache,
        adapter,
        logits: LogitsWanted::All,
    }];
    model
        .forward(&mut batch, switchboard_model::ForwardMode::Inference)
        .expect("forward")
        .remove(0)
}

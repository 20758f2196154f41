//! Engine test fixtures: the golden tiny model (context widened so requests can run long) with
//! four adapters: the two golden PEFT adapters and two more derived from them.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_engine::{
    AdapterRegistry, Engine, EngineConfig, EngineStats, GenerateRequest, Prompt, RegistryConfig,
    SamplingParams, TextTokenizer,
};
use switchboard_model::{CausalLm, DType, Device, Tensor};
use tempfile::TempDir;

pub fn golden() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/golden")
}

/// The golden prompts' greedy continuations (20 tokens) per variant, from transformers + peft.
pub fn golden_generations(variant: &str) -> Vec<(Vec<u32>, Vec<u32>)> {
    let path = golden().join(format!("expected_{variant}.json"));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let ids = |v: &serde_json::Value| -> Vec<u32> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect()
    };
    json["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (ids(&p["input_ids"]), ids(&p["generated_ids"])))
        .collect()
}

/// A model directory and an adapters directory in a temp dir.
pub struct Fixture {
    pub dir: TempDir,
    pub model: PathBuf,
    pub adapters: PathBuf,
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// Writes a copy of the adapter in `from` whose `lora_B` tensors are multiplied by `factor`.
pub fn write_scaled_adapter(from: &Path, to: &Path, factor: f64) {
    copy_dir(from, to);
    let weights = from.join("adapter_model.safetensors");
    let tensors = candle_core::safetensors::load(&weights, &candle_core::Device::Cpu).unwrap();
    let scaled: HashMap<String, Tensor> = tensors
        .into_iter()
        .map(|(k, t)| {
            let t = if k.contains("lora_B") {
                t.affine(factor, 0.0).unwrap()
            } else {
                t
            };
            (k, t)
        })
        .collect();
    candle_core::safetensors::save(&scaled, to.join("adapter_model.safetensors")).unwrap();
}

impl Fixture {
    /// Golden base with a context of `context` positions; adapters `a`, `b` (golden), `c` (a's
    /// delta × -1.5) and `d` (b's delta × 3).
    pub fn new(context: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("base");
        copy_dir(&golden().join("base"), &model);
        let config_path = model.join("config.json");
        let mut config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
        config["max_position_embeddings"] = context.into();
        std::fs::write(&config_path, config.to_string()).unwrap();

        let adapters = dir.path().join("adapters");
        copy_dir(&golden().join("adapter_a"), &adapters.join("a"));
        copy_dir(&golden().join("adapter_b"), &adapters.join("b"));
        write_scaled_adapter(&golden().join("adapter_a"), &adapters.join("c"), -1.5);
        write_scaled_adapter(&golden().join("adapter_b"), &adapters.join("d"), 3.0);
        Self {
            dir,
            model,
            adapters,
        }
    }

    pub fn engine(&self, config: EngineConfig) -> Engine {
        Engine::from_paths(
            &self.model,
            Some((&self.adapters, switchboard_engine::AdapterDirPolicy::Strict)),
            RegistryConfig::default(),
            config,
        )
        .unwrap()
    }

    /// The model and tokenizer loaded directly, for references computed without the engine.
    pub fn model(&self) -> (CausalLm, TextTokenizer) {
        (
            CausalLm::load(&self.model, DType::F32, &Device::Cpu).unwrap(),
            TextTokenizer::from_dir(&self.model).unwrap(),
        )
    }

    pub fn registry(&self) -> Arc<AdapterRegistry> {
        let config =
            switchboard_model::ModelConfig::from_file(&self.model.join("config.json")).unwrap();
        Arc::new(AdapterRegistry::new(
            config,
            DType::F32,
            Device::Cpu,
            RegistryConfig::default(),
        ))
    }
}

pub fn greedy(prompt: &str, adapter: Option<&str>, max_tokens: usize) -> GenerateRequest {
    GenerateRequest::new(
        Prompt::Text(prompt.into()),
        adapter,
        SamplingParams {
            ignore_eos: true,
            ..SamplingParams::greedy(max_tokens)
        },
    )
}

/// Polls the engine's stats until `done` holds (or panics after 20 s).
pub fn wait_for(engine: &Engine, what: &str, done: impl Fn(&EngineStats) -> bool) -> EngineStats {
    let start = Instant::now();
    loop {
        let stats = engine.stats();
        if done(&stats) {
            return stats;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}: {stats:?}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

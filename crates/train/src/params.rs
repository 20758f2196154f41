//! The trainable variables: LoRA A/B pairs over a frozen base, or every weight of the model.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarBuilder;
use switchboard_model::{
    AdapterConfig, CausalLm, Checkpoint, LoraAdapter, LoraPair, ModelConfig, Proj,
};

use crate::error::{Result, TrainError};
use crate::rng::{stream, Rng};

/// One targeted module's pair of variables.
struct LoraSlot {
    layer: usize,
    proj: Proj,
    a: Var,
    b: Var,
    scale: f64,
}

/// LoRA variables for every targeted module, named with PEFT's keys
/// (`base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight`).
pub struct LoraParams {
    config: AdapterConfig,
    base: ModelConfig,
    slots: Vec<LoraSlot>,
}

fn peft_key(layer: usize, proj: Proj, matrix: &str) -> String {
    format!(
        "base_model.model.{}.{matrix}.weight",
        proj.module_path(layer)
    )
}

impl LoraParams {
    /// PEFT's initialisation: A uniform in `±1/sqrt(in_features)` (Kaiming-uniform with
    /// `a = sqrt(5)`), B zero, so training starts from the base model's function.
    /// Values come from `seed`, whatever the device.
    pub fn init(
        base: &ModelConfig,
        config: AdapterConfig,
        seed: u64,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let targets: Vec<Proj> = match &config.target_modules {
            Some(switchboard_model::TargetModules::List(names)) => {
                names.iter().filter_map(|n| Proj::from_name(n)).collect()
            }
            _ => Vec::new(),
        };
        if targets.is_empty() {
            return Err(TrainError::setting(
                "target_modules",
                "selects no projection",
            ));
        }
        let mut slots = Vec::new();
        for layer in 0..base.num_hidden_layers {
            for &proj in &targets {
                let (r, scale) = config.rank_and_scale(&proj.module_path(layer))?;
                let (in_f, out_f) = (base.proj_in_features(proj), base.proj_out_features(proj));
                let bound = 1.0 / (in_f as f64).sqrt();
                let mut rng = Rng::derived(seed, &[stream::INIT, layer as u64, proj as u64]);
                let values: Vec<f32> = (0..r * in_f)
                    .map(|_| ((2.0 * rng.next_f64() - 1.0) * bound) as f32)
                    .collect();
                let a = Tensor::from_vec(values, (r, in_f), device)?.to_dtype(dtype)?;
                let b = Tensor::zeros((out_f, r), dtype, device)?;
                slots.push(LoraSlot {
                    layer,
                    proj,
                    a: Var::from_tensor(&a)?,
                    b: Var::from_tensor(&b)?,
                    scale,
                });
            }
        }
        Ok(Self {
            config,
            base: base.clone(),
            slots,
        })
    }

    /// The adapter config that will be written.
    pub fn config(&self) -> &AdapterConfig {
        &self.config
    }

    /// Every variable with its PEFT key, A before B, layer by layer.
    pub fn vars(&self) -> Vec<(String, Var)> {
        self.slots
            .iter()
            .flat_map(|s| {
                [
                    (peft_key(s.layer, s.proj, "lora_A"), s.a.clone()),
                    (peft_key(s.layer, s.proj, "lora_B"), s.b.clone()),
                ]
            })
            .collect()
    }

    fn build(
        &self,
        name: &str,
        mut make_a: impl FnMut(&LoraSlot) -> Result<Tensor>,
        detach: bool,
    ) -> Result<LoraAdapter> {
        let mut layers: Vec<[Option<LoraPair>; 7]> =
            vec![Default::default(); self.base.num_hidden_layers];
        for slot in &self.slots {
            let b = slot.b.as_tensor();
            let pair = LoraPair {
                a: make_a(slot)?,
                b: if detach { b.detach() } else { b.clone() },
                scale: slot.scale,
            };
            layers[slot.layer][slot.proj as usize] = Some(pair);
        }
        Ok(LoraAdapter::from_pairs(
            name.to_string(),
            self.config.clone(),
            layers,
            &self.base,
        )?)
    }

    /// An adapter over the variables themselves: a forward through it records gradients.
    pub fn adapter(&self) -> Result<LoraAdapter> {
        self.build("training", |s| Ok(s.a.as_tensor().clone()), false)
    }

    /// An adapter for one training sequence with LoRA dropout of probability `p`.
    ///
    /// PEFT drops elements of the LoRA input `x` before `lora_A`. The model's LoRA hook takes
    /// only A and B, so here whole input features are dropped instead, by zeroing columns of A
    /// (scaled by `1 / (1 - p)`), with a fresh mask per sequence and step.
    pub(crate) fn adapter_with_dropout(&self, p: f64, rng: &mut Rng) -> Result<LoraAdapter> {
        self.build(
            "training",
            |s| {
                let a = s.a.as_tensor();
                let in_f = a.dims()[1];
                let keep: Vec<f32> = (0..in_f)
                    .map(|_| {
                        if rng.next_f64() < p {
                            0.0
                        } else {
                            (1.0 / (1.0 - p)) as f32
                        }
                    })
                    .collect();
                let mask = Tensor::from_vec(keep, (1, in_f), a.device())?.to_dtype(a.dtype())?;
                Ok(a.broadcast_mul(&mask)?)
            },
            false,
        )
    }

    /// An adapter over detached copies, for evaluation and saving.
    pub fn frozen_adapter(&self, name: &str) -> Result<LoraAdapter> {
        self.build(name, |s| Ok(s.a.as_tensor().detach()), true)
    }
}

/// Every weight of a checkpoint as a variable, and the model built over them.
pub struct FullParams {
    model: CausalLm,
    vars: Vec<(String, Var)>,
}

impl FullParams {
    /// Loads a checkpoint's tensors into variables in `dtype`.
    pub fn load(checkpoint: &Checkpoint, dtype: DType, device: &Device) -> Result<Self> {
        let mut vars = Vec::new();
        for file in &checkpoint.weight_files {
            let tensors = candle_core::safetensors::load(file, device)?;
            for (name, tensor) in tensors {
                vars.push((name, Var::from_tensor(&tensor.to_dtype(dtype)?)?));
            }
        }
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        // A builder over the variables' own tensors: the model then computes with them, so the
        // gradient of its output reaches each variable.
        let by_name: HashMap<String, Tensor> = vars
            .iter()
            .map(|(n, v)| (n.clone(), v.as_tensor().clone()))
            .collect();
        let vb = VarBuilder::from_tensors(by_name, dtype, device);
        let model = CausalLm::new(&checkpoint.config, vb)?;
        Ok(Self { model, vars })
    }

    /// The model computing with the variables.
    pub fn model(&self) -> &CausalLm {
        &self.model
    }

    /// Every variable with its checkpoint name.
    pub fn vars(&self) -> Vec<(String, Var)> {
        self.vars.clone()
    }

    /// Writes the current weights as `model.safetensors` (in the training dtype), atomically.
    pub fn save_weights(&self, path: &Path) -> Result<()> {
        let tensors: Vec<(String, Tensor)> = self
            .vars
            .iter()
            .map(|(n, v)| (n.clone(), v.as_tensor().detach()))
            .collect();
        let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
        Ok(switchboard_model::write_safetensors(
            path,
            &tensors,
            Some(metadata),
        )?)
    }
}

/// Sets each variable to the tensor saved under its name.
pub(crate) fn restore_vars(
    vars: &[(String, Var)],
    saved: &HashMap<String, Tensor>,
    path: &Path,
) -> Result<()> {
    for (name, var) in vars {
        let tensor = saved.get(name).ok_or_else(|| TrainError::Resume {
            path: path.to_path_buf(),
            reason: format!("the checkpoint has no tensor {name}"),
        })?;
        if tensor.dims() != var.dims() {
            return Err(TrainError::Resume {
                path: path.to_path_buf(),
                reason: format!(
                    "{name} has shape {:?}, expected {:?}",
                    tensor.dims(),
                    var.dims()
                ),
            });
        }
        var.set(&tensor.to_device(var.device())?.to_dtype(var.dtype())?)?;
    }
    Ok(())
}

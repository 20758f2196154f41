//! PEFT LoRA adapters: `adapter_config.json` + `adapter_model.safetensors`, validated against
//! the base model, held as plain tensors that any number of threads can share behind an `Arc`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::checkpoint::check_safetensors;
use crate::config::ModelConfig;
use crate::error::{ModelError, Result};
use crate::lora::{LoraPair, Proj};

/// `target_modules`: a list of module names (suffix match) or one regex (full match).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TargetModules {
    /// Names; a module is targeted when its path is a name or ends with `.name`.
    List(Vec<String>),
    /// A regex that must match the whole module path; `"all-linear"` means every projection.
    Regex(String),
}

/// The fields of a PEFT `adapter_config.json` that matter here. Unknown keys are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdapterConfig {
    /// `"LORA"`.
    #[serde(default)]
    pub peft_type: Option<String>,
    /// Default rank.
    #[serde(default = "default_r")]
    pub r: usize,
    /// Default alpha.
    #[serde(default = "default_alpha")]
    pub lora_alpha: f64,
    /// Which modules carry LoRA.
    #[serde(default)]
    pub target_modules: Option<TargetModules>,
    /// Scale by `alpha / sqrt(r)` instead of `alpha / r`.
    #[serde(default)]
    pub use_rslora: bool,
    /// Per-module rank overrides: regex key -> rank (first matching key wins, in file order).
    #[serde(default, deserialize_with = "null_as_default")]
    pub rank_pattern: serde_json::Map<String, serde_json::Value>,
    /// Per-module alpha overrides.
    #[serde(default, deserialize_with = "null_as_default")]
    pub alpha_pattern: serde_json::Map<String, serde_json::Value>,
    /// Conv1D-style transposed weights; unsupported when true.
    #[serde(default)]
    pub fan_in_fan_out: bool,
    /// `"none"`; trained biases are unsupported.
    #[serde(default = "default_bias")]
    pub bias: String,
    /// DoRA; unsupported when true.
    #[serde(default)]
    pub use_dora: Option<bool>,
    /// Fully trained extra modules; unsupported when non-empty.
    #[serde(default)]
    pub modules_to_save: Option<Vec<String>>,
    /// LoRA-B bias; unsupported when true.
    #[serde(default)]
    pub lora_bias: Option<bool>,
    /// Layer subset; unsupported when set.
    #[serde(default)]
    pub layers_to_transform: Option<serde_json::Value>,
    /// Layer replication; unsupported when set.
    #[serde(default)]
    pub layer_replication: Option<serde_json::Value>,
    /// Trainable token rows; unsupported when set.
    #[serde(default)]
    pub trainable_token_indices: Option<serde_json::Value>,
    /// LoRA on raw parameters; unsupported when set.
    #[serde(default)]
    pub target_parameters: Option<serde_json::Value>,
    /// Modules excluded from `target_modules` (same matching rules).
    #[serde(default)]
    pub exclude_modules: Option<TargetModules>,
    /// The base the adapter was trained on (informational; often a relative or hub name).
    #[serde(default)]
    pub base_model_name_or_path: Option<String>,
    /// `"CAUSAL_LM"` for these adapters.
    #[serde(default)]
    pub task_type: Option<String>,
}

fn default_r() -> usize {
    8
}
fn default_alpha() -> f64 {
    8.0
}
fn default_bias() -> String {
    "none".into()
}
fn null_as_default<'de, D, T>(d: D) -> std::result::Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

impl AdapterConfig {
    /// A plain LoRA config targeting `modules` with one rank and alpha.
    pub fn new(r: usize, lora_alpha: f64, modules: &[Proj]) -> Self {
        Self {
            peft_type: Some("LORA".into()),
            r,
            lora_alpha,
            target_modules: Some(TargetModules::List(
                modules.iter().map(|p| p.name().to_string()).collect(),
            )),
            use_rslora: false,
            rank_pattern: Default::default(),
            alpha_pattern: Default::default(),
            fan_in_fan_out: false,
            bias: "none".into(),
            use_dora: Some(false),
            modules_to_save: None,
            lora_bias: Some(false),
            layers_to_transform: None,
            layer_replication: None,
            trainable_token_indices: None,
            target_parameters: None,
            exclude_modules: None,
            base_model_name_or_path: None,
            task_type: Some("CAUSAL_LM".into()),
        }
    }

    /// Reads `adapter_config.json`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
        serde_json::from_str(&text).map_err(|source| ModelError::Json {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Names the first feature of this config that the runtime does not implement.
    pub fn unsupported_feature(&self) -> Option<String> {
        let set = |v: &Option<serde_json::Value>| v.as_ref().is_some_and(|v| !v.is_null());
        if let Some(t) = &self.peft_type {
            if t != "LORA" {
                return Some(format!("peft_type {t:?} (only LORA is supported)"));
            }
        }
        if self.use_dora == Some(true) {
            return Some("use_dora: true (DoRA is not supported)".into());
        }
        if self.modules_to_save.as_ref().is_some_and(|m| !m.is_empty()) {
            return Some("modules_to_save (fully trained extra modules are not supported)".into());
        }
        if self.fan_in_fan_out {
            return Some("fan_in_fan_out: true (Conv1D layouts are not supported)".into());
        }
        if self.bias != "none" {
            return Some(format!(
                "bias: {:?} (only \"none\" is supported)",
                self.bias
            ));
        }
        if self.lora_bias == Some(true) {
            return Some("lora_bias: true is not supported".into());
        }
        for (name, value) in [
            ("layers_to_transform", &self.layers_to_transform),
            ("layer_replication", &self.layer_replication),
            ("trainable_token_indices", &self.trainable_token_indices),
            ("target_parameters", &self.target_parameters),
        ] {
            let empty_list = value
                .as_ref()
                .and_then(|v| v.as_array())
                .is_some_and(|a| a.is_empty());
            if set(value) && !empty_list {
                return Some(format!("{name} is not supported"));
            }
        }
        if self.r == 0 {
            return Some("r: 0".into());
        }
        None
    }

    /// Rank and scale of one module, honouring `rank_pattern`, `alpha_pattern` and rsLoRA.
    pub fn rank_and_scale(&self, module_path: &str) -> Result<(usize, f64)> {
        let r = match pattern_value(&self.rank_pattern, module_path)? {
            Some(v) => v
                .as_u64()
                .map(|r| r as usize)
                .filter(|&r| r > 0)
                .ok_or_else(|| {
                    ModelError::adapter(
                        "",
                        format!("rank_pattern value {v} is not a positive integer"),
                    )
                })?,
            None => self.r,
        };
        let alpha = match pattern_value(&self.alpha_pattern, module_path)? {
            Some(v) => v.as_f64().ok_or_else(|| {
                ModelError::adapter("", format!("alpha_pattern value {v} is not a number"))
            })?,
            None => self.lora_alpha,
        };
        let scale = if self.use_rslora {
            alpha / (r as f64).sqrt()
        } else {
            alpha / r as f64
        };
        Ok((r, scale))
    }
}

/// PEFT's rule: the first key `K` (file order) with `re.match(r"(.*\.)?(K)$", name)`.
fn pattern_value<'a>(
    patterns: &'a serde_json::Map<String, serde_json::Value>,
    module_path: &str,
) -> Result<Option<&'a serde_json::Value>> {
    for (key, value) in patterns {
        let re = Regex::new(&format!(r"^(?:.*\.)?(?:{key})$"))
            .map_err(|e| ModelError::adapter("", format!("pattern {key:?} is not a regex: {e}")))?;
        if re.is_match(module_path) {
            return Ok(Some(value));
        }
    }
    Ok(None)
}

/// Whether `module_path` is selected by `targets` (PEFT's `check_target_module_exists`).
fn matches_targets(targets: &TargetModules, module_path: &str) -> Result<bool> {
    match targets {
        TargetModules::Regex(s) if s == "all-linear" => Ok(true),
        TargetModules::Regex(s) => {
            let re = Regex::new(&format!("^(?:{s})$")).map_err(|e| {
                ModelError::adapter("", format!("target_modules {s:?} is not a regex: {e}"))
            })?;
            Ok(re.is_match(module_path))
        }
        TargetModules::List(names) => Ok(names
            .iter()
            .any(|n| module_path == n || module_path.ends_with(&format!(".{n}")))),
    }
}

/// Shapes of the base model an adapter was validated against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BaseShape {
    layers: usize,
    hidden: usize,
    intermediate: usize,
    kv_dim: usize,
}

impl BaseShape {
    fn of(cfg: &ModelConfig) -> Self {
        Self {
            layers: cfg.num_hidden_layers,
            hidden: cfg.hidden_size,
            intermediate: cfg.intermediate_size,
            kv_dim: cfg.num_kv_heads() * cfg.head_dim(),
        }
    }
}

/// A LoRA adapter ready to apply: per layer, an optional [`LoraPair`] for each projection.
///
/// Immutable once built; share it with `Arc<LoraAdapter>` between the engine's threads.
#[derive(Debug, Clone)]
pub struct LoraAdapter {
    name: String,
    source: Option<PathBuf>,
    config: AdapterConfig,
    layers: Vec<[Option<LoraPair>; 7]>,
    base: BaseShape,
}

const PEFT_PREFIX: &str = "base_model.model.";

impl LoraAdapter {
    /// Loads and validates a PEFT adapter directory against the base model's config.
    /// The adapter is named after the directory.
    pub fn load(
        dir: impl AsRef<Path>,
        base: &ModelConfig,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let dir = dir.as_ref();
        let name = dir
            .file_name()
            .map_or_else(|| "adapter".into(), |n| n.to_string_lossy().into_owned());
        Self::load_inner(dir, name, base, dtype, device).map_err(|e| match e {
            ModelError::InvalidAdapter { path, reason } if path.as_os_str().is_empty() => {
                ModelError::adapter(dir, reason)
            }
            ModelError::Candle(err) => ModelError::adapter(dir, err.to_string()),
            other => other,
        })
    }

    fn load_inner(
        dir: &Path,
        name: String,
        base: &ModelConfig,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        if !dir.is_dir() {
            return Err(ModelError::adapter(dir, "adapter directory does not exist"));
        }
        let config_path = dir.join("adapter_config.json");
        if !config_path.is_file() {
            return Err(ModelError::adapter(dir, "missing adapter_config.json"));
        }
        let config = AdapterConfig::from_file(&config_path)?;
        let weights_path = dir.join("adapter_model.safetensors");
        if !weights_path.is_file() {
            let reason = if dir.join("adapter_model.bin").is_file() {
                "adapter_model.bin (pickle) is not loaded; save the adapter as safetensors"
            } else {
                "missing adapter_model.safetensors"
            };
            return Err(ModelError::adapter(dir, reason));
        }
        check_safetensors(&weights_path)?;
        let tensors = candle_core::safetensors::load(&weights_path, device)?;
        let mut adapter = Self::from_tensors(name, config, tensors, base, dtype)?;
        adapter.source = Some(dir.to_path_buf());
        Ok(adapter)
    }

    /// Builds an adapter from PEFT-named tensors (`base_model.model.model.layers.0.self_attn.
    /// q_proj.lora_A.weight`...), with the same validation as [`LoraAdapter::load`].
    pub fn from_tensors(
        name: String,
        config: AdapterConfig,
        tensors: HashMap<String, Tensor>,
        base: &ModelConfig,
        dtype: DType,
    ) -> Result<Self> {
        if let Some(feature) = config.unsupported_feature() {
            return Err(ModelError::adapter("", format!("unsupported: {feature}")));
        }
        let Some(targets) = config.target_modules.clone() else {
            return Err(ModelError::adapter(
                "",
                "adapter_config.json has no target_modules",
            ));
        };
        check_targets_exist(&targets)?;

        // Which (layer, proj) modules the config says carry LoRA.
        let mut targeted = BTreeSet::new();
        for layer in 0..base.num_hidden_layers {
            for proj in Proj::ALL {
                let path = proj.module_path(layer);
                let excluded = match &config.exclude_modules {
                    Some(ex) => matches_targets(ex, &path)?,
                    None => false,
                };
                if matches_targets(&targets, &path)? && !excluded {
                    targeted.insert((layer, proj));
                }
            }
        }
        if targeted.is_empty() {
            return Err(ModelError::adapter(
                "",
                "target_modules select no module of the base model",
            ));
        }

        let mut found: BTreeMap<(usize, Proj), (Option<Tensor>, Option<Tensor>)> = BTreeMap::new();
        for (key, tensor) in tensors {
            let (layer, proj, is_a) = parse_peft_key(&key, base.num_hidden_layers)?;
            let slot = found.entry((layer, proj)).or_default();
            if is_a {
                slot.0 = Some(tensor)
            } else {
                slot.1 = Some(tensor)
            }
        }

        let shape = BaseShape::of(base);
        let mut layers: Vec<[Option<LoraPair>; 7]> =
            vec![Default::default(); base.num_hidden_layers];
        for &(layer, proj) in &targeted {
            let path = proj.module_path(layer);
            let Some((a, b)) = found.remove(&(layer, proj)) else {
                return Err(ModelError::adapter(
                    "",
                    format!("target_modules selects {path} but the weights have no lora_A/lora_B for it"),
                ));
            };
            let (Some(a), Some(b)) = (a, b) else {
                return Err(ModelError::adapter(
                    "",
                    format!("{path}: lora_A or lora_B is missing"),
                ));
            };
            let (r, scale) = config.rank_and_scale(&path)?;
            let (in_f, out_f) = (base.proj_in_features(proj), base.proj_out_features(proj));
            if a.dims() != [r, in_f] || b.dims() != [out_f, r] {
                return Err(ModelError::adapter(
                    "",
                    format!(
                        "{path}: lora_A {:?} / lora_B {:?} do not fit the base (expected [{r}, {in_f}] / [{out_f}, {r}])",
                        a.dims(),
                        b.dims()
                    ),
                ));
            }
            let a = a.to_dtype(dtype)?;
            let b = b.to_dtype(dtype)?;
            layers[layer][proj.index()] = Some(LoraPair { a, b, scale });
        }
        if let Some(((layer, proj), _)) = found.into_iter().next() {
            return Err(ModelError::adapter(
                "",
                format!(
                    "weights for {} are not selected by target_modules",
                    proj.module_path(layer)
                ),
            ));
        }
        Ok(Self {
            name,
            source: None,
            config,
            layers,
            base: shape,
        })
    }

    /// Assembles an adapter from pairs built elsewhere (a trainer's variables). `layers[l][p]`
    /// follows [`Proj::ALL`] order.
    pub fn from_pairs(
        name: String,
        config: AdapterConfig,
        layers: Vec<[Option<LoraPair>; 7]>,
        base: &ModelConfig,
    ) -> Result<Self> {
        let shape = BaseShape::of(base);
        if layers.len() != shape.layers {
            return Err(ModelError::adapter(
                "",
                format!(
                    "{} layers of LoRA pairs for a base of {} layers",
                    layers.len(),
                    shape.layers
                ),
            ));
        }
        for (layer, pairs) in layers.iter().enumerate() {
            for (proj, pair) in Proj::ALL.iter().zip(pairs) {
                if let Some(pair) = pair {
                    let (in_f, out_f) =
                        (base.proj_in_features(*proj), base.proj_out_features(*proj));
                    let r = pair.rank();
                    if pair.a.dims() != [r, in_f] || pair.b.dims() != [out_f, r] {
                        return Err(ModelError::adapter(
                            "",
                            format!(
                                "{}: lora_A {:?} / lora_B {:?} do not fit the base",
                                proj.module_path(layer),
                                pair.a.dims(),
                                pair.b.dims()
                            ),
                        ));
                    }
                }
            }
        }
        Ok(Self {
            name,
            source: None,
            config,
            layers,
            base: shape,
        })
    }

    /// The adapter's name (its directory name when loaded from disk).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The directory it was loaded from, if any.
    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    /// The parsed `adapter_config.json`.
    pub fn config(&self) -> &AdapterConfig {
        &self.config
    }

    /// The pair applied to `proj` of `layer`, if the adapter targets it.
    pub fn pair(&self, layer: usize, proj: Proj) -> Option<&LoraPair> {
        self.layers.get(layer)?[proj.index()].as_ref()
    }

    /// Largest rank over all modules.
    pub fn max_rank(&self) -> usize {
        self.pairs().map(|(_, _, p)| p.rank()).max().unwrap_or(0)
    }

    /// The projections targeted in at least one layer.
    pub fn target_projs(&self) -> Vec<Proj> {
        let set: BTreeSet<Proj> = self.pairs().map(|(_, proj, _)| proj).collect();
        set.into_iter().collect()
    }

    /// Bytes held by the adapter's tensors.
    pub fn memory_bytes(&self) -> usize {
        self.pairs()
            .map(|(_, _, p)| (p.a.elem_count() + p.b.elem_count()) * p.a.dtype().size_in_bytes())
            .sum()
    }

    /// Every `(layer, proj, pair)`.
    pub fn pairs(&self) -> impl Iterator<Item = (usize, Proj, &LoraPair)> {
        self.layers.iter().enumerate().flat_map(|(l, pairs)| {
            Proj::ALL
                .iter()
                .zip(pairs)
                .filter_map(move |(p, pair)| Some((l, *p, pair.as_ref()?)))
        })
    }

    /// Errors unless the adapter was validated against a base with this config's shapes.
    pub fn check_fits(&self, base: &ModelConfig) -> Result<()> {
        if self.base != BaseShape::of(base) {
            return Err(ModelError::adapter(
                self.source
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(&self.name)),
                "was loaded for a base model of different shape",
            ));
        }
        Ok(())
    }

    /// Writes the adapter in PEFT's layout (`adapter_config.json`, `adapter_model.safetensors`,
    /// f32 tensors) to a new directory `dir`, atomically.
    pub fn save_peft(&self, dir: &Path) -> Result<()> {
        let mut tensors = Vec::new();
        for (layer, proj, pair) in self.pairs() {
            let key = format!("{PEFT_PREFIX}{}", proj.module_path(layer));
            tensors.push((format!("{key}.lora_A.weight"), pair.a.to_dtype(DType::F32)?));
            tensors.push((format!("{key}.lora_B.weight"), pair.b.to_dtype(DType::F32)?));
        }
        let config = serde_json::to_vec_pretty(&self.config).map_err(|e| {
            ModelError::adapter(dir, format!("cannot serialise adapter_config.json: {e}"))
        })?;
        crate::io::write_dir(dir, |tmp| {
            let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
            crate::io::write_safetensors(
                &tmp.join("adapter_model.safetensors"),
                &tensors,
                Some(metadata),
            )?;
            crate::io::write_file(&tmp.join("adapter_config.json"), &config)
        })
    }
}

/// Refuses target names that cannot be a Qwen2 or Llama projection (another architecture, or embedding /
/// LM-head LoRA, which is not supported).
fn check_targets_exist(targets: &TargetModules) -> Result<()> {
    let TargetModules::List(names) = targets else {
        return Ok(()); // a regex is checked by whether it selects anything
    };
    for name in names {
        let leaf = name.rsplit('.').next().unwrap_or(name);
        if matches!(leaf, "embed_tokens" | "lm_head") {
            return Err(ModelError::adapter(
                "",
                format!("unsupported: LoRA on {leaf} (only the attention and MLP projections)"),
            ));
        }
        if Proj::from_name(leaf).is_none() {
            return Err(ModelError::adapter(
                "",
                format!("target module {name:?} does not exist in a Qwen2 or Llama model (adapter for another architecture?)"),
            ));
        }
    }
    Ok(())
}

/// `base_model.model.model.layers.3.mlp.up_proj.lora_B[.default].weight` -> (3, UpProj, false).
fn parse_peft_key(key: &str, n_layers: usize) -> Result<(usize, Proj, bool)> {
    let bad = |why: &str| ModelError::adapter("", format!("tensor {key:?}: {why}"));
    if key.contains("lora_embedding_") || key.contains("embed_tokens") || key.contains("lm_head") {
        return Err(bad("unsupported: LoRA on embed_tokens / lm_head"));
    }
    if key.contains("lora_magnitude_vector") {
        return Err(bad("unsupported: DoRA magnitude vector"));
    }
    let rest = key.strip_prefix(PEFT_PREFIX).unwrap_or(key);
    let rest = rest
        .strip_suffix(".weight")
        .ok_or_else(|| bad("not a LoRA weight"))?;
    let rest = rest.strip_suffix(".default").unwrap_or(rest);
    let (module, is_a) = if let Some(m) = rest.strip_suffix(".lora_A") {
        (m, true)
    } else if let Some(m) = rest.strip_suffix(".lora_B") {
        (m, false)
    } else {
        return Err(bad("not a lora_A / lora_B weight"));
    };
    let parts: Vec<&str> = module.split('.').collect();
    let ["model", "layers", layer, parent, proj] = parts.as_slice() else {
        return Err(bad(
            "not a module of a Qwen2 or Llama decoder layer (adapter for another architecture?)",
        ));
    };
    let layer: usize = layer
        .parse()
        .map_err(|_| bad("layer index is not a number"))?;
    if layer >= n_layers {
        return Err(bad(&format!(
            "layer {layer} does not exist (the base has {n_layers} layers)"
        )));
    }
    let proj = Proj::from_name(proj)
        .filter(|p| p.parent() == *parent)
        .ok_or_else(|| bad("not a Qwen2 or Llama projection"))?;
    Ok((layer, proj, is_a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_follow_peft_rules() -> Result<()> {
        let mut cfg = AdapterConfig::new(8, 16.0, &[Proj::QProj, Proj::VProj]);
        cfg.rank_pattern
            .insert("layers.1.self_attn.q_proj".into(), 4.into());
        cfg.alpha_pattern.insert("v_proj".into(), 32.into());
        assert_eq!(
            cfg.rank_and_scale("model.layers.0.self_attn.q_proj")?,
            (8, 2.0)
        );
        assert_eq!(
            cfg.rank_and_scale("model.layers.1.self_attn.q_proj")?,
            (4, 4.0)
        );
        // "v_proj" must match a whole path segment, not "xv_proj".
        assert_eq!(
            cfg.rank_and_scale("model.layers.0.self_attn.v_proj")?,
            (8, 4.0)
        );
        cfg.use_rslora = true;
        let (r, scale) = cfg.rank_and_scale("model.layers.1.self_attn.q_proj")?;
        assert_eq!((r, scale), (4, 8.0), "rsLoRA scales by alpha / sqrt(r)");
        Ok(())
    }

    #[test]
    fn target_matching_like_peft() -> Result<()> {
        let list = TargetModules::List(vec!["q_proj".into()]);
        assert!(matches_targets(&list, "model.layers.0.self_attn.q_proj")?);
        assert!(!matches_targets(&list, "model.layers.0.self_attn.k_proj")?);
        let re = TargetModules::Regex(r".*\.1\.self_attn\.(q|v)_proj".into());
        assert!(matches_targets(&re, "model.layers.1.self_attn.v_proj")?);
        assert!(!matches_targets(&re, "model.layers.0.self_attn.v_proj")?);
        assert!(matches_targets(
            &TargetModules::Regex("all-linear".into()),
            "model.layers.0.mlp.up_proj"
        )?);
        Ok(())
    }

    #[test]
    fn peft_keys_parse_and_foreign_keys_are_refused() {
        let key = "base_model.model.model.layers.1.mlp.down_proj.lora_B.weight";
        assert!(matches!(
            parse_peft_key(key, 2),
            Ok((1, Proj::DownProj, false))
        ));
        let key = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight";
        assert!(matches!(parse_peft_key(key, 2), Ok((0, Proj::QProj, true))));
        for (key, needle) in [
            (
                "base_model.model.transformer.h.0.attn.c_attn.lora_A.weight",
                "another architecture",
            ),
            (
                "base_model.model.model.layers.5.self_attn.q_proj.lora_A.weight",
                "does not exist",
            ),
            ("base_model.model.lm_head.lora_A.weight", "lm_head"),
            (
                "base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector",
                "DoRA",
            ),
            (
                "base_model.model.model.layers.0.mlp.q_proj.lora_A.weight",
                "projection",
            ),
        ] {
            let err = parse_peft_key(key, 2).expect_err(key).to_string();
            assert!(err.contains(needle), "{err} should mention {needle}");
        }
    }
}

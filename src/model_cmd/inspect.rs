//! `switchboard model inspect`: a report built from headers only, as text or JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use serde_json::Value;
use switchboard_engine::TextTokenizer;
use switchboard_model::{
    default_hub_caches, gguf_file_type_name, gguf_value_json, gguf_version, hf_tokenizer_files,
    kv_cache_bytes_per_token, parameter_count, resolve_model_dir, stored_tensors, DType, GgufFile,
    ModelConfig, ModelSource, Proj, StoredTensor,
};

/// Everything `model inspect` reports (also its `--json` form).
#[derive(Serialize)]
pub(super) struct Report {
    path: String,
    /// `gguf` or `safetensors`.
    format: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    gguf_version: Option<u32>,
    /// The files holding the weights.
    files: Vec<String>,
    /// A GGUF file's `general.*` metadata (name, file_type, ...).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    general: BTreeMap<String, Value>,
    /// The quantization `general.file_type` names (`Q4_1`).
    #[serde(skip_serializing_if = "Option::is_none")]
    file_type: Option<String>,
    architecture: &'static str,
    class_name: &'static str,
    config: ConfigSummary,
    tensor_count: usize,
    tensor_groups: Vec<TensorGroup>,
    parameters: u64,
    memory: Memory,
    tokenizer: TokenizerReport,
    chat_template: Option<TemplateSummary>,
}

#[derive(Serialize)]
struct ConfigSummary {
    layers: usize,
    hidden_size: usize,
    attention_heads: usize,
    kv_heads: usize,
    head_dim: usize,
    intermediate_size: usize,
    vocab_size: usize,
    context_length: usize,
    rope_theta: f64,
    rms_norm_eps: f64,
    tie_word_embeddings: bool,
    /// Projections that have a bias (`q_proj`, ...).
    biases: Vec<&'static str>,
}

#[derive(Serialize)]
struct TensorGroup {
    name: &'static str,
    tensors: usize,
    parameters: u64,
    bytes: u64,
    /// Storage type -> number of tensors stored in it.
    types: BTreeMap<String, usize>,
    /// `lm_head` only: shares the token embedding (no tensor of its own).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    tied: bool,
}

#[derive(Serialize)]
struct Memory {
    weights_on_disk_bytes: u64,
    weights_f32_bytes: u64,
    kv_cache_f32_bytes_per_token: u64,
    context_length: usize,
    kv_cache_f32_bytes_full_context: u64,
}

#[derive(Serialize)]
#[serde(untagged)]
enum TokenizerReport {
    Ok(Box<TokenizerSummary>),
    Unavailable { error: String },
}

#[derive(Serialize)]
struct TokenizerSummary {
    /// `model.type` of `tokenizer.json` (`BPE`, `Unigram`, ...).
    model: String,
    /// GGUF `tokenizer.ggml.model` (`gpt2`).
    #[serde(skip_serializing_if = "Option::is_none")]
    gguf_model: Option<String>,
    /// GGUF `tokenizer.ggml.pre` (`smollm`, `qwen2`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    gguf_pre: Option<String>,
    normalizer: String,
    pre_tokenizer: String,
    vocab_size: usize,
    added_tokens: usize,
    special_tokens: usize,
    bos: Option<TokenRef>,
    eos: Vec<TokenRef>,
    pad: Option<TokenRef>,
    unk: Option<TokenRef>,
    add_bos_token: Option<bool>,
    add_eos_token: Option<bool>,
    /// Whether encoding a text puts BOS first (what the post-processor actually does).
    encode_adds_bos: bool,
}

#[derive(Serialize)]
struct TokenRef {
    token: Option<String>,
    id: Option<u32>,
}

#[derive(Serialize)]
struct TemplateSummary {
    /// Where it was found.
    source: String,
    chars: usize,
    lines: usize,
    /// The first lines.
    head: Vec<String>,
}

/// The tokenizer files of a model, as JSON values, wherever they come from.
struct TokenizerSource {
    origin: PathBuf,
    tokenizer_json: Value,
    tokenizer_config: Value,
    generation_config: Value,
    gguf_model: Option<String>,
    gguf_pre: Option<String>,
}

pub(super) fn inspect(spec: &str) -> Result<Report> {
    let path = if Path::new(spec).exists() {
        PathBuf::from(spec)
    } else {
        resolve_model_dir(spec, &default_hub_caches())
            .with_context(|| format!("{spec}: no such file or directory, nor a cached hub model"))?
    };
    let source =
        ModelSource::open(&path).with_context(|| format!("cannot inspect {}", path.display()))?;
    let tensors = stored_tensors(&source)
        .with_context(|| format!("reading the tensors of {}", path.display()))?;
    let cfg = source.config();
    let arch = cfg.arch();
    let parameters = parameter_count(&tensors);
    let kv_per_token = kv_cache_bytes_per_token(cfg, DType::F32);
    let memory = Memory {
        weights_on_disk_bytes: tensors.iter().map(|t| t.bytes).sum(),
        weights_f32_bytes: parameters * 4,
        kv_cache_f32_bytes_per_token: kv_per_token,
        context_length: cfg.max_positions(),
        kv_cache_f32_bytes_full_context: kv_per_token * cfg.max_positions() as u64,
    };
    let (format, gguf_version, files, general, file_type, tokenizer, template) = match &source {
        ModelSource::Gguf(gguf) => {
            let version = gguf_version(&gguf.path)?;
            let general: BTreeMap<String, Value> = gguf
                .metadata()
                .iter()
                .filter(|(k, _)| k.starts_with("general."))
                .map(|(k, v)| (k.clone(), gguf_value_json(v)))
                .collect();
            let file_type = general
                .get("general.file_type")
                .and_then(Value::as_u64)
                .map(|id| match gguf_file_type_name(id as u32) {
                    Some(name) => name.to_string(),
                    None => format!("unknown ({id})"),
                });
            let tokenizer = gguf_tokenizer_source(gguf);
            let template = gguf
                .metadata()
                .get("tokenizer.chat_template")
                .and_then(|v| v.to_string().ok())
                .map(|t| summarize_template(t, "GGUF tokenizer.chat_template"));
            let files = vec![gguf.path.display().to_string()];
            (
                "gguf",
                Some(version),
                files,
                general,
                file_type,
                tokenizer,
                template,
            )
        }
        ModelSource::Checkpoint(checkpoint) => {
            let files = checkpoint
                .weight_files
                .iter()
                .map(|f| f.display().to_string())
                .collect();
            let tokenizer = dir_tokenizer_source(&checkpoint.dir);
            let template = dir_chat_template(&checkpoint.dir)?;
            let general = BTreeMap::new();
            (
                "safetensors",
                None,
                files,
                general,
                None,
                tokenizer,
                template,
            )
        }
    };
    let tokenizer = match tokenizer.and_then(|t| summarize_tokenizer(&t, cfg)) {
        Ok(summary) => TokenizerReport::Ok(Box::new(summary)),
        Err(e) => TokenizerReport::Unavailable {
            error: format!("{e:#}"),
        },
    };
    Ok(Report {
        path: path.display().to_string(),
        format,
        gguf_version,
        files,
        general,
        file_type,
        architecture: arch.model_type(),
        class_name: arch.class_name(),
        config: summarize_config(cfg),
        tensor_count: tensors.len(),
        tensor_groups: group_tensors(&tensors, cfg.tie_word_embeddings),
        parameters,
        memory,
        tokenizer,
        chat_template: template,
    })
}

fn summarize_config(cfg: &ModelConfig) -> ConfigSummary {
    ConfigSummary {
        layers: cfg.num_hidden_layers,
        hidden_size: cfg.hidden_size,
        attention_heads: cfg.num_attention_heads,
        kv_heads: cfg.num_kv_heads(),
        head_dim: cfg.head_dim(),
        intermediate_size: cfg.intermediate_size,
        vocab_size: cfg.vocab_size,
        context_length: cfg.max_positions(),
        rope_theta: cfg.rope_theta(),
        rms_norm_eps: cfg.rms_norm_eps,
        tie_word_embeddings: cfg.tie_word_embeddings,
        biases: Proj::ALL
            .into_iter()
            .filter(|&p| cfg.proj_has_bias(p))
            .map(Proj::name)
            .collect(),
    }
}

/// The group a tensor of a llama / qwen2 checkpoint belongs to, by its Hugging Face name.
fn group_of(name: &str) -> &'static str {
    let is_bias = name.ends_with(".bias");
    if name == "model.embed_tokens.weight" {
        "token_embd"
    } else if name == "lm_head.weight" {
        "lm_head"
    } else if name.contains(".self_attn.") && name.contains("_proj.") {
        if is_bias {
            "attention bias"
        } else {
            "attention q/k/v/o"
        }
    } else if name.contains(".mlp.") && name.contains("_proj.") {
        if is_bias {
            "mlp bias"
        } else {
            "mlp gate/up/down"
        }
    } else if name.ends_with("layernorm.weight") || name == "model.norm.weight" {
        "norms"
    } else {
        "other"
    }
}

const GROUP_ORDER: [&str; 8] = [
    "token_embd",
    "attention q/k/v/o",
    "attention bias",
    "mlp gate/up/down",
    "mlp bias",
    "norms",
    "lm_head",
    "other",
];

fn group_tensors(tensors: &[StoredTensor], tied: bool) -> Vec<TensorGroup> {
    let mut groups: Vec<TensorGroup> = GROUP_ORDER
        .iter()
        .map(|&name| TensorGroup {
            name,
            tensors: 0,
            parameters: 0,
            bytes: 0,
            types: BTreeMap::new(),
            tied: false,
        })
        .collect();
    for t in tensors {
        let name = group_of(&t.name);
        if let Some(g) = groups.iter_mut().find(|g| g.name == name) {
            g.tensors += 1;
            g.parameters += t.elements();
            g.bytes += t.bytes;
            *g.types.entry(t.storage.clone()).or_default() += 1;
        }
    }
    let has_head = tensors.iter().any(|t| t.name == "lm_head.weight");
    for g in &mut groups {
        if g.name == "lm_head" && tied && !has_head {
            g.tied = true;
        }
    }
    groups.retain(|g| g.tensors > 0 || g.tied);
    groups
}

fn gguf_tokenizer_source(gguf: &GgufFile) -> Result<TokenizerSource> {
    let text = |key: &str| {
        gguf.metadata()
            .get(key)
            .and_then(|v| v.to_string().ok())
            .cloned()
    };
    let files = hf_tokenizer_files(&gguf.path, gguf.metadata())?;
    Ok(TokenizerSource {
        origin: gguf.path.clone(),
        tokenizer_json: files.tokenizer_json,
        tokenizer_config: files.tokenizer_config,
        generation_config: files.generation_config,
        gguf_model: text("tokenizer.ggml.model"),
        gguf_pre: text("tokenizer.ggml.pre"),
    })
}

fn read_json(path: &Path) -> Result<Option<Value>> {
    if !path.is_file() {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let value =
        serde_json::from_str(&text).with_context(|| format!("{}: invalid JSON", path.display()))?;
    Ok(Some(value))
}

fn dir_tokenizer_source(dir: &Path) -> Result<TokenizerSource> {
    let path = dir.join("tokenizer.json");
    let Some(tokenizer_json) = read_json(&path)? else {
        bail!("{}: missing", path.display());
    };
    Ok(TokenizerSource {
        origin: path,
        tokenizer_json,
        tokenizer_config: read_json(&dir.join("tokenizer_config.json"))?.unwrap_or(Value::Null),
        generation_config: read_json(&dir.join("generation_config.json"))?.unwrap_or(Value::Null),
        gguf_model: None,
        gguf_pre: None,
    })
}

/// The chat template of a checkpoint directory: `tokenizer_config.json`'s `chat_template` (a
/// string, or the one named "default" of a list), else `chat_template.jinja`.
fn dir_chat_template(dir: &Path) -> Result<Option<TemplateSummary>> {
    let config_path = dir.join("tokenizer_config.json");
    let config = read_json(&config_path)
        .ok()
        .flatten()
        .unwrap_or(Value::Null);
    let from_config = match config.get("chat_template") {
        Some(Value::String(t)) => Some(t.clone()),
        Some(Value::Array(named)) => named
            .iter()
            .find(|t| t.get("name").and_then(Value::as_str) == Some("default"))
            .and_then(|t| t.get("template"))
            .and_then(Value::as_str)
            .map(str::to_string),
        _ => None,
    };
    if let Some(template) = from_config {
        return Ok(Some(summarize_template(
            &template,
            "tokenizer_config.json chat_template",
        )));
    }
    let jinja = dir.join("chat_template.jinja");
    if jinja.is_file() {
        let template = std::fs::read_to_string(&jinja)
            .with_context(|| format!("reading {}", jinja.display()))?;
        return Ok(Some(summarize_template(&template, "chat_template.jinja")));
    }
    Ok(None)
}

fn summarize_template(template: &str, source: &str) -> TemplateSummary {
    const HEAD_LINES: usize = 3;
    const MAX_LINE: usize = 100;
    let head = template
        .lines()
        .take(HEAD_LINES)
        .map(|line| {
            if line.chars().count() > MAX_LINE {
                let cut: String = line.chars().take(MAX_LINE).collect();
                format!("{cut}…")
            } else {
                line.to_string()
            }
        })
        .collect();
    TemplateSummary {
        source: source.to_string(),
        chars: template.chars().count(),
        lines: template.lines().count(),
        head,
    }
}

/// A pre-tokenizer or normalizer of `tokenizer.json`, as `Type` or `Sequence[A, B]`.
fn describe_component(value: &Value) -> String {
    let Some(kind) = value.get("type").and_then(Value::as_str) else {
        return "none".to_string();
    };
    let parts = value
        .get("pretokenizers")
        .or_else(|| value.get("normalizers"))
        .and_then(Value::as_array);
    match (kind, parts) {
        ("Sequence", Some(parts)) => {
            let inner: Vec<String> = parts.iter().map(describe_component).collect();
            format!("Sequence[{}]", inner.join(", "))
        }
        ("Digits", _) if value.get("individual_digits") == Some(&Value::Bool(true)) => {
            "Digits(individual)".to_string()
        }
        ("Split", _) => "Split(regex)".to_string(),
        (kind, _) => kind.to_string(),
    }
}

/// A token given in `tokenizer_config.json` either as a string or as `{"content": ...}`.
fn token_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("content")?.as_str().map(str::to_string),
        _ => None,
    }
}

fn summarize_tokenizer(src: &TokenizerSource, cfg: &ModelConfig) -> Result<TokenizerSummary> {
    let tokenizer = TextTokenizer::from_parts(
        &src.origin,
        &src.tokenizer_json,
        &src.tokenizer_config,
        &src.generation_config,
    )?;
    let inner = tokenizer.inner();
    let added = inner.get_added_tokens_decoder();
    let token_ref = |text: Option<String>, id: Option<u32>| -> Option<TokenRef> {
        match (text, id) {
            (Some(text), _) => Some(TokenRef {
                id: inner.token_to_id(&text),
                token: Some(text),
            }),
            (None, Some(id)) => Some(TokenRef {
                token: inner.id_to_token(id),
                id: Some(id),
            }),
            (None, None) => None,
        }
    };
    let id_of = |key: &str, fallback: Option<u32>| {
        src.generation_config
            .get(key)
            .and_then(Value::as_u64)
            .map(|id| id as u32)
            .or(fallback)
    };
    let config_text = |key: &str| token_text(src.tokenizer_config.get(key));
    let bos = token_ref(
        config_text("bos_token"),
        id_of("bos_token_id", cfg.bos_token_id),
    );
    let pad = token_ref(
        config_text("pad_token"),
        id_of("pad_token_id", cfg.pad_token_id),
    );
    let unk = token_ref(config_text("unk_token"), None);
    let mut eos_ids: Vec<u32> = tokenizer.eos_token_ids().iter().copied().collect();
    if eos_ids.is_empty() {
        eos_ids = cfg.eos_token_ids();
    }
    let eos = eos_ids
        .into_iter()
        .map(|id| TokenRef {
            token: inner.id_to_token(id),
            id: Some(id),
        })
        .collect();
    let encode_adds_bos = match bos.as_ref().and_then(|b| b.id) {
        Some(bos_id) => tokenizer.encode("a")?.first() == Some(&bos_id),
        None => false,
    };
    let flag = |key: &str| src.tokenizer_config.get(key).and_then(Value::as_bool);
    let model = &src.tokenizer_json["model"];
    Ok(TokenizerSummary {
        model: model["type"].as_str().unwrap_or("unknown").to_string(),
        gguf_model: src.gguf_model.clone(),
        gguf_pre: src.gguf_pre.clone(),
        normalizer: describe_component(&src.tokenizer_json["normalizer"]),
        pre_tokenizer: describe_component(&src.tokenizer_json["pre_tokenizer"]),
        vocab_size: tokenizer.vocab_size(),
        added_tokens: added.len(),
        special_tokens: added.values().filter(|t| t.special).count(),
        bos,
        eos,
        pad,
        unk,
        add_bos_token: flag("add_bos_token"),
        add_eos_token: flag("add_eos_token"),
        encode_adds_bos,
    })
}

// ---------------------------------------------------------------------------------------------
// rendering

/// `134.5M`, `1.54B`, `512K`.
pub(super) fn human_count(n: u64) -> String {
    let n = n as f64;
    if n >= 1e9 {
        format!("{:.2}B", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.1}M", n / 1e6)
    } else if n >= 1e3 {
        format!("{:.1}K", n / 1e3)
    } else {
        format!("{n}")
    }
}

/// `93.8 MiB`.
pub(super) fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `134,515,008`.
fn grouped_digits(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn describe_token(t: &TokenRef) -> String {
    match (&t.token, t.id) {
        (Some(token), Some(id)) => format!("{token:?} ({id})"),
        (Some(token), None) => format!("{token:?} (not in the vocabulary)"),
        (None, Some(id)) => format!("id {id} (not in the vocabulary)"),
        (None, None) => "none".to_string(),
    }
}

pub(super) fn render(r: &Report) -> String {
    let mut s = String::new();
    // Writing to a String cannot fail.
    let _ = render_into(&mut s, r);
    s
}

fn render_into(s: &mut String, r: &Report) -> std::fmt::Result {
    let format = match r.gguf_version {
        Some(v) => format!("GGUF v{v}"),
        None if r.files.len() == 1 => "safetensors directory, 1 weight file".to_string(),
        None => format!("safetensors directory, {} weight files", r.files.len()),
    };
    writeln!(s, "{}", r.path)?;
    writeln!(s, "  format        {format}")?;
    if let Some(name) = r.general.get("general.name").and_then(Value::as_str) {
        writeln!(s, "  name          {name}")?;
    }
    if let Some(file_type) = &r.file_type {
        writeln!(s, "  file type     {file_type}")?;
    }
    writeln!(s, "  architecture  {} ({})", r.architecture, r.class_name)?;

    let c = &r.config;
    writeln!(s, "\nconfig")?;
    writeln!(
        s,
        "  layers {}, hidden {}, heads {}, kv heads {}, head_dim {}, intermediate {}",
        c.layers, c.hidden_size, c.attention_heads, c.kv_heads, c.head_dim, c.intermediate_size
    )?;
    writeln!(
        s,
        "  vocab {}, context {}, rope theta {}, rms eps {:e}",
        c.vocab_size,
        c.context_length,
        c.rope_theta,
        // GGUF stores it as f32: print the f32's shortest form (1e-5, not 9.9999997e-6).
        c.rms_norm_eps as f32
    )?;
    let biases = if c.biases.is_empty() {
        "none".to_string()
    } else {
        c.biases.join(", ")
    };
    writeln!(
        s,
        "  tied lm_head: {}, biases: {biases}",
        yes_no(c.tie_word_embeddings)
    )?;

    writeln!(s, "\ntensors ({})", r.tensor_count)?;
    for g in &r.tensor_groups {
        if g.tied {
            writeln!(s, "  {:<18}  tied (shares token_embd)", g.name)?;
            continue;
        }
        let types: Vec<String> = if g.types.len() == 1 {
            g.types.keys().cloned().collect()
        } else {
            g.types.iter().map(|(t, n)| format!("{t} ×{n}")).collect()
        };
        writeln!(
            s,
            "  {:<18} {:>5} {:<8} {:>8} params {:>11}  {}",
            g.name,
            g.tensors,
            if g.tensors == 1 { "tensor" } else { "tensors" },
            human_count(g.parameters),
            human_bytes(g.bytes),
            types.join(", ")
        )?;
    }
    writeln!(
        s,
        "\nparameters  {} ({})",
        human_count(r.parameters),
        grouped_digits(r.parameters)
    )?;

    let m = &r.memory;
    writeln!(s, "\nmemory")?;
    writeln!(
        s,
        "  weights on disk      {}",
        human_bytes(m.weights_on_disk_bytes)
    )?;
    writeln!(
        s,
        "  weights as f32       {}  (dequantized: what switchboard loads)",
        human_bytes(m.weights_f32_bytes)
    )?;
    writeln!(
        s,
        "  KV cache (f32)       {} per token, {} for the full {}-token context",
        human_bytes(m.kv_cache_f32_bytes_per_token),
        human_bytes(m.kv_cache_f32_bytes_full_context),
        m.context_length
    )?;

    writeln!(s, "\ntokenizer")?;
    match &r.tokenizer {
        TokenizerReport::Unavailable { error } => writeln!(s, "  unavailable: {error}")?,
        TokenizerReport::Ok(t) => {
            let gguf = match (&t.gguf_model, &t.gguf_pre) {
                (Some(model), Some(pre)) => format!("  (GGUF: model {model}, pre {pre})"),
                (Some(model), None) => format!("  (GGUF: model {model})"),
                _ => String::new(),
            };
            writeln!(s, "  model          {}{gguf}", t.model)?;
            writeln!(s, "  pre-tokenizer  {}", t.pre_tokenizer)?;
            if t.normalizer != "none" {
                writeln!(s, "  normalizer     {}", t.normalizer)?;
            }
            writeln!(
                s,
                "  vocab          {} tokens ({} added, {} special)",
                t.vocab_size, t.added_tokens, t.special_tokens
            )?;
            let none = || "none".to_string();
            writeln!(
                s,
                "  bos            {}",
                t.bos.as_ref().map_or_else(none, describe_token)
            )?;
            let eos: Vec<String> = t.eos.iter().map(describe_token).collect();
            writeln!(
                s,
                "  eos            {}",
                if eos.is_empty() {
                    none()
                } else {
                    eos.join(", ")
                }
            )?;
            writeln!(
                s,
                "  pad            {}",
                t.pad.as_ref().map_or_else(none, describe_token)
            )?;
            if let Some(unk) = &t.unk {
                writeln!(s, "  unk            {}", describe_token(unk))?;
            }
            let flag = |f: Option<bool>| f.map_or("not set", yes_no);
            writeln!(
                s,
                "  add_bos_token  {} (encoding adds BOS: {})",
                flag(t.add_bos_token),
                yes_no(t.encode_adds_bos)
            )?;
        }
    }

    match &r.chat_template {
        None => writeln!(s, "\nchat template  none (ChatML is used)")?,
        Some(t) => {
            writeln!(
                s,
                "\nchat template  {} line{}, {} chars ({})",
                t.lines,
                if t.lines == 1 { "" } else { "s" },
                t.chars,
                t.source
            )?;
            for line in &t.head {
                writeln!(s, "  | {line}")?;
            }
            if t.lines > t.head.len() {
                writeln!(s, "  | …")?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_numbers_for_people() {
        assert_eq!(human_count(134_515_008), "134.5M");
        assert_eq!(human_count(1_543_714_304), "1.54B");
        assert_eq!(human_bytes(46_080), "45.0 KiB");
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(grouped_digits(134_515_008), "134,515,008");
        assert_eq!(grouped_digits(999), "999");
    }

    #[test]
    fn groups_tensors_by_module() {
        assert_eq!(group_of("model.embed_tokens.weight"), "token_embd");
        assert_eq!(
            group_of("model.layers.3.self_attn.q_proj.bias"),
            "attention bias"
        );
        assert_eq!(
            group_of("model.layers.3.mlp.down_proj.weight"),
            "mlp gate/up/down"
        );
        assert_eq!(
            group_of("model.layers.3.post_attention_layernorm.weight"),
            "norms"
        );
        assert_eq!(group_of("model.norm.weight"), "norms");
        assert_eq!(group_of("lm_head.weight"), "lm_head");
    }
}

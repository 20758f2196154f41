//! `switchboard model import`: a GGUF file into a Hugging Face checkpoint directory.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;
use switchboard_engine::TextTokenizer;
use switchboard_model::{
    hf_tokenizer_files, write_dir, write_file, write_safetensors, Checkpoint, DType, Device,
    ModelSource, Tensor,
};

use super::inspect::{human_bytes, human_count};

fn spinner() -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

fn write_json(path: &Path, value: &Value) -> switchboard_model::Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value).unwrap_or_default();
    bytes.push(b'\n');
    write_file(path, &bytes)
}

pub(super) fn import(file: &Path, out: &Path) -> Result<()> {
    let started = Instant::now();
    if file.is_dir() {
        bail!(
            "{}: is a directory; `model import` converts a .gguf file (a checkpoint directory \
             already is a Hugging Face checkpoint)",
            file.display()
        );
    }
    let source =
        ModelSource::open(file).with_context(|| format!("cannot import {}", file.display()))?;
    let ModelSource::Gguf(gguf) = source else {
        bail!("{}: not a GGUF file", file.display());
    };
    if out.exists() {
        let empty = out.is_dir()
            && std::fs::read_dir(out)
                .with_context(|| format!("reading {}", out.display()))?
                .next()
                .is_none();
        if !empty {
            bail!(
                "{}: the output directory exists and is not empty; choose a new --out",
                out.display()
            );
        }
    }
    let tokenizer = hf_tokenizer_files(&gguf.path, gguf.metadata())
        .with_context(|| format!("cannot convert the tokenizer of {}", file.display()))?;
    // Build it once, so an unusable tokenizer is refused before any weight is written.
    let vocab = TextTokenizer::from_parts(
        &gguf.path,
        &tokenizer.tokenizer_json,
        &tokenizer.tokenizer_config,
        &tokenizer.generation_config,
    )
    .with_context(|| format!("the tokenizer of {} does not load", file.display()))?
    .vocab_size();

    let mut stored_types: BTreeMap<String, usize> = BTreeMap::new();
    for t in gguf.tensors() {
        *stored_types
            .entry(switchboard_model::ggml_type_name(t.dtype).to_string())
            .or_default() += 1;
    }
    let bar = spinner();
    bar.set_message(format!(
        "reading and dequantizing {} tensors to f32",
        gguf.tensors().len()
    ));
    let tensors = gguf
        .load_tensors(DType::F32, &Device::Cpu)
        .with_context(|| format!("reading the weights of {}", file.display()))?;
    let mut sorted: Vec<(String, Tensor)> = tensors.into_iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let parameters: usize = sorted.iter().map(|(_, t)| t.elem_count()).sum();
    let n_tensors = sorted.len();

    bar.set_message(format!(
        "writing {} ({} of f32 weights)",
        out.display(),
        human_bytes(parameters as u64 * 4)
    ));
    let config = gguf.config_json();
    write_dir(out, |tmp| {
        let metadata = std::collections::HashMap::from([("format".to_string(), "pt".to_string())]);
        let weights = tmp.join("model.safetensors");
        write_safetensors(&weights, &sorted, Some(metadata))?;
        write_json(&tmp.join("config.json"), &config)?;
        write_json(&tmp.join("tokenizer.json"), &tokenizer.tokenizer_json)?;
        write_json(
            &tmp.join("tokenizer_config.json"),
            &tokenizer.tokenizer_config,
        )?;
        write_json(
            &tmp.join("generation_config.json"),
            &tokenizer.generation_config,
        )?;
        Ok(())
    })
    .with_context(|| format!("writing {}", out.display()))?;
    bar.finish_and_clear();
    // The checkpoint reader's own checks (config, safetensors header) on what was written.
    Checkpoint::open(out).with_context(|| format!("checking the written {}", out.display()))?;
    let weights_bytes = std::fs::metadata(out.join("model.safetensors"))
        .map(|m| m.len())
        .unwrap_or(0);
    let types: Vec<String> = stored_types
        .iter()
        .map(|(t, n)| format!("{n} {t}"))
        .collect();
    println!(
        "imported {} into {}: {} {} parameters, {} tensors ({} -> F32), model.safetensors {}, \
         tokenizer {} tokens{}, in {:.1}s",
        file.display(),
        out.display(),
        gguf.config.arch().model_type(),
        human_count(parameters as u64),
        n_tensors,
        types.join(", "),
        human_bytes(weights_bytes),
        vocab,
        if gguf.config.tie_word_embeddings {
            ", tied lm_head"
        } else {
            ""
        },
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

//! The training loop: data, schedule, accumulation, clipping, validation, checkpoints, export.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Tensor, Var};
use switchboard_engine::TextTokenizer;
use switchboard_model::{AdapterConfig, CausalLm, ForwardMode, LoraAdapter, ModelSource};

use crate::config::{Method, TrainConfig};
use crate::dataset::{
    check_exists, fingerprint, load_dataset, split_off_validation, DataSource, Dataset, ExampleRef,
    Mix, Sampler,
};
use crate::error::{Result, TrainError};
use crate::loss::{batch_nll, LossItem};
use crate::optim::{clip_grad_norm, AdamW, AdamWParams};
use crate::params::{restore_vars, FullParams, LoraParams};
use crate::plot::write_loss_plot;
use crate::rng::{stream, Rng};
use crate::schedule::lr_at;
use crate::state::{
    identity_difference, latest_checkpoint, load_checkpoint, save_checkpoint, CheckpointState,
    LogRecord, LogWriter, StepRecord, ValRecord,
};
use crate::tokenize::{Renderer, TokenizedExample};

/// File names a run writes into its output directory besides the model itself.
pub const LOG_FILE: &str = "train_log.jsonl";
/// The loss-curve image.
pub const PLOT_FILE: &str = "loss.png";

/// Facts about a run, reported once before the first step.
#[derive(Debug, Clone)]
pub struct RunInfo {
    /// LoRA or full.
    pub method: Method,
    /// Optimizer steps of the whole run.
    pub total_steps: usize,
    /// Steps already done (resumed runs).
    pub start_step: usize,
    /// The step this session stops after.
    pub end_step: usize,
    /// Training examples (one epoch).
    pub train_examples: usize,
    /// Validation examples.
    pub val_examples: usize,
    /// Examples cut to `max_seq_len` (training and validation).
    pub truncated: usize,
    /// Examples skipped because truncation left nothing to learn.
    pub skipped: usize,
    /// Records per detected format.
    pub formats: BTreeMap<String, usize>,
    /// Number of trained scalars.
    pub trainable_params: usize,
    /// The checkpoint resumed from.
    pub resumed_from: Option<PathBuf>,
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct TrainSummary {
    /// The output directory.
    pub out: PathBuf,
    /// Optimizer steps completed (including resumed ones).
    pub steps_done: usize,
    /// Steps of the whole run.
    pub total_steps: usize,
    /// False when the run stopped early (`stop_after_steps`) and left a checkpoint to resume.
    pub completed: bool,
    /// Loss of the last step.
    pub final_loss: Option<f64>,
    /// Last validation loss.
    pub final_val_loss: Option<f64>,
    /// Mean tokens per second of this session's steps.
    pub tokens_per_s: f64,
    /// Every record of the run, resumed part included.
    pub history: Vec<LogRecord>,
    /// The last training checkpoint written, if any.
    pub checkpoint: Option<PathBuf>,
}

/// Receives progress as the run goes; every method does nothing by default.
pub trait Observer {
    /// Before the first step.
    fn on_start(&mut self, _info: &RunInfo) {}
    /// After each optimizer step.
    fn on_step(&mut self, _record: &StepRecord) {}
    /// After each validation pass.
    fn on_validation(&mut self, _record: &ValRecord) {}
    /// A remark worth showing (truncation, a warmup longer than the run, checkpoints).
    fn on_note(&mut self, _note: &str) {}
}

/// An observer that ignores everything.
pub struct Silent;

impl Observer for Silent {}

/// What the optimizer trains, and the model that computes with it.
// One value per run: the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
enum Trainable {
    Lora {
        base: CausalLm,
        params: LoraParams,
        dropout: f64,
    },
    Full(FullParams),
}

impl Trainable {
    fn model(&self) -> &CausalLm {
        match self {
            Self::Lora { base, .. } => base,
            Self::Full(params) => params.model(),
        }
    }

    fn vars(&self) -> Vec<(String, Var)> {
        match self {
            Self::Lora { params, .. } => params.vars(),
            Self::Full(params) => params.vars(),
        }
    }

    /// Adapters for a micro-batch of `n` sequences: one per sequence with dropout, otherwise a
    /// single shared one (so the model applies it as one run of rows); empty for full training.
    fn micro_batch_adapters(
        &self,
        n: usize,
        (step, micro): (u64, u64),
        seed: u64,
    ) -> Result<Vec<LoraAdapter>> {
        match self {
            Self::Full(_) => Ok(Vec::new()),
            Self::Lora {
                params, dropout, ..
            } if *dropout > 0.0 => (0..n)
                .map(|i| {
                    let mut rng = Rng::derived(seed, &[stream::DROPOUT, step, micro, i as u64]);
                    params.adapter_with_dropout(*dropout, &mut rng)
                })
                .collect(),
            Self::Lora { params, .. } => Ok(vec![params.adapter()?]),
        }
    }

    fn eval_adapter(&self) -> Result<Option<LoraAdapter>> {
        match self {
            Self::Lora { params, .. } => Ok(Some(params.frozen_adapter("eval")?)),
            Self::Full(_) => Ok(None),
        }
    }

    /// Writes the trained result into `out` file by file (each atomically), next to the log
    /// and checkpoints: a PEFT adapter, or a Hugging Face checkpoint.
    fn export(&self, out: &Path, base_dir: &Path) -> Result<()> {
        match self {
            Self::Lora { params, .. } => {
                let name = out
                    .file_name()
                    .map_or_else(|| "adapter".into(), |n| n.to_string_lossy().into_owned());
                let adapter = params.frozen_adapter(&name)?;
                let staging = out.join(".export");
                if staging.exists() {
                    std::fs::remove_dir_all(&staging).map_err(|e| TrainError::file(&staging, e))?;
                }
                adapter.save_peft(&staging)?;
                for file in ["adapter_config.json", "adapter_model.safetensors"] {
                    std::fs::rename(staging.join(file), out.join(file))
                        .map_err(|e| TrainError::file(out.join(file), e))?;
                }
                std::fs::remove_dir(&staging).map_err(|e| TrainError::file(&staging, e))
            }
            Self::Full(params) => {
                params.save_weights(&out.join("model.safetensors"))?;
                for file in COPIED_FILES {
                    let from = base_dir.join(file);
                    if from.is_file() {
                        let bytes = std::fs::read(&from).map_err(|e| TrainError::file(&from, e))?;
                        switchboard_model::write_file(&out.join(file), &bytes)?;
                    }
                }
                Ok(())
            }
        }
    }
}

/// Files of the base directory a full fine-tune carries over unchanged.
const COPIED_FILES: [&str; 9] = [
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
    "chat_template.jinja",
];

/// The examples of one optimizer step.
struct PlannedStep {
    /// Fractional epoch reached after it.
    epoch: f64,
    examples: Vec<ExampleRef>,
}

fn plan_steps(plan: Vec<Vec<ExampleRef>>, per_step: usize) -> Vec<PlannedStep> {
    let mut steps = Vec::new();
    for (epoch, order) in plan.into_iter().enumerate() {
        let chunks = order.len().div_ceil(per_step);
        for (i, chunk) in order.chunks(per_step).enumerate() {
            steps.push(PlannedStep {
                epoch: epoch as f64 + (i + 1) as f64 / chunks as f64,
                examples: chunk.to_vec(),
            });
        }
    }
    steps
}

fn parse_sources(key: &str, specs: &[String]) -> Result<Vec<DataSource>> {
    specs
        .iter()
        .map(|s| {
            let source: DataSource = s.parse().map_err(|e: String| TrainError::setting(key, e))?;
            check_exists(&source)?;
            Ok(source)
        })
        .collect()
}

/// Mean loss per target token over `examples`, with the current weights and no gradient.
fn validation_loss(
    trainable: &Trainable,
    examples: &[TokenizedExample],
    batch: usize,
) -> Result<f64> {
    let adapter = trainable.eval_adapter()?;
    let (mut sum, mut count) = (0.0, 0);
    for chunk in examples.chunks(batch) {
        let items: Vec<LossItem<'_>> = chunk.iter().map(|e| (e, adapter.as_ref())).collect();
        let (nll, n) = batch_nll(trainable.model(), &items, ForwardMode::Inference)?;
        sum += nll.to_dtype(DType::F64)?.to_scalar::<f64>()?;
        count += n;
    }
    Ok(sum / count.max(1) as f64)
}

/// Everything loaded before the first step.
struct Prepared {
    datasets: Vec<Dataset>,
    validation: Vec<TokenizedExample>,
    steps: Vec<PlannedStep>,
    info: RunInfo,
}

fn prepare(
    config: &TrainConfig,
    method: Method,
    source: &ModelSource,
) -> Result<(Prepared, Vec<String>)> {
    let max_positions = source.config().max_positions();
    let mut notes = Vec::new();
    let max_len = config.max_seq_len.min(max_positions);
    if max_len < config.max_seq_len {
        notes.push(format!(
            "max_seq_len {} exceeds the model's {max_positions} positions; using {max_len}",
            config.max_seq_len
        ));
    }
    let renderer = Renderer::new(TextTokenizer::from_source(source)?, max_len);
    let mut datasets = parse_sources("data", &config.data)?
        .iter()
        .map(|s| load_dataset(s, &renderer))
        .collect::<Result<Vec<_>>>()?;
    let mut stats_sets: Vec<Dataset> = Vec::new();
    let validation = if config.val_data.is_empty() {
        let mut held = Vec::new();
        if config.val_fraction > 0.0 {
            for dataset in &mut datasets {
                held.extend(split_off_validation(
                    dataset,
                    config.val_fraction,
                    config.seed,
                ));
            }
        }
        held
    } else {
        stats_sets = parse_sources("val_data", &config.val_data)?
            .iter()
            .map(|s| load_dataset(s, &renderer))
            .collect::<Result<Vec<_>>>()?;
        stats_sets.iter().flat_map(|d| d.examples.clone()).collect()
    };
    let mix = match config.mix.trim() {
        "" => None,
        text => Some(
            text.parse::<Mix>()
                .map_err(|e| TrainError::setting("mix", e))?,
        ),
    };
    let sampler = Sampler::new(&datasets, mix.as_ref(), config.seed)?;
    let steps = plan_steps(
        sampler.plan(config.epochs),
        config.batch_size * config.grad_accum,
    );
    let mut formats = BTreeMap::new();
    let (mut truncated, mut skipped) = (0, 0);
    for d in datasets.iter().chain(&stats_sets) {
        for (format, n) in &d.stats.formats {
            *formats.entry(format.clone()).or_insert(0) += n;
        }
        truncated += d.stats.truncated;
        skipped += d.stats.skipped;
    }
    if truncated > 0 {
        notes.push(format!(
            "{truncated} examples were truncated to {max_len} tokens"
        ));
    }
    if skipped > 0 {
        notes.push(format!(
            "{skipped} examples had no trained token left after truncation and were skipped"
        ));
    }
    if config.warmup_steps >= steps.len() {
        notes.push(format!(
            "warmup_steps {} >= the run's {} steps: the learning rate never reaches its peak",
            config.warmup_steps,
            steps.len()
        ));
    }
    let info = RunInfo {
        method,
        total_steps: steps.len(),
        start_step: 0,
        end_step: steps.len(),
        train_examples: sampler.epoch_len(),
        val_examples: validation.len(),
        truncated,
        skipped,
        formats,
        trainable_params: 0,
        resumed_from: None,
    };
    Ok((
        Prepared {
            datasets,
            validation,
            steps,
            info,
        },
        notes,
    ))
}

fn build_trainable(
    config: &TrainConfig,
    method: Method,
    source: &ModelSource,
    base_dir: &Path,
) -> Result<Trainable> {
    let device = config.device.open()?;
    Ok(match method {
        Method::Lora => {
            // A GGUF base is dequantized: LoRA trains over the same weights it will serve on.
            let base = CausalLm::from_source(source, DType::F32, &device)?;
            let mut adapter_config =
                AdapterConfig::new(config.r, config.lora_alpha, &config.target_projs()?);
            adapter_config.use_rslora = config.rslora;
            adapter_config.base_model_name_or_path = Some(base_dir.to_string_lossy().into_owned());
            let params = LoraParams::init(
                base.config(),
                adapter_config,
                config.seed,
                DType::F32,
                &device,
            )?;
            Trainable::Lora {
                base,
                params,
                dropout: config.lora_dropout,
            }
        }
        Method::Full => match source {
            ModelSource::Checkpoint(checkpoint) => {
                Trainable::Full(FullParams::load(checkpoint, DType::F32, &device)?)
            }
            ModelSource::Gguf(_) => {
                return Err(TrainError::setting(
                    "base",
                    "full fine-tuning needs a Hugging Face checkpoint directory; convert the \
                     GGUF file first with `switchboard model import FILE.gguf --out DIR`",
                ))
            }
        },
    })
}

/// Trains per `config` and writes the result, log, plot and checkpoints under `config.out`.
pub fn train(
    config: &TrainConfig,
    method: Method,
    observer: &mut dyn Observer,
) -> Result<TrainSummary> {
    config.validate(method)?;
    let missing = |key: &str| TrainError::setting(key, "is required");
    let base_dir = config.base.clone().ok_or_else(|| missing("base"))?;
    let out = config.out.clone().ok_or_else(|| missing("out"))?;
    let source = ModelSource::open(&base_dir)?;
    let (prepared, notes) = prepare(config, method, &source)?;
    let Prepared {
        datasets,
        validation,
        steps,
        mut info,
    } = prepared;
    let trainable = build_trainable(config, method, &source, &base_dir)?;
    let vars = trainable.vars();
    info.trainable_params = vars.iter().map(|(_, v)| v.elem_count()).sum();
    let mut optimizer = AdamW::new(
        vars.clone(),
        AdamWParams {
            beta1: config.adam_beta1,
            beta2: config.adam_beta2,
            eps: config.adam_eps,
            weight_decay: config.weight_decay,
        },
    )?;
    let identity = config.identity(method);
    let data_fingerprint = fingerprint(&datasets);

    // Resume, or start in an empty output directory.
    let mut history = Vec::new();
    let mut start = 0;
    match config.resume.as_deref() {
        Some(which) => {
            let dir = if which == "latest" {
                latest_checkpoint(&out)?
            } else {
                PathBuf::from(which)
            };
            let device = trainable.model().device().clone();
            let loaded = load_checkpoint(&dir, &device)?;
            let refuse = |reason: String| TrainError::Resume {
                path: dir.clone(),
                reason,
            };
            if let Some(diff) = identity_difference(&loaded.state.identity, &identity) {
                return Err(refuse(format!("settings differ: {diff}")));
            }
            if loaded.state.data_fingerprint != data_fingerprint {
                return Err(refuse(
                    "the training data differs from the checkpoint's".into(),
                ));
            }
            if loaded.state.step > steps.len() {
                return Err(refuse(format!(
                    "it is at step {} of a {}-step run",
                    loaded.state.step,
                    steps.len()
                )));
            }
            restore_vars(&vars, &loaded.params, &dir)?;
            optimizer
                .load_state(&loaded.optimizer, loaded.state.step as u64)
                .map_err(|e| match e {
                    TrainError::Resume { reason, .. } => refuse(reason),
                    other => other,
                })?;
            history = loaded.state.history;
            start = loaded.state.step;
            info.resumed_from = Some(dir);
        }
        None => {
            let occupied = out.is_dir()
                && std::fs::read_dir(&out)
                    .map_err(|e| TrainError::file(&out, e))?
                    .next()
                    .is_some();
            if occupied {
                return Err(TrainError::file(
                    &out,
                    "output directory is not empty; choose another, or pass --resume to continue its run",
                ));
            }
        }
    }
    std::fs::create_dir_all(&out).map_err(|e| TrainError::file(&out, e))?;
    let mut log = LogWriter::create(&out.join(LOG_FILE), &history)?;

    let total = steps.len();
    let end = config
        .stop_after_steps
        .map_or(total, |s| s.clamp(start, total));
    info.start_step = start;
    info.end_step = end;
    observer.on_start(&info);
    for note in &notes {
        observer.on_note(note);
    }

    let example = |r: &ExampleRef| &datasets[r.0].examples[r.1];
    let started = Instant::now();
    let (mut session_tokens, mut last_checkpoint) = (0usize, None);
    for (index, planned) in steps.iter().enumerate().take(end).skip(start) {
        let step_started = Instant::now();
        let lr = lr_at(
            config.schedule,
            config.lr,
            config.warmup_steps,
            index,
            total,
        );
        let targets: usize = planned
            .examples
            .iter()
            .map(|r| example(r).target_count())
            .sum();
        let tokens: usize = planned
            .examples
            .iter()
            .map(|r| example(r).tokens.len())
            .sum();
        let mut grads: Option<Vec<Tensor>> = None;
        let mut loss_sum = 0.0;
        for (micro, refs) in planned.examples.chunks(config.batch_size).enumerate() {
            let adapters = trainable.micro_batch_adapters(
                refs.len(),
                (index as u64, micro as u64),
                config.seed,
            )?;
            let items: Vec<LossItem<'_>> = refs
                .iter()
                .enumerate()
                .map(|(i, r)| (example(r), adapters.get(i).or(adapters.first())))
                .collect();
            let (nll, _) = batch_nll(trainable.model(), &items, ForwardMode::Differentiable)?;
            loss_sum += nll.to_dtype(DType::F64)?.to_scalar::<f64>()?;
            let store = (nll / targets.max(1) as f64)?.backward()?;
            let micro_grads = vars
                .iter()
                .map(|(_, v)| match store.get(v.as_tensor()) {
                    Some(g) => Ok(g.clone()),
                    None => v.zeros_like(),
                })
                .collect::<candle_core::Result<Vec<_>>>()?;
            grads = Some(match grads {
                None => micro_grads,
                Some(acc) => acc
                    .iter()
                    .zip(&micro_grads)
                    .map(|(a, g)| a + g)
                    .collect::<candle_core::Result<Vec<_>>>()?,
            });
        }
        let loss = loss_sum / targets.max(1) as f64;
        if !loss.is_finite() {
            return Err(TrainError::Diverged {
                step: index + 1,
                loss,
            });
        }
        let mut grads = grads.unwrap_or_default();
        let grad_norm = clip_grad_norm(&mut grads, config.max_grad_norm)?;
        optimizer.step(&grads, lr)?;

        session_tokens += tokens;
        let record = StepRecord {
            step: index + 1,
            total_steps: total,
            epoch: planned.epoch,
            loss,
            lr,
            grad_norm,
            tokens,
            tokens_per_s: tokens as f64 / step_started.elapsed().as_secs_f64().max(1e-9),
            elapsed_s: started.elapsed().as_secs_f64(),
        };
        observer.on_step(&record);
        log.append(&LogRecord::Train(record.clone()))?;
        history.push(LogRecord::Train(record));

        let step = index + 1;
        let is_last = step == total;
        if !validation.is_empty()
            && (is_last || (config.eval_every > 0 && step % config.eval_every == 0))
        {
            let val = ValRecord {
                step,
                val_loss: validation_loss(&trainable, &validation, config.batch_size)?,
            };
            observer.on_validation(&val);
            log.append(&LogRecord::Val(val.clone()))?;
            history.push(LogRecord::Val(val));
            write_plot(&out, &history)?;
        }
        let stopping_early = step == end && !is_last;
        if stopping_early || (config.save_every > 0 && step % config.save_every == 0 && !is_last) {
            let state = CheckpointState {
                step,
                identity: identity.clone(),
                data_fingerprint,
                history: history.clone(),
            };
            let params: Vec<(String, Tensor)> = vars
                .iter()
                .map(|(n, v)| (n.clone(), v.as_tensor().detach()))
                .collect();
            let dir = save_checkpoint(
                &out,
                &state,
                &params,
                &optimizer.state_tensors(),
                config.keep_checkpoints,
            )?;
            observer.on_note(&format!("checkpoint {}", dir.display()));
            last_checkpoint = Some(dir);
        }
    }
    let completed = end == total;
    if completed {
        trainable.export(&out, &base_dir)?;
    }
    write_plot(&out, &history)?;
    let final_loss = history.iter().rev().find_map(|r| match r {
        LogRecord::Train(s) => Some(s.loss),
        LogRecord::Val(_) => None,
    });
    let final_val_loss = history.iter().rev().find_map(|r| match r {
        LogRecord::Val(v) => Some(v.val_loss),
        LogRecord::Train(_) => None,
    });
    Ok(TrainSummary {
        out,
        steps_done: end.max(start),
        total_steps: total,
        completed,
        final_loss,
        final_val_loss,
        tokens_per_s: session_tokens as f64 / started.elapsed().as_secs_f64().max(1e-9),
        history,
        checkpoint: last_checkpoint,
    })
}

fn write_plot(out: &Path, history: &[LogRecord]) -> Result<()> {
    let mut train = Vec::new();
    let mut val = Vec::new();
    for record in history {
        match record {
            LogRecord::Train(s) => train.push((s.step, s.loss)),
            LogRecord::Val(v) => val.push((v.step, v.val_loss)),
        }
    }
    write_loss_plot(&out.join(PLOT_FILE), &train, &val)
}

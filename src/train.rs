//! `switchboard train lora|full`: fine-tuning from the command line, with a progress bar.
//!
//! Every flag can also be given in a TOML `--config` under the same name (`-` written `_`);
//! flags override the file.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use switchboard_train::{
    DeviceChoice, LrSchedule, Method, Observer, RunInfo, StepRecord, TrainConfig, ValRecord,
};

#[derive(Subcommand)]
pub enum TrainCommand {
    /// Train a LoRA adapter on a frozen base and write it in PEFT's layout.
    Lora(Box<TrainArgs>),
    /// Train every weight and write a Hugging Face checkpoint directory.
    Full(Box<TrainArgs>),
}

#[derive(Args)]
pub struct TrainArgs {
    /// TOML file with any of the settings below; flags given here override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Base model: a checkpoint directory (config.json, safetensors, tokenizer files) or, for
    /// LoRA, a GGUF file [LoRA default: the bundled SmolLM2-135M-Instruct GGUF].
    #[arg(long)]
    base: Option<PathBuf>,
    /// Training JSONL files, comma-separated: `path` (named by file stem) or `name=path`.
    #[arg(long, value_delimiter = ',')]
    data: Vec<String>,
    /// Output directory (adapter or checkpoint, train_log.jsonl, loss.png, checkpoints/).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Validation JSONL files, comma-separated.
    #[arg(long, value_delimiter = ',')]
    val_data: Vec<String>,
    /// Hold out this fraction of each training dataset for validation [default: 0].
    #[arg(long)]
    val_fraction: Option<f64>,
    /// Sample datasets by ratio: `biology=0.3,history=0.3,security=0.2,general=0.2`.
    #[arg(long)]
    mix: Option<String>,
    /// LoRA rank [default: 16].
    #[arg(long)]
    r: Option<usize>,
    /// LoRA alpha [default: 32].
    #[arg(long)]
    lora_alpha: Option<f64>,
    /// Projections to adapt, comma-separated, from q_proj,k_proj,v_proj,o_proj,gate_proj,
    /// up_proj,down_proj [default: q_proj,v_proj].
    #[arg(long, alias = "target", value_delimiter = ',')]
    target_modules: Vec<String>,
    /// Dropout on the LoRA input [default: 0.05].
    #[arg(long)]
    lora_dropout: Option<f64>,
    /// Scale LoRA by alpha / sqrt(r) (rsLoRA).
    #[arg(long)]
    rslora: bool,
    /// Peak learning rate [default: 2e-4].
    #[arg(long)]
    lr: Option<f64>,
    /// Passes over the data [default: 3].
    #[arg(long)]
    epochs: Option<usize>,
    /// Sequences per forward pass [default: 4].
    #[arg(long)]
    batch_size: Option<usize>,
    /// Micro-batches per optimizer step [default: 8].
    #[arg(long)]
    grad_accum: Option<usize>,
    /// Linear warmup steps [default: 100].
    #[arg(long)]
    warmup_steps: Option<usize>,
    /// Decay after warmup: cosine, linear or constant [default: cosine].
    #[arg(long)]
    schedule: Option<LrSchedule>,
    /// Clip the global gradient norm to this; 0 disables [default: 1.0].
    #[arg(long)]
    max_grad_norm: Option<f64>,
    /// AdamW weight decay [default: 0].
    #[arg(long)]
    weight_decay: Option<f64>,
    /// Truncate examples to this many tokens [default: 2048].
    #[arg(long)]
    max_seq_len: Option<usize>,
    /// Seed of initialisation, shuffling, mixing and dropout [default: 42].
    #[arg(long)]
    seed: Option<u64>,
    /// Validation loss every N steps; 0 only at the end [default: 100].
    #[arg(long)]
    eval_every: Option<usize>,
    /// Checkpoint every N steps; 0 never [default: 500].
    #[arg(long)]
    save_every: Option<usize>,
    /// Checkpoints kept on disk [default: 3].
    #[arg(long)]
    keep_checkpoints: Option<usize>,
    /// cpu, cuda or metal [default: cpu].
    #[arg(long)]
    device: Option<DeviceChoice>,
    /// Continue from a checkpoint directory, or the newest under --out when no value is given.
    #[arg(long, num_args = 0..=1, default_missing_value = "latest")]
    resume: Option<String>,
    /// Stop with a checkpoint after this many steps in total, keeping the full run's schedule.
    #[arg(long)]
    stop_after_steps: Option<usize>,
}

impl TrainArgs {
    fn into_config(self) -> Result<TrainConfig> {
        let mut config = match &self.config {
            Some(path) => TrainConfig::from_file(path)?,
            None => TrainConfig::default(),
        };
        macro_rules! override_with {
            ($($field:ident),*) => {$(
                if let Some(value) = self.$field {
                    config.$field = value.into();
                }
            )*};
        }
        override_with!(
            base,
            out,
            val_fraction,
            mix,
            r,
            lora_alpha,
            lora_dropout,
            lr,
            epochs,
            batch_size,
            grad_accum,
            warmup_steps,
            schedule,
            max_grad_norm,
            weight_decay,
            max_seq_len,
            seed,
            eval_every,
            save_every,
            keep_checkpoints,
            device,
            resume,
            stop_after_steps
        );
        if !self.data.is_empty() {
            config.data = self.data;
        }
        if !self.val_data.is_empty() {
            config.val_data = self.val_data;
        }
        if !self.target_modules.is_empty() {
            config.target_modules = self.target_modules;
        }
        config.rslora |= self.rslora;
        Ok(config)
    }
}

/// Shows the run on a progress bar; notes and validation results print above it.
struct ProgressObserver {
    bar: ProgressBar,
}

impl ProgressObserver {
    /// A line above the bar; on stderr when the bar is hidden (output is not a terminal).
    fn say(&self, line: String) {
        if self.bar.is_hidden() {
            eprintln!("{line}");
        } else {
            self.bar.println(line);
        }
    }
}

impl Observer for ProgressObserver {
    fn on_start(&mut self, info: &RunInfo) {
        let formats: Vec<String> = info
            .formats
            .iter()
            .map(|(f, n)| format!("{n} {f}"))
            .collect();
        self.say(format!(
            "{} training: {} examples ({}), {} validation, {} trainable parameters, {} steps",
            match info.method {
                Method::Lora => "LoRA",
                Method::Full => "full",
            },
            info.train_examples,
            formats.join(", "),
            info.val_examples,
            info.trainable_params,
            info.total_steps
        ));
        if let Some(dir) = &info.resumed_from {
            self.say(format!(
                "resuming at step {} from {}",
                info.start_step,
                dir.display()
            ));
        }
        self.bar.set_length(info.end_step as u64);
        self.bar.set_position(info.start_step as u64);
        self.bar.reset_eta();
    }

    fn on_step(&mut self, record: &StepRecord) {
        self.bar.set_position(record.step as u64);
        self.bar.set_message(format!(
            "loss {:.4}  lr {:.2e}  {:.0} tok/s  epoch {:.2}",
            record.loss, record.lr, record.tokens_per_s, record.epoch
        ));
    }

    fn on_validation(&mut self, record: &ValRecord) {
        self.say(format!(
            "step {}: validation loss {:.4}",
            record.step, record.val_loss
        ));
    }

    fn on_note(&mut self, note: &str) {
        self.say(note.to_string());
    }
}

pub fn run(command: TrainCommand) -> Result<()> {
    let (method, args) = match command {
        TrainCommand::Lora(args) => (Method::Lora, args),
        TrainCommand::Full(args) => (Method::Full, args),
    };
    let mut config = args.into_config()?;
    if config.base.is_none() && method == Method::Lora {
        // Adapters belong to the model they are served on: by default, the bundled one.
        config.base = Some(crate::serve::bundled(crate::serve::DEFAULT_MODEL));
    }
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template(
            "{bar:30} {pos}/{len} steps  {msg}  [{elapsed_precise} < {eta}]",
        )
        .context("progress bar template")?,
    );
    let mut observer = ProgressObserver { bar };
    let summary =
        switchboard_train::train(&config, method, &mut observer).context("training failed")?;
    observer.bar.finish_and_clear();
    let what = match (summary.completed, method) {
        (false, _) => "stopped early; resume with --resume",
        (true, Method::Lora) => "PEFT adapter written",
        (true, Method::Full) => "checkpoint written",
    };
    println!(
        "{what}: {} (step {}/{}, loss {}, validation loss {}, {:.0} tokens/s)",
        summary.out.display(),
        summary.steps_done,
        summary.total_steps,
        summary.final_loss.map_or("-".into(), |l| format!("{l:.4}")),
        summary
            .final_val_loss
            .map_or("-".into(), |l| format!("{l:.4}")),
        summary.tokens_per_s
    );
    Ok(())
}

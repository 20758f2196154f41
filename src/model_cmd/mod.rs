//! `switchboard model`: describe a base model (`inspect`) and convert a GGUF file into a
//! Hugging Face checkpoint (`import`).

use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;

mod import;
mod inspect;

use import::import;
use inspect::{inspect, render};

#[derive(Subcommand)]
pub enum ModelCommand {
    /// Describe a model without loading its weights: format, architecture, config, tensors,
    /// parameter count, memory needs, tokenizer and chat template.
    Inspect {
        /// A checkpoint directory, a .gguf file, or a hub id (`Org/Name`) in the local cache.
        path: String,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Convert a GGUF file into a Hugging Face checkpoint (f32 safetensors, config.json and
    /// tokenizer files) that switchboard and transformers load.
    Import {
        /// The .gguf file.
        file: PathBuf,
        /// Output directory; must not exist or be empty.
        #[arg(long)]
        out: PathBuf,
    },
}

pub fn run(command: ModelCommand) -> Result<()> {
    match command {
        ModelCommand::Inspect { path, json } => {
            let report = inspect(&path)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", render(&report));
            }
            Ok(())
        }
        ModelCommand::Import { file, out } => import(&file, &out),
    }
}

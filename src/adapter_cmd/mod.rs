//! `switchboard adapter`: fuse an adapter into its base (`merge`), gate a retrained adapter
//! against the served one and hot-swap it in (`promote`), and put an archived version back
//! (`restore`).

mod promote;
mod restore;
mod store;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use switchboard_eval::client::{ClientOptions, OpenAiClient};

use crate::serve::bundled;

#[derive(Subcommand)]
pub enum AdapterCommand {
    /// Fuse a PEFT LoRA adapter into its base and write a normal Hugging Face checkpoint.
    Merge {
        /// Base checkpoint directory (config.json + safetensors).
        #[arg(long)]
        base: PathBuf,
        /// PEFT adapter directory (adapter_config.json + adapter_model.safetensors).
        #[arg(long)]
        adapter: PathBuf,
        /// Output directory; must not exist or be empty.
        #[arg(long)]
        out: PathBuf,
    },
    /// Evaluate a candidate against the version a running server serves (`eval run` + `eval
    /// compare`); on `promote`, archive the served version and hot-swap the candidate in with a
    /// compare-and-swap on its generation. Exit code: 0 promoted, 1 regression, 2 no gain,
    /// 3 inconclusive (the server is left as it was).
    Promote(Box<promote::PromoteArgs>),
    /// Put an archived version of an adapter back, on disk and in the running server.
    Restore(Box<restore::RestoreArgs>),
}

/// The running server and the directory it loads adapters from.
#[derive(Args)]
struct ServerArgs {
    /// The running switchboard server (`http://host:port`).
    #[arg(long)]
    url: String,
    /// The server's adapter root (its --adapter-root, else its --adapters) as this machine sees
    /// it [default: the bundled adapters/].
    #[arg(long)]
    adapter_root: Option<PathBuf>,
    /// Bearer key of inference requests.
    #[arg(long, env = "OPENAI_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Bearer key of adapter loading [default: --api-key].
    #[arg(long, env = "SWITCHBOARD_ADMIN_KEY", hide_env_values = true)]
    admin_key: Option<String>,
}

impl ServerArgs {
    fn adapter_root(&self) -> PathBuf {
        self.adapter_root
            .clone()
            .unwrap_or_else(|| bundled("adapters"))
    }

    /// A client for inference and one for administration.
    fn clients(&self) -> Result<(OpenAiClient, OpenAiClient)> {
        let connect = |key: Option<String>| {
            let mut options = ClientOptions::with_api_key(key);
            options.timeout = Duration::from_secs(300);
            OpenAiClient::new(&self.url, options)
                .with_context(|| format!("connecting to {}", self.url))
        };
        let admin_key = self.admin_key.clone().or_else(|| self.api_key.clone());
        Ok((connect(self.api_key.clone())?, connect(admin_key)?))
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("switchboard-adapter")
        .build()
        .context("starting the tokio runtime")
}

pub fn run(command: AdapterCommand) -> Result<()> {
    match command {
        AdapterCommand::Merge { base, adapter, out } => {
            let report =
                switchboard_model::merge_adapter(&base, &adapter, &out).with_context(|| {
                    format!("merging {} into {}", adapter.display(), base.display())
                })?;
            println!(
                "merged {} modules of {} into {} ({} tensors, copied {})",
                report.merged_modules,
                adapter.display(),
                out.display(),
                report.tensors,
                report.copied_files.join(", ")
            );
            Ok(())
        }
        AdapterCommand::Promote(args) => {
            let code = promote::run(*args)?;
            std::process::exit(code);
        }
        AdapterCommand::Restore(args) => restore::run(*args),
    }
}

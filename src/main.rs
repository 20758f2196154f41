//! The `switchboard` command: serve, and the tools around serving.

use anyhow::Result;
use clap::{Parser, Subcommand};

mod adapter_cmd;
mod bench_cmd;
mod data_cmd;
mod eval_cmd;
mod hub;
mod kb;
mod model_cmd;
mod router;
mod serve;
mod train;

#[derive(Parser)]
#[command(
    name = "switchboard",
    version,
    about = "OpenAI-compatible multi-LoRA inference server"
)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// With no subcommand, `switchboard` serves: these are `serve`'s settings.
    #[command(flatten)]
    serve: serve::ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the model over an OpenAI-compatible HTTP API (the default command).
    Serve(Box<serve::ServeArgs>),
    /// Index, search and evaluate the knowledge base used for retrieval.
    Kb {
        #[command(subcommand)]
        command: kb::KbCommand,
    },
    /// Train and evaluate the domain router used for `model: "auto"`.
    Router {
        #[command(subcommand)]
        command: router::RouterCommand,
    },
    /// Train LoRA adapters or full models
    Train {
        #[command(subcommand)]
        command: train::TrainCommand,
    },
    /// Inspect, import and convert base models.
    Model {
        #[command(subcommand)]
        command: model_cmd::ModelCommand,
    },
    /// Evaluate the base model, adapters, retrieval and routing on suites; compare runs.
    Eval {
        #[command(subcommand)]
        command: eval_cmd::EvalCommand,
    },
    /// Turn course material into training data: extract, synthesize with a teacher, filter,
    /// split, convert, count.
    Data {
        #[command(subcommand)]
        command: data_cmd::DataCommand,
    },
    /// Load-test an OpenAI-compatible server: vLLM-style serving metrics, per adapter.
    Bench(bench_cmd::BenchArgs),
    /// Work with LoRA adapters.
    Adapter {
        #[command(subcommand)]
        command: adapter_cmd::AdapterCommand,
    },
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve(Box::new(cli.serve))) {
        Command::Serve(args) => serve::run(*args),
        Command::Kb { command } => kb::run(command),
        Command::Router { command } => router::run(command),
        Command::Train { command } => train::run(command),
        Command::Model { command } => model_cmd::run(command),
        Command::Eval { command } => eval_cmd::run(command),
        Command::Bench(args) => bench_cmd::run(args),
        Command::Data { command } => data_cmd::run(command),
        Command::Adapter { command } => adapter_cmd::run(command),
    }
}

mod adapter_cli;
mod harness;
mod server;

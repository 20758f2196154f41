mod adapter_cli;
mod harness;
mod routing;
mod server;
mod tools_cli;
mod train_cli;

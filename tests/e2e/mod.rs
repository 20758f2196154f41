mod adapter_cli;
mod harness;
mod routing;
mod server;
mod train_cli;

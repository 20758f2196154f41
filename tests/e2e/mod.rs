mod adapter_cli;
mod bundled;
mod harness;
mod model_cli;
mod routing;
mod server;
mod tools_cli;
mod train_cli;

mod adapter_cli;

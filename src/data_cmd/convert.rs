//! (being written)

use anyhow::Result;

#[derive(clap::Args)]
pub struct ConvertArgs {}

pub fn run(_args: ConvertArgs) -> Result<()> {
    anyhow::bail!("being written")
}

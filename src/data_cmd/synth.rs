//! (being written)

use anyhow::Result;

#[derive(clap::Args)]
pub struct SynthArgs {}

pub fn run(_args: SynthArgs) -> Result<()> {
    anyhow::bail!("being written")
}

//! (being written)

use anyhow::Result;

#[derive(clap::Args)]
pub struct ExtractArgs {}

pub fn run(_args: ExtractArgs) -> Result<()> {
    anyhow::bail!("being written")
}

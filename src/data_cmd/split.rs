//! (being written)

use anyhow::Result;

#[derive(clap::Args)]
pub struct SplitArgs {}

pub fn run(_args: SplitArgs) -> Result<()> {
    anyhow::bail!("being written")
}

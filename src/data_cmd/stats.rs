//! (being written)

use anyhow::Result;

#[derive(clap::Args)]
pub struct StatsArgs {}

pub fn run(_args: StatsArgs) -> Result<()> {
    anyhow::bail!("being written")
}

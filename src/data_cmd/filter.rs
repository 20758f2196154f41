//! (being written)

use anyhow::Result;

#[derive(clap::Args)]
pub struct FilterArgs {}

pub fn run(_args: FilterArgs) -> Result<()> {
    anyhow::bail!("being written")
}

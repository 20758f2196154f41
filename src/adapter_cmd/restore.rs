//! `switchboard adapter restore`: put an archived version back, on disk and in the running
//! server (compare-and-swap on the generation), archiving the one it replaces so that a restore
//! can be undone the same way.

use anyhow::{bail, Result};
use clap::Args;

use super::promote::{served_version, swap_in};
use super::store::AdapterStore;
use super::ServerArgs;

#[derive(Args)]
pub struct RestoreArgs {
    /// The served adapter name.
    #[arg(long)]
    name: String,
    /// The archived version (a stamp that `promote` printed) [default: the newest].
    #[arg(long)]
    version: Option<String>,
    /// Only list the archived versions.
    #[arg(long)]
    list: bool,
    #[command(flatten)]
    server: ServerArgs,
}

pub fn run(args: RestoreArgs) -> Result<()> {
    let store = AdapterStore::open(&args.server.adapter_root())?;
    let versions = store.versions(&args.name)?;
    if args.list {
        if versions.is_empty() {
            println!("{}: no archived versions", args.name);
        }
        for version in &versions {
            println!(
                "{version}\t{}",
                store.archived(&args.name, version).display()
            );
        }
        return Ok(());
    }
    let version = match (&args.version, versions.last()) {
        (Some(v), _) if versions.contains(v) => v.clone(),
        (Some(v), _) => bail!(
            "{}: no archived version {v} of {} (archived: {})",
            store.archived(&args.name, v).display(),
            args.name,
            if versions.is_empty() {
                "none".to_string()
            } else {
                versions.join(", ")
            }
        ),
        (None, Some(newest)) => newest.clone(),
        (None, None) => bail!("{}: no archived versions to restore", args.name),
    };
    let runtime = super::runtime()?;
    let (replaced, generation) = runtime.block_on(async {
        let (_, admin) = args.server.clients()?;
        let served = served_version(&admin, &args.name).await?;
        let stamp = store.fresh_stamp(&args.name);
        let replaced = store.archive_live(&args.name, &stamp)?;
        let from = store.archived(&args.name, &version);
        match swap_in(&store, &admin, &args.name, &from, served.as_ref()).await {
            Ok(generation) => Ok((replaced, generation)),
            Err(e) => {
                if let Some(stamp) = &replaced {
                    store.install(&args.name, &store.archived(&args.name, stamp))?;
                }
                Err(e)
            }
        }
    })?;
    print!(
        "restored {} version {version} (generation {generation})",
        args.name
    );
    match replaced {
        Some(stamp) => println!("; the version it replaced is archived as {stamp}"),
        None => println!(),
    }
    Ok(())
}

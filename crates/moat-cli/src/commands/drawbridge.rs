//! `moat drawbridge ...`.

use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum DrawbridgeCommand {
    /// (to be written)
    Serve,
}

pub fn run(_cmd: DrawbridgeCommand) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`moat drawbridge` is not built yet")
}

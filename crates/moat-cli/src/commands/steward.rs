//! `moat steward ...`.

use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum StewardCommand {
    /// (to be written)
    Serve,
}

pub fn run(_cmd: StewardCommand) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`moat steward` is not built yet")
}

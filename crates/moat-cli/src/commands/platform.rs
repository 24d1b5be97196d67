//! `moat platform ...`.

use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum PlatformCommand {
    /// (to be written)
    Info,
}

pub fn run(_cmd: PlatformCommand) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`moat platform` is not built yet")
}

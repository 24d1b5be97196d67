//! `moat package ...`.

use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum PackageCommand {
    /// (to be written)
    Push,
    /// (to be written)
    Pull,
    /// (to be written)
    Info,
}

pub fn run(_cmd: PackageCommand) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`moat package` is not built yet")
}

//! `moat evidence ...`.

use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum EvidenceCommand {
    /// (to be written)
    Verify,
}

pub fn run(_cmd: EvidenceCommand) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`moat evidence` is not built yet")
}

//! `moat config ...`.

use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum ConfigCommand {
    /// (to be written)
    Init,
    /// (to be written)
    Check,
}

pub fn run(_cmd: ConfigCommand) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`moat config` is not built yet")
}

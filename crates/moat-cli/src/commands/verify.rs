//! `moat verify`.

use std::process::ExitCode;

#[derive(clap::Args)]
pub struct VerifyArgs {}

pub fn run(_args: VerifyArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`moat verify` is not built yet")
}

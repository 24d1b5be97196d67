//! `moat login`.

use std::process::ExitCode;

#[derive(clap::Args)]
pub struct LoginArgs {}

pub fn run(_args: LoginArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`moat login` is not built yet")
}

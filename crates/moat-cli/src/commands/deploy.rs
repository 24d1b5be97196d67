//! `moat deploy REF`: the undifferentiated Keep (placeholder while the pipeline lands).

use std::process::ExitCode;

#[derive(clap::Args)]
pub struct DeployArgs {}

pub fn run(_args: DeployArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`moat deploy` is not built yet")
}

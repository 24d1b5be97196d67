//! `moat platform info`: which platform this machine is, what evidence it can produce, and why
//! not where it cannot (no configfs-tsm, no device, old kernel, no permission).

use std::path::PathBuf;
use std::process::ExitCode;

use moat_attest::attester::{AttesterConfig, DEFAULT_TSM_BASE, PlatformReport};

#[derive(clap::Subcommand)]
pub enum PlatformCommand {
    /// Probe configfs-tsm, /dev/sev-guest and /dev/tdx_guest and report what works.
    Info(InfoArgs),
}

#[derive(clap::Args)]
pub struct InfoArgs {
    /// configfs-tsm report directory.
    #[arg(long, env = "MOAT_TSM_PATH", default_value = DEFAULT_TSM_BASE)]
    pub tsm_path: PathBuf,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(cmd: PlatformCommand) -> anyhow::Result<ExitCode> {
    let PlatformCommand::Info(args) = cmd;
    let config = AttesterConfig {
        tsm_base: args.tsm_path,
        ..Default::default()
    };
    let report = PlatformReport::probe(&config);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("platform:     {}", report.platform);
    let can: Vec<&str> = report.can_produce.iter().map(|p| p.as_str()).collect();
    println!("can produce:  {}", can.join(", "));
    if let Some(k) = &report.kernel {
        println!("kernel:       {k}");
    }
    println!("sources:");
    for s in &report.sources {
        let state = if s.available {
            "available"
        } else {
            "unavailable"
        };
        let path = s
            .path
            .as_deref()
            .map(|p| format!(" ({p})"))
            .unwrap_or_default();
        let why = s
            .reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        println!("  {}{path}: {state}{why}", s.name);
    }
    Ok(ExitCode::SUCCESS)
}

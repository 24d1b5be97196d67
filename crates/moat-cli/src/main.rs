//! `moat`: a thin dispatcher. Every command lives in `commands/<name>.rs`, parses its own
//! arguments and calls into the library crates; this file only sets up logging and maps the
//! outcome to an exit code (see `exit.rs` for what each code means).

mod commands;
mod exit;
mod keep_run;
mod tls_reload;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Run WebAssembly workloads in Keeps that prove what they are before they get code, keys or data.
#[derive(Parser)]
#[command(name = "moat", version, propagate_version = true, max_term_width = 100)]
struct Cli {
    /// Log filter: error, warn, info, debug, trace, or a tracing directive list. rustls's own
    /// messages show only at error unless the filter names rustls (e.g. `debug,rustls=debug`):
    /// a peer can make it warn on every connection.
    #[arg(long, global = true, env = "MOAT_LOG", default_value = "warn")]
    log_level: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a wasm32-wasip1 module in a Keep.
    Run(Box<commands::run::RunArgs>),
    /// Attest, pull a package from a registry, check its digests and run it.
    Deploy(commands::deploy::DeployArgs),
    /// Write or check a Moat.toml / Enarx.toml.
    #[command(subcommand)]
    Config(commands::config::ConfigCommand),
    /// What this machine's platform is and what evidence it can produce.
    #[command(subcommand)]
    Platform(commands::platform::PlatformCommand),
    /// Verify evidence or a CSR carrying evidence, offline.
    #[command(subcommand)]
    Evidence(commands::evidence::EvidenceCommand),
    /// The attestation service.
    #[command(subcommand)]
    Steward(commands::steward::StewardCommand),
    /// Connect to a Keep, validate its chain and check its attested claims.
    Verify(commands::verify::VerifyArgs),
    /// The OCI registry that releases packages to attested Keeps.
    #[command(subcommand)]
    Drawbridge(commands::drawbridge::DrawbridgeCommand),
    /// Push, pull and inspect Moat packages.
    #[command(subcommand)]
    Package(commands::package::PackageCommand),
    /// Store credentials for a registry.
    Login(commands::login::LoginArgs),
    /// Search another process's memory for words (the attack that only SNP/TDX stop).
    Scan(commands::scan::ScanArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.log_level);
    let outcome = match cli.command {
        Command::Run(args) => commands::run::run(*args),
        Command::Deploy(args) => commands::deploy::run(args),
        Command::Config(cmd) => commands::config::run(cmd),
        Command::Platform(cmd) => commands::platform::run(cmd),
        Command::Evidence(cmd) => commands::evidence::run(cmd),
        Command::Steward(cmd) => commands::steward::run(cmd),
        Command::Verify(args) => commands::verify::run(args),
        Command::Drawbridge(cmd) => commands::drawbridge::run(cmd),
        Command::Package(cmd) => commands::package::run(cmd),
        Command::Login(args) => commands::login::run(args),
        Command::Scan(args) => commands::scan::run(args),
    };
    match outcome {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            exit::code_for(&err)
        }
    }
}

fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(with_quiet_rustls(filter))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(with_quiet_rustls("warn")));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

/// `filter` with rustls held to errors unless it already says something about rustls. rustls
/// logs at warn what a peer chose to send (an IP address as SNI, for one): at the default level
/// any client could add a line to the Keep's log per connection, and pay for it with the
/// Keep's time.
fn with_quiet_rustls(filter: &str) -> String {
    if filter.contains("rustls") {
        filter.to_string()
    } else if filter.trim().is_empty() {
        "rustls=error".to_string()
    } else {
        format!("{filter},rustls=error")
    }
}

#[cfg(test)]
mod tests {
    use super::with_quiet_rustls;

    #[test]
    fn rustls_is_held_to_errors_unless_the_filter_names_it() {
        assert_eq!(with_quiet_rustls("warn"), "warn,rustls=error");
        assert_eq!(
            with_quiet_rustls("debug,moat_wasi=trace"),
            "debug,moat_wasi=trace,rustls=error"
        );
        assert_eq!(with_quiet_rustls(""), "rustls=error");
        assert_eq!(with_quiet_rustls("info,rustls=debug"), "info,rustls=debug");
    }
}

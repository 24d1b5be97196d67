//! `moat config init` and `moat config check`: write the commented `Moat.toml` template, and
//! validate a `Moat.toml` or `Enarx.toml` showing the file descriptor layout the workload will
//! see. Exit codes: 0 valid/written, 1 invalid config or refused overwrite.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use moat_config::{Config, ConfigError, FileKind, Origin, Protocol};
use serde_json::json;

use crate::exit;

#[derive(clap::Subcommand)]
pub enum ConfigCommand {
    /// Write a commented Moat.toml template (stdin/stdout/stderr active, every other key as an
    /// example).
    Init(InitArgs),
    /// Validate a Moat.toml or Enarx.toml and print the file descriptors the workload will get.
    /// Exit code 0: valid; 1: invalid (the error names file:line:column).
    Check(CheckArgs),
}

#[derive(clap::Args)]
pub struct InitArgs {
    /// Where to write the template (`-` for standard output).
    #[arg(default_value = "Moat.toml")]
    file: PathBuf,
    /// Overwrite FILE if it exists.
    #[arg(long)]
    force: bool,
}

#[derive(clap::Args)]
pub struct CheckArgs {
    /// The config file to check.
    #[arg(env = "MOAT_CONFIG")]
    file: PathBuf,
    /// Print the result as JSON on standard output (also for an invalid config).
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: ConfigCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ConfigCommand::Init(args) => init(args),
        ConfigCommand::Check(args) => check(args),
    }
}

fn init(args: InitArgs) -> anyhow::Result<ExitCode> {
    let template = moat_config::template();
    if args.file.as_os_str() == "-" {
        std::io::stdout().write_all(template.as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if args.force {
        options.create(true).truncate(true);
    } else {
        // create_new: refusing and writing are one atomic decision, no check-then-write race.
        options.create_new(true);
    }
    let mut file = match options.open(&args.file) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
            eprintln!(
                "error: {} exists; use --force to overwrite it",
                args.file.display()
            );
            return Ok(ExitCode::from(exit::FAILURE));
        }
        Err(err) => {
            return Err(err).with_context(|| format!("cannot create {}", args.file.display()));
        }
    };
    file.write_all(template.as_bytes())
        .with_context(|| format!("cannot write {}", args.file.display()))?;
    eprintln!("wrote {}", args.file.display());
    Ok(ExitCode::SUCCESS)
}

fn check(args: CheckArgs) -> anyhow::Result<ExitCode> {
    match Config::load(&args.file) {
        Ok(config) => {
            if args.json {
                println!("{}", serde_json::to_string_pretty(&summary_json(&config))?);
            } else {
                print!("{}", summary_text(&config));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&error_json(&args.file, &err))?
                );
            } else {
                eprintln!("error: {err}");
            }
            Ok(ExitCode::from(exit::FAILURE))
        }
    }
}

fn error_json(file: &std::path::Path, err: &ConfigError) -> serde_json::Value {
    let (line, column) = match err.origin() {
        Some(Origin::Source { line, column, .. }) => (Some(*line), Some(*column)),
        _ => (None, None),
    };
    json!({
        "valid": false,
        "file": file,
        "line": line,
        "column": column,
        "error": err.to_string(),
    })
}

fn summary_json(config: &Config) -> serde_json::Value {
    let fds: Vec<_> = config
        .files
        .iter()
        .enumerate()
        .map(|(fd, entry)| {
            let mut value = serde_json::to_value(entry).unwrap_or_default();
            value["fd"] = json!(fd);
            value
        })
        .collect();
    let dirs: Vec<_> = config
        .dirs
        .iter()
        .enumerate()
        .map(|(i, dir)| {
            let mut value = serde_json::to_value(dir).unwrap_or_default();
            value["fd"] = json!(config.dir_fd(i));
            value
        })
        .collect();
    json!({
        "valid": true,
        "file": config.source,
        "fd_count": config.fd_count(),
        "fd_names": config.fd_names(),
        "argv": config.guest_args(),
        "env": config.env,
        "steward": config.steward,
        "files": fds,
        "dirs": dirs,
        "limits": config.limits,
        "instances": config.instances,
    })
}

fn summary_text(config: &Config) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let file = config
        .source
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let _ = writeln!(out, "{file}: valid");
    let _ = writeln!(out, "FD_COUNT={}", config.fd_count());
    let _ = writeln!(out, "FD_NAMES={}", config.fd_names());
    let _ = writeln!(out, "{:<4} {:<16} {:<8} details", "fd", "name", "kind");
    for (fd, entry) in config.files.iter().enumerate() {
        let details = match &entry.kind {
            FileKind::Listen(l) => {
                let mut d = format!(
                    "{} {}",
                    l.prot.as_str(),
                    std::net::SocketAddr::new(l.addr, l.port)
                );
                if let Some(ca) = &l.tls.client_ca {
                    let _ = write!(
                        d,
                        ", client certificates {} from {}",
                        match l.tls.client_auth {
                            moat_config::ClientAuthMode::Required => "required",
                            moat_config::ClientAuthMode::Optional => "optional",
                        },
                        ca.display()
                    );
                }
                d
            }
            FileKind::Connect(c) => {
                let mut d = format!("{} {}:{}", c.prot.as_str(), c.host, c.port);
                if c.prot == Protocol::Tls {
                    let mut roots = Vec::new();
                    if c.tls.platform_roots {
                        roots.push("platform roots".to_string());
                    }
                    if let Some(ca) = &c.tls.ca {
                        roots.push(ca.display().to_string());
                    }
                    let _ = write!(d, ", SNI {}, trusts {}", c.server_name(), roots.join(" + "));
                    if c.tls.present_identity {
                        d.push_str(", presents the Keep's certificate");
                    }
                }
                d
            }
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "{fd:<4} {:<16} {:<8} {details}",
            entry.name,
            entry.kind.as_str()
        );
    }
    for (i, dir) in config.dirs.iter().enumerate() {
        let _ = writeln!(
            out,
            "{:<4} {:<16} {:<8} {}{}",
            config.dir_fd(i),
            dir.guest,
            "dir",
            dir.host.display(),
            if dir.read_only { " (read-only)" } else { "" }
        );
    }
    let _ = writeln!(out, "argv: {}", config.guest_args().join(" "));
    let env: Vec<&str> = config.env.keys().map(String::as_str).collect();
    let _ = writeln!(
        out,
        "env: {}",
        if env.is_empty() {
            "(none)".to_string()
        } else {
            env.join(" ")
        }
    );
    let _ = writeln!(
        out,
        "steward: {}",
        config
            .steward
            .as_deref()
            .unwrap_or("(none: self-signed certificate)")
    );
    let _ = writeln!(
        out,
        "instances: {}{}",
        config.instances,
        if config.instances == 1 {
            ""
        } else {
            " (each connection goes to one; they share no memory)"
        }
    );
    let limits = &config.limits;
    let opt = |d: Option<std::time::Duration>| {
        d.map(moat_config::units::format_duration)
            .unwrap_or_else(|| "none".into())
    };
    let _ = writeln!(
        out,
        "limits: max_memory {}, wall_time {}, cpu_time {}, max_connections_per_listener {}, handshake_timeout {}",
        moat_config::units::format_size(limits.max_memory),
        opt(limits.wall_time),
        opt(limits.cpu_time),
        limits.max_connections_per_listener,
        moat_config::units::format_duration(limits.handshake_timeout)
    );
    out
}

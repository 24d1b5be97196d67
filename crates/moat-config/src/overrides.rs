//! Command-line overrides (`moat run --env --dir --listen --connect --arg` and the limit flags),
//! applied on top of a config file. Flags add to the file or replace what it says, never widen
//! anything silently: a flag naming an existing socket replaces that socket in place (same fd),
//! a new name appends a new fd after the file's entries.

use std::path::{Path, PathBuf};

use crate::error::{ConfigError, Origin};
use crate::model::*;
use crate::parse::{
    check_guest_path, check_host, check_instances, check_max_memory, check_name, parse_listen_addr,
};
use crate::units;

/// Raw flag values as the user typed them; [`crate::Config::apply`] parses and applies them, so
/// flag errors read like config errors.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// `--env KEY=VALUE`: set (or replace) a variable.
    pub env: Vec<String>,
    /// `--arg ARG`: appended after the config's `args`.
    pub args: Vec<String>,
    /// `--dir HOST[:GUEST][:ro]`: pre-open a directory (GUEST defaults to HOST as written; a
    /// directory already pre-opened at GUEST is replaced).
    pub dirs: Vec<String>,
    /// `--listen NAME=tls://ADDR:PORT` or `tcp://`: add a listener or replace the one named NAME.
    pub listen: Vec<String>,
    /// `--connect NAME=tls://HOST:PORT` or `tcp://`: add a connection or replace the one named NAME.
    pub connect: Vec<String>,
    /// `--max-memory SIZE`, e.g. `256MiB`.
    pub max_memory: Option<String>,
    /// `--wall-time DURATION`, e.g. `30s`.
    pub wall_time: Option<String>,
    /// `--cpu-time DURATION`.
    pub cpu_time: Option<String>,
    /// `--max-connections N` (per listener).
    pub max_connections_per_listener: Option<String>,
    /// `--handshake-timeout DURATION`.
    pub handshake_timeout: Option<String>,
    /// `--instances N`.
    pub instances: Option<String>,
}

fn flag_error(flag: &str, value: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::invalid(Origin::Flag(format!("{flag} {value}")), message)
}

impl crate::Config {
    /// Apply command-line overrides, then [`validate`](crate::Config::validate) the result.
    /// Relative `--dir` paths resolve against the current directory.
    pub fn apply(&mut self, overrides: &Overrides) -> Result<(), ConfigError> {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        self.apply_in(overrides, &cwd)
    }

    /// [`Config::apply`](crate::Config::apply) with relative `--dir` paths resolved against `cwd`.
    pub fn apply_in(&mut self, overrides: &Overrides, cwd: &Path) -> Result<(), ConfigError> {
        for pair in &overrides.env {
            let Some((key, value)) = pair.split_once('=') else {
                return Err(flag_error(
                    "--env",
                    pair,
                    "expected KEY=VALUE (a workload sees only variables given explicitly)",
                ));
            };
            if key.is_empty() || key.contains('\0') || value.contains('\0') {
                return Err(flag_error(
                    "--env",
                    pair,
                    "the name is empty or contains NUL",
                ));
            }
            if key == "FD_COUNT" || key == "FD_NAMES" {
                return Err(flag_error(
                    "--env",
                    pair,
                    format!("{key} is set by Moat from the file descriptors"),
                ));
            }
            self.env.insert(key.to_string(), value.to_string());
        }
        self.args.extend(overrides.args.iter().cloned());
        for spec in &overrides.dirs {
            let dir = parse_dir_flag(spec, cwd)?;
            match self.dirs.iter_mut().find(|d| d.guest == dir.guest) {
                Some(existing) => *existing = dir,
                None => self.dirs.push(dir),
            }
        }
        for spec in &overrides.listen {
            let (name, prot, addr, port) = parse_socket_flag("--listen", spec)?;
            let addr = match addr {
                None => DEFAULT_LISTEN_ADDR,
                Some(a) => {
                    parse_listen_addr(&a).map_err(|why| flag_error("--listen", spec, why))?
                }
            };
            let port = port.unwrap_or(prot.default_port());
            let tls = match self.socket(&name) {
                Some(FileKind::Listen(old)) if prot == Protocol::Tls => old.tls.clone(),
                _ => ListenTls::default(),
            };
            self.put_socket(
                name,
                FileKind::Listen(Listen {
                    prot,
                    addr,
                    port,
                    tls,
                }),
                Origin::Flag(format!("--listen {spec}")),
            );
        }
        for spec in &overrides.connect {
            let (name, prot, host, port) = parse_socket_flag("--connect", spec)?;
            let Some(host) = host else {
                return Err(flag_error(
                    "--connect",
                    spec,
                    "the host is missing; expected NAME=tls://HOST:PORT",
                ));
            };
            check_host(&host).map_err(|why| flag_error("--connect", spec, why))?;
            let port = match port {
                Some(0) => {
                    return Err(flag_error(
                        "--connect",
                        spec,
                        "port 0 cannot be connected to; use 1 to 65535",
                    ));
                }
                Some(p) => p,
                None => prot.default_port(),
            };
            let tls = match self.socket(&name) {
                Some(FileKind::Connect(old)) if prot == Protocol::Tls => old.tls.clone(),
                _ => ConnectTls::default(),
            };
            self.put_socket(
                name,
                FileKind::Connect(Connect {
                    prot,
                    host,
                    port,
                    tls,
                }),
                Origin::Flag(format!("--connect {spec}")),
            );
        }
        if let Some(text) = &overrides.max_memory {
            let bytes =
                units::parse_size(text).map_err(|why| flag_error("--max-memory", text, why))?;
            check_max_memory(bytes).map_err(|why| flag_error("--max-memory", text, why))?;
            self.limits.max_memory = bytes;
        }
        let duration = |flag: &str, text: &str| {
            let d = units::parse_duration(text).map_err(|why| flag_error(flag, text, why))?;
            if d.is_zero() {
                return Err(flag_error(flag, text, "must be longer than zero"));
            }
            Ok(d)
        };
        if let Some(text) = &overrides.wall_time {
            self.limits.wall_time = Some(duration("--wall-time", text)?);
        }
        if let Some(text) = &overrides.cpu_time {
            self.limits.cpu_time = Some(duration("--cpu-time", text)?);
        }
        if let Some(text) = &overrides.handshake_timeout {
            self.limits.handshake_timeout = duration("--handshake-timeout", text)?;
        }
        if let Some(text) = &overrides.instances {
            let n = text.trim().parse::<i128>().map_err(|_| {
                flag_error(
                    "--instances",
                    text,
                    format!("expected a number from 1 to {MAX_INSTANCES}"),
                )
            })?;
            self.instances =
                check_instances(n).map_err(|why| flag_error("--instances", text, why))?;
        }
        if let Some(text) = &overrides.max_connections_per_listener {
            self.limits.max_connections_per_listener = match text.trim().parse::<u32>() {
                Ok(n) if n > 0 => n,
                _ => {
                    return Err(flag_error(
                        "--max-connections",
                        text,
                        format!("expected a number from 1 to {}", u32::MAX),
                    ));
                }
            };
        }
        self.validate()
    }

    fn socket(&self, name: &str) -> Option<&FileKind> {
        self.files
            .iter()
            .find(|f| {
                f.name == name && matches!(f.kind, FileKind::Listen(_) | FileKind::Connect(_))
            })
            .map(|f| &f.kind)
    }

    /// Replace the socket called `name` in place (keeping its fd), or append a new fd.
    fn put_socket(&mut self, name: String, kind: FileKind, origin: Origin) {
        let entry = FileEntry { name, kind, origin };
        match self.files.iter_mut().find(|f| {
            f.name == entry.name && matches!(f.kind, FileKind::Listen(_) | FileKind::Connect(_))
        }) {
            Some(existing) => *existing = entry,
            None => self.files.push(entry),
        }
    }
}

/// `NAME=[tls://|tcp://]HOST_OR_ADDR[:PORT]` → (name, prot, host, port).
fn parse_socket_flag(
    flag: &str,
    spec: &str,
) -> Result<(String, Protocol, Option<String>, Option<u16>), ConfigError> {
    let form = "expected NAME=tls://ADDRESS:PORT or NAME=tcp://ADDRESS:PORT";
    let Some((name, url)) = spec.split_once('=') else {
        return Err(flag_error(flag, spec, form));
    };
    check_name(name).map_err(|why| flag_error(flag, spec, why))?;
    let (prot, rest) = if let Some(rest) = url.strip_prefix("tls://") {
        (Protocol::Tls, rest)
    } else if let Some(rest) = url.strip_prefix("tcp://") {
        (Protocol::Tcp, rest)
    } else if url.contains("://") {
        return Err(flag_error(flag, spec, format!("unknown scheme; {form}")));
    } else {
        (Protocol::Tls, url)
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    // `[v6]:port`, `[v6]`, `host:port`, `host`, `:port`; a bare IPv6 address has several `:`.
    let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
        let Some((host, after)) = inner.split_once(']') else {
            return Err(flag_error(flag, spec, "unclosed `[` in the address"));
        };
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return Err(flag_error(flag, spec, form)),
            },
        }
    } else if rest.matches(':').count() > 1 {
        (rest, None)
    } else {
        match rest.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        }
    };
    let port = match port {
        None => None,
        Some(text) => Some(text.parse::<u16>().map_err(|_| {
            flag_error(
                flag,
                spec,
                format!("`{text}` is not a port; use 0 to 65535"),
            )
        })?),
    };
    let host = (!host.is_empty()).then(|| host.to_string());
    Ok((name.to_string(), prot, host, port))
}

/// `HOST[:GUEST][:ro]`.
fn parse_dir_flag(spec: &str, cwd: &Path) -> Result<Dir, ConfigError> {
    let mut parts: Vec<&str> = spec.split(':').collect();
    let mut read_only = false;
    if parts.len() > 1 && matches!(parts.last(), Some(&"ro") | Some(&"rw")) {
        read_only = parts.pop() == Some("ro");
    }
    let (host_text, guest) = match parts.as_slice() {
        [host] => (*host, host.to_string()),
        [host, guest] => (*host, guest.to_string()),
        _ => {
            return Err(flag_error(
                "--dir",
                spec,
                "expected HOST[:GUEST][:ro] (paths containing `:` cannot be given here; use [[dirs]])",
            ));
        }
    };
    if host_text.is_empty() {
        return Err(flag_error("--dir", spec, "the host path is empty"));
    }
    check_guest_path(&guest).map_err(|why| flag_error("--dir", spec, why))?;
    let host = cwd.join(host_text);
    if !host.is_dir() {
        return Err(flag_error(
            "--dir",
            spec,
            format!("no such host directory {}", host.display()),
        ));
    }
    Ok(Dir {
        host,
        guest,
        read_only,
        origin: Origin::Flag(format!("--dir {spec}")),
    })
}

/// The override flags as clap arguments (feature `clap`): `#[command(flatten)]` them into a
/// command and call [`OverrideArgs::overrides`], so every command spells them the same way.
#[cfg(feature = "clap")]
#[derive(Clone, Debug, Default, clap::Args)]
pub struct OverrideArgs {
    /// Set an environment variable for the workload (repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Append an argument after the config's `args` (repeatable; also: arguments after `--`).
    #[arg(long = "arg", value_name = "ARG", allow_hyphen_values = true)]
    pub args: Vec<String>,
    /// Pre-open a host directory, optionally at another guest path, optionally read-only.
    #[arg(long = "dir", value_name = "HOST[:GUEST][:ro]")]
    pub dirs: Vec<String>,
    /// Add a listening socket, or replace the one called NAME (tls:// or tcp://).
    #[arg(long = "listen", value_name = "NAME=tls://ADDR:PORT")]
    pub listen: Vec<String>,
    /// Add an outgoing connection, or replace the one called NAME (tls:// or tcp://).
    #[arg(long = "connect", value_name = "NAME=tls://HOST:PORT")]
    pub connect: Vec<String>,
    /// Maximum workload memory, e.g. 256MiB [config: limits.max_memory; default 512MiB].
    #[arg(long, value_name = "SIZE", env = "MOAT_MAX_MEMORY")]
    pub max_memory: Option<String>,
    /// Stop the workload after this wall-clock time, e.g. 30s [default: none].
    #[arg(long, value_name = "DURATION", env = "MOAT_WALL_TIME")]
    pub wall_time: Option<String>,
    /// Stop the workload after this much time running wasm, e.g. 10s [default: none].
    #[arg(long, value_name = "DURATION", env = "MOAT_CPU_TIME")]
    pub cpu_time: Option<String>,
    /// Connections open at once per listener [default: 1024].
    #[arg(
        long = "max-connections",
        value_name = "N",
        env = "MOAT_MAX_CONNECTIONS"
    )]
    pub max_connections_per_listener: Option<String>,
    /// Drop TLS handshakes taking longer than this [default: 10s].
    #[arg(long, value_name = "DURATION", env = "MOAT_HANDSHAKE_TIMEOUT")]
    pub handshake_timeout: Option<String>,
    /// Run N instances of a stateless workload on the same listeners, one thread each; each
    /// connection goes to one instance [config: instances; default: 1].
    #[arg(long, value_name = "N", env = "MOAT_INSTANCES")]
    pub instances: Option<String>,
}

#[cfg(feature = "clap")]
impl OverrideArgs {
    /// The flags as [`Overrides`], with `extra_args` (e.g. those after `--`) appended to `--arg`s.
    pub fn overrides(&self, extra_args: &[String]) -> Overrides {
        Overrides {
            env: self.env.clone(),
            args: self.args.iter().chain(extra_args).cloned().collect(),
            dirs: self.dirs.clone(),
            listen: self.listen.clone(),
            connect: self.connect.clone(),
            max_memory: self.max_memory.clone(),
            wall_time: self.wall_time.clone(),
            cpu_time: self.cpu_time.clone(),
            max_connections_per_listener: self.max_connections_per_listener.clone(),
            handshake_timeout: self.handshake_timeout.clone(),
            instances: self.instances.clone(),
        }
    }
}

//! The config as the rest of Moat sees it: every default filled in, every path absolute, every
//! name resolved. Parsing (`parse.rs`) and command-line overrides (`overrides.rs`) produce it;
//! the runtime only reads it.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr};
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::error::Origin;

/// A complete `Moat.toml` (or `Enarx.toml`), defaults applied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Config {
    /// The Steward to attest to (`steward = "https://..."`). `None`: the Keep uses a self-signed
    /// certificate.
    pub steward: Option<String>,
    /// Arguments after `argv[0]` (which is always `main.wasm`, see [`Config::guest_args`]).
    pub args: Vec<String>,
    /// Environment variables given to the workload (before `FD_COUNT`/`FD_NAMES` are added).
    pub env: BTreeMap<String, String>,
    /// Pre-opened file descriptors: entry *i* is guest fd *i*.
    pub files: Vec<FileEntry>,
    /// Pre-opened directories (a Moat addition). They take the fds after `files`.
    pub dirs: Vec<Dir>,
    /// Resource limits (a Moat addition).
    pub limits: Limits,
    /// Instances of the workload serving the same listeners, each on its own thread (a Moat
    /// addition; see [`MAX_INSTANCES`]). Each connection goes to one instance and instances
    /// share no memory, so a workload with state across connections keeps the default, 1.
    pub instances: u32,
    /// The config file this came from, if any.
    pub source: Option<PathBuf>,
}

/// One entry of `[[files]]`: what the workload finds at one fd.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FileEntry {
    /// The name exported in `FD_NAMES`: the `name` key, else the kind (`stdin`, `null`, ...), or a
    /// `connect` entry's host.
    pub name: String,
    /// What the fd is.
    #[serde(flatten)]
    pub kind: FileKind,
    /// Where the entry was written.
    pub origin: Origin,
}

/// The kinds of `[[files]]` entries (Enarx's set).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FileKind {
    /// Reads give end-of-file, writes are discarded.
    Null,
    /// The host's standard input.
    Stdin,
    /// The host's standard output.
    Stdout,
    /// The host's standard error.
    Stderr,
    /// A listening socket: the workload calls `sock_accept` on it.
    Listen(Listen),
    /// An outgoing connection made by the host when the workload starts.
    Connect(Connect),
}

impl FileKind {
    /// The kind's name as written in `kind = "..."`.
    pub fn as_str(&self) -> &'static str {
        match self {
            FileKind::Null => "null",
            FileKind::Stdin => "stdin",
            FileKind::Stdout => "stdout",
            FileKind::Stderr => "stderr",
            FileKind::Listen(_) => "listen",
            FileKind::Connect(_) => "connect",
        }
    }
}

/// Transport of a socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// TLS done by the host; the workload reads and writes plaintext.
    Tls,
    /// Plain TCP.
    Tcp,
}

impl Protocol {
    /// The port used when an entry names none: 443 for TLS, 80 for TCP.
    pub fn default_port(self) -> u16 {
        match self {
            Protocol::Tls => 443,
            Protocol::Tcp => 80,
        }
    }

    /// `"tls"` or `"tcp"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tls => "tls",
            Protocol::Tcp => "tcp",
        }
    }
}

/// The address a `listen` entry binds when it names none: `::` (all interfaces).
pub const DEFAULT_LISTEN_ADDR: IpAddr = IpAddr::V6(Ipv6Addr::UNSPECIFIED);

/// A `kind = "listen"` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Listen {
    /// TLS (default) or TCP.
    pub prot: Protocol,
    /// Address to bind (default `::`).
    pub addr: IpAddr,
    /// Port to bind (default 443 for TLS, 80 for TCP; 0 lets the OS choose).
    pub port: u16,
    /// TLS options; all `None`/default for TCP.
    pub tls: ListenTls,
}

/// TLS options of a listener.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ListenTls {
    /// PEM file of CA certificates that client certificates must chain to (mTLS). `None`: clients
    /// are not asked for a certificate.
    pub client_ca: Option<PathBuf>,
    /// Whether a client certificate is required or only verified when presented. Meaningful only
    /// with `client_ca`.
    pub client_auth: ClientAuthMode,
}

/// Whether a listener with `client_ca` requires a client certificate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuthMode {
    /// Handshakes without a valid client certificate fail.
    #[default]
    Required,
    /// Clients may present no certificate; one that is presented must be valid.
    Optional,
}

/// A `kind = "connect"` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Connect {
    /// TLS (default) or TCP.
    pub prot: Protocol,
    /// DNS name or IP address to connect to.
    pub host: String,
    /// Port (default 443 for TLS, 80 for TCP).
    pub port: u16,
    /// TLS options; defaults for TCP.
    pub tls: ConnectTls,
}

/// TLS options of an outgoing connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConnectTls {
    /// Extra CA certificates (PEM file) trusted for this connection.
    pub ca: Option<PathBuf>,
    /// Trust the platform's root store too (default `true`). `false` with `ca` trusts only `ca`.
    pub platform_roots: bool,
    /// Name sent as SNI and checked against the server certificate (default: `host`).
    pub server_name: Option<String>,
    /// Present the Keep's certificate as a client certificate (default `false`).
    pub present_identity: bool,
}

impl Default for ConnectTls {
    fn default() -> Self {
        ConnectTls {
            ca: None,
            platform_roots: true,
            server_name: None,
            present_identity: false,
        }
    }
}

impl Connect {
    /// The name to send as SNI and verify the certificate against.
    pub fn server_name(&self) -> &str {
        self.tls.server_name.as_deref().unwrap_or(&self.host)
    }
}

/// A pre-opened directory (`[[dirs]]` or `--dir`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Dir {
    /// Absolute host path (relative paths in a file resolve against the file's directory; on the
    /// command line, against the current directory).
    pub host: PathBuf,
    /// The path the workload opens it by.
    pub guest: String,
    /// Open read-only.
    pub read_only: bool,
    /// Where it was configured.
    pub origin: Origin,
}

/// Resource limits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Limits {
    /// Maximum linear memory of the workload, in bytes (all memories and tables together).
    pub max_memory: u64,
    /// Stop the workload after this much wall-clock time. `None`: no limit (servers).
    #[serde(serialize_with = "ser_opt_duration")]
    pub wall_time: Option<Duration>,
    /// Stop the workload after this much time executing wasm (time blocked in host calls does not
    /// count). `None`: no limit.
    #[serde(serialize_with = "ser_opt_duration")]
    pub cpu_time: Option<Duration>,
    /// Maximum connections open at once on each listener; more wait in the OS backlog.
    pub max_connections_per_listener: u32,
    /// A TLS handshake (either direction) that takes longer is dropped.
    #[serde(serialize_with = "ser_duration")]
    pub handshake_timeout: Duration,
}

/// Default for [`Limits::max_memory`]: 512 MiB.
pub const DEFAULT_MAX_MEMORY: u64 = 512 * 1024 * 1024;
/// Default for [`Limits::max_connections_per_listener`].
pub const DEFAULT_MAX_CONNECTIONS_PER_LISTENER: u32 = 1024;
/// Default for [`Limits::handshake_timeout`].
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_memory: DEFAULT_MAX_MEMORY,
            wall_time: None,
            cpu_time: None,
            max_connections_per_listener: DEFAULT_MAX_CONNECTIONS_PER_LISTENER,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }
}

/// Most instances a Keep runs of one workload: each is a thread with its own linear memory.
pub const MAX_INSTANCES: u32 = 256;

impl Default for Config {
    /// What a workload gets with no config at all: stdin, stdout and stderr at fds 0, 1, 2.
    fn default() -> Self {
        let stdio = [FileKind::Stdin, FileKind::Stdout, FileKind::Stderr];
        Config {
            steward: None,
            args: Vec::new(),
            env: BTreeMap::new(),
            files: stdio
                .into_iter()
                .map(|kind| FileEntry {
                    name: kind.as_str().to_string(),
                    kind,
                    origin: Origin::Default,
                })
                .collect(),
            dirs: Vec::new(),
            limits: Limits::default(),
            instances: 1,
            source: None,
        }
    }
}

fn ser_duration<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&crate::units::format_duration(*d))
}

fn ser_opt_duration<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => ser_duration(d, s),
        None => s.serialize_none(),
    }
}

//! From a `Moat.toml` (`moat_config::Config`) and the Keep's identity to what the WASI layer
//! needs: argv, environment (`FD_COUNT`, `FD_NAMES`), the fd layout with each socket's TLS
//! configuration, pre-opened directories and limits.
//!
//! This is where the identity plugs into a run: every TLS listener presents `identity`, and
//! every TLS `connect` with `present_identity = true` offers it as a client certificate. A
//! self-signed identity ([`self_signed_identity`]) and a Steward-issued chain
//! (`moat_tls::Identity::from_parts`) are used the same way.

use std::net::SocketAddr;
use std::num::NonZeroUsize;

use moat_config::{ClientAuthMode, Config, FileKind, Protocol};
use moat_tls::{ClientAuth, ClientOptions, Identity, LiveIdentity, ServerOptions, TrustRoots};
use moat_wasi::{ConnectTarget, DirSpec, FdSpec, ListenLimits, WasiSpec};

use crate::limits::Limits;

/// Why a config could not be turned into a runnable spec.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    #[error("TLS setup of socket `{name}`: {source}")]
    Tls {
        name: String,
        #[source]
        source: moat_tls::TlsError,
    },
    #[error("cannot make the Keep's self-signed identity: {0}")]
    Identity(#[source] moat_tls::TlsError),
}

/// A fresh self-signed identity for this run, naming [`server_names`].
pub fn self_signed_identity(config: &Config) -> Result<Identity, WorkloadError> {
    Identity::self_signed(&server_names(config)).map_err(WorkloadError::Identity)
}

/// The names the Keep's certificate should carry so TLS clients can check it against the
/// address they dialled: `localhost`, the loopback addresses and the config's listen addresses
/// that are specific (not `::`/`0.0.0.0`). A Steward certifies only those its policy allows.
pub fn server_names(config: &Config) -> Vec<String> {
    let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    for entry in &config.files {
        if let FileKind::Listen(l) = &entry.kind
            && !l.addr.is_unspecified()
        {
            let a = l.addr.to_string();
            if !names.contains(&a) {
                names.push(a);
            }
        }
    }
    names
}

/// The run limits a config asks for.
pub fn limits(config: &Config) -> Limits {
    Limits {
        max_memory: config.limits.max_memory,
        max_cpu_time: config.limits.cpu_time,
        max_wall_time: config.limits.wall_time,
        ..Limits::default()
    }
}

/// How many instances of the workload the config asks for (`instances`, at least 1).
pub fn instances(config: &Config) -> NonZeroUsize {
    NonZeroUsize::new(config.instances as usize).unwrap_or(NonZeroUsize::MIN)
}

/// The WASI layer's view of `config`, with TLS sockets configured for `identity`: each
/// handshake presents the certificate `identity` holds then, so a renewal reaches them all.
pub fn wasi_spec(config: &Config, identity: &LiveIdentity) -> Result<WasiSpec, WorkloadError> {
    let listen_limits = ListenLimits {
        max_connections: config.limits.max_connections_per_listener as usize,
        handshake_timeout: config.limits.handshake_timeout,
        ..ListenLimits::default()
    };
    let mut fds = Vec::with_capacity(config.files.len());
    for entry in &config.files {
        let tls_err = |source| WorkloadError::Tls {
            name: entry.name.clone(),
            source,
        };
        fds.push(match &entry.kind {
            FileKind::Null => FdSpec::Null,
            FileKind::Stdin => FdSpec::Stdin,
            FileKind::Stdout => FdSpec::Stdout,
            FileKind::Stderr => FdSpec::Stderr,
            FileKind::Listen(l) => {
                let tls = match l.prot {
                    Protocol::Tcp => None,
                    Protocol::Tls => {
                        let client_auth = match &l.tls.client_ca {
                            None => ClientAuth::None,
                            Some(ca) => {
                                let roots = TrustRoots::only_pem_file(ca).map_err(tls_err)?;
                                match l.tls.client_auth {
                                    ClientAuthMode::Required => ClientAuth::Required(roots),
                                    ClientAuthMode::Optional => ClientAuth::Optional(roots),
                                }
                            }
                        };
                        let options = ServerOptions {
                            client_auth,
                            ..ServerOptions::default()
                        };
                        Some(moat_tls::server_config(identity, &options).map_err(tls_err)?)
                    }
                };
                FdSpec::Listen {
                    name: entry.name.clone(),
                    addr: SocketAddr::new(l.addr, l.port),
                    tls,
                    limits: listen_limits.clone(),
                }
            }
            FileKind::Connect(c) => {
                let tls = match c.prot {
                    Protocol::Tcp => None,
                    Protocol::Tls => {
                        let mut roots = if c.tls.platform_roots {
                            TrustRoots::platform()
                        } else {
                            TrustRoots::only(Vec::new())
                        };
                        if let Some(ca) = &c.tls.ca {
                            roots.add_pem_file(ca).map_err(tls_err)?;
                        }
                        let mut options = ClientOptions::new(roots);
                        if c.tls.present_identity {
                            options.identity = Some(identity.clone());
                        }
                        Some(moat_tls::client_config(&options).map_err(tls_err)?)
                    }
                };
                FdSpec::Connect {
                    name: entry.name.clone(),
                    target: ConnectTarget {
                        host: c.host.clone(),
                        port: c.port,
                        tls,
                        server_name: c.tls.server_name.clone(),
                        timeout: config.limits.handshake_timeout,
                    },
                }
            }
        });
    }
    let dirs = config
        .dirs
        .iter()
        .map(|d| DirSpec {
            host: d.host.clone(),
            guest: d.guest.clone(),
            read_only: d.read_only,
        })
        .collect();
    Ok(WasiSpec {
        args: config.guest_args(),
        env: config.guest_env(),
        fds,
        dirs,
    })
}

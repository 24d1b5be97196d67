//! moat-wasi: the WASI preview-1 layer of a Keep.
//!
//! wasmtime-wasi 48 implements preview 1 but stubs out `sock_accept`/`sock_recv`/`sock_send`,
//! has no way to put a socket into its fd table, and its `poll_oneoff` knows nothing of
//! sockets. Moat therefore owns the guest's fd table ([`table`]) and shadows every
//! `wasi_snapshot_preview1` import that takes an fd ([`host`]): its own descriptors (stdio,
//! `null`, capability sockets) are served here; directories and files are delegated to
//! wasmtime-wasi's raw preview-1 functions with the fd number translated. Functions without an
//! fd (args, environ, random, proc_exit) come straight from wasmtime-wasi.
//!
//! Sockets are capabilities: the guest gets exactly the `listen` and `connect` fds its config
//! names and has no call that creates another. Network I/O and TLS run on host tasks ([`net`])
//! that talk to the guest through bounded pipes ([`pipe`]); blocking, non-blocking (`EAGAIN`)
//! and `poll_oneoff`-driven guests all work on top of that ([`poll`]).
//!
//! Use: build a [`WasiSpec`], call [`MoatWasi::new`] inside a tokio runtime, keep the result in
//! the store's data and register the imports with [`add_to_linker`]. A Keep that runs several
//! instances of a workload binds the listeners once ([`SharedSockets::bind`], one [`Home`] per
//! instance) and builds each instance's state with [`MoatWasi::instance`] on its own runtime.

mod abi;
pub mod errno;
mod host;
pub mod net;
mod pipe;
mod poll;
mod table;
mod wire;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

pub use host::add_to_linker;
pub use net::{ConnectTarget, Home, ListenLimits};

use crate::pipe::Pipe;
use crate::table::{FdTable, Kind};

/// One entry of the guest's fd layout (config `files` entry *i* becomes fd *i*).
#[derive(Debug, Clone)]
pub enum FdSpec {
    Null,
    Stdin,
    Stdout,
    Stderr,
    /// A listening socket: bound by [`MoatWasi::new`], accepted on by host tasks.
    Listen {
        name: String,
        addr: SocketAddr,
        /// `None`: plain TCP.
        tls: Option<Arc<rustls::ServerConfig>>,
        limits: ListenLimits,
    },
    /// An outgoing connection, made in the background when the Keep starts.
    Connect {
        name: String,
        target: ConnectTarget,
    },
}

/// A host directory the guest sees pre-opened under `guest`.
#[derive(Debug, Clone)]
pub struct DirSpec {
    pub host: PathBuf,
    pub guest: String,
    pub read_only: bool,
}

/// Everything the WASI layer needs to start a guest.
#[derive(Debug, Clone, Default)]
pub struct WasiSpec {
    /// `argv`, including `argv[0]`.
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub fds: Vec<FdSpec>,
    pub dirs: Vec<DirSpec>,
}

/// Why the WASI layer could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum WasiError {
    #[error("cannot listen on {addr} for socket `{name}`: {source}")]
    Bind {
        name: String,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot pre-open directory {} as `{guest}`: {message}", host.display())]
    Dir {
        host: PathBuf,
        guest: String,
        message: String,
    },
    #[error("the WASI layer must be created inside a tokio runtime")]
    NoRuntime,
    #[error("cannot start the TLS handshake threads: {0}")]
    Runtime(#[source] std::io::Error),
}

/// A listener as bound on the host (useful when the config asked for port 0).
#[derive(Debug, Clone)]
pub struct BoundListener {
    pub fd: u32,
    pub name: String,
    pub addr: SocketAddr,
    pub tls: bool,
}

/// The sockets a Keep's instances share: its listeners, bound once (each connection is handed
/// to one instance, see [`net::Listener`]), and the TLS handshake threads.
///
/// A Keep of one instance gets this from [`MoatWasi::new`]. A Keep of several binds it with one
/// [`Home`] per instance, then gives each instance its part ([`SharedSockets::into_instances`])
/// to build its [`MoatWasi`] with, on that instance's own thread.
pub struct SharedSockets {
    listeners: Vec<BoundListener>,
    /// One per home, in order: that instance's end of each listener, by fd.
    instances: Vec<InstanceSockets>,
}

/// One instance's part of a Keep's [`SharedSockets`].
pub struct InstanceSockets {
    index: usize,
    home: Home,
    listeners: Vec<(u32, Arc<net::Listener>)>,
    bound: Vec<BoundListener>,
    handshake_pool: Option<Arc<net::HandshakePool>>,
}

impl SharedSockets {
    /// Bind the `listen` entries of `fds` for the instances at `homes` (at least one), and
    /// start the handshake threads if any socket does TLS.
    pub fn bind(fds: &[FdSpec], homes: &[Home]) -> Result<Self, WasiError> {
        let needs_pool = fds.iter().any(|fd| match fd {
            FdSpec::Listen { tls, .. } => tls.is_some(),
            FdSpec::Connect { target, .. } => target.tls.is_some(),
            _ => false,
        });
        let handshake_pool = match needs_pool {
            true => Some(Arc::new(
                net::HandshakePool::new().map_err(WasiError::Runtime)?,
            )),
            false => None,
        };
        let mut listeners = Vec::new();
        let mut ends: Vec<Vec<(u32, Arc<net::Listener>)>> = vec![Vec::new(); homes.len()];
        for (i, fd) in fds.iter().enumerate() {
            let FdSpec::Listen {
                name,
                addr,
                tls,
                limits,
            } = fd
            else {
                continue;
            };
            let fd_num = u32::try_from(i).unwrap_or(u32::MAX);
            let bind_err = |source| WasiError::Bind {
                name: name.clone(),
                addr: *addr,
                source,
            };
            let socket = std::net::TcpListener::bind(addr).map_err(bind_err)?;
            socket.set_nonblocking(true).map_err(bind_err)?;
            let tls_on = match (tls, &handshake_pool) {
                (Some(config), Some(pool)) => Some((config.clone(), pool.handle())),
                _ => None,
            };
            let started = net::Listener::start(name.clone(), socket, tls_on, limits.clone(), homes)
                .map_err(bind_err)?;
            listeners.push(BoundListener {
                fd: fd_num,
                name: name.clone(),
                addr: started.first().map_or(*addr, |l| l.local_addr),
                tls: tls.is_some(),
            });
            for (instance, end) in started.into_iter().enumerate() {
                ends[instance].push((fd_num, Arc::new(end)));
            }
        }
        let instances = ends
            .into_iter()
            .zip(homes)
            .enumerate()
            .map(|(index, (ends, home))| InstanceSockets {
                index,
                home: home.clone(),
                listeners: ends,
                bound: listeners.clone(),
                handshake_pool: handshake_pool.clone(),
            })
            .collect();
        Ok(SharedSockets {
            listeners,
            instances,
        })
    }

    /// The listeners as bound (addresses resolved, ports chosen by the OS filled in).
    pub fn listeners(&self) -> &[BoundListener] {
        &self.listeners
    }

    /// Each instance's part, in the order of the homes given to [`SharedSockets::bind`].
    pub fn into_instances(self) -> Vec<InstanceSockets> {
        self.instances
    }
}

/// The per-store WASI state: Moat's fd table over a wasmtime-wasi preview-1 context.
pub struct MoatWasi {
    pub(crate) p1: WasiP1Ctx,
    pub(crate) table: FdTable,
    /// Woken whenever anything the guest may be waiting on changes.
    pub(crate) guest_notify: Arc<Notify>,
    pub(crate) stdin: Option<Arc<Pipe>>,
    /// Origin of the guest's monotonic clock.
    pub(crate) epoch: Instant,
    listeners: Vec<BoundListener>,
    /// The guest's memory export, cached by the host calls (see `host::memory`).
    pub(crate) memory: Option<wasmtime::Memory>,
    /// `poll_oneoff` calls in a row that found something ready (see `host::poll_oneoff`).
    pub(crate) polls_without_wait: u32,
    /// `poll_oneoff`'s decoded subscriptions, kept between calls: a server passes its whole fd
    /// set on every call, and reusing the buffer saves an allocation per poll.
    pub(crate) poll_subscriptions: Vec<poll::Subscription>,
    /// Kept alive as long as the sockets that use it.
    _handshake_pool: Option<Arc<net::HandshakePool>>,
}

impl std::fmt::Debug for MoatWasi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MoatWasi")
            .field("table", &self.table)
            .field("listeners", &self.listeners)
            .finish_non_exhaustive()
    }
}

impl MoatWasi {
    /// Bind listeners, start connects and build the fd table of a Keep's only instance. Must
    /// run inside a tokio runtime (host tasks are spawned on it).
    pub fn new(spec: WasiSpec) -> Result<Self, WasiError> {
        let home = Home::current().ok_or(WasiError::NoRuntime)?;
        let shared = SharedSockets::bind(&spec.fds, std::slice::from_ref(&home))?;
        let sockets = shared.into_instances().pop().expect("one part per home");
        MoatWasi::instance(spec, sockets)
    }

    /// Start connects and build the fd table of one instance, with its part of the Keep's
    /// listeners. Must run on that instance's runtime. Only the first instance reads the host's
    /// stdin; the others find it at end-of-file, as if it were `null`.
    pub fn instance(spec: WasiSpec, sockets: InstanceSockets) -> Result<Self, WasiError> {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| WasiError::NoRuntime)?;
        let mut builder = WasiCtxBuilder::new();
        builder.args(&spec.args);
        for (k, v) in &spec.env {
            builder.env(k, v);
        }
        for dir in &spec.dirs {
            let perms = if dir.read_only {
                FsPerms::ReadOnly
            } else {
                FsPerms::ReadWrite
            };
            builder
                .preopened_dir(&dir.host, &dir.guest, perms)
                .map_err(|e| WasiError::Dir {
                    host: dir.host.clone(),
                    guest: dir.guest.clone(),
                    message: format!("{e:#}"),
                })?;
        }
        let p1 = builder.build_p1();

        let InstanceSockets {
            index,
            home,
            listeners: mut listener_ends,
            bound,
            handshake_pool,
        } = sockets;
        let guest_notify = home.guest;
        let mut table = FdTable::default();
        let fd_count = u32::try_from(spec.fds.len()).unwrap_or(u32::MAX);
        let _guard = handle.enter();
        for (i, fd) in spec.fds.into_iter().enumerate() {
            let fd_num = u32::try_from(i).unwrap_or(u32::MAX);
            let kind = match fd {
                FdSpec::Null => Kind::Null,
                FdSpec::Stdin if index == 0 => Kind::Stdin,
                FdSpec::Stdin => Kind::Null,
                FdSpec::Stdout => Kind::Stdout,
                FdSpec::Stderr => Kind::Stderr,
                FdSpec::Listen { .. } => {
                    let at = listener_ends.iter().position(|(fd, _)| *fd == fd_num);
                    match at {
                        Some(at) => Kind::Listener(listener_ends.swap_remove(at).1),
                        None => Kind::Null,
                    }
                }
                FdSpec::Connect { target, .. } => {
                    // A plain connect never hands its socket over: no pool needed for it.
                    let handshakes = match &handshake_pool {
                        Some(pool) if target.tls.is_some() => pool.handle(),
                        _ => handle.clone(),
                    };
                    Kind::Stream(net::connect(target, &guest_notify, handshakes))
                }
            };
            table.insert_at(fd_num, kind);
        }
        // wasmtime-wasi numbers its pre-opens 3, 4, ... after its own (unused) stdio; the guest
        // sees them right after the config's entries.
        for i in 0..spec.dirs.len() as u32 {
            table.insert_at(fd_count + i, Kind::Delegated(3 + i));
        }
        Ok(MoatWasi {
            p1,
            table,
            guest_notify,
            stdin: None,
            epoch: Instant::now(),
            memory: None,
            polls_without_wait: 0,
            poll_subscriptions: Vec::new(),
            listeners: bound,
            _handshake_pool: handshake_pool,
        })
    }

    /// The listeners as bound (addresses resolved, ports chosen by the OS filled in).
    pub fn listeners(&self) -> &[BoundListener] {
        &self.listeners
    }

    /// Close every connection the guest still holds and give the pumps up to `grace` to send
    /// what the guest wrote (close_notify and FIN included). Call after the guest exited.
    pub async fn close_all(&mut self, grace: Duration) {
        let conns = self.table.take_connections();
        for c in &conns {
            c.guest_close();
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline && conns.iter().any(|c| Arc::strong_count(c) > 1) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The stdin pipe, started on first use so a Keep that never reads stdin never touches it.
    pub(crate) fn stdin_pipe(&mut self) -> Arc<Pipe> {
        if let Some(p) = &self.stdin {
            return p.clone();
        }
        let pipe = Arc::new(Pipe::new(64 * 1024, self.guest_notify.clone()));
        let feed = pipe.clone();
        tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            let mut stdin = tokio::io::stdin();
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let Some(room) = feed.host_wait_room().await else {
                    return;
                };
                let want = room.min(buf.len());
                match stdin.read(&mut buf[..want]).await {
                    Ok(0) => return feed.close_write(),
                    Ok(n) => feed.host_push(&buf[..n]),
                    Err(e) => return feed.fail(e.kind()),
                }
            }
        });
        self.stdin = Some(pipe.clone());
        pipe
    }
}

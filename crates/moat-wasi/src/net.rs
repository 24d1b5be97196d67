//! Host-side networking: listener accept loops, TLS handshakes, outgoing connects and the
//! per-connection pump between the network stream and the guest's pipes.
//!
//! Nothing here runs on the guest's thread. A listener's accept loop hands the guest only
//! connections whose TLS handshake already finished (with a timeout and a cap on handshakes in
//! flight), through a bounded queue (the backlog); so a client that stalls mid-handshake never
//! blocks `sock_accept`. Each connection holds a permit of its listener's connection limit until
//! both the guest and the pump are done with it; over the limit new clients wait in the kernel's
//! listen queue.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::JoinHandle;

use crate::pipe::Pipe;

/// Bytes buffered per direction per connection.
pub const PIPE_CAPACITY: usize = 256 * 1024;
/// Largest single read from or write to the network.
const IO_CHUNK: usize = 16 * 1024;
/// How long the host keeps flushing a connection the guest already closed.
const LINGER: Duration = Duration::from_secs(10);

/// Tuning of one listening socket; [`Default`] gives Moat's defaults.
#[derive(Debug, Clone)]
pub struct ListenLimits {
    /// Open connections (queued or accepted, not yet closed by the guest) allowed at once.
    pub max_connections: usize,
    /// Finished connections waiting for `sock_accept`.
    pub backlog: usize,
    /// TLS handshakes running at once.
    pub max_handshakes: usize,
    /// Time a client gets to finish its TLS handshake.
    pub handshake_timeout: Duration,
}

impl Default for ListenLimits {
    fn default() -> Self {
        ListenLimits {
            max_connections: 1024,
            backlog: 128,
            max_handshakes: 64,
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

/// Both directions of one connection as the guest sees them.
#[derive(Debug)]
pub struct Connection {
    pub inbound: Pipe,
    pub outbound: Pipe,
    pub peer: Option<SocketAddr>,
    /// Set once when the guest closes its fd; starts the linger clock.
    guest_closed: watch::Sender<bool>,
    /// `poll_oneoff` told the guest this stream is writable and the guest has not written
    /// since. See [`Connection::report_writable`].
    write_reported: std::sync::atomic::AtomicBool,
    /// Released when the last reference (guest fd or pump) goes away.
    _permit: Mutex<Option<OwnedSemaphorePermit>>,
}

impl Connection {
    pub fn new(
        guest: &Arc<Notify>,
        peer: Option<SocketAddr>,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Arc<Self> {
        Arc::new(Connection {
            inbound: Pipe::new(PIPE_CAPACITY, guest.clone()),
            outbound: Pipe::new(PIPE_CAPACITY, guest.clone()),
            peer,
            guest_closed: watch::channel(false).0,
            write_reported: std::sync::atomic::AtomicBool::new(false),
            _permit: Mutex::new(permit),
        })
    }

    /// The guest dropped its fd: flush what it wrote, then close_notify + FIN; stop reading.
    pub fn guest_close(&self) {
        self.outbound.close_write();
        self.inbound.close_read();
        self.guest_closed.send_replace(true);
    }

    /// Whether `poll_oneoff` should report this writable stream again. WASI's poll is
    /// level-triggered and a socket with room is always writable, so a guest that keeps write
    /// interest registered (tokio and mio on wasip1 register every stream for reading *and*
    /// writing) would get the same event on every poll and spin a core while idle. A writable
    /// event is therefore news once per write: after it is reported, it is reported again only
    /// once the guest has tried to write (see [`Connection::guest_wrote`]), or when nothing else
    /// in the poll could ever wake it (the caller's fallback).
    pub fn report_writable(&self) -> bool {
        !self
            .write_reported
            .swap(true, std::sync::atomic::Ordering::Relaxed)
    }

    /// The guest tried to write (whatever the outcome): the next writable state is news.
    pub fn guest_wrote(&self) {
        self.write_reported
            .store(false, std::sync::atomic::Ordering::Relaxed);
    }

    /// A failure before or during the connection: every later guest operation reports it.
    pub fn fail(&self, kind: io::ErrorKind) {
        self.inbound.fail(kind);
        self.outbound.fail(kind);
    }
}

/// Copy between `stream` and the connection's pipes until both directions end (or the guest
/// closed and the linger time ran out). Shutting down the write half sends TLS close_notify
/// (for TLS streams) and then a TCP FIN.
pub async fn pump<S>(stream: S, conn: Arc<Connection>)
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let inbound = async {
        let mut buf = vec![0u8; IO_CHUNK];
        loop {
            let room = match conn.inbound.host_wait_room().await {
                Some(room) => room.min(IO_CHUNK),
                None => return,
            };
            let read = tokio::select! {
                r = rd.read(&mut buf[..room]) => r,
                () = wait_reader_gone(&conn.inbound) => return,
            };
            match read {
                Ok(0) => {
                    conn.inbound.close_write();
                    return;
                }
                Ok(n) => conn.inbound.host_push(&buf[..n]),
                // A peer that closes TCP without close_notify: treat as end of stream, as
                // HTTP/1.1 servers do; the guest sees EOF either way.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    conn.inbound.close_write();
                    return;
                }
                Err(e) => {
                    tracing::debug!(peer = ?conn.peer, error = %e, "connection read failed");
                    conn.inbound.fail(e.kind());
                    return;
                }
            }
        }
    };
    let outbound = async {
        while let Some(chunk) = conn.outbound.host_take(IO_CHUNK).await {
            let sent = async {
                wr.write_all(&chunk).await?;
                wr.flush().await
            };
            if let Err(e) = sent.await {
                tracing::debug!(peer = ?conn.peer, error = %e, "connection write failed");
                conn.outbound.fail(e.kind());
                return;
            }
        }
        let _ = wr.shutdown().await;
    };
    let linger = async {
        let mut closed = conn.guest_closed.subscribe();
        let _ = closed.wait_for(|c| *c).await;
        tokio::time::sleep(LINGER).await;
    };
    tokio::select! {
        _ = async { tokio::join!(inbound, outbound) } => {}
        () = linger => tracing::debug!(peer = ?conn.peer, "dropping a closed connection that would not drain"),
    }
}

async fn wait_reader_gone(pipe: &Pipe) {
    while pipe.room().is_some() {
        pipe.host_changed().await;
    }
}

/// A bound listening socket whose accept loop runs on the host.
#[derive(Debug)]
pub struct Listener {
    pub name: String,
    pub local_addr: SocketAddr,
    backlog: Mutex<mpsc::Receiver<Arc<Connection>>>,
    task: JoinHandle<()>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Listener {
    /// Start accepting on an already bound socket. `tls = None` means plain TCP.
    pub fn start(
        name: String,
        socket: TcpListener,
        tls: Option<Arc<rustls::ServerConfig>>,
        limits: ListenLimits,
        guest: Arc<Notify>,
    ) -> io::Result<Self> {
        let local_addr = socket.local_addr()?;
        let (tx, rx) = mpsc::channel(limits.backlog.max(1));
        let task = tokio::spawn(accept_loop(name.clone(), socket, tls, limits, tx, guest));
        Ok(Listener {
            name,
            local_addr,
            backlog: Mutex::new(rx),
            task,
        })
    }

    /// A finished connection, if one is waiting.
    pub fn try_accept(&self) -> Option<Arc<Connection>> {
        self.backlog
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .try_recv()
            .ok()
    }

    pub fn has_pending(&self) -> bool {
        !self
            .backlog
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }
}

async fn accept_loop(
    name: String,
    socket: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: ListenLimits,
    backlog: mpsc::Sender<Arc<Connection>>,
    guest: Arc<Notify>,
) {
    let connections = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let handshakes = Arc::new(Semaphore::new(limits.max_handshakes.max(1)));
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let warned = AtomicBool::new(false);
    loop {
        if connections.available_permits() == 0 && !warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                listener = %name,
                limit = limits.max_connections,
                "connection limit reached; new clients wait until the workload closes some"
            );
        }
        let Ok(conn_permit) = connections.clone().acquire_owned().await else {
            return;
        };
        let Ok(hs_permit) = handshakes.clone().acquire_owned().await else {
            return;
        };
        let (tcp, peer) = match socket.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(listener = %name, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let backlog = backlog.clone();
        let guest = guest.clone();
        let timeout = limits.handshake_timeout;
        let name = name.clone();
        tokio::spawn(async move {
            let conn = Connection::new(&guest, Some(peer), Some(conn_permit));
            match acceptor {
                Some(acceptor) => match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        drop(hs_permit);
                        tokio::spawn(pump(stream, conn.clone()));
                    }
                    Ok(Err(e)) => {
                        tracing::info!(listener = %name, %peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::info!(listener = %name, %peer, "TLS handshake timed out");
                        return;
                    }
                },
                None => {
                    drop(hs_permit);
                    tokio::spawn(pump(tcp, conn.clone()));
                }
            }
            if backlog.send(conn.clone()).await.is_ok() {
                guest.notify_one();
            } else {
                conn.guest_close();
            }
        });
    }
}

/// Where an outgoing connection goes and how.
#[derive(Debug, Clone)]
pub struct ConnectTarget {
    pub host: String,
    pub port: u16,
    /// `None`: plain TCP.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Name sent as SNI and checked against the server's certificate (default: `host`).
    pub server_name: Option<String>,
    pub timeout: Duration,
}

/// Give the guest a connection at once and connect in the background; a failure shows up on
/// the guest's next read or write.
pub fn connect(target: ConnectTarget, guest: &Arc<Notify>) -> Arc<Connection> {
    let conn = Connection::new(guest, None, None);
    let task_conn = conn.clone();
    tokio::spawn(async move {
        if let Err(e) = connect_and_pump(&target, task_conn.clone()).await {
            tracing::warn!(host = %target.host, port = target.port, error = %e, "connect failed");
            task_conn.fail(e.kind());
        }
    });
    conn
}

async fn connect_and_pump(target: &ConnectTarget, conn: Arc<Connection>) -> io::Result<()> {
    let host = target.host.as_str();
    let tcp = tokio::time::timeout(target.timeout, async {
        // lookup_host resolves DNS names as well as literal addresses.
        let mut last = io::Error::new(io::ErrorKind::NotFound, format!("{host} has no address"));
        for addr in tokio::net::lookup_host((host, target.port)).await? {
            match TcpStream::connect(addr).await {
                Ok(s) => return Ok(s),
                Err(e) => last = e,
            }
        }
        Err(last)
    })
    .await
    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
    let _ = tcp.set_nodelay(true);
    match &target.tls {
        None => pump(tcp, conn).await,
        Some(config) => {
            let sni = target.server_name.as_deref().unwrap_or(host);
            let name = ServerName::try_from(sni.to_string())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            let connector = tokio_rustls::TlsConnector::from(config.clone());
            let stream = tokio::time::timeout(target.timeout, connector.connect(name, tcp))
                .await
                .map_err(|_| {
                    io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out")
                })??;
            pump(stream, conn).await
        }
    }
    Ok(())
}

//! Host-side networking: listener accept loops, TLS handshakes, outgoing connects and the
//! per-connection pump between the network stream and the guest's pipes.
//!
//! These tasks share the guest's thread (the Keep's runtime is current-thread; see
//! docs/runtime.md, *Threads*) and never block it: every socket call is non-blocking, and TLS
//! handshakes (accepted and outgoing) run on a separate [`HandshakePool`], where TLS listeners
//! also accept. A listener's accept loop hands the guest only
//! connections whose TLS handshake already finished (with a timeout and a cap on handshakes in
//! flight), through a bounded queue (the backlog); so a client that stalls mid-handshake never
//! blocks `sock_accept`. Each connection holds a permit of its listener's connection limit until
//! both the guest and the pump are done with it; over the limit new clients wait in the kernel's
//! listen queue.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use rustls_pki_types::ServerName;
use smallvec::SmallVec;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::{AbortHandle, JoinHandle};

use crate::pipe::{Pipe, WriteOutcome};
use crate::wire::{Flushed, IO_CHUNK, Received, Wire};

/// Bytes buffered per direction per connection.
pub const PIPE_CAPACITY: usize = 256 * 1024;
/// Plaintext the guest's thread sends itself per write before handing the rest to the pump:
/// enough for any request/response exchange, small enough that one large write does not keep
/// the workload in an encrypt-and-send loop (the pump sends the rest between its waits).
const GUEST_FLUSH_BUDGET: usize = 64 * 1024;
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

/// Threads for TLS handshakes, apart from the workload's thread.
///
/// A Keep runs the workload and its established connections on one thread (no cross-thread
/// hand-off per request), but a handshake costs a few hundred microseconds of public-key work:
/// on that thread, a burst of new clients would take the workload's time. So TLS listeners
/// accept here and each connection comes to the workload's thread only after its handshake;
/// outgoing TLS sockets move here for their handshake and back for their traffic.
#[derive(Debug)]
pub struct HandshakePool {
    handle: tokio::runtime::Handle,
    /// Taken only on drop.
    runtime: Option<tokio::runtime::Runtime>,
}

impl HandshakePool {
    /// One worker per core.
    pub fn new() -> io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("moat-tls")
            .build()?;
        Ok(HandshakePool {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
        })
    }

    pub fn handle(&self) -> tokio::runtime::Handle {
        self.handle.clone()
    }
}

impl Drop for HandshakePool {
    fn drop(&mut self) {
        // Dropped from inside the Keep's runtime, where a blocking shutdown would panic.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
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
    /// The socket, once connected (and past the TLS handshake for listeners).
    wire: OnceLock<Arc<Wire>>,
    /// The task reading the socket into `inbound`, stopped when the guest stops reading.
    receiver: Mutex<Receiver>,
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
            wire: OnceLock::new(),
            receiver: Mutex::new(Receiver::NotStarted),
            _permit: Mutex::new(permit),
        })
    }

    /// The guest dropped its fd: flush what it wrote, then close_notify + FIN; stop reading.
    pub fn guest_close(&self) {
        self.outbound.close_write();
        self.stop_receiving();
        self.guest_closed.send_replace(true);
    }

    /// The guest will read no more (it closed, or shut down reading): drop what is buffered and
    /// stop reading the socket.
    pub fn stop_receiving(&self) {
        self.inbound.close_read();
        let mut receiver = self.receiver.lock().unwrap_or_else(|e| e.into_inner());
        if let Receiver::Running(task) = &*receiver {
            task.abort();
        }
        *receiver = Receiver::Stopped;
    }

    /// Record the receiving task; stop it at once if the guest already stopped reading.
    fn receiving(&self, task: AbortHandle) {
        let mut receiver = self.receiver.lock().unwrap_or_else(|e| e.into_inner());
        match *receiver {
            Receiver::Stopped => task.abort(),
            _ => *receiver = Receiver::Running(task),
        }
    }

    /// Whether `poll_oneoff` should report this writable stream again. WASI's poll is
    /// level-triggered and a socket with room is always writable, so a guest that keeps write
    /// interest registered (tokio and mio on wasip1 register every stream for reading *and*
    /// writing) would get the same event on every poll and spin a core while idle. A writable
    /// event is therefore news once per write: after it is reported, it is reported again only
    /// once the guest has tried to write (see [`Connection::guest_wrote`]), or when nothing else
    /// in the poll could ever wake it (the caller's fallback).
    pub fn report_writable(&self) -> bool {
        // Most polls find the event already reported: a plain load spares them the locked swap.
        !self
            .write_reported
            .load(std::sync::atomic::Ordering::Relaxed)
            && !self
                .write_reported
                .swap(true, std::sync::atomic::Ordering::Relaxed)
    }

    /// The guest tried to write (whatever the outcome): the next writable state is news.
    pub fn guest_wrote(&self) {
        self.write_reported
            .store(false, std::sync::atomic::Ordering::Relaxed);
    }

    /// A guest write of `parts`. When nothing is queued ahead of it, it goes to the socket
    /// straight from guest memory (encrypted on the way for TLS); what the socket does not
    /// take now is queued in the outbound pipe for the pump. Otherwise it joins the queue and
    /// [`Connection::guest_flush`] moves it on.
    pub fn guest_write(&self, parts: &[&[u8]]) -> WriteOutcome {
        let Some(wire) = self.wire.get() else {
            return self.queue_and_flush(parts);
        };
        // An empty pipe that has not ended: nothing to overtake, no failure to report first.
        let queued = self.outbound.readiness();
        if queued.readable {
            return self.queue_and_flush(parts);
        }
        match wire.send_now(parts, GUEST_FLUSH_BUDGET) {
            Ok((taken, sent)) => {
                let total: usize = parts.iter().map(|p| p.len()).sum();
                if taken == total {
                    if sent == Flushed::Blocked {
                        // Records wait in the session: the pump sends them when it can.
                        self.outbound.notify_host();
                    }
                    return WriteOutcome::Written(taken);
                }
                let rest = skip(parts, taken);
                let queued = match self.outbound.try_write_parts(&rest) {
                    WriteOutcome::Written(n) => n,
                    _ if taken > 0 => 0,
                    other => return other,
                };
                self.outbound.notify_host();
                WriteOutcome::Written(taken + queued)
            }
            Err(e) => {
                tracing::debug!(peer = ?self.peer, error = %e, "connection write failed");
                self.outbound.fail(e.kind());
                WriteOutcome::Failed(e.kind())
            }
        }
    }

    fn queue_and_flush(&self, parts: &[&[u8]]) -> WriteOutcome {
        let outcome = self.outbound.try_write_parts(parts);
        if let WriteOutcome::Written(_) = outcome {
            self.guest_flush();
        }
        outcome
    }

    /// After a guest write: send it on from the guest's thread if the socket takes it now, else
    /// (socket full, still connecting, or a large write) leave it to the pump.
    pub fn guest_flush(&self) {
        let Some(wire) = self.wire.get() else {
            self.outbound.notify_host();
            return;
        };

        match wire.flush(&self.outbound, GUEST_FLUSH_BUDGET) {
            Ok(Flushed::Drained) => {}
            Ok(Flushed::Blocked | Flushed::Budget | Flushed::Ended) => self.outbound.notify_host(),
            Err(e) => {
                tracing::debug!(peer = ?self.peer, error = %e, "connection write failed");
                self.outbound.fail(e.kind());
            }
        }
    }

    /// A failure before or during the connection: every later guest operation reports it.
    pub fn fail(&self, kind: io::ErrorKind) {
        self.inbound.fail(kind);
        self.outbound.fail(kind);
    }
}

/// `parts` without their first `n` bytes.
fn skip<'a>(parts: &[&'a [u8]], mut n: usize) -> SmallVec<[&'a [u8]; 4]> {
    let mut rest = SmallVec::new();
    for part in parts {
        if n >= part.len() {
            n -= part.len();
        } else {
            rest.push(&part[n..]);
            n = 0;
        }
    }
    rest
}

/// Where the task reading a connection's socket stands.
#[derive(Debug)]
enum Receiver {
    NotStarted,
    Running(AbortHandle),
    /// The guest stopped reading; a receiver started later is stopped at once.
    Stopped,
}

/// Move bytes between `wire` and the connection's pipes until both directions end (or the
/// guest closed and the linger time ran out). The end of the outbound direction sends TLS
/// close_notify (for TLS streams) and then a TCP FIN.
///
/// The two directions are separate tasks: each wake-up then polls only the side that has
/// something to do, which matters when every request passes through here. The receiving task
/// waits on the socket alone; when the guest stops reading, [`Connection::stop_receiving`]
/// aborts it (watching for that inside the task cost a registration and a deregistration on a
/// `Notify` for every request).
pub async fn pump(wire: Arc<Wire>, conn: Arc<Connection>) {
    // From here on the guest's thread sends what it writes itself (see `guest_flush`).
    let _ = conn.wire.set(wire.clone());
    let sender = tokio::spawn(send_until_done(wire.clone(), conn.clone()));
    let receiver = tokio::spawn(receive_until_done(wire, conn.clone()));
    conn.receiving(receiver.abort_handle());
    let _ = receiver.await;
    let _ = sender.await;
}

/// Inbound: socket -> `conn.inbound`, until the peer finishes, the guest stops reading (see
/// [`Connection::stop_receiving`]) or the socket fails.
async fn receive_until_done(wire: Arc<Wire>, conn: Arc<Connection>) {
    let mut buf = vec![0u8; IO_CHUNK];
    loop {
        let room = match conn.inbound.host_wait_room().await {
            Some(room) => room.min(IO_CHUNK),
            None => return,
        };
        let received = wire.receive(&mut buf[..room]);
        if let Ok((_, true)) = received {
            // Session records of its own (tickets, key updates): the sender sends them.
            conn.outbound.notify_host();
        }
        let wait = match received {
            Ok((Received::Data { n, drained }, _)) => {
                conn.inbound.host_push(&buf[..n]);
                // Skips a receive that could only say WouldBlock: one per request otherwise.
                drained
            }
            Ok((Received::WouldBlock, _)) => true,
            Ok((Received::Eof, _)) => {
                conn.inbound.close_write();
                return;
            }
            Err(e) => {
                tracing::debug!(peer = ?conn.peer, error = %e, "connection read failed");
                conn.inbound.fail(e.kind());
                return;
            }
        };
        if wait && let Err(e) = wire.readable().await {
            conn.inbound.fail(e.kind());
            return;
        }
    }
}

/// Outbound: what the guest wrote and its own thread could not send -> socket; then
/// close_notify and FIN. Gives up `LINGER` after the guest closed if the peer does not read.
async fn send_until_done(wire: Arc<Wire>, conn: Arc<Connection>) {
    let send = async {
        let mut closing = false;
        loop {
            match wire.flush(&conn.outbound, usize::MAX) {
                Ok(Flushed::Blocked) => {
                    if let Err(e) = wire.writable().await {
                        conn.outbound.fail(e.kind());
                        return;
                    }
                }
                Ok(Flushed::Drained | Flushed::Budget) => conn.outbound.host_changed().await,
                Ok(Flushed::Ended) if !closing => {
                    // Everything the guest wrote is out: close_notify goes out on the next turn.
                    wire.close_notify();
                    closing = true;
                }
                Ok(Flushed::Ended) => break,
                Err(e) => {
                    tracing::debug!(peer = ?conn.peer, error = %e, "connection write failed");
                    conn.outbound.fail(e.kind());
                    return;
                }
            }
        }
        wire.shutdown_write();
    };
    let linger = async {
        let mut closed = conn.guest_closed.subscribe();
        let _ = closed.wait_for(|c| *c).await;
        tokio::time::sleep(LINGER).await;
    };
    tokio::select! {
        () = send => {}
        () = linger => tracing::debug!(peer = ?conn.peer, "dropping a closed connection that would not drain"),
    }
}

/// Where accepted connections are served: one Keep instance's runtime (its connections' traffic
/// runs there, on the workload's thread) and the `Notify` its guest waits on.
#[derive(Debug, Clone)]
pub struct Home {
    pub runtime: tokio::runtime::Handle,
    pub guest: Arc<Notify>,
}

impl Home {
    /// The calling runtime, with a fresh `Notify` for its guest.
    pub fn current() -> Option<Self> {
        Some(Home {
            runtime: tokio::runtime::Handle::try_current().ok()?,
            guest: Arc::new(Notify::new()),
        })
    }
}

/// One instance's end of a bound listening socket: the backlog of connections handed to it.
/// The accept loop is shared by every instance's end and stops when the last end is dropped.
#[derive(Debug)]
pub struct Listener {
    pub name: String,
    pub local_addr: SocketAddr,
    backlog: Mutex<mpsc::Receiver<Arc<Connection>>>,
    _accepting: Arc<AcceptTask>,
}

#[derive(Debug)]
struct AcceptTask(JoinHandle<()>);

impl Drop for AcceptTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Listener {
    /// Start accepting on an already bound, non-blocking socket, for the instances at `homes`
    /// (one end each, in that order). `tls = None` means plain TCP, accepted on the first home's
    /// runtime; otherwise the server config and the runtime (a [`HandshakePool`]'s) that accepts
    /// and runs the handshakes. Either way, each connection is served on its instance's runtime.
    pub fn start(
        name: String,
        socket: std::net::TcpListener,
        tls: Option<(Arc<rustls::ServerConfig>, tokio::runtime::Handle)>,
        limits: ListenLimits,
        homes: &[Home],
    ) -> io::Result<Vec<Self>> {
        let local_addr = socket.local_addr()?;
        let first = homes.first().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "a listener needs an instance")
        })?;
        let mut queues = Vec::with_capacity(homes.len());
        let mut backlogs = Vec::with_capacity(homes.len());
        for home in homes {
            let (tx, rx) = mpsc::channel(limits.backlog.max(1));
            queues.push((home.clone(), tx));
            backlogs.push(rx);
        }
        let (accept_on, acceptor) = match tls {
            None => (first.runtime.clone(), None),
            // Registered with the pool's reactor: accepts and handshakes never touch a
            // workload's thread.
            Some((config, pool)) => (pool, Some(tokio_rustls::TlsAcceptor::from(config))),
        };
        let socket = {
            let _runtime = accept_on.enter();
            TcpListener::from_std(socket)?
        };
        let instances = Arc::new(Instances {
            queues,
            next: AtomicUsize::new(0),
        });
        let accept = accept_loop(name.clone(), socket, acceptor, limits, instances);
        let accepting = Arc::new(AcceptTask(accept_on.spawn(accept)));
        Ok(backlogs
            .into_iter()
            .map(|rx| Listener {
                name: name.clone(),
                local_addr,
                backlog: Mutex::new(rx),
                _accepting: accepting.clone(),
            })
            .collect())
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

/// The instances a listener hands connections to, with each one's backlog.
struct Instances {
    queues: Vec<(Home, mpsc::Sender<Arc<Connection>>)>,
    next: AtomicUsize,
}

impl Instances {
    /// The instance that gets the next connection, with room reserved in its backlog: in
    /// turn, so that each instance serves an equal share of the connections, passing over one
    /// whose backlog is full (it is not accepting). `None` once every instance has stopped.
    async fn reserve(&self) -> Option<(&Home, mpsc::Permit<'_, Arc<Connection>>)> {
        let count = self.queues.len();
        let first = self.next.fetch_add(1, Ordering::Relaxed) % count;
        for k in 0..count {
            let (home, backlog) = &self.queues[(first + k) % count];
            if let Ok(permit) = backlog.try_reserve() {
                return Some((home, permit));
            }
        }
        let (home, backlog) = &self.queues[first];
        backlog.reserve().await.ok().map(|permit| (home, permit))
    }
}

/// Accept on the runtime this runs on (the pool's for TLS, where the handshakes run too), and
/// serve each finished connection on the runtime of the instance it goes to.
async fn accept_loop(
    name: String,
    socket: TcpListener,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    limits: ListenLimits,
    instances: Arc<Instances>,
) {
    let connections = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let handshakes = Arc::new(Semaphore::new(limits.max_handshakes.max(1)));
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
        let instances = instances.clone();
        let timeout = limits.handshake_timeout;
        let name = name.clone();
        tokio::spawn(async move {
            // The socket leaves this runtime's reactor to join its instance's.
            let (tcp, session) = match acceptor {
                Some(acceptor) => {
                    let handshake = accept_tls(acceptor, tcp, timeout).await;
                    drop(hs_permit);
                    match handshake {
                        Ok((tcp, session)) => (tcp, Some(session)),
                        Err(e) => {
                            tracing::info!(listener = %name, %peer, error = %e, "TLS handshake failed");
                            return;
                        }
                    }
                }
                None => {
                    drop(hs_permit);
                    match tcp.into_std() {
                        Ok(tcp) => (tcp, None),
                        Err(e) => {
                            tracing::debug!(listener = %name, %peer, error = %e, "accepted socket lost");
                            return;
                        }
                    }
                }
            };
            // `None`: every instance has stopped, and the connection closes as it drops.
            let Some((home, backlog)) = instances.reserve().await else {
                return;
            };
            let conn = Connection::new(&home.guest, Some(peer), Some(conn_permit));
            let served = conn.clone();
            home.runtime.spawn(async move {
                match TcpStream::from_std(tcp) {
                    Ok(tcp) => {
                        let wire = match session {
                            Some(session) => Wire::tls(tcp, session.into()),
                            None => Wire::plain(tcp),
                        };
                        pump(Arc::new(wire), served).await
                    }
                    Err(e) => served.fail(e.kind()),
                }
            });
            backlog.send(conn);
            home.guest.notify_one();
        });
    }
}

/// The server side of a TLS handshake on the calling runtime, with a deadline. The socket comes
/// back out of this runtime's reactor, ready to join the workload's (a tokio socket belongs to
/// the reactor it was registered with).
async fn accept_tls(
    acceptor: tokio_rustls::TlsAcceptor,
    tcp: TcpStream,
    timeout: Duration,
) -> io::Result<(std::net::TcpStream, rustls::ServerConnection)> {
    let stream = within(timeout, acceptor.accept(tcp)).await?;
    let (tcp, session) = stream.into_inner();
    Ok((tcp.into_std()?, session))
}

/// `handshake`, failing with `TimedOut` if it takes longer than `timeout`.
async fn within<T>(
    timeout: Duration,
    handshake: impl Future<Output = io::Result<T>>,
) -> io::Result<T> {
    tokio::time::timeout(timeout, handshake)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))?
}

/// Run a TLS handshake (`handshake`, server or client side) on `pool`, with a deadline, and bring
/// the socket back to the calling runtime for its traffic.
async fn handshake_on<S, F, Fut>(
    pool: &tokio::runtime::Handle,
    tcp: TcpStream,
    timeout: Duration,
    handshake: F,
) -> io::Result<Wire>
where
    S: Into<rustls::Connection> + Send + 'static,
    F: FnOnce(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = io::Result<(TcpStream, S)>> + Send,
{
    // A tokio socket belongs to the reactor it was registered with: leave this one, join the
    // pool's, and the reverse afterwards.
    let std_tcp = tcp.into_std()?;
    let handshake = pool.spawn(async move {
        let tcp = TcpStream::from_std(std_tcp)?;
        let (tcp, session) = within(timeout, handshake(tcp)).await?;
        Ok::<_, io::Error>((tcp.into_std()?, session))
    });
    let (std_tcp, session) = handshake
        .await
        .map_err(|e| io::Error::other(format!("handshake task ended: {e}")))??;
    Ok(Wire::tls(TcpStream::from_std(std_tcp)?, session.into()))
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
/// the guest's next read or write. A TLS target's handshake runs on `handshakes` (a
/// [`HandshakePool`]'s runtime): verifying the server's chain is public-key work too.
pub fn connect(
    target: ConnectTarget,
    guest: &Arc<Notify>,
    handshakes: tokio::runtime::Handle,
) -> Arc<Connection> {
    let conn = Connection::new(guest, None, None);
    let task_conn = conn.clone();
    tokio::spawn(async move {
        if let Err(e) = connect_and_pump(&target, handshakes, task_conn.clone()).await {
            tracing::warn!(host = %target.host, port = target.port, error = %e, "connect failed");
            task_conn.fail(e.kind());
        }
    });
    conn
}

async fn connect_and_pump(
    target: &ConnectTarget,
    handshakes: tokio::runtime::Handle,
    conn: Arc<Connection>,
) -> io::Result<()> {
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
        None => pump(Arc::new(Wire::plain(tcp)), conn).await,
        Some(config) => {
            let sni = target.server_name.as_deref().unwrap_or(host);
            let name = ServerName::try_from(sni.to_string())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            let connector = tokio_rustls::TlsConnector::from(config.clone());
            let handshake =
                move |tcp| async move { Ok(connector.connect(name, tcp).await?.into_inner()) };
            let wire = handshake_on(&handshakes, tcp, target.timeout, handshake).await?;
            pump(Arc::new(wire), conn).await
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::skip;

    #[test]
    fn skip_drops_whole_and_partial_parts() {
        let parts: [&[u8]; 3] = [b"abc", b"", b"defg"];
        let joined = |n| skip(&parts, n).concat();
        assert_eq!(joined(0), b"abcdefg");
        assert_eq!(joined(2), b"cdefg");
        assert_eq!(joined(3), b"defg");
        assert_eq!(joined(5), b"fg");
        assert_eq!(joined(7), b"");
        assert_eq!(joined(9), b"");
    }
}

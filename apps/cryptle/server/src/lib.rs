//! Cryptle's server: a poll-driven tokio driver around [`cryptle_game::App`].
//!
//! The same driver runs inside the Keep (built for `wasm32-wasip1`, a current-thread runtime on
//! the pre-opened `listen` socket; the Keep does TLS, this sees plaintext HTTP) and natively (the
//! benchmark's baseline puts rustls in front of [`Server::spawn_connection`]).
//!
//! What keeps one client from hurting the others:
//! - at most [`ServerLimits::max_connections`] connections; when full, a new connection evicts
//!   a connection that has not completed a request yet (oldest first), and only when there is
//!   none, the one whose last request is oldest: idle and slow clients go before players;
//! - a request must arrive whole within [`ServerLimits::header_timeout`] of its first byte, and
//!   an idle keep-alive connection is closed after [`ServerLimits::idle_timeout`];
//! - request heads and bodies are bounded ([`cryptle_game::HttpLimits`]);
//! - a token bucket per connection ([`ServerLimits::connection_rate`]) answers 429 beyond it;
//! - writes time out ([`ServerLimits::write_timeout`]) so a client that never reads cannot pin
//!   a connection forever.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cryptle_game::rate::{Bucket, Rate};
use cryptle_game::{ApiError, App, HttpLimits, parse_request};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::AbortHandle;
use tokio::time::Instant;

/// Connection-level limits.
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub write_timeout: Duration,
    pub connection_rate: Rate,
    pub http: HttpLimits,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(10),
            connection_rate: Rate {
                per_second: 50,
                burst: 100,
            },
            http: HttpLimits::default(),
        }
    }
}

/// Why a setting from the environment was refused.
#[derive(Debug, thiserror::Error)]
#[error("{name}: expected {expected}, got {value:?}")]
pub struct SettingError {
    pub name: &'static str,
    pub expected: &'static str,
    pub value: String,
}

fn env_number(
    name: &'static str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<u64>, SettingError> {
    match lookup(name) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .map(Some)
            .ok_or(SettingError {
                name,
                expected: "a positive whole number",
                value: v,
            }),
    }
}

/// Settings read from the environment (the Keep's `env` table), with [`Default`] otherwise:
///
/// | variable | meaning |
/// |---|---|
/// | `CRYPTLE_MAX_CONNECTIONS` | connections held at once |
/// | `CRYPTLE_HEADER_TIMEOUT_MS` | first byte to whole request |
/// | `CRYPTLE_IDLE_TIMEOUT_MS` | keep-alive idle time |
/// | `CRYPTLE_CONNECTION_RATE` | requests per second per connection (burst twice that) |
/// | `CRYPTLE_SESSION_RATE` | requests per second per game or player token (burst twice that) |
/// | `CRYPTLE_MAX_PLAYERS` | multiplayer handles |
pub fn settings_from(
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(ServerLimits, cryptle_game::AppConfig), SettingError> {
    let mut limits = ServerLimits::default();
    let mut app = cryptle_game::AppConfig::default();
    if let Some(n) = env_number("CRYPTLE_MAX_CONNECTIONS", lookup)? {
        limits.max_connections = n as usize;
    }
    if let Some(n) = env_number("CRYPTLE_HEADER_TIMEOUT_MS", lookup)? {
        limits.header_timeout = Duration::from_millis(n);
    }
    if let Some(n) = env_number("CRYPTLE_IDLE_TIMEOUT_MS", lookup)? {
        limits.idle_timeout = Duration::from_millis(n);
    }
    if let Some(n) = env_number("CRYPTLE_CONNECTION_RATE", lookup)? {
        limits.connection_rate = rate(n);
    }
    if let Some(n) = env_number("CRYPTLE_SESSION_RATE", lookup)? {
        app.session_rate = rate(n);
    }
    if let Some(n) = env_number("CRYPTLE_MAX_PLAYERS", lookup)? {
        app.max_players = n as usize;
    }
    Ok((limits, app))
}

fn rate(per_second: u64) -> Rate {
    let per_second = per_second.min(u32::MAX as u64 / 2) as u32;
    Rate {
        per_second,
        burst: per_second * 2,
    }
}

struct Tracked {
    activity: Arc<Activity>,
    abort: Option<AbortHandle>,
}

/// What eviction looks at: connections that never completed a request go first, oldest first;
/// then the one whose last request is oldest.
#[derive(Default)]
struct Activity {
    served: AtomicBool,
    /// Milliseconds since start at the last completed request (or the accept).
    last_ms: AtomicU64,
}

impl Activity {
    fn eviction_key(&self) -> (bool, u64) {
        (
            self.served.load(Ordering::Relaxed),
            self.last_ms.load(Ordering::Relaxed),
        )
    }
}

/// The server: the game behind a lock, and the table of live connections.
pub struct Server {
    app: Mutex<App>,
    limits: ServerLimits,
    started: Instant,
    connections: Mutex<ConnTable>,
}

#[derive(Default)]
struct ConnTable {
    next_id: u64,
    live: HashMap<u64, Tracked>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// Removes a connection from the table when its task ends or is aborted.
struct Untrack {
    server: Arc<Server>,
    id: u64,
}

impl Drop for Untrack {
    fn drop(&mut self) {
        if let Ok(mut t) = self.server.connections.lock() {
            t.live.remove(&self.id);
        }
    }
}

impl Server {
    pub fn new(app: App, limits: ServerLimits) -> Arc<Server> {
        Arc::new(Server {
            app: Mutex::new(app),
            limits,
            started: Instant::now(),
            connections: Mutex::new(ConnTable::default()),
        })
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Connections open now.
    pub fn connection_count(&self) -> usize {
        self.connections.lock().map(|t| t.live.len()).unwrap_or(0)
    }

    /// Accept plaintext connections for ever. Accept errors (a peer that reset, no descriptors
    /// left) are retried after a short pause rather than ending the server.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    self.spawn_connection(stream);
                }
                Err(e) => {
                    eprintln!("cryptle: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }

    /// Serve one connection on its own task (evicting the stalest one if the table is full).
    pub fn spawn_connection<S>(self: &Arc<Self>, stream: S)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let now = self.now_ms();
        let activity = Arc::new(Activity {
            served: AtomicBool::new(false),
            last_ms: AtomicU64::new(now),
        });
        let (id, evicted) = {
            let Ok(mut table) = self.connections.lock() else {
                return;
            };
            let mut evicted = Vec::new();
            while table.live.len() >= self.limits.max_connections {
                let stalest = table
                    .live
                    .iter()
                    .min_by_key(|(_, t)| t.activity.eviction_key())
                    .map(|(id, _)| *id);
                match stalest.and_then(|id| table.live.remove(&id)) {
                    Some(t) => evicted.extend(t.abort),
                    None => break,
                }
            }
            let id = table.next_id;
            table.next_id += 1;
            table.live.insert(
                id,
                Tracked {
                    activity: activity.clone(),
                    abort: None,
                },
            );
            (id, evicted)
        };
        // Abort outside the lock: an aborted task's guard takes the lock when it is dropped.
        for handle in evicted {
            handle.abort();
        }
        let guard = Untrack {
            server: self.clone(),
            id,
        };
        let server = self.clone();
        let task = tokio::spawn(async move {
            let _guard = guard;
            server.connection(stream, activity).await;
        });
        if let Ok(mut table) = self.connections.lock()
            && let Some(t) = table.live.get_mut(&id)
        {
            t.abort = Some(task.abort_handle());
        }
    }

    async fn connection<S>(&self, mut stream: S, activity: Arc<Activity>)
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let limits = &self.limits;
        let mut buf: Vec<u8> = Vec::with_capacity(1024);
        let mut chunk = vec![0u8; 4096];
        let mut out = Vec::with_capacity(4096);
        let mut bucket = Bucket::new(limits.connection_rate, self.now_ms());
        // When the request now being received must be complete.
        let mut request_deadline: Option<Instant> = None;
        let mut idle_deadline = Instant::now() + limits.idle_timeout;
        loop {
            match parse_request(&buf, &limits.http) {
                Ok(Some((req, used))) => {
                    buf.drain(..used);
                    request_deadline = None;
                    let now = self.now_ms();
                    let response = if bucket.allow(now) {
                        match self.app.lock() {
                            Ok(mut app) => app.handle(&req, now),
                            Err(_) => ApiError::Busy.to_response(),
                        }
                    } else {
                        ApiError::RateLimited.to_response()
                    };
                    out.clear();
                    response.write_to(&mut out, req.keep_alive);
                    if !self.write_all(&mut stream, &out).await || !req.keep_alive {
                        break;
                    }
                    activity.last_ms.store(self.now_ms(), Ordering::Relaxed);
                    activity.served.store(true, Ordering::Relaxed);
                    idle_deadline = Instant::now() + limits.idle_timeout;
                    continue;
                }
                Ok(None) => {}
                Err(e) => {
                    out.clear();
                    ApiError::Http(e).to_response().write_to(&mut out, false);
                    self.write_all(&mut stream, &out).await;
                    break;
                }
            }
            let deadline = request_deadline.unwrap_or(idle_deadline);
            match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Err(_) => {
                    // A request begun and not finished in time gets a 408; an idle one just ends.
                    if request_deadline.is_some() {
                        out.clear();
                        ApiError::Http(cryptle_game::HttpError::Timeout)
                            .to_response()
                            .write_to(&mut out, false);
                        self.write_all(&mut stream, &out).await;
                    }
                    break;
                }
                Ok(Ok(n)) => {
                    if request_deadline.is_none() {
                        request_deadline = Some(Instant::now() + limits.header_timeout);
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
            }
        }
        let _ = tokio::time::timeout(Duration::from_millis(200), stream.shutdown()).await;
    }

    async fn write_all<S: AsyncWrite + Unpin>(&self, stream: &mut S, bytes: &[u8]) -> bool {
        matches!(
            tokio::time::timeout(self.limits.write_timeout, async {
                stream.write_all(bytes).await?;
                stream.flush().await
            })
            .await,
            Ok(Ok(()))
        )
    }
}

/// Session tokens from the operating system (WASI `random_get` inside a Keep).
#[derive(Debug, Default)]
pub struct OsEntropy;

impl cryptle_game::Entropy for OsEntropy {
    fn fill(&mut self, buf: &mut [u8]) {
        // A failing entropy source must not silently give predictable tokens.
        getrandom::fill(buf).expect("the platform's random source failed");
    }
}

/// A fresh secret seed from the operating system.
pub fn os_seed() -> u64 {
    let mut raw = [0u8; 8];
    OsEntropy.fill_seed(&mut raw);
    u64::from_le_bytes(raw)
}

impl OsEntropy {
    fn fill_seed(&mut self, raw: &mut [u8; 8]) {
        cryptle_game::Entropy::fill(self, raw);
    }
}

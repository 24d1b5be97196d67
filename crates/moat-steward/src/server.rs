//! Serving the router over HTTPS (rustls on ring, HTTP/1.1 with keep-alive), with the limits
//! that keep a slow or hostile peer from stalling the Steward: a cap on open connections,
//! deadlines for the TLS handshake, for request headers and for a connection's whole life.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use moat_tls::LiveIdentity;
use rustls::ServerConfig;
use rustls_pki_types::PrivateKeyDer;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use crate::error::ServeError;
use crate::service::Steward;

/// Connection-level limits.
#[derive(Debug, Clone)]
pub struct ConnLimits {
    pub max_connections: usize,
    pub handshake_timeout: Duration,
    pub header_timeout: Duration,
    /// A connection is closed after this long, keep-alive or not.
    pub max_connection_age: Duration,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            max_connections: 1024,
            handshake_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(10),
            max_connection_age: Duration::from_secs(300),
        }
    }
}

/// A rustls server configuration (ring provider, TLS 1.2 and 1.3, HTTP/1.1 ALPN) presenting
/// whatever certificate `resolver` gives at each handshake.
fn tls_config(
    resolver: Arc<dyn rustls::server::ResolvesServerCert>,
) -> Result<Arc<ServerConfig>, ServeError> {
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| ServeError::Tls(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// How long each HTTPS certificate the Steward issues itself is valid.
pub const SELF_ISSUED_LIFETIME: Duration = Duration::from_secs(90 * 24 * 3600);

/// A TLS server configuration whose certificate the Steward's own CA signs for `names`
/// (DNS names or IP addresses), so clients need to trust only the CA. The certificate is
/// re-issued, with a fresh key, on the first handshake after two thirds of its validity: a
/// Steward that runs for months never serves an expired one (Keeps would then fail to renew
/// theirs, one after another).
pub fn tls_config_from_ca(
    steward: &Arc<Steward>,
    names: &[String],
) -> Result<Arc<ServerConfig>, ServeError> {
    tls_config_from_ca_with_lifetime(steward, names, SELF_ISSUED_LIFETIME)
}

/// [`tls_config_from_ca`] with a chosen certificate lifetime (tests use seconds).
pub fn tls_config_from_ca_with_lifetime(
    steward: &Arc<Steward>,
    names: &[String],
    lifetime: Duration,
) -> Result<Arc<ServerConfig>, ServeError> {
    tls_config(Arc::new(SelfIssued {
        steward: steward.clone(),
        names: names.to_vec(),
        lifetime,
        current: std::sync::Mutex::new(SelfIssued::issue(steward, names, lifetime)?),
    }))
}

/// The Steward's self-issued HTTPS certificate and when to replace it.
#[derive(Debug)]
struct SelfIssued {
    steward: Arc<Steward>,
    names: Vec<String>,
    lifetime: Duration,
    current: std::sync::Mutex<(Arc<rustls::sign::CertifiedKey>, std::time::Instant)>,
}

impl SelfIssued {
    /// A fresh certificate and the moment two thirds of its lifetime have passed.
    fn issue(
        steward: &Steward,
        names: &[String],
        lifetime: Duration,
    ) -> Result<(Arc<rustls::sign::CertifiedKey>, std::time::Instant), ServeError> {
        let (cert, key) = steward.ca().issue_server_cert(names, lifetime)?;
        let key = PrivateKeyDer::Pkcs8(key.serialize_der().into());
        let signer = rustls::crypto::ring::sign::any_supported_type(&key)
            .map_err(|e| ServeError::Tls(e.to_string()))?;
        let chain = vec![cert, steward.ca().cert_der().clone()];
        let renew_at = std::time::Instant::now() + lifetime * 2 / 3;
        Ok((
            Arc::new(rustls::sign::CertifiedKey::new(chain, signer)),
            renew_at,
        ))
    }
}

impl rustls::server::ResolvesServerCert for SelfIssued {
    fn resolve(
        &self,
        _client_hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if std::time::Instant::now() >= current.1 {
            // One P-256 key and signature (~0.1 ms), once per renewal, under the lock so
            // concurrent handshakes do not each issue one.
            match Self::issue(&self.steward, &self.names, self.lifetime) {
                Ok(fresh) => {
                    *current = fresh;
                    tracing::info!("re-issued the Steward's HTTPS certificate");
                }
                // Keep serving the old one; the next handshake tries again.
                Err(e) => {
                    tracing::warn!(error = %e, "cannot re-issue the Steward's HTTPS certificate")
                }
            }
        }
        Some(current.0.clone())
    }
}

/// Loads a PEM chain and key for the HTTPS listener. The returned [`LiveIdentity`] is what the
/// listener presents: replacing it (after the files changed) takes effect at the next handshake.
pub fn tls_config_from_files(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<(Arc<ServerConfig>, LiveIdentity), ServeError> {
    let identity =
        moat_tls::Identity::load_pem(cert, key).map_err(|e| ServeError::Tls(e.to_string()))?;
    let live = LiveIdentity::new(identity);
    Ok((tls_config(live.server_resolver())?, live))
}

/// Serves `router` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    router: Router,
    limits: ConnLimits,
    steward: Arc<Steward>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), ServeError> {
    let acceptor = TlsAcceptor::from(tls);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let service = TowerToHyperService::new(router);
    // Whether the last connection was refused at the limit. A peer can open connections as
    // fast as it likes: the log says once that the limit was reached and once that it cleared,
    // and the count of refused connections is in the metrics.
    let mut at_limit = false;
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            steward.metrics().connection_refused();
            if !at_limit {
                at_limit = true;
                tracing::warn!(
                    %peer,
                    limit = limits.max_connections,
                    "connection limit reached; closing new connections until some finish \
                     (counted in moat_steward_connections_refused_total)"
                );
            }
            continue;
        };
        if at_limit {
            at_limit = false;
            tracing::info!("below the connection limit again; accepting connections");
        }
        steward.metrics().connection();
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let service = service.clone();
        let limits = limits.clone();
        let steward = steward.clone();
        tokio::spawn(async move {
            let _slot = slot;
            handle(tcp, peer, acceptor, service, limits, steward).await;
        });
    }
}

async fn handle(
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    service: TowerToHyperService<Router>,
    limits: ConnLimits,
    steward: Arc<Steward>,
) {
    let tls = match tokio::time::timeout(limits.handshake_timeout, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            steward.metrics().handshake_failed();
            tracing::debug!(%peer, "TLS handshake failed: {e}");
            return;
        }
        Err(_) => {
            steward.metrics().handshake_failed();
            tracing::debug!(%peer, "TLS handshake timed out");
            return;
        }
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true)
        .max_buf_size(64 * 1024);
    let conn = builder.serve_connection(TokioIo::new(tls), service);
    match tokio::time::timeout(limits.max_connection_age, conn).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!(%peer, "connection ended: {e}"),
        Err(_) => tracing::debug!(%peer, "connection closed at its maximum age"),
    }
}

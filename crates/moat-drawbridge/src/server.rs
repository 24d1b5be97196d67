//! The listener: HTTPS with optional client certificates, or plain HTTP on loopback (for tools
//! and the conformance suite), feeding connections to the API router.
//!
//! Client certificates are *requested* but not required, and not judged at the TLS layer: the
//! handshake proves the client holds the certificate's key (rustls checks the handshake
//! signature), and each request then judges the chain against the release policy of the
//! repository it reads (`policy::evaluate`), because each repository trusts its own Stewards.
//!
//! No peer can hold the server: TLS handshakes and request headers have deadlines, request
//! bodies an idle timeout (in the handlers), and the number of open connections is bounded.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use moat_tls::LiveIdentity;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

use crate::api::ClientChain;
use crate::registry::Registry;

/// Deadline for a TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Deadline for a request's headers once a connection is open.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// Open connections at most; further ones wait in the kernel's backlog.
pub const MAX_CONNECTIONS: usize = 1024;
/// How often idle upload sessions are looked for.
pub const EXPIRY_SWEEP_INTERVAL: Duration = Duration::from_secs(600);

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("reading {path}: {reason}")]
    Pem { path: String, reason: String },
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    #[error("listening on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("plain HTTP is only served on loopback addresses, not {0}")]
    PlainNotLoopback(SocketAddr),
}

/// Accepts any client certificate whose handshake signature verifies; the chain is judged per
/// request. Named for what it skips, as rustls puts such verifiers under `danger`.
#[derive(Debug)]
struct DeferredChainVerifier {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for DeferredChainVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A server configuration from a PEM certificate chain and key: ring provider, TLS 1.2/1.3,
/// h2 and http/1.1, client certificates optional.
pub fn tls_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<rustls::ServerConfig>, ServerError> {
    let identity = moat_tls::Identity::from_parts(chain, key)
        .map_err(|e| ServerError::Tls(rustls::Error::General(e.to_string())))?;
    tls_config_presenting(&LiveIdentity::new(identity))
}

/// [`tls_config`] presenting whatever `identity` holds at each handshake.
pub fn tls_config_presenting(
    identity: &LiveIdentity,
) -> Result<Arc<rustls::ServerConfig>, ServerError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(DeferredChainVerifier {
        algorithms: provider.signature_verification_algorithms,
    });
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(identity.server_resolver());
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// [`tls_config`] from PEM files. The returned [`LiveIdentity`] is what the listener presents:
/// replacing it (after the files changed) takes effect at the next handshake.
pub fn tls_config_from_files(
    cert: &Path,
    key: &Path,
) -> Result<(Arc<rustls::ServerConfig>, LiveIdentity), ServerError> {
    let identity = moat_tls::Identity::load_pem(cert, key).map_err(|e| ServerError::Pem {
        path: format!("{} and {}", cert.display(), key.display()),
        reason: e.to_string(),
    })?;
    let live = LiveIdentity::new(identity);
    Ok((tls_config_presenting(&live)?, live))
}

/// Bind a listener; plain HTTP only on loopback.
pub async fn bind(addr: SocketAddr, tls: bool) -> Result<TcpListener, ServerError> {
    if !tls && !addr.ip().is_loopback() {
        return Err(ServerError::PlainNotLoopback(addr));
    }
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind { addr, source })
}

/// Serve `registry` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    registry: Arc<Registry>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let app = crate::api::router(registry.clone());
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));

    let sweeper = tokio::spawn(async move {
        let mut tick = tokio::time::interval(EXPIRY_SWEEP_INTERVAL);
        tick.tick().await;
        loop {
            tick.tick().await;
            if let Err(e) = registry.expire_uploads().await {
                tracing::error!(error = %e, "expiring upload sessions failed");
            }
        }
    });

    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            permit = slots.clone().acquire_owned() => permit.expect("semaphore never closes"),
        };
        let (tcp, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: back off rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let app = app.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _ = tcp.set_nodelay(true);
            match acceptor {
                Some(acceptor) => {
                    let tls =
                        match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                            Ok(Ok(tls)) => tls,
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(%peer, "TLS handshake timed out");
                                return;
                            }
                        };
                    let chain = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .map(|c| c.to_vec())
                        .unwrap_or_default();
                    serve_connection(TokioIo::new(tls), ClientChain(Arc::new(chain)), app).await;
                }
                None => serve_connection(TokioIo::new(tcp), ClientChain::default(), app).await,
            }
        });
    }
    sweeper.abort();
}

async fn serve_connection<I>(io: I, chain: ClientChain, app: Router)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(chain.clone());
        app.clone().oneshot(req)
    });
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(256);
    if let Err(e) = builder.serve_connection(io, service).await {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

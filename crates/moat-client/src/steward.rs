//! A client for the Steward's HTTPS API: fetch a nonce, submit a CSR, receive the certificate
//! chain. It trusts exactly the Steward CA it is given (no system roots: the Steward is a
//! private CA), keeps one HTTP/1.1 connection alive between calls, and bounds every call with a
//! deadline. A refusal carries the Steward's machine-readable reason ([`StewardError::Refused`]).
//!
//! ```no_run
//! # async fn f(csr_der: Vec<u8>) -> Result<(), moat_client::steward::StewardError> {
//! use moat_client::steward::StewardClient;
//! let ca = std::fs::read("steward-ca.pem").unwrap();
//! let client = StewardClient::new("https://127.0.0.1:8443", &ca)?;
//! let nonce = client.nonce().await?;
//! // ... build a CSR whose evidence binds the key and `nonce` ...
//! let chain = client.certify(&csr_der).await?; // leaf first, then the CA
//! # Ok(()) }
//! ```

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio_rustls::TlsConnector;

/// Deadline for one call (connect, TLS, request and response) unless changed.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest response body read (a chain is a few KiB).
pub const MAX_RESPONSE: usize = 256 * 1024;

/// What went wrong talking to a Steward.
#[derive(Debug, thiserror::Error)]
pub enum StewardError {
    #[error("invalid Steward URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("Steward CA certificate: {0}")]
    BadCa(String),
    #[error("cannot connect to the Steward at {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("TLS with the Steward at {addr} failed: {source}")]
    Tls {
        addr: String,
        source: std::io::Error,
    },
    #[error("HTTP exchange with the Steward failed: {0}")]
    Http(String),
    #[error("the Steward did not answer within {0:?}")]
    Timeout(Duration),
    /// The Steward refused the request and said why.
    #[error("the Steward refused the request ({status}, {code}, check `{check}`): {message}")]
    Refused {
        status: u16,
        code: String,
        check: String,
        message: String,
    },
    #[error("unexpected answer from the Steward: {0}")]
    BadResponse(String),
}

impl StewardError {
    /// The failed check the Steward named, if it refused the request.
    pub fn check(&self) -> Option<&str> {
        match self {
            StewardError::Refused { check, .. } => Some(check),
            _ => None,
        }
    }
}

/// A nonce from `GET /api/v1/nonce`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nonce {
    pub bytes: Vec<u8>,
    /// Unix seconds.
    pub expires_at: u64,
}

/// An answer from [`StewardClient::raw`].
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    pub content_type: String,
    pub body: Bytes,
}

impl RawResponse {
    /// The error envelope's `code` and `check`, when the body is one.
    pub fn error(&self) -> Option<(String, String)> {
        match expect_ok(StatusCode::from_u16(self.status).ok()?, &self.body) {
            Err(StewardError::Refused { code, check, .. }) => Some((code, check)),
            _ => None,
        }
    }
}

/// A Steward client. Cheap to share behind an `Arc`; calls are serialised over one keep-alive
/// connection (a benchmark or a busy caller opens several clients).
pub struct StewardClient {
    host: String,
    port: u16,
    authority: String,
    server_name: ServerName<'static>,
    tls: TlsConnector,
    timeout: Duration,
    conn: Mutex<Option<SendRequest<Full<Bytes>>>>,
}

impl std::fmt::Debug for StewardClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StewardClient")
            .field("authority", &self.authority)
            .finish_non_exhaustive()
    }
}

impl StewardClient {
    /// A client for `url` (`https://HOST[:PORT]`) trusting the PEM CA certificate(s) `ca_pem`.
    pub fn new(url: &str, ca_pem: &[u8]) -> Result<Self, StewardError> {
        let mut roots = RootCertStore::empty();
        let mut n = 0;
        for cert in CertificateDer::pem_slice_iter(ca_pem) {
            let cert = cert.map_err(|e| StewardError::BadCa(e.to_string()))?;
            roots
                .add(cert)
                .map_err(|e| StewardError::BadCa(e.to_string()))?;
            n += 1;
        }
        if n == 0 {
            return Err(StewardError::BadCa("no CERTIFICATE in the CA file".into()));
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| StewardError::BadCa(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Self::with_tls_config(url, config)
    }

    /// A client with a caller-built rustls configuration (its roots decide whom to trust).
    pub fn with_tls_config(
        url: &str,
        mut config: rustls::ClientConfig,
    ) -> Result<Self, StewardError> {
        let bad = |reason: &str| StewardError::InvalidUrl {
            url: url.chars().take(200).collect(),
            reason: reason.into(),
        };
        let uri: Uri = url.parse().map_err(|_| bad("not a URL"))?;
        if uri.scheme_str() != Some("https") {
            return Err(bad("the Steward is reached over https:// only"));
        }
        if uri.path() != "/" && !uri.path().is_empty() {
            return Err(bad("give the Steward's base URL without a path"));
        }
        let host = uri.host().ok_or_else(|| bad("no host"))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(443);
        let server_name = match host.parse::<IpAddr>() {
            Ok(ip) => ServerName::IpAddress(ip.into()),
            Err(_) => ServerName::try_from(host.clone()).map_err(|_| bad("invalid host name"))?,
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let authority = uri
            .authority()
            .map(|a| a.to_string())
            .unwrap_or_else(|| host.clone());
        Ok(StewardClient {
            host,
            port,
            authority,
            server_name,
            tls: TlsConnector::from(Arc::new(config)),
            timeout: DEFAULT_TIMEOUT,
            conn: Mutex::new(None),
        })
    }

    /// Changes the per-call deadline.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// `GET /api/v1/nonce`.
    pub async fn nonce(&self) -> Result<Nonce, StewardError> {
        let (status, _, body) = self.call(Method::GET, "/api/v1/nonce", None, None).await?;
        expect_ok(status, &body)?;
        #[derive(serde::Deserialize)]
        struct Answer {
            nonce: String,
            expires_at: u64,
        }
        let a: Answer = serde_json::from_slice(&body)
            .map_err(|e| StewardError::BadResponse(format!("nonce JSON: {e}")))?;
        let bytes = hex::decode(&a.nonce)
            .map_err(|e| StewardError::BadResponse(format!("nonce hex: {e}")))?;
        Ok(Nonce {
            bytes,
            expires_at: a.expires_at,
        })
    }

    /// `POST /api/v1/certificate` with a DER CSR: the chain, leaf first, then the CA.
    pub async fn certify(
        &self,
        csr_der: &[u8],
    ) -> Result<Vec<CertificateDer<'static>>, StewardError> {
        let (status, ctype, body) = self
            .call(
                Method::POST,
                "/api/v1/certificate",
                Some(("application/pkcs10", Bytes::copy_from_slice(csr_der))),
                Some("application/pem-certificate-chain"),
            )
            .await?;
        expect_ok(status, &body)?;
        if !ctype.starts_with("application/pem-certificate-chain") {
            return Err(StewardError::BadResponse(format!(
                "Content-Type {ctype:?} for a certificate chain"
            )));
        }
        let chain = CertificateDer::pem_slice_iter(&body)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| StewardError::BadResponse(format!("chain PEM: {e}")))?;
        if chain.is_empty() {
            return Err(StewardError::BadResponse("empty certificate chain".into()));
        }
        Ok(chain)
    }

    /// `GET /api/v1/ca`: the CA certificate as the Steward serves it (PEM).
    pub async fn ca_pem(&self) -> Result<String, StewardError> {
        let (status, _, body) = self.call(Method::GET, "/api/v1/ca", None, None).await?;
        expect_ok(status, &body)?;
        String::from_utf8(body.to_vec()).map_err(|_| StewardError::BadResponse("CA PEM".into()))
    }

    /// `GET /healthz`.
    pub async fn health(&self) -> Result<(), StewardError> {
        let (status, _, body) = self.call(Method::GET, "/healthz", None, None).await?;
        expect_ok(status, &body)
    }

    /// Any request, answered as is (no status check): for tools and tests that probe the API
    /// beyond the typed calls above.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Bytes,
        accept: Option<&str>,
    ) -> Result<RawResponse, StewardError> {
        let body = content_type.map(|c| (c, body));
        let (status, content_type, body) = self.call(method, path, body, accept).await?;
        Ok(RawResponse {
            status: status.as_u16(),
            content_type,
            body,
        })
    }

    /// One request with a deadline, on the kept-alive connection (reconnecting when needed).
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<(&str, Bytes)>,
        accept: Option<&str>,
    ) -> Result<(StatusCode, String, Bytes), StewardError> {
        let timeout = self.timeout;
        tokio::time::timeout(timeout, self.call_inner(method, path, body, accept))
            .await
            .map_err(|_| StewardError::Timeout(timeout))?
    }

    async fn call_inner(
        &self,
        method: Method,
        path: &str,
        body: Option<(&str, Bytes)>,
        accept: Option<&str>,
    ) -> Result<(StatusCode, String, Bytes), StewardError> {
        let mut guard = self.conn.lock().await;
        if guard.as_ref().is_none_or(|s| s.is_closed()) {
            *guard = Some(self.connect().await?);
        }
        let sender = guard.as_mut().expect("connected above");
        if sender.ready().await.is_err() {
            *guard = Some(self.connect().await?);
        }
        let sender = guard.as_mut().expect("connected above");
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, &self.authority);
        if let Some(a) = accept {
            req = req.header(header::ACCEPT, a);
        }
        let payload = match body {
            Some((ctype, bytes)) => {
                req = req.header(header::CONTENT_TYPE, ctype);
                bytes
            }
            None => Bytes::new(),
        };
        let req = req
            .body(Full::new(payload))
            .map_err(|e| StewardError::Http(e.to_string()))?;
        let resp = match sender.send_request(req).await {
            Ok(r) => r,
            Err(e) => {
                *guard = None;
                return Err(StewardError::Http(e.to_string()));
            }
        };
        let status = resp.status();
        let ctype = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let body = Limited::new(resp.into_body(), MAX_RESPONSE)
            .collect()
            .await
            .map_err(|e| StewardError::Http(format!("reading the answer: {e}")))?
            .to_bytes();
        Ok((status, ctype, body))
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, StewardError> {
        let addr = format!("{}:{}", self.host, self.port);
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|source| StewardError::Connect {
                addr: addr.clone(),
                source,
            })?;
        let _ = tcp.set_nodelay(true);
        let tls = self
            .tls
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(|source| StewardError::Tls {
                addr: addr.clone(),
                source,
            })?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| StewardError::Http(e.to_string()))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }
}

fn expect_ok(status: StatusCode, body: &[u8]) -> Result<(), StewardError> {
    if status.is_success() {
        return Ok(());
    }
    #[derive(serde::Deserialize)]
    struct Envelope {
        error: Detail,
    }
    #[derive(serde::Deserialize)]
    struct Detail {
        code: String,
        message: String,
        #[serde(default)]
        check: String,
    }
    match serde_json::from_slice::<Envelope>(body) {
        Ok(e) => Err(StewardError::Refused {
            status: status.as_u16(),
            code: e.error.code,
            check: e.error.check,
            message: e.error.message,
        }),
        Err(_) => Err(StewardError::Refused {
            status: status.as_u16(),
            code: "http".into(),
            check: "http".into(),
            message: String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned(),
        }),
    }
}

//! rustls clients (and server configs) for tests, on the ring provider like the rest of Moat.
//!
//! A Keep without a Steward presents a fresh self-signed certificate each run, so a test cannot
//! trust it in advance. [`capturing_client`] accepts whatever chain the server presents *and
//! records it* (the handshake signature is still verified against the presented key, so the server
//! proves it holds that key); [`pinned_client`] then accepts only that exact certificate, which is
//! how a test checks that every connection of a run meets the same Keep identity. Both live in
//! [`danger`] because they skip chain validation, and are test-only. [`ca_client`] is an ordinary
//! verifying client for servers whose CA the test made ([`crate::pki`], Moat's test CA).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use tokio::net::TcpStream;

use crate::pki::Identity;

/// The ring provider, shared.
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// The certificate chain a server presented, filled in during the handshake.
#[derive(Debug, Clone, Default)]
pub struct Captured(Arc<Mutex<Option<Vec<CertificateDer<'static>>>>>);

impl Captured {
    /// The chain (leaf first) presented in the latest handshake, if any happened.
    pub fn chain(&self) -> Option<Vec<CertificateDer<'static>>> {
        self.0.lock().expect("captured lock").clone()
    }

    /// The leaf certificate presented in the latest handshake.
    pub fn leaf(&self) -> Option<CertificateDer<'static>> {
        self.chain().and_then(|c| c.into_iter().next())
    }
}

/// Verifiers that skip chain validation. Test-only.
pub mod danger {
    use super::*;

    /// Accepts any presented chain, records it in [`Captured`], and, when pinned, rejects every
    /// leaf but the pinned one. Handshake signatures are verified.
    #[derive(Debug)]
    pub struct CapturingVerifier {
        pub(crate) captured: Captured,
        pub(crate) pinned: Option<CertificateDer<'static>>,
        pub(crate) provider: Arc<CryptoProvider>,
    }

    impl ServerCertVerifier for CapturingVerifier {
        fn verify_server_cert(
            &self,
            end_entity: &CertificateDer<'_>,
            intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp_response: &[u8],
            _now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            let chain: Vec<CertificateDer<'static>> = std::iter::once(end_entity)
                .chain(intermediates)
                .map(|c| c.clone().into_owned())
                .collect();
            *self.captured.0.lock().expect("captured lock") = Some(chain);
            match &self.pinned {
                Some(pinned) if pinned.as_ref() != end_entity.as_ref() => {
                    Err(rustls::Error::InvalidCertificate(
                        rustls::CertificateError::ApplicationVerificationFailure,
                    ))
                }
                _ => Ok(ServerCertVerified::assertion()),
            }
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(
                message,
                cert,
                dss,
                &self.provider.signature_verification_algorithms,
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                message,
                cert,
                dss,
                &self.provider.signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.provider
                .signature_verification_algorithms
                .supported_schemes()
        }
    }
}

fn finish(
    builder: rustls::ConfigBuilder<ClientConfig, rustls::client::WantsClientCert>,
    client_auth: Option<&Identity>,
) -> Arc<ClientConfig> {
    let config = match client_auth {
        None => builder.with_no_client_auth(),
        Some(leaf) => builder
            .with_client_auth_cert(leaf.chain().to_vec(), leaf.private_key().clone_key())
            .expect("client certificate and key match"),
    };
    Arc::new(config)
}

fn builder() -> rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier> {
    ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default versions")
}

/// A client that accepts any server certificate and records it (see the module docs).
pub fn capturing_client(client_auth: Option<&Identity>) -> (Arc<ClientConfig>, Captured) {
    let captured = Captured::default();
    let verifier = danger::CapturingVerifier {
        captured: captured.clone(),
        pinned: None,
        provider: provider(),
    };
    let builder = builder()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier));
    (finish(builder, client_auth), captured)
}

/// A client that accepts only `leaf` as the server's certificate.
pub fn pinned_client(
    leaf: CertificateDer<'static>,
    client_auth: Option<&Identity>,
) -> Arc<ClientConfig> {
    let verifier = danger::CapturingVerifier {
        captured: Captured::default(),
        pinned: Some(leaf),
        provider: provider(),
    };
    let builder = builder()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier));
    finish(builder, client_auth)
}

/// A verifying client trusting only `ca`.
pub fn ca_client(
    ca: &CertificateDer<'static>,
    client_auth: Option<&Identity>,
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.clone()).expect("a valid CA certificate");
    finish(builder().with_root_certificates(roots), client_auth)
}

/// A copy of `config` that never resumes sessions: every connection is a full handshake.
pub fn without_resumption(config: &Arc<ClientConfig>) -> Arc<ClientConfig> {
    let mut config = (**config).clone();
    config.resumption = rustls::client::Resumption::disabled();
    Arc::new(config)
}

/// A server config presenting `leaf`; with `client_ca`, clients must present a certificate it
/// issued (mTLS).
pub fn server_config(
    leaf: &Identity,
    client_ca: Option<&CertificateDer<'static>>,
) -> Arc<ServerConfig> {
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default versions");
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            roots.add(ca.clone()).expect("a valid CA certificate");
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider(),
            )
            .build()
            .expect("client verifier");
            builder.with_client_cert_verifier(verifier)
        }
    };
    Arc::new(
        builder
            .with_single_cert(leaf.chain().to_vec(), leaf.private_key().clone_key())
            .expect("server certificate and key match"),
    )
}

/// Connect to `addr` and complete a TLS handshake naming `server_name` (SNI).
pub async fn connect(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    server_name: &str,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(server_name.to_owned())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
}

/// A blocking TLS stream (handshake completed) for tests that do not run tokio.
pub type BlockingTls = rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>;

/// Blocking version of [`connect`]: connects and completes the handshake before returning.
pub fn connect_blocking(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    server_name: &str,
) -> std::io::Result<BlockingTls> {
    let tcp = std::net::TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(crate::WAIT))?;
    tcp.set_write_timeout(Some(crate::WAIT))?;
    let name = ServerName::try_from(server_name.to_owned())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let conn = rustls::ClientConnection::new(config, name).map_err(std::io::Error::other)?;
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    Ok(stream)
}

/// The certificate chain a TLS server at `addr` presents for `server_name` (a handshake that
/// verifies nothing; for tests that look at what is served, e.g. after a reload).
pub fn presented_chain(addr: SocketAddr, server_name: &str) -> Vec<CertificateDer<'static>> {
    let (config, captured) = capturing_client(None);
    let mut tls = connect_blocking(addr, config, server_name).expect("TLS handshake");
    tls.conn.send_close_notify();
    let _ = tls.conn.complete_io(&mut tls.sock);
    captured.chain().expect("the server presented a chain")
}

/// Wait (up to [`crate::WAIT`]) until the server at `addr` presents `leaf`.
pub fn wait_for_presented_leaf(addr: SocketAddr, server_name: &str, leaf: &CertificateDer<'_>) {
    let deadline = std::time::Instant::now() + crate::WAIT;
    loop {
        let chain = presented_chain(addr, server_name);
        if chain.first().map(|c| c.as_ref()) == Some(leaf.as_ref()) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{addr} never presented the expected certificate"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

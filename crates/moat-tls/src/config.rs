//! rustls server and client configurations for Keeps, the Steward, Drawbridge and clients.
//! Always the ring provider, TLS 1.3 and 1.2; everything else is an explicit option.

use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, ServerConfig};
use rustls_pki_types::ServerName;

use crate::{LiveIdentity, TlsError, TrustRoots, provider};

const VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// Whether and how a server asks clients for certificates.
#[derive(Clone, Debug, Default)]
pub enum ClientAuth {
    /// Clients are not asked for a certificate.
    #[default]
    None,
    /// Every client must present a certificate chaining to these roots (mTLS).
    Required(TrustRoots),
    /// A client may present no certificate; one it presents must chain to these roots.
    Optional(TrustRoots),
}

/// Options of [`server_config`].
#[derive(Clone, Debug, Default)]
pub struct ServerOptions {
    /// ALPN protocols offered, most preferred first (empty: no ALPN).
    pub alpn: Vec<Vec<u8>>,
    /// Client certificate verification.
    pub client_auth: ClientAuth,
}

/// Options of [`client_config`].
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Roots the server's chain must lead to.
    pub roots: TrustRoots,
    /// Presented as a client certificate when the server asks (the one it holds at handshake
    /// time; a fixed [`Identity`](crate::Identity) converts with `.into()`).
    pub identity: Option<LiveIdentity>,
    /// ALPN protocols offered (empty: no ALPN).
    pub alpn: Vec<Vec<u8>>,
}

impl ClientOptions {
    /// Verify servers against `roots`, no client certificate, no ALPN.
    pub fn new(roots: TrustRoots) -> ClientOptions {
        ClientOptions {
            roots,
            identity: None,
            alpn: Vec::new(),
        }
    }
}

/// A server configuration presenting `identity` (an [`Identity`](crate::Identity), or a
/// [`LiveIdentity`] whose current certificate each handshake presents).
pub fn server_config(
    identity: impl Into<LiveIdentity>,
    options: &ServerOptions,
) -> Result<Arc<ServerConfig>, TlsError> {
    let identity: LiveIdentity = identity.into();
    let builder =
        ServerConfig::builder_with_provider(provider()).with_protocol_versions(VERSIONS)?;
    let builder = match &options.client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        ClientAuth::Required(roots) | ClientAuth::Optional(roots) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots.root_store()?),
                provider(),
            );
            let verifier = if matches!(options.client_auth, ClientAuth::Optional(_)) {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            let verifier = verifier.build().map_err(|e| TlsError::BadCertificate {
                what: "client CA".into(),
                detail: e.to_string(),
            })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_cert_resolver(identity.server_resolver());
    config.alpn_protocols = options.alpn.clone();
    Ok(Arc::new(config))
}

/// A client configuration verifying servers against `options.roots`.
pub fn client_config(options: &ClientOptions) -> Result<Arc<ClientConfig>, TlsError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)?
        .with_root_certificates(options.roots.root_store()?);
    let mut config = match &options.identity {
        None => builder.with_no_client_auth(),
        Some(identity) => builder.with_client_cert_resolver(identity.client_resolver()),
    };
    config.alpn_protocols = options.alpn.clone();
    Ok(Arc::new(config))
}

/// Parse a DNS name or IP address for SNI and certificate verification.
pub fn server_name(name: &str) -> Result<ServerName<'static>, TlsError> {
    ServerName::try_from(name.to_string()).map_err(|_| TlsError::BadServerName(name.to_string()))
}

//! What the registry client trusts and how it proves who it is. Trust is explicit: either the
//! platform's root store (for public registries) or the CA certificates the caller names
//! (`MOAT_REGISTRY_CA`, a Drawbridge or test CA), never both silently. A client identity (the
//! Keep's Steward-issued chain and key) is presented when the server asks for one, which is how
//! Drawbridge recognises an attested Keep.

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::error::RegistryError;

/// A certificate chain (leaf first) and its private key, presented on request (mTLS).
#[derive(Debug)]
pub struct ClientIdentity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl Clone for ClientIdentity {
    fn clone(&self) -> Self {
        ClientIdentity {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl From<&moat_tls::Identity> for ClientIdentity {
    /// The Keep's identity (self-signed or Steward-issued) as a registry client certificate.
    fn from(identity: &moat_tls::Identity) -> Self {
        ClientIdentity {
            chain: identity.chain().to_vec(),
            key: identity.private_key().clone_key(),
        }
    }
}

impl ClientIdentity {
    /// Load a PEM chain (leaf first) and a PEM private key (PKCS#8, SEC1 or PKCS#1).
    pub fn from_pem_files(chain: &Path, key: &Path) -> Result<Self, RegistryError> {
        let chain = load_pem_certs(chain)?;
        let key = PrivateKeyDer::from_pem_file(key)
            .map_err(|e| RegistryError::TlsConfig(format!("private key {}: {e}", key.display())))?;
        Ok(ClientIdentity { chain, key })
    }
}

/// Which servers the client trusts, and what it presents. Built with the methods below.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    roots: Vec<CertificateDer<'static>>,
    platform_roots: bool,
    identity: Option<ClientIdentity>,
}

impl TlsOptions {
    /// Trust the platform's root store (what a public registry needs).
    pub fn platform_roots() -> Self {
        TlsOptions {
            platform_roots: true,
            ..Default::default()
        }
    }

    /// Trust exactly these CA certificates and nothing else.
    pub fn with_roots(roots: Vec<CertificateDer<'static>>) -> Self {
        TlsOptions {
            roots,
            ..Default::default()
        }
    }

    /// Trust exactly the CA certificates in a PEM file.
    pub fn with_ca_file(path: &Path) -> Result<Self, RegistryError> {
        Ok(Self::with_roots(load_pem_certs(path)?))
    }

    /// Present this identity when a server asks for a client certificate.
    pub fn client_identity(mut self, identity: ClientIdentity) -> Self {
        self.identity = Some(identity);
        self
    }

    pub fn has_client_identity(&self) -> bool {
        self.identity.is_some()
    }

    /// The rustls configuration (ring provider, TLS 1.2 and 1.3; the connector adds ALPN).
    pub fn client_config(&self) -> Result<rustls::ClientConfig, RegistryError> {
        let mut store = RootCertStore::empty();
        for cert in &self.roots {
            store
                .add(cert.clone())
                .map_err(|e| RegistryError::TlsConfig(format!("CA certificate refused: {e}")))?;
        }
        if self.platform_roots {
            let found = rustls_native_certs::load_native_certs();
            let (added, _ignored) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(RegistryError::TlsConfig(
                    "no usable platform root certificates found (name a CA with MOAT_REGISTRY_CA)"
                        .into(),
                ));
            }
        }
        if store.is_empty() {
            return Err(RegistryError::TlsConfig(
                "no trusted CA certificates configured".into(),
            ));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| RegistryError::TlsConfig(e.to_string()))?
            .with_root_certificates(store);
        let config = match &self.identity {
            Some(id) => builder
                .with_client_auth_cert(id.chain.clone(), id.key.clone_key())
                .map_err(|e| RegistryError::TlsConfig(format!("client identity: {e}")))?,
            None => builder.with_no_client_auth(),
        };
        Ok(config)
    }
}

/// Every certificate in a PEM file; an empty or unreadable file is an error.
pub fn load_pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, RegistryError> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| RegistryError::TlsConfig(format!("{}: {e}", path.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| RegistryError::TlsConfig(format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(RegistryError::TlsConfig(format!(
            "{}: no PEM certificates in it",
            path.display()
        )));
    }
    Ok(certs)
}

//! Trust roots for verifying peers. Which roots a connection trusts is always explicit: the
//! platform store, extra CA files, or only the given CAs; an empty set is an error rather than a
//! configuration that silently fails every handshake.

use std::path::Path;
use std::sync::OnceLock;

use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;

use crate::{TlsError, pem};

/// A set of CA certificates to verify peers against.
#[derive(Clone, Debug, Default)]
pub struct TrustRoots {
    platform: bool,
    extra: Vec<CertificateDer<'static>>,
}

impl TrustRoots {
    /// The platform's root store (as `rustls-native-certs` finds it; `SSL_CERT_FILE` and
    /// `SSL_CERT_DIR` override it).
    pub fn platform() -> TrustRoots {
        TrustRoots {
            platform: true,
            extra: Vec::new(),
        }
    }

    /// Only the given CA certificates.
    pub fn only(certs: Vec<CertificateDer<'static>>) -> TrustRoots {
        TrustRoots {
            platform: false,
            extra: certs,
        }
    }

    /// Only the CA certificates in a PEM file.
    pub fn only_pem_file(path: &Path) -> Result<TrustRoots, TlsError> {
        Ok(Self::only(pem::load_certs(path)?))
    }

    /// Also trust these CA certificates.
    pub fn add(&mut self, certs: impl IntoIterator<Item = CertificateDer<'static>>) {
        self.extra.extend(certs);
    }

    /// Also trust the CA certificates in a PEM file.
    pub fn add_pem_file(&mut self, path: &Path) -> Result<(), TlsError> {
        self.extra.extend(pem::load_certs(path)?);
        Ok(())
    }

    /// Whether the platform store is included.
    pub fn includes_platform(&self) -> bool {
        self.platform
    }

    /// The rustls root store. Fails if it would be empty, or if an extra CA is unusable.
    pub fn root_store(&self) -> Result<RootCertStore, TlsError> {
        let mut store = RootCertStore::empty();
        if self.platform {
            store.add_parsable_certificates(platform_roots().iter().cloned());
        }
        for (i, cert) in self.extra.iter().enumerate() {
            store
                .add(cert.clone())
                .map_err(|e| TlsError::BadCertificate {
                    what: format!("CA certificate {}", i + 1),
                    detail: e.to_string(),
                })?;
        }
        if store.is_empty() {
            return Err(TlsError::NoTrustRoots);
        }
        Ok(store)
    }
}

/// The platform roots, read once per process (reading the system bundle takes milliseconds and
/// every `connect` socket would otherwise repeat it).
fn platform_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for err in &found.errors {
            tracing::debug!("platform trust store: {err}");
        }
        found.certs
    })
}

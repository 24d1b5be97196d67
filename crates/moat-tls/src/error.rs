//! The one error type of moat-tls: each variant names the file (or in-memory source) and what
//! was wrong with it, so a CLI can print it as is.

use std::path::PathBuf;

/// What went wrong loading keys and certificates or building a TLS configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A PEM file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A PEM input is larger than [`crate::pem::MAX_PEM_BYTES`].
    #[error("{what} is larger than {max} bytes")]
    TooLarge {
        /// The file or source.
        what: String,
        /// The limit.
        max: u64,
    },
    /// The PEM text is malformed (bad base64, a section without its END line, ...).
    #[error("{what} is not valid PEM: {detail}")]
    BadPem {
        /// The file or source.
        what: String,
        /// What the PEM parser said.
        detail: String,
    },
    /// The input holds no `CERTIFICATE` section.
    #[error("{what} contains no certificate (expected a -----BEGIN CERTIFICATE----- section)")]
    NoCertificates {
        /// The file or source.
        what: String,
    },
    /// The input holds no private key section.
    #[error(
        "{what} contains no private key (expected a PKCS#8, SEC1 or PKCS#1 PRIVATE KEY section)"
    )]
    NoPrivateKey {
        /// The file or source.
        what: String,
    },
    /// A certificate could not be parsed or used as a trust anchor.
    #[error("{what}: bad certificate: {detail}")]
    BadCertificate {
        /// The file or source.
        what: String,
        /// Why.
        detail: String,
    },
    /// The private key is malformed or of a type rustls/ring cannot sign with.
    #[error("unusable private key: {0}")]
    BadKey(String),
    /// The private key does not belong to the chain's first (leaf) certificate.
    #[error("the private key does not match the leaf certificate")]
    KeyMismatch,
    /// An identity needs at least one certificate.
    #[error("the certificate chain is empty")]
    EmptyChain,
    /// Key or certificate generation failed.
    #[error("cannot generate a key or certificate: {0}")]
    Generate(String),
    /// A client configuration would trust nothing: no platform roots found and no extra CAs.
    #[error("no trust roots: the platform store is empty or unreadable and no CA file was given")]
    NoTrustRoots,
    /// A name is not a valid DNS name or IP address for SNI and verification.
    #[error("`{0}` is not a valid server name (DNS name or IP address)")]
    BadServerName(String),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

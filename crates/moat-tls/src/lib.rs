//! `moat-tls` owns the Keep's identity and every rustls configuration in Moat: the Keep's
//! listeners and `connect` sockets, the Steward, Drawbridge and the clients that talk to them.
//!
//! - [`Identity`]: a private key with its certificate chain. [`Identity::self_signed`] makes a
//!   fresh one per run (what a Keep without a Steward presents); [`Identity::from_parts`] takes a
//!   chain the Steward issued for a key from [`generate_key`].
//! - [`LiveIdentity`]: an identity that can be replaced (a renewed certificate) while the TLS
//!   configurations made from it stay in use.
//! - [`server_config`] / [`client_config`]: TLS 1.3 and 1.2 on the ring provider, with optional
//!   ALPN, optional client-certificate verification (mTLS, required or optional), and explicit
//!   [`TrustRoots`] (the platform store, extra CA files, or only given CAs).
//! - [`pem`]: loading and saving PEM with typed errors ([`TlsError`]).
//! - `test_pki` (cargo feature `test-pki`, for tests only): a throwaway CA issuing server and
//!   client certificates.
//!
//! This crate does no network I/O: callers drive the handshakes (tokio-rustls).

mod config;
mod error;
mod identity;
mod live;
pub mod pem;
mod roots;
#[cfg(feature = "test-pki")]
pub mod test_pki;

use std::sync::Arc;

pub use config::{
    ClientAuth, ClientOptions, ServerOptions, client_config, server_config, server_name,
};
pub use error::TlsError;
pub use identity::{Identity, KeyAlgorithm, generate_key};
pub use live::LiveIdentity;
pub use roots::TrustRoots;
/// Re-exported so users name the same versions Moat builds with.
pub use rustls;
pub use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// The one crypto provider Moat uses (ring), passed explicitly so nothing depends on a
/// process-wide default being installed.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

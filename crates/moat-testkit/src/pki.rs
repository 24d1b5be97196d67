//! Test certificates: Moat's own test-only CA (`moat_tls::test_pki`, behind moat-tls's `test-pki`
//! feature, which only this dev-only crate and dev-dependencies turn on), re-exported so tests of
//! every part issue certificates the same way, plus a self-signed server identity for peers nobody
//! is meant to trust.
//!
//! ```
//! let ca = moat_testkit::pki::TestCa::new("test CA");
//! let server = ca.server_identity(&["localhost"]);
//! let alice = ca.client_identity("alice");
//! # let _ = (server, alice);
//! ```

pub use moat_tls::Identity;
pub use moat_tls::test_pki::TestCa;

/// A self-signed server identity for `names` (fresh key each call).
pub fn self_signed_server(names: &[&str]) -> Identity {
    Identity::self_signed(names).expect("self-signed test identity")
}

//! moat-steward: the attestation service. A Keep sends a CSR whose evidence binds its fresh key;
//! the Steward verifies the evidence (through `moat-attest`), applies its [`policy`], and signs a
//! short-lived certificate naming the workload and carrying the attestation result.
//!
//! - [`ca`]: the CA key and certificate (from files, or generated into a private state
//!   directory), parsed once and kept ready to sign.
//! - [`policy`]: the TOML policy (platforms, measurements, TCB, debug, workloads, lifetimes).
//! - [`nonce`]: stateless HMAC nonces that replicas agree on, and the replay cache.
//! - [`service`]: the decision, CSR in, chain or [`error::Rejection`] out, independent of HTTP.
//! - [`api`]: the axum router and the mapping of rejections to HTTP.
//! - [`server`]: HTTPS serving with connection limits and deadlines.
//! - [`collateral`]: TDX/SGX collateral stored in the state directory.
//! - [`metrics`]: Prometheus counters.
//!
//! `nil` evidence is refused unless the policy sets `allow_insecure_nil`, and certificates
//! issued for it say `attested: false`. The CA never copies raw evidence into a certificate.

pub mod api;
pub mod ca;
pub mod collateral;
pub mod error;
pub mod metrics;
pub mod nonce;
pub mod policy;
pub mod server;
pub mod service;

pub use ca::CertificateAuthority;
pub use error::{CaError, NonceError, PolicyError, Rejection, ServeError};
pub use policy::Policy;
pub use service::{Issued, Steward, StewardBuilder};
pub mod test_roots;

//! moat-client: clients for the Steward and Drawbridge (OCI, mTLS), and the Moat package format.
//!
//! - [`steward`]: fetch a nonce, submit a CSR, receive the certificate chain.
//! - [`steward_verify`]: check a Keep certificate (chain to the Steward CA, workload, claims).

pub mod steward;
pub mod steward_verify;

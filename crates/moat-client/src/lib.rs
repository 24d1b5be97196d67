//! moat-client: the client side of Moat's services, shared by the Keep and the CLI.
//!
//! - [`registry`]: an OCI Distribution client (hyper + rustls) that can present the Keep's
//!   attested certificate, verifies every digest while streaming and never keeps bad bytes.
//! - [`package`]: the Moat package format (one OCI manifest covering module and config), the
//!   CNCF Wasm artifact, references (`HOST[:PORT]/REPO[:TAG][@DIGEST]`) and what `moat deploy`
//!   accepts.
//! - [`auth`]: registry credentials (`moat login`) and `WWW-Authenticate` challenges.
//! - [`steward`]: the Steward client: fetch a nonce, submit a CSR, receive the certificate chain.
//! - [`steward_attest`]: the Keep's side: key, nonce, evidence, CSR, chain, in one call.
//! - [`steward_verify`]: check a Keep certificate (chain to the Steward CA, workload, claims).

pub mod auth;
pub mod package;
pub mod registry;
pub mod steward;
pub mod steward_attest;
pub mod steward_verify;

//! Drawbridge: an OCI Distribution Spec v1.1 registry that releases private packages only to
//! attested Keeps.
//!
//! - [`api`]: the HTTP API (pull, push monolithic/chunked/resumable, tags, referrers, deletes,
//!   cross-repository mount), with the spec's status codes, headers and JSON errors.
//! - [`registry`]: the state and crash recovery; [`storage`]: blobs behind the [`BlobStore`]
//!   trait (local file system now, an object store later); [`meta`]: SQLite metadata.
//! - [`auth`]: users and hashed tokens (Basic or Bearer); [`policy`]: release policies that let
//!   a Keep read a private repository with its Steward certificate.
//! - [`server`]: HTTPS (client certificates optional at the TLS layer, authorization decided
//!   per request) or plain HTTP on loopback, with timeouts and a connection limit.
//!
//! Storage guarantees: a blob becomes visible only after its digest was verified while
//! streaming, its bytes were fsynced and renamed into place, and its record was committed; a
//! manifest and its tag are one transaction; a crash at any point leaves no partial blob
//! visible and no dangling tag (see [`registry`] for the recovery sweep).

#![forbid(unsafe_code)]

pub mod api;
pub mod auth;
mod claims;
pub mod digest;
pub mod error;
pub mod meta;
pub mod names;
pub mod policy;
pub mod registry;
pub mod server;
pub mod storage;

pub use registry::{Registry, RegistryConfig};
pub use storage::BlobStore;

//! The registry client's one error type. Errors the registry itself reports keep its OCI error
//! codes and messages (`BLOB_UNKNOWN`, `DENIED`, ...), so a caller can tell "not there" from "not
//! allowed" from "the network broke" without parsing strings.

use std::path::PathBuf;

use http::StatusCode;

use super::digest::{Digest, DigestError};

/// One entry of an OCI error body: `{"errors":[{"code":..,"message":..,"detail":..}]}`.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct OciError {
    pub code: String,
    #[serde(default)]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<serde_json::Value>,
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct OciErrorBody {
    #[serde(default)]
    pub errors: Vec<OciError>,
}

/// Everything that can go wrong talking to a registry.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The registry answered with an error status (and usually an OCI error body).
    #[error("registry {registry} answered {status} to {operation}{}", describe_errors(.errors))]
    Registry {
        registry: String,
        operation: String,
        status: StatusCode,
        errors: Vec<OciError>,
    },
    /// Credentials were refused, or the registry wants some the client does not have.
    #[error("registry {registry} refused access for {operation} ({status}){}{}", describe_errors(.errors), hint(.had_credentials))]
    Unauthorized {
        registry: String,
        operation: String,
        status: StatusCode,
        errors: Vec<OciError>,
        had_credentials: bool,
    },
    /// The token service named in a `WWW-Authenticate: Bearer` challenge failed.
    #[error("token service {realm} failed: {reason}")]
    TokenService { realm: String, reason: String },
    #[error("cannot reach registry {registry}: {reason}")]
    Connect { registry: String, reason: String },
    #[error("registry {registry} did not answer {operation} within {seconds} s")]
    Timeout {
        registry: String,
        operation: String,
        seconds: u64,
    },
    /// Content whose digest is not the one asked for. Nothing from it was kept.
    #[error("digest mismatch for {what}: expected {expected}, received content hashes to {actual}")]
    DigestMismatch {
        what: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("size mismatch for {what}: expected {expected} bytes, received {actual}")]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },
    #[error("{what} is larger than the limit of {limit} bytes")]
    TooLarge { what: String, limit: u64 },
    /// The registry broke the protocol (missing header, unparsable answer, ...).
    #[error(
        "registry {registry} answered {operation} in a way the OCI spec does not allow: {reason}"
    )]
    Protocol {
        registry: String,
        operation: String,
        reason: String,
    },
    #[error("invalid digest: {0}")]
    InvalidDigest(#[from] DigestError),
    #[error("TLS setup: {0}")]
    TlsConfig(String),
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("upload of {digest} failed after {attempts} attempts: {last}")]
    UploadGaveUp {
        digest: Digest,
        attempts: u32,
        last: Box<RegistryError>,
    },
}

impl RegistryError {
    /// The first OCI error code the registry gave, if any (`MANIFEST_UNKNOWN`, `DENIED`, ...).
    pub fn oci_code(&self) -> Option<&str> {
        match self {
            RegistryError::Registry { errors, .. } | RegistryError::Unauthorized { errors, .. } => {
                errors.first().map(|e| e.code.as_str())
            }
            RegistryError::UploadGaveUp { last, .. } => last.oci_code(),
            _ => None,
        }
    }

    /// The HTTP status the registry answered with, if this error is the registry's answer.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            RegistryError::Registry { status, .. } | RegistryError::Unauthorized { status, .. } => {
                Some(*status)
            }
            RegistryError::UploadGaveUp { last, .. } => last.status(),
            _ => None,
        }
    }

    /// Whether the registry said the thing asked for does not exist.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(StatusCode::NOT_FOUND)
    }

    /// Whether retrying the same request could help (network trouble, 5xx, a lost chunk).
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            RegistryError::Connect { .. } | RegistryError::Timeout { .. } => true,
            RegistryError::Registry { status, .. } => {
                status.is_server_error() || *status == StatusCode::RANGE_NOT_SATISFIABLE
            }
            RegistryError::Protocol { .. } => true,
            _ => false,
        }
    }
}

fn describe_errors(errors: &[OciError]) -> String {
    let mut out = String::new();
    for e in errors.iter().take(4) {
        out.push_str(": ");
        out.push_str(&e.code);
        if !e.message.is_empty() {
            out.push(' ');
            out.push_str(&e.message.chars().take(300).collect::<String>());
        }
    }
    out
}

fn hint(had_credentials: &bool) -> &'static str {
    if *had_credentials {
        ""
    } else {
        " (no credentials stored for it: run `moat login`)"
    }
}

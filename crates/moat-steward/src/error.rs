//! The Steward's errors: setup failures ([`CaError`], [`PolicyError`], [`ServeError`]) and the
//! one type a refused request becomes, [`Rejection`]. A rejection names the check that failed
//! with a stable, machine-readable `code` and `check`; `api.rs` is the one place that turns it
//! into an HTTP status and a JSON body.

use std::path::PathBuf;

use moat_attest::Platform;

/// Loading, generating or using the CA.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("CA key: {0}")]
    Key(String),
    #[error("CA certificate: {0}")]
    Certificate(String),
    #[error("the CA key does not belong to the CA certificate")]
    KeyMismatch,
    #[error(
        "state directory holds {present} but not {missing}: restore the missing file or remove \
         both to generate a new CA"
    )]
    HalfState { present: PathBuf, missing: PathBuf },
    #[error("{path} is readable by other users (mode {mode:o}); chmod 600 it")]
    KeyPermissions { path: PathBuf, mode: u32 },
    #[error("the Keep's public key cannot be certified: {0}")]
    UnsupportedKey(String),
    #[error("cannot encode certificate: {0}")]
    Encoding(String),
    #[error("signing failed: {0}")]
    Sign(String),
    #[error("the system random number generator failed")]
    Random,
}

/// A policy file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("policy: {0}")]
    Parse(String),
    #[error("policy: {0}")]
    Invalid(String),
}

/// Starting or running the server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Ca(#[from] CaError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("collateral {path}: {detail}")]
    Collateral { path: PathBuf, detail: String },
    #[error("test-only root: {0}")]
    TestRoot(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

/// What was wrong with a nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NonceError {
    #[error("the policy requires a nonce from GET /api/v1/nonce and the request has none")]
    Missing,
    #[error("the nonce was not issued by this Steward (or was altered)")]
    Unknown,
    #[error("the nonce has expired; fetch a fresh one")]
    Expired,
    #[error("the nonce was already used")]
    Replayed,
}

/// Why a request for a certificate was refused.
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    #[error("Content-Type must be application/pkcs10 (got {got:?})")]
    UnsupportedMediaType { got: Option<String> },
    #[error("the Accept header asks for none of: {offered}")]
    NotAcceptable { offered: &'static str },
    #[error("request body exceeds {limit} bytes")]
    BodyTooLarge { limit: usize },
    #[error("cannot read the request body: {0}")]
    BodyUnreadable(String),
    /// The CSR or its evidence could not be read at all.
    #[error("{0}")]
    Malformed(moat_attest::Error),
    /// A verification check of moat-attest refused the evidence.
    #[error("{0}")]
    Evidence(moat_attest::Error),
    #[error("{0}")]
    Nonce(NonceError),
    #[error("platform `{0}` is not accepted by this Steward's policy")]
    PlatformNotAccepted(Platform),
    /// A policy rule refused verified claims; `check` names the rule (e.g. `snp.measurement`).
    #[error("policy check `{check}` failed: {detail}")]
    Policy { check: &'static str, detail: String },
    #[error("workload {0:?} is not one this Steward certifies")]
    WorkloadNotAllowed(String),
    #[error("the request names no workload (a URI subjectAltName) and the policy requires one")]
    WorkloadMissing,
    #[error("the request names more than one workload")]
    WorkloadAmbiguous,
    #[error("the Steward is busy; retry later")]
    Busy,
    #[error("internal error: {0}")]
    Internal(String),
}

impl Rejection {
    /// Stable code for the wire and for metrics labels.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::UnsupportedMediaType { .. } => "unsupported_media_type",
            Rejection::NotAcceptable { .. } => "not_acceptable",
            Rejection::BodyTooLarge { .. } => "body_too_large",
            Rejection::BodyUnreadable(_) => "body_unreadable",
            Rejection::Malformed(_) => "malformed_request",
            Rejection::Evidence(_) => "evidence_refused",
            Rejection::Nonce(NonceError::Missing) => "nonce_missing",
            Rejection::Nonce(NonceError::Unknown) => "nonce_unknown",
            Rejection::Nonce(NonceError::Expired) => "nonce_expired",
            Rejection::Nonce(NonceError::Replayed) => "nonce_replayed",
            Rejection::PlatformNotAccepted(_) => "platform_not_accepted",
            Rejection::Policy { .. } => "policy_refused",
            Rejection::WorkloadNotAllowed(_) => "workload_not_allowed",
            Rejection::WorkloadMissing => "workload_missing",
            Rejection::WorkloadAmbiguous => "workload_ambiguous",
            Rejection::Busy => "busy",
            Rejection::Internal(_) => "internal",
        }
    }

    /// The check that failed, named as moat-attest or the policy names it.
    pub fn check(&self) -> String {
        match self {
            Rejection::UnsupportedMediaType { .. } => "http.content_type".into(),
            Rejection::NotAcceptable { .. } => "http.accept".into(),
            Rejection::BodyTooLarge { .. } => "http.body_size".into(),
            Rejection::BodyUnreadable(_) => "http.body".into(),
            Rejection::Malformed(e) | Rejection::Evidence(e) => match e.check() {
                Some(check) => check.as_str().into(),
                None => "csr.parse".into(),
            },
            Rejection::Nonce(_) => "nonce".into(),
            Rejection::PlatformNotAccepted(_) => "policy.platform".into(),
            Rejection::Policy { check, .. } => (*check).into(),
            Rejection::WorkloadNotAllowed(_)
            | Rejection::WorkloadMissing
            | Rejection::WorkloadAmbiguous => "policy.workload".into(),
            Rejection::Busy => "capacity".into(),
            Rejection::Internal(_) => "internal".into(),
        }
    }
}

impl From<moat_attest::Error> for Rejection {
    fn from(e: moat_attest::Error) -> Self {
        if e.is_unreadable() || e.check() == Some(moat_attest::Check::CsrSignature) {
            Rejection::Malformed(e)
        } else {
            Rejection::Evidence(e)
        }
    }
}

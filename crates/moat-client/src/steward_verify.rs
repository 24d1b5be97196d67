//! Checking a Keep's certificate as a relying party: the chain must lead to the Steward CA the
//! caller trusts, and the identity is then read from the certificate itself: the workload URI
//! (subjectAltName) and the attestation result extension (decoded by `moat_attest::result`).
//!
//! A Keep certificate names a workload, not a host, so TLS host-name matching does not apply:
//! [`KeepServerVerifier`] checks the chain (signatures, validity, key usage) and leaves identity
//! to [`KeepIdentity::from_cert`] and the caller's expectations ([`Expectations::check`]).
//! Drawbridge, checking Keeps as TLS *clients*, can use rustls' `WebPkiClientVerifier` with
//! [`steward_roots`] and then [`KeepIdentity::from_cert`] on the peer certificate.

use std::sync::Arc;

use moat_attest::Platform;
use moat_attest::result::AttestationResult;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// A Keep certificate that cannot be accepted.
#[derive(Debug, thiserror::Error)]
pub enum KeepCertError {
    #[error("Steward CA: {0}")]
    BadCa(String),
    #[error("malformed certificate: {0}")]
    Malformed(String),
    #[error("the certificate carries no attestation result: it was not issued by a Steward")]
    NoResult,
    #[error("attestation result: {0}")]
    BadResult(moat_attest::Error),
    #[error("the certificate names more than one workload")]
    AmbiguousWorkload,
    #[error("the certificate's workload {san:?} differs from its attestation result's {result:?}")]
    WorkloadMismatch {
        san: Option<String>,
        result: Option<String>,
    },
}

/// The trust roots for Keep certificates: the Steward CA certificate(s) from PEM.
pub fn steward_roots(ca_pem: &[u8]) -> Result<RootCertStore, KeepCertError> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        let cert = cert.map_err(|e| KeepCertError::BadCa(e.to_string()))?;
        roots
            .add(cert)
            .map_err(|e| KeepCertError::BadCa(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(KeepCertError::BadCa("no CERTIFICATE in the CA file".into()));
    }
    Ok(roots)
}

/// Verifies a Keep's server certificate chain up to the Steward CA, without host-name checks
/// (the caller must check the identity with [`KeepIdentity::from_cert`]).
#[derive(Debug)]
pub struct KeepServerVerifier {
    roots: Arc<RootCertStore>,
    algs: WebPkiSupportedAlgorithms,
}

impl KeepServerVerifier {
    pub fn new(roots: RootCertStore) -> Self {
        KeepServerVerifier {
            roots: Arc::new(roots),
            algs: rustls::crypto::ring::default_provider().signature_verification_algorithms,
        }
    }

    /// A rustls client configuration (ring) that trusts Keeps certified by `roots`.
    pub fn client_config(roots: RootCertStore) -> rustls::ClientConfig {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(KeepServerVerifier::new(roots)))
            .with_no_client_auth()
    }
}

impl ServerCertVerifier for KeepServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = rustls::server::ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.algs.all,
        )?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// What a (chain-verified) Keep certificate says about the Keep.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeepIdentity {
    /// The workload URI (subjectAltName), if any.
    pub workload: Option<String>,
    /// Validity end, Unix seconds.
    pub not_after: i64,
    /// The attestation result the Steward wrote.
    pub result: AttestationResult,
}

impl KeepIdentity {
    /// Reads the identity from a DER certificate whose chain the caller has verified.
    pub fn from_cert(der: &[u8]) -> Result<Self, KeepCertError> {
        let (_, cert) =
            X509Certificate::from_der(der).map_err(|e| KeepCertError::Malformed(e.to_string()))?;
        let mut uris = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                if let GeneralName::URI(u) = name {
                    uris.push((*u).to_owned());
                }
            }
        }
        if uris.len() > 1 {
            return Err(KeepCertError::AmbiguousWorkload);
        }
        let workload = uris.pop();
        let result = moat_attest::result::decode_from_cert(der)
            .map_err(KeepCertError::BadResult)?
            .ok_or(KeepCertError::NoResult)?;
        if result.workload != workload {
            return Err(KeepCertError::WorkloadMismatch {
                san: workload,
                result: result.workload,
            });
        }
        Ok(KeepIdentity {
            workload,
            not_after: cert.validity().not_after.timestamp(),
            result,
        })
    }
}

/// What a relying party requires of a Keep.
#[derive(Debug, Clone, Default)]
pub struct Expectations {
    pub platform: Option<Platform>,
    pub workload: Option<String>,
    /// Hex; compared case-insensitively.
    pub measurement: Option<String>,
    /// Accept `nil` (unattested) Keeps. Off by default: an unattested Keep is a failure.
    pub allow_unattested: bool,
    /// Accept evidence that chained to a test-only root.
    pub allow_test_root: bool,
}

/// One unmet expectation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    #[error("platform is {got}, expected {want}")]
    Platform { want: String, got: String },
    #[error("workload is {got:?}, expected {want:?}")]
    Workload { want: String, got: Option<String> },
    #[error("measurement is {got:?}, expected {want}")]
    Measurement { want: String, got: Option<String> },
    #[error("the Keep is not attested (platform {0}); pass --allow-unattested to accept it")]
    Unattested(String),
    #[error("the Keep's evidence chained to a TEST-ONLY root")]
    TestRoot,
}

impl Mismatch {
    /// Stable name of the failed expectation.
    pub fn check(&self) -> &'static str {
        match self {
            Mismatch::Platform { .. } => "platform",
            Mismatch::Workload { .. } => "workload",
            Mismatch::Measurement { .. } => "measurement",
            Mismatch::Unattested(_) => "attested",
            Mismatch::TestRoot => "test_only_root",
        }
    }
}

impl Expectations {
    /// Every unmet expectation (empty when the Keep is acceptable).
    pub fn check(&self, id: &KeepIdentity) -> Vec<Mismatch> {
        let r = &id.result;
        let mut out = Vec::new();
        if let Some(p) = self.platform
            && p != r.platform
        {
            out.push(Mismatch::Platform {
                want: p.to_string(),
                got: r.platform.to_string(),
            });
        }
        if !r.attested && !self.allow_unattested {
            out.push(Mismatch::Unattested(r.platform.to_string()));
        }
        if r.test_only_root && !self.allow_test_root {
            out.push(Mismatch::TestRoot);
        }
        if let Some(w) = &self.workload
            && id.workload.as_deref() != Some(w.as_str())
        {
            out.push(Mismatch::Workload {
                want: w.clone(),
                got: id.workload.clone(),
            });
        }
        if let Some(m) = &self.measurement
            && !r
                .measurement
                .as_deref()
                .is_some_and(|got| got.eq_ignore_ascii_case(m))
        {
            out.push(Mismatch::Measurement {
                want: m.clone(),
                got: r.measurement.clone(),
            });
        }
        out
    }
}

//! The Steward's decision, independent of HTTP: a CSR in, a certificate chain or a
//! [`Rejection`] out.
//!
//! Order of checks, cheapest first so that junk costs little: parse the CSR and its signature,
//! platform accepted, nonce authentic and unexpired and unused, workload name allowed; then the
//! expensive evidence verification (moat-attest: signatures, chains, key binding); then policy on
//! the verified claims; then consume the nonce (atomically: of two requests racing with one
//! nonce, one wins) and sign.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use moat_attest::result::AttestationResult;
use moat_attest::{KeyBinding, Platform, Verifier};
use rustls_pki_types::CertificateDer;

use crate::ca::{CertificateAuthority, LeafRequest};
use crate::error::{NonceError, Rejection};
use crate::metrics::Metrics;
use crate::nonce::{DEFAULT_REPLAY_CAPACITY, IssuedNonce, NonceAuthority};
use crate::policy::Policy;

/// Name and version written into attestation results.
pub const VERIFIER_NAME: &str = concat!("moat-steward/", env!("CARGO_PKG_VERSION"));

/// The Steward: CA, policy, evidence verifier, nonces and counters. Shared by all requests.
pub struct Steward {
    ca: CertificateAuthority,
    policy: Policy,
    verifier: Verifier,
    nonces: NonceAuthority,
    metrics: Metrics,
}

impl std::fmt::Debug for Steward {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Steward")
            .field("policy", &self.policy.name)
            .finish_non_exhaustive()
    }
}

/// A certificate issued for a request.
#[derive(Debug, Clone)]
pub struct Issued {
    pub leaf: CertificateDer<'static>,
    pub ca: CertificateDer<'static>,
    pub result: AttestationResult,
}

/// Builds a [`Steward`].
#[derive(Debug)]
pub struct StewardBuilder {
    ca: CertificateAuthority,
    policy: Policy,
    verifier: Option<Verifier>,
    replay_capacity: usize,
    verify_at: Option<SystemTime>,
}

impl StewardBuilder {
    /// A Steward with this CA and policy, the built-in trust roots and no TDX collateral.
    pub fn new(ca: CertificateAuthority, policy: Policy) -> Self {
        StewardBuilder {
            ca,
            policy,
            verifier: None,
            replay_capacity: DEFAULT_REPLAY_CAPACITY,
            verify_at: None,
        }
    }

    /// Use this verifier (with collateral or extra roots) instead of the default one. The
    /// policy's debug switch is applied on top.
    pub fn verifier(mut self, verifier: Verifier) -> Self {
        self.verifier = Some(verifier);
        self
    }

    /// Remember at most this many used nonces.
    pub fn replay_capacity(mut self, capacity: usize) -> Self {
        self.replay_capacity = capacity;
        self
    }

    /// Verify evidence (certificate, CRL and collateral validity) as of this time instead of
    /// the clock. For tests with recorded evidence whose CRLs or collateral have expired; the
    /// CLI exposes it only under a `--test-only-...` name.
    pub fn test_only_verify_at(mut self, at: SystemTime) -> Self {
        self.verify_at = Some(at);
        self
    }

    pub fn build(self) -> Steward {
        let mut verifier = self
            .verifier
            .unwrap_or_default()
            .allow_debug(self.policy.any_debug_allowed());
        if let Some(at) = self.verify_at {
            verifier = verifier.at(at);
        }
        let nonces = NonceAuthority::new(
            self.ca.key_pkcs8(),
            self.policy.nonce_lifetime(),
            self.replay_capacity,
        );
        Steward {
            ca: self.ca,
            policy: self.policy,
            verifier,
            nonces,
            metrics: Metrics::default(),
        }
    }
}

impl Steward {
    pub fn ca(&self) -> &CertificateAuthority {
        &self.ca
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Prometheus text for `/metrics`.
    pub fn render_metrics(&self) -> String {
        self.metrics.render(self.nonces.cache_len())
    }

    /// A fresh nonce.
    pub fn nonce(&self) -> Result<IssuedNonce, Rejection> {
        let n = self.nonces.issue(SystemTime::now())?;
        self.metrics.nonce_issued();
        Ok(n)
    }

    /// Verifies a CSR (DER or PEM; Moat's or Enarx's format) and signs a certificate for it.
    /// Every outcome is counted and logged.
    pub fn certify(&self, csr: &[u8]) -> Result<Issued, Rejection> {
        let started = Instant::now();
        let outcome = self.certify_inner(csr);
        match &outcome {
            Ok(issued) => {
                self.metrics
                    .issued(issued.result.platform.as_str(), started.elapsed());
                tracing::info!(
                    platform = %issued.result.platform,
                    workload = issued.result.workload.as_deref().unwrap_or("-"),
                    attested = issued.result.attested,
                    "certificate issued"
                );
            }
            Err(rejection) => {
                self.metrics.rejected(rejection.code());
                tracing::warn!(
                    code = rejection.code(),
                    check = %rejection.check(),
                    "request refused: {rejection}"
                );
            }
        }
        outcome
    }

    fn certify_inner(&self, csr: &[u8]) -> Result<Issued, Rejection> {
        // The clock for nonces and validity is always the real one; only evidence verification
        // may be pinned (test-only) to a recorded time.
        let now = SystemTime::now();
        let parsed = moat_attest::csr::parse(csr)?;
        let platform = parsed.evidence.platform();
        if !self.policy.accepts_platform(platform) {
            return Err(Rejection::PlatformNotAccepted(platform));
        }
        let nonce = match (&parsed.nonce, self.policy.require_nonce) {
            (Some(n), _) => Some(self.nonces.check(n, now).map_err(Rejection::Nonce)?),
            (None, true) => return Err(Rejection::Nonce(NonceError::Missing)),
            (None, false) => None,
        };
        let workload = self.policy.check_workload(&parsed.uris)?;
        let server_names = self
            .policy
            .check_server_names(&parsed.dns_names, &parsed.ip_addresses)?;

        let verified = self.verifier.verify_bound(
            &parsed.evidence,
            &parsed.spki_der,
            parsed.nonce.as_deref(),
        )?;
        let claims = &verified.claims;
        if verified.key_binding == KeyBinding::NotBound && platform != Platform::Nil {
            // moat-attest only returns NotBound for nil; refuse anything else defensively.
            return Err(Rejection::Policy {
                check: "key_binding",
                detail: "hardware evidence that binds no key".into(),
            });
        }
        self.policy.check_claims(claims)?;
        if claims.test_only_root {
            tracing::warn!("issuing a certificate for evidence that chains to a TEST-ONLY root");
        }

        if let Some(id) = &nonce {
            self.nonces.consume(id, now)?;
        }

        let iat = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut result = AttestationResult::from_claims(
            claims,
            VERIFIER_NAME,
            &format!("accepted:{}", self.policy.name),
            iat,
        );
        result.workload = workload.map(str::to_owned);
        let ext = moat_attest::result::encode_extension_value(&result)
            .map_err(|e| Rejection::Internal(e.to_string()))?;
        let common_name = match (platform, claims.attested) {
            (Platform::Nil, _) | (_, false) => "Moat Keep (UNATTESTED nil)".to_string(),
            (p, true) => format!("Moat Keep ({p})"),
        };
        let leaf = self
            .ca
            .issue(&LeafRequest {
                spki_der: &parsed.spki_der,
                workload,
                server_names: &server_names,
                common_name: &common_name,
                extensions: vec![(moat_attest::csr::OID_CMW, ext)],
                not_before: now,
                lifetime: self.policy.lifetime(),
            })
            .map_err(|e| match e {
                crate::error::CaError::UnsupportedKey(d) => Rejection::Policy {
                    check: "csr.key_algorithm",
                    detail: d,
                },
                other => Rejection::Internal(other.to_string()),
            })?;
        Ok(Issued {
            leaf,
            ca: self.ca.cert_der().clone(),
            result,
        })
    }
}

/// Shared handle used by the HTTP layer.
pub type SharedSteward = Arc<Steward>;

//! Release policies: when a private repository may be read by a Keep presenting its Steward
//! certificate (mTLS) instead of a token.
//!
//! A policy names the Steward CA certificates it trusts, the platforms it accepts (`nil` only if
//! listed: a `nil` Keep proves nothing), and whether the certificate must name this very package
//! (URI SAN `oci://<registry host:port>/<repo>`). [`evaluate`] checks the rules in a fixed order
//! and stops at the first that fails, returning a [`Denial`] that names the rule; the API puts
//! that name in the log and in the JSON error, so an operator can see why a Keep was refused.
//!
//! The TLS layer accepts any client certificate whose handshake signature is valid (client
//! certificates are optional there); the chain is validated here, per request, against the
//! roots of the repository being read, because different repositories trust different Stewards.

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::{CertificateDer, UnixTime};
use serde::{Deserialize, Serialize};

/// The platforms a Keep can run on, as the Steward's certificates name them.
pub const KNOWN_PLATFORMS: &[&str] = &["snp", "tdx", "sgx", "nil"];

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("release policy is not valid TOML for this schema: {0}")]
    Parse(String),
    #[error("release policy: platform `{0}` is unknown (known: snp, tdx, sgx, nil)")]
    UnknownPlatform(String),
    #[error("release policy lists no platforms: no Keep could ever be released to")]
    NoPlatforms,
    #[error("release policy trusts no Steward CA: no Keep certificate could ever be accepted")]
    NoTrustedCa,
    #[error("trusted CA {what}: {reason}")]
    BadCa { what: String, reason: String },
}

/// A release policy as an operator writes it (`moat drawbridge repo policy NAME FILE`).
///
/// ```toml
/// trusted_ca_files = ["steward-ca.pem"]   # relative to the policy file
/// platforms = ["snp", "tdx"]              # add "nil" only for tests and demos
/// require_workload_name = true            # the default
/// allow_debug = false                     # the default: debug guests are not confidential
/// ```
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    #[serde(default)]
    pub trusted_ca_files: Vec<std::path::PathBuf>,
    #[serde(default)]
    pub trusted_ca_pem: Vec<String>,
    pub platforms: Vec<String>,
    #[serde(default = "yes")]
    pub require_workload_name: bool,
    #[serde(default)]
    pub allow_debug: bool,
}

fn yes() -> bool {
    true
}

/// A checked policy, as stored in the database (CA certificates inline, so the server never
/// depends on files an operator may later move).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ReleasePolicy {
    pub trusted_ca_pem: Vec<String>,
    pub platforms: Vec<String>,
    pub require_workload_name: bool,
    /// Release to a debug-mode guest (whose memory the host can read). Default: no.
    #[serde(default)]
    pub allow_debug: bool,
}

impl ReleasePolicy {
    /// Read a policy file, inline its CA files (relative to the file's directory) and check it.
    pub fn from_file_text(text: &str, base_dir: &Path) -> Result<Self, PolicyError> {
        let file: PolicyFile =
            toml::from_str(text).map_err(|e| PolicyError::Parse(e.to_string()))?;
        let mut pems = file.trusted_ca_pem;
        for path in &file.trusted_ca_files {
            let full = base_dir.join(path);
            let pem = std::fs::read_to_string(&full).map_err(|e| PolicyError::BadCa {
                what: full.display().to_string(),
                reason: e.to_string(),
            })?;
            pems.push(pem);
        }
        let policy = ReleasePolicy {
            trusted_ca_pem: pems,
            platforms: file.platforms,
            require_workload_name: file.require_workload_name,
            allow_debug: file.allow_debug,
        };
        policy.check()?;
        Ok(policy)
    }

    /// Parse the stored form.
    pub fn from_stored(text: &str) -> Result<Self, PolicyError> {
        let policy: ReleasePolicy =
            toml::from_str(text).map_err(|e| PolicyError::Parse(e.to_string()))?;
        policy.check()?;
        Ok(policy)
    }

    pub fn to_stored(&self) -> String {
        toml::to_string(self).expect("a release policy always serialises")
    }

    fn check(&self) -> Result<(), PolicyError> {
        if self.platforms.is_empty() {
            return Err(PolicyError::NoPlatforms);
        }
        for p in &self.platforms {
            if !KNOWN_PLATFORMS.contains(&p.as_str()) {
                return Err(PolicyError::UnknownPlatform(p.clone()));
            }
        }
        if self.roots()?.is_empty() {
            return Err(PolicyError::NoTrustedCa);
        }
        Ok(())
    }

    /// The trusted CA certificates as a root store.
    pub fn roots(&self) -> Result<RootCertStore, PolicyError> {
        let mut roots = RootCertStore::empty();
        for (i, pem) in self.trusted_ca_pem.iter().enumerate() {
            let what = format!("#{}", i + 1);
            let certs: Vec<CertificateDer<'static>> =
                rustls_pki_types::pem::PemObject::pem_slice_iter(pem.as_bytes())
                    .collect::<Result<_, _>>()
                    .map_err(|e| PolicyError::BadCa {
                        what: what.clone(),
                        reason: e.to_string(),
                    })?;
            if certs.is_empty() {
                return Err(PolicyError::BadCa {
                    what,
                    reason: "no PEM certificate found".into(),
                });
            }
            for cert in certs {
                roots.add(cert).map_err(|e| PolicyError::BadCa {
                    what: what.clone(),
                    reason: e.to_string(),
                })?;
            }
        }
        Ok(roots)
    }
}

/// The release rules, in the order they are checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// A client certificate was presented on the connection.
    Certificate,
    /// The repository has a release policy at all.
    Policy,
    /// The chain leads to a CA the policy trusts (and is fit for client authentication).
    TrustedCa,
    /// The certificate is within its validity period.
    Validity,
    /// The certificate names this package.
    Workload,
    /// The certificate carries a readable attestation result.
    Attestation,
    /// The attested platform is one the policy accepts (and really attested unless `nil`).
    Platform,
    /// The guest is not in debug mode, unless the policy allows it.
    Debug,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Certificate => "certificate",
            Rule::Policy => "policy",
            Rule::TrustedCa => "trusted_ca",
            Rule::Validity => "validity",
            Rule::Workload => "workload",
            Rule::Attestation => "attestation",
            Rule::Platform => "platform",
            Rule::Debug => "debug",
        }
    }
}

/// Why a Keep was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denial {
    pub rule: Rule,
    pub reason: String,
}

impl std::fmt::Display for Denial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "release rule `{}` failed: {}",
            self.rule.as_str(),
            self.reason
        )
    }
}

fn deny(rule: Rule, reason: impl Into<String>) -> Denial {
    Denial {
        rule,
        reason: reason.into(),
    }
}

/// What a Steward certificate says about the Keep (decoded by `moat_attest::result`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeepClaims {
    pub platform: String,
    pub attested: bool,
    /// The guest runs with debugging enabled (its memory is readable by the host).
    pub debug: bool,
}

/// Reads the attestation result out of a leaf certificate: `Ok(None)` when it carries none.
pub type ClaimsReader = fn(&CertificateDer<'_>) -> Result<Option<KeepClaims>, String>;

/// The claims reader backed by the one parser of Moat's attestation-result extension.
pub fn attest_claims(cert: &CertificateDer<'_>) -> Result<Option<KeepClaims>, String> {
    crate::claims::read(cert)
}

/// A Keep that passed every rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Released {
    pub platform: String,
    pub workload: Option<String>,
}

/// Check every rule of `policy` for the certificate chain `chain` (leaf first) wanting to read
/// the package named `expected_workload` (`oci://host:port/repo`).
pub fn evaluate(
    policy: Option<&ReleasePolicy>,
    chain: &[CertificateDer<'static>],
    expected_workload: &str,
    read_claims: ClaimsReader,
    now: UnixTime,
) -> Result<Released, Denial> {
    let Some((leaf, intermediates)) = chain.split_first() else {
        return Err(deny(
            Rule::Certificate,
            "no client certificate was presented",
        ));
    };
    let Some(policy) = policy else {
        return Err(deny(
            Rule::Policy,
            "the repository has no release policy, so no Keep certificate is accepted",
        ));
    };

    let roots = policy
        .roots()
        .map_err(|e| deny(Rule::Policy, format!("stored policy unusable: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| deny(Rule::Policy, format!("stored policy unusable: {e}")))?;
    if let Err(err) = verifier.verify_client_cert(leaf, intermediates, now) {
        use rustls::CertificateError as C;
        return Err(match err {
            rustls::Error::InvalidCertificate(
                C::Expired
                | C::ExpiredContext { .. }
                | C::NotValidYet
                | C::NotValidYetContext { .. },
            ) => deny(
                Rule::Validity,
                format!("certificate is outside its validity period ({err})"),
            ),
            rustls::Error::InvalidCertificate(
                C::InvalidPurpose | C::InvalidPurposeContext { .. },
            ) => deny(
                Rule::TrustedCa,
                "certificate is not valid for TLS client authentication (extended key usage)",
            ),
            other => deny(
                Rule::TrustedCa,
                format!("certificate does not chain to a Steward CA this policy trusts ({other})"),
            ),
        });
    }

    let names = uri_sans(leaf).map_err(|e| deny(Rule::Workload, e))?;
    let workload = names
        .iter()
        .find(|n| workload_matches(n, expected_workload))
        .cloned();
    if policy.require_workload_name && workload.is_none() {
        let shown = if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(", ")
        };
        return Err(deny(
            Rule::Workload,
            format!("certificate names workload {shown}, not {expected_workload}"),
        ));
    }

    let claims = match read_claims(leaf) {
        Ok(Some(claims)) => claims,
        Ok(None) => {
            return Err(deny(
                Rule::Attestation,
                "certificate carries no attestation result",
            ));
        }
        Err(e) => {
            return Err(deny(
                Rule::Attestation,
                format!("attestation result unreadable: {e}"),
            ));
        }
    };
    if !policy.platforms.iter().any(|p| p == &claims.platform) {
        return Err(deny(
            Rule::Platform,
            format!(
                "certificate is for platform {}, policy accepts {}",
                claims.platform,
                policy.platforms.join(", ")
            ),
        ));
    }
    if claims.platform != "nil" && !claims.attested {
        return Err(deny(
            Rule::Platform,
            format!(
                "platform {} is named but the result says it was not attested",
                claims.platform
            ),
        ));
    }
    if claims.debug && !policy.allow_debug {
        return Err(deny(
            Rule::Debug,
            format!(
                "the {} guest runs in debug mode and the policy does not allow it",
                claims.platform
            ),
        ));
    }
    Ok(Released {
        platform: claims.platform,
        workload,
    })
}

/// `oci://HOST[:PORT]/REPO` equality with the host compared case-insensitively.
fn workload_matches(name: &str, expected: &str) -> bool {
    let split = |s: &str| -> Option<(String, String)> {
        let rest = s.strip_prefix("oci://")?;
        let (authority, repo) = rest.split_once('/')?;
        Some((authority.to_ascii_lowercase(), repo.to_owned()))
    };
    matches!((split(name), split(expected)), (Some(a), Some(b)) if a == b)
}

/// The URI subject alternative names of a certificate.
pub fn uri_sans(cert: &CertificateDer<'_>) -> Result<Vec<String>, String> {
    use x509_parser::prelude::*;
    let (_, parsed) = X509Certificate::from_der(cert.as_ref())
        .map_err(|e| format!("certificate does not parse: {e}"))?;
    let mut out = Vec::new();
    if let Ok(Some(san)) = parsed.subject_alternative_name() {
        for name in &san.value.general_names {
            if let GeneralName::URI(uri) = name {
                out.push((*uri).to_owned());
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workload_names_compare_host_case_insensitively() {
        assert!(workload_matches(
            "oci://LocalHost:5000/demo/app",
            "oci://localhost:5000/demo/app"
        ));
        assert!(!workload_matches(
            "oci://localhost:5000/demo/App",
            "oci://localhost:5000/demo/app"
        ));
        assert!(!workload_matches(
            "oci://localhost:5001/demo/app",
            "oci://localhost:5000/demo/app"
        ));
        assert!(!workload_matches(
            "moat:local:00",
            "oci://localhost:5000/demo/app"
        ));
        assert!(!workload_matches(
            "oci://localhost:5000",
            "oci://localhost:5000/demo/app"
        ));
    }

    #[test]
    fn policy_files_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let ca = rcgen::generate_simple_self_signed(vec!["ca".into()]).unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.cert.pem()).unwrap();
        let ok = "trusted_ca_files = [\"ca.pem\"]\nplatforms = [\"snp\", \"tdx\"]\n";
        let policy = ReleasePolicy::from_file_text(ok, dir.path()).unwrap();
        assert!(policy.require_workload_name);
        assert_eq!(
            ReleasePolicy::from_stored(&policy.to_stored()).unwrap(),
            policy
        );

        for (bad, what) in [
            ("platforms = [\"snp\"]", "no CA"),
            (
                "trusted_ca_files = [\"ca.pem\"]\nplatforms = []",
                "no platform",
            ),
            (
                "trusted_ca_files = [\"ca.pem\"]\nplatforms = [\"sgx2\"]",
                "unknown platform",
            ),
            (
                "trusted_ca_files = [\"missing.pem\"]\nplatforms = [\"snp\"]",
                "missing file",
            ),
            (
                "trusted_ca_pem = [\"junk\"]\nplatforms = [\"snp\"]",
                "not PEM",
            ),
            (
                "trusted_ca_files = [\"ca.pem\"]\nplatforms = [\"snp\"]\nextra = 1",
                "unknown key",
            ),
            ("platforms = ", "truncated"),
            ("platforms = \"snp\"", "wrong type"),
        ] {
            assert!(
                ReleasePolicy::from_file_text(bad, dir.path()).is_err(),
                "{what}"
            );
        }
    }

    #[test]
    fn no_certificate_or_no_policy_is_denied_by_rule() {
        let reader: ClaimsReader = |_| Ok(None);
        let denial = evaluate(None, &[], "oci://h/r", reader, UnixTime::now()).unwrap_err();
        assert_eq!(denial.rule, Rule::Certificate);
        let cert = rcgen::generate_simple_self_signed(vec!["x".into()]).unwrap();
        let chain = vec![cert.cert.der().clone()];
        let denial = evaluate(None, &chain, "oci://h/r", reader, UnixTime::now()).unwrap_err();
        assert_eq!(denial.rule, Rule::Policy);
    }
}

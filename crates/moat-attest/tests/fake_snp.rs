//! The test-only AMD root: synthetic reports verify only through it, every intrinsic check
//! refuses the right forgery, and the fake configfs-tsm directory drives the Keep's side.

use moat_attest::attester::{Attester, AttesterConfig};
use moat_attest::claims::SnpTcb;
use moat_attest::test_roots::{FakeAmd, FakeChip, ReportParams};
use moat_attest::{Check, Evidence, KeyBinding, Platform, Verifier, binding, csr};
use std::sync::OnceLock;

fn amd() -> &'static (FakeAmd, FakeChip) {
    static AMD: OnceLock<(FakeAmd, FakeChip)> = OnceLock::new();
    AMD.get_or_init(|| {
        let amd = FakeAmd::new("unit");
        let chip = amd.chip();
        (amd, chip)
    })
}

fn verifier() -> Verifier {
    Verifier::new().with_test_only_amd_root(amd().0.root())
}

fn check_of(ev: &Evidence, v: &Verifier) -> Check {
    match v.verify_evidence(ev) {
        Ok(c) => panic!("verified but should not: {c:?}"),
        Err(e) => e.check().unwrap_or_else(|| panic!("not a refusal: {e}")),
    }
}

fn with_report(report: Vec<u8>) -> Evidence {
    Evidence::Snp(moat_attest::SnpEvidence {
        report,
        vek: Some(amd().1.vcek_der().to_vec()),
        crls: vec![],
    })
}

#[test]
fn synthetic_report_verifies_only_through_the_test_root() {
    let ev = amd().1.evidence(&ReportParams::default());
    let claims = verifier().verify_evidence(&ev).unwrap();
    assert!(claims.attested);
    assert!(claims.test_only_root);
    assert_eq!(claims.trust_root, "TEST-ONLY unit");
    assert_eq!(
        claims.measurement.as_deref(),
        Some("4d".repeat(48).as_str())
    );
    assert_eq!(check_of(&ev, &Verifier::new()), Check::SnpVekChain);
}

#[test]
fn another_fake_root_does_not_vouch_for_this_chip() {
    let other = FakeAmd::new("other");
    let ev = amd().1.evidence(&ReportParams::default());
    let v = Verifier::new().with_test_only_amd_root(other.root());
    assert_eq!(check_of(&ev, &v), Check::SnpVekChain);
}

#[test]
fn version_3_reports_verify_and_unknown_versions_are_refused() {
    let chip = &amd().1;
    let v3 = chip.evidence(&ReportParams {
        version: 3,
        ..Default::default()
    });
    assert_eq!(
        verifier()
            .verify_evidence(&v3)
            .unwrap()
            .snp
            .unwrap()
            .report_version,
        3
    );
    for version in [1u32, 4, 6] {
        let mut r = chip.report(&ReportParams {
            version: 3,
            ..Default::default()
        });
        r[0..4].copy_from_slice(&version.to_le_bytes());
        chip.sign(&mut r);
        let got = verifier().verify_evidence(&with_report(r));
        assert!(got.is_err(), "version {version} accepted");
    }
}

#[test]
fn reported_tcb_must_match_the_vcek() {
    let ev = amd().1.evidence(&ReportParams {
        reported_tcb: Some(SnpTcb {
            bootloader: 3,
            tee: 0,
            snp: 9,
            microcode: 115,
            fmc: None,
        }),
        ..Default::default()
    });
    assert_eq!(check_of(&ev, &verifier()), Check::SnpTcbMismatch);
}

#[test]
fn chip_id_must_match_the_vcek() {
    let chip = &amd().1;
    let mut r = chip.report(&ReportParams::default());
    r[0x1a0] ^= 0xff;
    chip.sign(&mut r);
    assert_eq!(
        check_of(&with_report(r), &verifier()),
        Check::SnpChipIdMismatch
    );
}

#[test]
fn debug_and_migration_agent_are_reported() {
    let chip = &amd().1;
    let ev = chip.evidence(&ReportParams {
        policy: 0x30000 | (1 << 19) | (1 << 18),
        ..Default::default()
    });
    assert_eq!(check_of(&ev, &verifier()), Check::Debug);
    let claims = verifier().allow_debug(true).verify_evidence(&ev).unwrap();
    assert!(claims.debug);
    assert!(claims.migration_agent);
}

#[test]
fn wrong_signature_algorithm_is_refused() {
    let chip = &amd().1;
    let mut r = chip.report(&ReportParams::default());
    r[0x34] = 2;
    chip.sign(&mut r);
    assert_eq!(
        check_of(&with_report(r), &verifier()),
        Check::SnpSignatureAlgorithm
    );
}

#[test]
fn fake_tsm_serves_bound_reports_to_the_attester_and_the_csr_verifies() {
    let chip = &amd().1;
    let tsm = chip.serve_tsm(ReportParams::default()).unwrap();
    let config = AttesterConfig {
        tsm_base: tsm.path().to_owned(),
        ..Default::default()
    };
    let attester = Attester::for_platform(Platform::Snp, &config).unwrap();
    assert!(matches!(attester, Attester::ConfigfsTsm { .. }));

    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let nonce = b"steward-nonce";
    let rd = binding::report_data_for_key(&key, Some(nonce));
    let evidence = attester.collect(&rd).unwrap();
    let der = csr::build(&key, &evidence, Some(nonce), Some("moat:local:abcd")).unwrap();
    let verified = verifier().verify_csr(&der).unwrap();
    assert_eq!(verified.evidence.key_binding, KeyBinding::Checked);
    assert!(verified.evidence.claims.test_only_root);

    // The same evidence in a CSR for another key is refused: it binds the first key.
    let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let der = csr::build(&other, &evidence, Some(nonce), None).unwrap();
    let err = verifier().verify_csr(&der).unwrap_err();
    assert_eq!(err.check(), Some(Check::KeyBinding));
    // And so is the right key with another nonce (a replay under a fresh nonce).
    let der = csr::build(&key, &evidence, Some(b"another"), None).unwrap();
    assert_eq!(
        verifier().verify_csr(&der).unwrap_err().check(),
        Some(Check::KeyBinding)
    );

    // A second collection through the same directory works (entries are one-shot).
    let again = attester.collect(&[7; 64]).unwrap();
    assert_eq!(again.report_data().unwrap(), Some([7; 64]));
    // Nothing is left behind.
    assert_eq!(std::fs::read_dir(tsm.path()).unwrap().count(), 0);
}

#[test]
fn attester_without_any_source_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let config = AttesterConfig {
        tsm_base: dir.path().join("missing"),
        sev_guest: dir.path().join("sev-guest"),
        vmpl: None,
    };
    let err = Attester::for_platform(Platform::Snp, &config).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("configfs-tsm"), "{text}");
    assert!(matches!(
        Attester::for_platform(Platform::Nil, &config).unwrap(),
        Attester::Nil
    ));
}

#[test]
fn cert_tables_are_parsed_defensively() {
    use moat_attest::attester::vek_from_cert_table;
    let table = amd().1.cert_table();
    assert_eq!(
        vek_from_cert_table(&table).unwrap().as_deref(),
        Some(amd().1.vcek_der())
    );
    assert_eq!(vek_from_cert_table(&[]).unwrap(), None);
    assert!(vek_from_cert_table(&table[..20]).is_err());
    let mut bad = table.clone();
    bad[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(vek_from_cert_table(&bad).is_err());
    let mut unterminated = table[..24].to_vec();
    unterminated.extend_from_slice(&[1u8; 24]);
    assert!(vek_from_cert_table(&unterminated).is_err());
}

#[test]
fn crls_from_the_root_are_checked() {
    let (amd, chip) = amd();
    let with_crl = |crl: Vec<u8>| {
        let Evidence::Snp(mut s) = chip.evidence(&ReportParams::default()) else {
            unreachable!()
        };
        s.crls = vec![crl];
        Evidence::Snp(s)
    };
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_780_000_000); // 2026-05-28
    let v = verifier().at(at);
    // Current, nothing revoked: verifies.
    v.verify_evidence(&with_crl(amd.crl(false, (2026, 1, 1), (2027, 1, 1))))
        .unwrap();
    // The ASK revoked.
    let ev = with_crl(amd.crl(true, (2026, 1, 1), (2027, 1, 1)));
    assert_eq!(check_of(&ev, &v), Check::Revoked);
    // Stale revocation data.
    let ev = with_crl(amd.crl(false, (2025, 1, 1), (2025, 6, 1)));
    assert_eq!(check_of(&ev, &v), Check::CrlExpired);
    // A CRL naming this ARK but signed by another key.
    let mut forged = amd.crl(false, (2026, 1, 1), (2027, 1, 1));
    let n = forged.len();
    forged[n - 5] ^= 0x01;
    assert_eq!(check_of(&with_crl(forged), &v), Check::CrlSignature);
    // Garbage where a CRL should be.
    assert_eq!(
        check_of(&with_crl(vec![0x30, 0x00]), &v),
        Check::CrlSignature
    );
    // A CRL from an unrelated root does not concern this chain.
    let other = FakeAmd::new("unrelated");
    v.verify_evidence(&with_crl(other.crl(true, (2025, 1, 1), (2025, 2, 1))))
        .unwrap();
}

//! The attestation-result extension: round trip through a real certificate, and the `nil`
//! invariant on both sides.

use moat_attest::result::{self, AttestationResult, Status};
use moat_attest::{Claims, Platform};

fn claims(platform: Platform, attested: bool) -> Claims {
    Claims {
        platform,
        attested,
        trust_root: "AMD ARK-Milan".into(),
        test_only_root: false,
        report_data: "00".repeat(64),
        measurement: Some("ab".repeat(48)),
        debug: false,
        migration_agent: false,
        tcb_status: None,
        advisories: vec![],
        snp: None,
        tdx: None,
        sgx: None,
    }
}

fn cert_with(ext: rcgen::CustomExtension) -> Vec<u8> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["keep.test".into()]).unwrap();
    params.custom_extensions.push(ext);
    params.self_signed(&key).unwrap().der().to_vec()
}

#[test]
fn result_round_trips_through_a_certificate() {
    let mut r = AttestationResult::from_claims(
        &claims(Platform::Snp, true),
        "moat-steward/test",
        "accepted",
        1_800_000_000,
    );
    r.workload = Some("oci://127.0.0.1:5000/demo/app".into());
    assert_eq!(r.status, Status::Affirming);
    let der = cert_with(result::encode_extension(&r).unwrap());
    assert!(der.len() < 2048, "the result stays small");
    let back = result::decode_from_cert(&der).unwrap().unwrap();
    assert_eq!(back, r);
}

#[test]
fn nil_is_never_attested() {
    let r = AttestationResult::from_claims(&claims(Platform::Nil, true), "v", "accepted", 0);
    assert!(!r.attested);
    assert_eq!(r.status, Status::None);
    let mut forged = r.clone();
    forged.attested = true;
    forged.status = Status::Affirming;
    assert!(result::encode_extension_value(&forged).is_err());
}

#[test]
fn a_forged_nil_result_is_refused_when_decoding() {
    use base64::Engine as _;
    let json = br#"{"eat_profile":"tag:example.invalid,2026:moat/ear/v1","iat":0,"verifier":"x","status":"affirming","attested":true,"platform":"nil","debug":false,"policy":"accepted"}"#;
    let record = serde_json::to_vec(&(
        result::MEDIA_RESULT,
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json),
    ))
    .unwrap();
    let mut value = vec![0x0c, record.len() as u8];
    value.extend_from_slice(&record);
    assert!(result::decode_extension_value(&value).is_err());
}

#[test]
fn certificates_without_a_result_decode_to_none() {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let params = rcgen::CertificateParams::new(vec!["keep.test".into()]).unwrap();
    let der = params.self_signed(&key).unwrap().der().to_vec();
    assert_eq!(result::decode_from_cert(&der).unwrap(), None);
}

#[test]
fn bad_result_values_are_refused() {
    for bad in [
        &b""[..],
        b"\x0c",
        b"\x04\x00",
        b"\x0c\x02[]",
        b"\x0c\x05[1,2]",
    ] {
        assert!(result::decode_extension_value(bad).is_err());
    }
    let big = vec![b'a'; 10_000];
    assert!(result::decode_extension_value(&big).is_err());
}

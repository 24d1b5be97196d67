//! Every parser facing the outside answers bad input (truncated, oversized, wrong type,
//! mutated) with a typed error, never a panic; plus a deterministic fuzz loop over each.

mod common;

use common::vector;
use moat_attest::csr;
use moat_attest::evidence::SNP_REPORT_LEN;
use moat_attest::{Collateral, Error, Evidence, binding};

/// A small deterministic PRNG (xorshift) so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Random damage: flip bits, truncate, insert, or splice junk.
fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        match rng.below(4) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => v.truncate(rng.below(v.len())),
            2 => {
                let i = rng.below(v.len() + 1);
                v.insert(i, rng.next() as u8);
            }
            _ if !v.is_empty() => {
                let i = rng.below(v.len());
                let n = rng.below(16).min(v.len() - i);
                for b in &mut v[i..i + n] {
                    *b = rng.next() as u8;
                }
            }
            _ => {}
        }
    }
    v
}

fn nil_csr() -> Vec<u8> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let rd = binding::report_data_for_key(&key, Some(b"n"));
    csr::build(&key, &Evidence::nil(rd), Some(b"n"), Some("moat:local:ab")).unwrap()
}

#[test]
fn evidence_cmw_bad_inputs() {
    let good = Evidence::nil([1; 64]).to_cmw_json(Some(b"nonce"));
    assert!(Evidence::from_cmw_json(&good).is_ok());
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("truncated", good[..good.len() / 2].to_vec()),
        ("not json", b"\x00\x01\x02".to_vec()),
        ("array", b"[1,2]".to_vec()),
        ("no type", br#"{"evidence":["application/vnd.moat.nil-evidence",""]}"#.to_vec()),
        (
            "other collection",
            br#"{"__cmwc_t":"tag:other","evidence":["x",""]}"#.to_vec(),
        ),
        (
            "unknown media",
            br#"{"__cmwc_t":"tag:example.invalid,2026:moat/evidence/v1","evidence":["text/plain","AA"]}"#.to_vec(),
        ),
        (
            "bad base64",
            br#"{"__cmwc_t":"tag:example.invalid,2026:moat/evidence/v1","evidence":["application/vnd.moat.nil-evidence","!!"]}"#.to_vec(),
        ),
        (
            "nil of 3 bytes",
            br#"{"__cmwc_t":"tag:example.invalid,2026:moat/evidence/v1","evidence":["application/vnd.moat.nil-evidence","AAAA"]}"#.to_vec(),
        ),
        (
            "short snp report",
            br#"{"__cmwc_t":"tag:example.invalid,2026:moat/evidence/v1","evidence":["application/vnd.moat.snp-report","AAAA"]}"#.to_vec(),
        ),
        (
            "vek beside nil",
            br#"{"__cmwc_t":"tag:example.invalid,2026:moat/evidence/v1","evidence":["application/vnd.moat.nil-evidence",""],"vek":["application/pkix-cert","AA"]}"#.to_vec(),
        ),
        (
            "record of wrong shape",
            br#"{"__cmwc_t":"tag:example.invalid,2026:moat/evidence/v1","evidence":"x"}"#.to_vec(),
        ),
        ("oversized", vec![b' '; 600 * 1024]),
    ];
    for (name, input) in cases {
        assert!(Evidence::from_cmw_json(&input).is_err(), "{name} accepted");
    }
    let long_nonce = Evidence::nil([1; 64]).to_cmw_json(Some(&[0; 65]));
    assert!(matches!(
        Evidence::from_cmw_json(&long_nonce),
        Err(Error::TooLarge { .. })
    ));
}

#[test]
fn csr_bad_inputs() {
    let good = nil_csr();
    let cert = {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        rcgen::CertificateParams::new(vec!["x".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap()
    };
    let no_evidence = {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        rcgen::CertificateParams::new(vec!["x".into()])
            .unwrap()
            .serialize_request(&key)
            .unwrap()
            .der()
            .to_vec()
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("truncated", good[..good.len() - 10].to_vec()),
        ("trailing", [good.clone(), vec![0]].concat()),
        ("a certificate", cert.der().to_vec()),
        ("certificate PEM", cert.pem().into_bytes()),
        ("no evidence", no_evidence),
        ("oversized", vec![0x30; 300 * 1024]),
        (
            "garbage PEM",
            b"-----BEGIN CERTIFICATE REQUEST-----\n!!!\n".to_vec(),
        ),
    ];
    for (name, input) in cases {
        let err = csr::parse(&input).expect_err(name);
        eprintln!("{name}: {err}");
    }
    let pem = format!(
        "-----BEGIN CERTIFICATE REQUEST-----\n{}\n-----END CERTIFICATE REQUEST-----\n",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &good)
    );
    assert!(csr::parse(pem.as_bytes()).is_ok(), "PEM CSRs are read");
}

#[test]
fn report_quote_and_collateral_bad_inputs() {
    for len in [0, 1, SNP_REPORT_LEN - 1, SNP_REPORT_LEN + 1, 10_000] {
        assert!(
            moat_attest::snp::parse_report(&vec![2; len]).is_err(),
            "{len}"
        );
    }
    let mut v1 = vec![0u8; SNP_REPORT_LEN];
    v1[0] = 1;
    assert!(moat_attest::snp::parse_report(&v1).is_err(), "version 1");
    let quote = vector("tdx/dcap-qvl/tdx_quote");
    for bad in [
        &quote[..0],
        &quote[..47],
        &quote[..700],
        &quote[..quote.len() - 1],
    ] {
        // Truncated quotes fail to parse or to frame; never panic.
        let ev = Evidence::Tdx(moat_attest::QuoteEvidence {
            quote: bad.to_vec(),
        });
        assert!(moat_attest::Verifier::new().verify_evidence(&ev).is_err());
    }
    assert!(moat_attest::quote::parse(&vec![0; 70 * 1024]).is_err());
    let col = vector("tdx/dcap-qvl/tdx_quote_collateral.json");
    assert!(Collateral::from_json(&col).is_ok());
    for bad in [&b""[..], b"{}", b"[]", &col[..col.len() / 2]] {
        assert!(Collateral::from_json(bad).is_err());
    }
    assert!(matches!(
        Collateral::from_json(&vec![b' '; 2 * 1024 * 1024]),
        Err(Error::TooLarge { .. })
    ));
}

/// Deterministic fuzzing: thousands of damaged CSRs, evidence documents, SNP evidence and
/// certificates must never panic, and a damaged signed input must never verify.
#[test]
fn fuzz_parsers_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let csr_good = nil_csr();
    let enarx = vector("snp/enarx-steward/milan.signed.crl.csr");
    let cmw = Evidence::nil([3; 64]).to_cmw_json(Some(b"n"));
    let v = moat_attest::Verifier::new();
    for _ in 0..1500 {
        let m = mutate(&mut rng, &csr_good);
        if m != csr_good {
            assert!(v.verify_csr(&m).is_err());
        }
        let _ = csr::parse(&mutate(&mut rng, &enarx));
        let _ = Evidence::from_cmw_json(&mutate(&mut rng, &cmw));
        let _ = moat_attest::result::decode_extension_value(&mutate(&mut rng, &cmw));
        let _ = moat_attest::attester::vek_from_cert_table(&mutate(&mut rng, &cmw));
    }
}

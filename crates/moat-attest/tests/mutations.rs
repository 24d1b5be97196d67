//! Flipping bytes in every region of a report, its signature, its VCEK, a quote, and a CSR's
//! signature or key makes verification fail.

mod common;

use common::{date, vector};
use moat_attest::{Collateral, Evidence, QuoteEvidence, SnpEvidence, Verifier};

fn virtee() -> (Vec<u8>, Vec<u8>) {
    let text = String::from_utf8(vector("snp/virtee/report_milan.hex")).unwrap();
    (
        hex::decode(text.split_whitespace().collect::<String>()).unwrap(),
        vector("snp/virtee/vcek_milan.der"),
    )
}

fn snp(report: Vec<u8>, vek: Vec<u8>) -> Evidence {
    Evidence::Snp(SnpEvidence {
        report,
        vek: Some(vek),
        crls: vec![],
    })
}

/// Every byte of the 1184-byte report: the signed area (each field), the signature, and the
/// reserved bytes after it.
#[test]
fn every_report_byte_matters() {
    let (report, vek) = virtee();
    let v = Verifier::new().at(date(2026, 6, 1));
    v.verify_evidence(&snp(report.clone(), vek.clone()))
        .expect("the unmodified report verifies");
    let mut survived = Vec::new();
    for i in 0..report.len() {
        let mut r = report.clone();
        r[i] ^= 0x01;
        if v.verify_evidence(&snp(r, vek.clone())).is_ok() {
            survived.push(i);
        }
    }
    assert!(survived.is_empty(), "flips at {survived:x?} went unnoticed");
}

/// Every byte of the VCEK.
#[test]
fn every_vcek_byte_matters() {
    let (report, vek) = virtee();
    let v = Verifier::new().at(date(2026, 6, 1));
    let mut survived = Vec::new();
    for i in 0..vek.len() {
        let mut c = vek.clone();
        c[i] ^= 0x01;
        if v.verify_evidence(&snp(report.clone(), c)).is_ok() {
            survived.push(i);
        }
    }
    assert!(
        survived.is_empty(),
        "VCEK flips at {survived:?} went unnoticed"
    );
}

fn quote_flips(quote: &[u8], collateral: &[u8], at: std::time::SystemTime, tdx: bool) {
    let v = Verifier::new()
        .with_collateral(Collateral::from_json(collateral).unwrap())
        .at(at);
    let wrap = |q: Vec<u8>| {
        if tdx {
            Evidence::Tdx(QuoteEvidence { quote: q })
        } else {
            Evidence::Sgx(QuoteEvidence { quote: q })
        }
    };
    v.verify_evidence(&wrap(quote.to_vec()))
        .expect("unmodified quote verifies");
    // Header (48 bytes) and the report body byte by byte every 7; then every 29th byte of the
    // rest (signature, attestation key, QE report and its signature, QE auth data, PCK chain).
    let body_end = if tdx { 48 + 584 } else { 48 + 384 };
    let positions = (0..body_end)
        .step_by(7)
        .chain((body_end..quote.len()).step_by(29))
        .chain([quote.len() - 1]);
    let mut survived = Vec::new();
    for i in positions {
        let mut q = quote.to_vec();
        q[i] ^= 0x01;
        if v.verify_evidence(&wrap(q)).is_ok() {
            survived.push(i);
        }
    }
    assert!(
        survived.is_empty(),
        "quote flips at {survived:?} went unnoticed"
    );
}

#[test]
fn tdx_quote_regions_matter() {
    quote_flips(
        &vector("tdx/dcap-qvl/tdx_quote"),
        &vector("tdx/dcap-qvl/tdx_quote_collateral.json"),
        date(2025, 7, 1),
        true,
    );
}

#[test]
fn sgx_quote_regions_matter() {
    quote_flips(
        &vector("sgx/dcap-qvl/sgx_quote"),
        &vector("sgx/dcap-qvl/sgx_quote_collateral.json"),
        date(2025, 7, 1),
        false,
    );
}

/// The Enarx CSR: every byte of its key and signature, and a sample of everything else.
#[test]
fn csr_key_signature_and_body_matter() {
    let der = vector("snp/enarx-steward/milan.signed.crl.csr");
    let v = Verifier::new().at(date(2023, 1, 15));
    v.verify_csr(&der).expect("unmodified CSR verifies");
    // Offsets from its DER structure: SPKI at 13..133, signature BIT STRING from 4606.
    let positions = (13..133)
        .chain(4606..der.len())
        .chain((133..4606).step_by(41));
    let mut survived = Vec::new();
    for i in positions {
        let mut c = der.clone();
        c[i] ^= 0x01;
        if v.verify_csr(&c).is_ok() {
            survived.push(i);
        }
    }
    assert!(
        survived.is_empty(),
        "CSR flips at {survived:?} went unnoticed"
    );
}

/// A Moat CSR: every byte.
#[test]
fn every_moat_csr_byte_matters() {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let rd = moat_attest::binding::report_data_for_key(&key, None);
    let der =
        moat_attest::csr::build(&key, &Evidence::nil(rd), None, Some("moat:local:00")).unwrap();
    let v = Verifier::new();
    v.verify_csr(&der).unwrap();
    let mut survived = Vec::new();
    for i in 0..der.len() {
        let mut c = der.clone();
        c[i] ^= 0x01;
        if v.verify_csr(&c).is_ok() {
            survived.push(i);
        }
    }
    assert!(
        survived.is_empty(),
        "CSR flips at {survived:?} went unnoticed"
    );
}

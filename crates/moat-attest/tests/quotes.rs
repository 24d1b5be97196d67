//! TDX and SGX quotes verify inside their collateral window and fail outside it with an expiry.

mod common;

use common::{date, vector};
use moat_attest::{Check, Collateral, Evidence, Platform, QuoteEvidence, Verifier};

fn tdx(name: &str) -> (Evidence, Collateral) {
    (
        Evidence::Tdx(QuoteEvidence {
            quote: vector(&format!("tdx/dcap-qvl/{name}")),
        }),
        Collateral::from_json(&vector(&format!("tdx/dcap-qvl/{name}_collateral.json"))).unwrap(),
    )
}

fn sgx() -> (Evidence, Collateral) {
    (
        Evidence::Sgx(QuoteEvidence {
            quote: vector("sgx/dcap-qvl/sgx_quote"),
        }),
        Collateral::from_json(&vector("sgx/dcap-qvl/sgx_quote_collateral.json")).unwrap(),
    )
}

#[test]
fn tdx_quote_verifies_inside_its_window_and_expires_outside() {
    let (ev, col) = tdx("tdx_quote");
    let v = Verifier::new().with_collateral(col);
    let claims = v.clone().at(date(2025, 7, 1)).verify_evidence(&ev).unwrap();
    assert_eq!(claims.platform, Platform::Tdx);
    assert!(claims.attested);
    assert_eq!(claims.tcb_status.as_deref(), Some("UpToDate"));
    let tdx = claims.tdx.as_ref().unwrap();
    assert_eq!(claims.measurement.as_deref(), Some(tdx.mrtd.as_str()));
    assert_eq!(tdx.mrtd.len(), 96);
    assert!(!claims.debug);
    for at in [date(2025, 8, 1), date(2024, 1, 1)] {
        let err = v.clone().at(at).verify_evidence(&ev).unwrap_err();
        assert_eq!(err.check(), Some(Check::CollateralExpired), "{err}");
    }
}

#[test]
fn outdated_tdx_quote_matches_no_tcb_level_and_expires() {
    // The vectors README calls this quote OutOfDate; dcap-qvl 0.7 finds no TCB level of its
    // collateral that the platform meets at all (its own tests force a level with an override),
    // so it is refused inside the window, and refused as expired outside it.
    let (ev, col) = tdx("tdx_quote_outdated");
    let v = Verifier::new().with_collateral(col);
    let err = v
        .clone()
        .at(date(2026, 3, 1))
        .verify_evidence(&ev)
        .unwrap_err();
    assert_eq!(err.check(), Some(Check::QuoteVerification), "{err}");
    assert!(err.to_string().contains("TCB level"), "{err}");
    let err = v.at(date(2026, 4, 1)).verify_evidence(&ev).unwrap_err();
    assert_eq!(err.check(), Some(Check::CollateralExpired), "{err}");
}

#[test]
fn tdx_1_5_quote_verifies() {
    let (ev, col) = tdx("tdx_quote_td15ex");
    let claims = Verifier::new()
        .with_collateral(col)
        .at(date(2026, 10, 20))
        .verify_evidence(&ev)
        .unwrap();
    assert_eq!(claims.tdx.unwrap().rtmrs.len(), 4);
}

#[test]
fn sgx_quote_verifies_with_its_advisories() {
    let (ev, col) = sgx();
    let v = Verifier::new().with_collateral(col);
    let claims = v.clone().at(date(2025, 7, 1)).verify_evidence(&ev).unwrap();
    assert_eq!(claims.platform, Platform::Sgx);
    assert_eq!(
        claims.tcb_status.as_deref(),
        Some("ConfigurationAndSWHardeningNeeded")
    );
    assert!(claims.advisories.iter().any(|a| a == "INTEL-SA-00289"));
    assert!(claims.advisories.iter().any(|a| a == "INTEL-SA-00615"));
    let err = v.at(date(2025, 9, 1)).verify_evidence(&ev).unwrap_err();
    assert_eq!(err.check(), Some(Check::CollateralExpired), "{err}");
}

#[test]
fn quotes_need_collateral_and_the_right_platform() {
    let (ev, col) = tdx("tdx_quote");
    let err = Verifier::new()
        .at(date(2025, 7, 1))
        .verify_evidence(&ev)
        .unwrap_err();
    assert_eq!(err.check(), Some(Check::CollateralMissing));
    // A TDX quote's collateral does not vouch for the SGX quote.
    let err = Verifier::new()
        .with_collateral(col)
        .at(date(2025, 7, 1))
        .verify_evidence(&sgx().0)
        .unwrap_err();
    assert_eq!(err.check(), Some(Check::QuoteVerification), "{err}");
    // A TDX quote labelled SGX is refused before any cryptography.
    let Evidence::Tdx(q) = ev else { unreachable!() };
    assert!(Verifier::new().verify_evidence(&Evidence::Sgx(q)).is_err());
}

#[test]
fn enarx_sgx_csrs_parse_and_need_matching_collateral() {
    for name in [
        "icelake.signed.tcb.crl.multi.xeon.csr",
        "icelake.signed.tcb.crl.single.i5.csr",
    ] {
        let der = vector(&format!("sgx/enarx-steward/{name}"));
        let parsed = moat_attest::csr::parse(&der).unwrap();
        assert_eq!(parsed.evidence.platform(), Platform::Sgx);
        // The collateral Enarx embedded is not used, and the dcap-qvl sample collateral is for
        // another platform family: refused as unverifiable, never accepted.
        let err = Verifier::new()
            .with_collateral(sgx().1)
            .at(date(2025, 7, 1))
            .verify_csr(&der)
            .unwrap_err();
        assert!(err.check().is_some(), "{name}: {err}");
        eprintln!("{name}: {err}");
    }
}

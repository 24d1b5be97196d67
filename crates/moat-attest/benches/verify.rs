//! The bare cost of verification, for comparison with the Steward's issuance rate:
//! `cargo bench -p moat-attest --bench verify`. Prints one line per operation with the mean time
//! per operation and operations per second on one core. Needs the vectors (`MOAT_VECTORS`).

use std::path::PathBuf;
use std::time::{Duration, Instant, UNIX_EPOCH};

use moat_attest::test_roots::{FakeAmd, ReportParams};
use moat_attest::{Evidence, SnpEvidence, Verifier, binding, csr};

fn vectors() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    match std::env::var_os("MOAT_VECTORS") {
        Some(v) => PathBuf::from(v),
        None => manifest
            .ancestors()
            .skip(2)
            .map(|a| a.join("shared/vectors"))
            .find(|d| d.is_dir())
            .expect("vectors not found: set MOAT_VECTORS"),
    }
}

/// Run `f` repeatedly for about `budget`, after a warm-up; print and return ns per call.
fn bench(name: &str, budget: Duration, mut f: impl FnMut()) -> f64 {
    for _ in 0..3 {
        f();
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget {
        f();
        n += 1;
    }
    let ns = start.elapsed().as_nanos() as f64 / n as f64;
    println!(
        "{name:<40} {:>10.1} us/op {:>10.0} op/s  ({n} iterations)",
        ns / 1000.0,
        1e9 / ns
    );
    ns
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument selects benchmarks by substring.
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let budget = Duration::from_secs(3);
    let run = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    let dir = vectors();
    let at = UNIX_EPOCH + Duration::from_secs(1_780_000_000); // 2026-05-28

    let report = hex::decode(
        std::fs::read_to_string(dir.join("snp/virtee/report_milan.hex"))
            .unwrap()
            .split_whitespace()
            .collect::<String>(),
    )
    .unwrap();
    let vek = std::fs::read(dir.join("snp/virtee/vcek_milan.der")).unwrap();
    let real_snp = Evidence::Snp(SnpEvidence {
        report,
        vek: Some(vek),
        crls: vec![],
    });
    let v = Verifier::new().at(at);
    if run("snp_verify_evidence_real_milan") {
        bench("snp_verify_evidence_real_milan", budget, || {
            v.verify_evidence(&real_snp).unwrap();
        });
    }

    let enarx_csr = std::fs::read(dir.join("snp/enarx-steward/milan.signed.crl.csr")).unwrap();
    let v2023 = Verifier::new().at(UNIX_EPOCH + Duration::from_secs(1_673_740_800));
    if run("snp_csr_enarx_parse_verify") {
        bench("snp_csr_enarx_parse_verify (with CRLs)", budget, || {
            v2023.verify_csr(&enarx_csr).unwrap();
        });
    }

    // A Moat SNP CSR through the test-only chain (what the Steward's SNP benchmark submits).
    let amd = FakeAmd::new("bench");
    let chip = amd.chip();
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let rd = binding::report_data_for_key(&key, Some(b"nonce"));
    let ev = chip.evidence(&ReportParams {
        report_data: rd,
        ..Default::default()
    });
    let snp_csr = csr::build(&key, &ev, Some(b"nonce"), Some("moat:local:00")).unwrap();
    let vt = Verifier::new().with_test_only_amd_root(amd.root());
    if run("snp_csr_moat_parse_verify") {
        bench("snp_csr_moat_parse_verify (test root)", budget, || {
            vt.verify_csr(&snp_csr).unwrap();
        });
    }

    let rd = binding::report_data_for_key(&key, Some(b"nonce"));
    let nil_csr = csr::build(
        &key,
        &Evidence::nil(rd),
        Some(b"nonce"),
        Some("moat:local:00"),
    )
    .unwrap();
    if run("nil_csr_parse_verify") {
        bench("nil_csr_parse_verify", budget, || {
            v.verify_csr(&nil_csr).unwrap();
        });
    }

    let quote = std::fs::read(dir.join("tdx/dcap-qvl/tdx_quote")).unwrap();
    let col = moat_attest::Collateral::from_json(
        &std::fs::read(dir.join("tdx/dcap-qvl/tdx_quote_collateral.json")).unwrap(),
    )
    .unwrap();
    let vq = Verifier::new()
        .with_collateral(col)
        .at(UNIX_EPOCH + Duration::from_secs(1_751_328_000));
    let tdx = Evidence::Tdx(moat_attest::QuoteEvidence { quote });
    if run("tdx_verify_evidence") {
        bench("tdx_verify_evidence", budget, || {
            vq.verify_evidence(&tdx).unwrap();
        });
    }
}

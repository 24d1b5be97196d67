//! SEV-SNP through the Steward as a real process: Enarx's real SNP CSR on Enarx's `POST /`, and
//! synthetic reports signed by a test-only AMD root (generated here, trusted by the Steward only
//! through `--test-only-amd-root`), with nonce, workload, debug and migration-agent policy.

mod steward_support;

use bytes::Bytes;
use http::Method;
use moat_attest::binding;
use moat_attest::test_roots::{FakeAmd, ReportParams};
use moat_client::steward::StewardError;
use moat_client::steward_verify::KeepIdentity;
use steward_support::{Steward, vectors};

const WORKLOAD: &str = "moat:local:0123";

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Splits a DER `SEQUENCE OF Certificate` into its certificates.
fn pkipath(der: &[u8]) -> Vec<Vec<u8>> {
    assert_eq!(der[0], 0x30, "not a SEQUENCE");
    let hdr = if der[1] & 0x80 == 0 {
        2
    } else {
        2 + (der[1] & 0x7f) as usize
    };
    let mut body = &der[hdr..];
    let mut out = Vec::new();
    while !body.is_empty() {
        let (rest, _) = x509_parser::parse_x509_certificate(body).unwrap();
        out.push(body[..body.len() - rest.len()].to_vec());
        body = rest;
    }
    out
}

const ENARX_POLICY: &str = r#"
platforms = ["snp"]
require_nonce = false
allow_unnamed_workload = true
"#;

#[test]
fn enarx_snp_csr_is_certified_on_enarx_route() {
    let csr = std::fs::read(vectors().join("snp/enarx-steward/milan.signed.crl.csr")).unwrap();
    // The vector's CRLs were current in 2022-2023: verify as of then (test-only switch).
    let steward = Steward::start(
        ENARX_POLICY,
        &["--test-only-verify-at", "2023-01-15T12:00:00Z"],
    );
    let resp = rt().block_on(async {
        steward
            .client()
            .raw(
                Method::POST,
                "/",
                Some("application/pkcs10"),
                Bytes::from(csr.clone()),
                None,
            )
            .await
            .unwrap()
    });
    assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));
    assert_eq!(resp.content_type, "application/pkix-pkipath");
    let certs = pkipath(&resp.body);
    assert_eq!(certs.len(), 2);
    let (_, ca) = x509_parser::parse_x509_certificate(&certs[0]).unwrap();
    let (_, leaf) = x509_parser::parse_x509_certificate(&certs[1]).unwrap();
    assert!(ca.is_ca());
    leaf.verify_signature(Some(ca.public_key())).unwrap();
    let id = KeepIdentity::from_cert(&certs[1]).unwrap();
    assert_eq!(id.result.platform, moat_attest::Platform::Snp);
    assert!(id.result.attested);
    assert!(!id.result.test_only_root);
    assert!(id.result.measurement.is_some());
    assert_eq!(id.workload, None);
    // The certificate carries the result, never the raw evidence: far smaller than the CSR.
    assert!(
        certs[1].len() < csr.len() / 2,
        "{} vs {}",
        certs[1].len(),
        csr.len()
    );

    // A policy that lists another measurement refuses it, naming the check.
    let other = format!(
        "{ENARX_POLICY}\n[snp]\nmeasurements = [\"{}\"]\n",
        "00".repeat(48)
    );
    let strict = Steward::start(&other, &["--test-only-verify-at", "2023-01-15T12:00:00Z"]);
    let resp = rt().block_on(async {
        strict
            .client()
            .raw(
                Method::POST,
                "/",
                Some("application/pkcs10"),
                Bytes::from(csr.clone()),
                None,
            )
            .await
            .unwrap()
    });
    assert_eq!(resp.status, 403);
    assert_eq!(
        resp.error().unwrap(),
        ("policy_refused".into(), "snp.measurement".into())
    );
}

#[test]
fn enarx_snp_csr_with_stale_crls_is_refused_at_the_clock() {
    let csr = std::fs::read(vectors().join("snp/enarx-steward/milan.signed.crl.csr")).unwrap();
    let steward = Steward::start(ENARX_POLICY, &[]);
    let resp = rt().block_on(async {
        steward
            .client()
            .raw(
                Method::POST,
                "/",
                Some("application/pkcs10"),
                Bytes::from(csr),
                None,
            )
            .await
            .unwrap()
    });
    assert_eq!(resp.status, 403);
    assert_eq!(
        resp.error().unwrap(),
        ("evidence_refused".into(), "crl.expired".into())
    );
}

struct SnpSetup {
    amd: FakeAmd,
    steward: Steward,
    _dir: tempfile::TempDir,
}

fn snp_steward(policy: &str) -> SnpSetup {
    let amd = FakeAmd::new("steward-test");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("test-amd-root.pem");
    std::fs::write(&root, format!("{}{}", amd.ark_pem(), amd.ask_pem())).unwrap();
    let steward = Steward::start(policy, &["--test-only-amd-root", root.to_str().unwrap()]);
    SnpSetup {
        amd,
        steward,
        _dir: dir,
    }
}

const SNP_POLICY: &str = r#"
platforms = ["snp"]
workloads = ["moat:local:*"]
"#;

/// A Moat CSR with a synthetic SNP report binding a fresh key and `nonce`.
fn snp_csr(amd: &FakeAmd, nonce: &[u8], params: ReportParams) -> Vec<u8> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let chip = amd.chip();
    let evidence = chip.evidence(&ReportParams {
        report_data: binding::report_data_for_key(&key, Some(nonce)),
        ..params
    });
    moat_attest::csr::build(&key, &evidence, Some(nonce), Some(WORKLOAD)).unwrap()
}

#[test]
fn snp_under_a_test_root_is_certified_and_says_so() {
    let s = snp_steward(SNP_POLICY);
    rt().block_on(async {
        let client = s.steward.client();
        let nonce = client.nonce().await.unwrap();
        let csr = snp_csr(&s.amd, &nonce.bytes, ReportParams::default());
        let chain = client.certify(&csr).await.unwrap();
        let id = KeepIdentity::from_cert(&chain[0]).unwrap();
        assert!(id.result.attested);
        assert!(id.result.test_only_root);
        assert_eq!(id.result.platform, moat_attest::Platform::Snp);
        assert_eq!(
            id.result.measurement.as_deref(),
            Some("4d".repeat(48).as_str())
        );
        assert_eq!(id.workload.as_deref(), Some(WORKLOAD));
        // The replay of the same CSR is refused.
        let err = client.certify(&csr).await.unwrap_err();
        assert_eq!(err.check(), Some("nonce"), "{err}");
    });
}

#[test]
fn snp_guest_policy_is_enforced() {
    let s = snp_steward(SNP_POLICY);
    rt().block_on(async {
        let client = s.steward.client();
        for (policy_bits, check) in [(1u64 << 19, "debug"), (1u64 << 18, "snp.migration_agent")] {
            let nonce = client.nonce().await.unwrap();
            let csr = snp_csr(
                &s.amd,
                &nonce.bytes,
                ReportParams {
                    policy: 0x30000 | policy_bits,
                    ..ReportParams::default()
                },
            );
            match client.certify(&csr).await {
                Err(StewardError::Refused {
                    status, check: got, ..
                }) => {
                    assert_eq!(status, 403);
                    assert!(got.ends_with(check), "{got} vs {check}");
                }
                other => panic!("{check}: expected a refusal, got {other:?}"),
            }
        }
    });
}

#[test]
fn snp_under_an_untrusted_root_is_refused() {
    // This Steward trusts a different fake root than the one that signs the reports.
    let s = snp_steward(SNP_POLICY);
    let stranger = FakeAmd::new("stranger");
    rt().block_on(async {
        let client = s.steward.client();
        let nonce = client.nonce().await.unwrap();
        let csr = snp_csr(&stranger, &nonce.bytes, ReportParams::default());
        let err = client.certify(&csr).await.unwrap_err();
        assert_eq!(err.check(), Some("snp.vek_chain"), "{err}");
    });
}

#[test]
fn snp_measurement_and_tcb_policy() {
    let policy = format!(
        "{SNP_POLICY}\n[snp]\nmeasurements = [\"{}\"]\nmin_tcb = {{ bootloader = 3, snp = 9 }}\n",
        "4d".repeat(48)
    );
    let s = snp_steward(&policy);
    rt().block_on(async {
        let client = s.steward.client();
        let nonce = client.nonce().await.unwrap();
        // The fake chip's TCB is 3.0.8.115: SNP SPL 8 < 9.
        let csr = snp_csr(&s.amd, &nonce.bytes, ReportParams::default());
        let err = client.certify(&csr).await.unwrap_err();
        assert_eq!(err.check(), Some("snp.min_tcb"), "{err}");
        let nonce = client.nonce().await.unwrap();
        let csr = snp_csr(
            &s.amd,
            &nonce.bytes,
            ReportParams {
                measurement: [0x11; 48],
                ..ReportParams::default()
            },
        );
        let err = client.certify(&csr).await.unwrap_err();
        assert_eq!(err.check(), Some("snp.measurement"), "{err}");
    });
}

//! `moat verify` against TLS servers presenting certificates a real Steward process issued (nil
//! and SNP under a test-only root): matching expectations pass, every mismatch exits 1 naming
//! it, an unattested Keep fails unless allowed, and a chain from another CA fails.

mod steward_support;

use std::net::TcpListener;
use std::sync::Arc;

use moat_attest::binding;
use moat_attest::test_roots::{FakeAmd, ReportParams};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use steward_support::{Steward, moat};

const WORKLOAD: &str = "moat:local:abcd";

/// A loopback TLS server presenting `chain`; answers handshakes until the test ends.
fn tls_server(chain: Vec<CertificateDer<'static>>, key: &rcgen::KeyPair) -> String {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for tcp in listener.incoming() {
            let Ok(mut tcp) = tcp else { continue };
            let config = config.clone();
            std::thread::spawn(move || {
                let mut conn = rustls::ServerConnection::new(config).unwrap();
                while conn.is_handshaking() {
                    if conn.complete_io(&mut tcp).is_err() {
                        return;
                    }
                }
                conn.send_close_notify();
                let _ = conn.complete_io(&mut tcp);
            });
        }
    });
    url
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn verify(url: &str, ca: &std::path::Path, extra: &[&str]) -> (i32, String, String) {
    let out = moat()
        .arg("verify")
        .arg(url)
        .arg("--ca")
        .arg(ca)
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn verify_a_nil_keep() {
    let steward = Steward::start(
        "allow_insecure_nil = true\nworkloads = [\"moat:local:*\"]\n",
        &[],
    );
    let (key, chain) = rt().block_on(async {
        let client = steward.client();
        let nonce = client.nonce().await.unwrap();
        let (key, csr) = steward_support::nil_csr(Some(&nonce.bytes), Some(WORKLOAD), None);
        (key, client.certify(&csr).await.unwrap())
    });
    let url = tls_server(chain, &key);

    // Unattested: refused by default, accepted when allowed.
    let (code, _, err) = verify(&url, &steward.ca_path, &[]);
    assert_eq!(code, 1);
    assert!(err.contains("not attested"), "{err}");
    let (code, out, _) = verify(
        &url,
        &steward.ca_path,
        &["--allow-unattested", "--expect-workload", WORKLOAD],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("UNATTESTED"), "{out}");

    // JSON output names each mismatch.
    let (code, out, _) = verify(
        &url,
        &steward.ca_path,
        &[
            "--allow-unattested",
            "--expect-platform",
            "snp",
            "--expect-workload",
            "moat:local:other",
            "--json",
        ],
    );
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ok"], false);
    let checks: Vec<&str> = v["mismatches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["check"].as_str().unwrap())
        .collect();
    assert_eq!(checks, ["platform", "workload"]);

    // Another CA: the chain does not validate.
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other.pem");
    std::fs::write(&other, moat_steward::ca::generate_ca("other").unwrap().0).unwrap();
    let (code, _, err) = verify(&url, &other, &["--allow-unattested"]);
    assert_eq!(code, 1);
    assert!(err.contains("TLS handshake"), "{err}");
}

#[test]
fn verify_an_snp_keep_under_a_test_root() {
    let amd = FakeAmd::new("verify-test");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root.pem");
    std::fs::write(&root, format!("{}{}", amd.ark_pem(), amd.ask_pem())).unwrap();
    let steward = Steward::start(
        "platforms = [\"snp\"]\nworkloads = [\"moat:local:*\"]\n",
        &["--test-only-amd-root", root.to_str().unwrap()],
    );
    let (key, chain) = rt().block_on(async {
        let client = steward.client();
        let nonce = client.nonce().await.unwrap();
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let evidence = amd.chip().evidence(&ReportParams {
            report_data: binding::report_data_for_key(&key, Some(&nonce.bytes)),
            ..ReportParams::default()
        });
        let csr =
            moat_attest::csr::build(&key, &evidence, Some(&nonce.bytes), Some(WORKLOAD)).unwrap();
        (key, client.certify(&csr).await.unwrap())
    });
    let url = tls_server(chain, &key);
    let measurement = "4d".repeat(48);

    // Test-root evidence must be accepted explicitly.
    let (code, _, err) = verify(&url, &steward.ca_path, &["--expect-platform", "snp"]);
    assert_eq!(code, 1);
    assert!(err.contains("TEST-ONLY"), "{err}");

    let (code, out, err) = verify(
        &url,
        &steward.ca_path,
        &[
            "--allow-test-root",
            "--expect-platform",
            "snp",
            "--expect-workload",
            WORKLOAD,
            "--expect-measurement",
            &measurement,
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&measurement) && out.contains("verified"),
        "{out}"
    );

    let (code, _, err) = verify(
        &url,
        &steward.ca_path,
        &[
            "--allow-test-root",
            "--expect-measurement",
            &"00".repeat(48),
        ],
    );
    assert_eq!(code, 1);
    assert!(err.contains("measurement"), "{err}");
}

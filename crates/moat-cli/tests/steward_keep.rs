//! The Keep's attestation exchange end to end, short of running a workload: evidence from a fake
//! configfs-tsm (a test-only AMD root signs the reports), the Steward as a real process over
//! HTTPS, the chain turned into the TLS identity of a listener, and `moat verify` checking it.

mod steward_support;

use std::net::TcpListener;
use std::sync::Arc;

use moat_attest::Platform;
use moat_attest::attester::AttesterConfig;
use moat_attest::test_roots::{FakeAmd, ReportParams};
use moat_client::steward_attest::{AttestError, AttestRequest, attest, local_workload_name};
use steward_support::{Steward, moat};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Serves TLS handshakes with `identity` on loopback.
fn tls_listener(identity: &moat_tls::Identity) -> String {
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            identity.chain().to_vec(),
            identity.private_key().clone_key(),
        )
        .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for tcp in listener.incoming() {
            let Ok(mut tcp) = tcp else { continue };
            let mut conn = rustls::ServerConnection::new(config.clone()).unwrap();
            while conn.is_handshaking() {
                if conn.complete_io(&mut tcp).is_err() {
                    break;
                }
            }
        }
    });
    url
}

#[test]
fn snp_keep_attests_through_fake_configfs_tsm_and_verifies() {
    let amd = FakeAmd::new("keep-test");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root.pem");
    std::fs::write(&root, format!("{}{}", amd.ark_pem(), amd.ask_pem())).unwrap();
    let steward = Steward::start(
        "platforms = [\"snp\"]\nworkloads = [\"moat:local:*\"]\n",
        &["--test-only-amd-root", root.to_str().unwrap()],
    );
    let tsm = amd.chip().serve_tsm(ReportParams::default()).unwrap();
    let workload = local_workload_name(b"\0asm fake module");
    let request = AttestRequest {
        steward_url: steward.url.clone(),
        steward_ca_pem: steward.ca_pem.clone(),
        platform: Some(Platform::Snp),
        attester: AttesterConfig {
            tsm_base: tsm.path().into(),
            ..AttesterConfig::default()
        },
        workload: workload.clone(),
    };
    let attested = rt().block_on(attest(&request)).unwrap();
    assert_eq!(attested.platform, Platform::Snp);
    let identity = moat_tls::Identity::from_parts(attested.chain, attested.key).unwrap();
    let url = tls_listener(&identity);

    let out = moat()
        .args(["verify", &url, "--ca"])
        .arg(&steward.ca_path)
        .args([
            "--allow-test-root",
            "--expect-platform",
            "snp",
            "--expect-workload",
            &workload,
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("attested:     true"), "{stdout}");

    // A workload the policy does not list: the Keep gets the Steward's reason, no certificate.
    let refused = rt()
        .block_on(attest(&AttestRequest {
            workload: "oci://127.0.0.1:1/not/listed".into(),
            ..request.clone()
        }))
        .unwrap_err();
    match refused {
        AttestError::Steward(e) => assert_eq!(e.check(), Some("policy.workload"), "{e}"),
        other => panic!("expected a Steward refusal, got {other}"),
    }

    // nil evidence to an SNP-only Steward: refused by policy, never silently certified.
    let refused = rt()
        .block_on(attest(&AttestRequest {
            platform: Some(Platform::Nil),
            ..request
        }))
        .unwrap_err();
    assert!(
        refused.to_string().contains("platform_not_accepted"),
        "{refused}"
    );
}

//! `moat steward serve` as a real process over HTTPS on loopback: the nil flow, its state
//! directory, concurrent clients, and hostile input (malformed, oversized, wrong types, evidence
//! for another key, a replayed nonce). After all of it the process must still be serving.

mod steward_support;

use bytes::Bytes;
use http::Method;
use moat_client::steward::StewardError;
use steward_support::{Steward, nil_csr};

const WORKLOAD: &str = "oci://127.0.0.1:5000/demo/app";
const NIL_POLICY: &str = r#"
name = "test"
allow_insecure_nil = true
workloads = ["oci://127.0.0.1:*/demo/*"]
"#;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn nil_flow_issues_an_unattested_certificate_and_the_state_is_private() {
    let steward = Steward::start(NIL_POLICY, &[]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let state = steward.ca_path.parent().unwrap();
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(state), 0o700);
        assert_eq!(mode(&state.join("ca.key.pem")), 0o600);
    }
    rt().block_on(async {
        let client = steward.client();
        client.health().await.unwrap();
        assert_eq!(
            client.ca_pem().await.unwrap().as_bytes(),
            &steward.ca_pem[..]
        );
        let nonce = client.nonce().await.unwrap();
        let (_, csr) = nil_csr(Some(&nonce.bytes), Some(WORKLOAD), None);
        let chain = client.certify(&csr).await.unwrap();
        assert_eq!(chain.len(), 2);
        let id = moat_client::steward_verify::KeepIdentity::from_cert(&chain[0]).unwrap();
        assert_eq!(id.workload.as_deref(), Some(WORKLOAD));
        assert!(!id.result.attested);
        assert_eq!(id.result.policy, "accepted:test");
    });
}

#[test]
fn nil_is_refused_unless_the_policy_allows_it() {
    let steward = Steward::start("workloads = [\"oci://**\"]\n", &[]);
    rt().block_on(async {
        let client = steward.client();
        let nonce = client.nonce().await.unwrap();
        let (_, csr) = nil_csr(Some(&nonce.bytes), Some(WORKLOAD), None);
        match client.certify(&csr).await {
            Err(StewardError::Refused {
                status,
                code,
                check,
                ..
            }) => {
                assert_eq!(
                    (status, code.as_str(), check.as_str()),
                    (403, "platform_not_accepted", "policy.platform")
                );
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    });
    assert!(
        steward.log_contains("platform_not_accepted"),
        "{}",
        steward.log()
    );
}

#[test]
fn concurrent_csrs_from_many_clients() {
    let steward = Steward::start(NIL_POLICY, &[]);
    const CLIENTS: usize = 16;
    const EACH: usize = 4;
    let ca_der = {
        use rustls_pki_types::CertificateDer;
        use rustls_pki_types::pem::PemObject;
        CertificateDer::from_pem_slice(&steward.ca_pem)
            .unwrap()
            .to_vec()
    };
    let leaves = rt().block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..CLIENTS {
            let client = steward.client();
            tasks.push(tokio::spawn(async move {
                let mut out = Vec::new();
                for _ in 0..EACH {
                    let nonce = client.nonce().await.unwrap();
                    let (_, csr) = nil_csr(Some(&nonce.bytes), Some(WORKLOAD), None);
                    out.push(client.certify(&csr).await.unwrap()[0].to_vec());
                }
                out
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all
    });
    assert_eq!(leaves.len(), CLIENTS * EACH);
    let (_, ca) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
    let mut serials = std::collections::HashSet::new();
    for leaf in &leaves {
        let (_, cert) = x509_parser::parse_x509_certificate(leaf).unwrap();
        cert.verify_signature(Some(ca.public_key())).unwrap();
        assert!(
            serials.insert(cert.raw_serial().to_vec()),
            "duplicate serial"
        );
    }
    let metrics = rt().block_on(async {
        let r = steward
            .client()
            .raw(Method::GET, "/metrics", None, Bytes::new(), None)
            .await
            .unwrap();
        String::from_utf8(r.body.to_vec()).unwrap()
    });
    assert!(
        metrics.contains(&format!(
            "moat_steward_certificates_issued_total{{platform=\"nil\"}} {}",
            CLIENTS * EACH
        )),
        "{metrics}"
    );
}

#[test]
fn hostile_requests_get_the_right_status_and_never_crash_it() {
    let mut steward = Steward::start(NIL_POLICY, &[]);
    rt().block_on(async {
        let client = steward.client();
        let post = |ctype: Option<&'static str>, body: Vec<u8>| {
            let client = &client;
            async move {
                client
                    .raw(
                        Method::POST,
                        "/api/v1/certificate",
                        ctype,
                        Bytes::from(body),
                        None,
                    )
                    .await
                    .unwrap()
            }
        };
        let pkcs10 = Some("application/pkcs10");

        // Malformed bodies.
        let nonce = client.nonce().await.unwrap();
        let (_, good) = nil_csr(Some(&nonce.bytes), Some(WORKLOAD), None);
        for (what, body) in [
            ("empty", vec![]),
            ("junk", b"\x30\x82\xff\xff junk".to_vec()),
            ("truncated", good[..good.len() - 10].to_vec()),
            (
                "PEM junk",
                b"-----BEGIN CERTIFICATE REQUEST-----\n!!\n".to_vec(),
            ),
        ] {
            let r = post(pkcs10, body).await;
            assert_eq!(r.status, 400, "{what}");
            assert_eq!(r.error().unwrap().0, "malformed_request", "{what}");
        }
        // Every region of the CSR mutated: refused (never 200, never 5xx).
        for i in (0..good.len()).step_by(good.len() / 16) {
            let mut m = good.clone();
            m[i] ^= 0x01;
            let r = post(pkcs10, m).await;
            assert!((400..500).contains(&r.status), "byte {i}: {}", r.status);
        }

        // Oversized: declared and actual.
        let big = vec![0x30u8; 300 * 1024];
        let r = post(pkcs10, big).await;
        assert_eq!(r.status, 413);
        assert_eq!(
            r.error().unwrap(),
            ("body_too_large".into(), "http.body_size".into())
        );

        // Wrong content types.
        for ctype in [
            None,
            Some("application/json"),
            Some("application/x-www-form-urlencoded"),
        ] {
            let r = post(ctype, good.clone()).await;
            assert_eq!(r.status, 415, "{ctype:?}");
            assert_eq!(r.error().unwrap().0, "unsupported_media_type");
        }

        // Evidence binding another key.
        let other = rcgen::KeyPair::generate().unwrap();
        let nonce = client.nonce().await.unwrap();
        let (_, csr) = nil_csr(
            Some(&nonce.bytes),
            Some(WORKLOAD),
            Some(&rcgen::PublicKeyData::subject_public_key_info(&other)),
        );
        let r = post(pkcs10, csr).await;
        assert_eq!(r.status, 403);
        assert_eq!(
            r.error().unwrap(),
            ("evidence_refused".into(), "key_binding".into())
        );

        // A replayed nonce: the second use is refused even with a fresh key.
        let nonce = client.nonce().await.unwrap();
        let (_, first) = nil_csr(Some(&nonce.bytes), Some(WORKLOAD), None);
        assert_eq!(post(pkcs10, first.clone()).await.status, 200);
        let r = post(pkcs10, first).await;
        assert_eq!(r.status, 403);
        assert_eq!(
            r.error().unwrap(),
            ("nonce_replayed".into(), "nonce".into())
        );
        let (_, second) = nil_csr(Some(&nonce.bytes), Some(WORKLOAD), None);
        let r = post(pkcs10, second).await;
        assert_eq!(r.error().unwrap().0, "nonce_replayed");

        // The typed client carries the reason.
        let nonce = client.nonce().await.unwrap();
        let (_, csr) = nil_csr(Some(&nonce.bytes), Some("oci://evil.example/x"), None);
        let err = client.certify(&csr).await.unwrap_err();
        assert_eq!(err.check(), Some("policy.workload"), "{err}");

        // Still serving.
        client.health().await.unwrap();
    });
    assert!(steward.alive());
    for code in [
        "malformed_request",
        "body_too_large",
        "unsupported_media_type",
        "key_binding",
        "nonce_replayed",
    ] {
        assert!(
            steward.log_contains(code),
            "no log line for {code}:\n{}",
            steward.log()
        );
    }
}

#[test]
fn tls_garbage_and_idle_connections_do_not_stop_it() {
    use std::io::Write;
    let mut steward = Steward::start(NIL_POLICY, &[]);
    let addr = steward.url.trim_start_matches("https://").to_owned();
    // Plain HTTP to the HTTPS port, and a connection that never speaks.
    let mut plain = std::net::TcpStream::connect(&addr).unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let _idle = std::net::TcpStream::connect(&addr).unwrap();
    rt().block_on(async { steward.client().health().await.unwrap() });
    assert!(steward.alive());
}

#[test]
fn a_connection_flood_at_the_limit_logs_once_and_is_counted() {
    use std::io::Read;
    let steward = Steward::start(NIL_POLICY, &["--max-connections", "2"]);
    let addr = steward.url.trim_start_matches("https://").to_owned();
    // Two clients that never speak hold both slots (the handshake timeout is 10 s).
    let idle: Vec<_> = (0..2)
        .map(|_| std::net::TcpStream::connect(&addr).unwrap())
        .collect();
    const FLOOD: usize = 6;
    for _ in 0..FLOOD {
        let mut refused = std::net::TcpStream::connect(&addr).unwrap();
        refused
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        // Closed by the Steward at once: end of stream (or a reset), never a timeout.
        let mut byte = [0u8; 1];
        match refused.read(&mut byte) {
            Ok(0) => {}
            Ok(_) => panic!("a connection over the limit got data"),
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
        }
    }
    // Freeing the slots lets clients in again (a request racing the release is refused too,
    // and retried).
    drop(idle);
    let metrics = rt().block_on(async {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match steward
                .client()
                .raw(Method::GET, "/metrics", None, Bytes::new(), None)
                .await
            {
                Ok(response) => break String::from_utf8(response.body.to_vec()).unwrap(),
                Err(e) if std::time::Instant::now() < deadline => {
                    eprintln!("retrying: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                Err(e) => panic!("the Steward did not accept again: {e}"),
            }
        }
    });
    let refused: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("moat_steward_connections_refused_total "))
        .expect("the refused-connections counter")
        .parse()
        .unwrap();
    assert!(refused >= FLOOD as u64, "{metrics}");
    assert!(steward.log_contains("below the connection limit again"));
    let log = steward.log();
    assert_eq!(
        log.matches("connection limit reached").count(),
        1,
        "one warning per episode, not per connection:\n{log}"
    );
}

#[test]
fn the_ca_survives_a_restart_and_a_client_with_another_ca_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let first = Steward::start_in(&state, None, &[]);
    let ca = first.ca_pem.clone();
    drop(first);
    let second = Steward::start_in(&state, None, &[]);
    assert_eq!(second.ca_pem, ca);

    let other = tempfile::tempdir().unwrap();
    let (other_ca, _) = moat_steward::ca::generate_ca("other").unwrap();
    let _ = other;
    rt().block_on(async {
        let client =
            moat_client::steward::StewardClient::new(&second.url, other_ca.as_bytes()).unwrap();
        match client.health().await {
            Err(StewardError::Tls { .. }) => {}
            other => panic!("expected a TLS failure, got {other:?}"),
        }
    });
}

#[test]
fn policy_check_and_collateral_import() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, NIL_POLICY).unwrap();
    let out = steward_support::moat()
        .args(["steward", "policy", "check", "--json"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], true);
    assert!(
        v["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("nil"))
    );

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "allow_nil = true\n").unwrap();
    let out = steward_support::moat()
        .args(["steward", "policy", "check"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("allow_nil"));

    // Collateral: a real document is stored, junk is refused.
    let state = dir.path().join("state");
    let collateral = steward_support::vectors().join("tdx/dcap-qvl/tdx_quote_collateral.json");
    let out = steward_support::moat()
        .args(["steward", "collateral", "import"])
        .arg(&collateral)
        .arg("--state-dir")
        .arg(&state)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_dir(state.join("collateral")).unwrap().count(),
        1
    );
    let junk = dir.path().join("junk.json");
    std::fs::write(&junk, b"{\"nope\": 1}").unwrap();
    let out = steward_support::moat()
        .args(["steward", "collateral", "import"])
        .arg(&junk)
        .arg("--state-dir")
        .arg(&state)
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn sighup_reloads_a_given_tls_certificate_and_a_bad_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("tls.pem"), dir.path().join("tls.key"));
    let write = |names: &[&str]| {
        let id = moat_tls::Identity::self_signed(names).unwrap();
        id.save_pem(&cert, &key).unwrap();
        id
    };
    let first = write(&["localhost"]);
    let steward = Steward::start(
        "allow_insecure_nil = true\n",
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let addr: std::net::SocketAddr = steward.url.trim_start_matches("https://").parse().unwrap();
    moat_testkit::tls::wait_for_presented_leaf(addr, "localhost", first.leaf());

    let renewed = write(&["localhost", "steward.test"]);
    moat_testkit::process::sighup(steward.pid());
    moat_testkit::tls::wait_for_presented_leaf(addr, "localhost", renewed.leaf());

    std::fs::write(&cert, b"-----BEGIN CERTIFICATE-----\ntruncated").unwrap();
    moat_testkit::process::sighup(steward.pid());
    assert!(steward.log_contains("cannot reload the TLS certificate"));
    assert_eq!(
        moat_testkit::tls::presented_chain(addr, "localhost")[0],
        *renewed.leaf()
    );
}

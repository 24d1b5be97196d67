//! The Keep's attestation exchange end to end, short of running a workload: evidence from a fake
//! configfs-tsm (a test-only AMD root signs the reports), the Steward as a real process over
//! HTTPS, the chain turned into the TLS identity of a listener, and `moat verify` checking it.

mod steward_support;

use std::net::TcpListener;
use std::sync::Arc;

use moat_attest::Platform;
use moat_attest::attester::AttesterConfig;
use moat_attest::test_roots::{FakeAmd, FakeTsm, ReportParams};
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
    let SnpSetup { steward, tsm, _dir } = snp_setup(
        "keep-test",
        "platforms = [\"snp\"]\nworkloads = [\"moat:local:*\"]\n",
    );
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
        server_names: vec!["127.0.0.1".into()],
    };
    let attested = rt().block_on(attest(&request)).unwrap();
    assert_eq!(attested.platform, Platform::Snp);
    let identity = moat_tls::Identity::from_parts(attested.chain, attested.key).unwrap();
    let url = tls_listener(&identity);

    let out = verify_keep(
        &steward,
        &url,
        &["--expect-platform", "snp", "--expect-workload", &workload],
    );
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

/// `moat verify URL` against `steward`'s CA (its test root allowed), plus `extra` expectations.
fn verify_keep(steward: &Steward, url: &str, extra: &[&str]) -> std::process::Output {
    moat()
        .args(["verify", url, "--ca"])
        .arg(&steward.ca_path)
        .arg("--allow-test-root")
        .args(extra)
        .output()
        .unwrap()
}

/// What an SNP test starts from: a fake AMD chip named `chip`, a Steward with `policy` trusting
/// its test root, and a fake configfs-tsm serving the chip's reports.
struct SnpSetup {
    steward: Steward,
    tsm: FakeTsm,
    _dir: tempfile::TempDir,
}

fn snp_setup(chip: &str, policy: &str) -> SnpSetup {
    let amd = FakeAmd::new(chip);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root.pem");
    std::fs::write(&root, format!("{}{}", amd.ark_pem(), amd.ask_pem())).unwrap();
    let steward = Steward::start(policy, &["--test-only-amd-root", root.to_str().unwrap()]);
    let tsm = amd.chip().serve_tsm(ReportParams::default()).unwrap();
    SnpSetup {
        steward,
        tsm,
        _dir: dir,
    }
}

/// `moat run` with an echo guest on a TLS listener, attesting to `steward` through `tsm`.
fn attested_keep(
    steward: &Steward,
    tsm: &std::path::Path,
    platform: &str,
    port: u16,
) -> moat_testkit::process::Moat {
    use moat_testkit::{configs, guests, process::Moat};
    Moat::run(env!("CARGO_BIN_EXE_moat"), guests::module("echo-std"))
        .config(&(configs::stdio() + &configs::listen("sock", "tls", port)))
        .guest_args(["sock"])
        .args(["--steward", &steward.url, "--steward-ca"])
        .arg(&steward.ca_path)
        .args(["--platform", platform, "--tsm-path"])
        .arg(tsm)
}

#[test]
fn moat_run_attests_before_the_workload_and_serves_the_stewards_chain() {
    let SnpSetup { steward, tsm, _dir } = snp_setup(
        "run-test",
        "platforms = [\"snp\"]\nworkloads = [\"moat:local:*\"]\n",
    );
    let module = moat_testkit::guests::module("echo-std");
    let workload = local_workload_name(&std::fs::read(&module).unwrap());
    let port = moat_testkit::net::free_port();
    let mut keep = attested_keep(&steward, tsm.path(), "snp", port).spawn();
    keep.wait_for_stdout("listening");

    // The relying party: the chain, the platform and the workload the Steward certified.
    let url = format!("https://127.0.0.1:{port}");
    let check = |extra: &[&str]| verify_keep(&steward, &url, extra);
    let out = check(&["--expect-platform", "snp", "--expect-workload", &workload]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("attested:     true"), "{stdout}");
    // A mismatch is a non-zero exit, not a warning.
    let out = check(&["--expect-workload", "moat:local:0000"]);
    assert!(!out.status.success());

    // The workload itself sees plaintext behind the attested listener.
    let chain = echo_through(port, b"through the attested channel");
    assert!(chain.len() >= 2, "the Keep presents leaf and Steward CA");
    let leaf = chain[0].as_ref();
    assert!(
        leaf.windows(workload.len())
            .any(|w| w == workload.as_bytes()),
        "the leaf names the workload"
    );
    drop(keep);
}

/// Send `message` through the TLS listener on `port` to the echo workload behind it, check that
/// it comes back, and return the chain the listener presented.
fn echo_through(port: u16, message: &[u8]) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use std::io::{Read, Write};
    let (config, captured) = moat_testkit::tls::capturing_client(None);
    let mut tls =
        moat_testkit::tls::connect_blocking(moat_testkit::net::local(port), config, "localhost")
            .unwrap();
    tls.write_all(message).unwrap();
    tls.conn.send_close_notify();
    tls.flush().unwrap();
    let mut back = Vec::new();
    tls.read_to_end(&mut back).unwrap();
    assert_eq!(back, message);
    captured.chain().unwrap()
}

/// The leaf certificate a TLS listener on `port` presents, after a full echo exchange.
fn presented_leaf(port: u16) -> Vec<u8> {
    echo_through(port, b"ping")[0].to_vec()
}

#[test]
fn a_running_keep_renews_its_certificate_before_it_expires() {
    // The shortest lifetime a policy allows: the Keep renews after two thirds of it (~40 s).
    let SnpSetup { steward, tsm, _dir } = snp_setup(
        "renew-test",
        "platforms = [\"snp\"]\nworkloads = [\"moat:local:*\"]\ncertificate_lifetime = \"1m\"\n",
    );
    let port = moat_testkit::net::free_port();
    let mut keep = attested_keep(&steward, tsm.path(), "snp", port)
        .args(["--log-level", "info"])
        .spawn();
    keep.wait_for_stdout("listening");
    let first = presented_leaf(port);

    // The same listener, the same workload run: a new certificate appears within the lifetime.
    let started = std::time::Instant::now();
    let renewed = loop {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(58),
            "no renewal within the certificate's one-minute lifetime"
        );
        std::thread::sleep(std::time::Duration::from_secs(2));
        let leaf = presented_leaf(port);
        if leaf != first {
            break leaf;
        }
    };
    assert!(
        started.elapsed() > std::time::Duration::from_secs(20),
        "renewed far too early: {:?}",
        started.elapsed()
    );
    keep.wait_for_stderr("renewed the Keep's certificate");

    // A fresh key, certified again from fresh evidence, and valid for a relying party.
    let spki = |der: &[u8]| {
        use x509_parser::prelude::{FromDer, X509Certificate};
        let (_, cert) = X509Certificate::from_der(der).unwrap();
        cert.public_key().raw.to_vec()
    };
    assert_ne!(spki(&first), spki(&renewed), "the renewal uses a new key");
    let out = verify_keep(
        &steward,
        &format!("https://127.0.0.1:{port}"),
        &["--expect-platform", "snp"],
    );
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // The Steward goes away: the next renewal fails and is retried, and the workload keeps
    // serving with the certificate it has meanwhile.
    drop(steward);
    keep.wait_for_stderr("renewing the Keep's certificate failed");
    assert_eq!(presented_leaf(port), renewed);
    drop(keep);
}

#[test]
fn a_steward_refusal_stops_the_keep_before_the_workload_starts() {
    // The policy certifies some other workload only.
    let SnpSetup { steward, tsm, _dir } = snp_setup(
        "run-refused",
        "platforms = [\"snp\"]\nworkloads = [\"oci://127.0.0.1:1/only/this\"]\n",
    );
    let port = moat_testkit::net::free_port();
    let done = attested_keep(&steward, tsm.path(), "snp", port).output();
    done.assert_code(125);
    done.assert_stderr_mentions(&["policy.workload"]);
    assert!(
        !done.stdout.contains("listening"),
        "the workload never ran: {}",
        done.stdout
    );

    // nil evidence to an SNP-only Steward: refused, never certified as attested.
    let done = attested_keep(&steward, tsm.path(), "nil", port).output();
    done.assert_code(125);
    done.assert_stderr_mentions(&["platform_not_accepted"]);

    // A Steward that is not there: the Keep stops with the reason; it does not fall back to
    // a self-signed certificate.
    let down = format!("https://127.0.0.1:{}", moat_testkit::net::free_port());
    let done = moat_testkit::process::Moat::run(
        env!("CARGO_BIN_EXE_moat"),
        moat_testkit::guests::module("echo-std"),
    )
    .args(["--steward", &down, "--steward-ca"])
    .arg(&steward.ca_path)
    .args(["--platform", "nil"])
    .output();
    done.assert_code(125);
    done.assert_stderr_mentions(&["Steward"]);
}

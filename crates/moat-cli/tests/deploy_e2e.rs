//! `moat deploy` end to end, every part a real process on loopback: a Steward, Drawbridge over
//! TLS with a private repository whose release policy trusts that Steward, `moat package push`,
//! then `moat deploy`, which must attest first, pull with the certificate it got, check digests,
//! and serve the echo workload over TLS with that certificate, as `moat verify` confirms.
//! Refusals (a policy that does not accept the Keep's platform, a wrong pinned digest) must stop
//! the deploy before anything runs.

mod support {
    pub mod stack;
}

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use support::stack::{self, moat, ok, text};

/// A Steward policy accepting `nil` (this machine has no SNP/TDX) for the demo workloads.
const NIL_POLICY: &str = "allow_insecure_nil = true\nworkloads = [\"oci://127.0.0.1:*/demo/**\"]\n";
/// The same workloads, but only SNP and TDX: a `nil` Keep must be refused.
const HARDWARE_ONLY_POLICY: &str =
    "platforms = [\"snp\", \"tdx\"]\nworkloads = [\"oci://127.0.0.1:*/demo/**\"]\n";

/// Push the echo package (listening on `port`) as `alice`; returns the manifest digest.
fn push_echo(dir: &Path, db: &stack::Drawbridge, port: u16, config_dir: &Path) -> String {
    let envs = [
        ("MOAT_CONFIG_DIR", config_dir),
        ("MOAT_REGISTRY_CA", db.ca.as_path()),
    ];
    ok(&moat(
        &[
            "login",
            &db.server.authority(),
            "--username",
            "alice",
            "--password-stdin",
        ],
        &envs,
        Some(format!("{}\n", db.token).as_bytes()),
    ));
    let pkg = stack::echo_package(dir, port);
    let target = format!("{}/demo/echo:v1", db.server.authority());
    ok(&moat(
        &["package", "push", pkg.to_str().unwrap(), &target],
        &envs,
        None,
    ))
    .trim()
    .to_owned()
}

/// `moat deploy` as a child process with the Steward and registry CA given by environment.
fn deploy(
    reference: &str,
    steward: &stack::Server,
    steward_ca: &Path,
    registry_ca: &Path,
    config_dir: &Path,
) -> std::process::Child {
    Command::new(stack::moat_bin())
        .args(["deploy", reference])
        .env("MOAT_STEWARD", steward.url())
        .env("MOAT_STEWARD_CA", steward_ca)
        .env("MOAT_REGISTRY_CA", registry_ca)
        .env("MOAT_CONFIG_DIR", config_dir)
        // This machine has no SNP/TDX: the Keep attests as `nil` (never reported as attested).
        .env("MOAT_PLATFORM", "nil")
        .env("MOAT_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("moat deploy starts")
}

struct Killed(std::process::Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn deploy_attests_pulls_and_serves_with_the_attested_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (steward, steward_ca) = stack::steward(dir.path(), NIL_POLICY);
    let db = stack::drawbridge(dir.path(), "demo/echo", Some((&steward_ca, &["nil"])));
    let port = moat_testkit::net::free_port();
    let publisher = dir.path().join("publisher-config");
    let digest = push_echo(dir.path(), &db, port, &publisher);
    assert!(digest.starts_with("sha256:"), "{digest}");

    // An anonymous pull of the private package is refused: only the attested Keep gets it.
    let operator = dir.path().join("operator-config");
    let reference = format!("{}/demo/echo@{digest}", db.server.authority());
    let out = moat(
        &[
            "package",
            "pull",
            &reference,
            "-o",
            dir.path().join("anon").to_str().unwrap(),
        ],
        &[
            ("MOAT_CONFIG_DIR", operator.as_path()),
            ("MOAT_REGISTRY_CA", db.ca.as_path()),
        ],
        None,
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "anonymous pull of a private package succeeded"
    );

    // The operator has no credentials: the Keep's certificate alone gets the package.
    let mut keep = Killed(deploy(&reference, &steward, &steward_ca, &db.ca, &operator));
    let addr = moat_testkit::net::local(port);
    if let Err(e) = moat_testkit::net::wait_for_listener(addr, Duration::from_secs(120), || {
        match keep.0.try_wait() {
            Ok(Some(status)) => Err(format!("moat deploy exited with {status}")),
            _ => Ok(()),
        }
    }) {
        let mut stderr = String::new();
        let _ = keep.0.kill();
        let _ = keep.0.stderr.take().unwrap().read_to_string(&mut stderr);
        panic!(
            "{e}\nmoat deploy stderr:\n{stderr}\nsteward:\n{}\ndrawbridge:\n{}",
            steward.stderr(),
            db.server.stderr()
        );
    }

    // The relying party's check: the chain goes to the Steward CA, the workload is the package.
    let workload = format!("oci://{}/demo/echo", db.server.authority());
    let out = moat(
        &[
            "verify",
            &format!("https://127.0.0.1:{port}"),
            "--ca",
            steward_ca.to_str().unwrap(),
            "--expect-platform",
            "nil",
            "--allow-unattested",
            "--expect-workload",
            &workload,
            "--json",
        ],
        &[],
        None,
    );
    let verified = ok(&out);
    assert!(verified.contains(&workload), "{verified}");

    // And the workload itself answers over TLS with that certificate.
    let ca_pem = std::fs::read(&steward_ca).unwrap();
    let ca = rustls_pki_types_from_pem(&ca_pem);
    let config = moat_testkit::tls::ca_client(&ca, None);
    let server_name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut conn = rustls::ClientConnection::new(Arc::clone(&config), server_name).unwrap();
    let mut sock = TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut tls = rustls::Stream::new(&mut conn, &mut sock);
    tls.write_all(b"hello keep").unwrap();
    tls.conn.send_close_notify();
    tls.flush().unwrap();
    let mut echoed = Vec::new();
    let _ = tls.read_to_end(&mut echoed);
    assert_eq!(echoed, b"hello keep");
}

fn rustls_pki_types_from_pem(pem: &[u8]) -> rustls::pki_types::CertificateDer<'static> {
    use rustls::pki_types::pem::PemObject as _;
    rustls::pki_types::CertificateDer::from_pem_slice(pem).expect("a PEM certificate")
}

#[test]
fn deploy_is_refused_when_the_policy_does_not_accept_the_platform() {
    let dir = tempfile::tempdir().unwrap();
    let (steward, steward_ca) = stack::steward(dir.path(), HARDWARE_ONLY_POLICY);
    // Where the registry would be: a listener that records whether anyone connected.
    let registry = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    registry.set_nonblocking(true).unwrap();
    let registry_ca = dir.path().join("unused-ca.pem");
    moat_tls::test_pki::TestCa::new("unused").write_cert_pem(dir.path(), "unused-ca.pem");
    let reference = format!("{}/demo/echo:v1", registry.local_addr().unwrap());
    let child = deploy(&reference, &steward, &steward_ca, &registry_ca, dir.path());
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(125),
        "stderr:\n{}",
        text(&out.stderr)
    );
    let stderr = text(&out.stderr);
    assert!(stderr.contains("attestation"), "{stderr}");
    assert!(!stderr.contains("deploying"), "{stderr}");
    // Nothing was fetched: the registry never saw a connection.
    assert!(
        registry.accept().is_err(),
        "the Keep contacted the registry after a refused attestation"
    );
}

#[test]
fn a_wrong_pinned_digest_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (steward, steward_ca) = stack::steward(dir.path(), NIL_POLICY);
    let db = stack::drawbridge(dir.path(), "demo/echo", Some((&steward_ca, &["nil"])));
    let port = moat_testkit::net::free_port();
    let digest = push_echo(dir.path(), &db, port, &dir.path().join("publisher"));
    // Flip the last hex digit of the real digest.
    let last = digest.chars().last().unwrap();
    let flipped = if last == '0' { '1' } else { '0' };
    let wrong = format!("{}{flipped}", &digest[..digest.len() - 1]);
    let reference = format!("{}/demo/echo@{wrong}", db.server.authority());
    let child = deploy(
        &reference,
        &steward,
        &steward_ca,
        &db.ca,
        &dir.path().join("operator"),
    );
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(125),
        "stderr:\n{}",
        text(&out.stderr)
    );
    let stderr = text(&out.stderr);
    assert!(stderr.contains("pulling"), "{stderr}");
    // The workload never ran: nothing listens on its port.
    assert!(TcpStream::connect(moat_testkit::net::local(port)).is_err());
}

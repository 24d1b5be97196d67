//! The testkit's own pieces, checked without `moat`: the guest build, the TLS clients (capturing,
//! pinning, CA-verifying, mTLS) against the testkit's TLS echo server, and process capture.

use moat_testkit::pki::{self, TestCa};
use moat_testkit::servers::EchoServer;
use moat_testkit::{guests, tls};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[test]
fn every_guest_builds() {
    for name in [
        "echo-std",
        "echo-tokio",
        "echo-mio",
        "chat",
        "tcp-client",
        "stdio-dir",
        "fdinfo",
        "nonblock-poll",
        "spin",
        "membomb",
        "flood",
        "hello",
        "trap",
        "http-echo",
    ] {
        let path = guests::module(name);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..4], b"\0asm", "{}", path.display());
    }
}

async fn roundtrip(
    server: &EchoServer,
    config: std::sync::Arc<rustls::ClientConfig>,
) -> std::io::Result<Vec<u8>> {
    let mut stream = tls::connect(server.addr, config, "localhost").await?;
    stream.write_all(b"ping").await?;
    stream.shutdown().await?;
    let mut back = Vec::new();
    stream.read_to_end(&mut back).await?;
    Ok(back)
}

#[tokio::test]
async fn capturing_then_pinning() {
    let leaf = pki::self_signed_server(&["localhost"]);
    let server = EchoServer::tls(tls::server_config(&leaf, None));
    let (config, captured) = tls::capturing_client(None);
    assert_eq!(roundtrip(&server, config).await.unwrap(), b"ping");
    assert_eq!(&captured.leaf().unwrap(), leaf.leaf());

    let pinned = tls::pinned_client(leaf.leaf().clone(), None);
    assert_eq!(roundtrip(&server, pinned).await.unwrap(), b"ping");
    let other = pki::self_signed_server(&["localhost"]);
    let wrong_pin = tls::pinned_client(other.leaf().clone(), None);
    assert!(roundtrip(&server, wrong_pin).await.is_err());
    assert_eq!(
        server.sni_seen().len(),
        2,
        "the failed pin never completed a handshake"
    );
}

#[tokio::test]
async fn ca_clients_and_mtls() {
    let ca = TestCa::new("test CA");
    let client_ca = TestCa::new("client CA");
    let server = EchoServer::tls(tls::server_config(
        &ca.server_identity(&["localhost", "127.0.0.1"]),
        Some(&client_ca.cert()),
    ));
    let alice = client_ca.client_identity("alice");
    let trusting = tls::ca_client(&ca.cert(), Some(&alice));
    assert_eq!(roundtrip(&server, trusting).await.unwrap(), b"ping");
    let anonymous = tls::ca_client(&ca.cert(), None);
    assert!(roundtrip(&server, anonymous).await.is_err());
    let stranger = tls::ca_client(&TestCa::new("other").cert(), Some(&alice));
    assert!(roundtrip(&server, stranger).await.is_err());
}

#[test]
fn process_capture_and_exit_codes() {
    let done = moat_testkit::process::Moat::command("sh", ["-c", "echo out; echo err >&2; exit 3"])
        .output();
    done.assert_code(3);
    assert_eq!(done.stdout, "out\n");
    done.assert_stderr_mentions(&["err"]);
}

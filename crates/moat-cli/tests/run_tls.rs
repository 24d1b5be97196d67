//! `moat run` with `prot = "tls"`: the host terminates TLS and the workload reads plaintext. Real
//! rustls clients (and `openssl s_client`), 200 concurrent clients, a client stalled mid-handshake
//! while others are served, half-close with close_notify, mTLS accept and reject, and the client
//! guest reaching a TLS server through a `connect` socket with SNI and a CA file.

mod common;

use std::io::{Read, Write};
use std::sync::Arc;

use common::{moat, payload, serve};
use moat_testkit::pki::TestCa;
use moat_testkit::process::Moat;
use moat_testkit::servers::{EchoServer, stalled_handshake};
use moat_testkit::{configs, guests, net, tls};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Send `data` over a fresh TLS connection, half-close with close_notify, and read everything
/// back up to the server's close_notify.
async fn tls_roundtrip(
    port: u16,
    config: Arc<rustls::ClientConfig>,
    data: &[u8],
) -> std::io::Result<Vec<u8>> {
    let stream = tls::connect(net::local(port), config, "localhost").await?;
    let (mut read, mut write) = tokio::io::split(stream);
    let data = data.to_vec();
    let writer = tokio::spawn(async move {
        write.write_all(&data).await?;
        // tokio-rustls sends close_notify on shutdown: the TLS half-close.
        write.shutdown().await?;
        Ok::<_, std::io::Error>(write)
    });
    let mut back = Vec::new();
    // rustls reports a close without close_notify as UnexpectedEof, so Ok here means the Keep
    // closed its side cleanly.
    read.read_to_end(&mut back).await?;
    writer.await.expect("writer task")?;
    Ok(back)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_echo_guest_works_over_tls_with_half_close_and_close_notify() {
    for guest in ["echo-std", "echo-tokio", "echo-mio"] {
        let (_keep, port) = tokio::task::block_in_place(|| serve(guest, "tls"));
        let (config, captured) = tls::capturing_client(None);
        let data = payload(100_000, 7);
        let back = tls_roundtrip(port, config, &data)
            .await
            .unwrap_or_else(|e| panic!("{guest}: {e}"));
        assert_eq!(back, data, "{guest}");
        assert!(
            captured.leaf().is_some(),
            "{guest}: the Keep presented a certificate"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_falls_behind_gets_every_byte_in_order() {
    // 16 MiB echoed to a client that starts reading only after a pause: the Keep's socket
    // fills, so its sends stop half-way (records left in the TLS session, or part of a write
    // taken by the kernel, the rest queued for the pump) and must resume in order once the
    // client reads.
    for (guest, prot) in [
        ("echo-std", "tls"),
        ("echo-tokio", "tls"),
        ("echo-tokio", "tcp"),
        ("echo-mio", "tcp"),
    ] {
        let (_keep, port) = tokio::task::block_in_place(|| serve(guest, prot));
        let data = payload(16 * 1024 * 1024, 3);
        let back = if prot == "tls" {
            let (config, _) = tls::capturing_client(None);
            let stream = tls::connect(net::local(port), config, "localhost")
                .await
                .unwrap_or_else(|e| panic!("{guest}: {e}"));
            echo_with_a_late_reader(stream, &data).await
        } else {
            let stream = tokio::net::TcpStream::connect(net::local(port))
                .await
                .unwrap_or_else(|e| panic!("{guest}: {e}"));
            echo_with_a_late_reader(stream, &data).await
        };
        let back = back.unwrap_or_else(|e| panic!("{guest} over {prot}: {e}"));
        assert!(
            back == data,
            "{guest} over {prot}: {} bytes came back, not the ones sent",
            back.len()
        );
    }
}

/// Write `data` and half-close while reading it back, starting to read only after a pause.
async fn echo_with_a_late_reader<S>(stream: S, data: &[u8]) -> std::io::Result<Vec<u8>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let (mut read, mut write) = tokio::io::split(stream);
    let sent = data.to_vec();
    let writer = tokio::spawn(async move {
        write.write_all(&sent).await?;
        write.shutdown().await
    });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let mut back = Vec::new();
    read.read_to_end(&mut back).await?;
    writer.await.expect("writer task")?;
    Ok(back)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_tls_clients_meet_one_keep_identity() {
    let (_keep, port) = tokio::task::block_in_place(|| serve("echo-tokio", "tls"));
    let (config, captured) = tls::capturing_client(None);
    tls_roundtrip(port, config, b"first")
        .await
        .expect("first client");
    // Every other client accepts only the certificate the first one saw.
    let pinned = tls::pinned_client(captured.leaf().expect("captured"), None);
    let clients: Vec<_> = (0..200u32)
        .map(|i| {
            let pinned = pinned.clone();
            tokio::spawn(async move {
                let data = payload(2048, i as u8);
                let back = tls_roundtrip(port, pinned, &data).await;
                (i, back.map(|b| b == data))
            })
        })
        .collect();
    let mut failures = Vec::new();
    for c in clients {
        match c.await.expect("client task") {
            (_, Ok(true)) => {}
            (i, other) => failures.push(format!("client {i}: {other:?}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failed: {failures:?}",
        failures.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_stalled_mid_handshake_does_not_block_a_sequential_guest() {
    // echo-std accepts one connection at a time: if a handshake ran inside its `accept`, the
    // stalled client would block everyone until the handshake timed out.
    let (_keep, port) = tokio::task::block_in_place(|| serve("echo-std", "tls"));
    let stalled: Vec<_> = (0..3)
        .map(|_| stalled_handshake(net::local(port)))
        .collect();
    let (config, _) = tls::capturing_client(None);
    for i in 0..5u8 {
        let back = tls_roundtrip(port, config.clone(), &[i; 100])
            .await
            .expect("served");
        assert_eq!(back, [i; 100]);
    }
    drop(stalled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_listener_accepts_its_cas_clients_and_rejects_others() {
    let ca = TestCa::new("Moat test client CA");
    let stranger_ca = TestCa::new("Some other CA");
    let port = net::free_port();
    let keep = Moat::run(moat(), guests::module("echo-tokio"));
    let ca_file = ca.write_cert_pem(keep.workdir(), "clients.crt");
    let config = configs::stdio() + &configs::listen_mtls("sock", port, &ca_file);
    let mut keep = keep.config(&config).guest_args(["sock"]).spawn();
    tokio::task::block_in_place(|| keep.wait_for_stdout("listening"));

    let member = ca.client_identity("alice");
    let (config, _) = tls::capturing_client(Some(&member));
    let back = tls_roundtrip(port, config, b"let me in")
        .await
        .expect("alice is served");
    assert_eq!(back, b"let me in");

    // TLS 1.3 reports a rejected client certificate after the client's handshake finished, so a
    // rejection may show up on connect or on the first read; either way nothing is echoed.
    let (anonymous, _) = tls::capturing_client(None);
    let outcome = tls_roundtrip(port, anonymous, b"no cert").await;
    assert!(
        outcome.is_err(),
        "a client without a certificate got {outcome:?}"
    );

    let outsider = stranger_ca.client_identity("mallory");
    let (config, _) = tls::capturing_client(Some(&outsider));
    let outcome = tls_roundtrip(port, config, b"wrong ca").await;
    assert!(outcome.is_err(), "a client of another CA got {outcome:?}");

    // And the listener still serves members afterwards.
    let (config, _) = tls::capturing_client(Some(&member));
    assert_eq!(
        tls_roundtrip(port, config, b"again").await.unwrap(),
        b"again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_over_tls_with_several_clients() {
    let (_keep, port) = tokio::task::block_in_place(|| serve("chat", "tls"));
    let (config, _) = tls::capturing_client(None);
    let mut clients = Vec::new();
    for _ in 0..3 {
        let stream = tls::connect(net::local(port), config.clone(), "localhost")
            .await
            .unwrap();
        let mut lines = tokio::io::BufReader::new(stream);
        let mut welcome = String::new();
        tokio::io::AsyncBufReadExt::read_line(&mut lines, &mut welcome)
            .await
            .unwrap();
        assert!(welcome.starts_with("welcome "), "{welcome:?}");
        clients.push(lines);
    }
    clients[0]
        .get_mut()
        .write_all(b"hello everyone\n")
        .await
        .unwrap();
    for (i, client) in clients.iter_mut().enumerate() {
        let mut line = String::new();
        tokio::io::AsyncBufReadExt::read_line(client, &mut line)
            .await
            .unwrap();
        assert!(line.ends_with(": hello everyone\n"), "client {i}: {line:?}");
    }
}

/// `openssl s_client` (with `extra` arguments) sends `line` to the TLS listener on `port` and
/// must get it back.
fn openssl_echo(port: u16, extra: &[&str], line: &[u8]) {
    let mut child = std::process::Command::new("openssl")
        .args(["s_client", "-quiet", "-verify_quiet"])
        .args(extra)
        .arg("-connect")
        .arg(format!("127.0.0.1:{port}"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("openssl is installed (the CI script installs it)");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(line).unwrap();
    let mut echoed = vec![0u8; line.len()];
    child
        .stdout
        .take()
        .unwrap()
        .read_exact(&mut echoed)
        .expect("the echo");
    assert_eq!(echoed, line);
    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn openssl_s_client_talks_to_a_tls_listener() {
    let (_keep, port) = serve("echo-tokio", "tls");
    openssl_echo(port, &[], b"hello from openssl\n");
}

/// rustls warns about things peers choose to send, such as an IP address as SNI (which
/// `openssl s_client -servername 127.0.0.1` sends). At the default log level that must not reach
/// the Keep's log, or any client could add a line per connection; naming rustls in `MOAT_LOG`
/// brings it back, which also shows the warning really is triggered here.
#[test]
fn a_peer_cannot_make_the_keep_log_at_the_default_level() {
    for (log_filter, warning_expected) in [(None, false), (Some("warn,rustls=warn"), true)] {
        let port = net::free_port();
        let config = configs::stdio() + &configs::listen("sock", "tls", port);
        let mut keep = Moat::run(moat(), guests::module("echo-tokio"))
            .config(&config)
            .guest_args(["sock"]);
        if let Some(filter) = log_filter {
            keep = keep.env("MOAT_LOG", filter);
        }
        let mut keep = keep.spawn();
        keep.wait_for_stdout("listening");
        openssl_echo(port, &["-servername", "127.0.0.1"], b"sni is an address\n");
        let stderr = keep.terminate(moat_testkit::WAIT).stderr;
        assert_eq!(
            stderr.contains("Illegal SNI"),
            warning_expected,
            "MOAT_LOG={log_filter:?}, stderr:\n{stderr}"
        );
    }
}

#[test]
fn client_guest_verifies_a_tls_server_with_sni_and_a_ca_file() {
    let ca = TestCa::new("Moat test server CA");
    let server = EchoServer::tls(tls::server_config(
        &ca.server_identity(&["localhost"]),
        None,
    ));
    let keep = Moat::run(moat(), guests::module("tcp-client"));
    let ca_file = ca.write_cert_pem(keep.workdir(), "server-ca.crt");
    let extra = format!(
        "ca = {}\nplatform_roots = false\n",
        configs::toml_str(&ca_file.to_string_lossy())
    );
    let config = configs::stdio()
        + &configs::connect("upstream", "tls", "localhost", server.addr.port(), &extra);
    let done = keep
        .config(&config)
        .guest_args(["upstream", "hello over tls"])
        .output();
    done.assert_code(0);
    assert!(
        done.stdout.contains("received: hello over tls"),
        "{}",
        done.stdout
    );
    assert_eq!(server.sni_seen(), [Some("localhost".to_owned())]);
}

#[test]
fn client_guest_refuses_a_tls_server_it_does_not_trust() {
    let trusted = TestCa::new("Trusted CA");
    let other = TestCa::new("Untrusted CA");
    let server = EchoServer::tls(tls::server_config(
        &other.server_identity(&["localhost"]),
        None,
    ));
    let keep = Moat::run(moat(), guests::module("tcp-client"));
    let ca_file = trusted.write_cert_pem(keep.workdir(), "trusted.crt");
    let extra = format!(
        "ca = {}\nplatform_roots = false\n",
        configs::toml_str(&ca_file.to_string_lossy())
    );
    let config = configs::stdio()
        + &configs::connect("upstream", "tls", "localhost", server.addr.port(), &extra);
    let done = keep
        .config(&config)
        .guest_args(["upstream", "secret"])
        .output();
    // The failed handshake surfaces on the guest's socket; the guest exits 2.
    done.assert_code(2);
    assert!(done.stdout.contains("socket error"), "{}", done.stdout);
    assert!(server.sni_seen().is_empty(), "no session was established");
}

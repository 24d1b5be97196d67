//! Real TLS handshakes over loopback with the configurations moat-tls builds: server auth,
//! mTLS accepted and rejected, optional client auth, ALPN, and a self-signed Keep identity.

use std::sync::Arc;

use moat_tls::test_pki::TestCa;
use moat_tls::{
    ClientAuth, ClientOptions, Identity, ServerOptions, TrustRoots, client_config, server_config,
    server_name,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// Serve one connection: echo one line back, upper-cased. Returns the server-side outcome
/// (Ok with the peer's certificate count, or the handshake error text).
async fn serve_once(
    listener: TcpListener,
    config: Arc<moat_tls::rustls::ServerConfig>,
) -> Result<usize, String> {
    let (tcp, _) = listener.accept().await.map_err(|e| e.to_string())?;
    let mut tls = TlsAcceptor::from(config)
        .accept(tcp)
        .await
        .map_err(|e| e.to_string())?;
    let peer_certs = tls
        .get_ref()
        .1
        .peer_certificates()
        .map(|c| c.len())
        .unwrap_or(0);
    let mut buf = [0u8; 5];
    tls.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
    tls.write_all(&buf.to_ascii_uppercase())
        .await
        .map_err(|e| e.to_string())?;
    tls.shutdown().await.map_err(|e| e.to_string())?;
    Ok(peer_certs)
}

/// Connect, send "hello", expect "HELLO". Returns the client-side error text on failure.
async fn talk(
    addr: std::net::SocketAddr,
    config: Arc<moat_tls::rustls::ClientConfig>,
    name: &str,
) -> Result<Option<Vec<u8>>, String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let mut tls = TlsConnector::from(config)
        .connect(server_name(name).unwrap(), tcp)
        .await
        .map_err(|e| e.to_string())?;
    tls.write_all(b"hello").await.map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    tls.read_to_end(&mut buf).await.map_err(|e| e.to_string())?;
    assert_eq!(buf, b"HELLO");
    Ok(tls.get_ref().1.alpn_protocol().map(|p| p.to_vec()))
}

async fn run(
    server: Arc<moat_tls::rustls::ServerConfig>,
    client: Arc<moat_tls::rustls::ClientConfig>,
    name: &str,
) -> (Result<usize, String>, Result<Option<Vec<u8>>, String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(serve_once(listener, server));
    let client = talk(addr, client, name).await;
    (server.await.unwrap(), client)
}

/// A server for `localhost` with a certificate from `server_ca`, asking clients for theirs as
/// `client_auth` says.
fn localhost_server(
    server_ca: &TestCa,
    client_auth: ClientAuth,
) -> Arc<moat_tls::rustls::ServerConfig> {
    server_config(
        server_ca.server_identity(&["localhost"]),
        &ServerOptions {
            client_auth,
            ..Default::default()
        },
    )
    .unwrap()
}

#[tokio::test]
async fn server_auth_with_test_ca_and_alpn() {
    let ca = TestCa::new("test CA");
    let server = server_config(
        ca.server_identity(&["localhost", "127.0.0.1"]),
        &ServerOptions {
            alpn: vec![b"h2".to_vec(), b"http/1.1".to_vec()],
            ..Default::default()
        },
    )
    .unwrap();
    let mut options = ClientOptions::new(ca.roots());
    options.alpn = vec![b"http/1.1".to_vec()];
    let client = client_config(&options).unwrap();
    let (served, talked) = run(server.clone(), client.clone(), "localhost").await;
    assert_eq!(served, Ok(0));
    assert_eq!(talked, Ok(Some(b"http/1.1".to_vec())));
    // An IP address SAN verifies too.
    let (served, talked) = run(server, client, "127.0.0.1").await;
    assert_eq!(served, Ok(0));
    assert!(talked.is_ok());
}

#[tokio::test]
async fn wrong_name_and_unknown_ca_are_rejected() {
    let ca = TestCa::new("test CA");
    let other = TestCa::new("other CA");
    let server = server_config(
        ca.server_identity(&["localhost"]),
        &ServerOptions::default(),
    )
    .unwrap();

    let client = client_config(&ClientOptions::new(ca.roots())).unwrap();
    let (_, talked) = run(server.clone(), client, "not-localhost.example").await;
    let err = talked.unwrap_err();
    assert!(
        err.contains("NotValidForName") || err.contains("not valid for"),
        "{err}"
    );

    let client = client_config(&ClientOptions::new(other.roots())).unwrap();
    let (_, talked) = run(server, client, "localhost").await;
    let err = talked.unwrap_err();
    assert!(
        err.contains("UnknownIssuer") || err.contains("unknown issuer"),
        "{err}"
    );
}

#[tokio::test]
async fn self_signed_identity_is_trusted_when_pinned() {
    for algorithm in [
        moat_tls::KeyAlgorithm::EcdsaP256,
        moat_tls::KeyAlgorithm::EcdsaP384,
    ] {
        let keep = Identity::self_signed_with(&["localhost"], algorithm).unwrap();
        let server = server_config(&keep, &ServerOptions::default()).unwrap();
        let client = client_config(&ClientOptions::new(TrustRoots::only(vec![
            keep.leaf().clone(),
        ])))
        .unwrap();
        let (served, talked) = run(server, client, "localhost").await;
        assert_eq!(served, Ok(0));
        assert!(talked.is_ok(), "{talked:?}");
    }
    // Two runs make two different keys.
    let a = Identity::self_signed(&["localhost"]).unwrap();
    let b = Identity::self_signed(&["localhost"]).unwrap();
    assert_ne!(a.leaf(), b.leaf());
}

#[tokio::test]
async fn mtls_required_accepts_good_client_and_rejects_others() {
    let server_ca = TestCa::new("server CA");
    let client_ca = TestCa::new("client CA");
    let rogue_ca = TestCa::new("rogue CA");
    let server = localhost_server(&server_ca, ClientAuth::Required(client_ca.roots()));

    let mut good = ClientOptions::new(server_ca.roots());
    good.identity = Some(client_ca.client_identity("alice").into());
    let (served, talked) = run(server.clone(), client_config(&good).unwrap(), "localhost").await;
    assert_eq!(served, Ok(1));
    assert!(talked.is_ok(), "{talked:?}");

    // No certificate: the server refuses.
    let anonymous = ClientOptions::new(server_ca.roots());
    let (served, talked) = run(
        server.clone(),
        client_config(&anonymous).unwrap(),
        "localhost",
    )
    .await;
    let err = served.unwrap_err();
    assert!(
        err.contains("NoCertificatesPresented") || err.contains("no certificates"),
        "{err}"
    );
    assert!(talked.is_err());

    // A certificate from another CA: refused.
    let mut rogue = ClientOptions::new(server_ca.roots());
    rogue.identity = Some(rogue_ca.client_identity("mallory").into());
    let (served, talked) = run(server, client_config(&rogue).unwrap(), "localhost").await;
    let err = served.unwrap_err();
    assert!(
        err.contains("UnknownIssuer") || err.contains("unknown issuer"),
        "{err}"
    );
    assert!(talked.is_err());
}

#[tokio::test]
async fn mtls_optional_allows_anonymous_but_not_bad_certificates() {
    let server_ca = TestCa::new("server CA");
    let client_ca = TestCa::new("client CA");
    let server = localhost_server(&server_ca, ClientAuth::Optional(client_ca.roots()));
    let anonymous = ClientOptions::new(server_ca.roots());
    let (served, talked) = run(
        server.clone(),
        client_config(&anonymous).unwrap(),
        "localhost",
    )
    .await;
    assert_eq!(served, Ok(0));
    assert!(talked.is_ok());

    let mut rogue = ClientOptions::new(server_ca.roots());
    rogue.identity = Some(TestCa::new("rogue").client_identity("mallory").into());
    let (served, _) = run(server, client_config(&rogue).unwrap(), "localhost").await;
    assert!(served.is_err());
}

#[tokio::test]
async fn pem_round_trip_keeps_a_working_identity() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("test CA");
    let identity = ca.server_identity(&["localhost"]);
    let (chain_path, key_path) = (dir.path().join("chain.pem"), dir.path().join("key.pem"));
    identity.save_pem(&chain_path, &key_path).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "key file readable by others: {mode:o}");
    }
    let loaded = Identity::load_pem(&chain_path, &key_path).unwrap();
    assert_eq!(loaded.chain(), identity.chain());
    let server = server_config(&loaded, &ServerOptions::default()).unwrap();
    let ca_file = ca.write_cert_pem(dir.path(), "ca.pem");
    let roots = TrustRoots::only_pem_file(&ca_file).unwrap();
    let (served, talked) = run(
        server,
        client_config(&ClientOptions::new(roots)).unwrap(),
        "localhost",
    )
    .await;
    assert_eq!(served, Ok(0));
    assert!(talked.is_ok());
}

#[tokio::test]
async fn servers_speak_tls13_and_still_accept_tls12_clients() {
    let ca = TestCa::new("test CA");
    let server = server_config(
        ca.server_identity(&["localhost"]),
        &ServerOptions::default(),
    )
    .unwrap();
    for (versions, expected) in [
        (
            &[
                &moat_tls::rustls::version::TLS13,
                &moat_tls::rustls::version::TLS12,
            ][..],
            moat_tls::rustls::ProtocolVersion::TLSv1_3,
        ),
        (
            &[&moat_tls::rustls::version::TLS12][..],
            moat_tls::rustls::ProtocolVersion::TLSv1_2,
        ),
    ] {
        // A client built outside moat-tls, limited to the given versions.
        let client = moat_tls::rustls::ClientConfig::builder_with_provider(moat_tls::provider())
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(ca.roots().root_store().unwrap())
            .with_no_client_auth();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let served = tokio::spawn(serve_once(listener, server.clone()));
        let tcp = TcpStream::connect(addr).await.unwrap();
        let mut tls = TlsConnector::from(Arc::new(client))
            .connect(server_name("localhost").unwrap(), tcp)
            .await
            .unwrap();
        assert_eq!(tls.get_ref().1.protocol_version(), Some(expected));
        tls.write_all(b"hello").await.unwrap();
        let mut buf = Vec::new();
        tls.read_to_end(&mut buf).await.unwrap();
        assert_eq!(buf, b"HELLO");
        assert_eq!(served.await.unwrap(), Ok(0));
    }
}

#[tokio::test]
async fn a_replaced_live_identity_is_presented_by_configs_made_before() {
    let first = Identity::self_signed(&["localhost"]).unwrap();
    let second = Identity::self_signed(&["localhost"]).unwrap();
    let live = moat_tls::LiveIdentity::new(first.clone());
    let server = server_config(&live, &ServerOptions::default()).unwrap();
    let trusting = |id: &Identity| {
        client_config(&ClientOptions::new(TrustRoots::only(vec![
            id.leaf().clone(),
        ])))
        .unwrap()
    };

    let (_, talked) = run(server.clone(), trusting(&first), "localhost").await;
    assert!(talked.is_ok(), "{talked:?}");

    // The same server config, after the replacement: only the new certificate is presented.
    live.replace(second.clone());
    let (_, talked) = run(server.clone(), trusting(&first), "localhost").await;
    assert!(
        talked.is_err(),
        "the old certificate is no longer presented"
    );
    let (_, talked) = run(server, trusting(&second), "localhost").await;
    assert!(talked.is_ok(), "{talked:?}");
    assert_eq!(live.current().leaf(), second.leaf());
}

#[tokio::test]
async fn a_replaced_live_identity_is_the_client_certificate_too() {
    let client_ca = TestCa::new("client CA");
    let server_ca = TestCa::new("server CA");
    let server = localhost_server(&server_ca, ClientAuth::Required(client_ca.roots()));
    let rogue = TestCa::new("rogue").client_identity("mallory");
    let live = moat_tls::LiveIdentity::new(rogue);
    let mut options = ClientOptions::new(server_ca.roots());
    options.identity = Some(live.clone());
    let client = client_config(&options).unwrap();
    let (served, _) = run(server.clone(), client.clone(), "localhost").await;
    assert!(served.is_err(), "a certificate from another CA is refused");

    live.replace(client_ca.client_identity("alice"));
    let (served, talked) = run(server, client, "localhost").await;
    assert_eq!(served, Ok(1), "{talked:?}");
}

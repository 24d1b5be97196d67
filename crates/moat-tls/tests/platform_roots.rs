//! The platform store plus extra CAs. This test points the platform store (SSL_CERT_FILE, which
//! rustls-native-certs honours) at a test CA, so it lives alone in its own test binary: the
//! environment and the once-loaded platform roots are process-wide.

use moat_tls::test_pki::TestCa;
use moat_tls::{
    ClientOptions, ServerOptions, TrustRoots, client_config, server_config, server_name,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn platform_roots_and_extra_ca_both_verify() {
    let dir = tempfile::tempdir().unwrap();
    let platform_ca = TestCa::new("platform CA");
    let extra_ca = TestCa::new("extra CA");
    let bundle = platform_ca.write_cert_pem(dir.path(), "bundle.pem");
    let extra = extra_ca.write_cert_pem(dir.path(), "extra.pem");
    // Set before anything in this process reads the platform store.
    unsafe_env_set("SSL_CERT_FILE", &bundle);

    let mut roots = TrustRoots::platform();
    roots.add_pem_file(&extra).unwrap();
    let client = client_config(&ClientOptions::new(roots)).unwrap();
    for ca in [&platform_ca, &extra_ca] {
        let server = server_config(
            ca.server_identity(&["localhost"]),
            &ServerOptions::default(),
        )
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accept = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut tls = tokio_rustls::TlsAcceptor::from(server)
                .accept(tcp)
                .await
                .unwrap();
            tls.write_all(b"ok").await.unwrap();
            tls.shutdown().await.unwrap();
        });
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut tls = tokio_rustls::TlsConnector::from(client.clone())
            .connect(server_name("localhost").unwrap(), tcp)
            .await
            .unwrap();
        let mut buf = Vec::new();
        tls.read_to_end(&mut buf).await.unwrap();
        assert_eq!(buf, b"ok");
        accept.await.unwrap();
    }
    // A CA in neither set is refused.
    let stranger = TestCa::new("stranger");
    let server = server_config(
        stranger.server_identity(&["localhost"]),
        &ServerOptions::default(),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let _ = tokio_rustls::TlsAcceptor::from(server).accept(tcp).await;
    });
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let result = tokio_rustls::TlsConnector::from(client)
        .connect(server_name("localhost").unwrap(), tcp)
        .await;
    assert!(result.is_err());
}

fn unsafe_env_set(key: &str, value: &std::path::Path) {
    #[allow(unsafe_code)]
    // SAFETY: this test binary has one test, and it sets the variable before starting any task
    // or thread that reads the environment.
    unsafe {
        std::env::set_var(key, value)
    };
}

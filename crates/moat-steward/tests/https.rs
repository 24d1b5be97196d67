//! The Steward's own HTTPS certificate over a real loopback socket: signed by its CA and
//! re-issued before it expires, so a long-running Steward keeps a valid one.

use std::sync::Arc;
use std::time::Duration;

use moat_steward::api::{ApiLimits, router};
use moat_steward::ca::generate_ca;
use moat_steward::server::{ConnLimits, serve, tls_config_from_ca_with_lifetime};
use moat_steward::{CertificateAuthority, Policy, StewardBuilder};
use rustls_pki_types::{CertificateDer, ServerName};

/// The leaf the server presents, after a handshake verified against `ca` alone.
async fn presented_leaf(addr: std::net::SocketAddr, ca: &CertificateDer<'static>) -> Vec<u8> {
    let config = moat_testkit::tls::ca_client(ca, None);
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .expect("a handshake verified against the Steward CA");
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

#[tokio::test]
async fn the_self_issued_https_certificate_is_reissued_before_it_expires() {
    let (cert, key) = generate_ca("test CA").unwrap();
    let ca = CertificateAuthority::from_pem(&cert, &key).unwrap();
    let ca_der = ca.cert_der().clone();
    let policy = Policy::from_toml("workloads = [\"moat:local:*\"]\n").unwrap();
    let steward = Arc::new(StewardBuilder::new(ca, policy).build());
    // Three seconds of validity: re-issued on the first handshake after two.
    let tls =
        tls_config_from_ca_with_lifetime(&steward, &["127.0.0.1".into()], Duration::from_secs(3))
            .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(
        listener,
        tls,
        router(steward.clone(), ApiLimits::default()),
        ConnLimits::default(),
        steward,
        std::future::pending(),
    ));

    let first = presented_leaf(addr, &ca_der).await;
    assert_eq!(
        presented_leaf(addr, &ca_der).await,
        first,
        "not re-issued on every handshake"
    );
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let second = presented_leaf(addr, &ca_der).await;
    assert_ne!(second, first, "re-issued after two thirds of its lifetime");
    assert_eq!(presented_leaf(addr, &ca_der).await, second);
}

//! Drawbridge throughput next to raw loopback TLS, measured side by side in one run.
//!
//! `cargo bench -p moat-drawbridge --bench registry` (env `BENCH_BLOB_MIB`, default 256;
//! `BENCH_MANIFEST_REQUESTS`, default 5000). It starts the real server (HTTPS on 127.0.0.1,
//! data in a temporary directory) and drives it with an HTTP/1.1 client over TLS:
//!
//! 1. push one blob of BENCH_BLOB_MIB (monolithic `POST ?digest=`: hashed, fsynced, committed)
//!    vs. writing the same bytes over a raw TLS connection to a sink;
//! 2. pull it back vs. reading the same bytes from a raw TLS source;
//! 3. `GET` a small manifest repeatedly on one keep-alive connection vs. a raw TLS ping-pong of
//!    the same request and response bytes.
//!
//! The ratios are what the registry (HTTP, auth, SQLite, file I/O, hashing) adds over TLS.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use moat_drawbridge::{Registry, RegistryConfig, server};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use sha2::Digest as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CHUNK: usize = 256 * 1024;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Pki {
    ca: CertificateDer<'static>,
    chain: Vec<CertificateDer<'static>>,
    key: Vec<u8>,
}

fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    Pki {
        ca: ca.der().clone(),
        chain: vec![leaf.der().clone()],
        key: key.serialize_der(),
    }
}

fn client_config(ca: &CertificateDer<'static>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth(),
    )
}

async fn connect(
    addr: SocketAddr,
    config: &Arc<rustls::ClientConfig>,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    tokio_rustls::TlsConnector::from(config.clone())
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap()
}

type Sender = hyper::client::conn::http1::SendRequest<
    http_body_util::combinators::BoxBody<Bytes, std::convert::Infallible>,
>;

async fn http_client(addr: SocketAddr, config: &Arc<rustls::ClientConfig>) -> Sender {
    let tls = connect(addr, config).await;
    let (sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

fn request(
    method: &str,
    uri: &str,
    token: &str,
    body: http_body_util::combinators::BoxBody<Bytes, std::convert::Infallible>,
) -> http::Request<http_body_util::combinators::BoxBody<Bytes, std::convert::Infallible>> {
    http::Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "localhost")
        .header("authorization", format!("Bearer {token}"))
        .body(body)
        .unwrap()
}

fn empty_body() -> http_body_util::combinators::BoxBody<Bytes, std::convert::Infallible> {
    Full::new(Bytes::new()).boxed()
}

/// A stream of `total` bytes of `chunk` (the same bytes for the registry and the raw baseline).
fn stream_body(
    chunk: Bytes,
    total: usize,
) -> http_body_util::combinators::BoxBody<Bytes, std::convert::Infallible> {
    let count = total / chunk.len();
    let frames = futures::stream::iter(
        (0..count).map(move |_| Ok::<_, std::convert::Infallible>(Frame::data(chunk.clone()))),
    );
    StreamBody::new(frames).boxed()
}

/// Raw TLS baselines: a sink (reads N bytes, answers one byte), a source (writes N bytes),
/// and a ping-pong (reads `req` bytes, writes `resp` bytes, repeatedly).
async fn raw_server(pki: &Pki) -> SocketAddr {
    let config = server::tls_config(
        pki.chain.clone(),
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.key.clone())),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            tcp.set_nodelay(true).unwrap();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let mut tls = acceptor.accept(tcp).await.unwrap();
                // Protocol: 1 byte mode, 8 bytes a, 8 bytes b.
                let mode = tls.read_u8().await.unwrap();
                let a = tls.read_u64().await.unwrap() as usize;
                let b = tls.read_u64().await.unwrap() as usize;
                let mut buf = vec![0u8; CHUNK.max(a)];
                match mode {
                    b's' => {
                        let mut left = a;
                        while left > 0 {
                            let n = tls.read(&mut buf[..CHUNK.min(left)]).await.unwrap();
                            assert!(n > 0);
                            left -= n;
                        }
                        tls.write_all(b"k").await.unwrap();
                    }
                    b'o' => {
                        let chunk = vec![7u8; CHUNK];
                        let mut left = a;
                        while left > 0 {
                            let n = CHUNK.min(left);
                            tls.write_all(&chunk[..n]).await.unwrap();
                            tls.flush().await.unwrap();
                            left -= n;
                        }
                    }
                    _ => {
                        let resp = vec![b'r'; b];
                        loop {
                            if tls.read_exact(&mut buf[..a]).await.is_err() {
                                break;
                            }
                            tls.write_all(&resp).await.unwrap();
                            tls.flush().await.unwrap();
                        }
                    }
                }
                let _ = tls.flush().await;
                let _ = tls.shutdown().await;
            });
        }
    });
    addr
}

fn mib_s(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / d.as_secs_f64()
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; nothing else is expected.
    let blob_mib = env_usize("BENCH_BLOB_MIB", 256);
    let requests = env_usize("BENCH_MANIFEST_REQUESTS", 5000);
    let total = blob_mib * 1024 * 1024;
    let pki = pki();
    let client = client_config(&pki.ca);

    // The registry.
    let dir = tempfile::tempdir().unwrap();
    let listener = server::bind("127.0.0.1:0".parse().unwrap(), true)
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config = RegistryConfig::new(dir.path(), addr.to_string());
    config.new_repos_private = true;
    let registry = Registry::open(config.clone()).await.unwrap();
    let token = moat_drawbridge::auth::generate_token().unwrap();
    {
        let db = moat_drawbridge::meta::Db::open(&config.db_path()).unwrap();
        db.user_add("bench").unwrap();
        db.token_insert(&token.id, "bench", &token.hash, "*:pull,push")
            .unwrap();
    }
    let tls = server::tls_config(
        pki.chain.clone(),
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.key.clone())),
    )
    .unwrap();
    tokio::spawn(server::serve(
        listener,
        Some(tls),
        registry,
        std::future::pending(),
    ));
    let raw = raw_server(&pki).await;

    let chunk = Bytes::from(vec![7u8; CHUNK]);
    let mut hasher = sha2::Sha256::new();
    for _ in 0..total / CHUNK {
        hasher.update(&chunk);
    }
    let digest = format!("sha256:{}", hex::encode(hasher.finalize()));

    // 1. Push.
    let t = Instant::now();
    let mut tls = connect(raw, &client).await;
    tls.write_u8(b's').await.unwrap();
    tls.write_u64(total as u64).await.unwrap();
    tls.write_u64(0).await.unwrap();
    for _ in 0..total / CHUNK {
        tls.write_all(&chunk).await.unwrap();
    }
    tls.flush().await.unwrap();
    assert_eq!(tls.read_u8().await.unwrap(), b'k');
    let raw_push = t.elapsed();

    let t = Instant::now();
    let mut sender = http_client(addr, &client).await;
    let resp = sender
        .send_request(request(
            "POST",
            &format!("/v2/bench/blob/blobs/uploads/?digest={digest}"),
            &token.secret,
            stream_body(chunk.clone(), total),
        ))
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let reg_push = t.elapsed();

    // 2. Pull.
    let t = Instant::now();
    let mut tls = connect(raw, &client).await;
    tls.write_u8(b'o').await.unwrap();
    tls.write_u64(total as u64).await.unwrap();
    tls.write_u64(0).await.unwrap();
    tls.flush().await.unwrap();
    let mut buf = vec![0u8; CHUNK];
    let mut got = 0;
    while got < total {
        let n = tls.read(&mut buf).await.unwrap();
        assert!(n > 0);
        got += n;
    }
    let raw_pull = t.elapsed();

    let t = Instant::now();
    let mut sender = http_client(addr, &client).await;
    let resp = sender
        .send_request(request(
            "GET",
            &format!("/v2/bench/blob/blobs/{digest}"),
            &token.secret,
            empty_body(),
        ))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let mut got = 0;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            got += data.len();
        }
    }
    assert_eq!(got, total);
    let reg_pull = t.elapsed();

    // 3. Small manifests.
    let config_blob = Bytes::from_static(b"{}");
    let cdigest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&config_blob)));
    let mut sender = http_client(addr, &client).await;
    let r = sender
        .send_request(request(
            "POST",
            &format!("/v2/bench/small/blobs/uploads/?digest={cdigest}"),
            &token.secret,
            Full::new(config_blob).boxed(),
        ))
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": cdigest, "size": 2},
        "layers": []
    }))
    .unwrap();
    let mut put = request(
        "PUT",
        "/v2/bench/small/manifests/v1",
        &token.secret,
        Full::new(Bytes::from(manifest.clone())).boxed(),
    );
    put.headers_mut().insert(
        "content-type",
        "application/vnd.oci.image.manifest.v1+json"
            .parse()
            .unwrap(),
    );
    sender.ready().await.unwrap();
    assert_eq!(sender.send_request(put).await.unwrap().status(), 201);

    let get = || {
        let mut r = request(
            "GET",
            "/v2/bench/small/manifests/v1",
            &token.secret,
            empty_body(),
        );
        r.headers_mut().insert(
            "accept",
            "application/vnd.oci.image.manifest.v1+json"
                .parse()
                .unwrap(),
        );
        r
    };
    let t = Instant::now();
    let mut sender = http_client(addr, &client).await;
    let mut response_bytes = 0;
    for _ in 0..requests {
        sender.ready().await.unwrap();
        let resp = sender.send_request(get()).await.unwrap();
        assert_eq!(resp.status(), 200);
        response_bytes = resp.into_body().collect().await.unwrap().to_bytes().len();
    }
    let reg_small = t.elapsed();
    assert_eq!(response_bytes, manifest.len());

    // The same request and response sizes as the registry exchange (headers included, roughly:
    // request line + headers ~ 200 bytes, response headers ~ 250 bytes + body).
    let req_len = 220;
    let resp_len = 250 + manifest.len();
    let t = Instant::now();
    let mut tls = connect(raw, &client).await;
    tls.write_u8(b'p').await.unwrap();
    tls.write_u64(req_len as u64).await.unwrap();
    tls.write_u64(resp_len as u64).await.unwrap();
    let req = vec![b'q'; req_len];
    let mut resp = vec![0u8; resp_len];
    for _ in 0..requests {
        tls.write_all(&req).await.unwrap();
        tls.flush().await.unwrap();
        tls.read_exact(&mut resp).await.unwrap();
    }
    let raw_small = t.elapsed();

    println!(
        "## Drawbridge benchmark ({blob_mib} MiB blob, {requests} manifest GETs, one client, loopback TLS 1.3)"
    );
    println!("| measure | raw TLS | Drawbridge | Drawbridge / raw |");
    println!("|---|---|---|---|");
    println!(
        "| push {blob_mib} MiB | {:.0} MiB/s | {:.0} MiB/s | {:.2} |",
        mib_s(total, raw_push),
        mib_s(total, reg_push),
        raw_push.as_secs_f64() / reg_push.as_secs_f64()
    );
    println!(
        "| pull {blob_mib} MiB | {:.0} MiB/s | {:.0} MiB/s | {:.2} |",
        mib_s(total, raw_pull),
        mib_s(total, reg_pull),
        raw_pull.as_secs_f64() / reg_pull.as_secs_f64()
    );
    println!(
        "| manifest GET ({} B) | {:.0} req/s | {:.0} req/s | {:.2} |",
        manifest.len(),
        requests as f64 / raw_small.as_secs_f64(),
        requests as f64 / reg_small.as_secs_f64(),
        raw_small.as_secs_f64() / reg_small.as_secs_f64()
    );
}

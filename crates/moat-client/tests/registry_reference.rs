//! The registry client against a real, independent OCI registry: Debian's `docker-registry`
//! (CNCF distribution 2.8) run as a process on loopback with real TLS (and mTLS where a test
//! needs it). Covers pushes (monolithic, chunked, resumed after a connection is cut mid-chunk),
//! mounts, manifests, tags with paging, typed OCI errors, and pulls that refuse corrupted blobs
//! without leaving a file behind.

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::Bytes;
use moat_client::package::{self, LocalPackage, PackageKind, Reference};
use moat_client::registry::{
    ClientIdentity, ClientOptions, Descriptor, Digest, NoProgress, RegistryClient, RegistryError,
    TlsOptions,
};
use moat_tls::test_pki::TestCa;

/// A `docker-registry` process with its own TLS certificate and storage; killed on drop.
struct Registry {
    child: Child,
    addr: String,
    dir: tempfile::TempDir,
    ca: Arc<TestCa>,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Registry {
    fn start(require_client_certs: bool) -> Registry {
        Self::start_with(
            Arc::new(TestCa::new("registry test CA")),
            require_client_certs,
            "",
        )
    }

    /// A registry whose certificate `ca` signs; `extra` is appended to its config (e.g. `auth`).
    fn start_with(ca: Arc<TestCa>, require_client_certs: bool, extra: &str) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let server = ca.server_identity(&["127.0.0.1", "localhost"]);
        let (chain, key) = server.to_pem();
        std::fs::write(dir.path().join("cert.pem"), chain).unwrap();
        std::fs::write(dir.path().join("key.pem"), key).unwrap();
        let ca_path = ca.write_cert_pem(dir.path(), "ca.pem");
        let client_cas = if require_client_certs {
            format!("    clientcas:\n      - {}\n", ca_path.display())
        } else {
            String::new()
        };
        let config = format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {root}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:0\n  secret: test-only-secret\n  tls:\n    certificate: {d}/cert.pem\n    key: {d}/key.pem\n{client_cas}{extra}",
            root = dir.path().join("data").display(),
            d = dir.path().display(),
        );
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let mut child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("docker-registry (Debian package docker-registry) must be installed; .ci/run installs it");
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let addr = loop {
            let line = lines
                .next()
                .expect("docker-registry exited before listening")
                .unwrap();
            if let Some(rest) = line.split("listening on ").nth(1) {
                break rest.split([',', '"']).next().unwrap().to_owned();
            }
        };
        // Keep draining its log so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines.by_ref() {});
        Registry {
            child,
            addr,
            dir,
            ca,
        }
    }

    fn options(&self) -> ClientOptions {
        ClientOptions::new(TlsOptions::with_roots(vec![self.ca.cert()]))
    }

    fn client(&self) -> RegistryClient {
        RegistryClient::new(&self.addr, self.options()).unwrap()
    }

    fn blob_data_path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs")
            .join(digest.algorithm().name())
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

fn module(size: usize) -> Vec<u8> {
    let mut bytes = b"\0asm\x01\0\0\0".to_vec();
    // A custom section padding the module to `size` bytes of varied content.
    bytes.extend((0..size.saturating_sub(8)).map(|i| (i * 31 % 251) as u8));
    bytes
}

fn package_dir(module_bytes: &[u8], config: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("main.wasm"), module_bytes).unwrap();
    std::fs::write(dir.path().join("Moat.toml"), config).unwrap();
    dir
}

#[tokio::test]
async fn moat_package_round_trip() {
    let registry = Registry::start(false);
    let client = registry.client();
    client.ping().await.unwrap();
    let src = package_dir(&module(5000), "args = [\"hello\"]\n");
    let built = LocalPackage::from_path(src.path(), None).unwrap().build();
    let reference: Reference = format!("{}/demo/echo:v1", registry.addr).parse().unwrap();
    let digest = built.push(&client, &reference, &NoProgress).await.unwrap();
    assert_eq!(digest, built.digest);

    // Pushing again uploads nothing new and gives the same digest.
    assert_eq!(
        built.push(&client, &reference, &NoProgress).await.unwrap(),
        digest
    );

    let pulled = package::pull(&client, &reference.pinned(digest.clone()), &NoProgress)
        .await
        .unwrap();
    assert_eq!(pulled.remote.kind, PackageKind::Moat);
    assert_eq!(pulled.remote.digest, digest);
    assert_eq!(pulled.module, built.blobs[1].1);
    assert_eq!(pulled.config.unwrap().text(), "args = [\"hello\"]\n");
    // Manifests come back byte for byte.
    assert_eq!(pulled.remote.manifest_bytes, built.manifest_bytes);

    let out = tempfile::tempdir().unwrap();
    let (_, files) = package::pull_to_dir(&client, &reference, out.path(), &NoProgress)
        .await
        .unwrap();
    assert_eq!(files.len(), 2);
    assert_eq!(
        std::fs::read(out.path().join("main.wasm")).unwrap(),
        module(5000)
    );
    assert_eq!(
        std::fs::read_to_string(out.path().join("Moat.toml")).unwrap(),
        "args = [\"hello\"]\n"
    );

    // A CNCF artifact: a module without a config.
    let wasm = tempfile::tempdir().unwrap();
    std::fs::write(wasm.path().join("app.wasm"), module(100)).unwrap();
    let artifact = LocalPackage::from_path(&wasm.path().join("app.wasm"), None)
        .unwrap()
        .build();
    let art_ref: Reference = format!("{}/demo/plain:1", registry.addr).parse().unwrap();
    artifact.push(&client, &art_ref, &NoProgress).await.unwrap();
    let pulled = package::pull(&client, &art_ref, &NoProgress).await.unwrap();
    assert_eq!(pulled.remote.kind, PackageKind::WasmArtifact);
    assert!(pulled.config.is_none());
}

#[tokio::test]
async fn chunked_uploads_mounts_and_tags() {
    let registry = Registry::start(false);
    let mut options = registry.options();
    options.monolithic_limit = 1024;
    options.chunk_size = 1000;
    let client = RegistryClient::new(&registry.addr, options).unwrap();
    let data = Bytes::from(module(10_500));
    let digest = Digest::sha256_of(&data);
    client
        .push_blob("chunky/a", &digest, &data, &NoProgress)
        .await
        .unwrap();
    assert_eq!(
        client.blob_size("chunky/a", &digest).await.unwrap(),
        Some(10_500)
    );
    let desc = Descriptor::of("application/octet-stream", &data);
    assert_eq!(
        client
            .pull_blob("chunky/a", &desc, 1 << 20, &NoProgress)
            .await
            .unwrap(),
        data
    );

    // Mount into another repository without uploading.
    assert_eq!(client.blob_size("chunky/b", &digest).await.unwrap(), None);
    assert!(
        client
            .mount_blob("chunky/b", &digest, "chunky/a")
            .await
            .unwrap()
    );
    assert_eq!(
        client.blob_size("chunky/b", &digest).await.unwrap(),
        Some(10_500)
    );
    // A mount from a repository that lacks the blob is declined, not an error.
    let other = Digest::sha256_of(b"not pushed anywhere");
    assert!(
        !client
            .mount_blob("chunky/c", &other, "chunky/a")
            .await
            .unwrap()
    );

    // Tags, in pages.
    let src = package_dir(&module(64), "");
    let built = LocalPackage::from_path(src.path(), None).unwrap().build();
    for tag in ["v1", "v2", "v3"] {
        let r: Reference = format!("{}/chunky/a:{tag}", registry.addr).parse().unwrap();
        built.push(&client, &r, &NoProgress).await.unwrap();
    }
    // distribution 2.8 ignores `n`/`last` (paging is checked against Drawbridge); the list
    // itself must be complete and in lexical order.
    let page = client.tags("chunky/a", None, None).await.unwrap();
    assert_eq!(page.name, "chunky/a");
    assert_eq!(page.tags, ["v1", "v2", "v3"]);
    let err = client.tags("chunky/none", None, None).await.unwrap_err();
    assert_eq!(err.oci_code(), Some("NAME_UNKNOWN"), "{err}");
}

#[tokio::test]
async fn registry_errors_are_typed() {
    let registry = Registry::start(false);
    let client = registry.client();
    let missing = Digest::sha256_of(b"missing");
    let desc = Descriptor::of("application/wasm", b"missing");
    let err = client
        .pull_blob("demo/none", &desc, 1 << 20, &NoProgress)
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert_eq!(err.oci_code(), Some("BLOB_UNKNOWN"), "{err}");
    let err = client
        .pull_manifest(
            "demo/none",
            "v1",
            &["application/vnd.oci.image.manifest.v1+json"],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err.oci_code(), Some("MANIFEST_UNKNOWN" | "NAME_UNKNOWN")),
        "{err}"
    );
    let err = client
        .pull_manifest(
            "demo/none",
            &missing.to_string(),
            &["application/vnd.oci.image.manifest.v1+json"],
        )
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
    // A manifest naming blobs the registry does not have is refused by the registry.
    let err = client
        .push_manifest(
            "demo/none",
            "v1",
            "application/vnd.oci.image.manifest.v1+json",
            Bytes::from_static(br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#),
        )
        .await
        .unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(400), "{err}");
    assert!(err.oci_code().is_some(), "{err}");
    // A blob whose bytes do not hash to the digest given is never sent.
    let err = client
        .push_blob(
            "demo/none",
            &missing,
            &Bytes::from_static(b"other"),
            &NoProgress,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::DigestMismatch { .. }), "{err}");
}

#[tokio::test]
async fn corrupted_blobs_are_refused_and_leave_no_file() {
    let registry = Registry::start(false);
    let client = registry.client();
    let src = package_dir(&module(4096), "");
    let built = LocalPackage::from_path(src.path(), None).unwrap().build();
    let reference: Reference = format!("{}/demo/corrupt:v1", registry.addr)
        .parse()
        .unwrap();
    built.push(&client, &reference, &NoProgress).await.unwrap();

    // Flip one byte of the module in the registry's storage: same size, wrong content.
    let module_desc = &built.manifest.layers[0];
    let data_path = registry.blob_data_path(&module_desc.digest);
    let mut stored = std::fs::read(&data_path).unwrap();
    stored[100] ^= 0x01;
    std::fs::write(&data_path, &stored).unwrap();

    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("main.wasm");
    let err = client
        .pull_blob_to_file("demo/corrupt", module_desc, &dest, &NoProgress)
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::DigestMismatch { .. }), "{err}");
    assert_eq!(
        std::fs::read_dir(out.path()).unwrap().count(),
        0,
        "a file was left behind"
    );

    let err = package::pull(&client, &reference, &NoProgress)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("digest mismatch"), "{err}");
    let err = package::pull_to_dir(&client, &reference, out.path(), &NoProgress)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("digest mismatch"), "{err}");
    assert!(!out.path().join("main.wasm").exists());

    // Truncated content (shorter than the descriptor says) is refused too.
    std::fs::write(&data_path, &stored[..1000]).unwrap();
    let err = client
        .pull_blob_to_file("demo/corrupt", module_desc, &dest, &NoProgress)
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::SizeMismatch { .. }), "{err}");
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);

    // Pinning the wrong digest fails before any blob is fetched.
    let wrong = reference.pinned(Digest::sha256_of(b"some other manifest"));
    assert!(package::pull(&client, &wrong, &NoProgress).await.is_err());
}

#[tokio::test]
async fn mtls_presents_the_client_identity_and_checks_the_server() {
    let registry = Registry::start(true);
    // Without a client certificate the registry refuses the handshake.
    let err = registry.client().ping().await.unwrap_err();
    assert!(matches!(err, RegistryError::Connect { .. }), "{err}");
    // With one from the CA it requires, everything works.
    let identity = registry.ca.client_identity("keep");
    let tls = TlsOptions::with_roots(vec![registry.ca.cert()])
        .client_identity(ClientIdentity::from(&identity));
    let client = RegistryClient::new(&registry.addr, ClientOptions::new(tls)).unwrap();
    client.ping().await.unwrap();
    // A client that trusts another CA refuses the registry's certificate.
    let stranger = TestCa::new("someone else");
    let tls = TlsOptions::with_roots(vec![stranger.cert()])
        .client_identity(ClientIdentity::from(&identity));
    let client = RegistryClient::new(&registry.addr, ClientOptions::new(tls)).unwrap();
    let err = client.ping().await.unwrap_err();
    assert!(matches!(err, RegistryError::Connect { .. }), "{err}");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );
}

/// A TCP relay in front of the registry that cuts the first connection carrying more than
/// `cut_after` bytes towards the registry, so an upload dies mid-chunk exactly once.
async fn cutting_relay(upstream: String, cut_after: u64) -> (String, Arc<AtomicBool>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let cut_done = Arc::new(AtomicBool::new(false));
    let flag = cut_done.clone();
    tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else {
                return;
            };
            let upstream = upstream.clone();
            let flag = flag.clone();
            tokio::spawn(async move {
                let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                    return;
                };
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let sent = Arc::new(AtomicU64::new(0));
                let up = async {
                    let mut buf = vec![0u8; 16 * 1024];
                    loop {
                        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
                        let n = match cr.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        let total = sent.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
                        if total > cut_after && !flag.swap(true, Ordering::SeqCst) {
                            return; // drop both directions: the connection dies mid-request
                        }
                        if sw.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                };
                let down = async {
                    let _ = tokio::io::copy(&mut sr, &mut cw).await;
                };
                tokio::select! { _ = up => {}, _ = down => {} }
            });
        }
    });
    (addr, cut_done)
}

#[tokio::test]
async fn chunked_upload_resumes_after_the_connection_is_cut() {
    let registry = Registry::start(false);
    let (relay, cut_done) = cutting_relay(registry.addr.clone(), 150_000).await;
    let mut options = registry.options();
    options.monolithic_limit = 0;
    options.chunk_size = 64 * 1024;
    // The registry's certificate names 127.0.0.1, which the relay's address also is.
    let client = RegistryClient::new(&relay, options).unwrap();
    let data = Bytes::from(module(1_000_000));
    let digest = Digest::sha256_of(&data);
    client
        .push_blob("resume/a", &digest, &data, &NoProgress)
        .await
        .unwrap();
    assert!(
        cut_done.load(Ordering::SeqCst),
        "the relay never cut the upload"
    );
    let desc = Descriptor::of("application/octet-stream", &data);
    let direct = registry.client();
    assert_eq!(
        direct
            .pull_blob("resume/a", &desc, 2 << 20, &NoProgress)
            .await
            .unwrap(),
        data
    );
}

/// A token service for docker-registry's `token` auth: checks Basic credentials and answers with
/// an ES256 JWT granting the scopes asked for, signed by a key whose self-signed certificate the
/// registry trusts. Serves HTTPS on loopback; returns its realm URL and a request counter.
async fn token_service(
    ca: &TestCa,
    signer_cert_der: Vec<u8>,
    signer_pkcs8: Vec<u8>,
    user: &'static str,
    password: &'static str,
) -> (String, Arc<AtomicU64>) {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use http_body_util::Full;
    use hyper::service::service_fn;
    let server_identity = ca.server_identity(&["127.0.0.1"]);
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        server_identity.chain().to_vec(),
        server_identity.private_key().clone_key(),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let realm = format!("https://{}/token", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicU64::new(0));
    let counter = requests.clone();
    let key = Arc::new(
        ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &signer_pkcs8,
            &ring::rand::SystemRandom::new(),
        )
        .unwrap(),
    );
    let x5c = base64::engine::general_purpose::STANDARD.encode(&signer_cert_der);
    let expected_auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    );
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let key = key.clone();
            let x5c = x5c.clone();
            let expected_auth = expected_auth.clone();
            let counter = counter.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    counter.fetch_add(1, Ordering::SeqCst);
                    let authorized = req
                        .headers()
                        .get(http::header::AUTHORIZATION)
                        .is_some_and(|v| v.as_bytes() == expected_auth.as_bytes());
                    let query = req.uri().query().unwrap_or_default().to_owned();
                    let mut service = String::new();
                    let mut access = Vec::new();
                    for pair in query.split('&') {
                        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                        let v = percent_encoding::percent_decode_str(v)
                            .decode_utf8_lossy()
                            .into_owned();
                        match k {
                            "service" => service = v,
                            "scope" => {
                                // repository:NAME:ACTIONS
                                let mut parts = v.splitn(3, ':');
                                let (Some(kind), Some(name), Some(actions)) =
                                    (parts.next(), parts.next(), parts.next())
                                else {
                                    continue;
                                };
                                access.push(serde_json::json!({
                                    "type": kind,
                                    "name": name,
                                    "actions": actions.split(',').collect::<Vec<_>>(),
                                }));
                            }
                            _ => {}
                        }
                    }
                    let response = if !authorized {
                        http::Response::builder()
                            .status(401)
                            .body(Full::new(Bytes::from_static(b"{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"bad credentials\"}]}")))
                            .unwrap()
                    } else {
                        let now = std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .unwrap()
                            .as_secs();
                        let header =
                            serde_json::json!({"typ": "JWT", "alg": "ES256", "x5c": [x5c]});
                        let claims = serde_json::json!({
                            "iss": "moat-test-issuer",
                            "sub": "alice",
                            "aud": service,
                            "exp": now + 300,
                            "nbf": now - 10,
                            "iat": now,
                            "jti": format!("{}", now),
                            "access": access,
                        });
                        let signing_input = format!(
                            "{}.{}",
                            URL_SAFE_NO_PAD.encode(header.to_string()),
                            URL_SAFE_NO_PAD.encode(claims.to_string())
                        );
                        let signature = key
                            .sign(&ring::rand::SystemRandom::new(), signing_input.as_bytes())
                            .unwrap();
                        let token = format!(
                            "{signing_input}.{}",
                            URL_SAFE_NO_PAD.encode(signature.as_ref())
                        );
                        http::Response::builder()
                            .status(200)
                            .header("content-type", "application/json")
                            .body(Full::new(Bytes::from(
                                serde_json::json!({"token": token}).to_string(),
                            )))
                            .unwrap()
                    };
                    async move { Ok::<_, std::convert::Infallible>(response) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (realm, requests)
}

#[tokio::test]
async fn bearer_token_challenge_flow() {
    // The token signer: a self-signed P-256 certificate the registry trusts for tokens.
    let signer_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let signer_cert = rcgen::CertificateParams::new(vec!["token-signer".to_owned()])
        .unwrap()
        .self_signed(&signer_key)
        .unwrap();
    let ca = Arc::new(TestCa::new("token test CA"));
    let (realm, token_requests) = token_service(
        &ca,
        signer_cert.der().to_vec(),
        signer_key.serialize_der(),
        "alice",
        "s3cret",
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token-signer.pem"), signer_cert.pem()).unwrap();
    let auth = format!(
        "auth:\n  token:\n    realm: {realm}\n    service: moat-test-registry\n    issuer: moat-test-issuer\n    rootcertbundle: {}\n",
        dir.path().join("token-signer.pem").display()
    );
    let registry = Registry::start_with(ca.clone(), false, &auth);

    // Anonymous: the token service refuses, and the error says so.
    let anonymous = registry.client();
    let err = anonymous.ping().await.unwrap_err();
    assert!(
        matches!(
            err,
            RegistryError::Unauthorized { .. } | RegistryError::TokenService { .. }
        ),
        "{err}"
    );

    // Wrong password: refused.
    let mut options = registry.options();
    options.credentials = Some(moat_client::auth::Credentials {
        username: "alice".into(),
        password: "wrong".into(),
    });
    let wrong = RegistryClient::new(&registry.addr, options).unwrap();
    assert!(wrong.ping().await.is_err());

    // Right credentials: the client answers each challenge with a token for its scope.
    let mut options = registry.options();
    options.credentials = Some(moat_client::auth::Credentials {
        username: "alice".into(),
        password: "s3cret".into(),
    });
    let client = RegistryClient::new(&registry.addr, options).unwrap();
    client.ping().await.unwrap();
    let src = package_dir(&module(300), "");
    let built = LocalPackage::from_path(src.path(), None).unwrap().build();
    let reference: Reference = format!("{}/demo/app:v1", registry.addr).parse().unwrap();
    let digest = built.push(&client, &reference, &NoProgress).await.unwrap();
    let pulled = package::pull(&client, &reference, &NoProgress)
        .await
        .unwrap();
    assert_eq!(pulled.remote.digest, digest);
    // A mount asks for a token covering both repositories.
    let module_digest = &built.manifest.layers[0].digest;
    assert!(
        client
            .mount_blob("demo/copy", module_digest, "demo/app")
            .await
            .unwrap()
    );
    assert!(token_requests.load(Ordering::SeqCst) >= 3);
}

//! Shared by the `drawbridge_*` integration tests: a throwaway PKI, the real `moat drawbridge
//! serve` process on a loopback port chosen by the OS, and a small HTTP/1.1 client over real TLS
//! that can present a client certificate (what a Keep does).

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use sha2::Digest as _;

pub fn moat() -> &'static str {
    env!("CARGO_BIN_EXE_moat")
}

pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

pub fn sha512(bytes: &[u8]) -> String {
    format!("sha512:{}", hex::encode(sha2::Sha512::digest(bytes)))
}

/// A CA made for one test.
pub struct TestCa {
    pub issuer: Issuer<'static, KeyPair>,
    pub cert: CertificateDer<'static>,
}

impl TestCa {
    pub fn new(name: &str) -> Self {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).unwrap();
        TestCa {
            issuer: Issuer::new(params, key),
            cert: cert.der().clone(),
        }
    }

    pub fn pem(&self) -> String {
        pem_cert(&self.cert)
    }

    /// A server certificate for 127.0.0.1 / localhost.
    pub fn server(&self) -> Leaf {
        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(params)
    }

    /// A Keep certificate: URI SAN `workload`, optional extra extension (the attestation
    /// result), optionally already expired.
    pub fn keep(
        &self,
        workload: Option<&str>,
        extension: Option<CustomExtension>,
        expired: bool,
    ) -> Leaf {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, "keep");
        if let Some(w) = workload {
            params
                .subject_alt_names
                .push(SanType::URI(w.try_into().unwrap()));
        }
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2020, 1, 2);
        }
        if let Some(ext) = extension {
            params.custom_extensions.push(ext);
        }
        self.issue(params)
    }

    fn issue(&self, params: CertificateParams) -> Leaf {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            chain: vec![cert.der().clone()],
            key_der: key.serialize_der(),
        }
    }
}

/// The attestation-result extension a Steward would put in a Keep's certificate.
pub fn attestation(platform: &str, attested: bool, debug: bool, workload: &str) -> CustomExtension {
    use moat_attest::Platform;
    use moat_attest::result::{AttestationResult, PROFILE, Status, encode_extension};
    let platform = match platform {
        "snp" => Platform::Snp,
        "tdx" => Platform::Tdx,
        "sgx" => Platform::Sgx,
        _ => Platform::Nil,
    };
    let result = AttestationResult {
        eat_profile: PROFILE.into(),
        iat: 1_800_000_000,
        verifier: "drawbridge-tests".into(),
        status: if attested {
            Status::Affirming
        } else {
            Status::None
        },
        attested,
        platform,
        measurement: attested.then(|| "ab".repeat(48)),
        rtmrs: Vec::new(),
        tcb: None,
        tcb_status: None,
        advisories: Vec::new(),
        debug,
        test_only_root: true,
        policy: "accepted".into(),
        workload: Some(workload.into()),
        workload_digest: None,
    };
    encode_extension(&result).unwrap()
}

pub fn pem_cert(der: &CertificateDer<'_>) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

pub struct Leaf {
    pub chain: Vec<CertificateDer<'static>>,
    pub key_der: Vec<u8>,
}

impl Leaf {
    pub fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()))
    }

    pub fn write(&self, dir: &Path, stem: &str) -> (PathBuf, PathBuf) {
        use base64::Engine as _;
        let cert = dir.join(format!("{stem}.pem"));
        let key = dir.join(format!("{stem}.key"));
        std::fs::write(&cert, pem_cert(&self.chain[0])).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&self.key_der);
        let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
        for line in b64.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).unwrap());
            pem.push('\n');
        }
        pem.push_str("-----END PRIVATE KEY-----\n");
        std::fs::write(&key, pem).unwrap();
        (cert, key)
    }
}

/// A running `moat drawbridge serve`.
pub struct Drawbridge {
    child: Option<Child>,
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    pub dir: tempfile::TempDir,
    pub server_ca: Arc<TestCa>,
    pub log: Arc<Mutex<String>>,
    cert: PathBuf,
    key: PathBuf,
    extra: Vec<String>,
}

impl Drawbridge {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    pub fn start_with(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let server_ca = Arc::new(TestCa::new("drawbridge test server CA"));
        let (cert, key) = server_ca.server().write(dir.path(), "server");
        let data_dir = dir.path().join("data");
        let mut db = Drawbridge {
            child: None,
            addr: "127.0.0.1:0".parse().unwrap(),
            data_dir,
            dir,
            server_ca,
            log: Arc::new(Mutex::new(String::new())),
            cert,
            key,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        db.spawn("127.0.0.1:0");
        db
    }

    fn spawn(&mut self, listen: &str) {
        let mut child = Command::new(moat())
            .args(["drawbridge", "serve", "--listen", listen, "--data-dir"])
            .arg(&self.data_dir)
            .arg("--tls-cert")
            .arg(&self.cert)
            .arg("--tls-key")
            .arg(&self.key)
            .args(&self.extra)
            .env("MOAT_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn moat drawbridge serve");
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let addr = loop {
            let line = lines
                .next()
                .expect("drawbridge exited before listening")
                .unwrap();
            self.log.lock().unwrap().push_str(&format!("{line}\n"));
            if let Some(url) = line.strip_prefix("listening on https://") {
                break url.trim().parse().unwrap();
            }
        };
        let log = self.log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                log.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        self.addr = addr;
        self.child = Some(child);
    }

    pub fn authority(&self) -> String {
        self.addr.to_string()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// The `--tls-cert` and `--tls-key` files the server was started with.
    pub fn tls_files(&self) -> (PathBuf, PathBuf) {
        (self.cert.clone(), self.key.clone())
    }

    /// Kill the server with SIGKILL (no cleanup runs) and wait for it.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Start again on the same port and data directory.
    pub fn restart(&mut self) {
        self.kill9();
        let listen = self.addr.to_string();
        self.spawn(&listen);
    }

    /// Run `moat drawbridge ARGS --data-dir DATA`, asserting success; returns stdout.
    pub fn admin(&self, args: &[&str]) -> String {
        let out = Command::new(moat())
            .arg("drawbridge")
            .args(args)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "moat drawbridge {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// A user with a fresh token of these scopes (default scope when empty).
    pub fn token(&self, user: &str, scopes: &[&str]) -> String {
        let _ = Command::new(moat())
            .args(["drawbridge", "user", "add", user, "--data-dir"])
            .arg(&self.data_dir)
            .output()
            .unwrap();
        let mut args = vec!["token", "create", user, "--json"];
        for s in scopes {
            args.push("--scope");
            args.push(s);
        }
        let out = self.admin(&args);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v["token"].as_str().unwrap().to_owned()
    }

    pub fn client(&self) -> Http {
        Http::new(self.addr, &self.server_ca.cert, None)
    }

    pub fn keep_client(&self, leaf: &Leaf) -> Http {
        Http::new(self.addr, &self.server_ca.cert, Some(leaf))
    }

    /// The server's log so far, without terminal colour codes.
    pub fn log_text(&self) -> String {
        let raw = self.log.lock().unwrap().clone();
        let mut out = String::with_capacity(raw.len());
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                // CSI: ESC [ ... final byte in @..~
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) && c != '[' {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    /// Wait (bounded) until the log contains `needle`; the log is read by another thread.
    pub fn log_contains(&self, needle: &str) -> bool {
        for _ in 0..100 {
            if self.log_text().contains(needle) {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        false
    }
}

impl Drop for Drawbridge {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// One response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The first OCI error code of the body.
    pub fn error_code(&self) -> String {
        self.json()["errors"][0]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no error code in {:?}", String::from_utf8_lossy(&self.body)))
            .to_owned()
    }
}

/// An HTTP/1.1 client over TLS, one connection per request.
#[derive(Clone)]
pub struct Http {
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    pub auth: Option<String>,
}

impl Http {
    pub fn new(addr: SocketAddr, ca: &CertificateDer<'static>, leaf: Option<&Leaf>) -> Self {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let config = match leaf {
            Some(leaf) => builder
                .with_client_auth_cert(leaf.chain.clone(), leaf.key())
                .unwrap(),
            None => builder.with_no_client_auth(),
        };
        Http {
            addr,
            config: Arc::new(config),
            auth: None,
        }
    }

    pub fn bearer(mut self, token: &str) -> Self {
        self.auth = Some(format!("Bearer {token}"));
        self
    }

    pub fn basic(mut self, user: &str, token: &str) -> Self {
        use base64::Engine as _;
        let b = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{token}"));
        self.auth = Some(format!("Basic {b}"));
        self
    }

    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Resp {
        let tcp = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let connector = tokio_rustls::TlsConnector::from(self.config.clone());
        let tls = connector
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap();
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
                .await
                .unwrap();
        tokio::spawn(conn);
        let mut req = http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.addr.to_string());
        if let Some(auth) = &self.auth {
            req = req.header("authorization", auth);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = sender
            .send_request(req.body(Full::new(body.into())).unwrap())
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        Resp {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send("GET", path, &[], Bytes::new()).await
    }

    /// Monolithic upload; asserts 201.
    pub async fn push_blob(&self, repo: &str, data: &[u8]) -> String {
        let digest = sha256(data);
        let r = self
            .send(
                "POST",
                &format!("/v2/{repo}/blobs/uploads/?digest={digest}"),
                &[("content-type", "application/octet-stream")],
                data.to_vec(),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
        digest
    }

    /// Push an image manifest referencing `config` and `layers` (already pushed); returns the
    /// manifest bytes and digest.
    pub async fn push_manifest(
        &self,
        repo: &str,
        reference: &str,
        manifest: &[u8],
        media_type: &str,
    ) -> Resp {
        self.send(
            "PUT",
            &format!("/v2/{repo}/manifests/{reference}"),
            &[("content-type", media_type)],
            manifest.to_vec(),
        )
        .await
    }
}

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// A Moat package manifest over a module and a config, both pushed; returns the exact bytes.
pub async fn push_package(
    client: &Http,
    repo: &str,
    tag: &str,
    module: &[u8],
    config: &[u8],
) -> (Vec<u8>, String) {
    let empty = client.push_blob(repo, b"{}").await;
    let wasm = client.push_blob(repo, module).await;
    let toml = client.push_blob(repo, config).await;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.moat.package.v1",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [
            {"mediaType": "application/wasm", "digest": wasm, "size": module.len(),
             "annotations": {"org.opencontainers.image.title": "main.wasm"}},
            {"mediaType": "application/toml", "digest": toml, "size": config.len(),
             "annotations": {"org.opencontainers.image.title": "Moat.toml"}}
        ]
    });
    // Pretty-printed on purpose: the registry must keep these exact bytes.
    let bytes = serde_json::to_vec_pretty(&manifest).unwrap();
    let r = client.push_manifest(repo, tag, &bytes, OCI_MANIFEST).await;
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    let digest = sha256(&bytes);
    (bytes, digest)
}

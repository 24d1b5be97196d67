//! Shared by the `cryptle_*` tests and the Cryptle benchmark: building the Cryptle module,
//! running it in a Keep with `moat run`, and small HTTP helpers. Each test binary uses a part.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use cryptle_game::{Entropy, Request, Response, parse_request};

/// Deterministic token bytes: fine in tests (tokens are not what these tests are about).
pub struct CountingEntropy(pub u64);

impl Entropy for CountingEntropy {
    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf.iter_mut() {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            *b = (self.0 >> 56) as u8;
        }
    }
}

/// Raw request bytes for the API.
pub fn raw_request(method: &str, path: &str, token: Option<&str>, json: Option<&str>) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nHost: cryptle\r\n");
    if let Some(t) = token {
        out.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    if let Some(body) = json {
        out.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ));
    } else {
        out.push_str("\r\n");
    }
    out.into_bytes()
}

/// Parse raw bytes into a request through the real parser.
pub fn request(raw: &[u8]) -> Request {
    let limits = cryptle_game::HttpLimits::default();
    parse_request(raw, &limits)
        .expect("valid request")
        .expect("complete request")
        .0
}

/// A response as the wire carries it.
pub fn wire(response: &Response) -> Vec<u8> {
    let mut out = Vec::new();
    response.write_to(&mut out, true);
    out
}

/// Status and body of one HTTP/1.1 response read from a blocking stream.
pub fn read_response(stream: &mut impl Read) -> std::io::Result<(u16, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let status: u16 = head
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| std::io::Error::other(format!("bad status line: {head}")))?;
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = stream.read(&mut chunk)?;
                if n == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            return Ok((status, buf[end + 4..end + 4 + len].to_vec()));
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// One request and its response on a blocking stream (keep-alive).
pub fn call(
    stream: &mut (impl Read + Write),
    method: &str,
    path: &str,
    token: Option<&str>,
    json: Option<&str>,
) -> std::io::Result<(u16, serde_json::Value)> {
    stream.write_all(&raw_request(method, path, token, json))?;
    let (status, body) = read_response(stream)?;
    Ok((
        status,
        serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    ))
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(hay, needle)
}

/// Whether `hay` holds `word` in lower or upper case.
pub fn contains_word(hay: &[u8], word: &str) -> bool {
    find(hay, word.to_ascii_lowercase().as_bytes()).is_some()
        || find(hay, word.to_ascii_uppercase().as_bytes()).is_some()
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// Build Cryptle for wasm32-wasip1 (profile `keep-test`, with the test-only `test-seed` feature)
/// once per test binary, and return the module's path.
pub fn cryptle_wasm() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| build_cryptle("keep-test", &["test-seed"]))
        .clone()
}

/// Build Cryptle for wasm32-wasip1 into `target/apps` (test-seed builds into their own
/// directory below it, so a test build never replaces the demo's module).
pub fn build_cryptle(profile: &str, features: &[&str]) -> PathBuf {
    let root = repo_root();
    let target_dir = if features.is_empty() {
        root.join("target/apps")
    } else {
        root.join("target/apps").join(features.join("+"))
    };
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root.join("apps/cryptle"))
        .args([
            "build",
            "-p",
            "cryptle",
            "--bin",
            "cryptle",
            "--target",
            "wasm32-wasip1",
        ])
        .env("CARGO_TARGET_DIR", &target_dir)
        // The outer cargo's settings are for the host build, not this one.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET");
    cmd.args(["--profile", profile]);
    if !features.is_empty() {
        cmd.args(["--features", &features.join(",")]);
    }
    let status = cmd.status().expect("run cargo to build cryptle");
    assert!(
        status.success(),
        "building cryptle for wasm32-wasip1 failed"
    );
    target_dir
        .join("wasm32-wasip1")
        .join(if profile == "dev" { "debug" } else { profile })
        .join("cryptle.wasm")
}

/// Cryptle running in a Keep (`moat run`), listening with TLS on a port the OS chose.
pub struct Keep {
    pub child: std::process::Child,
    pub addr: std::net::SocketAddr,
    /// The Keep's (self-signed) certificate, read from its first handshake and pinned after.
    pub cert: rustls::pki_types::CertificateDer<'static>,
    log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Keep {
    /// Start `moat` (the binary under test) running `module` with `env` for the workload.
    pub fn start(moat: &Path, module: &Path, env: &[(&str, String)]) -> Keep {
        Keep::start_with(moat, module, env, &[])
    }

    /// [`Keep::start`] with more `moat run` flags (e.g. a Steward to attest to).
    pub fn start_with(
        moat: &Path,
        module: &Path,
        env: &[(&str, String)],
        flags: &[&std::ffi::OsStr],
    ) -> Keep {
        use std::io::BufRead;
        let mut cmd = Command::new(moat);
        cmd.arg("run")
            .args(["--listen", "listen=tls://127.0.0.1:0"])
            .args(flags);
        for (k, v) in env {
            cmd.args(["--env", &format!("{k}={v}")]);
        }
        cmd.arg(module)
            .env("MOAT_LOG", "info")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().expect("spawn moat run");
        let stderr = child.stderr.take().unwrap();
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let log2 = log.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(addr) = line
                    .split("listening on tls://")
                    .nth(1)
                    .and_then(|a| a.split_whitespace().next())
                    .and_then(|a| a.parse::<std::net::SocketAddr>().ok())
                {
                    let _ = tx.send(addr);
                }
                let mut l = log2.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let addr = match rx.recv_timeout(std::time::Duration::from_secs(120)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "moat run did not report its port; log:\n{}",
                    log.lock().unwrap()
                );
            }
        };
        let cert = fetch_cert(addr);
        Keep {
            child,
            addr,
            cert,
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A TLS connection that trusts exactly this Keep's certificate.
    pub fn connect(&self) -> rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream> {
        tls_connect(self.addr, &self.cert)
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Keep {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Accepts exactly one certificate (or, for the first look, any certificate, which it records).
/// Test code only: the Keep's self-signed certificate is new on every run.
#[derive(Debug)]
struct PinnedCert {
    pinned: Option<rustls::pki_types::CertificateDer<'static>>,
    seen: std::sync::Mutex<Option<rustls::pki_types::CertificateDer<'static>>>,
    provider: std::sync::Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for PinnedCert {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        *self.seen.lock().unwrap() = Some(end_entity.clone().into_owned());
        match &self.pinned {
            Some(p) if p.as_ref() != end_entity.as_ref() => {
                Err(rustls::Error::General("not the pinned certificate".into()))
            }
            _ => Ok(rustls::client::danger::ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

pub fn client_config(
    pinned: Option<&rustls::pki_types::CertificateDer<'static>>,
) -> (
    std::sync::Arc<rustls::ClientConfig>,
    std::sync::Arc<PinnedCertHandle>,
) {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let verifier = std::sync::Arc::new(PinnedCert {
        pinned: pinned.cloned(),
        seen: std::sync::Mutex::new(None),
        provider: provider.clone(),
    });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();
    (
        std::sync::Arc::new(config),
        std::sync::Arc::new(PinnedCertHandle(verifier)),
    )
}

/// Lets a caller read the certificate a handshake saw.
pub struct PinnedCertHandle(std::sync::Arc<PinnedCert>);

/// The certificate a TLS server at `addr` presents (first contact).
pub fn fetch_cert(addr: std::net::SocketAddr) -> rustls::pki_types::CertificateDer<'static> {
    let (config, handle) = client_config(None);
    let mut stream = tls_stream(addr, config);
    stream
        .conn
        .complete_io(&mut stream.sock)
        .expect("TLS handshake with the Keep");
    let seen = handle.0.seen.lock().unwrap().clone();
    seen.expect("the Keep presented a certificate")
}

/// A TLS connection to `addr` that accepts only `cert`.
pub fn tls_connect(
    addr: std::net::SocketAddr,
    cert: &rustls::pki_types::CertificateDer<'static>,
) -> rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream> {
    tls_stream(addr, client_config(Some(cert)).0)
}

fn tls_stream(
    addr: std::net::SocketAddr,
    config: std::sync::Arc<rustls::ClientConfig>,
) -> rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream> {
    let sock = std::net::TcpStream::connect(addr).expect("connect to the Keep");
    sock.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
    let conn = rustls::ClientConnection::new(config, name).unwrap();
    rustls::StreamOwned::new(conn, sock)
}

/// A seed for which the first secret word appears neither in the page nor in `avoid` (bytes a
/// scan would also see, like the module and the moat binary), plus a second answer with the
/// same property that the game never picks first (a control for the scan).
pub fn seed_with_unique_secret(avoid: &[&[u8]]) -> (u64, String, String) {
    let page: Vec<u8> = [
        cryptle_game::assets::INDEX_HTML,
        cryptle_game::assets::INDEX_JS,
        cryptle_game::assets::STYLES_CSS,
    ]
    .concat()
    .into_bytes();
    let clean = |w: &str| !contains_word(&page, w) && avoid.iter().all(|a| !contains_word(a, w));
    let answers: Vec<String> = cryptle_game::words::answers()
        .map(|w| w.as_str().to_owned())
        .collect();
    // From the end of the list, checked lazily: `avoid` may be a large binary.
    let control = answers
        .iter()
        .rev()
        .find(|w| clean(w))
        .expect("a control word")
        .clone();
    for seed in 1000u64.. {
        let secret = cryptle_game::SecretPicker::new(seed)
            .next_secret()
            .as_str()
            .to_owned();
        if secret != control && clean(&secret) {
            return (seed, secret, control);
        }
    }
    unreachable!()
}

/// Wraps a stream and keeps every byte read from it: what a test inspects for leaks.
pub struct Recorder<S> {
    pub inner: S,
    pub received: Vec<u8>,
}

impl<S: Read> Read for Recorder<S> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.received.extend_from_slice(&buf[..n]);
        Ok(n)
    }
}

impl<S: Write> Write for Recorder<S> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

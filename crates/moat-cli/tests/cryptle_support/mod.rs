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

/// Build Cryptle for wasm32-wasip1 (debug, with the test-only `test-seed` feature) once per test
/// binary, and return the module's path.
pub fn cryptle_wasm() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| build_cryptle(false, &["test-seed"]))
        .clone()
}

/// Build Cryptle for wasm32-wasip1 into `target/apps`.
pub fn build_cryptle(release: bool, features: &[&str]) -> PathBuf {
    let root = repo_root();
    let target_dir = root.join("target/apps");
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
    if release {
        cmd.arg("--release");
    }
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
        .join(if release { "release" } else { "debug" })
        .join("cryptle.wasm")
}

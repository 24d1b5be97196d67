//! Helpers for the Steward's real-process tests: start `moat steward serve` on a free loopback
//! port, read the URL it prints, keep its log, stop it on drop.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

/// The `moat` binary under test.
pub fn moat() -> Command {
    Command::new(env!("CARGO_BIN_EXE_moat"))
}

/// The shared attestation vectors (`MOAT_VECTORS`, else `../shared/vectors` from the repo root).
/// A missing directory fails the test loudly.
pub fn vectors() -> PathBuf {
    let dir = std::env::var_os("MOAT_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors"));
    assert!(
        dir.is_dir(),
        "attestation vectors not found at {} (set MOAT_VECTORS)",
        dir.display()
    );
    dir
}

/// A running Steward process.
pub struct Steward {
    child: Child,
    pub url: String,
    pub ca_pem: Vec<u8>,
    pub ca_path: PathBuf,
    log: Arc<Mutex<String>>,
    _dir: Option<tempfile::TempDir>,
}

impl Steward {
    /// Starts a Steward with `policy` (TOML) in a fresh state directory, plus `extra` args.
    pub fn start(policy: &str, extra: &[&str]) -> Steward {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let policy_path = dir.path().join("policy.toml");
        std::fs::write(&policy_path, policy).unwrap();
        let mut s = Self::start_in(&state, Some(&policy_path), extra);
        s._dir = Some(dir);
        s
    }

    /// Starts a Steward on an existing state directory.
    pub fn start_in(state: &Path, policy: Option<&Path>, extra: &[&str]) -> Steward {
        let mut cmd = moat();
        cmd.args(["steward", "serve", "--listen", "127.0.0.1:0", "--state-dir"])
            .arg(state)
            .args(extra)
            .env("MOAT_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(p) = policy {
            cmd.arg("--policy").arg(p);
        }
        let mut child = cmd.spawn().expect("spawn moat");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let log2 = log.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(url) = line.strip_prefix("listening on ")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(url.to_owned());
                }
                let mut l = log2.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        // A guard against a hung start, not a performance threshold.
        let url = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(u) => u,
            Err(_) => {
                let _ = child.kill();
                panic!("steward did not start; log:\n{}", log.lock().unwrap());
            }
        };
        let ca_path = state.join("ca.crt.pem");
        let ca_pem = std::fs::read(&ca_path).unwrap_or_default();
        Steward {
            child,
            url,
            ca_pem,
            ca_path,
            log,
            _dir: None,
        }
    }

    /// Everything the process wrote to stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Whether the log has (or soon gets) a line containing `needle`. The Steward may log a
    /// request after its response went out, and a reader thread copies its stderr, so a line
    /// can land just after the client saw the answer; this waits for it (a guard against a
    /// line that never comes, not a timing check).
    pub fn log_contains(&self, needle: &str) -> bool {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            if self.log().contains(needle) {
                return true;
            }
            if std::time::Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    pub fn client(&self) -> moat_client::steward::StewardClient {
        moat_client::steward::StewardClient::new(&self.url, &self.ca_pem).unwrap()
    }
}

impl Drop for Steward {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A nil CSR for a fresh key: (key, CSR DER). The evidence binds `bind` (default: the key).
pub fn nil_csr(
    nonce: Option<&[u8]>,
    workload: Option<&str>,
    bind: Option<&[u8]>,
) -> (rcgen::KeyPair, Vec<u8>) {
    use rcgen::PublicKeyData;
    let key = rcgen::KeyPair::generate().unwrap();
    let spki = key.subject_public_key_info();
    let rd = moat_attest::binding::report_data(bind.unwrap_or(&spki), nonce);
    let csr =
        moat_attest::csr::build(&key, &moat_attest::Evidence::nil(rd), nonce, workload).unwrap();
    (key, csr)
}

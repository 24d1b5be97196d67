//! The services a deploy needs, as real `moat` processes on loopback: a Steward (`moat steward
//! serve`) with a given policy, and Drawbridge (`moat drawbridge serve`) over TLS with a user, a
//! token and a private repository whose release policy trusts that Steward.

// Each test binary that includes this module uses a different part of it.
#![allow(dead_code)]

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use moat_tls::test_pki::TestCa;

pub fn moat_bin() -> &'static str {
    env!("CARGO_BIN_EXE_moat")
}

/// A long-running `moat` server process, killed on drop; its stderr is kept for failure reports.
pub struct Server {
    child: Child,
    pub json: serde_json::Value,
    stderr: Arc<Mutex<String>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Spawn `moat ARGS --json` and wait for the one JSON line it prints once listening.
    pub fn spawn(args: &[&str], envs: &[(&str, &Path)]) -> Server {
        let mut cmd = Command::new(moat_bin());
        cmd.args(args)
            .arg("--json")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("MOAT_LOG", "info");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("moat starts");
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        let mut err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = match lines.next() {
            Some(Ok(line)) => line,
            _ => {
                let _ = child.wait();
                panic!(
                    "moat {args:?} printed no listening line; stderr:\n{}",
                    stderr.lock().unwrap()
                );
            }
        };
        std::thread::spawn(move || for _ in lines.by_ref() {});
        let json: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("moat {args:?} printed {line:?}: {e}"));
        Server {
            child,
            json,
            stderr,
        }
    }

    /// The `https://HOST:PORT` it listens on.
    pub fn url(&self) -> String {
        self.json["listening"]
            .as_str()
            .expect("a listening URL")
            .trim_end_matches('/')
            .to_owned()
    }

    pub fn authority(&self) -> String {
        self.url().trim_start_matches("https://").to_owned()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

/// Run a `moat` command to completion.
pub fn moat(args: &[&str], envs: &[(&str, &Path)], stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new(moat_bin());
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("moat starts");
    if let Some(input) = stdin {
        use std::io::Write as _;
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    child.wait_with_output().unwrap()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[track_caller]
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// A Steward whose policy is `policy` (TOML).
pub fn steward(dir: &Path, policy: &str) -> (Server, PathBuf) {
    let policy_path = dir.join("steward-policy.toml");
    std::fs::write(&policy_path, policy).unwrap();
    let state = dir.join("steward-state");
    let server = Server::spawn(
        &[
            "steward",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--state-dir",
            state.to_str().unwrap(),
            "--policy",
            policy_path.to_str().unwrap(),
        ],
        &[],
    );
    let ca = PathBuf::from(
        server.json["ca_cert"]
            .as_str()
            .expect("the CA certificate path"),
    );
    (server, ca)
}

/// Drawbridge over TLS with user `alice`, her token, and private repository `repo`; with
/// `release = Some((steward_ca, platforms))` its release policy trusts that Steward CA for those
/// platforms and requires the certificate to name the package.
pub struct Drawbridge {
    pub server: Server,
    pub ca: PathBuf,
    pub token: String,
}

pub fn drawbridge(dir: &Path, repo: &str, release: Option<(&Path, &[&str])>) -> Drawbridge {
    let data = dir.join("drawbridge-data");
    let data_arg = data.to_str().unwrap();
    let pki = TestCa::new("drawbridge test CA");
    let (chain, key) = pki.server_identity(&["127.0.0.1"]).to_pem();
    std::fs::write(dir.join("drawbridge-cert.pem"), chain).unwrap();
    std::fs::write(dir.join("drawbridge-key.pem"), key).unwrap();
    let ca = pki.write_cert_pem(dir, "drawbridge-ca.pem");

    ok(&moat(
        &["drawbridge", "user", "add", "alice", "--data-dir", data_arg],
        &[],
        None,
    ));
    let token = ok(&moat(
        &[
            "drawbridge",
            "token",
            "create",
            "alice",
            "--json",
            "--data-dir",
            data_arg,
        ],
        &[],
        None,
    ));
    let token: serde_json::Value = serde_json::from_str(token.trim()).unwrap();
    let token = token["token"].as_str().unwrap().to_owned();
    ok(&moat(
        &[
            "drawbridge",
            "repo",
            "create",
            repo,
            "--private",
            "--data-dir",
            data_arg,
        ],
        &[],
        None,
    ));
    if let Some((steward_ca, platforms)) = release {
        let policy = format!(
            "trusted_ca_files = [{:?}]\nplatforms = [{}]\nrequire_workload_name = true\n",
            steward_ca.display().to_string(),
            platforms
                .iter()
                .map(|p| format!("{p:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let policy_path = dir.join("release-policy.toml");
        std::fs::write(&policy_path, policy).unwrap();
        ok(&moat(
            &[
                "drawbridge",
                "repo",
                "policy",
                repo,
                policy_path.to_str().unwrap(),
                "--data-dir",
                data_arg,
            ],
            &[],
            None,
        ));
    }
    let server = Server::spawn(
        &[
            "drawbridge",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data_arg,
            "--tls-cert",
            dir.join("drawbridge-cert.pem").to_str().unwrap(),
            "--tls-key",
            dir.join("drawbridge-key.pem").to_str().unwrap(),
        ],
        &[],
    );
    Drawbridge { server, ca, token }
}

/// A package directory: the echo guest as main.wasm and a Moat.toml listening with TLS on
/// 127.0.0.1:`port`.
pub fn echo_package(dir: &Path, port: u16) -> PathBuf {
    let pkg = dir.join("echo-package");
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::copy(
        moat_testkit::guests::module("echo-std"),
        pkg.join("main.wasm"),
    )
    .unwrap();
    // The guest's first argument names the socket it serves (`args` precedes the tables).
    let config = format!(
        "args = [\"echo\"]\n\n{}{}",
        moat_testkit::configs::stdio(),
        moat_testkit::configs::listen("echo", "tls", port)
    );
    std::fs::write(pkg.join("Moat.toml"), config).unwrap();
    pkg
}

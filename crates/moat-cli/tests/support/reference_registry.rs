//! Debian's `docker-registry` (CNCF distribution 2.8) as an independent reference OCI registry,
//! run on loopback with a test CA's certificate; killed on drop.

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use moat_tls::test_pki::TestCa;

pub struct ReferenceRegistry {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// PEM file of the CA that signed the registry's certificate.
    pub ca_path: PathBuf,
    /// Holds the registry's storage and certificates for as long as it runs.
    _dir: tempfile::TempDir,
}

impl Drop for ReferenceRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ReferenceRegistry {
    pub fn start() -> ReferenceRegistry {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new("reference registry test CA");
        let (chain, key) = ca.server_identity(&["127.0.0.1"]).to_pem();
        std::fs::write(dir.path().join("cert.pem"), chain).unwrap();
        std::fs::write(dir.path().join("key.pem"), key).unwrap();
        let ca_path = ca.write_cert_pem(dir.path(), "ca.pem");
        let config = format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {d}/data\nhttp:\n  addr: 127.0.0.1:0\n  secret: test-only-secret\n  tls:\n    certificate: {d}/cert.pem\n    key: {d}/key.pem\n",
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
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let addr = loop {
            let line = lines
                .next()
                .expect("docker-registry exited before listening")
                .unwrap();
            if let Some(rest) = line.split("listening on ").nth(1) {
                break rest.split([',', '"']).next().unwrap().to_owned();
            }
        };
        std::thread::spawn(move || for _ in lines.by_ref() {});
        ReferenceRegistry {
            child,
            addr,
            ca_path,
            _dir: dir,
        }
    }
}

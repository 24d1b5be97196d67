//! `moat package push|pull|info` and `moat login` as a user runs them: the built `moat` binary
//! against a real OCI registry process (Debian's docker-registry) over TLS on loopback.

mod support {
    pub mod reference_registry;
}

use std::path::Path;
use std::process::{Command, Output};

use support::reference_registry::ReferenceRegistry;

const MODULE: &[u8] = b"\0asm\x01\0\0\0";

fn moat(config_dir: &Path, registry_ca: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_moat"))
        .args(args)
        .env("MOAT_CONFIG_DIR", config_dir)
        .env("MOAT_REGISTRY_CA", registry_ca)
        .env_remove("MOAT_REGISTRY_CLIENT_CERT")
        .env_remove("MOAT_REGISTRY_CLIENT_KEY")
        .output()
        .expect("moat runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn push_info_pull_round_trip() {
    let registry = ReferenceRegistry::start();
    let home = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("main.wasm"), MODULE).unwrap();
    std::fs::write(src.path().join("Enarx.toml"), "args = [\"one\"]\n").unwrap();
    let target = format!("{}/demo/echo:v1", registry.addr);

    let out = moat(
        home.path(),
        &registry.ca_path,
        &["package", "push", src.path().to_str().unwrap(), &target],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let digest = text(&out.stdout).trim().to_owned();
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest:?}"
    );

    let out = moat(
        home.path(),
        &registry.ca_path,
        &["package", "info", &target, "--json"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["digest"], digest.as_str());
    assert_eq!(info["kind"], "moat");
    assert_eq!(
        info["workload"],
        format!("oci://{}/demo/echo", registry.addr)
    );
    assert_eq!(
        info["manifest"]["artifactType"],
        "application/vnd.moat.package.v1"
    );
    assert_eq!(
        info["manifest"]["layers"][0]["mediaType"],
        "application/wasm"
    );
    assert_eq!(
        info["manifest"]["layers"][1]["mediaType"],
        "application/toml"
    );
    assert_eq!(
        info["manifest"]["layers"][1]["annotations"]["org.opencontainers.image.title"],
        "Enarx.toml"
    );

    let dest = tempfile::tempdir().unwrap();
    let pinned = format!("{}/demo/echo@{digest}", registry.addr);
    let out = moat(
        home.path(),
        &registry.ca_path,
        &[
            "package",
            "pull",
            &pinned,
            "-o",
            dest.path().to_str().unwrap(),
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let pulled: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(pulled["digest"], digest.as_str());
    assert_eq!(
        std::fs::read(dest.path().join("main.wasm")).unwrap(),
        MODULE
    );
    assert_eq!(
        std::fs::read_to_string(dest.path().join("Enarx.toml")).unwrap(),
        "args = [\"one\"]\n"
    );

    // A module pushed with --config, as JSON output.
    std::fs::write(src.path().join("other.toml"), "").unwrap();
    let out = moat(
        home.path(),
        &registry.ca_path,
        &[
            "package",
            "push",
            src.path().join("main.wasm").to_str().unwrap(),
            "--config",
            src.path().join("other.toml").to_str().unwrap(),
            &format!("{}/demo/echo:v2", registry.addr),
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let pushed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(pushed["kind"], "moat");
    assert_ne!(pushed["digest"], digest.as_str());

    let out = moat(
        home.path(),
        &registry.ca_path,
        &[
            "package",
            "tags",
            &format!("{}/demo/echo", registry.addr),
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let tags: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(tags, serde_json::json!(["v1", "v2"]));
}

#[test]
fn refusals_are_clear_and_nonzero() {
    let registry = ReferenceRegistry::start();
    let home = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| moat(home.path(), &registry.ca_path, args);
    let target = format!("{}/demo/bad:v1", registry.addr);

    // No main.wasm.
    let out = run(&["package", "push", src.path().to_str().unwrap(), &target]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("main.wasm"),
        "{}",
        text(&out.stderr)
    );

    // A config the Keep would refuse (unknown key) is refused before anything is pushed.
    std::fs::write(src.path().join("main.wasm"), MODULE).unwrap();
    std::fs::write(src.path().join("Moat.toml"), "unknown_key = 1\n").unwrap();
    let out = run(&["package", "push", src.path().to_str().unwrap(), &target]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("unknown_key"),
        "{}",
        text(&out.stderr)
    );
    let out = run(&["package", "info", &target]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the refused push reached the registry"
    );

    // Bad references.
    for bad in [
        "demo/bad:v1",
        &format!("{}/Demo:v1", registry.addr),
        &format!("{}/demo/../x:v1", registry.addr),
    ] {
        let out = run(&["package", "info", bad]);
        assert_eq!(out.status.code(), Some(1), "{bad}");
        assert!(
            text(&out.stderr).contains("error:"),
            "{}",
            text(&out.stderr)
        );
    }
    // A push target needs a tag.
    std::fs::write(src.path().join("Moat.toml"), "").unwrap();
    let out = run(&[
        "package",
        "push",
        src.path().to_str().unwrap(),
        &format!("{}/demo/bad", registry.addr),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("tag"), "{}", text(&out.stderr));

    // A wrong pinned digest: nothing is written.
    let out = run(&["package", "push", src.path().to_str().unwrap(), &target]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let wrong = format!("{}/demo/bad@sha256:{}", registry.addr, "0".repeat(64));
    let dest = tempfile::tempdir().unwrap();
    let out = run(&[
        "package",
        "pull",
        &wrong,
        "-o",
        dest.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(std::fs::read_dir(dest.path()).unwrap().count(), 0);

    // A registry whose certificate is not from the named CA is refused.
    let stranger = moat_tls::test_pki::TestCa::new("stranger");
    let stranger_ca = stranger.write_cert_pem(home.path(), "stranger.pem");
    let out = moat(home.path(), &stranger_ca, &["package", "info", &target]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).to_lowercase().contains("certificate"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn login_stores_private_credentials_and_logout_removes_them() {
    let registry = ReferenceRegistry::start();
    let home = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_moat"))
        .args([
            "login",
            &registry.addr,
            "--username",
            "alice",
            "--password-stdin",
        ])
        .env("MOAT_CONFIG_DIR", home.path())
        .env("MOAT_REGISTRY_CA", &registry.ca_path)
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"t0ken-secret\n")
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let path = home.path().join("credentials.toml");
    let stored = std::fs::read_to_string(&path).unwrap();
    assert!(stored.contains("alice") && stored.contains("t0ken-secret"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    assert!(!text(&out.stderr).contains("t0ken-secret"));

    // Without --password-stdin nothing is stored and the user is told how.
    let out = moat(
        home.path(),
        &registry.ca_path,
        &["login", "other.example:5000", "-u", "bob"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("--password-stdin"));
    assert!(!std::fs::read_to_string(&path).unwrap().contains("bob"));

    let out = moat(
        home.path(),
        &registry.ca_path,
        &["login", &registry.addr, "--remove"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!std::fs::read_to_string(&path).unwrap().contains("alice"));
}

//! `moat login` and `moat package push|pull|info` against Drawbridge (`moat drawbridge serve`)
//! with a token: a private repository is readable with the token and refused without it.

mod support {
    pub mod stack;
}

use support::stack::{self, moat, ok, text};

const MODULE: &[u8] = b"\0asm\x01\0\0\0";

#[test]
fn token_login_push_and_pull_of_a_private_package() {
    let dir = tempfile::tempdir().unwrap();
    let db = stack::drawbridge(dir.path(), "demo/private", None);
    let alice = dir.path().join("alice-config");
    let stranger = dir.path().join("stranger-config");
    let alice_env = [
        ("MOAT_CONFIG_DIR", alice.as_path()),
        ("MOAT_REGISTRY_CA", db.ca.as_path()),
    ];
    let stranger_env = [
        ("MOAT_CONFIG_DIR", stranger.as_path()),
        ("MOAT_REGISTRY_CA", db.ca.as_path()),
    ];
    let host = db.server.authority();

    // A wrong token is refused at login and nothing is stored.
    let out = moat(
        &["login", &host, "-u", "alice", "--password-stdin"],
        &alice_env,
        Some(b"not-the-token\n"),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(!alice.join("credentials.toml").exists());

    ok(&moat(
        &["login", &host, "-u", "alice", "--password-stdin"],
        &alice_env,
        Some(format!("{}\n", db.token).as_bytes()),
    ));

    let src = dir.path().join("pkg");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("main.wasm"), MODULE).unwrap();
    std::fs::write(src.join("Moat.toml"), "args = [\"x\"]\n").unwrap();
    let target = format!("{host}/demo/private:v1");
    let digest = ok(&moat(
        &["package", "push", src.to_str().unwrap(), &target],
        &alice_env,
        None,
    ));
    let digest = digest.trim();

    let info = ok(&moat(
        &["package", "info", &target, "--json"],
        &alice_env,
        None,
    ));
    let info: serde_json::Value = serde_json::from_str(info.trim()).unwrap();
    assert_eq!(info["digest"], digest);

    let out_dir = dir.path().join("pulled");
    ok(&moat(
        &[
            "package",
            "pull",
            &format!("{host}/demo/private@{digest}"),
            "-o",
            out_dir.to_str().unwrap(),
        ],
        &alice_env,
        None,
    ));
    assert_eq!(std::fs::read(out_dir.join("main.wasm")).unwrap(), MODULE);

    // Without credentials the private package is not released.
    let denied_dir = dir.path().join("denied");
    let out = moat(
        &[
            "package",
            "pull",
            &target,
            "-o",
            denied_dir.to_str().unwrap(),
        ],
        &stranger_env,
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("moat login") || text(&out.stderr).contains("refused"),
        "{}",
        text(&out.stderr)
    );
    assert!(!denied_dir.join("main.wasm").exists());
}

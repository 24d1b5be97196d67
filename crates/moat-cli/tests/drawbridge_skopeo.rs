//! An independent OCI client against Drawbridge: `skopeo` (Debian's package; `.ci/run` installs
//! it) logs in with a Drawbridge token, copies an OCI layout to the registry and back, lists tags
//! and reads the raw manifest. Set `MOAT_SKIP_SKOPEO=1` to skip on a machine without skopeo.

mod drawbridge_support;

use std::path::Path;
use std::process::Command;

use drawbridge_support::*;

fn skopeo_available() -> bool {
    if Command::new("skopeo").arg("--version").output().is_ok() {
        return true;
    }
    if std::env::var_os("MOAT_SKIP_SKOPEO").is_some() {
        eprintln!("skopeo not installed and MOAT_SKIP_SKOPEO set: skipping");
        return false;
    }
    panic!(
        "skopeo is not installed (apt-get install skopeo; .ci/run does), or set MOAT_SKIP_SKOPEO=1"
    );
}

fn write_blob(layout: &Path, data: &[u8]) -> String {
    let digest = sha256(data);
    std::fs::write(layout.join("blobs/sha256").join(&digest[7..]), data).unwrap();
    digest
}

/// An OCI image layout holding one Moat package tagged `v1`; returns the manifest bytes.
fn make_layout(layout: &Path) -> Vec<u8> {
    std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let module = b"\0asm\x01\0\0\0 a module that is not run here";
    let config = b"[[files]]\nkind = \"stdio\"\n";
    let empty = write_blob(layout, b"{}");
    let wasm = write_blob(layout, module);
    let toml = write_blob(layout, config);
    let manifest = serde_json::to_vec_pretty(&serde_json::json!({
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
    }))
    .unwrap();
    let mdigest = write_blob(layout, &manifest);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": mdigest, "size": manifest.len(),
                       "annotations": {"org.opencontainers.image.ref.name": "v1"}}]
    });
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    manifest
}

fn skopeo(args: &[&str]) -> String {
    let out = Command::new("skopeo").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "skopeo {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn skopeo_copies_to_drawbridge_and_back_with_a_token_login() {
    if !skopeo_available() {
        return;
    }
    let db = Drawbridge::start();
    let token = db.token("alice", &["demo/*:pull,push"]);
    let work = tempfile::tempdir().unwrap();
    // skopeo trusts the registry's CA through a certificate directory.
    let certs = work.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::write(certs.join("ca.crt"), db.server_ca.pem()).unwrap();
    let certs = certs.to_str().unwrap();
    let auth = work.path().join("auth.json");
    let auth = auth.to_str().unwrap();
    let layout = work.path().join("layout");
    let manifest = make_layout(&layout);
    let registry = db.authority();
    let remote = format!("docker://{registry}/demo/app:v1");

    // A wrong token is refused at login.
    let out = Command::new("skopeo")
        .args([
            "login",
            "--authfile",
            auth,
            "--cert-dir",
            certs,
            "-u",
            "alice",
            "-p",
            "mdb_wrong",
            &registry,
        ])
        .output()
        .unwrap();
    assert!(!out.status.success(), "login with a wrong token succeeded");

    skopeo(&[
        "login",
        "--authfile",
        auth,
        "--cert-dir",
        certs,
        "-u",
        "alice",
        "-p",
        &token,
        &registry,
    ]);
    skopeo(&[
        "copy",
        "--preserve-digests",
        "--authfile",
        auth,
        "--dest-cert-dir",
        certs,
        &format!("oci:{}:v1", layout.display()),
        &remote,
    ]);

    // The registry holds the manifest byte for byte (checked with our own client).
    let c = db.client().bearer(&token);
    let g = c.get("/v2/demo/app/manifests/v1").await;
    assert_eq!((g.status, &g.body), (200, &manifest));

    // skopeo reads it back: raw manifest, tags, and a copy to a fresh layout with --src-creds.
    let raw = skopeo(&[
        "inspect",
        "--raw",
        "--authfile",
        auth,
        "--cert-dir",
        certs,
        &remote,
    ]);
    assert_eq!(raw.as_bytes(), manifest.as_slice());
    let tags = skopeo(&[
        "list-tags",
        "--authfile",
        auth,
        "--cert-dir",
        certs,
        &format!("docker://{registry}/demo/app"),
    ]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&tags).unwrap()["Tags"],
        serde_json::json!(["v1"])
    );
    let back = work.path().join("back");
    skopeo(&[
        "copy",
        "--preserve-digests",
        "--src-creds",
        &format!("alice:{token}"),
        "--src-cert-dir",
        certs,
        &remote,
        &format!("oci:{}:v1", back.display()),
    ]);
    let back_manifest =
        std::fs::read(back.join("blobs/sha256").join(&sha256(&manifest)[7..])).unwrap();
    assert_eq!(back_manifest, manifest);
    for entry in std::fs::read_dir(layout.join("blobs/sha256")).unwrap() {
        let entry = entry.unwrap();
        let copied = std::fs::read(back.join("blobs/sha256").join(entry.file_name())).unwrap();
        assert_eq!(copied, std::fs::read(entry.path()).unwrap());
    }

    // Without credentials the private repository stays closed to skopeo.
    let out = Command::new("skopeo")
        .args([
            "inspect",
            "--raw",
            "--no-creds",
            "--cert-dir",
            certs,
            &remote,
        ])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "anonymous skopeo read a private repository"
    );
}

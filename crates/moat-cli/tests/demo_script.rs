//! The README's first command, `scripts/demo`, in its `--check` form: it builds Cryptle, starts
//! a Steward and Drawbridge, pushes Cryptle as a private package, deploys it with `moat deploy`
//! (attest, pull, run), then checks the Keep from outside with `curl --cacert` and `moat verify`.
//! Here it uses the `moat` binary under test and a dev build of Cryptle, so CI runs the same
//! script a newcomer runs.

use std::path::Path;
use std::process::Command;

#[test]
fn the_readme_demo_deploys_cryptle_and_checks_it_from_outside() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new("bash")
        .arg(root.join("scripts/demo"))
        .arg("--check")
        .env("MOAT_BIN", env!("CARGO_BIN_EXE_moat"))
        .env("MOAT_DEMO_PROFILE", "dev")
        // The outer cargo's settings are for the host build, not the wasm one.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .expect("run scripts/demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "scripts/demo --check failed ({:?})\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status.code()
    );
    assert!(stderr.contains("demo check passed"), "{stderr}");
    // The Keep attested as nil here (no SNP/TDX on CI): the check must say so, not hide it.
    assert!(stdout.contains("attested:     false"), "{stdout}");
    assert!(stdout.contains("/demo/cryptle"), "{stdout}");
}

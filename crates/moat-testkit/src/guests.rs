//! Builds the guest programs in `tests/guests` once per process and locates their modules.
//!
//! Tests must exercise the current sources, so the build runs every time a test process first
//! asks for a module (cargo makes it a no-op when nothing changed). It runs from the repository
//! root so the repository's `.cargo/config.toml` applies (`--cfg tokio_unstable` for tokio's `net`
//! on wasm32-wasip1), and it writes to `target/guests` so it never contends with the host build's
//! lock.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The repository root (two levels above this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root exists")
}

/// The directory holding the built `*.wasm` modules, building them first if this process has not.
/// Panics with cargo's output if the build fails: a test that cannot get its guest must not pass.
pub fn module_dir() -> &'static Path {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match BUILT.get_or_init(build) {
        Ok(dir) => dir,
        Err(message) => panic!("{message}"),
    }
}

/// The path of guest `name` (a binary in `tests/guests/programs/src/bin`), e.g. `"echo-std"`.
pub fn module(name: &str) -> PathBuf {
    let path = module_dir().join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "guest {name:?} was not built: no {}",
        path.display()
    );
    path
}

fn build() -> Result<PathBuf, String> {
    let root = repo_root();
    let target_dir = root.join("target/guests");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(&cargo)
        .current_dir(&root)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip1",
            "--manifest-path",
        ])
        .arg(root.join("tests/guests/Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target_dir)
        // Flags from the environment would replace the config's `--cfg tokio_unstable`.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .map_err(|e| format!("cannot run {cargo:?} to build the guest programs: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "building the guest programs failed ({}); is the wasm32-wasip1 target installed \
             (`rustup toolchain install` reads rust-toolchain.toml)?\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(target_dir.join("wasm32-wasip1/release"))
}

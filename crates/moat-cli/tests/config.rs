//! `moat config init` and `moat config check` through the real binary: files written and
//! refused, summaries, JSON, and exit codes (0 valid, 1 invalid).

use std::path::Path;
use std::process::{Command, Output};

fn moat(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_moat"))
        .args(args)
        .current_dir(cwd)
        .env_remove("MOAT_CONFIG")
        .output()
        .expect("run moat")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn init_writes_the_template_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let out = moat(&["config", "init"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let written = std::fs::read_to_string(dir.path().join("Moat.toml")).unwrap();
    assert_eq!(written, moat_config::template());

    std::fs::write(dir.path().join("Moat.toml"), "# mine\n").unwrap();
    let out = moat(&["config", "init"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("--force"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("Moat.toml")).unwrap(),
        "# mine\n"
    );

    let out = moat(&["config", "init", "Moat.toml", "--force"], dir.path());
    assert!(out.status.success());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("Moat.toml")).unwrap(),
        written
    );

    let out = moat(&["config", "init", "-"], dir.path());
    assert!(out.status.success());
    assert_eq!(text(&out.stdout), written);
}

#[test]
fn check_prints_the_fd_layout_of_a_valid_config() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::write(
        dir.path().join("Enarx.toml"),
        "args = [\"x\"]\n[[files]]\nkind = \"stdin\"\n[[files]]\nkind = \"stdout\"\n[[files]]\nkind = \"stderr\"\n\
         [[files]]\nkind = \"listen\"\nname = \"LISTEN\"\nprot = \"tls\"\nport = 8443\n\
         [[dirs]]\nhost = \"data\"\nguest = \"/data\"\nread_only = true\n",
    )
    .unwrap();
    let out = moat(&["config", "check", "Enarx.toml"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("FD_COUNT=4"), "{stdout}");
    assert!(
        stdout.contains("FD_NAMES=stdin:stdout:stderr:LISTEN"),
        "{stdout}"
    );
    assert!(stdout.contains("[::]:8443"), "{stdout}");
    assert!(stdout.contains("argv: main.wasm x"), "{stdout}");
    assert!(stdout.contains("/data"), "{stdout}");
    assert!(stdout.contains("read-only"), "{stdout}");
    assert!(stdout.contains("instances: 1\n"), "{stdout}");

    let out = moat(&["config", "check", "--json", "Enarx.toml"], dir.path());
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["valid"], true);
    assert_eq!(json["fd_count"], 4);
    assert_eq!(json["fd_names"], "stdin:stdout:stderr:LISTEN");
    assert_eq!(json["files"][3]["fd"], 3);
    assert_eq!(json["files"][3]["kind"], "listen");
    assert_eq!(json["files"][3]["port"], 8443);
    assert_eq!(json["dirs"][0]["fd"], 4);
    assert_eq!(json["argv"][0], "main.wasm");
    assert_eq!(json["instances"], 1);
}

#[test]
fn check_reports_an_invalid_config_with_file_line_column_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Moat.toml"),
        "[[files]]\nkind = \"listen\"\nname = \"web\"\nport = 70000\n",
    )
    .unwrap();
    let out = moat(&["config", "check", "Moat.toml"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("Moat.toml:4:8:"), "{stderr}");
    assert!(stderr.contains("not a port"), "{stderr}");

    let out = moat(&["config", "check", "--json", "Moat.toml"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["valid"], false);
    assert_eq!(json["line"], 4);
    assert_eq!(json["column"], 8);

    let out = moat(&["config", "check", "missing.toml"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("missing.toml"));
}

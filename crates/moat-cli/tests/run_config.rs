//! What a workload gets from its config and flags (arguments, environment, stdin/stdout, a
//! pre-opened directory, its exit status), and how `moat run` answers bad input: invalid or
//! truncated wasm, missing imports, bad configs, missing files. Each bad input gets a clear
//! message and a non-zero exit code from `exit.rs` (125 Moat failed before the workload ran,
//! 126 the module cannot run).

mod common;

use common::moat;
use moat_testkit::process::Moat;
use moat_testkit::{configs, guests, net};

const MOAT_ERROR: i32 = 125;
const MODULE_INVALID: i32 = 126;

#[test]
fn args_env_stdin_stdout_and_a_preopened_directory() {
    let keep = Moat::run(moat(), guests::module("stdio-dir"));
    // The Keep's workdir goes with the finished process; the directory outlives it.
    let host_dir = tempfile::tempdir().unwrap();
    let data = host_dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("in.txt"), "from the host\n").unwrap();
    let config =
        String::from("args = [\"/data\", \"two words\"]\n[env]\nGREETING = \"hi there\"\n\n")
            + &configs::stdio()
            + &configs::dir(&data, "/data", false);
    let done = keep
        .config(&config)
        .guest_args(["from-cli"])
        .env("MOAT_TEST_SECRET", "must not leak")
        .output_with_stdin(b"piped input\n");
    done.assert_code(0);
    let lines = done.stdout_lines();
    for want in [
        "arg[0]=main.wasm",
        "arg[1]=/data",
        "arg[2]=two words",
        "arg[3]=from-cli",
        "env GREETING=hi there",
        "env FD_COUNT=3",
        "env FD_NAMES=stdin:stdout:stderr",
        "stdin=piped input",
        "in.txt=from the host",
        "wrote out.txt",
        "entry in.txt",
    ] {
        assert!(
            lines.contains(&want),
            "missing {want:?} in\n{}",
            done.stdout
        );
    }
    let env: Vec<&&str> = lines.iter().filter(|l| l.starts_with("env ")).collect();
    assert_eq!(
        env.len(),
        3,
        "only the configured environment reaches the workload: {env:?}"
    );
    assert_eq!(
        std::fs::read_to_string(data.join("out.txt")).unwrap(),
        "copied: from the host\n"
    );
}

#[test]
fn a_read_only_directory_cannot_be_written() {
    let keep = Moat::run(moat(), guests::module("stdio-dir"));
    let data = keep.workdir().join("ro");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("in.txt"), "read me").unwrap();
    let config =
        String::from("args = [\"/ro\"]\n") + &configs::stdio() + &configs::dir(&data, "/ro", true);
    let done = keep.config(&config).output();
    done.assert_code(0);
    assert!(done.stdout.contains("in.txt=read me"), "{}", done.stdout);
    assert!(done.stdout.contains("write out.txt:"), "{}", done.stdout);
    assert!(!data.join("out.txt").exists());
}

#[test]
fn directories_and_environment_from_flags() {
    let keep = Moat::run(moat(), guests::module("stdio-dir"));
    let data = keep.workdir().join("flagdir");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("in.txt"), "via flags").unwrap();
    let dir_flag = format!("{}:/mnt", data.display());
    let done = keep
        .args(["--dir", &dir_flag, "--env", "MODE=flags"])
        .guest_args(["/mnt"])
        .output();
    done.assert_code(0);
    assert!(done.stdout.contains("env MODE=flags"), "{}", done.stdout);
    assert!(done.stdout.contains("in.txt=via flags"), "{}", done.stdout);
}

#[test]
fn the_workloads_exit_status_becomes_moats() {
    Moat::run(moat(), guests::module("hello"))
        .output()
        .assert_code(0);
    let done = Moat::run(moat(), guests::module("hello"))
        .guest_args(["7"])
        .output();
    done.assert_code(7);
    assert!(done.stdout.contains("hello from a Keep"));
}

#[test]
fn no_config_means_stdio_only() {
    let done = Moat::run(moat(), guests::module("fdinfo")).output();
    done.assert_code(0);
    let lines = done.stdout_lines();
    assert!(lines.contains(&"FD_COUNT=3"), "{}", done.stdout);
    assert!(
        lines.contains(&"FD_NAMES=stdin:stdout:stderr"),
        "{}",
        done.stdout
    );
    assert!(
        !done.stdout.contains("preopen"),
        "no directory without a config: {}",
        done.stdout
    );
}

/// Run `module_bytes` as a module and return the outcome.
fn run_bytes(name: &str, module_bytes: &[u8]) -> moat_testkit::process::Finished {
    let keep = Moat::run(moat(), name);
    std::fs::write(keep.workdir().join(name), module_bytes).unwrap();
    keep.output()
}

#[test]
fn invalid_wasm_is_refused() {
    let done = run_bytes("garbage.wasm", b"this is not a wasm module at all");
    done.assert_code(MODULE_INVALID);
    done.assert_stderr_mentions(&["garbage.wasm"]);
}

#[test]
fn truncated_wasm_is_refused() {
    let whole = std::fs::read(guests::module("hello")).unwrap();
    let done = run_bytes("truncated.wasm", &whole[..whole.len() / 2]);
    done.assert_code(MODULE_INVALID);
    done.assert_stderr_mentions(&["truncated.wasm"]);
}

#[test]
fn mutated_wasm_is_refused_without_a_panic() {
    let mut bytes = std::fs::read(guests::module("hello")).unwrap();
    // Corrupt bytes in the code section's neighbourhood (past the header).
    for i in (64..bytes.len()).step_by(97).take(40) {
        bytes[i] ^= 0xa5;
    }
    let done = run_bytes("mutated.wasm", &bytes);
    assert!(done.code.is_some() && done.code != Some(0), "{done:?}");
    assert!(!done.stderr.contains("panicked"), "{}", done.stderr);
}

/// A minimal module importing `wasi_snapshot_preview1.sock_open` (which Moat does not provide:
/// workloads cannot create sockets) and exporting `_start`.
fn module_importing_missing_function() -> Vec<u8> {
    let mut m = b"\0asm\x01\0\0\0".to_vec();
    // type section: one type () -> ()
    m.extend([0x01, 0x04, 0x01, 0x60, 0x00, 0x00]);
    // import section: "wasi_snapshot_preview1" "sock_open" func type 0
    let module = b"wasi_snapshot_preview1";
    let field = b"sock_open";
    let mut import = vec![0x01, module.len() as u8];
    import.extend(module);
    import.push(field.len() as u8);
    import.extend(field);
    import.extend([0x00, 0x00]);
    m.push(0x02);
    m.push(import.len() as u8);
    m.extend(import);
    // function section: one function of type 0
    m.extend([0x03, 0x02, 0x01, 0x00]);
    // export section: "_start" func 1
    m.extend([0x07, 0x0a, 0x01, 0x06]);
    m.extend(b"_start");
    m.extend([0x00, 0x01]);
    // code section: one body, no locals, `end`
    m.extend([0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b]);
    m
}

#[test]
fn a_module_importing_what_moat_lacks_is_refused_by_name() {
    let done = run_bytes("needs-sock-open.wasm", &module_importing_missing_function());
    done.assert_code(MODULE_INVALID);
    done.assert_stderr_mentions(&["sock_open"]);
}

#[test]
fn a_missing_module_file_is_a_clear_error() {
    let done = Moat::run(moat(), "/nonexistent/dir/missing.wasm").output();
    done.assert_code(MOAT_ERROR);
    done.assert_stderr_mentions(&["missing.wasm"]);
}

/// Run hello.wasm with `config` and expect Moat to refuse it before starting.
fn refused_config(config: &str, mentions: &[&str]) {
    let done = Moat::run(moat(), guests::module("hello"))
        .config(config)
        .output();
    done.assert_code(MOAT_ERROR);
    done.assert_stderr_mentions(&["Moat.toml"]);
    done.assert_stderr_mentions(mentions);
    assert!(
        !done.stdout.contains("hello from a Keep"),
        "the workload must not start"
    );
}

#[test]
fn unknown_keys_are_errors_with_line_and_column() {
    refused_config(
        &(configs::stdio() + "[[files]]\nkind = \"null\"\ncolour = \"blue\"\n"),
        &["colour", "Moat.toml:12:"],
    );
    refused_config("stewart = \"https://example.com\"\n", &["stewart"]);
}

#[test]
fn bad_ports_are_errors() {
    refused_config(
        &(configs::stdio()
            + "[[files]]\nkind = \"listen\"\nname = \"x\"\nprot = \"tcp\"\nport = 70000\n"),
        &["port"],
    );
    refused_config(
        &(configs::stdio()
            + "[[files]]\nkind = \"listen\"\nname = \"x\"\nprot = \"tcp\"\nport = \"eighty\"\n"),
        &["port"],
    );
}

#[test]
fn name_clashes_are_errors() {
    let port_a = net::free_port();
    let port_b = net::free_port();
    refused_config(
        &(configs::stdio()
            + &configs::listen("web", "tcp", port_a)
            + &configs::listen("web", "tcp", port_b)),
        &["web"],
    );
}

#[test]
fn names_with_colons_are_errors() {
    refused_config(
        &(configs::stdio() + "[[files]]\nkind = \"null\"\nname = \"a:b\"\n"),
        &["a:b"],
    );
}

#[test]
fn missing_files_named_by_the_config_are_errors() {
    refused_config(
        &(configs::stdio()
            + &configs::dir(std::path::Path::new("/nonexistent/moat-dir"), "/d", true)),
        &["/nonexistent/moat-dir"],
    );
    refused_config(
        &(configs::stdio()
            + &configs::connect(
                "up",
                "tls",
                "localhost",
                443,
                "ca = \"/nonexistent/ca.pem\"\n",
            )),
        &["/nonexistent/ca.pem"],
    );
}

#[test]
fn malformed_toml_is_an_error() {
    refused_config("[[files]\nkind = ", &["Moat.toml"]);
}

#[test]
fn a_missing_config_file_is_an_error() {
    let done = Moat::run(moat(), guests::module("hello"))
        .args(["--config", "/nonexistent/Moat.toml"])
        .output();
    done.assert_code(MOAT_ERROR);
    done.assert_stderr_mentions(&["/nonexistent/Moat.toml"]);
}

#[test]
fn a_port_already_in_use_is_an_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let done = Moat::run(moat(), guests::module("hello"))
        .config(&(configs::stdio() + &configs::listen("web", "tcp", port)))
        .output();
    done.assert_code(MOAT_ERROR);
    done.assert_stderr_mentions(&[&port.to_string()]);
}

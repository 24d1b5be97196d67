//! The config test set: every rule of enarx-compat.md (fixtures under `configs/enarx`), Moat's
//! additions (`configs/valid`), and bad inputs (`configs/invalid`, each file's first line says
//! where its error must point and what it must say), plus oversized, non-UTF-8, deeply nested
//! and mutated inputs, command-line overrides and the template.

use std::path::{Path, PathBuf};
use std::time::Duration;

use moat_config::*;

fn configs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs")
}

fn load(rel: &str) -> Config {
    let path = configs().join(rel);
    Config::load(&path).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn listen(entry: &FileEntry) -> &Listen {
    match &entry.kind {
        FileKind::Listen(l) => l,
        other => panic!("{} is {other:?}, not listen", entry.name),
    }
}

fn connect(entry: &FileEntry) -> &Connect {
    match &entry.kind {
        FileKind::Connect(c) => c,
        other => panic!("{} is {other:?}, not connect", entry.name),
    }
}

#[test]
fn every_invalid_fixture_fails_at_the_stated_place_with_the_stated_message() {
    let mut checked = 0;
    let mut failures = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(configs().join("invalid"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let text = std::fs::read_to_string(&path).unwrap();
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect "))
            .unwrap_or_else(|| panic!("{} has no `# expect` line", path.display()));
        let (position, message) = expect.split_once(' ').unwrap();
        let (line, column) = position.split_once(':').unwrap();
        let (line, column): (usize, usize) = (line.parse().unwrap(), column.parse().unwrap());

        let err = match Config::load(&path) {
            Ok(_) => {
                failures.push(format!("{}: loaded without error", path.display()));
                continue;
            }
            Err(err) => err,
        };
        let rendered = err.to_string();
        let want_origin = Origin::Source {
            file: Some(path.clone()),
            line,
            column,
        };
        if err.origin() != Some(&want_origin)
            || !rendered.starts_with(&format!("{}:{line}:{column}: ", path.display()))
            || !rendered.contains(message)
        {
            failures.push(format!(
                "{}:\n  got:      {rendered}\n  expected: {line}:{column} {message}",
                path.display()
            ));
        }
        checked += 1;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked >= 50, "only {checked} invalid fixtures");
}

#[test]
fn every_enarx_and_moat_fixture_loads() {
    for dir in ["enarx", "valid"] {
        for entry in std::fs::read_dir(configs().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
            }
        }
    }
}

#[test]
fn no_config_means_stdin_stdout_stderr() {
    let config = Config::default();
    let kinds: Vec<_> = config.files.iter().map(|f| f.kind.clone()).collect();
    assert_eq!(kinds, [FileKind::Stdin, FileKind::Stdout, FileKind::Stderr]);
    assert_eq!(config.fd_count(), 3);
    assert_eq!(config.fd_names(), "stdin:stdout:stderr");
    assert_eq!(config.guest_args(), ["main.wasm"]);
    assert!(config.dirs.is_empty());
}

#[test]
fn enarx_cryptle_config_puts_the_listener_at_fd_3() {
    let config = load("enarx/cryptle.toml");
    assert_eq!(config.fd_count(), 4);
    assert_eq!(config.fd_names(), "stdin:stdout:stderr:LISTEN");
    let web = listen(&config.files[3]);
    assert_eq!(web.prot, Protocol::Tls);
    assert_eq!(web.port, 8443);
    assert_eq!(web.addr, "::".parse::<std::net::IpAddr>().unwrap());
    assert_eq!(web.tls, ListenTls::default());
    let env = config.guest_env();
    assert!(env.contains(&("FD_COUNT".into(), "4".into())));
    assert!(env.contains(&("FD_NAMES".into(), "stdin:stdout:stderr:LISTEN".into())));
}

#[test]
fn enarx_full_config_means_what_it_meant_in_enarx() {
    let config = load("enarx/full.toml");
    assert_eq!(
        config.steward.as_deref(),
        Some("https://steward.example.com")
    );
    // argv[0] is main.wasm, then args verbatim (empty strings included).
    assert_eq!(
        config.guest_args(),
        ["main.wasm", "--first", "second arg", ""]
    );
    assert_eq!(config.env["RUST_LOG"], "info");
    assert_eq!(config.env["WITH SPACE"], "a = b");
    // Entry i is fd i; unnamed entries are named after their kind, a connect after its host.
    assert_eq!(
        config.fd_names(),
        "stdin:out:stderr:null:tcp-default-port:tls-default-port:localhost:upstream:spare"
    );
    assert_eq!(config.fd_count(), 9);
    assert_eq!(config.files[3].kind, FileKind::Null);
    // Default ports: 80 for tcp, 443 for tls; default addr ::.
    let tcp = listen(&config.files[4]);
    assert_eq!((tcp.prot, tcp.port), (Protocol::Tcp, 80));
    assert_eq!(tcp.addr, DEFAULT_LISTEN_ADDR);
    let tls = listen(&config.files[5]);
    assert_eq!((tls.prot, tls.port), (Protocol::Tls, 443));
    assert_eq!(tls.addr.to_string(), "127.0.0.1");
    let local = connect(&config.files[6]);
    assert_eq!(
        (local.prot, local.host.as_str(), local.port),
        (Protocol::Tcp, "localhost", 80)
    );
    let upstream = connect(&config.files[7]);
    assert_eq!(upstream.port, 8443);
    assert_eq!(upstream.server_name(), "example.com");
    assert_eq!(upstream.tls, ConnectTls::default());
    assert!(upstream.tls.platform_roots);
    let env = config.guest_env();
    assert_eq!(env.last().unwrap().0, "FD_NAMES");
}

#[test]
fn enarx_empty_config_gives_no_fds() {
    let config = load("enarx/empty.toml");
    assert_eq!(config.fd_count(), 0);
    assert_eq!(config.fd_names(), "");
    assert!(config.args.is_empty() && config.env.is_empty() && config.steward.is_none());
    assert_eq!(config.limits, Limits::default());
}

#[test]
fn enarx_inline_tables_and_arrays_parse() {
    let config = load("enarx/inline.toml");
    assert_eq!(config.env.len(), 2);
    assert_eq!(config.fd_names(), "stdin:stdout:stderr:backend");
    let backend = connect(&config.files[3]);
    assert_eq!((backend.host.as_str(), backend.port), ("127.0.0.1", 9000));
}

#[test]
fn prot_may_be_omitted_and_defaults_to_tls() {
    let config = Config::from_toml_str(
        "[[files]]\nkind = \"listen\"\nname = \"a\"\n[[files]]\nkind = \"connect\"\nhost = \"h\"\n",
        Path::new("."),
    )
    .unwrap();
    let a = listen(&config.files[0]);
    assert_eq!((a.prot, a.port), (Protocol::Tls, 443));
    let h = connect(&config.files[1]);
    assert_eq!((h.prot, h.port), (Protocol::Tls, 443));
    assert_eq!(config.files[1].name, "h");
}

#[test]
fn moat_additions_parse_with_paths_relative_to_the_file() {
    let base = configs().join("valid");
    let config = load("valid/moat-additions.toml");
    assert_eq!(config.fd_names(), "stdin:stdout:stderr:web:api:ipv6");
    let web = listen(&config.files[3]);
    assert_eq!(web.port, 0);
    assert_eq!(
        web.tls.client_ca.as_deref(),
        Some(base.join("pki/ca.pem").as_path())
    );
    assert_eq!(web.tls.client_auth, ClientAuthMode::Optional);
    let api = connect(&config.files[4]);
    assert_eq!(
        api.tls.ca.as_deref(),
        Some(base.join("pki/ca.pem").as_path())
    );
    assert!(!api.tls.platform_roots);
    assert_eq!(api.server_name(), "internal.example.com");
    assert!(api.tls.present_identity);
    assert_eq!(listen(&config.files[5]).addr.to_string(), "::1");

    assert_eq!(config.dirs.len(), 2);
    assert_eq!(config.dirs[0].host, base.join("data"));
    assert!(config.dirs[0].host.is_absolute());
    assert_eq!(config.dirs[0].guest, "/data");
    assert!(config.dirs[0].read_only);
    // Guest path defaults to the host path as written; read_only defaults to false.
    assert_eq!(config.dirs[1].guest, "data");
    assert!(!config.dirs[1].read_only);
    assert_eq!(config.dir_fd(0), 6);
    assert_eq!(config.dir_fd(1), 7);

    assert_eq!(
        config.limits,
        Limits {
            max_memory: 64 << 20,
            wall_time: Some(Duration::from_secs(90)),
            cpu_time: Some(Duration::from_secs(5)),
            max_connections_per_listener: 16,
            handshake_timeout: Duration::from_millis(2500),
        }
    );
    // Loading does not depend on the current directory: the same file from another cwd-relative
    // spelling resolves the same way.
    let again = Config::load(&base.join("../valid/moat-additions.toml")).unwrap();
    assert_eq!(
        again.dirs[0].host.canonicalize().unwrap(),
        base.join("data").canonicalize().unwrap()
    );
}

#[test]
fn limits_default_to_sane_values() {
    let limits = Limits::default();
    assert_eq!(limits.max_memory, 512 << 20);
    assert_eq!(limits.wall_time, None);
    assert_eq!(limits.cpu_time, None);
    assert_eq!(limits.max_connections_per_listener, 1024);
    assert_eq!(limits.handshake_timeout, Duration::from_secs(10));
}

#[test]
fn oversized_configs_are_refused_before_parsing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.toml");
    let line = "# padding padding padding padding padding padding padding padding\n";
    let text = line.repeat((MAX_CONFIG_BYTES as usize / line.len()) + 2);
    std::fs::write(&path, &text).unwrap();
    match Config::load(&path) {
        Err(ConfigError::TooLarge { size, max, .. }) => {
            assert_eq!(max, MAX_CONFIG_BYTES);
            assert!(size > MAX_CONFIG_BYTES);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        Config::from_toml_str(&text, dir.path()),
        Err(ConfigError::TooLarge { .. })
    ));
}

#[test]
fn large_but_allowed_configs_parse() {
    // Many entries, just under the size limit: parses, and the names stay in order.
    let mut text = String::new();
    let mut n = 0;
    while text.len() < (MAX_CONFIG_BYTES as usize) - 200 {
        text.push_str(&format!("[[files]]\nkind = \"null\"\nname = \"n{n}\"\n"));
        n += 1;
    }
    let config = Config::from_toml_str(&text, Path::new(".")).unwrap();
    assert_eq!(config.fd_count(), n);
    assert_eq!(config.files[n - 1].name, format!("n{}", n - 1));
}

#[test]
fn deeply_nested_values_are_an_error_not_a_crash() {
    for depth in [1_000, 100_000] {
        let text = format!("args = {}{}", "[".repeat(depth), "]".repeat(depth));
        let err = Config::from_toml_str(&text, Path::new(".")).unwrap_err();
        assert!(matches!(err, ConfigError::Syntax { .. }), "{err}");
        assert!(err.to_string().contains("recursion"), "{err}");
        let text = format!("x = {}", "{a = ".repeat(depth));
        assert!(Config::from_toml_str(&text, Path::new(".")).is_err());
    }
}

#[test]
fn non_utf8_is_a_syntax_error_with_position() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("latin1.toml");
    std::fs::write(&path, b"[[files]]\nkind = \"n\xe9\"\n").unwrap();
    let err = Config::load(&path).unwrap_err();
    assert!(matches!(err, ConfigError::Syntax { .. }), "{err:?}");
    assert_eq!(
        err.origin(),
        Some(&Origin::Source {
            file: Some(path.clone()),
            line: 2,
            column: 10
        })
    );
    assert!(err.to_string().contains("not UTF-8"), "{err}");
}

#[test]
fn missing_file_is_a_read_error_naming_it() {
    let err = Config::load(Path::new("/nonexistent/Moat.toml")).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }));
    assert!(err.to_string().contains("/nonexistent/Moat.toml"), "{err}");
}

#[test]
fn mutated_bytes_never_panic() {
    let original = std::fs::read(configs().join("enarx/full.toml")).unwrap();
    let replacements: &[&[u8]] = &[b"\"", b"[", b"]", b"=", b"\0", b"\xff", b"\n", b":", b"9"];
    let mut errors = 0;
    for i in 0..original.len() {
        for with in replacements {
            let mut bytes = original.clone();
            bytes.splice(i..i + 1, with.iter().copied());
            let dir = std::env::temp_dir();
            let text = String::from_utf8_lossy(&bytes);
            if Config::from_toml_str(&text, &dir).is_err() {
                errors += 1;
            }
        }
        // Truncation at every byte.
        let text = String::from_utf8_lossy(&original[..i]);
        let _ = Config::from_toml_str(&text, Path::new("."));
    }
    assert!(errors > 0);
}

#[test]
fn template_is_valid_and_so_is_every_example_in_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("Moat.toml");
    std::fs::write(&path, template()).unwrap();
    let config = Config::load(&path).unwrap();
    assert_eq!(config.fd_names(), "stdin:stdout:stderr");

    // Uncomment every example line ("# key = ..."; prose uses "##").
    let uncommented: String = template()
        .lines()
        .map(|l| l.strip_prefix("# ").unwrap_or(l))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("clients-ca.pem"), "").unwrap();
    std::fs::write(dir.path().join("api-ca.pem"), "").unwrap();
    std::fs::write(&path, uncommented).unwrap();
    let config = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.fd_names(), "stdin:stdout:stderr:web:api");
    assert_eq!(config.dirs.len(), 1);
    assert_eq!(
        config.steward.as_deref(),
        Some("https://steward.example.com")
    );
    assert_eq!(config.limits.wall_time, Some(Duration::from_secs(3600)));
}

fn base() -> Config {
    load("enarx/cryptle.toml")
}

#[test]
fn overrides_add_and_replace() {
    let cwd = configs().join("valid");
    let mut config = base();
    config
        .apply_in(
            &Overrides {
                env: vec!["A=1".into(), "B=x=y".into()],
                args: vec!["--flag".into()],
                dirs: vec!["data:/d:ro".into(), "data".into()],
                listen: vec![
                    "LISTEN=tcp://127.0.0.1:9000".into(),
                    "admin=tls://[::1]:9443".into(),
                ],
                connect: vec!["db=tcp://db.internal:5432".into(), "v6=tls://[::1]".into()],
                max_memory: Some("1GiB".into()),
                wall_time: Some("2m".into()),
                cpu_time: Some("30".into()),
                max_connections_per_listener: Some("8".into()),
                handshake_timeout: Some("3s".into()),
                instances: Some("2".into()),
            },
            &cwd,
        )
        .unwrap();
    assert_eq!(config.env["A"], "1");
    assert_eq!(config.env["B"], "x=y");
    assert_eq!(config.guest_args(), ["main.wasm", "--flag"]);
    // An existing socket name is replaced in place (same fd); new names append.
    assert_eq!(config.fd_names(), "stdin:stdout:stderr:LISTEN:admin:db:v6");
    let replaced = listen(&config.files[3]);
    assert_eq!(
        (replaced.prot, replaced.addr.to_string(), replaced.port),
        (Protocol::Tcp, "127.0.0.1".into(), 9000)
    );
    assert!(matches!(config.files[3].origin, Origin::Flag(_)));
    let admin = listen(&config.files[4]);
    assert_eq!(
        (admin.prot, admin.addr.to_string(), admin.port),
        (Protocol::Tls, "::1".into(), 9443)
    );
    let db = connect(&config.files[5]);
    assert_eq!(
        (db.prot, db.host.as_str(), db.port),
        (Protocol::Tcp, "db.internal", 5432)
    );
    let v6 = connect(&config.files[6]);
    assert_eq!((v6.host.as_str(), v6.port), ("::1", 443));
    assert_eq!(config.dirs.len(), 2);
    assert_eq!(config.dirs[0].host, cwd.join("data"));
    assert_eq!(
        (config.dirs[0].guest.as_str(), config.dirs[0].read_only),
        ("/d", true)
    );
    assert_eq!(
        (config.dirs[1].guest.as_str(), config.dirs[1].read_only),
        ("data", false)
    );
    assert_eq!(config.limits.max_memory, 1 << 30);
    assert_eq!(config.limits.wall_time, Some(Duration::from_secs(120)));
    assert_eq!(config.limits.cpu_time, Some(Duration::from_secs(30)));
    assert_eq!(config.limits.max_connections_per_listener, 8);
    assert_eq!(config.limits.handshake_timeout, Duration::from_secs(3));
    assert_eq!(config.instances, 2);

    // A --dir at an existing guest path replaces that directory.
    config
        .apply_in(
            &Overrides {
                dirs: vec!["data:/d".into()],
                ..Default::default()
            },
            &cwd,
        )
        .unwrap();
    assert_eq!(config.dirs.len(), 2);
    assert!(!config.dirs[0].read_only);
}

#[test]
fn replacing_a_tls_listener_keeps_its_tls_options() {
    let mut config = load("valid/moat-additions.toml");
    config
        .apply_in(
            &Overrides {
                listen: vec!["web=tls://127.0.0.1:0".into()],
                ..Default::default()
            },
            Path::new("."),
        )
        .unwrap();
    assert_eq!(
        listen(&config.files[3]).tls.client_auth,
        ClientAuthMode::Optional
    );
    config
        .apply_in(
            &Overrides {
                listen: vec!["web=tcp://127.0.0.1:0".into()],
                ..Default::default()
            },
            Path::new("."),
        )
        .unwrap();
    assert_eq!(listen(&config.files[3]).tls, ListenTls::default());
}

#[test]
fn bad_overrides_name_the_flag() {
    let cases: &[(Overrides, &str, &str)] = &[
        (
            Overrides {
                env: vec!["NOVALUE".into()],
                ..Default::default()
            },
            "--env NOVALUE",
            "expected KEY=VALUE",
        ),
        (
            Overrides {
                env: vec!["FD_NAMES=x".into()],
                ..Default::default()
            },
            "--env FD_NAMES=x",
            "set by Moat",
        ),
        (
            Overrides {
                listen: vec!["web".into()],
                ..Default::default()
            },
            "--listen web",
            "expected NAME=tls://",
        ),
        (
            Overrides {
                listen: vec!["web=udp://0.0.0.0:1".into()],
                ..Default::default()
            },
            "--listen web=udp://0.0.0.0:1",
            "unknown scheme",
        ),
        (
            Overrides {
                listen: vec!["web=tls://0.0.0.0:99999".into()],
                ..Default::default()
            },
            "--listen web=tls://0.0.0.0:99999",
            "not a port",
        ),
        (
            Overrides {
                listen: vec!["web=tls://example.com:1".into()],
                ..Default::default()
            },
            "--listen web=tls://example.com:1",
            "not an IP address",
        ),
        (
            Overrides {
                listen: vec!["a:b=tls://0.0.0.0:1".into()],
                ..Default::default()
            },
            "--listen a:b=tls://0.0.0.0:1",
            "contains `:`",
        ),
        (
            Overrides {
                listen: vec!["stdout=tls://0.0.0.0:1".into()],
                ..Default::default()
            },
            "--listen stdout=tls://0.0.0.0:1",
            "already used",
        ),
        (
            Overrides {
                listen: vec!["x=tls://[::1:1".into()],
                ..Default::default()
            },
            "--listen x=tls://[::1:1",
            "unclosed",
        ),
        (
            Overrides {
                connect: vec!["db=tcp://:5432".into()],
                ..Default::default()
            },
            "--connect db=tcp://:5432",
            "host is missing",
        ),
        (
            Overrides {
                connect: vec!["db=tcp://h:0".into()],
                ..Default::default()
            },
            "--connect db=tcp://h:0",
            "port 0",
        ),
        (
            Overrides {
                connect: vec!["=tcp://h:1".into()],
                ..Default::default()
            },
            "--connect =tcp://h:1",
            "empty",
        ),
        (
            Overrides {
                dirs: vec!["no-such-dir".into()],
                ..Default::default()
            },
            "--dir no-such-dir",
            "no such host directory",
        ),
        (
            Overrides {
                dirs: vec!["a:b:c:ro".into()],
                ..Default::default()
            },
            "--dir a:b:c:ro",
            "expected HOST[:GUEST][:ro]",
        ),
        (
            Overrides {
                max_memory: Some("10".into()),
                ..Default::default()
            },
            "--max-memory 10",
            "below one wasm page",
        ),
        (
            Overrides {
                wall_time: Some("0ms".into()),
                ..Default::default()
            },
            "--wall-time 0ms",
            "longer than zero",
        ),
        (
            Overrides {
                cpu_time: Some("1 week".into()),
                ..Default::default()
            },
            "--cpu-time 1 week",
            "unknown duration unit",
        ),
        (
            Overrides {
                max_connections_per_listener: Some("-3".into()),
                ..Default::default()
            },
            "--max-connections -3",
            "expected a number",
        ),
        (
            Overrides {
                instances: Some("0".into()),
                ..Default::default()
            },
            "--instances 0",
            "use 1 to 256",
        ),
        (
            Overrides {
                instances: Some("two".into()),
                ..Default::default()
            },
            "--instances two",
            "expected a number from 1 to 256",
        ),
    ];
    for (overrides, flag, message) in cases {
        let mut config = base();
        let err = config.apply_in(overrides, Path::new(".")).unwrap_err();
        let text = err.to_string();
        assert_eq!(
            err.origin(),
            Some(&Origin::Flag(flag.to_string())),
            "{text}"
        );
        assert!(text.contains(message), "{flag}: {text}");
    }
}

#[test]
fn json_summary_serializes() {
    let config = load("valid/moat-additions.toml");
    let value = serde_json::to_value(&config).unwrap();
    assert_eq!(value["files"][3]["kind"], "listen");
    assert_eq!(value["limits"]["handshake_timeout"], "2500ms");
    assert!(
        value["files"][3]["origin"]
            .as_str()
            .unwrap()
            .ends_with(":11:1")
    );
}

#[test]
fn connect_hosts_are_dns_names_or_addresses() {
    let host = |h: &str| {
        Config::from_toml_str(
            &format!("[[files]]\nkind = \"connect\"\nname = \"c\"\nhost = \"{h}\"\n"),
            Path::new("."),
        )
    };
    for ok in [
        "example.com",
        "example.com.",
        "xn--bcher-kva.example",
        "10.0.0.1",
        "::1",
        "a_b-c",
    ] {
        assert!(host(ok).is_ok(), "{ok}: {:?}", host(ok));
    }
    let long_label = "a".repeat(64);
    for bad in [
        "",
        "a..b",
        ".",
        "a b",
        "http://x",
        long_label.as_str(),
        "[::1]",
    ] {
        assert!(host(bad).is_err(), "{bad} accepted");
    }
}

#[test]
fn instances_default_to_one_and_are_read_from_the_top_level() {
    let base = Path::new(".");
    assert_eq!(Config::default().instances, 1);
    assert_eq!(Config::from_toml_str("", base).unwrap().instances, 1);
    let config = Config::from_toml_str("instances = 4\n[[files]]\nkind = \"stdout\"\n", base);
    assert_eq!(config.unwrap().instances, 4);
    assert_eq!(
        Config::from_toml_str("instances = 256", base)
            .unwrap()
            .instances,
        256
    );
}

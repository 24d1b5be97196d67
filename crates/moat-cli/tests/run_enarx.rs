//! Enarx compatibility: configs written in `Enarx.toml`'s form (enarx-config 0.7.1) parse and mean
//! what they meant under Enarx (see `shared/notes/enarx-compat.md`): entry *i* at fd *i*,
//! `FD_COUNT`/`FD_NAMES` with their default names, `argv[0] = main.wasm`, `env`, unknown keys and
//! `:` in names refused, and Enarx's own example configs serving Moat's echo guests.
//!
//! The last test runs Enarx's published demos (enarx/codex, built unmodified for wasm32-wasip1)
//! when `MOAT_CODEX_DIR` names the directory holding their `.wasm` files; it is `#[ignore]`d
//! because those sources are not part of this repository (see docs/runtime-compat.md).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

use common::{moat, payload, tcp_roundtrip};
use moat_testkit::process::Moat;
use moat_testkit::servers::EchoServer;
use moat_testkit::{guests, net};

fn fdinfo(enarx_toml: &str) -> moat_testkit::process::Finished {
    Moat::run(moat(), guests::module("fdinfo"))
        .config_named("Enarx.toml", enarx_toml)
        .output()
}

#[test]
fn entry_i_is_fd_i_and_unnamed_entries_are_named_after_their_kind_or_host() {
    let server = EchoServer::tcp();
    let listen_port = net::free_port();
    let config = format!(
        r#"args = ["7", "21"]

[env]
LANG = "C"

[[files]]
kind = "stdin"

[[files]]
kind = "stdout"

[[files]]
kind = "stderr"
name = "errors"

[[files]]
name = "LISTEN"
kind = "listen"
prot = "tcp"
addr = "127.0.0.1"
port = {listen_port}

[[files]]
kind = "connect"
prot = "tcp"
host = "localhost"
port = {}

[[files]]
kind = "null"
"#,
        server.addr.port()
    );
    let done = fdinfo(&config);
    done.assert_code(0);
    let lines = done.stdout_lines();
    for want in [
        "argv=main.wasm 7 21",
        "FD_COUNT=6",
        "FD_NAMES=stdin:stdout:errors:LISTEN:localhost:null",
        "fd 3 SOCKET_STREAM",
        "fd 4 SOCKET_STREAM",
    ] {
        assert!(
            lines.contains(&want),
            "missing {want:?} in\n{}",
            done.stdout
        );
    }
}

#[test]
fn stdio_sits_wherever_the_config_lists_it() {
    // Entry 0 is `null` and stdin moves to fd 3: Enarx never reordered entries.
    let config = r#"
[[files]]
kind = "null"

[[files]]
kind = "stdout"

[[files]]
kind = "stderr"

[[files]]
kind = "stdin"
"#;
    let done = fdinfo(config);
    done.assert_code(0);
    assert!(
        done.stdout_lines()
            .contains(&"FD_NAMES=null:stdout:stderr:stdin"),
        "{}",
        done.stdout
    );
}

#[test]
fn enarx_configs_with_unknown_keys_or_bad_names_are_refused() {
    for (config, mentions) in [
        (
            "[[files]]\nkind = \"stdin\"\nfrobnicate = true\n",
            "frobnicate",
        ),
        ("wasm = \"main.wasm\"\n", "wasm"),
        ("[[files]]\nkind = \"stdin\"\nname = \"std:in\"\n", "std:in"),
        ("[[files]]\nkind = \"socket\"\n", "socket"),
        (
            "[[files]]\nkind = \"listen\"\nname = \"x\"\nprot = \"udp\"\nport = 1\n",
            "udp",
        ),
        (
            "[[files]]\nkind = \"listen\"\nprot = \"tcp\"\nport = 1\n",
            "name",
        ),
        (
            "[[files]]\nkind = \"connect\"\nprot = \"tcp\"\nport = 1\n",
            "host",
        ),
    ] {
        let done = fdinfo(config);
        done.assert_code(125);
        done.assert_stderr_mentions(&["Enarx.toml", mentions]);
    }
}

/// Enarx's tokio echo example config (enarx/codex examples/rust/tokio/echo-tcp/Enarx.toml),
/// with its port made free and its address loopback.
fn codex_tokio_echo_config(port: u16) -> String {
    format!(
        r#"#steward = "https://attest.profian.com"

[[files]]
kind = "stdin"

[[files]]
kind = "stdout"

[[files]]
kind = "stderr"

[[files]]
name = "LISTEN"
kind = "listen"
addr = "127.0.0.1"
port = {port}
prot = "tcp"
#prot = "tls"
"#
    )
}

#[test]
fn enarx_example_config_serves_echo_guests_on_fd_3() {
    for guest in ["echo-tokio", "echo-mio"] {
        let port = net::free_port();
        // No arguments: the guests fall back to fd 3, as Enarx's examples hard-code.
        let mut keep = Moat::run(moat(), guests::module(guest))
            .config_named("Enarx.toml", &codex_tokio_echo_config(port))
            .spawn();
        keep.wait_for_stdout("listening");
        let data = payload(50_000, 3);
        assert_eq!(tcp_roundtrip(net::local(port), &data), data, "{guest}");
    }
}

#[test]
fn listen_address_defaults_to_all_interfaces() {
    let port = net::free_port();
    let config = format!(
        "[[files]]\nkind = \"stdin\"\n[[files]]\nkind = \"stdout\"\n[[files]]\nkind = \"stderr\"\n\
         [[files]]\nkind = \"listen\"\nname = \"x\"\nprot = \"tcp\"\nport = {port}\n"
    );
    let mut keep = Moat::run(moat(), guests::module("echo-tokio"))
        .config_named("Enarx.toml", &config)
        .spawn();
    keep.wait_for_stdout("listening");
    assert_eq!(tcp_roundtrip(net::local(port), b"v4 via ::"), b"v4 via ::");
}

/// Enarx's demos from enarx/codex, built unmodified (`cargo build --release --target
/// wasm32-wasip1` with `--cfg tokio_unstable`), run with their own Enarx.toml (ports changed to
/// free ones). Set `MOAT_CODEX_DIR` to the directory holding `fibonacci.wasm`,
/// `chat-server.wasm`, `tokio-echo-tcp.wasm`, `mio-echo-tcp.wasm`, `std-tcp-client.wasm`.
#[test]
#[ignore = "needs enarx/codex demos built outside the repository (MOAT_CODEX_DIR)"]
fn enarx_codex_demos_run_unmodified() {
    let dir = std::path::PathBuf::from(
        std::env::var_os("MOAT_CODEX_DIR").expect("MOAT_CODEX_DIR names the built demos"),
    );
    let stdio = "[[files]]\nkind = \"stdin\"\n\n[[files]]\nkind = \"stdout\"\n\n[[files]]\nkind = \"stderr\"\n\n";

    // fibonacci: args from the config (demos/fibonacci/Enarx.toml).
    let fib = Moat::run(moat(), dir.join("fibonacci.wasm"))
        .config_named(
            "Enarx.toml",
            &format!("args = [\n     \"7\",\n     \"21\"\n]\n\n{stdio}"),
        )
        .output();
    fib.assert_code(0);
    assert!(
        fib.stdout
            .contains("Fibonacci sequence number at index 7 is 13"),
        "{}",
        fib.stdout
    );
    assert!(
        fib.stdout
            .contains("Fibonacci sequence number at index 21 is 10946"),
        "{}",
        fib.stdout
    );
    // ... and from stdin when there are no args.
    let fib = Moat::run(moat(), dir.join("fibonacci.wasm"))
        .config_named("Enarx.toml", stdio)
        .output_with_stdin(b"10\n");
    fib.assert_code(0);
    assert!(fib.stdout.contains("index 10 is 55"), "{}", fib.stdout);

    // tokio and mio echo servers (their Enarx.toml, a free port).
    for (wasm, name) in [
        ("tokio-echo-tcp.wasm", "LISTEN"),
        ("mio-echo-tcp.wasm", "TEST_TCP_LISTEN"),
    ] {
        let port = net::free_port();
        let config = format!(
            "{stdio}[[files]]\nkind = \"listen\"\nprot = \"tcp\"\naddr = \"127.0.0.1\"\nport = {port}\nname = \"{name}\"\n"
        );
        let mut keep = Moat::run(moat(), dir.join(wasm))
            .config_named("Enarx.toml", &config)
            .spawn();
        keep.wait_for_port(port);
        let mut tcp = TcpStream::connect(net::local(port)).unwrap();
        tcp.set_read_timeout(Some(moat_testkit::WAIT)).unwrap();
        if wasm.starts_with("mio") {
            // The mio demo greets first.
            let mut hello = [0u8; 13];
            tcp.read_exact(&mut hello).unwrap();
            assert_eq!(&hello, b"Hello world!\n");
        }
        tcp.write_all(b"echo me\n").unwrap();
        let mut back = [0u8; 8];
        tcp.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"echo me\n", "{wasm}");
    }

    // chat-server: socket named `ingest`, several clients.
    let port = net::free_port();
    let config = format!(
        "{stdio}[[files]]\nname = \"ingest\"\nkind = \"listen\"\nport = {port}\naddr = \"127.0.0.1\"\nprot = \"tcp\"\n"
    );
    let mut keep = Moat::run(moat(), dir.join("chat-server.wasm"))
        .config_named("Enarx.toml", &config)
        .spawn();
    keep.wait_for_port(port);
    // wait_for_port's probe connection also joins and leaves the chat, in an order relative to
    // a's and b's joins that the demo does not fix: read until b's message, then check the set.
    let mut a = BufReader::new(TcpStream::connect(net::local(port)).unwrap());
    let mut first = String::new();
    a.read_line(&mut first).unwrap();
    let mut b = TcpStream::connect(net::local(port)).unwrap();
    b.write_all(b"hi from b\n").unwrap();
    let mut seen = vec![first];
    while !seen.last().unwrap().ends_with(": hi from b\n") {
        assert!(seen.len() < 8, "b's line never reached a: {seen:?}");
        let mut line = String::new();
        a.read_line(&mut line).unwrap();
        seen.push(line);
    }
    let joins = seen
        .iter()
        .filter(|l| l.ends_with(" joined the chat\n"))
        .count();
    assert!(joins >= 2, "a saw its own and b's joins: {seen:?}");

    // std tcp-client: connect fd 3 to an echo server.
    let server = EchoServer::tcp();
    let config = format!(
        "{stdio}[[files]]\nname = \"CONNECT\"\nkind = \"connect\"\nprot = \"tcp\"\nhost = \"127.0.0.1\"\nport = {}\n",
        server.addr.port()
    );
    let client = Moat::run(moat(), dir.join("std-tcp-client.wasm"))
        .config_named("Enarx.toml", &config)
        .output();
    client.assert_code(0);
    assert!(
        client.stdout.contains("GET / HTTP/1.0"),
        "{}",
        client.stdout
    );
    assert!(client.stdout.contains("Finished."), "{}", client.stdout);
}

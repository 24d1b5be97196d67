//! `moat run` with plain-TCP capability sockets: each echo guest (blocking std, tokio, mio), the
//! chat server, the client guest on a `connect` fd, non-blocking calls and `poll_oneoff` mixing a
//! socket, a clock and stdin, and the fd table a workload sees.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;

use common::{moat, payload, serve, tcp_roundtrip};
use moat_testkit::process::Moat;
use moat_testkit::servers::EchoServer;
use moat_testkit::{configs, guests, net};

#[test]
fn blocking_std_echo_serves_connections_one_after_another() {
    let (_keep, port) = serve("echo-std", "tcp");
    for i in 0..3u8 {
        let data = payload(10_000 + usize::from(i), i);
        assert_eq!(
            tcp_roundtrip(net::local(port), &data),
            data,
            "connection {i}"
        );
    }
}

#[test]
fn blocking_std_echo_exit_status_becomes_moats() {
    let port = net::free_port();
    let config = configs::stdio() + &configs::listen("sock", "tcp", port);
    let mut keep = Moat::run(moat(), guests::module("echo-std"))
        .config(&config)
        .guest_args(["sock", "2"])
        .spawn();
    keep.wait_for_stdout("listening");
    for i in 0..2u8 {
        assert_eq!(tcp_roundtrip(net::local(port), &[i; 5]), [i; 5]);
    }
    let done = keep.wait_exit(moat_testkit::WAIT);
    done.assert_code(0);
    assert!(
        done.stdout.contains("echo-std: served 2"),
        "{}",
        done.stdout
    );
}

#[test]
fn tokio_echo_serves_concurrent_clients() {
    let (_keep, port) = serve("echo-tokio", "tcp");
    let clients: Vec<_> = (0..20u8)
        .map(|i| {
            std::thread::spawn(move || {
                let data = payload(4096 + usize::from(i) * 100, i);
                assert_eq!(tcp_roundtrip(net::local(port), &data), data, "client {i}");
            })
        })
        .collect();
    for c in clients {
        c.join().expect("client thread");
    }
}

#[test]
fn mio_echo_serves_concurrent_clients_and_large_payloads() {
    let (_keep, port) = serve("echo-mio", "tcp");
    let clients: Vec<_> = (0..8u8)
        .map(|i| {
            std::thread::spawn(move || {
                // Larger than the pipes between host and guest: exercises EAGAIN on write.
                let data = payload(1024 * 1024 + usize::from(i), i);
                assert_eq!(tcp_roundtrip(net::local(port), &data), data, "client {i}");
            })
        })
        .collect();
    for c in clients {
        c.join().expect("client thread");
    }
}

#[test]
fn chat_server_relays_lines_to_every_client() {
    let (_keep, port) = serve("chat", "tcp");
    let mut clients: Vec<(TcpStream, BufReader<TcpStream>, String)> = (0..4)
        .map(|_| {
            let tcp = TcpStream::connect(net::local(port)).unwrap();
            tcp.set_read_timeout(Some(moat_testkit::WAIT)).unwrap();
            let mut reader = BufReader::new(tcp.try_clone().unwrap());
            let mut welcome = String::new();
            reader.read_line(&mut welcome).expect("welcome line");
            let id = welcome
                .trim()
                .strip_prefix("welcome ")
                .unwrap_or_else(|| panic!("not a welcome: {welcome:?}"))
                .to_owned();
            (tcp, reader, id)
        })
        .collect();
    // Everyone is subscribed now: each client says something, everyone hears everything.
    for (i, (tcp, _, _)) in clients.iter_mut().enumerate() {
        writeln!(tcp, "message {i}").unwrap();
    }
    let expected: Vec<String> = clients
        .iter()
        .enumerate()
        .map(|(i, (_, _, id))| format!("{id}: message {i}"))
        .collect();
    for (_, reader, id) in clients.iter_mut() {
        let mut heard = Vec::new();
        for _ in 0..expected.len() {
            let mut line = String::new();
            reader.read_line(&mut line).expect("chat line");
            heard.push(line.trim_end().to_owned());
        }
        heard.sort();
        let mut want = expected.clone();
        want.sort();
        assert_eq!(heard, want, "client {id}");
    }
}

#[test]
fn client_guest_talks_through_a_connect_socket() {
    let server = EchoServer::tcp();
    let config = configs::stdio()
        + &configs::connect("upstream", "tcp", "127.0.0.1", server.addr.port(), "");
    let done = Moat::run(moat(), guests::module("tcp-client"))
        .config(&config)
        .guest_args(["upstream", "hello over tcp"])
        .output();
    done.assert_code(0);
    assert!(
        done.stdout.contains("received: hello over tcp"),
        "{}",
        done.stdout
    );
}

#[test]
fn connect_accepts_dns_names() {
    let server = EchoServer::tcp();
    let config = configs::stdio()
        + &configs::connect("upstream", "tcp", "localhost", server.addr.port(), "");
    let done = Moat::run(moat(), guests::module("tcp-client"))
        .config(&config)
        .guest_args(["upstream", "by name"])
        .output();
    done.assert_code(0);
    assert!(done.stdout.contains("received: by name"), "{}", done.stdout);
}

#[test]
fn connect_to_a_closed_port_fails_the_guests_socket_not_moat() {
    // Nothing listens there: the guest sees an error on its socket and decides what to do.
    let port = net::free_port();
    let config = configs::stdio() + &configs::connect("upstream", "tcp", "127.0.0.1", port, "");
    let done = Moat::run(moat(), guests::module("tcp-client"))
        .config(&config)
        .guest_args(["upstream", "anyone?"])
        .output();
    done.assert_code(2);
    assert!(done.stdout.contains("socket error"), "{}", done.stdout);
}

#[test]
fn non_blocking_calls_and_poll_mix_socket_clock_and_stdin() {
    let port = net::free_port();
    let config = configs::stdio() + &configs::listen("sock", "tcp", port);
    let mut keep = Moat::run(moat(), guests::module("nonblock-poll"))
        .config(&config)
        .guest_args(["sock"])
        .spawn();
    keep.wait_for_stdout("accept: would block");
    keep.wait_for_stdout("poll: clock");
    keep.wait_for_stdout("ready");
    let mut tcp = TcpStream::connect(net::local(port)).unwrap();
    tcp.set_read_timeout(Some(moat_testkit::WAIT)).unwrap();
    keep.wait_for_stdout("read: would block");
    keep.wait_for_stdout("accepted");
    tcp.write_all(b"ping\n").unwrap();
    let mut reader = BufReader::new(tcp.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line, "pong ping\n");
    keep.wait_for_stdout("waiting for stdin");
    keep.write_stdin(b"from stdin\n");
    line.clear();
    reader.read_line(&mut line).unwrap();
    assert_eq!(
        line,
        "stdin from stdin\n",
        "guest stdout:\n{}\nstderr:\n{}",
        keep.stdout(),
        keep.stderr()
    );
    line.clear();
    assert_eq!(
        reader.read_line(&mut line).unwrap(),
        0,
        "then the guest closes"
    );
    let done = keep.wait_exit(moat_testkit::WAIT);
    done.assert_code(0);
    assert!(!done.stdout.contains("unexpected"), "{}", done.stdout);
    assert!(done.stdout.contains("poll: writable"), "{}", done.stdout);
}

#[test]
fn fd_table_puts_entry_i_at_fd_i_and_dirs_after_sockets() {
    let server = EchoServer::tcp();
    let listen_port = net::free_port();
    let keep = Moat::run(moat(), guests::module("fdinfo"));
    let data = keep.workdir().join("data");
    std::fs::create_dir(&data).unwrap();
    let config = configs::stdio()
        + &configs::listen("web", "tcp", listen_port)
        + "[[files]]\nkind = \"null\"\n\n"
        + &configs::connect("upstream", "tcp", "127.0.0.1", server.addr.port(), "")
        + &configs::dir(&data, "/data", false);
    let done = keep.config(&config).output();
    done.assert_code(0);
    let lines = done.stdout_lines();
    for want in [
        "argv=main.wasm",
        "FD_COUNT=6",
        "FD_NAMES=stdin:stdout:stderr:web:null:upstream",
        "fd 3 SOCKET_STREAM",
        "fd 5 SOCKET_STREAM",
        "preopen 6 /data",
    ] {
        assert!(
            lines.contains(&want),
            "missing {want:?} in\n{}",
            done.stdout
        );
    }
    assert!(
        !done.stdout.contains("error"),
        "the start-up scan must pass the sockets: {}",
        done.stdout
    );
}

#[test]
fn a_listener_can_come_from_the_command_line() {
    let port = net::free_port();
    let mut keep = Moat::run(moat(), guests::module("echo-tokio"))
        .args(["--listen", &format!("web=tcp://127.0.0.1:{port}")])
        .guest_args(["web"])
        .spawn();
    keep.wait_for_stdout("listening");
    assert_eq!(
        tcp_roundtrip(net::local(port), b"from a flag"),
        b"from a flag"
    );
}

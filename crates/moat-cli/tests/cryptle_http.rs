//! Hostile HTTP against Cryptle's server driver, built natively and served on loopback by a
//! current-thread tokio runtime (as inside the Keep): garbage, oversized heads, slow headers and
//! thousands of idle connections, each while a normal player keeps being served.
//! (`cryptle_keep.rs` repeats the essentials through `moat run`.)

mod cryptle_support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use cryptle::{Server, ServerLimits};
use cryptle_game::{App, AppConfig};
use cryptle_support::{CountingEntropy, call, read_response};

/// Start a server on 127.0.0.1:0 on its own thread; it lives until the test process ends.
fn start(limits: ServerLimits) -> (SocketAddr, Arc<Server>) {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    std_listener.set_nonblocking(true).unwrap();
    let addr = std_listener.local_addr().unwrap();
    let app = App::new(AppConfig::default(), 42, Box::new(CountingEntropy(42)));
    let server = Server::new(app, limits);
    let s = server.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
            s.serve(listener).await
        });
    });
    (addr, server)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    // A failsafe so a broken server fails the test instead of hanging it; not a performance bound.
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s
}

/// A normal player: a whole single-player game plus a multiplayer join, on one connection.
fn play_a_game(addr: SocketAddr, handle: &str) {
    let mut s = connect(addr);
    let (status, page) = {
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        read_response(&mut s).unwrap()
    };
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&page).contains("Cryptle"));
    let (status, game) = call(&mut s, "POST", "/api/single", None, None).unwrap();
    assert_eq!(status, 201);
    let token = game["token"].as_str().unwrap();
    for word in ["pious", "crane", "lemon"] {
        let (status, v) = call(
            &mut s,
            "POST",
            "/api/single/guess",
            Some(token),
            Some(&format!(r#"{{"guess":"{word}"}}"#)),
        )
        .unwrap();
        assert_eq!(status, 200, "{v}");
    }
    let (status, _) = call(
        &mut s,
        "POST",
        "/api/multi/join",
        None,
        Some(&format!(r#"{{"handle":"{handle}"}}"#)),
    )
    .unwrap();
    assert_eq!(status, 201);
}

/// Read until the server closes the connection; the bytes it sent first.
fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => return all,
            Ok(n) => all.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return all,
            Err(e) => panic!("server did not close the connection: {e}"),
        }
    }
}

fn status_of(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .next()
        .unwrap_or("")
        .to_owned()
}

#[test]
fn garbage_and_oversized_requests_get_an_error_and_a_close() {
    let (addr, _) = start(ServerLimits::default());
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n".to_vec(),
            "400",
        ),
        (b"GET /\x00 HTTP/1.1\r\n\r\n".to_vec(), "400"),
        (
            [b"GET / HTTP/1.1\r\nX-Big: ".to_vec(), vec![b'a'; 20_000]].concat(),
            "431",
        ),
        (
            [
                b"GET / HTTP/1.1\r\n".to_vec(),
                (0..100)
                    .flat_map(|i| format!("X-{i}: y\r\n").into_bytes())
                    .collect(),
            ]
            .concat(),
            "431",
        ),
        (
            b"POST /api/single HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(),
            "501",
        ),
        (
            b"POST /api/single HTTP/1.1\r\nContent-Length: 100000000\r\n\r\n".to_vec(),
            "413",
        ),
        (b"GET / HTTP/9.9\r\n\r\n".to_vec(), "505"),
    ];
    for (bytes, want) in cases {
        let mut s = connect(addr);
        // The server may answer and close before it has read everything: ignore write errors.
        let _ = s.write_all(&bytes);
        let answer = read_to_close(&mut s);
        assert!(
            status_of(&answer).contains(want),
            "{:?} -> {:?}",
            String::from_utf8_lossy(&bytes[..20]),
            status_of(&answer)
        );
        play_a_game(addr, &format!("p{want}x{}", bytes.len() % 1000));
    }
}

#[test]
fn slow_headers_time_out_while_a_player_is_served() {
    let limits = ServerLimits {
        header_timeout: Duration::from_millis(400),
        ..ServerLimits::default()
    };
    let (addr, _) = start(limits);
    // Slow-loris clients: a request head that never ends, one byte at a time.
    let lorises: Vec<_> = (0..40)
        .map(|_| {
            std::thread::spawn(move || {
                let mut s = connect(addr);
                s.write_all(b"GET / HTTP/1.1\r\nX-Slow: ").unwrap();
                for _ in 0..200 {
                    std::thread::sleep(Duration::from_millis(50));
                    if s.write_all(b"a").is_err() {
                        return true; // closed by the server
                    }
                }
                // Whatever was written, the server must have given up on this request by now.
                let answer = read_to_close(&mut s);
                answer.is_empty() || status_of(&answer).contains("408")
            })
        })
        .collect();
    for i in 0..5 {
        play_a_game(addr, &format!("player{i}"));
    }
    for l in lorises {
        assert!(l.join().unwrap(), "a slow client was not cut off");
    }
}

#[test]
fn thousands_of_idle_connections_do_not_lock_out_a_player() {
    let limits = ServerLimits {
        max_connections: 256,
        ..ServerLimits::default()
    };
    let (addr, server) = start(limits);
    let idle: Vec<TcpStream> = (0..2000).map(|_| connect(addr)).collect();
    play_a_game(addr, "alice");
    // Idle ones were evicted to make room; the table never grows past its bound.
    assert!(server.connection_count() <= 256);
    // A player already connected keeps its connection while more idle ones arrive.
    let mut s = connect(addr);
    let (status, _) = call(
        &mut s,
        "POST",
        "/api/multi/join",
        None,
        Some(r#"{"handle":"bob"}"#),
    )
    .unwrap();
    assert_eq!(status, 201);
    let more: Vec<TcpStream> = (0..300).map(|_| connect(addr)).collect();
    let (status, _) = call(&mut s, "GET", "/api/multi/state", None, None).unwrap();
    assert_eq!(
        status, 200,
        "an active player was evicted before idle connections"
    );
    drop((idle, more));
}

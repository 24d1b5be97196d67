//! Non-blocking calls and `poll_oneoff` by hand, the way mio and tokio use them underneath, with a
//! socket, a clock and stdin in the same poll. Each step prints a line; the test drives the peer
//! and stdin after the line that asks for it. Any surprise prints `unexpected: ...` and exits 3.
//!
//! 1. `accept` on the non-blocking listener with no client: EAGAIN (`accept: would block`).
//! 2. poll {clock 100 ms, listener readable}: only the clock fires (`poll: clock`), then `ready`.
//! 3. poll {listener readable, clock 30 s}: the listener fires; accept; a read with no data yet is
//!    EAGAIN (`read: would block`), then `accepted` (the test now sends `ping`).
//! 4. poll {stream readable, clock 30 s}: the stream fires; reply `pong <line>` (`poll: stream`),
//!    then `waiting for stdin` (the test now writes a line to stdin).
//! 5. poll {stream readable, stdin readable, clock 30 s}: stdin fires (`poll: stdin`); the line
//!    goes to the peer as `stdin <line>`.
//! 6. poll {stream writable}: fires (`poll: writable`); shut down, `done`, exit 0.
//!
//! Args: `[SOCKET_NAME]`.

use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;

const CLOCK: u64 = 1;
const LISTENER: u64 = 2;
const STREAM: u64 = 3;
const STDIN: u64 = 4;
const WRITABLE: u64 = 5;

fn unexpected(what: impl std::fmt::Display) -> ! {
    println!("unexpected: {what}");
    std::process::exit(3);
}

fn clock(timeout_ns: u64) -> wasi::Subscription {
    wasi::Subscription {
        userdata: CLOCK,
        u: wasi::SubscriptionU {
            tag: wasi::EVENTTYPE_CLOCK.raw(),
            u: wasi::SubscriptionUU {
                clock: wasi::SubscriptionClock {
                    id: wasi::CLOCKID_MONOTONIC,
                    timeout: timeout_ns,
                    precision: 0,
                    flags: 0,
                },
            },
        },
    }
}

fn fd_ready(userdata: u64, fd: u32, write: bool) -> wasi::Subscription {
    let rw = wasi::SubscriptionFdReadwrite {
        file_descriptor: fd,
    };
    wasi::Subscription {
        userdata,
        u: wasi::SubscriptionU {
            tag: if write {
                wasi::EVENTTYPE_FD_WRITE.raw()
            } else {
                wasi::EVENTTYPE_FD_READ.raw()
            },
            u: if write {
                wasi::SubscriptionUU { fd_write: rw }
            } else {
                wasi::SubscriptionUU { fd_read: rw }
            },
        },
    }
}

/// The userdata of every event that fired, in order, failing on any event carrying an error.
fn poll(subs: &[wasi::Subscription]) -> Vec<u64> {
    let mut events: Vec<wasi::Event> = Vec::with_capacity(subs.len());
    // SAFETY: `subs` is a valid array of `subs.len()` subscriptions and `events` has room for as
    // many events; the host writes at most that many and returns how many it wrote.
    #[allow(unsafe_code)]
    let n = unsafe {
        match wasi::poll_oneoff(subs.as_ptr(), events.as_mut_ptr(), subs.len()) {
            Ok(n) => {
                events.set_len(n);
                n
            }
            Err(e) => unexpected(format!("poll_oneoff failed: {}", e.name())),
        }
    };
    if n == 0 {
        unexpected("poll_oneoff returned no events");
    }
    for event in &events {
        if event.error != wasi::ERRNO_SUCCESS {
            unexpected(format!(
                "event {} carries error {}",
                event.userdata,
                event.error.name()
            ));
        }
    }
    events.iter().map(|e| e.userdata).collect()
}

fn expect_only(fired: Vec<u64>, want: u64, step: &str) {
    if fired != [want] {
        unexpected(format!("{step}: events {fired:?}, wanted only [{want}]"));
    }
}

fn main() {
    let listener = moat_test_guests::listener(moat_test_guests::server_fd());
    let lfd = listener.as_raw_fd() as u32;
    listener
        .set_nonblocking(true)
        .expect("set_nonblocking on listener");

    // 1.
    match listener.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => println!("accept: would block"),
        Err(e) => unexpected(format!("accept: {e}")),
        Ok(_) => unexpected("accept: a connection before anyone connected"),
    }
    // 2.
    expect_only(
        poll(&[clock(100_000_000), fd_ready(LISTENER, lfd, false)]),
        CLOCK,
        "idle listener",
    );
    println!("poll: clock");
    println!("ready");

    // 3.
    expect_only(
        poll(&[fd_ready(LISTENER, lfd, false), clock(30_000_000_000)]),
        LISTENER,
        "listener",
    );
    let (mut stream, _) = match listener.accept() {
        Ok(accepted) => accepted,
        Err(e) => unexpected(format!("accept after readiness: {e}")),
    };
    stream
        .set_nonblocking(true)
        .expect("set_nonblocking on stream");
    let sfd = stream.as_raw_fd() as u32;
    let mut buf = [0u8; 1024];
    match stream.read(&mut buf) {
        Err(e) if e.kind() == ErrorKind::WouldBlock => println!("read: would block"),
        Err(e) => unexpected(format!("read: {e}")),
        Ok(n) => unexpected(format!("read: {n} bytes before the peer sent any")),
    }
    println!("accepted");

    // 4.
    expect_only(
        poll(&[fd_ready(STREAM, sfd, false), clock(30_000_000_000)]),
        STREAM,
        "stream",
    );
    let mut line = Vec::new();
    while !line.ends_with(b"\n") {
        match stream.read(&mut buf) {
            Ok(0) => unexpected("peer closed before a full line"),
            Ok(n) => line.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                poll(&[fd_ready(STREAM, sfd, false), clock(30_000_000_000)]);
            }
            Err(e) => unexpected(format!("read: {e}")),
        }
    }
    let line = String::from_utf8_lossy(&line).trim_end().to_owned();
    write_all(&mut stream, sfd, format!("pong {line}\n").as_bytes());
    println!("poll: stream");
    println!("waiting for stdin");

    // 5.
    expect_only(
        poll(&[
            fd_ready(STREAM, sfd, false),
            fd_ready(STDIN, 0, false),
            clock(30_000_000_000),
        ]),
        STDIN,
        "stdin",
    );
    let mut input = String::new();
    std::io::stdin().read_line(&mut input).expect("read stdin");
    println!("poll: stdin");
    write_all(
        &mut stream,
        sfd,
        format!("stdin {}\n", input.trim_end()).as_bytes(),
    );

    // 6.
    expect_only(poll(&[fd_ready(WRITABLE, sfd, true)]), WRITABLE, "writable");
    println!("poll: writable");
    stream.shutdown(std::net::Shutdown::Both).expect("shutdown");
    println!("done");
}

/// `write_all` on a non-blocking socket: wait for writability on EAGAIN.
fn write_all(stream: &mut std::net::TcpStream, fd: u32, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        match stream.write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                poll(&[fd_ready(WRITABLE, fd, true)]);
            }
            Err(e) => unexpected(format!("write: {e}")),
        }
    }
}

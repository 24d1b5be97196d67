//! mio echo server: one `Poll`, the listener and every connection registered on it, non-blocking
//! reads and writes with `WouldBlock` handling, as Enarx's mio example. Unwritten bytes wait in a
//! per-connection buffer until the socket is writable again. Args: `[SOCKET_NAME]`.

use std::collections::HashMap;
use std::io::{self, Read, Write};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

const LISTENER: Token = Token(0);

/// Bytes read but not yet written back before the server stops reading from that peer.
const MAX_PENDING: usize = 256 * 1024;

struct Conn {
    stream: TcpStream,
    pending: Vec<u8>,
    peer_done: bool,
    interest: Interest,
}

impl Conn {
    /// Ask for writability only while bytes wait: mio's wasip1 selector subscribes every
    /// registered interest on each `poll_oneoff`, and a socket is nearly always writable.
    fn wanted_interest(&self) -> Interest {
        let want_read = !self.peer_done && self.pending.len() < MAX_PENDING;
        match (want_read, self.pending.is_empty()) {
            (true, true) => Interest::READABLE,
            (true, false) => Interest::READABLE | Interest::WRITABLE,
            (false, _) => Interest::WRITABLE,
        }
    }
}

fn main() -> io::Result<()> {
    let std_listener = moat_test_guests::listener(moat_test_guests::server_fd());
    std_listener.set_nonblocking(true)?;
    let mut listener = TcpListener::from_std(std_listener);
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut events = Events::with_capacity(128);
    let mut conns: HashMap<Token, Conn> = HashMap::new();
    let mut next = 1usize;
    println!("echo-mio: listening");
    loop {
        poll.poll(&mut events, None)?;
        for event in &events {
            if event.token() == LISTENER {
                loop {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            let token = Token(next);
                            next += 1;
                            poll.registry()
                                .register(&mut stream, token, Interest::READABLE)?;
                            conns.insert(
                                token,
                                Conn {
                                    stream,
                                    pending: Vec::new(),
                                    peer_done: false,
                                    interest: Interest::READABLE,
                                },
                            );
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => {
                            eprintln!("echo-mio: accept: {e}");
                            break;
                        }
                    }
                }
                continue;
            }
            let token = event.token();
            let Some(conn) = conns.get_mut(&token) else {
                continue;
            };
            let finished = match serve(conn) {
                Ok(finished) => finished,
                Err(e) => {
                    eprintln!("echo-mio: connection: {e}");
                    true
                }
            };
            if finished {
                let mut conn = conns.remove(&token).expect("present");
                let _ = conn.stream.shutdown(std::net::Shutdown::Both);
                poll.registry().deregister(&mut conn.stream)?;
            } else if conn.wanted_interest() != conn.interest {
                conn.interest = conn.wanted_interest();
                poll.registry()
                    .reregister(&mut conn.stream, token, conn.interest)?;
            }
        }
    }
}

/// Read what is there, write what can be written. `Ok(true)` when the connection is done.
fn serve(conn: &mut Conn) -> io::Result<bool> {
    let mut buf = [0u8; 16 * 1024];
    while !conn.peer_done && conn.pending.len() < MAX_PENDING {
        match conn.stream.read(&mut buf) {
            Ok(0) => conn.peer_done = true,
            Ok(n) => conn.pending.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    while !conn.pending.is_empty() {
        match conn.stream.write(&conn.pending) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                conn.pending.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(conn.peer_done && conn.pending.is_empty())
}

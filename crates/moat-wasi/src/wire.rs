//! The network side of one connection: its TCP socket and, for TLS sockets, the rustls session,
//! driven without ever waiting so that either thread can move bytes.
//!
//! The host's pump task owns the waiting (socket readiness, pipe changes, linger). The guest's
//! thread, when it writes, encrypts and sends the bytes itself straight from guest memory when
//! nothing is queued ahead of them ([`Wire::send_now`]), or sends what the pipe holds
//! ([`Wire::flush`]); only when the socket is full does it hand the rest to the pump. That
//! keeps one cross-thread wake-up off every response (the pump would otherwise be woken to send
//! a few hundred bytes), and it cannot stall the workload: every socket call here is
//! non-blocking, and the lock is only held across such calls and rustls's record work.

use std::io::{self, Read as _, Write as _};
use std::sync::{Mutex, MutexGuard};

use smallvec::SmallVec;
use tokio::net::TcpStream;

use crate::pipe::{Pipe, Taken};

/// How far a [`Wire::flush`] got.
#[derive(Debug, PartialEq, Eq)]
pub enum Flushed {
    /// Everything the pipe held is on the socket (or in the kernel's send buffer).
    Drained,
    /// The socket is full: the rest waits for it to become writable.
    Blocked,
    /// The byte budget ran out with data possibly left in the pipe.
    Budget,
    /// The pipe is closed for writing and everything was sent.
    Ended,
}

/// What [`Wire::receive`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// `n` bytes of plaintext in the caller's buffer. `drained`: this call found the socket
    /// empty (a short read, which also cleared tokio's cached readiness) and left no plaintext
    /// behind, so the next call would only find [`Received::WouldBlock`]: the caller can wait
    /// for readiness straight away.
    Data { n: usize, drained: bool },
    /// Nothing until the socket is readable again.
    WouldBlock,
    /// The peer finished (close_notify, or a TCP FIN without one).
    Eof,
}

/// One connection's socket, plain or under TLS.
#[derive(Debug)]
pub struct Wire {
    tcp: TcpStream,
    session: Mutex<Option<rustls::Connection>>,
}

impl Wire {
    pub fn plain(tcp: TcpStream) -> Self {
        Wire {
            tcp,
            session: Mutex::new(None),
        }
    }

    /// A socket whose TLS handshake already finished (or, for a client, at least started).
    pub fn tls(tcp: TcpStream, session: rustls::Connection) -> Self {
        Wire {
            tcp,
            session: Mutex::new(Some(session)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Option<rustls::Connection>> {
        // Poisoning means a panic mid-record; rustls then reports its own state errors.
        self.session.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Send what `pipe` holds until it is empty, the socket is full, or `budget` bytes of
    /// plaintext have moved. Never waits.
    pub fn flush(&self, pipe: &Pipe, budget: usize) -> io::Result<Flushed> {
        let mut session = self.lock();
        let mut moved = 0usize;
        loop {
            if let Some(tls) = session.as_mut()
                && send_records(tls, &self.tcp)? == Sent::Blocked
            {
                return Ok(Flushed::Blocked);
            }
            if moved >= budget {
                return Ok(Flushed::Budget);
            }
            let taken = pipe.host_take_now(IO_CHUNK, |chunk| match session.as_mut() {
                // rustls takes what fits under its buffer limit; the records go out on the
                // next turn of the loop.
                Some(tls) => tls.writer().write(chunk),
                None => self.tcp.try_write(chunk),
            });
            match taken {
                Ok(Taken::Moved(n)) => moved += n,
                Ok(Taken::Empty) => return Ok(Flushed::Drained),
                Ok(Taken::Ended) => return Ok(Flushed::Ended),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Flushed::Blocked),
                Err(e) => return Err(e),
            }
        }
    }

    /// Send the concatenation of `parts` straight from the caller's memory, up to `budget`
    /// bytes: encrypted into records and written for TLS, written as is for plain TCP. Never
    /// waits. Returns how many bytes were taken; for TLS these may still sit in the session as
    /// records when the socket is full ([`Flushed::Blocked`]), and the next [`Wire::flush`]
    /// sends them before anything else.
    ///
    /// Only for a connection whose outbound pipe is empty: the bytes must not overtake any the
    /// pipe still holds.
    pub fn send_now(&self, parts: &[&[u8]], budget: usize) -> io::Result<(usize, Flushed)> {
        let mut session = self.lock();
        let Some(tls) = session.as_mut() else {
            let slices: SmallVec<[io::IoSlice<'_>; 4]> =
                parts.iter().map(|p| io::IoSlice::new(p)).collect();
            let total: usize = parts.iter().map(|p| p.len()).sum();
            return match self.tcp.try_write_vectored(&slices) {
                Ok(n) if n < total => Ok((n, Flushed::Blocked)),
                Ok(n) => Ok((n, Flushed::Drained)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok((0, Flushed::Blocked)),
                Err(e) => Err(e),
            };
        };
        // Records from an earlier write go first.
        if send_records(tls, &self.tcp)? == Sent::Blocked {
            return Ok((0, Flushed::Blocked));
        }
        let mut taken = 0usize;
        for part in parts {
            let room = budget.saturating_sub(taken).min(part.len());
            if room == 0 {
                break;
            }
            // rustls takes what fits under its buffer limit.
            let n = tls.writer().write(&part[..room])?;
            taken += n;
            if n < room {
                break;
            }
        }
        let sent = send_records(tls, &self.tcp)?;
        Ok((
            taken,
            if sent == Sent::Blocked {
                Flushed::Blocked
            } else {
                Flushed::Drained
            },
        ))
    }

    /// Queue TLS close_notify (the next [`Wire::flush`] sends it).
    pub fn close_notify(&self) {
        if let Some(tls) = self.lock().as_mut() {
            tls.send_close_notify();
        }
    }

    /// Send a TCP FIN.
    pub fn shutdown_write(&self) {
        let _ = socket2::SockRef::from(&self.tcp).shutdown(std::net::Shutdown::Write);
    }

    /// Read up to `buf.len()` bytes of plaintext. Never waits. The second value says whether
    /// the session now has records of its own to send (TLS 1.3 tickets, key updates, alerts).
    pub fn receive(&self, buf: &mut [u8]) -> io::Result<(Received, bool)> {
        let mut session = self.lock();
        let Some(tls) = session.as_mut() else {
            return match read_socket(&self.tcp, buf) {
                Ok(0) => Ok((Received::Eof, false)),
                Ok(n) => Ok((
                    Received::Data {
                        n,
                        drained: n < buf.len(),
                    },
                    false,
                )),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    Ok((Received::WouldBlock, false))
                }
                Err(e) => Err(e),
            };
        };
        let mut seen_eof = false;
        // A short socket read in this call, and no close_notify: the next call could only
        // find WouldBlock.
        let mut socket_drained = false;
        loop {
            match tls.reader().read(buf) {
                Ok(0) => return Ok((Received::Eof, tls.wants_write())),
                // A short read took all the plaintext rustls had.
                Ok(n) => {
                    let drained = socket_drained && n < buf.len();
                    return Ok((Received::Data { n, drained }, tls.wants_write()));
                }
                // A peer that closes TCP without close_notify: end of stream, as HTTP/1.1
                // servers treat it; the guest sees EOF either way.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return Ok((Received::Eof, false));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && seen_eof => {
                    return Ok((Received::Eof, false));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            let mut socket = SocketIo::new(&self.tcp);
            match tls.read_tls(&mut socket) {
                Ok(0) => seen_eof = true,
                Ok(_) => socket_drained = socket.drained,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Ok((Received::WouldBlock, tls.wants_write()));
                }
                Err(e) => return Err(e),
            }
            match tls.process_new_packets() {
                // After close_notify the next read is end-of-stream, not WouldBlock.
                Ok(state) if state.peer_has_closed() => socket_drained = false,
                Ok(_) => {}
                Err(e) => {
                    // rustls queued an alert saying why; send it if the socket takes it.
                    let _ = send_records(tls, &self.tcp);
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                }
            }
        }
    }

    pub async fn readable(&self) -> io::Result<()> {
        self.tcp.readable().await
    }

    pub async fn writable(&self) -> io::Result<()> {
        self.tcp.writable().await
    }
}

/// Largest plaintext chunk moved at a time.
pub const IO_CHUNK: usize = 16 * 1024;

#[derive(Debug, PartialEq, Eq)]
enum Sent {
    All,
    Blocked,
}

/// Write the session's pending records to the socket until none are left or it is full.
fn send_records(tls: &mut rustls::Connection, tcp: &TcpStream) -> io::Result<Sent> {
    while tls.wants_write() {
        match tls.write_tls(&mut SocketIo::new(tcp)) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Sent::Blocked),
            Err(e) => return Err(e),
        }
    }
    Ok(Sent::All)
}

/// `std::io` over tokio's non-blocking `try_read`/`try_write`, for rustls's `read_tls` and
/// `write_tls`. A full or empty socket is `WouldBlock`, which also clears tokio's cached
/// readiness so the next `readable()`/`writable()` waits for the kernel.
struct SocketIo<'a> {
    tcp: &'a TcpStream,
    /// The last read was short: the socket is empty and its readiness cleared.
    drained: bool,
}

impl<'a> SocketIo<'a> {
    fn new(tcp: &'a TcpStream) -> Self {
        SocketIo {
            tcp,
            drained: false,
        }
    }
}

impl io::Read for SocketIo<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = read_socket(self.tcp, buf)?;
        self.drained = n < buf.len();
        Ok(n)
    }
}

/// Non-blocking read that, like tokio's own `poll_read`, takes a short read to mean the socket
/// is drained: its cached readiness is cleared, so the next read waits for the kernel's next
/// event instead of paying a system call to learn `EAGAIN`. (With `try_read` every keep-alive
/// request cost two `recvfrom` calls, one of them failing; native tokio serving pays one.) The
/// clear is tied to the readiness event seen before the read, so data that arrives meanwhile
/// raises a new event and is not missed.
fn read_socket(tcp: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    let mut short = None;
    let read = tcp.try_io(tokio::io::Interest::READABLE, || {
        let n = (&*socket2::SockRef::from(tcp)).read(buf)?;
        if n > 0 && n < buf.len() {
            short = Some(n);
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    });
    match short {
        Some(n) => Ok(n),
        None => read,
    }
}

impl io::Write for SocketIo<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tcp.try_write(buf)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.tcp.try_write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

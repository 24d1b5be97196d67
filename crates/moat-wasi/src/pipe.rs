//! Bounded in-memory byte pipes between host tasks and the guest.
//!
//! Each socket connection has two: `inbound` (host pump writes what the peer sent, the guest
//! reads) and `outbound` (the guest writes, the pump sends). Being bounded, a fast peer cannot
//! make the host buffer without limit and a slow peer only ever blocks its own pipe. Readiness
//! for `poll_oneoff` is read straight off the pipe state, so it is exact at the plaintext level.
//!
//! Wake-ups: the host side of each pipe has its own [`Notify`]; the guest side shares one
//! Keep-wide [`Notify`] (the guest is a single thread waiting on at most one thing at a time, and
//! after any wake-up it re-checks what it waits for). A change wakes only the side that can be
//! waiting for it: data and end-of-stream wake the reader, room wakes the writer only when the
//! pipe was full, and a guest's write wakes nobody by itself (the guest's thread usually sends
//! the bytes on at once; see `net::Connection::guest_flush`). Every wake is a cross-thread
//! hand-off on the request path, so spurious ones cost throughput.
//!
//! Readiness is also published, on every unlock, as one atomic word: `poll_oneoff` looks at
//! every subscribed pipe on every call (a tokio guest subscribes all its sockets, twice), and
//! reading a word is much cheaper than taking each pipe's lock.

use std::collections::VecDeque;
use std::io;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

#[derive(Debug)]
struct PipeState {
    buf: VecDeque<u8>,
    /// The writer finished: once drained, reads see end-of-file.
    write_closed: bool,
    /// The reader went away: writes fail with `EPIPE`, the writer side should stop.
    read_closed: bool,
    /// A host-side failure (connect, TLS, reset) that every later operation reports.
    error: Option<io::ErrorKind>,
}

impl PipeState {
    /// The state [`Pipe::readiness`] needs, in one word: buffered bytes below
    /// [`SNAPSHOT_ENDED`], which says the stream ended (closed either way, or failed).
    fn snapshot(&self) -> u64 {
        let ended = self.write_closed || self.read_closed || self.error.is_some();
        self.buf.len() as u64 | if ended { SNAPSHOT_ENDED } else { 0 }
    }
}

const SNAPSHOT_ENDED: u64 = 1 << 63;

/// One direction of a connection.
#[derive(Debug)]
pub struct Pipe {
    state: Mutex<PipeState>,
    /// `state.snapshot()` as of the last unlock.
    published: AtomicU64,
    /// Most bytes buffered at once; fixed, so it lives outside the lock.
    cap: usize,
    host: Notify,
    guest: Arc<Notify>,
}

/// The pipe's lock; publishes the readiness snapshot when released, so every change (and every
/// wake-up, which always follows the release) is visible to [`Pipe::readiness`].
struct Locked<'a> {
    state: MutexGuard<'a, PipeState>,
    published: &'a AtomicU64,
}

impl Deref for Locked<'_> {
    type Target = PipeState;
    fn deref(&self) -> &PipeState {
        &self.state
    }
}

impl DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut PipeState {
        &mut self.state
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        self.published
            .store(self.state.snapshot(), Ordering::Release);
    }
}

/// Result of a non-blocking read.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    Data(usize),
    Eof,
    WouldBlock,
    Failed(io::ErrorKind),
}

/// Result of a non-blocking write.
#[derive(Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    Written(usize),
    WouldBlock,
    /// The reading side is gone (or the pipe was shut for writing).
    Closed,
    Failed(io::ErrorKind),
}

/// Result of [`Pipe::host_take_now`].
#[derive(Debug, PartialEq, Eq)]
pub enum Taken {
    Moved(usize),
    /// Nothing buffered; more may come.
    Empty,
    /// Nothing buffered and nothing more will come (closed for writing, or failed).
    Ended,
}

/// What `poll_oneoff` needs to know about one direction.
#[derive(Debug, Clone, Copy)]
pub struct Readiness {
    pub readable: bool,
    pub readable_bytes: usize,
    pub hangup: bool,
    pub writable: bool,
    pub writable_bytes: usize,
}

impl Pipe {
    pub fn new(cap: usize, guest: Arc<Notify>) -> Self {
        let cap = cap.max(1);
        Pipe {
            state: Mutex::new(PipeState {
                buf: VecDeque::new(),
                write_closed: false,
                read_closed: false,
                error: None,
            }),
            published: AtomicU64::new(0),
            cap,
            host: Notify::new(),
            guest,
        }
    }

    fn lock(&self) -> Locked<'_> {
        Locked {
            // A poisoned lock only means another thread panicked mid-update of plain data; the
            // state is still consistent enough to report errors, so keep going.
            state: self.state.lock().unwrap_or_else(|e| e.into_inner()),
            published: &self.published,
        }
    }

    fn wake(&self) {
        self.host.notify_one();
        self.guest.notify_one();
    }

    /// Take up to `out.len()` bytes (or copy them, with `peek`).
    pub fn try_read(&self, out: &mut [u8], peek: bool) -> ReadOutcome {
        self.try_read_with(out.len(), peek, |a, b| {
            out[..a.len()].copy_from_slice(a);
            out[a.len()..a.len() + b.len()].copy_from_slice(b);
            a.len() + b.len()
        })
    }

    /// Take up to `max` bytes (or copy them, with `peek`), handing them to `copy` as the two
    /// runs the ring buffer holds them in; `copy` returns how many it kept (all of them, unless
    /// it ran out of room). Lets a read land straight in guest memory.
    pub fn try_read_with(
        &self,
        max: usize,
        peek: bool,
        copy: impl FnOnce(&[u8], &[u8]) -> usize,
    ) -> ReadOutcome {
        let mut s = self.lock();
        if !s.buf.is_empty() {
            let n = max.min(s.buf.len());
            let (a, b) = s.buf.as_slices();
            let from_a = n.min(a.len());
            let n = copy(&a[..from_a], &b[..n - from_a]).min(n);
            if !peek {
                let was_full = s.buf.len() >= self.cap;
                s.buf.drain(..n);
                drop(s);
                // Only a writer waiting for room needs to hear of it.
                if was_full {
                    self.host.notify_one();
                }
            }
            return ReadOutcome::Data(n);
        }
        if let Some(kind) = s.error {
            return ReadOutcome::Failed(kind);
        }
        if s.write_closed || s.read_closed {
            return ReadOutcome::Eof;
        }
        ReadOutcome::WouldBlock
    }

    /// Append as much of `data` as fits. Wakes nobody: the caller either sends the bytes on
    /// itself ([`crate::net::Connection::guest_flush`]) or calls [`Pipe::notify_host`].
    pub fn try_write(&self, data: &[u8]) -> WriteOutcome {
        self.try_write_parts(&[data])
    }

    /// [`Pipe::try_write`] of the concatenation of `parts` (a guest's iovecs, copied once).
    pub fn try_write_parts(&self, parts: &[&[u8]]) -> WriteOutcome {
        let mut s = self.lock();
        if let Some(kind) = s.error {
            return WriteOutcome::Failed(kind);
        }
        if s.read_closed || s.write_closed {
            return WriteOutcome::Closed;
        }
        let room = self.cap.saturating_sub(s.buf.len());
        let total: usize = parts.iter().map(|p| p.len()).sum();
        if room == 0 {
            return if total == 0 {
                WriteOutcome::Written(0)
            } else {
                WriteOutcome::WouldBlock
            };
        }
        let mut left = room.min(total);
        let n = left;
        for part in parts {
            let take = left.min(part.len());
            s.buf.extend(&part[..take]);
            left -= take;
        }
        WriteOutcome::Written(n)
    }

    /// Wake the host side (it re-checks the pipe).
    pub fn notify_host(&self) {
        self.host.notify_one();
    }

    /// Free space for the host writer (0 when the reader is gone: the writer should stop).
    pub fn room(&self) -> Option<usize> {
        let s = self.lock();
        if s.read_closed || s.error.is_some() {
            None
        } else {
            Some(self.cap.saturating_sub(s.buf.len()))
        }
    }

    /// Writer side finished (peer EOF, or the guest shut down writing).
    pub fn close_write(&self) {
        self.lock().write_closed = true;
        self.wake();
    }

    /// Reader side went away (the guest closed the fd or shut down reading): buffered data is
    /// dropped and the writer is told to stop.
    pub fn close_read(&self) {
        let mut s = self.lock();
        s.read_closed = true;
        s.buf.clear();
        drop(s);
        self.wake();
    }

    /// Record a host-side failure; the first one wins.
    pub fn fail(&self, kind: io::ErrorKind) {
        let mut s = self.lock();
        if s.error.is_none() {
            s.error = Some(kind);
        }
        drop(s);
        self.wake();
    }

    /// For `poll_oneoff`: the state as of the last change, without taking the lock.
    pub fn readiness(&self) -> Readiness {
        let snapshot = self.published.load(Ordering::Acquire);
        let ended = snapshot & SNAPSHOT_ENDED != 0;
        let buffered = (snapshot & !SNAPSHOT_ENDED) as usize;
        let room = self.cap.saturating_sub(buffered);
        Readiness {
            readable: buffered > 0 || ended,
            readable_bytes: buffered,
            hangup: buffered == 0 && ended,
            writable: room > 0 || ended,
            writable_bytes: room,
        }
    }

    /// Host side: wait for the guest to change this pipe.
    pub async fn host_changed(&self) {
        self.host.notified().await
    }

    /// Host side, without waiting: offer up to `max` buffered bytes (one contiguous run) to
    /// `sink`, which says how many it took; those leave the pipe.
    pub fn host_take_now(
        &self,
        max: usize,
        sink: impl FnOnce(&[u8]) -> io::Result<usize>,
    ) -> io::Result<Taken> {
        let mut s = self.lock();
        if s.buf.is_empty() {
            return Ok(if s.write_closed || s.read_closed || s.error.is_some() {
                Taken::Ended
            } else {
                Taken::Empty
            });
        }
        let was_full = s.buf.len() >= self.cap;
        let (front, _) = s.buf.as_slices();
        let n = sink(&front[..max.min(front.len())])?;
        s.buf.drain(..n);
        drop(s);
        // Only a guest waiting for room needs to hear of it.
        if was_full && n > 0 {
            self.guest.notify_one();
        }
        Ok(Taken::Moved(n))
    }

    /// Host side: wait until there is room (`Some(room)`) or the reader is gone (`None`).
    pub async fn host_wait_room(&self) -> Option<usize> {
        loop {
            match self.room() {
                Some(0) => self.host.notified().await,
                other => return other,
            }
        }
    }

    /// Host side: append bytes that are known to fit (after [`Pipe::host_wait_room`]).
    pub fn host_push(&self, data: &[u8]) {
        let mut s = self.lock();
        if s.read_closed {
            return;
        }
        s.buf.extend(data);
        drop(s);
        // The host wrote: only the guest reader is interested.
        self.guest.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipe(cap: usize) -> Pipe {
        Pipe::new(cap, Arc::new(Notify::new()))
    }

    #[test]
    fn bounded_write_then_read_then_eof() {
        let p = pipe(4);
        assert_eq!(p.try_write(b"hello"), WriteOutcome::Written(4));
        assert_eq!(p.try_write(b"o"), WriteOutcome::WouldBlock);
        let mut out = [0u8; 8];
        assert_eq!(p.try_read(&mut out, true), ReadOutcome::Data(4));
        assert_eq!(p.try_read(&mut out, false), ReadOutcome::Data(4));
        assert_eq!(&out[..4], b"hell");
        assert_eq!(p.try_read(&mut out, false), ReadOutcome::WouldBlock);
        p.close_write();
        assert_eq!(p.try_read(&mut out, false), ReadOutcome::Eof);
        assert_eq!(p.try_write(b"x"), WriteOutcome::Closed);
    }

    #[test]
    fn failure_is_reported_after_buffered_data() {
        let p = pipe(16);
        p.try_write(b"ab");
        p.fail(io::ErrorKind::ConnectionReset);
        let mut out = [0u8; 1];
        assert_eq!(p.try_read(&mut out, false), ReadOutcome::Data(1));
        assert_eq!(p.try_read(&mut out, false), ReadOutcome::Data(1));
        assert_eq!(
            p.try_read(&mut out, false),
            ReadOutcome::Failed(io::ErrorKind::ConnectionReset)
        );
        assert!(p.readiness().hangup);
    }

    #[test]
    fn closing_the_reader_stops_the_writer() {
        let p = pipe(16);
        p.try_write(b"ab");
        p.close_read();
        assert_eq!(p.room(), None);
        assert_eq!(p.try_write(b"c"), WriteOutcome::Closed);
    }

    #[test]
    fn host_take_now_hands_over_what_the_sink_keeps() {
        let p = pipe(8);
        assert_eq!(p.host_take_now(4, |_| Ok(0)).unwrap(), Taken::Empty);
        assert_eq!(
            p.try_write_parts(&[b"ab", b"cdef"]),
            WriteOutcome::Written(6)
        );
        // The sink sees at most `max` bytes and keeps only part of them.
        let taken = p.host_take_now(4, |chunk| {
            assert_eq!(chunk, b"abcd");
            Ok(3)
        });
        assert_eq!(taken.unwrap(), Taken::Moved(3));
        // A sink that fails (a full socket) loses nothing.
        let blocked = p.host_take_now(16, |_| Err(io::ErrorKind::WouldBlock.into()));
        assert_eq!(blocked.unwrap_err().kind(), io::ErrorKind::WouldBlock);
        let mut out = [0u8; 8];
        assert_eq!(p.try_read(&mut out, false), ReadOutcome::Data(3));
        assert_eq!(&out[..3], b"def");
        p.close_write();
        assert_eq!(p.host_take_now(4, |_| Ok(0)).unwrap(), Taken::Ended);
    }

    #[test]
    fn vectored_writes_stop_at_capacity() {
        let p = pipe(5);
        assert_eq!(
            p.try_write_parts(&[b"abc", b"defg"]),
            WriteOutcome::Written(5)
        );
        assert_eq!(p.try_write_parts(&[b"", b"x"]), WriteOutcome::WouldBlock);
        assert_eq!(p.try_write_parts(&[]), WriteOutcome::Written(0));
        let mut out = [0u8; 8];
        assert_eq!(p.try_read(&mut out, false), ReadOutcome::Data(5));
        assert_eq!(&out[..5], b"abcde");
    }

    #[test]
    fn readiness_follows_every_change() {
        let p = pipe(4);
        let r = p.readiness();
        assert!(!r.readable && r.writable && r.writable_bytes == 4 && !r.hangup);
        p.host_push(b"abc");
        let r = p.readiness();
        assert!(r.readable && r.readable_bytes == 3 && r.writable_bytes == 1);
        assert_eq!(p.try_write(b"de"), WriteOutcome::Written(1));
        assert!(!p.readiness().writable);
        let mut out = [0u8; 2];
        assert_eq!(p.try_read(&mut out, false), ReadOutcome::Data(2));
        assert_eq!(p.readiness().readable_bytes, 2);
        p.close_write();
        let r = p.readiness();
        assert!(
            r.readable && !r.hangup,
            "buffered bytes come before the end"
        );
        assert_eq!(p.try_read(&mut out, false), ReadOutcome::Data(2));
        let r = p.readiness();
        assert!(r.readable && r.hangup && r.writable);
    }
}

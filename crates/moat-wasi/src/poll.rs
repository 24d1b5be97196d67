//! `poll_oneoff` over Moat's descriptors, clocks and delegated files.
//!
//! Readiness comes straight from the pipes' state, so it is exact: a connection is readable
//! when plaintext is buffered or the peer finished, writable when its outbound pipe has room. A
//! listener is readable when a finished connection waits in its backlog and is never writable
//! (tokio and mio guests treat an unexpected write event on a listener as an error). Regular
//! files and directories are always ready, as in POSIX.

use std::time::{Duration, Instant};

use smallvec::SmallVec;

use crate::MoatWasi;
use crate::abi::{self, eventtype};
use crate::errno::Errno;
use crate::table::Kind;

#[derive(Debug, Clone, Copy)]
enum What {
    /// Fires at `Some(deadline)`; `None` is a deadline too far away to represent.
    Clock(Option<Instant>),
    /// A clock subscription that was invalid: reported at once with this error.
    BadClock(Errno),
    Read(i32),
    Write(i32),
}

#[derive(Debug, Clone, Copy)]
pub struct Subscription {
    userdata: u64,
    what: What,
}

#[derive(Debug, Clone, Copy)]
pub struct Event {
    userdata: u64,
    error: Errno,
    kind: u8,
    nbytes: u64,
    hangup: bool,
}

/// Events ready in one call; a busy server usually has a few, so they stay on the stack.
pub type Events = SmallVec<[Event; 8]>;

pub enum Outcome {
    Ready(Events),
    /// Nothing ready: wait for a guest notification, or until the deadline.
    Wait(Option<Instant>),
}

/// Decode and check the subscriptions into `out` (cleared first: callers reuse one buffer, as
/// a server polls its whole fd set on every call); also checks that the event and count
/// buffers fit.
pub fn parse(
    wasi: &MoatWasi,
    mem: &[u8],
    subs: u32,
    events: u32,
    nsubs: u32,
    nevents: u32,
    out: &mut Vec<Subscription>,
) -> Result<(), Errno> {
    out.clear();
    if nsubs == 0 {
        return Err(Errno::INVAL);
    }
    abi::range(
        mem,
        subs,
        nsubs
            .checked_mul(abi::SUBSCRIPTION_SIZE)
            .ok_or(Errno::OVERFLOW)?,
    )?;
    abi::range(
        mem,
        events,
        nsubs.checked_mul(abi::EVENT_SIZE).ok_or(Errno::OVERFLOW)?,
    )?;
    abi::range(mem, nevents, 4)?;
    // Read once, and only when a clock subscription needs it.
    let mut now = None;
    out.reserve(nsubs as usize);
    for i in 0..nsubs {
        let at = subs + i * abi::SUBSCRIPTION_SIZE;
        let userdata = abi::read_u64(mem, at)?;
        let tag = abi::read_bytes::<1>(mem, at + 8)?[0];
        let what = match tag {
            eventtype::CLOCK => {
                let id = abi::read_u32(mem, at + 16)?;
                let timeout = abi::read_u64(mem, at + 24)?;
                let flags = abi::read_u16(mem, at + 40)?;
                let now = *now.get_or_insert_with(Instant::now);
                clock_deadline(wasi, now, id, timeout, flags)
            }
            eventtype::FD_READ => What::Read(abi::read_u32(mem, at + 16)? as i32),
            eventtype::FD_WRITE => What::Write(abi::read_u32(mem, at + 16)? as i32),
            _ => return Err(Errno::INVAL),
        };
        out.push(Subscription { userdata, what });
    }
    Ok(())
}

fn clock_deadline(wasi: &MoatWasi, now: Instant, id: u32, timeout: u64, flags: u16) -> What {
    if flags & !abi::SUBCLOCKFLAGS_ABSTIME != 0 {
        return What::BadClock(Errno::INVAL);
    }
    let delay = if flags & abi::SUBCLOCKFLAGS_ABSTIME != 0 {
        match wasi.clock_now(id) {
            Ok(clock_now) => timeout.saturating_sub(clock_now),
            Err(e) => return What::BadClock(e),
        }
    } else {
        match wasi.clock_now(id) {
            Ok(_) => timeout,
            Err(e) => return What::BadClock(e),
        }
    };
    What::Clock(now.checked_add(Duration::from_nanos(delay)))
}

/// Which subscriptions are ready now; if none, how long to wait at most.
pub fn check(wasi: &mut MoatWasi, subs: &[Subscription]) -> Outcome {
    let mut now = None;
    let mut ready = Events::new();
    // Whether writable events were held back as already reported once (see
    // `Connection::report_writable`), and whether anything in this poll can still wake the
    // guest if they are.
    let mut held_back_writable = false;
    let mut can_wake = false;
    let mut earliest: Option<Instant> = None;
    for sub in subs {
        let event = |kind, error, nbytes, hangup| Event {
            userdata: sub.userdata,
            error,
            kind,
            nbytes,
            hangup,
        };
        match sub.what {
            What::Clock(Some(at)) if at <= *now.get_or_insert_with(Instant::now) => {
                ready.push(event(eventtype::CLOCK, Errno::SUCCESS, 0, false))
            }
            What::Clock(Some(at)) => {
                can_wake = true;
                earliest = Some(earliest.map_or(at, |e| e.min(at)))
            }
            What::Clock(None) => {}
            What::BadClock(e) => ready.push(event(eventtype::CLOCK, e, 0, false)),
            What::Read(fd) => {
                let kind = eventtype::FD_READ;
                match wasi.table.get(fd).map(|e| &e.kind) {
                    Err(e) => ready.push(event(kind, e, 0, false)),
                    Ok(Kind::Stream(conn)) => {
                        can_wake = true;
                        let r = conn.inbound.readiness();
                        if r.readable {
                            ready.push(event(
                                kind,
                                Errno::SUCCESS,
                                r.readable_bytes as u64,
                                r.hangup,
                            ));
                        }
                    }
                    Ok(Kind::Stdin) => {
                        can_wake = true;
                        let r = wasi.stdin_pipe().readiness();
                        if r.readable {
                            ready.push(event(
                                kind,
                                Errno::SUCCESS,
                                r.readable_bytes as u64,
                                r.hangup,
                            ));
                        }
                    }
                    Ok(Kind::Listener(l)) => {
                        can_wake = true;
                        if l.has_pending() {
                            ready.push(event(kind, Errno::SUCCESS, 1, false));
                        }
                    }
                    Ok(Kind::Null | Kind::Delegated(_)) => {
                        ready.push(event(kind, Errno::SUCCESS, 0, false))
                    }
                    Ok(Kind::Stdout | Kind::Stderr) => {
                        ready.push(event(kind, Errno::BADF, 0, false))
                    }
                }
            }
            What::Write(fd) => {
                let kind = eventtype::FD_WRITE;
                match wasi.table.get(fd).map(|e| &e.kind) {
                    Err(e) => ready.push(event(kind, e, 0, false)),
                    Ok(Kind::Stream(conn)) => {
                        let r = conn.outbound.readiness();
                        if r.writable {
                            if conn.report_writable() {
                                ready.push(writable_event(sub.userdata, &r));
                            } else {
                                held_back_writable = true;
                            }
                        }
                    }
                    // A listener never becomes writable.
                    Ok(Kind::Listener(_)) => {}
                    Ok(Kind::Stdout | Kind::Stderr | Kind::Null | Kind::Delegated(_)) => {
                        ready.push(event(kind, Errno::SUCCESS, 0, false))
                    }
                    Ok(Kind::Stdin) => ready.push(event(kind, Errno::BADF, 0, false)),
                }
            }
        }
    }
    if ready.is_empty() && held_back_writable && !can_wake {
        // Only already-reported writable streams: waiting could be forever, so say it again.
        Outcome::Ready(writable_streams(wasi, subs))
    } else if ready.is_empty() {
        Outcome::Wait(earliest)
    } else {
        Outcome::Ready(ready)
    }
}

fn writable_event(userdata: u64, r: &crate::pipe::Readiness) -> Event {
    Event {
        userdata,
        error: Errno::SUCCESS,
        kind: eventtype::FD_WRITE,
        nbytes: r.writable_bytes as u64,
        hangup: r.writable_bytes == 0,
    }
}

/// Every writable stream among `subs`, reported or not: the rare fallback of [`check`], built
/// only when needed (most polls hold back a writable event for every idle connection).
fn writable_streams(wasi: &MoatWasi, subs: &[Subscription]) -> Events {
    subs.iter()
        .filter_map(|sub| {
            let What::Write(fd) = sub.what else {
                return None;
            };
            let Ok(Kind::Stream(conn)) = wasi.table.get(fd).map(|e| &e.kind) else {
                return None;
            };
            let r = conn.outbound.readiness();
            r.writable.then(|| writable_event(sub.userdata, &r))
        })
        .collect()
}

pub fn write_events(mem: &mut [u8], at: u32, nevents: u32, events: &[Event]) -> Result<(), Errno> {
    for (i, e) in events.iter().enumerate() {
        let mut raw = [0u8; abi::EVENT_SIZE as usize];
        raw[0..8].copy_from_slice(&e.userdata.to_le_bytes());
        raw[8..10].copy_from_slice(&e.error.0.to_le_bytes());
        raw[10] = e.kind;
        if e.kind != eventtype::CLOCK {
            raw[16..24].copy_from_slice(&e.nbytes.to_le_bytes());
            let flags = if e.hangup {
                abi::EVENTRWFLAGS_HANGUP
            } else {
                0
            };
            raw[24..26].copy_from_slice(&flags.to_le_bytes());
        }
        abi::write_bytes(mem, at + (i as u32) * abi::EVENT_SIZE, &raw)?;
    }
    abi::write_u32(mem, nevents, events.len() as u32)
}

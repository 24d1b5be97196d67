//! The guest's file-descriptor table.
//!
//! Moat owns the numbering: entry *i* of the config is fd *i* (Enarx's layout), pre-opened
//! directories follow, and later fds (accepted connections, opened files) take the lowest free
//! number. Sockets, stdio and `null` are Moat's own descriptors; directories and files are
//! delegated to wasmtime-wasi, whose own fd numbers ("inner" fds) this table translates to.
//!
//! Numbers stay dense (lowest free first, and renumbering only onto an open fd), so the table is
//! a vector indexed by fd: every host call and every `poll_oneoff` subscription looks an fd up,
//! and a map's search showed up in the per-request profile.

use std::sync::{Arc, Weak};

use crate::errno::Errno;
use crate::net::{Connection, Listener};

/// Upper bound on open guest fds (`EMFILE` beyond it).
pub const MAX_FDS: usize = 16 * 1024;

/// What one guest fd is.
#[derive(Debug, Clone)]
pub enum Kind {
    Null,
    Stdin,
    Stdout,
    Stderr,
    Listener(Arc<Listener>),
    /// An accepted or outgoing connection.
    Stream(Arc<Connection>),
    /// A directory or file served by wasmtime-wasi under its own fd number.
    Delegated(u32),
}

impl Kind {
    pub fn is_socket(&self) -> bool {
        matches!(self, Kind::Listener(_) | Kind::Stream(_))
    }
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub kind: Kind,
    /// `FDFLAGS_NONBLOCK`: calls that would wait answer `EAGAIN` instead.
    pub nonblock: bool,
}

#[derive(Debug, Default)]
pub struct FdTable {
    /// Indexed by fd; `None` is a free number.
    entries: Vec<Option<Entry>>,
    /// How many entries are `Some`.
    open: usize,
    /// Connections that left the table while their pump may still be sending what the guest
    /// wrote: the exit flush waits for them too, so bytes written before `fd_close` and
    /// `proc_exit` still reach the peer.
    departed: Vec<Weak<Connection>>,
}

impl FdTable {
    /// Place a start-up entry (config sockets, stdio, pre-opens) at its fixed number.
    pub fn insert_at(&mut self, fd: u32, kind: Kind) {
        let entry = Entry {
            kind,
            nonblock: false,
        };
        let _ = self.put(fd as usize, entry);
    }

    /// Place `kind` at the lowest free fd.
    pub fn push(&mut self, kind: Kind, nonblock: bool) -> Result<u32, Errno> {
        if self.open >= MAX_FDS {
            return Err(Errno::MFILE);
        }
        let fd = self
            .entries
            .iter()
            .position(Option::is_none)
            .unwrap_or(self.entries.len());
        let _ = self.put(fd, Entry { kind, nonblock });
        u32::try_from(fd).map_err(|_| Errno::MFILE)
    }

    fn slot(&self, fd: i32) -> Option<&Option<Entry>> {
        usize::try_from(fd).ok().and_then(|fd| self.entries.get(fd))
    }

    pub fn get(&self, fd: i32) -> Result<&Entry, Errno> {
        self.slot(fd).and_then(Option::as_ref).ok_or(Errno::BADF)
    }

    pub fn get_mut(&mut self, fd: i32) -> Result<&mut Entry, Errno> {
        usize::try_from(fd)
            .ok()
            .and_then(|fd| self.entries.get_mut(fd))
            .and_then(Option::as_mut)
            .ok_or(Errno::BADF)
    }

    pub fn remove(&mut self, fd: i32) -> Result<Entry, Errno> {
        let entry = usize::try_from(fd)
            .ok()
            .and_then(|fd| self.entries.get_mut(fd))
            .and_then(Option::take)
            .ok_or(Errno::BADF)?;
        self.open -= 1;
        // Keep the vector as short as the highest open fd.
        while matches!(self.entries.last(), Some(None)) {
            self.entries.pop();
        }
        self.note_departure(&entry);
        Ok(entry)
    }

    /// Put `entry` at `fd`, which the caller checked is open (`fd_renumber`); returns what was
    /// there.
    pub fn insert(&mut self, fd: u32, entry: Entry) -> Option<Entry> {
        let displaced = self.put(fd as usize, entry);
        if let Some(entry) = &displaced {
            self.note_departure(entry);
        }
        displaced
    }

    fn put(&mut self, fd: usize, entry: Entry) -> Option<Entry> {
        if fd >= self.entries.len() {
            self.entries.resize_with(fd + 1, || None);
        }
        let displaced = self.entries[fd].replace(entry);
        if displaced.is_none() {
            self.open += 1;
        }
        displaced
    }

    fn note_departure(&mut self, entry: &Entry) {
        if let Kind::Stream(conn) = &entry.kind {
            // Bounded by the number of pumps alive: finished ones are dropped as the list grows.
            if self.departed.len() >= 64 {
                self.departed.retain(|c| c.strong_count() > 0);
            }
            self.departed.push(Arc::downgrade(conn));
        }
    }

    /// The wasmtime-wasi fd behind a delegated guest fd; `other` for Moat's own descriptors.
    pub fn delegated(&self, fd: i32, other: Errno) -> Result<i32, Errno> {
        match self.get(fd)?.kind {
            Kind::Delegated(inner) => i32::try_from(inner).map_err(|_| Errno::BADF),
            _ => Err(other),
        }
    }

    /// Remove every connection from the table, plus those the guest already closed whose pumps
    /// are still running (for the final flush at exit).
    pub fn take_connections(&mut self) -> Vec<Arc<Connection>> {
        let departed: Vec<Arc<Connection>> = std::mem::take(&mut self.departed)
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        let mut streams = Vec::new();
        for slot in &mut self.entries {
            if matches!(
                slot,
                Some(Entry {
                    kind: Kind::Stream(_),
                    ..
                })
            ) && let Some(Entry {
                kind: Kind::Stream(c),
                ..
            }) = slot.take()
            {
                self.open -= 1;
                streams.push(c);
            }
        }
        streams
            .into_iter()
            .chain(departed)
            .fold(Vec::new(), |mut all: Vec<Arc<Connection>>, c| {
                // A renumbered fd departs while still in the table: list each connection once.
                if !all.iter().any(|seen| Arc::ptr_eq(seen, &c)) {
                    all.push(c);
                }
                all
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_takes_the_lowest_free_fd() {
        let mut t = FdTable::default();
        t.insert_at(0, Kind::Stdin);
        t.insert_at(1, Kind::Stdout);
        t.insert_at(3, Kind::Null);
        assert_eq!(t.push(Kind::Null, false), Ok(2));
        assert_eq!(t.push(Kind::Null, false), Ok(4));
        t.remove(1).unwrap();
        assert_eq!(t.push(Kind::Null, true), Ok(1));
        assert!(t.get(1).unwrap().nonblock);
    }

    #[test]
    fn negative_and_unknown_fds_are_ebadf() {
        let mut t = FdTable::default();
        assert_eq!(t.get(-1).unwrap_err(), Errno::BADF);
        assert_eq!(t.remove(7).unwrap_err(), Errno::BADF);
        t.insert_at(5, Kind::Delegated(3));
        t.insert_at(6, Kind::Null);
        assert_eq!(t.delegated(5, Errno::SPIPE), Ok(3));
        assert_eq!(t.delegated(6, Errno::SPIPE), Err(Errno::SPIPE));
    }

    #[test]
    fn the_limit_counts_open_fds_not_numbers() {
        let mut t = FdTable::default();
        for _ in 0..MAX_FDS {
            t.push(Kind::Null, false).unwrap();
        }
        assert_eq!(t.push(Kind::Null, false), Err(Errno::MFILE));
        // Renumbering onto an open fd closes it: one number frees up.
        let moved = t.remove(10).unwrap();
        assert!(t.insert(20, moved).is_some());
        assert_eq!(t.push(Kind::Null, false), Ok(10));
        assert_eq!(t.push(Kind::Null, false), Err(Errno::MFILE));
        // Closing the highest fds shrinks the table; the numbers are reused.
        let last = (MAX_FDS - 1) as i32;
        t.remove(last).unwrap();
        t.remove(last - 1).unwrap();
        assert_eq!(t.get(last).unwrap_err(), Errno::BADF);
        assert_eq!(t.push(Kind::Null, false), Ok(last as u32 - 1));
    }
}

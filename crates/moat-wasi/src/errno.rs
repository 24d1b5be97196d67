//! WASI preview-1 errno values and the one place where host errors become errnos.
//!
//! The numbers are fixed by the `wasi_snapshot_preview1` witx; they are spelled out here (rather
//! than taken from wasmtime-wasi's generated `types`) because Moat's own host functions write raw
//! `i32` results and must not depend on wiggle's internal enum layout.

use std::io;

/// A WASI preview-1 errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Errno(pub u16);

impl Errno {
    pub const SUCCESS: Errno = Errno(0);
    pub const ACCES: Errno = Errno(2);
    pub const AGAIN: Errno = Errno(6);
    pub const BADF: Errno = Errno(8);
    pub const CONNABORTED: Errno = Errno(13);
    pub const CONNREFUSED: Errno = Errno(14);
    pub const CONNRESET: Errno = Errno(15);
    pub const FAULT: Errno = Errno(21);
    pub const HOSTUNREACH: Errno = Errno(23);
    pub const INVAL: Errno = Errno(28);
    pub const IO: Errno = Errno(29);
    pub const MFILE: Errno = Errno(33);
    pub const NETUNREACH: Errno = Errno(40);
    pub const NOTCONN: Errno = Errno(53);
    pub const NOTDIR: Errno = Errno(54);
    pub const NOTSOCK: Errno = Errno(57);
    pub const NOTSUP: Errno = Errno(58);
    pub const OVERFLOW: Errno = Errno(61);
    pub const PIPE: Errno = Errno(64);
    pub const SPIPE: Errno = Errno(70);
    pub const TIMEDOUT: Errno = Errno(73);

    /// The `i32` a host function returns to the guest.
    pub const fn raw(self) -> i32 {
        self.0 as i32
    }
}

/// How a host-side I/O failure on a socket looks to the guest.
pub fn from_io_kind(kind: io::ErrorKind) -> Errno {
    use io::ErrorKind as K;
    match kind {
        K::ConnectionRefused => Errno::CONNREFUSED,
        K::ConnectionReset => Errno::CONNRESET,
        K::ConnectionAborted => Errno::CONNABORTED,
        K::BrokenPipe => Errno::PIPE,
        K::TimedOut => Errno::TIMEDOUT,
        K::NotConnected => Errno::NOTCONN,
        K::HostUnreachable | K::NotFound => Errno::HOSTUNREACH,
        K::NetworkUnreachable => Errno::NETUNREACH,
        // rustls reports handshake and certificate failures as InvalidData.
        K::InvalidData => Errno::CONNABORTED,
        _ => Errno::IO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_kinds_map_to_socket_errnos() {
        assert_eq!(
            from_io_kind(io::ErrorKind::ConnectionRefused),
            Errno::CONNREFUSED
        );
        assert_eq!(from_io_kind(io::ErrorKind::InvalidData), Errno::CONNABORTED);
        assert_eq!(from_io_kind(io::ErrorKind::Other), Errno::IO);
    }
}

//! What every guest program shares: finding its pre-opened sockets the way Enarx workloads do.
//!
//! Enarx (and Moat) put config entry *i* at fd *i* and describe them in the environment:
//! `FD_COUNT` (how many) and `FD_NAMES` (their names joined with `:`). A workload looks its socket
//! up by name and wraps the fd with `from_raw_fd`; there is no other way for it to get a socket.

use std::os::fd::RawFd;

/// The names in `FD_NAMES`, index = fd. Panics (the guest's way to fail loudly) if the
/// environment does not describe the fds, or if `FD_COUNT` disagrees with `FD_NAMES`.
pub fn fd_names() -> Vec<String> {
    let count: usize = std::env::var("FD_COUNT")
        .expect("FD_COUNT is set by the Keep")
        .parse()
        .expect("FD_COUNT is a number");
    let names: Vec<String> = std::env::var("FD_NAMES")
        .expect("FD_NAMES is set by the Keep")
        .split(':')
        .map(str::to_owned)
        .collect();
    assert_eq!(names.len(), count, "FD_COUNT and FD_NAMES disagree");
    names
}

/// The fd of the entry called `name`.
pub fn fd_named(name: &str) -> RawFd {
    let names = fd_names();
    let index = names
        .iter()
        .position(|n| n == name)
        .unwrap_or_else(|| panic!("no fd named {name:?} in FD_NAMES {names:?}"));
    RawFd::try_from(index).expect("fd fits in RawFd")
}

/// The socket a server guest serves: the entry named by the first argument, else the first
/// entry after stdio (fd 3), as Enarx's examples assume.
pub fn server_fd() -> RawFd {
    match std::env::args().nth(1) {
        Some(name) => fd_named(&name),
        None => 3,
    }
}

/// A `std::net::TcpListener` over the pre-opened listen socket `fd`.
pub fn listener(fd: RawFd) -> std::net::TcpListener {
    use std::os::wasi::io::FromRawFd;
    // SAFETY: the Keep pre-opened `fd` as a listening socket for this program, which owns it
    // from here on; nothing else in the program uses this fd.
    #[allow(unsafe_code)]
    unsafe {
        std::net::TcpListener::from_raw_fd(fd)
    }
}

/// A `std::net::TcpStream` over the pre-opened connect socket `fd`.
pub fn stream(fd: RawFd) -> std::net::TcpStream {
    use std::os::wasi::io::FromRawFd;
    // SAFETY: the Keep pre-opened `fd` as a connected socket for this program, which owns it
    // from here on; nothing else in the program uses this fd.
    #[allow(unsafe_code)]
    unsafe {
        std::net::TcpStream::from_raw_fd(fd)
    }
}

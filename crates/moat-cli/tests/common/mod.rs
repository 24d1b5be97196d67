//! Shared by the `run_*` end-to-end tests: the `moat` binary under test and small client helpers.
//! Each test binary uses a different subset, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};

use moat_testkit::process::Moat;
use moat_testkit::{configs, guests, net};

/// The `moat` binary under test: the one cargo built for these tests, or `$MOAT_BIN` (to run the
/// same tests against another build, e.g. a release binary).
pub fn moat() -> std::path::PathBuf {
    std::env::var_os("MOAT_BIN")
        .map(Into::into)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_moat").into())
}

/// A Keep running `guest` with one listener called `sock` on a fresh port; waits for the guest's
/// `listening` line. Returns the handle and the port.
pub fn serve(guest: &str, prot: &str) -> (moat_testkit::process::Running, u16) {
    let port = net::free_port();
    let config = configs::stdio() + &configs::listen("sock", prot, port);
    let mut keep = Moat::run(moat(), guests::module(guest))
        .config(&config)
        .guest_args(["sock"])
        .spawn();
    keep.wait_for_stdout("listening");
    (keep, port)
}

/// A Keep running the `flood` guest (it accepts and holds every connection it gets) under a
/// per-listener limit of `limit` connections and a 5 s wall-clock budget, with `flags` added to
/// `moat run`, and eight clients connected to it.
pub fn flood_with_clients(
    limit: u32,
    flags: &[&str],
) -> (moat_testkit::process::Running, Vec<TcpStream>) {
    let port = net::free_port();
    let limit = format!("max_connections_per_listener = {limit}");
    let config = configs::limits(&[limit.as_str(), "wall_time = \"5s\""])
        + &configs::stdio()
        + &configs::listen("sock", "tcp", port);
    let mut keep = Moat::run(moat(), guests::module("flood"))
        .config(&config)
        .args(flags)
        .guest_args(["sock"])
        .spawn();
    keep.wait_for_stdout("flood: listening");
    let clients = (0..8)
        .map(|_| TcpStream::connect(net::local(port)).expect("connect"))
        .collect();
    (keep, clients)
}

/// Plain TCP: send `payload`, half-close, read until the server closes.
pub fn tcp_roundtrip(addr: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let mut tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(moat_testkit::WAIT)).unwrap();
    // Write on another thread: a large payload fills both directions' buffers otherwise.
    let mut writer = tcp.try_clone().unwrap();
    let payload_owned = payload.to_vec();
    let sender = std::thread::spawn(move || {
        writer.write_all(&payload_owned).expect("send");
        writer.shutdown(Shutdown::Write).expect("half-close");
    });
    let mut back = Vec::new();
    tcp.read_to_end(&mut back).expect("read the echo");
    sender.join().unwrap();
    back
}

/// A payload of `len` bytes that is not all one value, so reordering would show.
pub fn payload(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

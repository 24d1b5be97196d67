//! Loopback ports chosen by the OS, and waiting until something listens on one.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// A port that was free a moment ago on 127.0.0.1 (bound to port 0, then released). Another
/// process could take it in between; on loopback in a test run that is rare enough.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// `127.0.0.1:port`.
pub fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Poll until a TCP connect to `addr` succeeds, calling `still_alive` between tries so a server
/// that died is reported at once. Returns `Err` with what went wrong after `timeout`.
///
/// Note that the probe connection is accepted and closed at once: a server that counts
/// connections sees one more.
pub fn wait_for_listener(
    addr: SocketAddr,
    timeout: Duration,
    mut still_alive: impl FnMut() -> Result<(), String>,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() > deadline => {
                return Err(format!("nothing listens on {addr} after {timeout:?}: {e}"));
            }
            Err(_) => {
                still_alive()?;
                std::thread::sleep(Duration::from_millis(25));
            }
        }
    }
}

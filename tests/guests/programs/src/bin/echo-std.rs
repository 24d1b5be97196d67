//! Blocking std echo server, one connection at a time: `accept`, copy until the peer half-closes,
//! write everything back, then close (which a TLS listener turns into close_notify + FIN).
//!
//! Args: `[SOCKET_NAME] [MAX_CONNECTIONS]`. With a maximum it exits 0 after serving that many
//! connections, so tests can check that the workload's exit status becomes `moat`'s.

use std::io::{Read, Write};
use std::net::Shutdown;

fn main() {
    let listener = moat_test_guests::listener(moat_test_guests::server_fd());
    let max: Option<u64> = std::env::args()
        .nth(2)
        .map(|n| n.parse().expect("MAX_CONNECTIONS"));
    println!("echo-std: listening");
    let mut served = 0u64;
    while max.is_none_or(|max| served < max) {
        let (mut conn, _) = listener.accept().expect("accept");
        let mut buf = [0u8; 16 * 1024];
        loop {
            match conn.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if let Err(e) = conn.write_all(&buf[..n]) {
                        eprintln!("echo-std: write: {e}");
                        break;
                    }
                }
                Err(e) => {
                    eprintln!("echo-std: read: {e}");
                    break;
                }
            }
        }
        let _ = conn.shutdown(Shutdown::Both);
        served += 1;
        println!("echo-std: served {served}");
    }
}

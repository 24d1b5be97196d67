//! std TCP client on a pre-opened `connect` socket, as Enarx's tcp-client example: the Keep made
//! the connection (and, for `prot = "tls"`, the TLS session); the guest only reads and writes.
//!
//! Args: `SOCKET_NAME MESSAGE`. Sends MESSAGE and a newline, half-closes, reads until the peer
//! closes, and prints `received: <reply>` on stdout. Exits 2 if the socket fails.

use std::io::{Read, Write};
use std::net::Shutdown;

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().expect("SOCKET_NAME");
    let message = args.next().expect("MESSAGE");
    let mut stream = moat_test_guests::stream(moat_test_guests::fd_named(&name));
    let outcome = (|| -> std::io::Result<String> {
        stream.write_all(format!("{message}\n").as_bytes())?;
        stream.shutdown(Shutdown::Write)?;
        let mut reply = String::new();
        stream.read_to_string(&mut reply)?;
        Ok(reply)
    })();
    match outcome {
        Ok(reply) => println!("received: {}", reply.trim_end()),
        Err(e) => {
            println!("socket error: {e}");
            std::process::exit(2);
        }
    }
}

//! tokio echo server on a current-thread runtime, one task per connection, written as Enarx's
//! tokio example is (`from_raw_fd`, `set_nonblocking`, `TcpListener::from_std`): the guest drives
//! everything through `poll_oneoff`. Args: `[SOCKET_NAME]`.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let std_listener = moat_test_guests::listener(moat_test_guests::server_fd());
    std_listener.set_nonblocking(true)?;
    let listener = TcpListener::from_std(std_listener)?;
    println!("echo-tokio: listening");
    loop {
        let (socket, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                eprintln!("echo-tokio: accept: {e}");
                continue;
            }
        };
        tokio::spawn(async move {
            if let Err(e) = echo(socket).await {
                eprintln!("echo-tokio: connection: {e}");
            }
        });
    }
}

async fn echo(mut socket: TcpStream) -> std::io::Result<()> {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = socket.read(&mut buf).await?;
        if n == 0 {
            // The peer half-closed: everything it sent has been echoed; close our side too.
            return socket.shutdown().await;
        }
        socket.write_all(&buf[..n]).await?;
    }
}

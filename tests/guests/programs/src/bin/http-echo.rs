//! The benchmark workload: an HTTP/1.1 keep-alive echo (`moat-http-echo`) on a current-thread
//! tokio runtime, one task per connection. The native baseline runs the very same crate.
//! Args: `[SOCKET_NAME]`.

use tokio::net::TcpListener;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let std_listener = moat_test_guests::listener(moat_test_guests::server_fd());
    std_listener.set_nonblocking(true)?;
    let listener = TcpListener::from_std(std_listener)?;
    println!("http-echo: listening");
    loop {
        let (socket, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                eprintln!("http-echo: accept: {e}");
                continue;
            }
        };
        tokio::spawn(async move {
            if let Err(e) = moat_http_echo::serve_connection(socket).await {
                eprintln!("http-echo: connection: {e}");
            }
        });
    }
}

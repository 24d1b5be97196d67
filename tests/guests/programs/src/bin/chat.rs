//! Multi-client chat server (tokio, current-thread), after Enarx's `chat-server` demo: every
//! line a client sends goes to every connected client as `<id>: <line>`. A client is first told
//! its id (`welcome <id>`), after it has been subscribed, so anything said after that reaches it.
//! Args: `[SOCKET_NAME]`.

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let std_listener = moat_test_guests::listener(moat_test_guests::server_fd());
    std_listener.set_nonblocking(true)?;
    let listener = TcpListener::from_std(std_listener)?;
    let (tx, _) = broadcast::channel::<String>(256);
    println!("chat: listening");
    let mut next_id = 1u64;
    loop {
        let (peer, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                eprintln!("chat: accept: {e}");
                continue;
            }
        };
        let id = next_id;
        next_id += 1;
        let tx = tx.clone();
        let rx = tx.subscribe();
        tokio::spawn(async move {
            if let Err(e) = serve(peer, id, tx, rx).await {
                eprintln!("chat: client {id}: {e}");
            }
            println!("chat: {id} left");
        });
    }
}

async fn serve(
    peer: TcpStream,
    id: u64,
    tx: broadcast::Sender<String>,
    mut rx: broadcast::Receiver<String>,
) -> std::io::Result<()> {
    let (read, mut write) = peer.into_split();
    let mut lines = BufReader::new(read).lines();
    write
        .write_all(format!("welcome {id}\n").as_bytes())
        .await?;
    loop {
        tokio::select! {
            line = lines.next_line() => match line? {
                None => return Ok(()),
                Some(line) => {
                    // An error only means nobody listens, which cannot happen while we do.
                    let _ = tx.send(format!("{id}: {line}\n"));
                }
            },
            said = rx.recv() => match said {
                Ok(said) => write.write_all(said.as_bytes()).await?,
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    write.write_all(format!("missed {missed}\n").as_bytes()).await?;
                }
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
            },
        }
    }
}

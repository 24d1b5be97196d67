//! Peers for the workloads: TCP and TLS echo servers that a guest's `connect` socket reaches, and
//! a client that stalls in the middle of a TLS handshake.
//!
//! Each server runs on its own thread with its own tokio runtime, on a port the OS picked, and
//! stops when its handle drops. The TLS server records the SNI name each client sent, so a test
//! can check what the Keep asked for.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// A running echo server: every connection gets back what it sends, and is closed (TLS:
/// close_notify then FIN) once the client half-closes.
pub struct EchoServer {
    pub addr: SocketAddr,
    sni: Arc<Mutex<Vec<Option<String>>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl EchoServer {
    /// Plain TCP on 127.0.0.1.
    pub fn tcp() -> EchoServer {
        EchoServer::start(None)
    }

    /// TLS on 127.0.0.1 with `config`.
    pub fn tls(config: Arc<rustls::ServerConfig>) -> EchoServer {
        EchoServer::start(Some(config))
    }

    /// The SNI name of every TLS connection so far (`None`: the client sent none).
    pub fn sni_seen(&self) -> Vec<Option<String>> {
        self.sni.lock().expect("sni lock").clone()
    }

    fn start(tls: Option<Arc<rustls::ServerConfig>>) -> EchoServer {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        std_listener.set_nonblocking(true).expect("non-blocking");
        let addr = std_listener.local_addr().expect("local addr");
        let sni = Arc::new(Mutex::new(Vec::new()));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let sni_log = sni.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            runtime.block_on(async move {
                let listener =
                    tokio::net::TcpListener::from_std(std_listener).expect("tokio listener");
                let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
                let serve = async {
                    loop {
                        let Ok((tcp, _)) = listener.accept().await else {
                            continue;
                        };
                        let acceptor = acceptor.clone();
                        let sni_log = sni_log.clone();
                        tokio::spawn(async move {
                            match acceptor {
                                None => echo(tcp).await,
                                Some(acceptor) => {
                                    if let Ok(tls) = acceptor.accept(tcp).await {
                                        let name = tls.get_ref().1.server_name().map(str::to_owned);
                                        sni_log.lock().expect("sni lock").push(name);
                                        echo(tls).await;
                                    }
                                }
                            }
                        });
                    }
                };
                tokio::select! {
                    _ = serve => {},
                    _ = stopped => {},
                }
            });
        });
        EchoServer {
            addr,
            sni,
            stop: Some(stop),
        }
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn echo<S: AsyncRead + AsyncWrite + Unpin>(mut io: S) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match io.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if io.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
    let _ = io.shutdown().await;
}

/// Open a TCP connection to `addr` and send the first bytes of a TLS ClientHello, then nothing:
/// a client stuck in the middle of its handshake. Keep the returned stream alive as long as the
/// stall should last.
pub fn stalled_handshake(addr: SocketAddr) -> std::net::TcpStream {
    let mut tcp = std::net::TcpStream::connect(addr).expect("connect");
    // A TLS record header announcing a 512-byte handshake message, and only its first bytes.
    tcp.write_all(&[
        0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
    ])
    .expect("send a partial ClientHello");
    tcp
}

//! An HTTP/1.1 keep-alive echo: each request's body comes back as the response body.
//!
//! This is the one piece of logic Moat's runtime benchmark serves twice: compiled to
//! `wasm32-wasip1` inside `moat run` (where the host does TLS) and compiled natively behind
//! tokio + rustls (the baseline). Keeping it in one crate makes the comparison about the runtime,
//! not about two implementations. It is deliberately small (no chunked bodies, no pipelining
//! beyond what the buffer already holds) and bounded: heads over [`MAX_HEAD`] or bodies over
//! [`MAX_BODY`] get an error response and the connection closes.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest request line + headers accepted; a peer cannot make the server buffer more.
pub const MAX_HEAD: usize = 16 * 1024;
/// Largest body echoed.
pub const MAX_BODY: usize = 1024 * 1024;

/// Serve requests on one connection until the peer closes it, asks to close, or misbehaves.
pub async fn serve_connection<S: AsyncRead + AsyncWrite + Unpin>(mut io: S) -> std::io::Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    loop {
        // Read until the head is complete.
        let head_end = loop {
            if let Some(end) = find_head_end(&buf) {
                break end;
            }
            if buf.len() > MAX_HEAD {
                return respond_error(&mut io, "431 Request Header Fields Too Large").await;
            }
            let n = io.read(&mut chunk).await?;
            if n == 0 {
                // A clean close between requests; a close inside a head is the peer's choice too.
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = match Head::parse(&buf[..head_end]) {
            Some(head) => head,
            None => return respond_error(&mut io, "400 Bad Request").await,
        };
        if head.content_length > MAX_BODY {
            return respond_error(&mut io, "413 Content Too Large").await;
        }
        let body_start = head_end;
        while buf.len() < body_start + head.content_length {
            let n = io.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let body_end = body_start + head.content_length;
        let mut response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: {}\r\n{}\r\n",
            head.content_length,
            if head.close { "connection: close\r\n" } else { "" }
        )
        .into_bytes();
        response.extend_from_slice(&buf[body_start..body_end]);
        io.write_all(&response).await?;
        io.flush().await?;
        buf.drain(..body_end);
        if head.close {
            return io.shutdown().await;
        }
    }
}

async fn respond_error<S: AsyncWrite + Unpin>(io: &mut S, status: &str) -> std::io::Result<()> {
    let response = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    io.write_all(response.as_bytes()).await?;
    io.shutdown().await
}

/// Offset just past the blank line ending the head, if the buffer holds a whole head.
fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// What the echo needs from a request head.
#[derive(Debug, PartialEq, Eq)]
struct Head {
    content_length: usize,
    close: bool,
}

impl Head {
    fn parse(head: &[u8]) -> Option<Head> {
        let text = std::str::from_utf8(head).ok()?;
        let mut lines = text.split("\r\n");
        let request_line = lines.next()?;
        let mut parts = request_line.split(' ');
        let (_method, _target, version) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || !version.starts_with("HTTP/1.") {
            return None;
        }
        let mut head = Head {
            content_length: 0,
            close: version == "HTTP/1.0",
        };
        for line in lines.filter(|l| !l.is_empty()) {
            let (name, value) = line.split_once(':')?;
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                head.content_length = value.parse().ok()?;
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                // Chunked bodies are outside what this echo serves.
                return None;
            } else if name.eq_ignore_ascii_case("connection") {
                head.close = value.eq_ignore_ascii_case("close");
            }
        }
        Some(head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_keep_alive_and_close() {
        let h =
            Head::parse(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n").unwrap();
        assert_eq!(
            h,
            Head {
                content_length: 5,
                close: false
            }
        );
        let h = Head::parse(b"GET / HTTP/1.1\r\nconnection: Close\r\n\r\n").unwrap();
        assert!(h.close);
    }

    #[test]
    fn rejects_bad_heads() {
        assert_eq!(Head::parse(b"GARBAGE\r\n\r\n"), None);
        assert_eq!(
            Head::parse(b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n"),
            None
        );
        assert_eq!(Head::parse(b"GET / HTTP/1.1\r\nno-colon\r\n\r\n"), None);
        assert_eq!(
            Head::parse(b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            None
        );
        assert_eq!(Head::parse(&[0xff, 0xfe, b'\r', b'\n']), None);
    }
}

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
    let mut response: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    loop {
        // Read until the head is complete.
        let (head_end, head) = loop {
            match parse_request(&buf) {
                Parsed::Complete(end, head) => break (end, head),
                Parsed::Invalid => return respond_error(&mut io, "400 Bad Request").await,
                Parsed::TooLarge => {
                    return respond_error(&mut io, "431 Request Header Fields Too Large").await;
                }
                Parsed::Partial if buf.len() > MAX_HEAD => {
                    return respond_error(&mut io, "431 Request Header Fields Too Large").await;
                }
                Parsed::Partial => {}
            }
            let n = io.read(&mut chunk).await?;
            if n == 0 {
                // A clean close between requests; a close inside a head is the peer's choice too.
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
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
        response.clear();
        response.extend_from_slice(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: ",
        );
        response.extend_from_slice(itoa::Buffer::new().format(head.content_length).as_bytes());
        response.extend_from_slice(if head.close {
            b"\r\nconnection: close\r\n\r\n"
        } else {
            b"\r\n\r\n"
        });
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

/// Headers one request may carry; more is answered 431.
const MAX_HEADERS: usize = 64;

/// What the buffered bytes hold.
#[derive(Debug, PartialEq, Eq)]
enum Parsed {
    /// A whole head, `.0` bytes long.
    Complete(usize, Head),
    /// The head is not finished yet.
    Partial,
    /// Not HTTP/1.x, or a head this echo does not serve.
    Invalid,
    /// More than [`MAX_HEADERS`] headers.
    TooLarge,
}

/// Parse the request head at the start of `buf` with httparse, the parser hyper uses.
fn parse_request(buf: &[u8]) -> Parsed {
    // Uninitialised: a zeroed array of headers would cost a memset per parse.
    let mut headers = [const { std::mem::MaybeUninit::uninit() }; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut []);
    let end = match request.parse_with_uninit_headers(buf, &mut headers) {
        Ok(httparse::Status::Complete(end)) => end,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(httparse::Error::TooManyHeaders) => return Parsed::TooLarge,
        Err(_) => return Parsed::Invalid,
    };
    match Head::from_request(&request) {
        Some(head) => Parsed::Complete(end, head),
        None => Parsed::Invalid,
    }
}

/// What the echo needs from a request head.
#[derive(Debug, PartialEq, Eq)]
struct Head {
    content_length: usize,
    close: bool,
}

impl Head {
    fn from_request(request: &httparse::Request<'_, '_>) -> Option<Head> {
        let mut head = Head {
            content_length: 0,
            // HTTP/1.0 closes unless asked otherwise; only 1.x gets this far.
            close: request.version? == 0,
        };
        for header in request.headers.iter() {
            if header.name.eq_ignore_ascii_case("content-length") {
                head.content_length = std::str::from_utf8(header.value)
                    .ok()?
                    .trim()
                    .parse()
                    .ok()?;
            } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
                // Chunked bodies are outside what this echo serves.
                return None;
            } else if header.name.eq_ignore_ascii_case("connection") {
                head.close = header.value.trim_ascii().eq_ignore_ascii_case(b"close");
            }
        }
        Some(head)
    }

    /// A whole head's fields (`None` for anything [`parse_request`] would not serve).
    #[cfg(test)]
    fn parse(bytes: &[u8]) -> Option<Head> {
        match parse_request(bytes) {
            Parsed::Complete(_, head) => Some(head),
            _ => None,
        }
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

    #[test]
    fn tells_partial_heads_and_header_floods_apart() {
        assert_eq!(parse_request(b""), Parsed::Partial);
        assert_eq!(
            parse_request(b"POST /echo HTTP/1.1\r\nContent-Le"),
            Parsed::Partial
        );
        let mut flood = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            flood.extend_from_slice(format!("x-{i}: y\r\n").as_bytes());
        }
        flood.extend_from_slice(b"\r\n");
        assert_eq!(parse_request(&flood), Parsed::TooLarge);
        assert_eq!(parse_request(b"GET / HTTP/2.0\r\n\r\n"), Parsed::Invalid);
        let complete = b"GET / HTTP/1.0\r\n\r\nbody";
        assert_eq!(
            parse_request(complete),
            Parsed::Complete(
                complete.len() - 4,
                Head {
                    content_length: 0,
                    close: true
                }
            )
        );
    }
}

//! HTTP/1.1 requests and responses, bounded.
//!
//! [`parse_request`] takes the bytes a connection has received so far and either returns one
//! complete request (and how many bytes it used), asks for more, or fails with an [`HttpError`]
//! whose status the server sends before closing. Heads and bodies have hard size limits so a
//! client cannot make the server buffer without bound; a driver must still time out slow clients.
//! Only `Content-Length` bodies are accepted (no chunked uploads: the API's bodies are tiny).

use std::borrow::Cow;
use std::io::Write;

/// Size limits for one request.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// Request line and headers, in bytes.
    pub max_head_bytes: usize,
    /// Number of header lines.
    pub max_headers: usize,
    /// Body, in bytes.
    pub max_body_bytes: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_head_bytes: 8 * 1024,
            max_headers: 32,
            max_body_bytes: 4 * 1024,
        }
    }
}

impl HttpLimits {
    /// The most a connection ever needs to buffer for one request.
    pub fn max_request_bytes(&self) -> usize {
        self.max_head_bytes + self.max_body_bytes
    }
}

/// Why bytes are not an acceptable request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    #[error("request head larger than {0} bytes")]
    HeadTooLarge(usize),
    #[error("more than {0} header lines")]
    TooManyHeaders(usize),
    #[error("body larger than {0} bytes")]
    BodyTooLarge(usize),
    #[error("transfer encodings are not accepted; send Content-Length")]
    TransferEncoding,
    #[error("HTTP version not supported")]
    Version,
    #[error("the request did not arrive in time")]
    Timeout,
}

impl HttpError {
    pub fn status(&self) -> u16 {
        match self {
            HttpError::Malformed(_) => 400,
            HttpError::HeadTooLarge(_) | HttpError::TooManyHeaders(_) => 431,
            HttpError::BodyTooLarge(_) => 413,
            HttpError::TransferEncoding => 501,
            HttpError::Version => 505,
            HttpError::Timeout => 408,
        }
    }
}

/// The methods the game answers; anything else is kept as `Other` and refused by routing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Other,
}

/// One parsed request: only what the game uses.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    /// Path without the query string.
    pub path: String,
    /// `Authorization: Bearer <token>`, if given.
    pub bearer: Option<String>,
    /// Whether the body was declared JSON.
    pub json_body: bool,
    pub body: Vec<u8>,
    /// Whether the client wants the connection kept open after the response.
    pub keep_alive: bool,
}

/// Parse one request from the start of `buf`. `Ok(None)`: incomplete, read more.
pub fn parse_request(
    buf: &[u8],
    limits: &HttpLimits,
) -> Result<Option<(Request, usize)>, HttpError> {
    let mut headers = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let mut parsed = httparse::Request::new(&mut headers);
    let head_len = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            if buf.len() > limits.max_head_bytes {
                return Err(HttpError::HeadTooLarge(limits.max_head_bytes));
            }
            return Ok(None);
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Err(HttpError::TooManyHeaders(limits.max_headers));
        }
        Err(httparse::Error::Version) => return Err(HttpError::Version),
        Err(_) => return Err(HttpError::Malformed("bad request line or header")),
    };
    if head_len > limits.max_head_bytes {
        return Err(HttpError::HeadTooLarge(limits.max_head_bytes));
    }
    let method = match parsed.method {
        Some("GET") => Method::Get,
        Some("HEAD") => Method::Head,
        Some("POST") => Method::Post,
        _ => Method::Other,
    };
    let target = parsed.path.ok_or(HttpError::Malformed("no target"))?;
    if !target.starts_with('/') {
        return Err(HttpError::Malformed("target is not a path"));
    }
    let path = target.split(['?', '#']).next().unwrap_or("/").to_owned();
    let http11 = parsed.version == Some(1);

    let mut content_length: Option<usize> = None;
    let mut bearer = None;
    let mut json_body = false;
    let mut connection_close = !http11;
    for h in parsed.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            let text =
                std::str::from_utf8(h.value).map_err(|_| HttpError::Malformed("Content-Length"))?;
            let n: usize = text
                .trim()
                .parse()
                .map_err(|_| HttpError::Malformed("Content-Length"))?;
            if content_length.is_some_and(|m| m != n) {
                return Err(HttpError::Malformed("conflicting Content-Length"));
            }
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(HttpError::TransferEncoding);
        } else if name.eq_ignore_ascii_case("authorization") {
            let value =
                std::str::from_utf8(h.value).map_err(|_| HttpError::Malformed("Authorization"))?;
            if let Some(token) = value.trim().strip_prefix("Bearer ") {
                bearer = Some(token.trim().to_owned());
            }
        } else if name.eq_ignore_ascii_case("content-type") {
            json_body = h
                .value
                .split(|&b| b == b';')
                .next()
                .is_some_and(|t| t.trim_ascii().eq_ignore_ascii_case(b"application/json"));
        } else if name.eq_ignore_ascii_case("connection") {
            let v = h.value;
            if v.eq_ignore_ascii_case(b"close") {
                connection_close = true;
            } else if v.eq_ignore_ascii_case(b"keep-alive") {
                connection_close = false;
            }
        }
    }
    let body_len = content_length.unwrap_or(0);
    if body_len > limits.max_body_bytes {
        return Err(HttpError::BodyTooLarge(limits.max_body_bytes));
    }
    if buf.len() < head_len + body_len {
        return Ok(None);
    }
    let body = buf[head_len..head_len + body_len].to_vec();
    Ok(Some((
        Request {
            method,
            path,
            bearer,
            json_body,
            body,
            keep_alive: !connection_close,
        },
        head_len + body_len,
    )))
}

/// A response the server will write.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Cow<'static, [u8]>,
    /// API answers must not be cached; the page and its assets may be briefly.
    pub cacheable: bool,
    /// Seconds, for 429 and 503.
    pub retry_after: Option<u32>,
    /// Set for HEAD: headers as for GET, no body.
    pub omit_body: bool,
}

impl Response {
    pub fn new(
        status: u16,
        content_type: &'static str,
        body: impl Into<Cow<'static, [u8]>>,
    ) -> Response {
        Response {
            status,
            content_type,
            body: body.into(),
            cacheable: false,
            retry_after: None,
            omit_body: false,
        }
    }

    pub fn json(status: u16, value: &impl serde::Serialize) -> Response {
        let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
        Response::new(status, "application/json", body)
    }

    /// Serialize status line, headers and body. `keep_alive` false adds `Connection: close`.
    pub fn write_to(&self, out: &mut Vec<u8>, keep_alive: bool) {
        let _ = write!(
            out,
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len()
        );
        out.extend_from_slice(if self.cacheable {
            b"Cache-Control: max-age=60\r\n"
        } else {
            b"Cache-Control: no-store\r\n"
        });
        out.extend_from_slice(
            b"X-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\nX-Frame-Options: DENY\r\n\
Content-Security-Policy: default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'\r\n",
        );
        if let Some(secs) = self.retry_after {
            let _ = write!(out, "Retry-After: {secs}\r\n");
        }
        out.extend_from_slice(if keep_alive {
            b"Connection: keep-alive\r\n\r\n"
        } else {
            b"Connection: close\r\n\r\n"
        });
        if !self.omit_body {
            out.extend_from_slice(&self.body);
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Result<Option<(Request, usize)>, HttpError> {
        parse_request(bytes, &HttpLimits::default())
    }

    #[test]
    fn complete_request_with_body_and_pipelined_rest() {
        let raw = b"POST /api/single/guess?x=1 HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer abc\r\n\
Content-Type: application/json; charset=utf-8\r\nContent-Length: 4\r\n\r\n{\"a\"GET / HTTP/1.1\r\n\r\n";
        let (req, used) = parse(raw).unwrap().unwrap();
        assert_eq!(req.method, Method::Post);
        assert_eq!(req.path, "/api/single/guess");
        assert_eq!(req.bearer.as_deref(), Some("abc"));
        assert!(req.json_body && req.keep_alive);
        assert_eq!(req.body, b"{\"a\"");
        let (next, _) = parse(&raw[used..]).unwrap().unwrap();
        assert_eq!(next.path, "/");
    }

    #[test]
    fn every_truncation_asks_for_more() {
        let raw = b"POST /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc";
        for cut in 0..raw.len() {
            assert!(parse(&raw[..cut]).unwrap().is_none(), "cut at {cut}");
        }
        assert!(parse(raw).unwrap().is_some());
    }

    #[test]
    fn hostile_input_gets_typed_errors() {
        assert!(matches!(
            parse(b"\x00\x01\x02garbage\r\n\r\n"),
            Err(HttpError::Malformed(_))
        ));
        assert!(matches!(
            parse(b"GET http://evil/ HTTP/1.1\r\n\r\n"),
            Err(HttpError::Malformed(_))
        ));
        assert_eq!(
            parse(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").unwrap_err(),
            HttpError::TransferEncoding
        );
        assert!(matches!(
            parse(b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"),
            Err(HttpError::Malformed(_))
        ));
        assert!(matches!(
            parse(b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            Err(HttpError::Malformed(_))
        ));
        assert_eq!(
            parse(b"POST / HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n").unwrap_err(),
            HttpError::BodyTooLarge(4096)
        );
        let mut huge = b"GET / HTTP/1.1\r\nX: ".to_vec();
        huge.extend(std::iter::repeat_n(b'a', 9000));
        assert_eq!(parse(&huge).unwrap_err(), HttpError::HeadTooLarge(8192));
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..40 {
            many.extend(format!("X-{i}: y\r\n").as_bytes());
        }
        many.extend(b"\r\n");
        assert_eq!(parse(&many).unwrap_err(), HttpError::TooManyHeaders(32));
        assert_eq!(
            parse(b"GET / HTTP/2.0\r\n\r\n").unwrap_err(),
            HttpError::Version
        );
    }

    #[test]
    fn mutated_bytes_never_panic() {
        let base = b"POST /api/multi/guess HTTP/1.1\r\nAuthorization: Bearer 00\r\nContent-Length: 2\r\n\r\n{}";
        for i in 0..base.len() {
            for b in [0u8, b'\r', b'\n', b':', b' ', 0xff, b'9'] {
                let mut m = base.to_vec();
                m[i] = b;
                let _ = parse(&m);
            }
        }
    }

    #[test]
    fn http10_closes_unless_asked() {
        let (r, _) = parse(b"GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert!(!r.keep_alive);
        let (r, _) = parse(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!r.keep_alive);
    }
}

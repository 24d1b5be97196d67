//! The web page, compiled in: no CDN, no external font, nothing fetched from elsewhere.

use crate::http::Response;

pub const INDEX_HTML: &str = include_str!("assets/index.html");
pub const INDEX_JS: &str = include_str!("assets/index.js");
pub const STYLES_CSS: &str = include_str!("assets/styles.css");

/// The asset at `path`, if any.
pub fn asset(path: &str) -> Option<Response> {
    let (content_type, body) = match path {
        "/" | "/index.html" => ("text/html; charset=utf-8", INDEX_HTML),
        "/index.js" => ("text/javascript; charset=utf-8", INDEX_JS),
        "/styles.css" => ("text/css; charset=utf-8", STYLES_CSS),
        _ => return None,
    };
    let mut r = Response::new(200, content_type, body.as_bytes());
    r.cacheable = true;
    Some(r)
}

//! Repository names, tags and references, validated by the spec's grammar plus Moat's limits
//! before anything reaches storage, and the parser that splits a `/v2/...` path into a route.
//!
//! Names may contain `/`, so the API routes cannot be matched by a router pattern; they are
//! recognised from the right-hand end of the path instead (`.../manifests/<ref>`,
//! `.../blobs/uploads/<id>`, ...), and everything left of that must be a valid name.

use std::fmt;

use crate::digest::{Digest, DigestError};

/// Longest repository name (the whole path), as Docker's registry also limits it.
pub const MAX_NAME_LEN: usize = 255;
/// Longest path component: well past real names, short enough for any file system.
pub const MAX_COMPONENT_LEN: usize = 128;
/// Most path components: deep enough for `org/team/project/app`, not a path-walking tool.
pub const MAX_COMPONENTS: usize = 16;
/// Longest tag, from the spec's grammar (`[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`).
pub const MAX_TAG_LEN: usize = 128;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NameError {
    #[error("repository name is empty")]
    Empty,
    #[error("repository name is longer than {MAX_NAME_LEN} characters")]
    TooLong,
    #[error("repository name has more than {MAX_COMPONENTS} components")]
    TooManyComponents,
    #[error("repository name component `{0}` is longer than {MAX_COMPONENT_LEN} characters")]
    ComponentTooLong(String),
    #[error(
        "repository name component `{0}` does not match [a-z0-9]+((.|_|__|-+)[a-z0-9]+)* \
         (lower case letters and digits, single separators, no `..`)"
    )]
    BadComponent(String),
    #[error("tag `{0}` does not match [a-zA-Z0-9_][a-zA-Z0-9._-]{{0,127}}")]
    BadTag(String),
    #[error(transparent)]
    Digest(#[from] DigestError),
}

/// A repository name that matched the grammar and the limits.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoName(String);

impl RepoName {
    pub fn parse(s: &str) -> Result<Self, NameError> {
        if s.is_empty() {
            return Err(NameError::Empty);
        }
        if s.len() > MAX_NAME_LEN {
            return Err(NameError::TooLong);
        }
        let components: Vec<&str> = s.split('/').collect();
        if components.len() > MAX_COMPONENTS {
            return Err(NameError::TooManyComponents);
        }
        for component in components {
            if component.len() > MAX_COMPONENT_LEN {
                let shown: String = component.chars().take(32).collect();
                return Err(NameError::ComponentTooLong(format!("{shown}...")));
            }
            if !component_is_valid(component) {
                let shown: String = component.chars().take(64).collect();
                return Err(NameError::BadComponent(shown));
            }
        }
        Ok(RepoName(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`, written out so no regex engine is needed.
fn component_is_valid(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let mut i = 0;
    loop {
        // One run of [a-z0-9]+.
        let start = i;
        while i < bytes.len() && alnum(bytes[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == bytes.len() {
            return true;
        }
        // One separator: `.`, `_`, `__` or `-+`.
        match bytes[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < bytes.len() && bytes[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < bytes.len() && bytes[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
    }
}

/// A tag that matched the spec's grammar.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Tag(String);

impl Tag {
    pub fn parse(s: &str) -> Result<Self, NameError> {
        let bytes = s.as_bytes();
        let first_ok = bytes
            .first()
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_');
        let rest_ok = bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if !first_ok || !rest_ok || bytes.len() > MAX_TAG_LEN {
            let shown: String = s.chars().take(64).collect();
            return Err(NameError::BadTag(shown));
        }
        Ok(Tag(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What follows `/manifests/`: a tag or a digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reference {
    Tag(Tag),
    Digest(Digest),
}

impl Reference {
    pub fn parse(s: &str) -> Result<Self, NameError> {
        if s.contains(':') {
            Ok(Reference::Digest(s.parse()?))
        } else {
            Ok(Reference::Tag(Tag::parse(s)?))
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Tag(t) => t.fmt(f),
            Reference::Digest(d) => d.fmt(f),
        }
    }
}

/// Which API endpoint a `/v2/<name>/...` path names. The trailing part is kept raw here; the
/// handlers parse it (a bad digest is `DIGEST_INVALID`, not `NAME_INVALID`).
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    Manifest(RepoName, String),
    Blob(RepoName, String),
    /// `POST /v2/<name>/blobs/uploads/`
    UploadStart(RepoName),
    Upload(RepoName, String),
    TagsList(RepoName),
    Referrers(RepoName, String),
}

/// Why a `/v2/...` path is not a route.
#[derive(Debug, PartialEq, Eq)]
pub enum RouteError {
    /// The path has no known endpoint suffix.
    NotFound,
    /// The suffix is known, the name is not valid.
    BadName(NameError),
}

/// Split the part of the path after `/v2/` into a route.
pub fn parse_route(rest: &str) -> Result<Route, RouteError> {
    let segments: Vec<&str> = rest.split('/').collect();
    let n = segments.len();
    let name_of = |count: usize| -> Result<RepoName, RouteError> {
        if count == 0 {
            return Err(RouteError::BadName(NameError::Empty));
        }
        RepoName::parse(&segments[..count].join("/")).map_err(RouteError::BadName)
    };
    let last = |i: usize| segments[n - i];
    if n >= 3 && last(2) == "tags" && last(1) == "list" {
        return Ok(Route::TagsList(name_of(n - 2)?));
    }
    if n >= 4 && last(3) == "blobs" && last(2) == "uploads" {
        let id = last(1);
        let name = name_of(n - 3)?;
        return Ok(if id.is_empty() {
            Route::UploadStart(name)
        } else {
            Route::Upload(name, id.to_owned())
        });
    }
    if n >= 3 && last(2) == "blobs" && last(1) == "uploads" {
        return Ok(Route::UploadStart(name_of(n - 2)?));
    }
    if n >= 3 {
        let tail = decode_colon(last(1));
        match last(2) {
            "manifests" => return Ok(Route::Manifest(name_of(n - 2)?, tail)),
            "blobs" => return Ok(Route::Blob(name_of(n - 2)?, tail)),
            "referrers" => return Ok(Route::Referrers(name_of(n - 2)?, tail)),
            _ => {}
        }
    }
    Err(RouteError::NotFound)
}

/// Some clients percent-encode the `:` of a digest; nothing else in a reference may be encoded.
fn decode_colon(segment: &str) -> String {
    segment.replace("%3A", ":").replace("%3a", ":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_names_of_the_grammar() {
        for good in [
            "a",
            "demo",
            "demo/app",
            "a0/b-c/d.e/f_g/h__i/j---k",
            "library/ubuntu",
            &"a".repeat(MAX_COMPONENT_LEN),
        ] {
            assert!(RepoName::parse(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn rejects_names_outside_the_grammar_and_limits() {
        let long_component = "a".repeat(MAX_COMPONENT_LEN + 1);
        let long_name = vec!["abcdefghij"; 24].join("/");
        let deep = vec!["a"; MAX_COMPONENTS + 1].join("/");
        for bad in [
            "",
            "..",
            "a/../b",
            "a/..",
            "../a",
            "a..b",
            "./a",
            "a/./b",
            "/a",
            "a/",
            "a//b",
            "Demo",
            "demo/App",
            "a___b",
            "-a",
            "a-",
            "a.",
            "_a",
            "a b",
            "a%2fb",
            "a\\b",
            "a\0b",
            "é",
            long_component.as_str(),
            long_name.as_str(),
            deep.as_str(),
        ] {
            assert!(RepoName::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn tags_follow_the_grammar() {
        for good in ["latest", "v1.0.0", "_x", "A-b_c.d", &"t".repeat(128)] {
            assert!(Tag::parse(good).is_ok(), "{good}");
        }
        for bad in ["", ".x", "-x", "a/b", "a:b", "a+b", &"t".repeat(129)] {
            assert!(Tag::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn routes_are_read_from_the_right() {
        let name = |s: &str| RepoName::parse(s).unwrap();
        assert_eq!(
            parse_route("a/b/manifests/latest"),
            Ok(Route::Manifest(name("a/b"), "latest".into()))
        );
        // A repository may itself contain the word `blobs` or `manifests`.
        assert_eq!(
            parse_route("blobs/manifests/blobs/sha256%3Aab"),
            Ok(Route::Blob(name("blobs/manifests"), "sha256:ab".into()))
        );
        assert_eq!(
            parse_route("x/blobs/uploads/"),
            Ok(Route::UploadStart(name("x")))
        );
        assert_eq!(
            parse_route("x/blobs/uploads"),
            Ok(Route::UploadStart(name("x")))
        );
        assert_eq!(
            parse_route("x/y/blobs/uploads/abc"),
            Ok(Route::Upload(name("x/y"), "abc".into()))
        );
        assert_eq!(parse_route("x/tags/list"), Ok(Route::TagsList(name("x"))));
        assert_eq!(
            parse_route("x/referrers/sha256:00"),
            Ok(Route::Referrers(name("x"), "sha256:00".into()))
        );
        assert_eq!(parse_route("x/unknown/thing"), Err(RouteError::NotFound));
        assert_eq!(
            parse_route("/tags/list").unwrap_err(),
            RouteError::BadName(NameError::Empty)
        );
        assert!(matches!(
            parse_route("../etc/manifests/latest"),
            Err(RouteError::BadName(_))
        ));
        assert!(matches!(
            parse_route("UP/manifests/latest"),
            Err(RouteError::BadName(_))
        ));
    }
}

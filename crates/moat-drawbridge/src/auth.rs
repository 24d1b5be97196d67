//! Users, tokens and what a token allows.
//!
//! A token is `mdb_` followed by 32 random bytes (base64url). Only its SHA-256 is stored, so a
//! leaked database does not leak credentials; looking a token up by its hash also means no
//! secret is compared byte by byte in Rust. Clients present a token either as
//! `Authorization: Bearer <token>` or as the password of `Basic` auth (user name + token), which
//! is what `docker login`, skopeo and oras send.
//!
//! Scopes say which repositories a token may act on and how: `PATTERN:ACTIONS`, where PATTERN is
//! a repository name in which `*` matches any run of characters (including `/`) and ACTIONS is a
//! comma list of `pull`, `push`, `delete`. A token without explicit scopes gets
//! [`DEFAULT_SCOPE`]. Keeps never use tokens: they present certificates (see `policy`).

use base64::Engine as _;
use ring::rand::{SecureRandom, SystemRandom};
use sha2::Digest as _;

/// What `token create` grants when no `--scope` is given: read and write everything, never
/// delete (deletion must be asked for explicitly).
pub const DEFAULT_SCOPE: &str = "*:pull,push";

/// The prefix that marks a Drawbridge token (and lets secret scanners find leaked ones).
pub const TOKEN_PREFIX: &str = "mdb_";

/// Longest user name accepted.
pub const MAX_USER_LEN: usize = 64;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("scope `{0}` is not PATTERN:ACTIONS (e.g. `demo/*:pull,push`)")]
    BadScope(String),
    #[error("scope action `{0}` is not one of pull, push, delete")]
    BadAction(String),
    #[error(
        "user name `{0}` must be 1-64 characters of [a-z0-9._-], starting with a letter or digit"
    )]
    BadUser(String),
    #[error("the system random number generator failed")]
    Random,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Pull,
    Push,
    Delete,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pull => "pull",
            Action::Push => "push",
            Action::Delete => "delete",
        }
    }
}

/// One `PATTERN:ACTIONS` grant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    pattern: String,
    actions: Vec<Action>,
}

impl Scope {
    pub fn parse(s: &str) -> Result<Self, AuthError> {
        let (pattern, actions) = s
            .rsplit_once(':')
            .ok_or_else(|| AuthError::BadScope(s.to_owned()))?;
        let pattern_ok = !pattern.is_empty()
            && pattern
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/*".contains(&b));
        if !pattern_ok {
            return Err(AuthError::BadScope(s.to_owned()));
        }
        let actions = actions
            .split(',')
            .map(|a| match a.trim() {
                "pull" => Ok(Action::Pull),
                "push" => Ok(Action::Push),
                "delete" => Ok(Action::Delete),
                other => Err(AuthError::BadAction(other.to_owned())),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Scope {
            pattern: pattern.to_owned(),
            actions,
        })
    }

    pub fn allows(&self, repo: &str, action: Action) -> bool {
        self.actions.contains(&action) && glob_match(self.pattern.as_bytes(), repo.as_bytes())
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let actions: Vec<&str> = self.actions.iter().map(|a| a.as_str()).collect();
        write!(f, "{}:{}", self.pattern, actions.join(","))
    }
}

/// Scopes as stored: space-separated.
pub fn parse_scopes(stored: &str) -> Result<Vec<Scope>, AuthError> {
    stored.split_whitespace().map(Scope::parse).collect()
}

/// `*` matches any run of bytes; everything else matches itself.
fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).any(|skip| glob_match(rest, &text[skip..])),
        Some((c, rest)) => text.first() == Some(c) && glob_match(rest, &text[1..]),
    }
}

pub fn validate_user(name: &str) -> Result<(), AuthError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_USER_LEN
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(AuthError::BadUser(name.chars().take(80).collect()))
    }
}

/// A freshly made token: the secret is shown once and never stored.
#[derive(Debug)]
pub struct NewToken {
    pub id: String,
    pub secret: String,
    pub hash: [u8; 32],
}

pub fn random_bytes<const N: usize>() -> Result<[u8; N], AuthError> {
    let mut out = [0u8; N];
    SystemRandom::new()
        .fill(&mut out)
        .map_err(|_| AuthError::Random)?;
    Ok(out)
}

pub fn generate_token() -> Result<NewToken, AuthError> {
    let secret = format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>()?)
    );
    let id = hex::encode(random_bytes::<6>()?);
    let hash = hash_token(&secret);
    Ok(NewToken { id, secret, hash })
}

pub fn hash_token(secret: &str) -> [u8; 32] {
    sha2::Sha256::digest(secret.as_bytes()).into()
}

/// What the `Authorization` header carried.
#[derive(Debug, PartialEq, Eq)]
pub enum Credentials {
    None,
    Basic {
        user: String,
        token: String,
    },
    Bearer(String),
    /// Present but not understood: treated as wrong credentials, never as anonymous.
    Malformed,
}

/// Longest `Authorization` header read (tokens are ~50 bytes; this stops hashing megabytes).
const MAX_AUTHORIZATION_LEN: usize = 4096;

pub fn parse_authorization(header: Option<&[u8]>) -> Credentials {
    let Some(raw) = header else {
        return Credentials::None;
    };
    if raw.len() > MAX_AUTHORIZATION_LEN {
        return Credentials::Malformed;
    }
    let Ok(text) = std::str::from_utf8(raw) else {
        return Credentials::Malformed;
    };
    let (scheme, value) = text.trim().split_once(' ').unwrap_or((text, ""));
    let value = value.trim();
    if scheme.eq_ignore_ascii_case("bearer") && !value.is_empty() {
        return Credentials::Bearer(value.to_owned());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(value)
            .ok()
            .and_then(|b| String::from_utf8(b).ok());
        if let Some((user, token)) = decoded.as_deref().and_then(|d| d.split_once(':')) {
            return Credentials::Basic {
                user: user.to_owned(),
                token: token.to_owned(),
            };
        }
    }
    Credentials::Malformed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_match_globs_and_actions() {
        let s = Scope::parse("demo/*:pull,push").unwrap();
        assert!(s.allows("demo/app", Action::Pull));
        assert!(s.allows("demo/a/b", Action::Push));
        assert!(!s.allows("demo/app", Action::Delete));
        assert!(!s.allows("other/app", Action::Pull));
        assert!(!s.allows("demo", Action::Pull));
        let all = Scope::parse(DEFAULT_SCOPE).unwrap();
        assert!(all.allows("x", Action::Push));
        assert!(!all.allows("x", Action::Delete));
        assert_eq!(all.to_string(), DEFAULT_SCOPE);
        for bad in ["", "demo", ":pull", "Demo:pull", "demo:fly", "demo:"] {
            assert!(Scope::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let a = generate_token().unwrap();
        let b = generate_token().unwrap();
        assert_ne!(a.secret, b.secret);
        assert!(a.secret.starts_with(TOKEN_PREFIX));
        assert_eq!(hash_token(&a.secret), a.hash);
    }

    #[test]
    fn authorization_headers() {
        use base64::engine::general_purpose::STANDARD;
        assert_eq!(parse_authorization(None), Credentials::None);
        assert_eq!(
            parse_authorization(Some(b"Bearer abc")),
            Credentials::Bearer("abc".into())
        );
        let basic = format!("Basic {}", STANDARD.encode("alice:mdb_x"));
        assert_eq!(
            parse_authorization(Some(basic.as_bytes())),
            Credentials::Basic {
                user: "alice".into(),
                token: "mdb_x".into()
            }
        );
        for bad in [
            &b"Basic !!!"[..],
            b"Basic",
            b"Bearer ",
            b"Digest x",
            b"\xff\xfe",
            &[b'B'; 5000],
        ] {
            assert_eq!(parse_authorization(Some(bad)), Credentials::Malformed);
        }
        let no_colon = format!("Basic {}", STANDARD.encode("alice"));
        assert_eq!(
            parse_authorization(Some(no_colon.as_bytes())),
            Credentials::Malformed
        );
    }

    #[test]
    fn user_names() {
        assert!(validate_user("alice").is_ok());
        assert!(validate_user("ci-bot.1").is_ok());
        for bad in ["", "Alice", "-a", "a b", "a:b", &"a".repeat(65)] {
            assert!(validate_user(bad).is_err(), "{bad}");
        }
    }
}

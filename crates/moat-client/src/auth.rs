//! Registry credentials: the `WWW-Authenticate` challenges a registry sends, and the user's
//! credential file that `moat login` writes.
//!
//! The file is TOML (`[registries."HOST:PORT"] username = .., password = ..`) at
//! `$MOAT_CONFIG_DIR/credentials.toml`, else `$XDG_CONFIG_HOME/moat/credentials.toml`, else
//! `~/.config/moat/credentials.toml`. It is written to a temporary file created with mode 0600 in
//! the same directory and renamed over the old one, so it is never readable by others and never
//! half-written. The password may be a Drawbridge token: registries accept tokens as Basic
//! passwords.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A username and password (or token) for one registry.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    /// The value of an `Authorization: Basic ...` header.
    pub fn basic_header(&self) -> String {
        use base64::Engine as _;
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// Why the credential file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("no configuration directory: set MOAT_CONFIG_DIR, XDG_CONFIG_HOME or HOME")]
    NoConfigDir,
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a valid credential file: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("{path} is readable by other users (mode {mode:o}); run `chmod 600 {path}`")]
    TooOpen { path: PathBuf, mode: u32 },
}

/// The parsed credential file.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialFile {
    #[serde(default)]
    registries: BTreeMap<String, Credentials>,
}

/// The user's stored registry credentials.
#[derive(Debug)]
pub struct CredentialStore {
    path: PathBuf,
}

/// Where Moat keeps per-user configuration: `$MOAT_CONFIG_DIR`, `$XDG_CONFIG_HOME/moat`, or
/// `~/.config/moat`.
pub fn config_dir() -> Result<PathBuf, CredentialError> {
    let non_empty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = non_empty("MOAT_CONFIG_DIR") {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = non_empty("XDG_CONFIG_HOME") {
        return Ok(PathBuf::from(dir).join("moat"));
    }
    if let Some(home) = non_empty("HOME") {
        return Ok(PathBuf::from(home).join(".config").join("moat"));
    }
    Err(CredentialError::NoConfigDir)
}

/// The largest credential file read; anything bigger is not one Moat wrote.
const MAX_CREDENTIAL_FILE: u64 = 1 << 20;

impl CredentialStore {
    /// The store in the user's configuration directory (see [`config_dir`]).
    pub fn default_location() -> Result<Self, CredentialError> {
        Ok(Self::at(config_dir()?.join("credentials.toml")))
    }

    pub fn at(path: PathBuf) -> Self {
        CredentialStore { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The credentials stored for `registry` (`HOST[:PORT]`), if any.
    pub fn get(&self, registry: &str) -> Result<Option<Credentials>, CredentialError> {
        Ok(self.load()?.registries.remove(&registry_key(registry)))
    }

    /// Store (or replace) the credentials for `registry`.
    pub fn set(&self, registry: &str, credentials: Credentials) -> Result<(), CredentialError> {
        let mut file = self.load()?;
        file.registries.insert(registry_key(registry), credentials);
        self.save(&file)
    }

    /// Forget the credentials for `registry`; returns whether there were any.
    pub fn remove(&self, registry: &str) -> Result<bool, CredentialError> {
        let mut file = self.load()?;
        let had = file.registries.remove(&registry_key(registry)).is_some();
        if had {
            self.save(&file)?;
        }
        Ok(had)
    }

    fn load(&self) -> Result<CredentialFile, CredentialError> {
        let io = |action, source| CredentialError::Io {
            action,
            path: self.path.clone(),
            source,
        };
        let meta = match std::fs::metadata(&self.path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(CredentialFile::default());
            }
            Err(e) => return Err(io("reading", e)),
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(CredentialError::TooOpen {
                    path: self.path.clone(),
                    mode,
                });
            }
        }
        if meta.len() > MAX_CREDENTIAL_FILE {
            return Err(CredentialError::Invalid {
                path: self.path.clone(),
                reason: format!("larger than {MAX_CREDENTIAL_FILE} bytes"),
            });
        }
        let text = std::fs::read_to_string(&self.path).map_err(|e| io("reading", e))?;
        toml::from_str(&text).map_err(|e| CredentialError::Invalid {
            path: self.path.clone(),
            reason: e.to_string(),
        })
    }

    fn save(&self, file: &CredentialFile) -> Result<(), CredentialError> {
        let io = |action, path: &Path, source| CredentialError::Io {
            action,
            path: path.to_owned(),
            source,
        };
        let dir = self
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        create_private_dir(dir).map_err(|e| io("creating", dir, e))?;
        let text = toml::to_string(file).map_err(|e| CredentialError::Invalid {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        // tempfile creates the file with mode 0600 on Unix, so the secret is never visible
        // to others, not even between create and rename.
        let mut tmp = tempfile::Builder::new()
            .prefix(".credentials.")
            .tempfile_in(dir)
            .map_err(|e| io("creating a temporary file in", dir, e))?;
        tmp.write_all(text.as_bytes())
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(|e| io("writing", tmp.path(), e))?;
        tmp.persist(&self.path)
            .map_err(|e| io("replacing", &self.path, e.error))?;
        Ok(())
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Registry names are case-insensitive in their host part; store them lower-cased.
fn registry_key(registry: &str) -> String {
    registry.to_ascii_lowercase()
}

/// One parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic {
        realm: Option<String>,
    },
    /// The token flow: GET `realm?service=..&scope=..` (with Basic credentials if any) and use
    /// the answer's `token` as a Bearer token.
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Why a challenge could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    #[error("WWW-Authenticate header is empty")]
    Empty,
    #[error("WWW-Authenticate scheme {0:?} is not supported (Basic and Bearer are)")]
    UnsupportedScheme(String),
    #[error("WWW-Authenticate Bearer challenge has no realm")]
    MissingRealm,
    #[error("WWW-Authenticate header is malformed near {0:?}")]
    Malformed(String),
    #[error("WWW-Authenticate header is longer than {0} bytes")]
    TooLong(usize),
}

/// Longest challenge header accepted.
const MAX_CHALLENGE_LEN: usize = 8 * 1024;

/// Parse one `WWW-Authenticate` header value (the first challenge in it).
pub fn parse_challenge(header: &str) -> Result<Challenge, ChallengeError> {
    if header.len() > MAX_CHALLENGE_LEN {
        return Err(ChallengeError::TooLong(MAX_CHALLENGE_LEN));
    }
    let header = header.trim();
    if header.is_empty() {
        return Err(ChallengeError::Empty);
    }
    let (scheme, rest) = match header.find(char::is_whitespace) {
        Some(i) => (&header[..i], header[i..].trim_start()),
        None => (header, ""),
    };
    let params = parse_params(rest)?;
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    if scheme.eq_ignore_ascii_case("basic") {
        Ok(Challenge::Basic {
            realm: get("realm"),
        })
    } else if scheme.eq_ignore_ascii_case("bearer") {
        Ok(Challenge::Bearer {
            realm: get("realm").ok_or(ChallengeError::MissingRealm)?,
            service: get("service"),
            scope: get("scope"),
        })
    } else {
        Err(ChallengeError::UnsupportedScheme(
            scheme.chars().take(40).collect(),
        ))
    }
}

/// `key=value` or `key="quoted \"value\""` pairs separated by commas.
fn parse_params(mut rest: &str) -> Result<Vec<(String, String)>, ChallengeError> {
    let malformed = |at: &str| ChallengeError::Malformed(at.chars().take(40).collect());
    let mut params = Vec::new();
    loop {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_whitespace());
        if rest.is_empty() {
            return Ok(params);
        }
        let eq = rest.find('=').ok_or_else(|| malformed(rest))?;
        let key = rest[..eq].trim();
        if key.is_empty()
            || !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(malformed(rest));
        }
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some((_, escaped)) => out.push(escaped),
                        None => return Err(malformed(rest)),
                    },
                    '"' => {
                        end = Some(i);
                        break;
                    }
                    c => out.push(c),
                }
            }
            let end = end.ok_or_else(|| malformed(rest))?;
            value = out;
            rest = &quoted[end + 1..];
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_owned();
            rest = &rest[end..];
        }
        params.push((key.to_owned(), value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_and_basic_challenges() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:demo/app:pull,push""#,
        )
        .unwrap();
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
                scope: Some("repository:demo/app:pull,push".into()),
            }
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#).unwrap(),
            Challenge::Basic {
                realm: Some("Registry Realm".into())
            }
        );
        assert_eq!(
            parse_challenge("basic").unwrap(),
            Challenge::Basic { realm: None }
        );
        assert_eq!(
            parse_challenge(r#"Bearer realm=https://a/t, scope="a\"b""#).unwrap(),
            Challenge::Bearer {
                realm: "https://a/t".into(),
                service: None,
                scope: Some("a\"b".into()),
            }
        );
    }

    #[test]
    fn refuses_bad_challenges() {
        for bad in [
            "",
            "   ",
            "Negotiate abc",
            "Bearer service=\"x\"",
            "Bearer realm=\"unterminated",
            "Bearer realm",
            "Bearer =x",
            "Bearer realm=\"x\\",
        ] {
            assert!(parse_challenge(bad).is_err(), "{bad:?} accepted");
        }
        let long = format!("Bearer realm=\"{}\"", "a".repeat(MAX_CHALLENGE_LEN));
        assert_eq!(
            parse_challenge(&long),
            Err(ChallengeError::TooLong(MAX_CHALLENGE_LEN))
        );
    }

    #[test]
    fn credential_file_is_private_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::at(dir.path().join("sub/credentials.toml"));
        assert_eq!(store.get("127.0.0.1:5000").unwrap(), None);
        let creds = Credentials {
            username: "alice".into(),
            password: "s3cret\"=".into(),
        };
        store.set("LOCALHOST:5000", creds.clone()).unwrap();
        assert_eq!(store.get("localhost:5000").unwrap(), Some(creds.clone()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(store.path())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
            std::fs::set_permissions(store.path(), std::fs::Permissions::from_mode(0o644)).unwrap();
            assert!(matches!(
                store.get("localhost:5000"),
                Err(CredentialError::TooOpen { .. })
            ));
            std::fs::set_permissions(store.path(), std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        assert!(store.remove("localhost:5000").unwrap());
        assert!(!store.remove("localhost:5000").unwrap());
        assert_eq!(store.get("localhost:5000").unwrap(), None);
        assert!(!format!("{creds:?}").contains("s3cret"));
    }

    #[test]
    fn garbage_credential_file_is_a_typed_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials.toml");
        std::fs::write(&path, b"\xff\xfe not toml [[").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let store = CredentialStore::at(path);
        assert!(matches!(
            store.get("x"),
            Err(CredentialError::Io { .. } | CredentialError::Invalid { .. })
        ));
    }
}

//! Package references: `HOST[:PORT]/REPO[:TAG][@DIGEST]`, validated by the OCI Distribution
//! grammar before anything is sent anywhere, and the workload name a Keep's certificate carries
//! for them (`oci://HOST[:PORT]/REPO`, see INTERFACES.md).

use std::fmt;
use std::str::FromStr;

use crate::registry::{Digest, DigestError};

/// The tag used when a reference names neither a tag nor a digest.
pub const DEFAULT_TAG: &str = "latest";
/// Longest `HOST[:PORT]/REPO` accepted (the limit Docker's reference grammar uses).
pub const MAX_NAME_LEN: usize = 255;
const MAX_TAG_LEN: usize = 128;

/// A parsed, validated package reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `host[:port]`, host lower-cased.
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

/// Why a string is not a package reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("reference is empty")]
    Empty,
    #[error("reference {0:?} has no registry host: write HOST[:PORT]/REPO[:TAG]")]
    MissingRegistry(String),
    #[error("registry host {0:?} is not a valid host name or address")]
    BadHost(String),
    #[error("registry port {0:?} is not a number from 1 to 65535")]
    BadPort(String),
    #[error(
        "repository {0:?} is not valid: path components of lower-case letters and digits, \
         separated by '.', '_', '__' or '-', joined by '/'"
    )]
    BadRepository(String),
    #[error("tag {0:?} is not valid: 1 to 128 of [A-Za-z0-9_.-], not starting with '.' or '-'")]
    BadTag(String),
    #[error("digest in reference: {0}")]
    BadDigest(#[from] DigestError),
    #[error("reference name is longer than {MAX_NAME_LEN} characters")]
    TooLong,
}

impl Reference {
    /// `host[:port]` of the registry, host lower-cased.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    pub fn repository(&self) -> &str {
        &self.repository
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest the reference pins, if any.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// What to ask the registry for: the pinned digest if there is one, else the tag (or
    /// `latest`).
    pub fn manifest_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => DEFAULT_TAG.to_owned(),
        }
    }

    /// The workload name a Keep's certificate carries for this package: `oci://HOST[:PORT]/REPO`.
    pub fn workload_name(&self) -> String {
        format!("oci://{}/{}", self.registry, self.repository)
    }

    /// The same reference pinned to `digest` (tag kept for display).
    pub fn pinned(&self, digest: Digest) -> Reference {
        Reference {
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// The same reference with `tag`, or without a tag.
    pub fn with_tag(&self, tag: Option<&str>) -> Result<Reference, ReferenceError> {
        if let Some(tag) = tag {
            validate_tag(tag)?;
        }
        Ok(Reference {
            tag: tag.map(str::to_owned),
            ..self.clone()
        })
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let quote = |s: &str| s.chars().take(300).collect::<String>();
        if input.is_empty() {
            return Err(ReferenceError::Empty);
        }
        let (name_and_tag, digest) = match input.split_once('@') {
            Some((rest, digest)) => (rest, Some(digest.parse::<Digest>()?)),
            None => (input, None),
        };
        let (host_port, path) = name_and_tag
            .split_once('/')
            .ok_or_else(|| ReferenceError::MissingRegistry(quote(input)))?;
        let (repository, tag) = match path.rsplit_once(':') {
            Some((repo, tag)) => (repo, Some(tag)),
            None => (path, None),
        };
        let registry = validate_registry(host_port)?;
        validate_repository(repository)?;
        if let Some(tag) = tag {
            validate_tag(tag)?;
        }
        if registry.len() + 1 + repository.len() > MAX_NAME_LEN {
            return Err(ReferenceError::TooLong);
        }
        Ok(Reference {
            registry,
            repository: repository.to_owned(),
            tag: tag.map(str::to_owned),
            digest,
        })
    }
}

/// `host[:port]` with host a DNS name, an IPv4 address or a bracketed IPv6 address.
fn validate_registry(host_port: &str) -> Result<String, ReferenceError> {
    let bad_host = || ReferenceError::BadHost(host_port.chars().take(300).collect());
    if host_port.is_empty() || host_port.len() > MAX_NAME_LEN {
        return Err(bad_host());
    }
    let (host, port) = if let Some(rest) = host_port.strip_prefix('[') {
        let (addr, after) = rest.split_once(']').ok_or_else(bad_host)?;
        addr.parse::<std::net::Ipv6Addr>().map_err(|_| bad_host())?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or_else(bad_host)?),
        };
        (&host_port[..addr.len() + 2], port)
    } else {
        match host_port.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        }
    };
    if !host.starts_with('[') {
        let labels_ok = host.len() <= 253
            && host.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            });
        if !labels_ok {
            return Err(bad_host());
        }
    }
    if let Some(port) = port {
        let valid = !port.is_empty()
            && port.len() <= 5
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u32>().is_ok_and(|p| (1..=65535).contains(&p));
        if !valid {
            return Err(ReferenceError::BadPort(port.chars().take(20).collect()));
        }
    }
    Ok(host_port.to_ascii_lowercase())
}

/// The OCI repository grammar:
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`.
pub fn validate_repository(repository: &str) -> Result<(), ReferenceError> {
    let bad = || ReferenceError::BadRepository(repository.chars().take(300).collect());
    if repository.is_empty() || repository.len() > MAX_NAME_LEN {
        return Err(bad());
    }
    for component in repository.split('/') {
        if !valid_component(component) {
            return Err(bad());
        }
    }
    Ok(())
}

fn valid_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if alnum(b) {
            i += 1;
            continue;
        }
        // A separator run: '.', '_', '__', or any number of '-'.
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &component[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// The OCI tag grammar: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn validate_tag(tag: &str) -> Result<(), ReferenceError> {
    let bytes = tag.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.len() <= MAX_TAG_LEN
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(ReferenceError::BadTag(tag.chars().take(200).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_the_forms() {
        let r: Reference = "127.0.0.1:5000/demo/echo:v1".parse().unwrap();
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert_eq!(r.repository(), "demo/echo");
        assert_eq!(r.tag(), Some("v1"));
        assert_eq!(r.digest(), None);
        assert_eq!(r.manifest_reference(), "v1");
        assert_eq!(r.workload_name(), "oci://127.0.0.1:5000/demo/echo");
        assert_eq!(r.to_string(), "127.0.0.1:5000/demo/echo:v1");

        let r: Reference = format!("Registry.Example.COM/a/b/c@{D}").parse().unwrap();
        assert_eq!(r.registry(), "registry.example.com");
        assert_eq!(r.tag(), None);
        assert_eq!(r.manifest_reference(), D);
        assert_eq!(r.workload_name(), "oci://registry.example.com/a/b/c");

        let r: Reference = format!("localhost/app:1.0@{D}").parse().unwrap();
        assert_eq!(r.tag(), Some("1.0"));
        assert_eq!(r.manifest_reference(), D, "the digest wins over the tag");
        assert_eq!(r.to_string(), format!("localhost/app:1.0@{D}"));

        let r: Reference = "localhost:443/app".parse().unwrap();
        assert_eq!(r.manifest_reference(), DEFAULT_TAG);
        let r: Reference = "[::1]:5000/a__b.c-d---e/f_g".parse().unwrap();
        assert_eq!(r.registry(), "[::1]:5000");
        assert_eq!(r.repository(), "a__b.c-d---e/f_g");
    }

    #[test]
    fn refuses_bad_references() {
        let too_long = format!("h/{}", "a".repeat(300));
        let long_tag = format!("h/a:{}", "t".repeat(129));
        let long_label = format!("{}/a", "h".repeat(64));
        let bad = [
            "",
            "app",
            "app:latest",
            "/app",
            "host/",
            "host//app",
            "host/app/",
            "host/App",
            "host/../app",
            "host/a/../b",
            "host/./a",
            "host/a..b",
            "host/a___b",
            "host/-a",
            "host/a-",
            "host/a_.b",
            "host/a b",
            "host/a%2fb",
            "host/a:",
            "host/a:-tag",
            "host/a:.tag",
            "host/a:t/g",
            "host/a:t@",
            "host/a@sha256:abc",
            "host/a@md5:d41d8cd98f00b204e9800998ecf8427e",
            "host:/a",
            "host:0/a",
            "host:65536/a",
            "host:99999999999999999999/a",
            "host:+1/a",
            "ho_st/a",
            "-host/a",
            "host-/a",
            "ho..st/a",
            "[::1/a",
            "[zz]:5000/a",
            "[::1]x/a",
            "h\u{e9}st/a",
            "host/\u{e9}",
            "host/a\0",
            &too_long,
            &long_tag,
            &long_label,
        ];
        for input in bad {
            assert!(input.parse::<Reference>().is_err(), "{input:?} accepted");
        }
        assert_eq!("".parse::<Reference>(), Err(ReferenceError::Empty));
        assert!(matches!(
            "app:latest".parse::<Reference>(),
            Err(ReferenceError::MissingRegistry(_))
        ));
        assert!(matches!(
            too_long.parse::<Reference>(),
            Err(ReferenceError::BadRepository(_) | ReferenceError::TooLong)
        ));
    }

    #[test]
    fn tag_limits() {
        assert!(validate_tag(&"t".repeat(128)).is_ok());
        assert!(validate_tag(&"t".repeat(129)).is_err());
        assert!(validate_tag("_x").is_ok());
        assert!(validate_tag("V1.2-rc_3").is_ok());
    }

    #[test]
    fn mutated_references_never_panic() {
        let good = format!("registry.example:5000/demo/app:v1@{D}");
        for i in 0..good.len() {
            for replacement in ['/', ':', '@', '.', '-', '_', 'A', '\u{e9}', ' ', '\0'] {
                let mut mutated: Vec<char> = good.chars().collect();
                mutated[i] = replacement;
                let mutated: String = mutated.into_iter().collect();
                if let Ok(r) = mutated.parse::<Reference>() {
                    // Whatever parses must print back to something that parses the same.
                    assert_eq!(r.to_string().parse::<Reference>().unwrap(), r);
                }
            }
        }
        for len in 0..good.len() {
            let _ = good[..len].parse::<Reference>();
        }
    }
}

//! What `moat deploy` accepts, and the workload name each form gives the Keep's certificate.
//!
//! - `HOST[:PORT]/REPO[:TAG][@DIGEST]` (optionally written `oci://...`): a package in a registry.
//! - `https://HOST[:PORT]/v2/REPO/manifests/TAG|DIGEST`: the same package, spelled as the OCI
//!   API URL of its manifest (what Enarx's `https://` form was: the URL of a package on a
//!   registry). Any other `https://` URL is refused, because the Keep must name what it will run
//!   before it fetches anything, and an arbitrary URL names no package.
//! - `file://PATH`: a module, or a directory holding `main.wasm` and `Moat.toml` / `Enarx.toml`
//!   (as Enarx accepted). The workload name is `moat:local:<sha256 of the module>`.

use std::path::PathBuf;
use std::str::FromStr;

use super::reference::{Reference, ReferenceError};

/// A parsed deploy argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeploySource {
    Registry(Reference),
    File(PathBuf),
}

/// Why a deploy argument was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error(
        "https URL {0:?} is not a package manifest URL: write \
         https://HOST[:PORT]/v2/REPO/manifests/TAG (or .../manifests/sha256:...)"
    )]
    UnsupportedUrl(String),
    #[error("{0:?}: plain http is refused; packages are fetched over https only")]
    PlainHttp(String),
    #[error("scheme of {0:?} is not supported (use a registry reference, https:// or file://)")]
    UnsupportedScheme(String),
    #[error("file:// URL {0:?} names no path")]
    EmptyPath(String),
}

impl DeploySource {
    /// The workload name for a registry package (`oci://HOST[:PORT]/REPO`). Local files are
    /// named by their module's digest, which the caller computes after reading them.
    pub fn registry_workload_name(&self) -> Option<String> {
        match self {
            DeploySource::Registry(r) => Some(r.workload_name()),
            DeploySource::File(_) => None,
        }
    }
}

/// The workload name for a local module: `moat:local:<sha256 hex>`.
pub fn local_workload_name(module: &[u8]) -> String {
    format!(
        "moat:local:{}",
        crate::registry::Digest::sha256_of(module).hex()
    )
}

impl FromStr for DeploySource {
    type Err = SourceError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let quote = |s: &str| s.chars().take(300).collect::<String>();
        if let Some(rest) = input.strip_prefix("file://") {
            // file:///abs, file://localhost/abs, or (leniently) file://relative/path.
            let path = match rest.strip_prefix("localhost/") {
                Some(abs) => format!("/{abs}"),
                None => rest.to_owned(),
            };
            if path.is_empty() {
                return Err(SourceError::EmptyPath(quote(input)));
            }
            let decoded = percent_encoding::percent_decode_str(&path)
                .decode_utf8()
                .map_err(|_| SourceError::EmptyPath(quote(input)))?
                .into_owned();
            return Ok(DeploySource::File(PathBuf::from(decoded)));
        }
        if let Some(rest) = input.strip_prefix("https://") {
            let (authority, path) = rest
                .split_once('/')
                .ok_or_else(|| SourceError::UnsupportedUrl(quote(input)))?;
            let path = path.split(['?', '#']).next().unwrap_or_default();
            let (repo, reference) = path
                .strip_prefix("v2/")
                .and_then(|p| p.rsplit_once("/manifests/"))
                .ok_or_else(|| SourceError::UnsupportedUrl(quote(input)))?;
            let spelled = if reference.contains(':') {
                format!("{authority}/{repo}@{reference}")
            } else {
                format!("{authority}/{repo}:{reference}")
            };
            return Ok(DeploySource::Registry(spelled.parse()?));
        }
        if input.starts_with("http://") {
            return Err(SourceError::PlainHttp(quote(input)));
        }
        if let Some(rest) = input.strip_prefix("oci://") {
            return Ok(DeploySource::Registry(rest.parse()?));
        }
        if let Some((scheme, _)) = input.split_once("://") {
            return Err(SourceError::UnsupportedScheme(quote(scheme)));
        }
        Ok(DeploySource::Registry(input.parse()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn registry(s: &str) -> Reference {
        match s.parse::<DeploySource>().unwrap() {
            DeploySource::Registry(r) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_three_forms() {
        let r = registry("127.0.0.1:5000/demo/echo:v1");
        assert_eq!(r.workload_name(), "oci://127.0.0.1:5000/demo/echo");
        assert_eq!(registry("oci://127.0.0.1:5000/demo/echo:v1"), r);
        assert_eq!(
            registry("https://127.0.0.1:5000/v2/demo/echo/manifests/v1"),
            r
        );
        let pinned = registry(&format!(
            "https://127.0.0.1:5000/v2/demo/echo/manifests/{D}"
        ));
        assert_eq!(pinned.digest().map(|d| d.to_string()).as_deref(), Some(D));
        assert_eq!(
            "file:///srv/app".parse::<DeploySource>().unwrap(),
            DeploySource::File("/srv/app".into())
        );
        assert_eq!(
            "file://localhost/srv/main.wasm"
                .parse::<DeploySource>()
                .unwrap(),
            DeploySource::File("/srv/main.wasm".into())
        );
        assert_eq!(
            "file:///srv/my%20app".parse::<DeploySource>().unwrap(),
            DeploySource::File("/srv/my app".into())
        );
        assert_eq!(
            local_workload_name(b""),
            "moat:local:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn refuses_other_forms() {
        for bad in [
            "",
            "http://127.0.0.1:5000/v2/a/manifests/v1",
            "https://example.com/main.wasm",
            "https://example.com",
            "https://example.com/v2/a/blobs/sha256:00",
            "https://example.com/v2/A/manifests/v1",
            "https://example.com/v2/a/manifests/sha256:zz",
            "ftp://host/a",
            "file://",
            "oci://app",
            "app:latest",
            "file:///x%ff",
        ] {
            assert!(bad.parse::<DeploySource>().is_err(), "{bad:?} accepted");
        }
    }
}

//! The Keep's attested identity: when a Steward is configured (the config's `steward`, or
//! `--steward URL`), the Keep generates its key, collects evidence binding it (nil, or SNP/TDX
//! through `moat_attest::attester`), and obtains a certificate chain naming its workload; that
//! chain is the [`Identity`] every TLS socket of the run presents (listeners, and client
//! authentication on `connect`). Without a Steward the caller keeps its self-signed identity.
//!
//! Any Steward failure is an error *before* the workload starts: a Keep that was asked to
//! attest never runs unattested. The Steward CA must be given explicitly (`--steward-ca`):
//! there is no ambient trust for it.
//!
//! Hook for `moat run` (one call where the identity is made):
//!
//! ```ignore
//! let identity = match moat_keep::attested::StewardSettings::resolve(
//!     config.steward.as_deref(), args.steward.as_deref(), args.steward_ca.as_deref(),
//!     args.platform, args.tsm_path.as_deref())? {
//!     Some(steward) => moat_keep::attested::attested_identity_blocking(
//!         &steward, &moat_keep::attested::local_workload_name(&module_bytes))?,
//!     None => moat_keep::workload::self_signed_identity(&config)?,
//! };
//! ```

use std::path::{Path, PathBuf};

use moat_attest::Platform;
use moat_attest::attester::AttesterConfig;
use moat_client::steward_attest::{AttestError, AttestRequest, attest};
use moat_tls::Identity;

pub use moat_client::steward_attest::local_workload_name;

/// Why the Keep could not obtain its attested identity.
#[derive(Debug, thiserror::Error)]
pub enum AttestedError {
    #[error(
        "a Steward is configured ({url}) but no Steward CA was given: pass --steward-ca FILE \
         (or MOAT_STEWARD_CA) so the Keep knows whom to trust"
    )]
    NoStewardCa { url: String },
    #[error("cannot read the Steward CA {path}: {source}")]
    StewardCa {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("attestation to the Steward failed: {0}")]
    Attest(#[from] AttestError),
    #[error("the Steward's chain does not fit the Keep's key: {0}")]
    Identity(moat_tls::TlsError),
    #[error("cannot start the attestation runtime: {0}")]
    Runtime(std::io::Error),
}

/// Where and how to attest.
#[derive(Debug, Clone)]
pub struct StewardSettings {
    pub url: String,
    pub ca_pem: Vec<u8>,
    /// `None`: the best hardware source on this machine (never `nil` by accident).
    pub platform: Option<Platform>,
    pub attester: AttesterConfig,
    /// DNS names / IP addresses to ask the Steward to certify (see
    /// [`crate::workload::server_names`]); the Steward's policy has the last word.
    pub server_names: Vec<String>,
}

impl StewardSettings {
    /// The Steward to use, if any: the command line's URL wins over the config's. `tsm_path`
    /// overrides the configfs-tsm base (tests point it at a fake provider).
    pub fn resolve(
        config_url: Option<&str>,
        cli_url: Option<&str>,
        ca_file: Option<&Path>,
        platform: Option<Platform>,
        tsm_path: Option<&Path>,
    ) -> Result<Option<StewardSettings>, AttestedError> {
        let Some(url) = cli_url.or(config_url) else {
            return Ok(None);
        };
        let ca_file = ca_file.ok_or_else(|| AttestedError::NoStewardCa { url: url.into() })?;
        let ca_pem = std::fs::read(ca_file).map_err(|source| AttestedError::StewardCa {
            path: ca_file.to_owned(),
            source,
        })?;
        let mut attester = AttesterConfig::default();
        if let Some(p) = tsm_path {
            attester.tsm_base = p.to_owned();
        }
        Ok(Some(StewardSettings {
            url: url.trim_end_matches('/').to_owned(),
            ca_pem,
            platform,
            attester,
            server_names: Vec::new(),
        }))
    }
}

/// Attests and returns the identity (async callers).
pub async fn attested_identity(
    steward: &StewardSettings,
    workload: &str,
) -> Result<Identity, AttestedError> {
    let attested = attest(&AttestRequest {
        steward_url: steward.url.clone(),
        steward_ca_pem: steward.ca_pem.clone(),
        platform: steward.platform,
        attester: steward.attester.clone(),
        workload: workload.to_owned(),
        server_names: steward.server_names.clone(),
    })
    .await?;
    tracing::info!(
        platform = %attested.platform,
        workload,
        "the Steward certified this Keep"
    );
    Identity::from_parts(attested.chain, attested.key).map_err(AttestedError::Identity)
}

/// Attests and returns the identity, for callers outside an async runtime.
pub fn attested_identity_blocking(
    steward: &StewardSettings,
    workload: &str,
) -> Result<Identity, AttestedError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(AttestedError::Runtime)?;
    rt.block_on(attested_identity(steward, workload))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_steward_means_no_attestation() {
        assert!(
            StewardSettings::resolve(None, None, None, None, None)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_steward_without_a_ca_is_an_error() {
        let err =
            StewardSettings::resolve(Some("https://s:1"), None, None, None, None).unwrap_err();
        assert!(matches!(err, AttestedError::NoStewardCa { .. }));
    }

    #[test]
    fn the_command_line_wins() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, b"x").unwrap();
        let s = StewardSettings::resolve(
            Some("https://config:1"),
            Some("https://cli:2/"),
            Some(&ca),
            Some(Platform::Nil),
            Some(Path::new("/tmp/tsm")),
        )
        .unwrap()
        .unwrap();
        assert_eq!(s.url, "https://cli:2");
        assert_eq!(s.attester.tsm_base, Path::new("/tmp/tsm"));
    }

    #[test]
    fn an_unreachable_steward_stops_the_keep() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, test_ca_pem()).unwrap();
        // Port 1 on loopback: nothing listens there.
        let s = StewardSettings::resolve(
            None,
            Some("https://127.0.0.1:1"),
            Some(&ca),
            Some(Platform::Nil),
            None,
        )
        .unwrap()
        .unwrap();
        let err = attested_identity_blocking(&s, "moat:local:00").unwrap_err();
        assert!(err.to_string().contains("cannot connect"), "{err}");
    }

    fn test_ca_pem() -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.self_signed(&key).unwrap().pem()
    }
}

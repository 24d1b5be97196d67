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
//! The Steward certifies for a limited time (an hour by default) and a workload may run for
//! longer, so [`renew_in_background`] attests again, with a fresh key and fresh evidence, once
//! two thirds of the certificate's remaining time have passed, and swaps the new chain into the
//! [`LiveIdentity`] every TLS socket presents. A failed renewal is retried with back-off; the
//! workload keeps running meanwhile (its connections then fail verification once the old
//! certificate expires, which is logged as an error).
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
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use moat_attest::Platform;
use moat_attest::attester::AttesterConfig;
use moat_client::steward_attest::{AttestError, AttestRequest, attest};
use moat_tls::{Identity, LiveIdentity};

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

/// Shortest wait before a renewal, whatever the certificate's lifetime: a Steward issuing
/// very short lifetimes gets at most one request per this interval from a Keep.
const MIN_RENEWAL_DELAY: Duration = Duration::from_secs(10);
/// Back-off after a failed renewal: the first retry, and the longest wait between retries.
const FIRST_RETRY: Duration = Duration::from_secs(5);
const MAX_RETRY: Duration = Duration::from_secs(300);

/// The thread renewing a Keep's certificate; dropping it stops the renewals.
#[derive(Debug)]
pub struct Renewal {
    _stop: mpsc::Sender<()>,
}

/// Renew `live`'s certificate from `steward` for as long as the returned [`Renewal`] lives.
/// `live` must hold the chain just issued (its validity sets the first renewal time).
pub fn renew_in_background(
    steward: StewardSettings,
    workload: String,
    live: LiveIdentity,
) -> Result<Renewal, AttestedError> {
    let (stop, stopped) = mpsc::channel::<()>();
    std::thread::Builder::new()
        .name("moat-renew".into())
        .spawn(move || renew_until_stopped(&steward, &workload, &live, &stopped))
        .map_err(AttestedError::Runtime)?;
    Ok(Renewal { _stop: stop })
}

fn renew_until_stopped(
    steward: &StewardSettings,
    workload: &str,
    live: &LiveIdentity,
    stopped: &mpsc::Receiver<()>,
) {
    let mut issued_at = SystemTime::now();
    let mut failures = 0u32;
    loop {
        let not_after = match not_after(&live.current()) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the Keep's certificate; it will not be renewed");
                return;
            }
        };
        let wait = match failures {
            0 => renewal_delay(issued_at, not_after),
            n => retry_delay(n),
        };
        // A message or a dropped sender both mean: stop.
        if stopped.recv_timeout(wait) != Err(mpsc::RecvTimeoutError::Timeout) {
            return;
        }
        match attested_identity_blocking(steward, workload) {
            Ok(identity) => {
                let valid_until = not_after_text(&identity);
                live.replace(identity);
                issued_at = SystemTime::now();
                failures = 0;
                tracing::info!(workload, %valid_until, "renewed the Keep's certificate");
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                let retry_in = retry_delay(failures);
                if SystemTime::now() >= not_after {
                    tracing::error!(error = %e, ?retry_in, "the Keep's certificate has expired and renewing it failed");
                } else {
                    tracing::warn!(error = %e, ?retry_in, "renewing the Keep's certificate failed");
                }
            }
        }
    }
}

/// Two thirds of the time from issue to expiry, so a renewal has the last third to succeed.
fn renewal_delay(issued_at: SystemTime, not_after: SystemTime) -> Duration {
    let remaining = not_after.duration_since(issued_at).unwrap_or_default();
    (remaining * 2 / 3).max(MIN_RENEWAL_DELAY)
}

fn retry_delay(failures: u32) -> Duration {
    FIRST_RETRY
        .saturating_mul(1 << failures.saturating_sub(1).min(16))
        .min(MAX_RETRY)
}

/// The leaf certificate's `notAfter`.
fn not_after(identity: &Identity) -> Result<SystemTime, String> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let leaf = identity.leaf();
    let (_, cert) = X509Certificate::from_der(leaf.as_ref()).map_err(|e| e.to_string())?;
    let secs = cert.validity().not_after.timestamp();
    let secs = u64::try_from(secs).map_err(|_| format!("notAfter {secs} is before 1970"))?;
    Ok(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

fn not_after_text(identity: &Identity) -> String {
    match not_after(identity) {
        Ok(t) => format!(
            "{} s from now",
            t.duration_since(SystemTime::now())
                .unwrap_or_default()
                .as_secs()
        ),
        Err(e) => e,
    }
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

    #[test]
    fn renewal_waits_two_thirds_of_the_remaining_time_and_backs_off() {
        let now = SystemTime::now();
        let hour = Duration::from_secs(3600);
        assert_eq!(renewal_delay(now, now + hour), Duration::from_secs(2400));
        // Already expired, or nearly: never a busy loop.
        assert_eq!(renewal_delay(now, now - hour), MIN_RENEWAL_DELAY);
        assert_eq!(
            renewal_delay(now, now + Duration::from_secs(3)),
            MIN_RENEWAL_DELAY
        );
        assert_eq!(retry_delay(1), FIRST_RETRY);
        assert_eq!(retry_delay(2), FIRST_RETRY * 2);
        assert_eq!(retry_delay(40), MAX_RETRY);
        assert_eq!(retry_delay(u32::MAX), MAX_RETRY);
    }

    #[test]
    fn the_leaf_validity_is_read_from_the_certificate() {
        let id = Identity::self_signed(&["localhost"]).unwrap();
        // rcgen's default validity ends in 4096.
        let t = not_after(&id).unwrap();
        assert!(t > SystemTime::now() + Duration::from_secs(1000 * 365 * 24 * 3600));
    }

    fn test_ca_pem() -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.self_signed(&key).unwrap().pem()
    }
}

//! The Keep's side of attestation, as one call: generate a key, fetch the Steward's nonce,
//! collect evidence binding both (`moat_attest::attester`: configfs-tsm, `/dev/sev-guest`, or
//! `nil`), build the CSR naming the workload, and trade it for a certificate chain.
//!
//! Used by `moat run` (a config naming a `steward`) and by `moat deploy` (which asks for a
//! certificate naming the package before pulling it). The result plugs into
//! `moat_tls::Identity::from_parts(chain, key)`.

use moat_attest::Platform;
use moat_attest::attester::{Attester, AttesterConfig};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::steward::{StewardClient, StewardError};

/// What to attest with and for.
#[derive(Debug, Clone)]
pub struct AttestRequest {
    /// `https://HOST[:PORT]` of the Steward.
    pub steward_url: String,
    /// PEM of the Steward CA to trust for the HTTPS connection.
    pub steward_ca_pem: Vec<u8>,
    /// Which evidence to produce; `None` picks the best hardware source this machine has and
    /// fails if there is none (it never falls back to `nil` silently).
    pub platform: Option<Platform>,
    /// Where evidence comes from (configfs-tsm base, `/dev/sev-guest`).
    pub attester: AttesterConfig,
    /// The workload name to be certified (a URI: `oci://HOST/REPO` or `moat:local:<sha256>`).
    pub workload: String,
    /// DNS names or IP addresses to ask for (the Steward's policy decides which it certifies).
    pub server_names: Vec<String>,
}

/// A key and the chain the Steward issued for it (leaf first).
#[derive(Debug)]
pub struct Attested {
    pub key: PrivateKeyDer<'static>,
    pub chain: Vec<CertificateDer<'static>>,
    pub platform: Platform,
}

/// Why attestation failed (each variant says which step).
#[derive(Debug, thiserror::Error)]
pub enum AttestError {
    #[error("Steward: {0}")]
    Steward(#[from] StewardError),
    #[error("collecting {platform} evidence: {source}")]
    Evidence {
        platform: String,
        source: moat_attest::Error,
    },
    #[error("no platform evidence source on this machine: {0}")]
    NoPlatform(String),
    #[error("building the CSR: {0}")]
    Csr(moat_attest::Error),
    #[error("generating the Keep key: {0}")]
    Key(String),
}

/// Runs the whole exchange.
pub async fn attest(req: &AttestRequest) -> Result<Attested, AttestError> {
    let client = StewardClient::new(&req.steward_url, &req.steward_ca_pem)?;
    let attester = match req.platform {
        Some(p) => {
            Attester::for_platform(p, &req.attester).map_err(|source| AttestError::Evidence {
                platform: p.to_string(),
                source,
            })?
        }
        None => Attester::detect(&req.attester)
            .map_err(|report| AttestError::NoPlatform(format!("{report:?}")))?,
    };
    let platform = attester.platform();
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| AttestError::Key(e.to_string()))?;
    let nonce = client.nonce().await?;
    let report_data = moat_attest::binding::report_data_for_key(&key, Some(&nonce.bytes));
    // configfs-tsm and the guest device are file and ioctl I/O: keep them off the async workers.
    let evidence = tokio::task::spawn_blocking(move || attester.collect(&report_data))
        .await
        .map_err(|e| AttestError::Key(format!("evidence task failed: {e}")))?
        .map_err(|source| AttestError::Evidence {
            platform: platform.to_string(),
            source,
        })?;
    let csr = moat_attest::csr::build_with_names(
        &key,
        &evidence,
        Some(&nonce.bytes),
        Some(&req.workload),
        &req.server_names,
    )
    .map_err(AttestError::Csr)?;
    let chain = client.certify(&csr).await?;
    Ok(Attested {
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        chain,
        platform,
    })
}

/// The workload name for a local module: `moat:local:<sha256 hex>`.
pub fn local_workload_name(module: &[u8]) -> String {
    use sha2::Digest;
    format!("moat:local:{}", hex::encode(sha2::Sha256::digest(module)))
}

//! The Keep's identity: a private key and the certificate chain that names it. Today a Keep
//! without a Steward makes a fresh self-signed one per run; with a Steward the chain comes back
//! from the CA for a key the Keep generated, and [`Identity::from_parts`] takes it as is. The
//! rest of Moat (listeners, `connect` client certificates, Drawbridge pulls) sees only
//! `Identity`, so the two sources are interchangeable.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::{TlsError, pem, provider};

/// Signature key types Moat generates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// ECDSA on P-256 with SHA-256 (the default: small and fast).
    #[default]
    EcdsaP256,
    /// ECDSA on P-384 with SHA-384 (what SEV-SNP and TDX evidence use).
    EcdsaP384,
}

impl KeyAlgorithm {
    pub(crate) fn rcgen(self) -> &'static rcgen::SignatureAlgorithm {
        match self {
            KeyAlgorithm::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyAlgorithm::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
        }
    }
}

/// Generate a fresh private key (PKCS#8), e.g. to put its public half in a CSR for the Steward.
pub fn generate_key(algorithm: KeyAlgorithm) -> Result<PrivateKeyDer<'static>, TlsError> {
    let key = rcgen::KeyPair::generate_for(algorithm.rcgen())
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    Ok(PrivatePkcs8KeyDer::from(key.serialize_der()).into())
}

/// A private key with its certificate chain (leaf first), checked to belong together.
pub struct Identity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    certified: Arc<CertifiedKey>,
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Identity {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
            certified: self.certified.clone(),
        }
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the key.
        f.debug_struct("Identity")
            .field("chain_len", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// Take a chain (leaf first) and its private key, e.g. a chain the Steward issued for a key
    /// from [`generate_key`]. Fails if the key cannot sign or is not the leaf's key.
    pub fn from_parts(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Identity, TlsError> {
        if chain.is_empty() {
            return Err(TlsError::EmptyChain);
        }
        let signing_key = provider()
            .key_provider
            .load_private_key(key.clone_key())
            .map_err(|e| TlsError::BadKey(e.to_string()))?;
        let certified = CertifiedKey::new(chain.clone(), signing_key);
        match certified.keys_match() {
            Ok(()) => {}
            Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
                return Err(TlsError::KeyMismatch);
            }
            Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
            Err(other) => {
                return Err(TlsError::BadCertificate {
                    what: "the leaf certificate".into(),
                    detail: other.to_string(),
                });
            }
        }
        Ok(Identity {
            chain,
            key,
            certified: Arc::new(certified),
        })
    }

    /// A fresh key and a self-signed certificate for the given names (DNS names or IP
    /// addresses), P-256. What a Keep uses when no Steward is configured.
    pub fn self_signed<S: AsRef<str>>(subject_alt_names: &[S]) -> Result<Identity, TlsError> {
        Self::self_signed_with(subject_alt_names, KeyAlgorithm::default())
    }

    /// [`Identity::self_signed`] with a chosen key algorithm.
    pub fn self_signed_with<S: AsRef<str>>(
        subject_alt_names: &[S],
        algorithm: KeyAlgorithm,
    ) -> Result<Identity, TlsError> {
        let generate = |e: rcgen::Error| TlsError::Generate(e.to_string());
        let key = rcgen::KeyPair::generate_for(algorithm.rcgen()).map_err(generate)?;
        let names: Vec<String> = subject_alt_names
            .iter()
            .map(|s| s.as_ref().to_string())
            .collect();
        let mut params = rcgen::CertificateParams::new(names).map_err(generate)?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Moat Keep (self-signed)");
        params.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = params.self_signed(&key).map_err(generate)?;
        Self::from_parts(
            vec![cert.der().clone()],
            PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
        )
    }

    /// Parse a PEM chain (leaf first) and a PEM private key.
    pub fn from_pem(chain_pem: &[u8], key_pem: &[u8]) -> Result<Identity, TlsError> {
        let chain = pem::certs_from_pem(chain_pem, "the certificate chain")?;
        let key = pem::private_key_from_pem(key_pem, "the private key")?;
        Self::from_parts(chain, key)
    }

    /// Load a PEM chain file and a PEM key file.
    pub fn load_pem(chain_path: &Path, key_path: &Path) -> Result<Identity, TlsError> {
        let chain = pem::load_certs(chain_path)?;
        let key = pem::load_private_key(key_path)?;
        Self::from_parts(chain, key)
    }

    /// The chain and the key as PEM text: `(chain, key)`.
    pub fn to_pem(&self) -> (String, String) {
        (
            pem::certs_to_pem(&self.chain),
            pem::private_key_to_pem(&self.key),
        )
    }

    /// Write the chain and the key as PEM files; the key file is readable by its owner only.
    pub fn save_pem(&self, chain_path: &Path, key_path: &Path) -> Result<(), TlsError> {
        let (chain, key) = self.to_pem();
        std::fs::write(chain_path, chain).map_err(|source| TlsError::Write {
            path: chain_path.to_path_buf(),
            source,
        })?;
        write_private(key_path, key.as_bytes()).map_err(|source| TlsError::Write {
            path: key_path.to_path_buf(),
            source,
        })
    }

    /// The chain, leaf first.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// The leaf certificate.
    pub fn leaf(&self) -> &CertificateDer<'static> {
        &self.chain[0]
    }

    /// SHA-256 of the leaf certificate (DER), lowercase hex: what a user pins or compares with
    /// `openssl x509 -noout -fingerprint -sha256` (which prints it upper-case with colons).
    pub fn fingerprint_sha256(&self) -> String {
        ring::digest::digest(&ring::digest::SHA256, self.leaf().as_ref())
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The private key (DER).
    pub fn private_key(&self) -> &PrivateKeyDer<'static> {
        &self.key
    }

    /// The chain and key in the form rustls resolvers take.
    pub fn certified_key(&self) -> Arc<CertifiedKey> {
        self.certified.clone()
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)
}

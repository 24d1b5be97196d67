//! The Steward's certificate authority: its key and certificate, loaded from files or generated
//! once into the state directory, and the signing of Keep certificates.
//!
//! The CA key is parsed exactly once, when the [`CertificateAuthority`] is built, and kept as a
//! ready-to-sign [`rcgen::Issuer`]: Enarx's Steward re-parsed its key for every certificate, which
//! cost about a fifth of its CPU per issuance.
//!
//! Files written here are written atomically (temporary file in the same directory, `fsync`,
//! `rename`, `fsync` of the directory) with the key at mode 0600 inside a 0700 directory, so a
//! crash leaves either the old state or the complete new one and the key is never readable by
//! other users, not even for an instant.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
    SubjectPublicKeyInfo,
};
use rustls_pki_types::CertificateDer;

use crate::error::CaError;

/// File name of the CA certificate (PEM) inside the state directory.
pub const CA_CERT_FILE: &str = "ca.crt.pem";
/// File name of the CA private key (PKCS#8 PEM, mode 0600) inside the state directory.
pub const CA_KEY_FILE: &str = "ca.key.pem";

/// How long a generated CA certificate is valid. Long, because Keeps and relying parties pin it.
const GENERATED_CA_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// Certificates are back-dated by this much so a relying party whose clock is slightly behind
/// the Steward's does not see a certificate from the future.
const CLOCK_SKEW_ALLOWANCE: Duration = Duration::from_secs(5 * 60);

/// The CA: its certificate and its parsed key, ready to sign.
pub struct CertificateAuthority {
    cert_der: CertificateDer<'static>,
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
    /// The PKCS#8 DER of the key, kept to derive the nonce key (see [`crate::nonce`]).
    key_pkcs8: Vec<u8>,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("cert_len", &self.cert_der.len())
            .finish_non_exhaustive()
    }
}

/// What goes into a Keep's certificate besides its public key.
#[derive(Debug, Clone)]
pub struct LeafRequest<'a> {
    /// DER SubjectPublicKeyInfo of the Keep's key (from its CSR).
    pub spki_der: &'a [u8],
    /// The workload URI (a URI SAN), if the Keep asked for one and policy allowed it.
    pub workload: Option<&'a str>,
    /// DNS names and IP addresses (as text) the policy allowed, as subjectAltNames.
    pub server_names: &'a [String],
    /// Subject common name, for humans reading the certificate.
    pub common_name: &'a str,
    /// Extra (non-critical) extensions: the attestation result.
    pub extensions: Vec<(&'a [u64], Vec<u8>)>,
    /// Validity starts (before clock-skew back-dating) at this time.
    pub not_before: SystemTime,
    /// And lasts this long.
    pub lifetime: Duration,
}

impl CertificateAuthority {
    /// Builds a CA from a PEM certificate and a PEM private key (PKCS#8, SEC1 or PKCS#1).
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, CaError> {
        let key = KeyPair::from_pem(key_pem).map_err(|e| CaError::Key(e.to_string()))?;
        let cert_der = first_pem_cert(cert_pem)?;
        // The certificate must carry the key we are about to sign with; otherwise every issued
        // chain would fail to verify and the operator would find out from the Keeps.
        let (_, parsed) = x509_parser::parse_x509_certificate(&cert_der)
            .map_err(|e| CaError::Certificate(e.to_string()))?;
        if parsed.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
            return Err(CaError::KeyMismatch);
        }
        if !parsed.is_ca() {
            return Err(CaError::Certificate(
                "certificate is not a CA (basicConstraints cA is not set)".into(),
            ));
        }
        let key_pkcs8 = key.serialize_der();
        let issuer =
            Issuer::from_ca_cert_der(&cert_der, key).map_err(|e| CaError::Key(e.to_string()))?;
        Ok(Self {
            cert_pem: pem_encode("CERTIFICATE", &cert_der),
            cert_der,
            issuer,
            key_pkcs8,
        })
    }

    /// Loads the CA from files.
    pub fn from_files(cert: &Path, key: &Path) -> Result<Self, CaError> {
        let cert_pem = read(cert)?;
        let key_pem = read(key)?;
        Self::from_pem(&cert_pem, &key_pem)
    }

    /// Loads `ca.crt.pem` + `ca.key.pem` from `state_dir`, generating both on first start.
    /// Returns the CA and whether it was generated now.
    pub fn load_or_generate(state_dir: &Path, name: &str) -> Result<(Self, bool), CaError> {
        ensure_private_dir(state_dir)?;
        let cert_path = state_dir.join(CA_CERT_FILE);
        let key_path = state_dir.join(CA_KEY_FILE);
        match (cert_path.exists(), key_path.exists()) {
            (true, true) => {
                check_key_permissions(&key_path)?;
                Ok((Self::from_files(&cert_path, &key_path)?, false))
            }
            (false, false) => {
                let (cert_pem, key_pem) = generate_ca(name)?;
                // Key first: a certificate without its key would be unusable, a key without its
                // certificate is regenerated below on the next start.
                write_atomic(&key_path, key_pem.as_bytes(), 0o600)?;
                write_atomic(&cert_path, cert_pem.as_bytes(), 0o644)?;
                Ok((Self::from_pem(&cert_pem, &key_pem)?, true))
            }
            (cert, _) => Err(CaError::HalfState {
                present: if cert { &cert_path } else { &key_path }.clone(),
                missing: if cert { &key_path } else { &cert_path }.clone(),
            }),
        }
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// PKCS#8 DER of the CA key; used only to derive other keys that must agree across replicas.
    pub(crate) fn key_pkcs8(&self) -> &[u8] {
        &self.key_pkcs8
    }

    /// Signs a certificate for a Keep (end entity, TLS server and client use).
    pub fn issue(&self, req: &LeafRequest<'_>) -> Result<CertificateDer<'static>, CaError> {
        let spki = SubjectPublicKeyInfo::from_der(req.spki_der)
            .map_err(|e| CaError::UnsupportedKey(e.to_string()))?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, req.common_name);
        params.distinguished_name = dn;
        if let Some(uri) = req.workload {
            params
                .subject_alt_names
                .push(SanType::URI(uri.try_into().map_err(|_| {
                    CaError::Encoding(format!("workload URI {uri:?}"))
                })?));
        }
        for name in req.server_names {
            let san = match name.parse::<std::net::IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName(
                    name.clone()
                        .try_into()
                        .map_err(|_| CaError::Encoding(format!("server name {name:?}")))?,
                ),
            };
            params.subject_alt_names.push(san);
        }
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(random_serial()?);
        params.not_before = (req.not_before - CLOCK_SKEW_ALLOWANCE).into();
        params.not_after = (req.not_before + req.lifetime).into();
        for (oid, content) in &req.extensions {
            params
                .custom_extensions
                .push(CustomExtension::from_oid_content(oid, content.clone()));
        }
        let cert = params
            .signed_by(&spki, &self.issuer)
            .map_err(|e| CaError::Sign(e.to_string()))?;
        Ok(cert.der().clone())
    }

    /// Signs a TLS server certificate for the Steward itself (used when no `--tls-cert` is
    /// given), so clients need to trust only the CA certificate.
    pub fn issue_server_cert(
        &self,
        names: &[String],
        lifetime: Duration,
    ) -> Result<(CertificateDer<'static>, KeyPair), CaError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|e| CaError::Key(e.to_string()))?;
        let mut params =
            CertificateParams::new(names.to_vec()).map_err(|e| CaError::Encoding(e.to_string()))?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "Moat Steward");
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(random_serial()?);
        let now = SystemTime::now();
        params.not_before = (now - CLOCK_SKEW_ALLOWANCE).into();
        params.not_after = (now + lifetime).into();
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| CaError::Sign(e.to_string()))?;
        Ok((cert.der().clone(), key))
    }
}

/// Generates a P-384 CA: (certificate PEM, PKCS#8 key PEM).
pub fn generate_ca(name: &str) -> Result<(String, String), CaError> {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384)
        .map_err(|e| CaError::Key(e.to_string()))?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    dn.push(DnType::OrganizationName, "Moat");
    params.distinguished_name = dn;
    // pathlen 0: the Steward signs Keeps directly, never intermediate CAs.
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.serial_number = Some(random_serial()?);
    let now = SystemTime::now();
    params.not_before = (now - CLOCK_SKEW_ALLOWANCE).into();
    params.not_after = (now + GENERATED_CA_LIFETIME).into();
    let cert = params
        .self_signed(&key)
        .map_err(|e| CaError::Sign(e.to_string()))?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn random_serial() -> Result<SerialNumber, CaError> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| CaError::Random)?;
    // Positive and non-zero-led, as RFC 5280 wants for serials.
    bytes[0] = (bytes[0] & 0x7f) | 0x01;
    Ok(SerialNumber::from_slice(&bytes))
}

/// First `CERTIFICATE` block of a PEM string.
pub fn first_pem_cert(pem: &str) -> Result<CertificateDer<'static>, CaError> {
    use rustls_pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .ok_or_else(|| CaError::Certificate("no CERTIFICATE block in PEM".into()))?
        .map_err(|e| CaError::Certificate(e.to_string()))
}

/// PEM-encodes DER with a label.
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn read(path: &Path) -> Result<String, CaError> {
    fs::read_to_string(path).map_err(|source| CaError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Creates `dir` (and parents) if missing and makes it mode 0700.
pub fn ensure_private_dir(dir: &Path) -> Result<(), CaError> {
    let io = |source| CaError::Io {
        path: dir.to_owned(),
        source,
    };
    fs::create_dir_all(dir).map_err(io)?;
    set_mode(dir, 0o700).map_err(io)
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> std::io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn check_key_permissions(path: &Path) -> Result<(), CaError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = fs::metadata(path).map_err(|source| CaError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(CaError::KeyPermissions {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_key_permissions(_path: &Path) -> Result<(), CaError> {
    Ok(())
}

/// Writes `bytes` to `path` atomically with the given mode (set before any byte is written).
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CaError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp: PathBuf = dir.join(format!(".{file_name}.tmp{}", std::process::id()));
    let io = |source| CaError::Io {
        path: path.to_owned(),
        source,
    };
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let result = (|| {
        let mut file = opts.open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        if let Ok(d) = fs::File::open(dir) {
            d.sync_all()?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_state_is_private_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let (ca, generated) = CertificateAuthority::load_or_generate(&state, "test CA").unwrap();
        assert!(generated);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&state), 0o700);
            assert_eq!(mode(&state.join(CA_KEY_FILE)), 0o600);
        }
        let (again, generated) = CertificateAuthority::load_or_generate(&state, "test CA").unwrap();
        assert!(!generated);
        assert_eq!(ca.cert_der(), again.cert_der());
    }

    #[test]
    fn half_state_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        CertificateAuthority::load_or_generate(dir.path(), "x").unwrap();
        fs::remove_file(dir.path().join(CA_KEY_FILE)).unwrap();
        assert!(matches!(
            CertificateAuthority::load_or_generate(dir.path(), "x"),
            Err(CaError::HalfState { .. })
        ));
    }

    #[cfg(unix)]
    #[test]
    fn readable_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        CertificateAuthority::load_or_generate(dir.path(), "x").unwrap();
        set_mode(&dir.path().join(CA_KEY_FILE), 0o644).unwrap();
        assert!(matches!(
            CertificateAuthority::load_or_generate(dir.path(), "x"),
            Err(CaError::KeyPermissions { .. })
        ));
    }

    #[test]
    fn key_of_another_ca_is_refused() {
        let (cert_a, _) = generate_ca("a").unwrap();
        let (_, key_b) = generate_ca("b").unwrap();
        assert!(matches!(
            CertificateAuthority::from_pem(&cert_a, &key_b),
            Err(CaError::KeyMismatch)
        ));
    }

    #[test]
    fn issued_leaf_chains_to_ca_and_names_workload() {
        let (cert, key) = generate_ca("a").unwrap();
        let ca = CertificateAuthority::from_pem(&cert, &key).unwrap();
        let leaf_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let spki = rcgen::PublicKeyData::subject_public_key_info(&leaf_key);
        let der = ca
            .issue(&LeafRequest {
                server_names: &[],
                spki_der: &spki,
                workload: Some("oci://127.0.0.1:5000/demo/app"),
                common_name: "keep",
                extensions: vec![],
                not_before: SystemTime::now(),
                lifetime: Duration::from_secs(3600),
            })
            .unwrap();
        let (_, leaf) = x509_parser::parse_x509_certificate(&der).unwrap();
        let (_, ca_cert) = x509_parser::parse_x509_certificate(ca.cert_der()).unwrap();
        leaf.verify_signature(Some(ca_cert.public_key())).unwrap();
        let san = leaf.subject_alternative_name().unwrap().unwrap();
        assert!(san.value.general_names.iter().any(|n| matches!(
            n,
            x509_parser::extensions::GeneralName::URI("oci://127.0.0.1:5000/demo/app")
        )));
        assert!(!leaf.is_ca());
    }
}

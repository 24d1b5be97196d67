//! PEM loading with typed errors: a missing file, a file with no certificate and a malformed key
//! are different failures and say which file they concern. Inputs are bounded in size because CA
//! and key files come from configs that other people write.

use std::io::Read;
use std::path::Path;

use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::TlsError;

/// PEM inputs larger than this are refused (4 MiB: far above any real CA bundle).
pub const MAX_PEM_BYTES: u64 = 4 * 1024 * 1024;

/// Read a whole PEM file, bounded by [`MAX_PEM_BYTES`].
fn read_bounded(path: &Path) -> Result<Vec<u8>, TlsError> {
    let read_err = |source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let mut bytes = Vec::new();
    file.take(MAX_PEM_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() as u64 > MAX_PEM_BYTES {
        return Err(TlsError::TooLarge {
            what: path.display().to_string(),
            max: MAX_PEM_BYTES,
        });
    }
    Ok(bytes)
}

fn bad_pem(what: &str, err: pem::Error) -> TlsError {
    TlsError::BadPem {
        what: what.to_string(),
        detail: err.to_string(),
    }
}

/// All certificates in PEM text, in order. `what` names the source in errors.
pub fn certs_from_pem(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    if pem.len() as u64 > MAX_PEM_BYTES {
        return Err(TlsError::TooLarge {
            what: what.to_string(),
            max: MAX_PEM_BYTES,
        });
    }
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| bad_pem(what, err))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificates {
            what: what.to_string(),
        });
    }
    Ok(certs)
}

/// The first private key (PKCS#8, SEC1 or PKCS#1) in PEM text.
pub fn private_key_from_pem(pem: &[u8], what: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    if pem.len() as u64 > MAX_PEM_BYTES {
        return Err(TlsError::TooLarge {
            what: what.to_string(),
            max: MAX_PEM_BYTES,
        });
    }
    match PrivateKeyDer::from_pem_slice(pem) {
        Ok(key) => Ok(key),
        Err(pem::Error::NoItemsFound) => Err(TlsError::NoPrivateKey {
            what: what.to_string(),
        }),
        Err(err) => Err(bad_pem(what, err)),
    }
}

/// All certificates in a PEM file.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    certs_from_pem(&read_bounded(path)?, &path.display().to_string())
}

/// The private key in a PEM file.
pub fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    private_key_from_pem(&read_bounded(path)?, &path.display().to_string())
}

/// Encode certificates as PEM.
pub fn certs_to_pem(certs: &[CertificateDer<'_>]) -> String {
    certs
        .iter()
        .map(|cert| encode("CERTIFICATE", cert.as_ref()))
        .collect()
}

/// Encode a private key as PEM, labelled for its format.
pub fn private_key_to_pem(key: &PrivateKeyDer<'_>) -> String {
    let label = match key {
        PrivateKeyDer::Pkcs1(_) => "RSA PRIVATE KEY",
        PrivateKeyDer::Sec1(_) => "EC PRIVATE KEY",
        _ => "PRIVATE KEY",
    };
    encode(label, key.secret_der())
}

fn encode(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

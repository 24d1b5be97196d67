//! Key binding: how `report_data` ties evidence to the key in a CSR (INTERFACES.md):
//! `SHA-384(DER SubjectPublicKeyInfo [|| nonce])`, zero-padded to 64 bytes. Without a nonce this
//! is exactly what Enarx's Keeps put in SNP reports, so their CSRs verify unchanged.

use sha2::{Digest, Sha384};

/// The `report_data` a Keep must request for its public key (DER SPKI) and optional nonce.
pub fn report_data(spki_der: &[u8], nonce: Option<&[u8]>) -> [u8; 64] {
    let mut hasher = Sha384::new();
    hasher.update(spki_der);
    if let Some(nonce) = nonce {
        hasher.update(nonce);
    }
    let mut out = [0u8; 64];
    out[..48].copy_from_slice(&hasher.finalize());
    out
}

/// True when `actual` binds `spki_der` (and `nonce`). Constant-time comparison is not needed:
/// both values are public.
pub fn matches(actual: &[u8; 64], spki_der: &[u8], nonce: Option<&[u8]>) -> bool {
    *actual == report_data(spki_der, nonce)
}

/// The DER SubjectPublicKeyInfo of an `rcgen` key (what the CSR will carry).
pub fn spki_der(key: &rcgen::KeyPair) -> Vec<u8> {
    rcgen::PublicKeyData::subject_public_key_info(key)
}

/// [`report_data`] for an `rcgen` key.
pub fn report_data_for_key(key: &rcgen::KeyPair, nonce: Option<&[u8]>) -> [u8; 64] {
    report_data(&spki_der(key), nonce)
}

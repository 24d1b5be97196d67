//! Bad PEM and key inputs get typed errors naming the file, never a panic; mismatched and empty
//! identities are refused; an empty trust set is an error.

use std::path::Path;

use moat_tls::test_pki::TestCa;
use moat_tls::{ClientOptions, Identity, TlsError, TrustRoots, client_config, pem};

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn missing_file_names_the_file() {
    let err = pem::load_certs(Path::new("/nonexistent/ca.pem")).unwrap_err();
    assert!(matches!(err, TlsError::Read { .. }), "{err:?}");
    assert!(err.to_string().contains("/nonexistent/ca.pem"));
    let err = pem::load_private_key(Path::new("/nonexistent/key.pem")).unwrap_err();
    assert!(matches!(err, TlsError::Read { .. }), "{err:?}");
}

#[test]
fn files_without_the_wanted_section_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let empty = write(dir.path(), "empty.pem", b"");
    let err = pem::load_certs(&empty).unwrap_err();
    assert!(matches!(err, TlsError::NoCertificates { .. }), "{err:?}");
    assert!(err.to_string().contains("empty.pem"));

    // A key file where certificates are expected, and a certificate where a key is expected.
    let identity = TestCa::new("ca").server_identity(&["localhost"]);
    let (chain_pem, key_pem) = identity.to_pem();
    let key_only = write(dir.path(), "key.pem", key_pem.as_bytes());
    assert!(matches!(
        pem::load_certs(&key_only),
        Err(TlsError::NoCertificates { .. })
    ));
    let cert_only = write(dir.path(), "cert.pem", chain_pem.as_bytes());
    assert!(matches!(
        pem::load_private_key(&cert_only),
        Err(TlsError::NoPrivateKey { .. })
    ));
    let text = write(dir.path(), "notes.txt", b"just some text\nno pem here\n");
    assert!(matches!(
        pem::load_private_key(&text),
        Err(TlsError::NoPrivateKey { .. })
    ));
}

#[test]
fn malformed_pem_is_a_bad_pem_error() {
    let identity = TestCa::new("ca").server_identity(&["localhost"]);
    let (chain_pem, _) = identity.to_pem();
    // Truncated: BEGIN without END.
    let truncated = &chain_pem[..chain_pem.len() / 2];
    let err = pem::certs_from_pem(truncated.as_bytes(), "truncated.pem").unwrap_err();
    assert!(matches!(err, TlsError::BadPem { .. }), "{err:?}");
    assert!(err.to_string().contains("truncated.pem"));
    // Bad base64 inside a section.
    let garbled = "-----BEGIN CERTIFICATE-----\n!!!not base64!!!\n-----END CERTIFICATE-----\n";
    let err = pem::certs_from_pem(garbled.as_bytes(), "garbled.pem").unwrap_err();
    assert!(matches!(err, TlsError::BadPem { .. }), "{err:?}");
}

#[test]
fn oversized_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let big = vec![b'A'; pem::MAX_PEM_BYTES as usize + 1];
    let path = write(dir.path(), "big.pem", &big);
    assert!(matches!(
        pem::load_certs(&path),
        Err(TlsError::TooLarge { .. })
    ));
    assert!(matches!(
        pem::certs_from_pem(&big, "big"),
        Err(TlsError::TooLarge { .. })
    ));
    assert!(matches!(
        pem::private_key_from_pem(&big, "big"),
        Err(TlsError::TooLarge { .. })
    ));
}

#[test]
fn key_that_is_not_the_leafs_is_refused() {
    let ca = TestCa::new("ca");
    let a = ca.server_identity(&["a.example"]);
    let b = ca.server_identity(&["b.example"]);
    let err = Identity::from_parts(a.chain().to_vec(), b.private_key().clone_key()).unwrap_err();
    assert!(matches!(err, TlsError::KeyMismatch), "{err:?}");
    let err = Identity::from_parts(Vec::new(), a.private_key().clone_key()).unwrap_err();
    assert!(matches!(err, TlsError::EmptyChain), "{err:?}");
}

#[test]
fn garbage_key_bytes_are_a_bad_key() {
    let ca = TestCa::new("ca");
    let a = ca.server_identity(&["a.example"]);
    let garbage = "-----BEGIN PRIVATE KEY-----\nAAECAwQFBgcICQ==\n-----END PRIVATE KEY-----\n";
    let (chain_pem, _) = a.to_pem();
    let err = Identity::from_pem(chain_pem.as_bytes(), garbage.as_bytes()).unwrap_err();
    assert!(matches!(err, TlsError::BadKey(_)), "{err:?}");
}

#[test]
fn steward_style_identity_from_generated_key_and_issued_chain() {
    // The Steward flow: the Keep generates a key, the CA signs a chain for it, from_parts takes it.
    let ca = TestCa::new("ca");
    let issued = ca.server_identity(&["keep.example"]);
    let rebuilt =
        Identity::from_parts(issued.chain().to_vec(), issued.private_key().clone_key()).unwrap();
    assert_eq!(rebuilt.leaf(), issued.leaf());
    assert!(moat_tls::generate_key(moat_tls::KeyAlgorithm::EcdsaP384).is_ok());
}

#[test]
fn mutated_pem_never_panics() {
    let identity = TestCa::new("ca").server_identity(&["localhost"]);
    let (chain_pem, key_pem) = identity.to_pem();
    let (chain, key) = (chain_pem.into_bytes(), key_pem.into_bytes());
    for i in (0..chain.len()).step_by(7) {
        for with in [b'-', b'\n', b'A', 0xff] {
            let mut c = chain.clone();
            c[i] = with;
            let _ = Identity::from_pem(&c, &key);
        }
        let _ = Identity::from_pem(&chain[..i], &key);
    }
    for i in (0..key.len()).step_by(3) {
        let mut k = key.clone();
        k[i] ^= 0x01;
        let _ = Identity::from_pem(&chain, &k);
    }
}

#[test]
fn an_empty_trust_set_is_an_error() {
    let err = client_config(&ClientOptions::new(TrustRoots::only(Vec::new()))).unwrap_err();
    assert!(matches!(err, TlsError::NoTrustRoots), "{err:?}");
}

#[test]
fn a_non_ca_der_blob_is_refused_as_root() {
    let roots = TrustRoots::only(vec![moat_tls::CertificateDer::from(vec![1u8, 2, 3])]);
    let err = client_config(&ClientOptions::new(roots)).unwrap_err();
    assert!(matches!(err, TlsError::BadCertificate { .. }), "{err:?}");
}

#[test]
fn fingerprint_is_sha256_of_the_leaf() {
    let a = Identity::self_signed(&["localhost"]).unwrap();
    let b = Identity::self_signed(&["localhost"]).unwrap();
    let fa = a.fingerprint_sha256();
    assert_eq!(fa.len(), 64);
    assert!(
        fa.chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    assert_ne!(fa, b.fingerprint_sha256());
    assert_eq!(fa, a.clone().fingerprint_sha256());
    // Checked against an independent SHA-256 implementation.
    use sha2::Digest as _;
    assert_eq!(fa, hex::encode(sha2::Sha256::digest(a.leaf().as_ref())));
}

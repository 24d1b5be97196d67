//! TEST ONLY: a throwaway certificate authority for tests of every crate. Enabled by the
//! `test-pki` cargo feature, which only dev-dependencies should turn on. Keys live in memory and
//! die with the test; nothing here is a trust root outside the test that made it.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls_pki_types::{CertificateDer, PrivatePkcs8KeyDer};

use crate::{Identity, TrustRoots};

/// A CA made for one test run.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    cert: CertificateDer<'static>,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

impl TestCa {
    /// A fresh CA (P-256) whose subject is `common_name`.
    pub fn new(common_name: &str) -> TestCa {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("generate CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).expect("self-sign CA");
        TestCa {
            issuer: Issuer::new(params, key),
            cert: cert.der().clone(),
        }
    }

    /// The CA certificate.
    pub fn cert(&self) -> CertificateDer<'static> {
        self.cert.clone()
    }

    /// The CA certificate as PEM.
    pub fn cert_pem(&self) -> String {
        crate::pem::certs_to_pem(std::slice::from_ref(&self.cert))
    }

    /// Write the CA certificate as `<dir>/<file_name>` and return the path.
    pub fn write_cert_pem(&self, dir: &Path, file_name: &str) -> PathBuf {
        let path = dir.join(file_name);
        std::fs::write(&path, self.cert_pem()).expect("write CA PEM");
        path
    }

    /// Roots that trust only this CA.
    pub fn roots(&self) -> TrustRoots {
        TrustRoots::only(vec![self.cert()])
    }

    /// A server identity for these DNS names / IP addresses.
    pub fn server_identity(&self, subject_alt_names: &[&str]) -> Identity {
        self.issue(
            subject_alt_names,
            subject_alt_names.first().copied().unwrap_or("server"),
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    /// A client identity whose subject is `common_name`.
    pub fn client_identity(&self, common_name: &str) -> Identity {
        self.issue(&[], common_name, ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn issue(&self, sans: &[&str], common_name: &str, usage: ExtendedKeyUsagePurpose) -> Identity {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("generate leaf key");
        let names: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(names).expect("leaf params");
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![usage];
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &self.issuer).expect("sign leaf");
        Identity::from_parts(
            vec![cert.der().clone()],
            PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
        )
        .expect("issued identity is consistent")
    }
}

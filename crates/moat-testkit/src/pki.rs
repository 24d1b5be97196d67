//! A throw-away certificate authority for tests: issues server and client certificates and writes
//! them as PEM files a config can name (`ca` files for `connect` sockets, client CAs for mTLS).
//!
//! Test-only by name and by crate: it exists so tests never need hand-made or committed keys.
//! Every call makes fresh keys (ECDSA P-256), valid from now for a day.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A test CA: its certificate and the issuer that signs with its key.
pub struct TestCa {
    cert: rcgen::Certificate,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate issued by a [`TestCa`] (or self-signed) with its private key.
#[derive(Debug)]
pub struct Leaf {
    pub cert_der: CertificateDer<'static>,
    pub cert_pem: String,
    pub key_der: PrivatePkcs8KeyDer<'static>,
    pub key_pem: String,
}

impl Leaf {
    /// The key as rustls takes it.
    pub fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.key_der.clone_key())
    }

    /// Write `<stem>.crt` and `<stem>.key` (PEM) into `dir`; returns their paths.
    pub fn write(&self, dir: &Path, stem: &str) -> (PathBuf, PathBuf) {
        let cert = dir.join(format!("{stem}.crt"));
        let key = dir.join(format!("{stem}.key"));
        std::fs::write(&cert, &self.cert_pem).expect("write certificate");
        std::fs::write(&key, &self.key_pem).expect("write key");
        (cert, key)
    }
}

fn validity(params: &mut CertificateParams) {
    let now = std::time::SystemTime::now();
    params.not_before = (now - std::time::Duration::from_secs(60)).into();
    params.not_after = (now + std::time::Duration::from_secs(24 * 3600)).into();
}

impl TestCa {
    /// A new root CA called `common_name`.
    pub fn new(common_name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        validity(&mut params);
        let key = KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("self-sign the CA");
        TestCa {
            cert,
            issuer: Issuer::new(params, key),
        }
    }

    /// The CA certificate (DER).
    pub fn cert_der(&self) -> CertificateDer<'static> {
        self.cert.der().clone()
    }

    /// The CA certificate (PEM).
    pub fn cert_pem(&self) -> String {
        self.cert.pem()
    }

    /// Write the CA certificate as `<stem>.crt` into `dir`; returns its path.
    pub fn write_cert(&self, dir: &Path, stem: &str) -> PathBuf {
        let path = dir.join(format!("{stem}.crt"));
        std::fs::write(&path, self.cert_pem()).expect("write CA certificate");
        path
    }

    /// A server certificate for `names` (DNS names or IP addresses).
    pub fn issue_server(&self, names: &[&str]) -> Leaf {
        self.issue(
            names,
            names.first().copied().unwrap_or("server"),
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    /// A client certificate whose subject is `common_name`.
    pub fn issue_client(&self, common_name: &str) -> Leaf {
        self.issue(&[], common_name, ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn issue(&self, names: &[&str], common_name: &str, usage: ExtendedKeyUsagePurpose) -> Leaf {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).expect("leaf params");
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![usage];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        validity(&mut params);
        let key = KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &self.issuer).expect("sign the leaf");
        leaf(cert, key)
    }
}

/// A self-signed server certificate for `names`, for a test server nobody is meant to trust.
pub fn self_signed_server(names: &[&str]) -> Leaf {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = CertificateParams::new(names).expect("params");
    validity(&mut params);
    let key = KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("self-sign");
    leaf(cert, key)
}

fn leaf(cert: rcgen::Certificate, key: KeyPair) -> Leaf {
    Leaf {
        cert_der: cert.der().clone(),
        cert_pem: cert.pem(),
        key_der: PrivatePkcs8KeyDer::from(key.serialize_der()),
        key_pem: key.serialize_pem(),
    }
}

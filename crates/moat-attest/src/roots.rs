//! Trust roots. Built in: AMD's ARK with its ASK (VCEK issuer) and ASVK (VLEK issuer) for
//! Milan, Genoa and Turin, and Intel's SGX/TDX root (inside `dcap-qvl`). These are AMD's and
//! Intel's public certificates. Any other root can only be added through an API whose name says
//! it is for tests ([`AmdRoot::test_only`]), compiled only with the `test-roots` feature, and
//! every claim verified through such a root says so (`Claims::test_only_root`).

use std::sync::OnceLock;

use x509_parser::prelude::*;

use crate::Error;

/// ARK, ASK and ASVK certificates for one AMD product line (PEM/DER owned here).
#[derive(Clone, Debug)]
pub struct AmdRoot {
    /// `Milan`, `Genoa`, `Turin`, or a test root's name.
    pub(crate) product: String,
    /// Shown in claims: `AMD ARK-Milan`, `TEST-ONLY <name>`.
    pub(crate) label: String,
    pub(crate) ark: Vec<u8>,
    pub(crate) ask: Vec<u8>,
    pub(crate) asvk: Option<Vec<u8>>,
    pub(crate) test_only: bool,
    /// Whether the product's TCB layout is Turin's (FMC first).
    pub(crate) turin_tcb: bool,
}

impl AmdRoot {
    /// A test-only root: a fake ARK and ASK (DER). Claims verified through it carry
    /// `test_only_root: true` and a trust root named `TEST-ONLY <name>`.
    #[cfg(feature = "test-roots")]
    pub fn test_only(name: &str, ark_der: Vec<u8>, ask_der: Vec<u8>) -> Result<Self, Error> {
        let root = AmdRoot {
            product: "Milan".into(),
            label: format!("TEST-ONLY {name}"),
            ark: ark_der,
            ask: ask_der,
            asvk: None,
            test_only: true,
            turin_tcb: false,
        };
        root.self_check()?;
        Ok(root)
    }

    /// [`AmdRoot::test_only`] from PEM files (a Steward's test-only configuration).
    #[cfg(feature = "test-roots")]
    pub fn test_only_from_pem(name: &str, ark_pem: &[u8], ask_pem: &[u8]) -> Result<Self, Error> {
        let der = |pem: &[u8]| {
            x509_parser::pem::parse_x509_pem(pem)
                .map(|(_, p)| p.contents)
                .map_err(|e| Error::malformed("test root PEM", &e.to_string()))
        };
        Self::test_only(name, der(ark_pem)?, der(ask_pem)?)
    }

    pub fn product(&self) -> &str {
        &self.product
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn is_test_only(&self) -> bool {
        self.test_only
    }

    /// ARK self-signed, ARK signs ASK (and ASVK).
    fn self_check(&self) -> Result<(), Error> {
        let bad = |d: String| Error::Malformed {
            what: "trust root",
            detail: format!("{}: {d}", self.label),
        };
        let (_, ark) = X509Certificate::from_der(&self.ark).map_err(|e| bad(e.to_string()))?;
        ark.verify_signature(None)
            .map_err(|e| bad(format!("ARK not self-signed: {e}")))?;
        for der in std::iter::once(&self.ask).chain(self.asvk.as_ref()) {
            let (_, c) = X509Certificate::from_der(der).map_err(|e| bad(e.to_string()))?;
            c.verify_signature(Some(ark.public_key()))
                .map_err(|e| bad(format!("ARK does not sign {}: {e}", c.subject())))?;
        }
        Ok(())
    }
}

fn pem_to_der(pem_bytes: &[u8]) -> Vec<u8> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem_bytes).expect("built-in PEM parses");
    pem.contents
}

/// AMD's roots for Milan, Genoa and Turin, checked once (ARK self-signature, ARK → ASK/ASVK).
pub fn builtin_amd() -> &'static [AmdRoot] {
    static ROOTS: OnceLock<Vec<AmdRoot>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        use sev::certs::snp::builtin::{genoa, milan, turin};
        let mk = |product: &str, ark: &[u8], ask: &[u8], asvk: &[u8], turin_tcb| AmdRoot {
            product: product.into(),
            label: format!("AMD ARK-{product}"),
            ark: pem_to_der(ark),
            ask: pem_to_der(ask),
            asvk: Some(pem_to_der(asvk)),
            test_only: false,
            turin_tcb,
        };
        let roots = vec![
            mk(
                "Milan",
                milan::ARK,
                milan::ASK,
                include_bytes!("roots/milan_asvk.pem"),
                false,
            ),
            mk(
                "Genoa",
                genoa::ARK,
                genoa::ASK,
                include_bytes!("roots/genoa_asvk.pem"),
                false,
            ),
            mk(
                "Turin",
                turin::ARK,
                turin::ASK,
                include_bytes!("roots/turin_asvk.pem"),
                true,
            ),
        ];
        for root in &roots {
            root.self_check()
                .expect("built-in AMD roots are consistent");
        }
        roots
    })
}

/// The label of Intel's built-in root, as shown in claims.
pub const INTEL_ROOT_LABEL: &str = "Intel SGX Root CA";

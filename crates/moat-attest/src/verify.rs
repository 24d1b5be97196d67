//! The verifier: trust roots, the verification time, collateral, and the debug switch, applied to
//! evidence alone or to a CSR (which adds the CSR signature and the key binding).

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use x509_parser::time::ASN1Time;

use crate::claims::Claims;
use crate::csr::ParsedCsr;
use crate::evidence::{Evidence, Platform};
use crate::quote::Collateral;
use crate::roots::{AmdRoot, builtin_amd};
use crate::{Check, Error, binding, quote, snp};

/// How the evidence's `report_data` relates to a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyBinding {
    /// `report_data` = SHA-384(SPKI [|| nonce]): checked.
    Checked,
    /// Nothing to bind (Enarx nil CSRs carry no `report_data`): only possible for `nil`.
    NotBound,
    /// Evidence verified on its own, without a key to compare with.
    NotChecked,
}

/// Evidence that passed every intrinsic check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedEvidence {
    pub claims: Claims,
    pub key_binding: KeyBinding,
    /// The nonce the binding included (hex), if any. The caller checks it was one it issued.
    pub nonce: Option<String>,
}

/// A CSR whose signature, evidence and key binding verified.
#[derive(Clone, Debug)]
pub struct VerifiedCsr {
    pub csr: ParsedCsr,
    pub evidence: VerifiedEvidence,
}

/// Offline evidence verifier. Cheap to clone; build once and share.
#[derive(Clone, Debug)]
pub struct Verifier {
    amd: Vec<AmdRoot>,
    collateral: Vec<Collateral>,
    at: Option<SystemTime>,
    allow_debug: bool,
}

impl Default for Verifier {
    fn default() -> Self {
        Self::new()
    }
}

impl Verifier {
    /// AMD (Milan, Genoa, Turin: ARK, ASK, ASVK) and Intel roots built in; the time is the
    /// clock at each verification; debug guests are refused; no TDX/SGX collateral.
    pub fn new() -> Self {
        Verifier {
            amd: builtin_amd().to_vec(),
            collateral: Vec::new(),
            at: None,
            allow_debug: false,
        }
    }

    /// Verify as of this time instead of the clock (certificate and collateral validity).
    pub fn at(mut self, at: SystemTime) -> Self {
        self.at = Some(at);
        self
    }

    /// Accept guests whose policy/attributes allow debugging (claims still say `debug: true`).
    pub fn allow_debug(mut self, allow: bool) -> Self {
        self.allow_debug = allow;
        self
    }

    /// Add DCAP collateral for TDX/SGX quotes (one per platform family).
    pub fn with_collateral(mut self, collateral: Collateral) -> Self {
        self.collateral.push(collateral);
        self
    }

    /// Add a test-only AMD root. Only with the `test-roots` feature; claims verified through it
    /// say `test_only_root: true`.
    #[cfg(feature = "test-roots")]
    pub fn with_test_only_amd_root(mut self, root: AmdRoot) -> Self {
        self.amd.push(root);
        self
    }

    /// Remove the built-in AMD roots (tests use this to prove a test root alone is in effect).
    #[cfg(feature = "test-roots")]
    pub fn without_builtin_amd_roots(mut self) -> Self {
        self.amd.retain(|r| r.test_only);
        self
    }

    fn now(&self) -> SystemTime {
        self.at.unwrap_or_else(SystemTime::now)
    }

    /// Verify evidence on its own: signatures, chains, validity, TCB consistency, debug.
    /// `nil` evidence is checked structurally and returned with `attested: false`.
    pub fn verify_evidence(&self, evidence: &Evidence) -> Result<Claims, Error> {
        evidence.check_structure()?;
        let now = self.now();
        let secs = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        match evidence {
            Evidence::Nil(n) => Ok(nil_claims(n.report_data)),
            Evidence::Snp(s) => {
                let at = ASN1Time::from_timestamp(secs as i64)
                    .map_err(|e| Error::malformed("verification time", &e.to_string()))?;
                snp::verify(
                    s,
                    &snp::SnpContext {
                        roots: &self.amd,
                        at,
                        allow_debug: self.allow_debug,
                    },
                )
            }
            Evidence::Tdx(q) => quote::verify(Platform::Tdx, &q.quote, &self.collateral, secs),
            Evidence::Sgx(q) => quote::verify(Platform::Sgx, &q.quote, &self.collateral, secs),
        }
    }

    /// Verify evidence and that its `report_data` binds `spki_der` (and `nonce`).
    pub fn verify_bound(
        &self,
        evidence: &Evidence,
        spki_der: &[u8],
        nonce: Option<&[u8]>,
    ) -> Result<VerifiedEvidence, Error> {
        let claims = self.verify_evidence(evidence)?;
        let key_binding = match evidence.report_data()? {
            Some(rd) => {
                if !binding::matches(&rd, spki_der, nonce) {
                    return Err(Error::refused(
                        Check::KeyBinding,
                        "report_data is not SHA-384 of this key's SubjectPublicKeyInfo (and nonce)",
                    ));
                }
                KeyBinding::Checked
            }
            None => KeyBinding::NotBound,
        };
        Ok(VerifiedEvidence {
            claims,
            key_binding,
            nonce: nonce.map(hex::encode),
        })
    }

    /// Parse a CSR (DER or PEM, Moat's or Enarx's format), check its signature, verify its
    /// evidence and the binding of the evidence to the CSR's key.
    pub fn verify_csr(&self, csr: &[u8]) -> Result<VerifiedCsr, Error> {
        let parsed = crate::csr::parse(csr)?;
        let evidence =
            self.verify_bound(&parsed.evidence, &parsed.spki_der, parsed.nonce.as_deref())?;
        Ok(VerifiedCsr {
            csr: parsed,
            evidence,
        })
    }
}

fn nil_claims(report_data: Option<[u8; 64]>) -> Claims {
    Claims {
        platform: Platform::Nil,
        attested: false,
        trust_root: "none".into(),
        test_only_root: false,
        report_data: report_data.map(hex::encode).unwrap_or_default(),
        measurement: None,
        debug: false,
        migration_agent: false,
        tcb_status: None,
        advisories: Vec::new(),
        snp: None,
        tdx: None,
        sgx: None,
    }
}

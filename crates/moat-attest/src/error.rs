//! The crate's one error type. Every failure is either input Moat cannot read (`Malformed`,
//! `TooLarge`, `Unsupported`), a named verification check that refused the evidence
//! (`Refused`, carrying a [`Check`] whose stable name goes on the wire), or a failure to collect
//! evidence on this machine (`Attester`). Callers map these to their own wire codes in one place
//! (the Steward to HTTP statuses, the CLI to exit codes).

use std::fmt;

/// A verification check, named so that operators see exactly what failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Check {
    /// The CSR's self-signature does not verify with its own key.
    CsrSignature,
    /// `report_data` does not bind the CSR's public key (and nonce).
    KeyBinding,
    /// SNP report version outside the supported set (2, 3, 5).
    SnpReportVersion,
    /// SNP report signature algorithm is not ECDSA P-384 with SHA-384.
    SnpSignatureAlgorithm,
    /// The VCEK/VLEK does not sign the report.
    SnpReportSignature,
    /// No VCEK/VLEK was supplied with the report.
    SnpVekMissing,
    /// The VCEK/VLEK is not a well-formed endorsement key certificate.
    SnpVekMalformed,
    /// The VCEK/VLEK does not chain to a trusted AMD root (ARK → ASK/ASVK → VEK).
    SnpVekChain,
    /// A certificate of the chain is outside its validity period at the verification time.
    CertificateValidity,
    /// A supplied CRL is not signed by the chain's root, or is malformed.
    CrlSignature,
    /// A supplied CRL is past its next-update time (stale revocation data).
    CrlExpired,
    /// A certificate of the chain is revoked.
    Revoked,
    /// The VCEK's TCB extensions differ from the report's `reported_tcb`.
    SnpTcbMismatch,
    /// The VCEK's hwID differs from the report's `chip_id`.
    SnpChipIdMismatch,
    /// The guest runs with debugging enabled and the verifier does not allow it.
    Debug,
    /// DCAP quote verification failed (signatures, PCK chain, QE identity, TCB matching).
    QuoteVerification,
    /// The TDX/SGX collateral is expired or not yet valid at the verification time.
    CollateralExpired,
    /// No collateral was configured for a TDX/SGX quote.
    CollateralMissing,
    /// `nil` evidence is malformed (it is never attested either way).
    NilStructure,
    /// The evidence names a platform that the caller did not expect.
    PlatformMismatch,
}

impl Check {
    /// The stable, machine-readable name of the check (used in JSON errors and exit messages).
    pub fn as_str(self) -> &'static str {
        match self {
            Check::CsrSignature => "csr.signature",
            Check::KeyBinding => "key_binding",
            Check::SnpReportVersion => "snp.report_version",
            Check::SnpSignatureAlgorithm => "snp.signature_algorithm",
            Check::SnpReportSignature => "snp.report_signature",
            Check::SnpVekMissing => "snp.vek_missing",
            Check::SnpVekMalformed => "snp.vek_malformed",
            Check::SnpVekChain => "snp.vek_chain",
            Check::CertificateValidity => "certificate.validity",
            Check::CrlSignature => "crl.signature",
            Check::CrlExpired => "crl.expired",
            Check::Revoked => "crl.revoked",
            Check::SnpTcbMismatch => "snp.vek_tcb",
            Check::SnpChipIdMismatch => "snp.vek_chip_id",
            Check::Debug => "debug",
            Check::QuoteVerification => "quote.verification",
            Check::CollateralExpired => "quote.collateral_expired",
            Check::CollateralMissing => "quote.collateral_missing",
            Check::NilStructure => "nil.structure",
            Check::PlatformMismatch => "platform",
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Input that does not parse as what it claims to be.
    #[error("malformed {what}: {detail}")]
    Malformed { what: &'static str, detail: String },
    /// Input larger than the limit this crate accepts for it.
    #[error("{what} too large: {len} bytes (limit {limit})")]
    TooLarge {
        what: &'static str,
        len: usize,
        limit: usize,
    },
    /// Well-formed input of a kind this crate does not handle.
    #[error("unsupported {what}: {detail}")]
    Unsupported { what: &'static str, detail: String },
    /// A verification check refused the evidence.
    #[error("check `{check}` failed: {detail}")]
    Refused { check: Check, detail: String },
    /// Collecting evidence on this machine failed.
    #[error("cannot collect evidence: {0}")]
    Attester(String),
    /// Building a CSR or an extension failed.
    #[error("cannot encode {what}: {detail}")]
    Encode { what: &'static str, detail: String },
}

impl Error {
    pub(crate) fn malformed(what: &'static str, detail: &str) -> Self {
        Error::Malformed {
            what,
            detail: detail.to_owned(),
        }
    }

    pub(crate) fn refused(check: Check, detail: impl Into<String>) -> Self {
        Error::Refused {
            check,
            detail: detail.into(),
        }
    }

    /// The check that refused the evidence, if this is a refusal.
    pub fn check(&self) -> Option<Check> {
        match self {
            Error::Refused { check, .. } => Some(*check),
            _ => None,
        }
    }

    /// True for input this crate could not read at all (as opposed to a refusal).
    pub fn is_unreadable(&self) -> bool {
        matches!(
            self,
            Error::Malformed { .. } | Error::TooLarge { .. } | Error::Unsupported { .. }
        )
    }
}

pub(crate) fn limit(what: &'static str, len: usize, limit: usize) -> Result<(), Error> {
    if len > limit {
        Err(Error::TooLarge { what, len, limit })
    } else {
        Ok(())
    }
}

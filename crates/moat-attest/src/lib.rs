//! moat-attest: evidence, CSRs carrying it, offline verification, and the attestation result
//! carried in issued certificates.
//!
//! The flow, Keep to relying party:
//!
//! 1. The Keep generates a key and computes [`binding::report_data`] (SHA-384 of its DER
//!    SubjectPublicKeyInfo, with the Steward's nonce when one is offered).
//! 2. It collects [`Evidence`] binding that value from its platform (`attester`: configfs-tsm,
//!    `/dev/sev-guest`; or `nil`, which proves nothing).
//! 3. It builds a CSR with [`csr::build`]: PKCS#10 with the evidence in an `id-pe-cmw` extension.
//! 4. The Steward calls [`Verifier::verify_csr`]: CSR signature, evidence signatures and chains
//!    to the built-in AMD/Intel roots, validity dates, CRLs, TCB consistency, debug, key binding.
//!    It gets [`Claims`] and applies its own policy (allowed measurements, minimum TCB).
//! 5. It writes a small [`result::AttestationResult`] into the certificate; Drawbridge and
//!    `moat verify` read it back with [`result::decode_from_cert`].
//!
//! Trust roots are explicit: AMD's and Intel's are built in; a test root exists only with the
//! `test-roots` feature, under names that say so, and claims verified through one say so too.
//! `nil` evidence is never attested.

pub mod attester;
pub mod binding;
pub mod claims;
pub mod csr;
mod der;
pub mod error;
pub mod evidence;
pub mod quote;
pub mod result;
pub mod roots;
pub mod snp;
#[cfg(feature = "test-roots")]
pub mod test_roots;
pub mod verify;

pub use claims::{Claims, SgxClaims, SnpClaims, SnpSigningKey, SnpTcb, TdxClaims};
pub use error::{Check, Error};
pub use evidence::{Evidence, NilEvidence, Platform, QuoteEvidence, SnpEvidence};
pub use quote::Collateral;
pub use verify::{KeyBinding, VerifiedCsr, VerifiedEvidence, Verifier};

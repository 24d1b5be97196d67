//! Claims: the facts a verified piece of evidence establishes, in one platform-neutral shape with
//! a platform-specific part. Policy (which measurements, which TCB) is the Steward's; this module
//! only states what was verified. Byte strings are lower-case hex.

use serde::{Deserialize, Serialize};

use crate::Platform;

/// What verified evidence says about the Keep that produced it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub platform: Platform,
    /// True only when hardware evidence verified to a trust root. Always false for `nil`.
    pub attested: bool,
    /// The root the evidence chains to, e.g. `AMD ARK-Milan`, `Intel SGX Root CA`; `none` for
    /// `nil`; a name starting with `TEST-ONLY` for a test root.
    pub trust_root: String,
    /// True when the trust root is a test-only root configured explicitly.
    pub test_only_root: bool,
    /// The 64 bytes of `report_data`, hex.
    pub report_data: String,
    /// SNP launch measurement, TDX MRTD, or SGX MRENCLAVE (hex); `None` for `nil`.
    pub measurement: Option<String>,
    /// The guest can be debugged by the host (SNP policy bit 19, TD/enclave DEBUG attribute).
    pub debug: bool,
    /// A migration agent may be associated with the guest (SNP policy bit 18) or the TD is
    /// migratable.
    pub migration_agent: bool,
    /// TCB status from Intel's TCB info (`UpToDate`, `OutOfDate`, ...); `None` for SNP and nil.
    pub tcb_status: Option<String>,
    /// Intel security advisories that apply to the platform's TCB.
    pub advisories: Vec<String>,
    pub snp: Option<SnpClaims>,
    pub tdx: Option<TdxClaims>,
    pub sgx: Option<SgxClaims>,
}

/// An SNP TCB version, by component security patch level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnpTcb {
    pub bootloader: u8,
    pub tee: u8,
    pub snp: u8,
    pub microcode: u8,
    /// Firmware (FMC) SPL, Turin and later.
    pub fmc: Option<u8>,
}

/// Which key signed an SNP report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SnpSigningKey {
    /// Versioned Chip Endorsement Key: per chip, chained through the ASK.
    Vcek,
    /// Versioned Loaded Endorsement Key: per cloud provider, chained through the ASVK.
    Vlek,
}

/// SEV-SNP specifics.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnpClaims {
    pub report_version: u32,
    /// Product line of the chain: `Milan`, `Genoa`, `Turin` (or a test root's name).
    pub product: String,
    pub signing_key: SnpSigningKey,
    pub guest_svn: u32,
    /// The full 64-bit guest policy.
    pub policy: u64,
    pub policy_abi_major: u8,
    pub policy_abi_minor: u8,
    pub policy_smt_allowed: bool,
    pub vmpl: u32,
    pub reported_tcb: SnpTcb,
    pub current_tcb: SnpTcb,
    pub committed_tcb: SnpTcb,
    pub launch_tcb: SnpTcb,
    pub platform_info: u64,
    pub chip_id: String,
    pub host_data: String,
    pub id_key_digest: String,
    pub author_key_digest: String,
    pub family_id: String,
    pub image_id: String,
    pub report_id: String,
    pub report_id_ma: String,
}

/// TDX specifics.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TdxClaims {
    pub quote_version: u16,
    pub mrtd: String,
    pub rtmrs: [String; 4],
    pub mr_config_id: String,
    pub mr_owner: String,
    pub mr_owner_config: String,
    pub mr_seam: String,
    pub td_attributes: String,
    pub xfam: String,
    pub tee_tcb_svn: String,
}

/// SGX specifics.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SgxClaims {
    pub quote_version: u16,
    pub mr_enclave: String,
    pub mr_signer: String,
    pub isv_prod_id: u16,
    pub isv_svn: u16,
    pub attributes: String,
}

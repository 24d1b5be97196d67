//! Intel TDX and SGX (DCAP) quotes, verified offline by `dcap-qvl` against Intel's built-in root
//! with stored collateral (PCK CRLs, TCB info, QE identity: the JSON `moat steward collateral
//! import` stores). `dcap-qvl` refuses debug TDs/enclaves itself; this module maps its errors to
//! named checks (expired collateral apart from everything else) and extracts the claims.

use std::fmt;

use dcap_qvl::QuoteCollateralV3;
use dcap_qvl::quote::{Quote, Report};

use crate::claims::{Claims, SgxClaims, TdxClaims};
use crate::error::limit;
use crate::evidence::MAX_QUOTE_LEN;
use crate::roots::INTEL_ROOT_LABEL;
use crate::{Check, Error, Platform};

/// Largest collateral document accepted (real ones are ~40 KiB).
pub const MAX_COLLATERAL_LEN: usize = 1024 * 1024;

/// DCAP collateral for one platform family (FMSPC), as JSON.
#[derive(Clone)]
pub struct Collateral(pub(crate) QuoteCollateralV3);

impl fmt::Debug for Collateral {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Collateral").finish_non_exhaustive()
    }
}

impl Collateral {
    /// Parse collateral JSON (`QuoteCollateralV3` as `dcap-qvl` and the vectors store it).
    pub fn from_json(bytes: &[u8]) -> Result<Self, Error> {
        limit("collateral", bytes.len(), MAX_COLLATERAL_LEN)?;
        serde_json::from_slice(bytes)
            .map(Collateral)
            .map_err(|e| Error::malformed("collateral JSON", &e.to_string()))
    }

    /// The collateral as JSON (for storing it).
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&self.0).expect("collateral encodes")
    }

    /// The TCB info's `issueDate` and `nextUpdate` (RFC 3339), when readable.
    pub fn tcb_info_window(&self) -> Option<(String, String)> {
        let v: serde_json::Value = serde_json::from_str(&self.0.tcb_info).ok()?;
        Some((
            v.get("issueDate")?.as_str()?.to_owned(),
            v.get("nextUpdate")?.as_str()?.to_owned(),
        ))
    }
}

/// Parse a quote's framing (header, report body, auth data) without verifying it.
pub fn parse(quote: &[u8]) -> Result<Quote, Error> {
    limit("quote", quote.len(), MAX_QUOTE_LEN)?;
    Quote::parse(quote).map_err(|e| Error::malformed("DCAP quote", &format!("{e:#}")))
}

/// The quote's `report_data`.
pub fn report_data(quote: &Quote) -> [u8; 64] {
    match &quote.report {
        Report::SgxEnclave(r) => r.report_data,
        Report::TD10(r) => r.report_data,
        Report::TD15(r) => r.base.report_data,
        Report::TD15Ex(r) => r.base.base.report_data,
    }
}

fn classify(err: &dyn fmt::Display) -> Error {
    let text = format!("{err:#}");
    let lower = text.to_ascii_lowercase();
    let check = if lower.contains("expired")
        || lower.contains("in the future")
        || lower.contains("notvalidyet")
        || lower.contains("not valid yet")
        || lower.contains("certexpired")
    {
        Check::CollateralExpired
    } else if lower.contains("debug mode") {
        Check::Debug
    } else {
        Check::QuoteVerification
    };
    Error::refused(check, text)
}

/// Verify a quote against each collateral until one matches; claims on success.
pub(crate) fn verify(
    platform: Platform,
    raw: &[u8],
    collaterals: &[Collateral],
    now_secs: u64,
) -> Result<Claims, Error> {
    let parsed = parse(raw)?;
    match (platform, parsed.report.is_sgx()) {
        (Platform::Tdx, true) | (Platform::Sgx, false) => {
            return Err(Error::refused(
                Check::PlatformMismatch,
                format!("the quote is not a {platform} quote"),
            ));
        }
        _ => {}
    }
    if collaterals.is_empty() {
        return Err(Error::refused(
            Check::CollateralMissing,
            "no collateral configured for TDX/SGX quotes",
        ));
    }
    let verifier = dcap_qvl::verify::QuoteVerifier::new_prod();
    let mut first_err = None;
    let mut verified = None;
    for c in collaterals {
        match verifier.verify(raw, &c.0, now_secs) {
            Ok(v) => {
                verified = Some(v);
                break;
            }
            Err(e) => {
                first_err.get_or_insert_with(|| classify(&e));
            }
        }
    }
    let Some(verified) = verified else {
        return Err(first_err.expect("at least one collateral was tried"));
    };
    if verified.status == "Revoked" {
        return Err(Error::refused(
            Check::QuoteVerification,
            "TCB status is Revoked",
        ));
    }
    let rd = hex::encode(report_data(&parsed));
    let mut claims = Claims {
        platform,
        attested: true,
        trust_root: INTEL_ROOT_LABEL.into(),
        test_only_root: false,
        report_data: rd,
        measurement: None,
        debug: false,
        migration_agent: false,
        tcb_status: Some(verified.status.clone()),
        advisories: verified.advisory_ids.clone(),
        snp: None,
        tdx: None,
        sgx: None,
    };
    match &verified.report {
        Report::SgxEnclave(r) => {
            claims.measurement = Some(hex::encode(r.mr_enclave));
            claims.debug = r.attributes[0] & 0x02 != 0;
            claims.sgx = Some(SgxClaims {
                quote_version: parsed.header.version,
                mr_enclave: hex::encode(r.mr_enclave),
                mr_signer: hex::encode(r.mr_signer),
                isv_prod_id: r.isv_prod_id,
                isv_svn: r.isv_svn,
                attributes: hex::encode(r.attributes),
            });
        }
        other => {
            let td = match other {
                Report::TD10(r) => r,
                Report::TD15(r) => &r.base,
                Report::TD15Ex(r) => &r.base.base,
                Report::SgxEnclave(_) => unreachable!("handled above"),
            };
            claims.measurement = Some(hex::encode(td.mr_td));
            claims.debug = td.td_attributes[0] & 0x01 != 0;
            // TDX ATTRIBUTES bit 29: MIGRATABLE.
            claims.migration_agent = td.td_attributes[3] & 0x20 != 0;
            claims.tdx = Some(TdxClaims {
                quote_version: parsed.header.version,
                mrtd: hex::encode(td.mr_td),
                rtmrs: [
                    hex::encode(td.rt_mr0),
                    hex::encode(td.rt_mr1),
                    hex::encode(td.rt_mr2),
                    hex::encode(td.rt_mr3),
                ],
                mr_config_id: hex::encode(td.mr_config_id),
                mr_owner: hex::encode(td.mr_owner),
                mr_owner_config: hex::encode(td.mr_owner_config),
                mr_seam: hex::encode(td.mr_seam),
                td_attributes: hex::encode(td.td_attributes),
                xfam: hex::encode(td.xfam),
                tee_tcb_svn: hex::encode(td.tee_tcb_svn),
            });
        }
    }
    if claims.debug {
        // dcap-qvl refuses debug already; keep the invariant local too.
        return Err(Error::refused(Check::Debug, "the TD/enclave has DEBUG set"));
    }
    Ok(claims)
}

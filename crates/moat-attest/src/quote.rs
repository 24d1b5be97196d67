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

/// Intel's SGX/TDX root CA (public certificate), the only root quotes are verified against.
pub const INTEL_ROOT_DER: &[u8] = include_bytes!("roots/intel_sgx_root_ca.der");

/// Refuse slack the signatures do not cover: bytes after the declared auth data, a PCK chain
/// that is not canonical PEM, or a chain whose root is not Intel's (`dcap-qvl` anchors at its
/// own copy of the root and would not notice a changed copy in the quote).
fn check_unsigned_parts(raw: &[u8], quote: &Quote) -> Result<(), Error> {
    let signed = quote.signed_length();
    let auth_len = raw
        .get(signed..signed + 4)
        .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize)
        .ok_or_else(|| Error::malformed("DCAP quote", "no auth data length"))?;
    // Quote-generation services may pad the buffer with zeros; anything else is refused.
    let end = signed + 4 + auth_len;
    if end > raw.len() || raw[end..].iter().any(|b| *b != 0) {
        return Err(Error::malformed(
            "DCAP quote",
            &format!(
                "auth data declares {auth_len} bytes; {} follow, not all zero padding",
                raw.len() - signed - 4
            ),
        ));
    }
    let chain = quote.raw_cert_chain().map_err(|e| Error::Unsupported {
        what: "quote certification data",
        detail: format!("{e:#}"),
    })?;
    // The certification data is the last thing in the auth data: its declared size and bytes
    // must end exactly where the auth data does.
    let chain_start = end.checked_sub(chain.len());
    let framed = chain_start
        .and_then(|start| Some((start, start.checked_sub(4)?)))
        .is_some_and(|(start, size_at)| {
            raw[start..end] == *chain && raw[size_at..start] == (chain.len() as u32).to_le_bytes()
        });
    if !framed {
        return Err(Error::malformed(
            "DCAP quote",
            "the auth data length does not end at the certification data",
        ));
    }
    let mut ders = Vec::new();
    for pem in x509_parser::pem::Pem::iter_from_buffer(chain) {
        let pem = pem.map_err(|e| Error::malformed("PCK chain PEM", &e.to_string()))?;
        ders.push(pem.contents);
    }
    let mut canonical = String::new();
    for der in &ders {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        canonical.push_str("-----BEGIN CERTIFICATE-----\n");
        for line in b64.as_bytes().chunks(64) {
            canonical.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
            canonical.push('\n');
        }
        canonical.push_str("-----END CERTIFICATE-----\n");
    }
    let trimmed = chain.strip_suffix(&[0u8]).unwrap_or(chain);
    if trimmed != canonical.as_bytes() {
        return Err(Error::refused(
            Check::QuoteVerification,
            "the PCK chain in the quote is not canonical PEM",
        ));
    }
    if ders.last().map(Vec::as_slice) != Some(INTEL_ROOT_DER) {
        return Err(Error::refused(
            Check::QuoteVerification,
            "the quote's PCK chain does not end at Intel's root CA",
        ));
    }
    Ok(())
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
    check_unsigned_parts(raw, &parsed)?;
    let verifier = dcap_qvl::verify::QuoteVerifier::new(INTEL_ROOT_DER.to_vec());
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

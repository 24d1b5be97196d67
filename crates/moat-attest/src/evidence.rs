//! Evidence: what a Keep presents about its platform, as bytes the platform produced, and the
//! Moat evidence file / CSR encoding, a CMW collection (`draft-ietf-rats-msg-wrap`, JSON form).
//!
//! A Moat evidence CMW is a JSON object:
//!
//! ```json
//! { "__cmwc_t": "tag:example.invalid,2026:moat/evidence/v1",
//!   "evidence": ["application/vnd.moat.snp-report", "<base64url>"],
//!   "vek":      ["application/pkix-cert", "<base64url DER>"],
//!   "crl.0":    ["application/pkix-crl", "<base64url DER>"],
//!   "nonce":    ["application/vnd.moat.nonce", "<base64url>"] }
//! ```
//!
//! `evidence` is always present; its media type names the platform (see the `MEDIA_*`
//! constants). The same JSON is the content of `moat evidence` files and of the CSR extension
//! `id-pe-cmw` (as a DER `UTF8String`).

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::error::{Error, limit};

/// Size of an SEV-SNP attestation report (ABI spec 56860, table 22).
pub const SNP_REPORT_LEN: usize = 0x4a0;
/// Largest DCAP quote accepted (real quotes with a PCK chain are 5-8 KiB).
pub const MAX_QUOTE_LEN: usize = 64 * 1024;
/// Largest VCEK/VLEK certificate accepted (real ones are ~1.4 KiB).
pub const MAX_VEK_LEN: usize = 16 * 1024;
/// Largest CRL accepted, and how many may ride along.
pub const MAX_CRL_LEN: usize = 64 * 1024;
pub const MAX_CRLS: usize = 4;
/// Largest nonce accepted.
pub const MAX_NONCE_LEN: usize = 64;
/// Largest evidence CMW document accepted.
pub const MAX_CMW_LEN: usize = 512 * 1024;

/// The CMW collection type of Moat evidence.
pub const CMW_COLLECTION_TYPE: &str = "tag:example.invalid,2026:moat/evidence/v1";
pub const MEDIA_NIL: &str = "application/vnd.moat.nil-evidence";
pub const MEDIA_SNP_REPORT: &str = "application/vnd.moat.snp-report";
pub const MEDIA_TDX_QUOTE: &str = "application/vnd.moat.tdx-quote";
pub const MEDIA_SGX_QUOTE: &str = "application/vnd.moat.sgx-quote";
pub const MEDIA_CERT: &str = "application/pkix-cert";
pub const MEDIA_CRL: &str = "application/pkix-crl";
pub const MEDIA_NONCE: &str = "application/vnd.moat.nonce";

/// A platform a Keep can run on (and whose evidence this crate verifies).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    /// A plain process: no hardware evidence, never attested.
    Nil,
    /// AMD SEV-SNP confidential VM.
    Snp,
    /// Intel TDX trust domain.
    Tdx,
    /// Intel SGX enclave (verification only: Enarx's SGX CSRs).
    Sgx,
}

impl Platform {
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Nil => "nil",
            Platform::Snp => "snp",
            Platform::Tdx => "tdx",
            Platform::Sgx => "sgx",
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Platform {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.to_ascii_lowercase().as_str() {
            "nil" => Ok(Platform::Nil),
            "snp" => Ok(Platform::Snp),
            "tdx" => Ok(Platform::Tdx),
            "sgx" => Ok(Platform::Sgx),
            other => Err(Error::Unsupported {
                what: "platform",
                detail: format!("`{other}` (expected nil, snp, tdx or sgx)"),
            }),
        }
    }
}

/// `nil` evidence: the 64 bytes a Keep would have put in `report_data`, signed by nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NilEvidence {
    /// The binding value; `None` for Enarx's nil (KVM) CSRs, which carry none.
    pub report_data: Option<[u8; 64]>,
}

/// SEV-SNP evidence: the report and the endorsement key that signed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnpEvidence {
    /// The raw 1184-byte attestation report.
    pub report: Vec<u8>,
    /// DER VCEK or VLEK certificate (the Steward may also supply one from its cache).
    pub vek: Option<Vec<u8>>,
    /// DER CRLs for the chain (AMD's KDS CRL per product line), optional.
    pub crls: Vec<Vec<u8>>,
}

/// A DCAP quote (TDX v4/v5 or SGX v3), including its PCK chain in the certification data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuoteEvidence {
    pub quote: Vec<u8>,
}

/// Evidence from one platform.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Evidence {
    Nil(NilEvidence),
    Snp(SnpEvidence),
    Tdx(QuoteEvidence),
    Sgx(QuoteEvidence),
}

impl Evidence {
    /// `nil` evidence binding `report_data`.
    pub fn nil(report_data: [u8; 64]) -> Self {
        Evidence::Nil(NilEvidence {
            report_data: Some(report_data),
        })
    }

    pub fn platform(&self) -> Platform {
        match self {
            Evidence::Nil(_) => Platform::Nil,
            Evidence::Snp(_) => Platform::Snp,
            Evidence::Tdx(_) => Platform::Tdx,
            Evidence::Sgx(_) => Platform::Sgx,
        }
    }

    /// The 64 bytes of `report_data` the evidence carries (structurally read, not verified).
    pub fn report_data(&self) -> Result<Option<[u8; 64]>, Error> {
        match self {
            Evidence::Nil(n) => Ok(n.report_data),
            Evidence::Snp(s) => {
                check_snp_len(&s.report)?;
                let mut out = [0u8; 64];
                out.copy_from_slice(&s.report[0x50..0x90]);
                Ok(Some(out))
            }
            Evidence::Tdx(q) | Evidence::Sgx(q) => {
                let parsed = crate::quote::parse(&q.quote)?;
                Ok(Some(crate::quote::report_data(&parsed)))
            }
        }
    }

    /// Check sizes and platform-specific framing without verifying anything.
    pub fn check_structure(&self) -> Result<(), Error> {
        match self {
            Evidence::Nil(_) => Ok(()),
            Evidence::Snp(s) => {
                check_snp_len(&s.report)?;
                if let Some(vek) = &s.vek {
                    limit("VCEK/VLEK certificate", vek.len(), MAX_VEK_LEN)?;
                }
                limit("CRL list", s.crls.len(), MAX_CRLS)?;
                for crl in &s.crls {
                    limit("CRL", crl.len(), MAX_CRL_LEN)?;
                }
                Ok(())
            }
            Evidence::Tdx(q) | Evidence::Sgx(q) => {
                let parsed = crate::quote::parse(&q.quote)?;
                let is_sgx = parsed.report.is_sgx();
                match (self, is_sgx) {
                    (Evidence::Tdx(_), true) => Err(Error::malformed(
                        "TDX evidence",
                        "the quote is an SGX quote",
                    )),
                    (Evidence::Sgx(_), false) => {
                        Err(Error::malformed("SGX evidence", "the quote is a TDX quote"))
                    }
                    _ => Ok(()),
                }
            }
        }
    }

    /// Encode as a Moat evidence CMW (JSON), with the nonce the binding used, if any.
    pub fn to_cmw_json(&self, nonce: Option<&[u8]>) -> Vec<u8> {
        let mut map = serde_json::Map::new();
        map.insert("__cmwc_t".into(), CMW_COLLECTION_TYPE.into());
        let record = |media: &str, bytes: &[u8]| {
            serde_json::Value::Array(vec![media.into(), URL_SAFE_NO_PAD.encode(bytes).into()])
        };
        match self {
            Evidence::Nil(n) => {
                let rd = n.report_data.map(|r| r.to_vec()).unwrap_or_default();
                map.insert("evidence".into(), record(MEDIA_NIL, &rd));
            }
            Evidence::Snp(s) => {
                map.insert("evidence".into(), record(MEDIA_SNP_REPORT, &s.report));
                if let Some(vek) = &s.vek {
                    map.insert("vek".into(), record(MEDIA_CERT, vek));
                }
                for (i, crl) in s.crls.iter().enumerate() {
                    map.insert(format!("crl.{i}"), record(MEDIA_CRL, crl));
                }
            }
            Evidence::Tdx(q) => {
                map.insert("evidence".into(), record(MEDIA_TDX_QUOTE, &q.quote));
            }
            Evidence::Sgx(q) => {
                map.insert("evidence".into(), record(MEDIA_SGX_QUOTE, &q.quote));
            }
        }
        if let Some(nonce) = nonce {
            map.insert("nonce".into(), record(MEDIA_NONCE, nonce));
        }
        serde_json::to_vec(&serde_json::Value::Object(map)).expect("JSON of strings encodes")
    }

    /// Decode a Moat evidence CMW (JSON): the evidence and the nonce it declares.
    pub fn from_cmw_json(bytes: &[u8]) -> Result<(Evidence, Option<Vec<u8>>), Error> {
        const WHAT: &str = "evidence CMW";
        limit(WHAT, bytes.len(), MAX_CMW_LEN)?;
        let value: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| Error::malformed(WHAT, &format!("not JSON: {e}")))?;
        let map = value
            .as_object()
            .ok_or_else(|| Error::malformed(WHAT, "not a CMW collection (JSON object)"))?;
        match map.get("__cmwc_t").and_then(|v| v.as_str()) {
            Some(CMW_COLLECTION_TYPE) => {}
            Some(other) => {
                return Err(Error::Unsupported {
                    what: "CMW collection type",
                    detail: other.chars().take(100).collect(),
                });
            }
            None => return Err(Error::malformed(WHAT, "missing `__cmwc_t`")),
        }
        let mut evidence = None;
        let mut vek = None;
        let mut crls = Vec::new();
        let mut nonce = None;
        for (label, item) in map {
            if label == "__cmwc_t" {
                continue;
            }
            let (media, data) = decode_record(item)?;
            match (label.as_str(), media.as_str()) {
                ("evidence", _) => evidence = Some((media, data)),
                ("vek", MEDIA_CERT) => vek = Some(data),
                (l, MEDIA_CRL) if l.starts_with("crl.") => {
                    crls.push((l.to_owned(), data));
                }
                ("nonce", MEDIA_NONCE) => {
                    limit("nonce", data.len(), MAX_NONCE_LEN)?;
                    nonce = Some(data)
                }
                (l, m) => {
                    return Err(Error::malformed(
                        WHAT,
                        &format!(
                            "unexpected entry `{}` of type `{}`",
                            l.chars().take(64).collect::<String>(),
                            m.chars().take(64).collect::<String>()
                        ),
                    ));
                }
            }
        }
        crls.sort();
        let crls: Vec<Vec<u8>> = crls.into_iter().map(|(_, d)| d).collect();
        let (media, data) = evidence.ok_or_else(|| Error::malformed(WHAT, "no `evidence`"))?;
        // Only SNP evidence carries certificates beside it; anything else is confusion.
        if media != MEDIA_SNP_REPORT && (vek.is_some() || !crls.is_empty()) {
            return Err(Error::malformed(
                WHAT,
                "certificates beside non-SNP evidence",
            ));
        }
        let evidence = match media.as_str() {
            MEDIA_NIL => {
                let report_data = match data.len() {
                    0 => None,
                    64 => Some(data.try_into().expect("64 bytes")),
                    n => {
                        return Err(Error::refused(
                            crate::Check::NilStructure,
                            format!("nil evidence holds {n} bytes, expected 0 or 64"),
                        ));
                    }
                };
                Evidence::Nil(NilEvidence { report_data })
            }
            MEDIA_SNP_REPORT => Evidence::Snp(SnpEvidence {
                report: data,
                vek,
                crls,
            }),
            MEDIA_TDX_QUOTE => Evidence::Tdx(QuoteEvidence { quote: data }),
            MEDIA_SGX_QUOTE => Evidence::Sgx(QuoteEvidence { quote: data }),
            other => {
                return Err(Error::Unsupported {
                    what: "evidence media type",
                    detail: other.chars().take(100).collect(),
                });
            }
        };
        evidence.check_structure()?;
        Ok((evidence, nonce))
    }
}

fn check_snp_len(report: &[u8]) -> Result<(), Error> {
    if report.len() != SNP_REPORT_LEN {
        return Err(Error::malformed(
            "SNP report",
            &format!("{} bytes, expected {SNP_REPORT_LEN}", report.len()),
        ));
    }
    Ok(())
}

fn decode_record(item: &serde_json::Value) -> Result<(String, Vec<u8>), Error> {
    const WHAT: &str = "CMW record";
    let arr = item
        .as_array()
        .ok_or_else(|| Error::malformed(WHAT, "not a [type, value] array"))?;
    if arr.len() != 2 && arr.len() != 3 {
        return Err(Error::malformed(
            WHAT,
            "expected [type, value] or [type, value, ind]",
        ));
    }
    let media = arr[0]
        .as_str()
        .ok_or_else(|| Error::malformed(WHAT, "type is not a string"))?;
    let value = arr[1]
        .as_str()
        .ok_or_else(|| Error::malformed(WHAT, "value is not a base64url string"))?;
    let data = URL_SAFE_NO_PAD
        .decode(value.trim_end_matches('='))
        .map_err(|e| Error::malformed(WHAT, &format!("bad base64url: {e}")))?;
    Ok((media.to_owned(), data))
}

//! CSRs carrying evidence: PKCS#10 requests whose extension request holds the evidence.
//!
//! Moat's format puts the evidence CMW (see [`crate::evidence`]) in the standard extension
//! `id-pe-cmw` (1.3.6.1.5.5.7.1.35) as a DER `UTF8String`, and the workload the Keep asks to
//! be certified for as a URI subjectAltName. Enarx's format is also read: evidence under
//! `1.3.6.1.4.1.58270.1.{1,2,3}` (nil/KVM, SGX, SNP), SNP as DER
//! `SEQUENCE { SEQUENCE { VCEK, CRLs }, OCTET STRING report }`.
//!
//! CSRs are built with `rcgen` and parsed with `x509-parser` (`rcgen` refuses unknown
//! extensions when parsing).

use rcgen::{CertificateParams, CustomExtension, DistinguishedName, KeyPair, SanType};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::cri_attributes::ParsedCriAttribute;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;

use crate::der;
use crate::error::limit;
use crate::evidence::{Evidence, NilEvidence, QuoteEvidence, SnpEvidence};
use crate::{Check, Error};

/// `id-pe-cmw`: the conceptual-message-wrapper certificate extension.
pub const OID_CMW: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 1, 35];
const OID_CMW_STR: &str = "1.3.6.1.5.5.7.1.35";
const OID_ENARX_NIL: &str = "1.3.6.1.4.1.58270.1.1";
const OID_ENARX_SGX: &str = "1.3.6.1.4.1.58270.1.2";
const OID_ENARX_SNP: &str = "1.3.6.1.4.1.58270.1.3";

/// Largest CSR accepted (Enarx's SGX requests are ~14 KiB; SNP with CRLs ~5 KiB).
pub const MAX_CSR_LEN: usize = 256 * 1024;

/// Which format the CSR used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CsrFormat {
    /// Evidence in an `id-pe-cmw` extension.
    Moat,
    /// Evidence under Enarx's private OIDs.
    Enarx,
}

/// A CSR whose signature verified, with its evidence extracted (not yet verified).
#[derive(Clone, Debug)]
pub struct ParsedCsr {
    pub format: CsrFormat,
    /// DER SubjectPublicKeyInfo of the requested key.
    pub spki_der: Vec<u8>,
    pub evidence: Evidence,
    /// The nonce the Keep declares it folded into `report_data`.
    pub nonce: Option<Vec<u8>>,
    /// URI subjectAltNames requested (the workload name).
    pub uris: Vec<String>,
    /// DNS subjectAltNames requested.
    pub dns_names: Vec<String>,
    /// IP address subjectAltNames requested.
    pub ip_addresses: Vec<std::net::IpAddr>,
    /// The requested subject, as text.
    pub subject: String,
}

/// Build a Moat CSR (DER) signed by `key`, carrying `evidence` (whose `report_data` should be
/// [`crate::binding::report_data`] of `key` and `nonce`) and asking for `workload` as URI SAN.
pub fn build(
    key: &KeyPair,
    evidence: &Evidence,
    nonce: Option<&[u8]>,
    workload: Option<&str>,
) -> Result<Vec<u8>, Error> {
    build_with_names(key, evidence, nonce, workload, &[])
}

/// [`build`], also asking for `server_names` (DNS names or IP addresses) as subjectAltNames, so
/// that ordinary TLS clients can check the Keep's certificate against the name they dialled.
pub fn build_with_names(
    key: &KeyPair,
    evidence: &Evidence,
    nonce: Option<&[u8]>,
    workload: Option<&str>,
    server_names: &[String],
) -> Result<Vec<u8>, Error> {
    let enc = |detail: String| Error::Encode {
        what: "CSR",
        detail,
    };
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    if let Some(uri) = workload {
        let uri = uri
            .to_owned()
            .try_into()
            .map_err(|e| enc(format!("workload URI: {e}")))?;
        params.subject_alt_names.push(SanType::URI(uri));
    }
    for name in server_names {
        let san = match name.parse::<std::net::IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(
                name.clone()
                    .try_into()
                    .map_err(|e| enc(format!("server name {name:?}: {e}")))?,
            ),
        };
        params.subject_alt_names.push(san);
    }
    let cmw = evidence.to_cmw_json(nonce);
    params
        .custom_extensions
        .push(CustomExtension::from_oid_content(
            OID_CMW,
            der::write(der::TAG_UTF8_STRING, &cmw),
        ));
    let csr = params
        .serialize_request(key)
        .map_err(|e| enc(e.to_string()))?;
    Ok(csr.der().to_vec())
}

/// Accept DER or PEM (`CERTIFICATE REQUEST` / `NEW CERTIFICATE REQUEST`).
fn to_der(input: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>, Error> {
    limit("CSR", input.len(), MAX_CSR_LEN)?;
    let trimmed = input.trim_ascii_start();
    if !trimmed.starts_with(b"-----BEGIN") {
        return Ok(std::borrow::Cow::Borrowed(input));
    }
    let (_, pem) = x509_parser::pem::parse_x509_pem(trimmed)
        .map_err(|e| Error::malformed("CSR PEM", &e.to_string()))?;
    if pem.label != "CERTIFICATE REQUEST" && pem.label != "NEW CERTIFICATE REQUEST" {
        return Err(Error::malformed(
            "CSR PEM",
            &format!("label `{}` is not CERTIFICATE REQUEST", pem.label),
        ));
    }
    Ok(std::borrow::Cow::Owned(pem.contents))
}

/// Parse a CSR, check its self-signature, extract its evidence. The evidence itself is not
/// verified here: see [`crate::Verifier::verify_csr`].
pub fn parse(input: &[u8]) -> Result<ParsedCsr, Error> {
    let der_bytes = to_der(input)?;
    der::signed("CSR", &der_bytes)?;
    let (rest, csr) = X509CertificationRequest::from_der(&der_bytes)
        .map_err(|e| Error::malformed("CSR", &e.to_string()))?;
    if !rest.is_empty() {
        return Err(Error::malformed("CSR", "trailing bytes after the request"));
    }
    csr.verify_signature()
        .map_err(|e| Error::refused(Check::CsrSignature, e.to_string()))?;
    let info = &csr.certification_request_info;

    let mut found: Vec<(CsrFormat, Evidence, Option<Vec<u8>>)> = Vec::new();
    let mut uris = Vec::new();
    let mut dns_names = Vec::new();
    let mut ip_addresses = Vec::new();
    for attr in info.iter_attributes() {
        let ParsedCriAttribute::ExtensionRequest(req) = attr.parsed_attribute() else {
            continue;
        };
        for ext in &req.extensions {
            match ext.oid.to_id_string().as_str() {
                OID_CMW_STR => {
                    let tlv = der::read_only("CMW extension", der::TAG_UTF8_STRING, ext.value)?;
                    let (ev, nonce) = Evidence::from_cmw_json(tlv.value)?;
                    found.push((CsrFormat::Moat, ev, nonce));
                }
                OID_ENARX_NIL => found.push((
                    CsrFormat::Enarx,
                    Evidence::Nil(NilEvidence { report_data: None }),
                    None,
                )),
                OID_ENARX_SGX => found.push((CsrFormat::Enarx, enarx_sgx(ext.value)?, None)),
                OID_ENARX_SNP => found.push((CsrFormat::Enarx, enarx_snp(ext.value)?, None)),
                _ => {
                    if let ParsedExtension::SubjectAlternativeName(san) = ext.parsed_extension() {
                        for name in &san.general_names {
                            match name {
                                GeneralName::URI(u) => uris.push((*u).to_owned()),
                                GeneralName::DNSName(d) => dns_names.push((*d).to_owned()),
                                GeneralName::IPAddress(bytes) => {
                                    ip_addresses.push(ip_from_san(bytes)?)
                                }
                                _ => {}
                            }
                        }
                    } else if ext.critical {
                        return Err(Error::Unsupported {
                            what: "critical CSR extension",
                            detail: ext.oid.to_id_string(),
                        });
                    }
                }
            }
        }
    }
    if found.len() > 1 {
        return Err(Error::malformed("CSR", "more than one evidence extension"));
    }
    let (format, evidence, nonce) = found
        .pop()
        .ok_or_else(|| Error::malformed("CSR", "no evidence extension"))?;
    Ok(ParsedCsr {
        format,
        spki_der: info.subject_pki.raw.to_vec(),
        evidence,
        nonce,
        uris,
        dns_names,
        ip_addresses,
        subject: info.subject.to_string(),
    })
}

/// An iPAddress subjectAltName: 4 or 16 bytes (a CSR asks for addresses, not ranges).
fn ip_from_san(bytes: &[u8]) -> Result<std::net::IpAddr, Error> {
    match bytes.len() {
        4 => Ok(<[u8; 4]>::try_from(bytes)
            .map(std::net::IpAddr::from)
            .unwrap()),
        16 => Ok(<[u8; 16]>::try_from(bytes)
            .map(std::net::IpAddr::from)
            .unwrap()),
        n => Err(Error::malformed(
            "CSR subjectAltName",
            &format!("an IP address of {n} bytes"),
        )),
    }
}

/// Enarx SNP: `SEQUENCE { SEQUENCE { vcek Certificate, crls }, report OCTET STRING }`, where
/// `crls` nests `SEQUENCE { url UTF8String, crl CertificateList }` entries.
fn enarx_snp(value: &[u8]) -> Result<Evidence, Error> {
    const WHAT: &str = "Enarx SNP evidence";
    let outer = der::read_only(WHAT, der::TAG_SEQUENCE, value)?;
    let parts = der::children(WHAT, outer.value)?;
    let [certs, report] = parts.as_slice() else {
        return Err(Error::malformed(WHAT, "expected { certificates, report }"));
    };
    if certs.tag != der::TAG_SEQUENCE || report.tag != der::TAG_OCTET_STRING {
        return Err(Error::malformed(
            WHAT,
            "expected { SEQUENCE, OCTET STRING }",
        ));
    }
    let cert_parts = der::children(WHAT, certs.value)?;
    let (vek, crl_part) = match cert_parts.as_slice() {
        [vek] => (vek, None),
        [vek, crls] => (vek, Some(crls)),
        _ => return Err(Error::malformed(WHAT, "expected { VCEK, CRLs }")),
    };
    let mut crls = Vec::new();
    if let Some(part) = crl_part {
        collect_enarx_crls(part, 0, &mut crls)?;
    }
    let ev = Evidence::Snp(SnpEvidence {
        report: report.value.to_vec(),
        vek: Some(vek.raw.to_vec()),
        crls,
    });
    ev.check_structure()?;
    Ok(ev)
}

fn collect_enarx_crls(tlv: &der::Tlv<'_>, depth: u8, out: &mut Vec<Vec<u8>>) -> Result<(), Error> {
    const WHAT: &str = "Enarx SNP CRLs";
    if depth > 3 || tlv.tag != der::TAG_SEQUENCE {
        return Err(Error::malformed(WHAT, "unexpected structure"));
    }
    let kids = der::children(WHAT, tlv.value)?;
    match kids.as_slice() {
        [url, crl] if url.tag == der::TAG_UTF8_STRING && crl.tag == der::TAG_SEQUENCE => {
            if out.len() >= crate::evidence::MAX_CRLS {
                return Err(Error::malformed(WHAT, "too many CRLs"));
            }
            out.push(crl.raw.to_vec());
            Ok(())
        }
        _ => {
            for kid in &kids {
                collect_enarx_crls(kid, depth + 1, out)?;
            }
            Ok(())
        }
    }
}

/// Enarx SGX: `SEQUENCE { quote OCTET STRING, ... }` (the collateral Enarx appended is not used:
/// Moat verifies with the collateral it was configured with).
fn enarx_sgx(value: &[u8]) -> Result<Evidence, Error> {
    const WHAT: &str = "Enarx SGX evidence";
    let outer = der::read_only(WHAT, der::TAG_SEQUENCE, value)?;
    let parts = der::children(WHAT, outer.value)?;
    let quote = parts
        .first()
        .filter(|t| t.tag == der::TAG_OCTET_STRING)
        .ok_or_else(|| Error::malformed(WHAT, "expected the quote first"))?;
    let ev = Evidence::Sgx(QuoteEvidence {
        quote: quote.value.to_vec(),
    });
    ev.check_structure()?;
    Ok(ev)
}

//! SEV-SNP verification: the report is parsed with the `sev` crate; the chain, the report
//! signature and everything `sev` leaves out are checked here:
//!
//! - VEK → ASK (VCEK) or ASVK (VLEK) → ARK signatures, against the built-in AMD roots;
//! - validity dates of every certificate at the verification time;
//! - CRLs when present: signed by the chain's ARK, not stale, no chain certificate revoked;
//! - the report signature over the raw signed bytes (not a re-encoding, so reserved bytes count);
//! - VEK TCB extensions equal to the report's `reported_tcb`; VCEK hwID equal to `chip_id`;
//! - report version 2, 3 or 5; signature algorithm ECDSA P-384/SHA-384; debug policy.

use sev::firmware::guest::AttestationReport;
use sev::parser::ByteParser;
use x509_parser::prelude::*;

use crate::claims::{Claims, SnpClaims, SnpSigningKey, SnpTcb};
use crate::der;
use crate::evidence::{SNP_REPORT_LEN, SnpEvidence};
use crate::roots::AmdRoot;
use crate::{Check, Error, Platform};

/// Offsets in the report (ABI spec 56860, table 22).
const SIGNED_LEN: usize = 0x2a0;
const SIGNATURE_OFFSET: usize = 0x2a0;
const REPORTED_TCB_OFFSET: usize = 0x180;
const CURRENT_TCB_OFFSET: usize = 0x38;
const COMMITTED_TCB_OFFSET: usize = 0x1c0;
const LAUNCH_TCB_OFFSET: usize = 0x1f0;
const POLICY_DEBUG: u64 = 1 << 19;
const POLICY_MIGRATE_MA: u64 = 1 << 18;
const POLICY_SMT: u64 = 1 << 16;

/// AMD's VCEK/VLEK extension OIDs (VCEK spec 57230, table 8).
const OID_BL_SPL: &str = "1.3.6.1.4.1.3704.1.3.1";
const OID_TEE_SPL: &str = "1.3.6.1.4.1.3704.1.3.2";
const OID_SNP_SPL: &str = "1.3.6.1.4.1.3704.1.3.3";
const OID_UCODE_SPL: &str = "1.3.6.1.4.1.3704.1.3.8";
const OID_FMC_SPL: &str = "1.3.6.1.4.1.3704.1.3.9";
const OID_HWID: &str = "1.3.6.1.4.1.3704.1.4";

/// What the SNP verifier needs from the caller.
pub(crate) struct SnpContext<'a> {
    pub roots: &'a [AmdRoot],
    pub at: ASN1Time,
    pub allow_debug: bool,
}

/// Decode a TCB version from its 8 raw bytes (layout differs from Turin on).
pub fn decode_tcb(raw: [u8; 8], turin: bool) -> SnpTcb {
    if turin {
        SnpTcb {
            fmc: Some(raw[0]),
            bootloader: raw[1],
            tee: raw[2],
            snp: raw[3],
            microcode: raw[7],
        }
    } else {
        SnpTcb {
            fmc: None,
            bootloader: raw[0],
            tee: raw[1],
            snp: raw[6],
            microcode: raw[7],
        }
    }
}

fn tcb_at(report: &[u8], offset: usize, turin: bool) -> SnpTcb {
    decode_tcb(
        report[offset..offset + 8].try_into().expect("8 bytes"),
        turin,
    )
}

/// Parse a raw report (exactly 1184 bytes) with the `sev` crate.
pub fn parse_report(report: &[u8]) -> Result<AttestationReport, Error> {
    if report.len() != SNP_REPORT_LEN {
        return Err(Error::malformed(
            "SNP report",
            &format!("{} bytes, expected {SNP_REPORT_LEN}", report.len()),
        ));
    }
    AttestationReport::from_bytes(report)
        .map_err(|e| Error::malformed("SNP report", &e.to_string()))
}

fn name_eq(a: &X509Name<'_>, b: &X509Name<'_>) -> bool {
    a.as_raw() == b.as_raw()
}

fn check_validity(cert: &X509Certificate<'_>, at: ASN1Time, role: &str) -> Result<(), Error> {
    let v = cert.validity();
    if at < v.not_before || at > v.not_after {
        return Err(Error::refused(
            Check::CertificateValidity,
            format!(
                "{role} `{}` is valid from {} to {}, not at {}",
                cert.subject(),
                v.not_before,
                v.not_after,
                at
            ),
        ));
    }
    Ok(())
}

/// Find the extension value with this dotted OID.
fn ext_value<'a>(cert: &'a X509Certificate<'_>, oid: &str) -> Option<&'a [u8]> {
    cert.extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == oid)
        .map(|e| e.value)
}

fn ext_spl(cert: &X509Certificate<'_>, oid: &str, name: &str) -> Result<Option<u8>, Error> {
    let Some(value) = ext_value(cert, oid) else {
        return Ok(None);
    };
    let tlv = der::read_only("VEK TCB extension", der::TAG_INTEGER, value)
        .map_err(|e| Error::refused(Check::SnpVekMalformed, format!("{name}: {e}")))?;
    let v = der::small_uint("VEK TCB extension", &tlv)
        .map_err(|e| Error::refused(Check::SnpVekMalformed, format!("{name}: {e}")))?;
    u8::try_from(v)
        .map(Some)
        .map_err(|_| Error::refused(Check::SnpVekMalformed, format!("{name} SPL {v} > 255")))
}

/// The TCB the VEK certifies (its `1.3.6.1.4.1.3704.1.3.*` extensions).
fn vek_tcb(cert: &X509Certificate<'_>) -> Result<SnpTcb, Error> {
    let need = |oid, name| {
        ext_spl(cert, oid, name)?.ok_or_else(|| {
            Error::refused(
                Check::SnpVekMalformed,
                format!("VEK has no {name} SPL extension ({oid})"),
            )
        })
    };
    Ok(SnpTcb {
        bootloader: need(OID_BL_SPL, "bootloader")?,
        tee: need(OID_TEE_SPL, "TEE")?,
        snp: need(OID_SNP_SPL, "SNP")?,
        microcode: need(OID_UCODE_SPL, "microcode")?,
        fmc: ext_spl(cert, OID_FMC_SPL, "FMC")?,
    })
}

/// Verify the report's ECDSA P-384 signature over its raw signed bytes.
pub(crate) fn verify_report_signature(report: &[u8], vek_sec1: &[u8]) -> Result<(), Error> {
    let sig = &report[SIGNATURE_OFFSET..SIGNATURE_OFFSET + 144];
    // The rest of the signature field is reserved (must be zero); checking it means no byte of
    // the report can change without verification noticing.
    if report[SIGNATURE_OFFSET + 144..].iter().any(|b| *b != 0) {
        return Err(Error::refused(
            Check::SnpReportSignature,
            "reserved bytes of the signature field are not zero",
        ));
    }
    // r and s are 72-byte little-endian fields; P-384 values fill the low 48 bytes.
    let (r, s) = sig.split_at(72);
    if r[48..].iter().any(|b| *b != 0) || s[48..].iter().any(|b| *b != 0) {
        return Err(Error::refused(
            Check::SnpReportSignature,
            "signature components exceed 384 bits",
        ));
    }
    let mut fixed = [0u8; 96];
    for i in 0..48 {
        fixed[i] = r[47 - i];
        fixed[48 + i] = s[47 - i];
    }
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P384_SHA384_FIXED, vek_sec1)
        .verify(&report[..SIGNED_LEN], &fixed)
        .map_err(|_| {
            Error::refused(
                Check::SnpReportSignature,
                "the VEK does not sign this report",
            )
        })
}

struct ChainMatch<'r> {
    root: &'r AmdRoot,
    kind: SnpSigningKey,
}

/// Find the trusted intermediate (ASK or ASVK) that issued and signed the VEK.
fn find_chain<'r>(
    vek: &X509Certificate<'_>,
    roots: &'r [AmdRoot],
    at: ASN1Time,
    crls: &[Vec<u8>],
) -> Result<ChainMatch<'r>, Error> {
    let mut issuer_known = false;
    for root in roots {
        let candidates = std::iter::once((&root.ask, SnpSigningKey::Vcek))
            .chain(root.asvk.as_ref().map(|a| (a, SnpSigningKey::Vlek)));
        for (der, kind) in candidates {
            let (_, inter) = X509Certificate::from_der(der).expect("trust roots parse");
            if !name_eq(inter.subject(), vek.issuer()) {
                continue;
            }
            issuer_known = true;
            if vek.verify_signature(Some(inter.public_key())).is_err() {
                continue;
            }
            let (_, ark) = X509Certificate::from_der(&root.ark).expect("trust roots parse");
            check_validity(&ark, at, "ARK")?;
            check_validity(&inter, at, "ASK/ASVK")?;
            check_validity(vek, at, "VEK")?;
            check_crls(crls, &ark, &[&inter, vek], at)?;
            return Ok(ChainMatch { root, kind });
        }
    }
    let why = if issuer_known {
        "its issuer's key does not sign it"
    } else {
        "its issuer is not a trusted ASK/ASVK"
    };
    Err(Error::refused(
        Check::SnpVekChain,
        format!("VEK issued by `{}`: {why}", vek.issuer()),
    ))
}

/// Check the CRLs the ARK issued: signature, freshness, and that no chain certificate is on them.
/// CRLs of other issuers (Enarx's Keeps sent every product line's) do not concern this chain.
fn check_crls(
    crls: &[Vec<u8>],
    ark: &X509Certificate<'_>,
    chain: &[&X509Certificate<'_>],
    at: ASN1Time,
) -> Result<(), Error> {
    for der in crls {
        let (_, crl) = CertificateRevocationList::from_der(der)
            .map_err(|e| Error::refused(Check::CrlSignature, format!("CRL does not parse: {e}")))?;
        if !name_eq(crl.issuer(), ark.subject()) {
            tracing::debug!(issuer = %crl.issuer(), "ignoring a CRL from another issuer");
            continue;
        }
        crl.verify_signature(ark.public_key()).map_err(|e| {
            Error::refused(
                Check::CrlSignature,
                format!("CRL from `{}` is not signed by the ARK: {e}", crl.issuer()),
            )
        })?;
        match crl.next_update() {
            Some(next) if at <= next => {}
            Some(next) => {
                return Err(Error::refused(
                    Check::CrlExpired,
                    format!(
                        "CRL from `{}` was due for renewal at {next}, before {at}",
                        crl.issuer()
                    ),
                ));
            }
            None => {
                return Err(Error::refused(
                    Check::CrlExpired,
                    "CRL has no next-update time",
                ));
            }
        }
        // The ARK's CRL lists the certificates the ARK issued (ASK, ASVK).
        for revoked in crl.iter_revoked_certificates() {
            for cert in chain {
                if name_eq(cert.issuer(), crl.issuer()) && revoked.raw_serial() == cert.raw_serial()
                {
                    return Err(Error::refused(
                        Check::Revoked,
                        format!("`{}` is revoked", cert.subject()),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Verify SNP evidence; return its claims.
pub(crate) fn verify(ev: &SnpEvidence, cx: &SnpContext<'_>) -> Result<Claims, Error> {
    let report = parse_report(&ev.report)?;
    let raw = &ev.report[..];
    let version = u32::from_le_bytes(raw[0..4].try_into().expect("4 bytes"));
    if !matches!(version, 2 | 3 | 5) {
        return Err(Error::refused(
            Check::SnpReportVersion,
            format!("report version {version}; supported: 2, 3, 5"),
        ));
    }
    if report.sig_algo != 1 {
        return Err(Error::refused(
            Check::SnpSignatureAlgorithm,
            format!(
                "signature algorithm {} (1 = ECDSA P-384 SHA-384)",
                report.sig_algo
            ),
        ));
    }
    let vek_der = ev.vek.as_deref().ok_or_else(|| {
        Error::refused(
            Check::SnpVekMissing,
            "no VCEK/VLEK supplied with the report",
        )
    })?;
    der::certificate_algorithms_agree("VEK", vek_der)
        .map_err(|e| Error::refused(Check::SnpVekMalformed, e.to_string()))?;
    let (rest, vek) = X509Certificate::from_der(vek_der)
        .map_err(|e| Error::refused(Check::SnpVekMalformed, format!("VEK does not parse: {e}")))?;
    if !rest.is_empty() {
        return Err(Error::refused(
            Check::SnpVekMalformed,
            "trailing bytes after the VEK",
        ));
    }
    let chain = find_chain(&vek, cx.roots, cx.at, &ev.crls)?;
    let sec1 = &vek.public_key().subject_public_key.data;
    verify_report_signature(raw, sec1)?;

    let turin = chain.root.turin_tcb;
    let reported = tcb_at(raw, REPORTED_TCB_OFFSET, turin);
    let certified = vek_tcb(&vek)?;
    let fmc_ok = !turin || certified.fmc == reported.fmc;
    if certified.bootloader != reported.bootloader
        || certified.tee != reported.tee
        || certified.snp != reported.snp
        || certified.microcode != reported.microcode
        || !fmc_ok
    {
        return Err(Error::refused(
            Check::SnpTcbMismatch,
            format!("VEK certifies TCB {certified:?}, the report says {reported:?}"),
        ));
    }
    if chain.kind == SnpSigningKey::Vcek {
        let hwid = ext_value(&vek, OID_HWID)
            .ok_or_else(|| Error::refused(Check::SnpVekMalformed, "VCEK has no hwID extension"))?;
        // Milan/Genoa VCEKs carry the raw 64-byte chip ID; Turin's carry 8 bytes, and may wrap
        // them in an OCTET STRING.
        let hwid = match der::read_only("hwID", der::TAG_OCTET_STRING, hwid) {
            Ok(tlv) if hwid.len() != 64 => tlv.value,
            _ => hwid,
        };
        let chip = &report.chip_id;
        let same = !hwid.is_empty()
            && hwid.len() <= chip.len()
            && chip[..hwid.len()] == *hwid
            && chip[hwid.len()..].iter().all(|b| *b == 0);
        if !same {
            return Err(Error::refused(
                Check::SnpChipIdMismatch,
                format!(
                    "VCEK hwID {} differs from the report's chip_id {}",
                    hex::encode(hwid),
                    hex::encode(chip)
                ),
            ));
        }
    }
    let policy: u64 = report.policy.0;
    let debug = policy & POLICY_DEBUG != 0;
    if debug && !cx.allow_debug {
        return Err(Error::refused(
            Check::Debug,
            format!("guest policy 0x{policy:x} allows debugging (bit 19)"),
        ));
    }
    let snp = SnpClaims {
        report_version: version,
        product: chain.root.product.clone(),
        signing_key: chain.kind,
        guest_svn: report.guest_svn,
        policy,
        policy_abi_major: ((policy >> 8) & 0xff) as u8,
        policy_abi_minor: (policy & 0xff) as u8,
        policy_smt_allowed: policy & POLICY_SMT != 0,
        vmpl: report.vmpl,
        reported_tcb: reported,
        current_tcb: tcb_at(raw, CURRENT_TCB_OFFSET, turin),
        committed_tcb: tcb_at(raw, COMMITTED_TCB_OFFSET, turin),
        launch_tcb: tcb_at(raw, LAUNCH_TCB_OFFSET, turin),
        platform_info: report.plat_info.0,
        chip_id: hex::encode(report.chip_id),
        host_data: hex::encode(report.host_data),
        id_key_digest: hex::encode(report.id_key_digest),
        author_key_digest: hex::encode(report.author_key_digest),
        family_id: hex::encode(report.family_id),
        image_id: hex::encode(report.image_id),
        report_id: hex::encode(report.report_id),
        report_id_ma: hex::encode(report.report_id_ma),
    };
    Ok(Claims {
        platform: Platform::Snp,
        attested: true,
        trust_root: chain.root.label.clone(),
        test_only_root: chain.root.test_only,
        report_data: hex::encode(report.report_data),
        measurement: Some(hex::encode(report.measurement)),
        debug,
        migration_agent: policy & POLICY_MIGRATE_MA != 0,
        tcb_status: None,
        advisories: Vec::new(),
        snp: Some(snp),
        tdx: None,
        sgx: None,
    })
}

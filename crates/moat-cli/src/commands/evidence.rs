//! `moat evidence verify`: verify an evidence file, a raw SNP report or DCAP quote, or a CSR
//! carrying evidence (Moat's or Enarx's format, DER or PEM), offline, and print the claims or
//! exactly which check failed. Exit codes: 0 verified, 1 refused (the check is named),
//! 2 unreadable input.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use moat_attest::{Claims, Collateral, Evidence, Platform, QuoteEvidence, SnpEvidence, Verifier};

use crate::exit;

/// Largest input file read.
const MAX_INPUT: u64 = 2 * 1024 * 1024;

#[derive(clap::Subcommand)]
pub enum EvidenceCommand {
    /// Verify evidence or a CSR offline and print its claims (exit 0), or the failed check
    /// (exit 1). Input that cannot be read at all exits 2.
    Verify(VerifyArgs),
}

#[derive(clap::Args)]
pub struct VerifyArgs {
    /// Evidence file (Moat evidence JSON), raw SNP report (binary or hex), raw TDX/SGX quote,
    /// or a CSR (DER or PEM); `-` reads standard input.
    pub file: PathBuf,
    /// How to read FILE: auto-detect, or force a raw report/quote of this platform.
    #[arg(long, value_parser = ["auto", "snp", "tdx", "sgx", "nil"], default_value = "auto")]
    pub platform: String,
    /// Verify as of this time (RFC 3339, e.g. 2025-07-01T00:00:00Z) instead of now: certificate,
    /// CRL and collateral validity are judged at it.
    #[arg(long, env = "MOAT_VERIFY_AT")]
    pub at: Option<String>,
    /// DCAP collateral JSON for TDX/SGX quotes (repeatable).
    #[arg(long, env = "MOAT_COLLATERAL", value_delimiter = ',')]
    pub collateral: Vec<PathBuf>,
    /// VCEK/VLEK certificate (DER or PEM) for a raw SNP report that does not carry one.
    #[arg(long)]
    pub vek: Option<PathBuf>,
    /// CRL (DER) to check the SNP chain against (repeatable).
    #[arg(long)]
    pub crl: Vec<PathBuf>,
    /// Accept guests that allow debugging (the claims still say so).
    #[arg(long)]
    pub allow_debug: bool,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(cmd: EvidenceCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        EvidenceCommand::Verify(args) => verify(args),
    }
}

/// Input that cannot be read: exit code 2.
fn unreadable(err: anyhow::Error) -> anyhow::Error {
    err.context(exit::ExitWith(exit::BAD_INPUT))
}

fn read_input(path: &PathBuf) -> anyhow::Result<Vec<u8>> {
    use std::io::Read;
    let mut buf = Vec::new();
    if path.as_os_str() == "-" {
        std::io::stdin()
            .take(MAX_INPUT + 1)
            .read_to_end(&mut buf)
            .context("reading standard input")?;
    } else {
        std::fs::File::open(path)
            .with_context(|| format!("opening {}", path.display()))?
            .take(MAX_INPUT + 1)
            .read_to_end(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
    }
    if buf.len() as u64 > MAX_INPUT {
        bail!("{} is larger than {MAX_INPUT} bytes", path.display());
    }
    Ok(buf)
}

/// What the input turned out to be.
enum Input {
    Csr(Vec<u8>),
    Evidence(Evidence, Option<Vec<u8>>),
}

fn looks_like_hex(bytes: &[u8]) -> bool {
    !bytes.is_empty()
        && bytes
            .iter()
            .all(|b| b.is_ascii_hexdigit() || b.is_ascii_whitespace())
}

fn classify(
    bytes: Vec<u8>,
    platform: &str,
    vek: Option<Vec<u8>>,
    crls: Vec<Vec<u8>>,
) -> anyhow::Result<Input> {
    let trimmed = bytes.trim_ascii_start();
    let snp = |report: Vec<u8>| {
        Input::Evidence(
            Evidence::Snp(SnpEvidence {
                report,
                vek: vek.clone(),
                crls: crls.clone(),
            }),
            None,
        )
    };
    match platform {
        "snp" => {
            let report = if looks_like_hex(&bytes) {
                hex::decode(
                    bytes
                        .iter()
                        .filter(|b| !b.is_ascii_whitespace())
                        .copied()
                        .collect::<Vec<u8>>(),
                )?
            } else {
                bytes
            };
            return Ok(snp(report));
        }
        "tdx" => {
            return Ok(Input::Evidence(
                Evidence::Tdx(QuoteEvidence { quote: bytes }),
                None,
            ));
        }
        "sgx" => {
            return Ok(Input::Evidence(
                Evidence::Sgx(QuoteEvidence { quote: bytes }),
                None,
            ));
        }
        _ => {}
    }
    if trimmed.starts_with(b"-----BEGIN") {
        return Ok(Input::Csr(bytes));
    }
    if trimmed.starts_with(b"{") {
        let (evidence, nonce) = Evidence::from_cmw_json(trimmed)?;
        if platform == "nil" && evidence.platform() != Platform::Nil {
            bail!(
                "--platform nil, but the file holds {} evidence",
                evidence.platform()
            );
        }
        let evidence = match evidence {
            Evidence::Snp(mut s) => {
                if s.vek.is_none() {
                    s.vek = vek;
                }
                s.crls.extend(crls);
                Evidence::Snp(s)
            }
            other => other,
        };
        return Ok(Input::Evidence(evidence, nonce));
    }
    if platform == "nil" {
        bail!("nil evidence is a Moat evidence file (JSON)");
    }
    // Hex text first: its ASCII digits could pass for a DER tag.
    if looks_like_hex(&bytes) {
        let decoded = hex::decode(
            bytes
                .iter()
                .filter(|b| !b.is_ascii_whitespace())
                .copied()
                .collect::<Vec<u8>>(),
        )?;
        return classify(decoded, "auto", vek, crls);
    }
    if bytes.first() == Some(&0x30) {
        return Ok(Input::Csr(bytes));
    }
    if bytes.len() == moat_attest::evidence::SNP_REPORT_LEN {
        return Ok(snp(bytes));
    }
    // A DCAP quote: version (u16) then attestation key type (u16) then TEE type (u32).
    if bytes.len() > 8 {
        let version = u16::from_le_bytes([bytes[0], bytes[1]]);
        let tee = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
        match (version, tee) {
            (4 | 5, 0x81) => {
                return Ok(Input::Evidence(
                    Evidence::Tdx(QuoteEvidence { quote: bytes }),
                    None,
                ));
            }
            (3, 0) => {
                return Ok(Input::Evidence(
                    Evidence::Sgx(QuoteEvidence { quote: bytes }),
                    None,
                ));
            }
            _ => {}
        }
    }
    bail!("not a CSR, Moat evidence file, SNP report or DCAP quote (try --platform)")
}

/// Parse `YYYY-MM-DD[THH:MM:SS[.fff]](Z|±HH:MM)`.
pub fn parse_rfc3339(s: &str) -> anyhow::Result<SystemTime> {
    let bad = || anyhow::anyhow!("`{s}` is not an RFC 3339 time (e.g. 2025-07-01T00:00:00Z)");
    let num = |t: &str| t.parse::<i64>().map_err(|_| bad());
    let (date, rest) = s.split_at(s.find(['T', 't', ' ']).unwrap_or(s.len()));
    let d: Vec<&str> = date.split('-').collect();
    let [y, m, day] = d.as_slice() else {
        return Err(bad());
    };
    let (y, m, day) = (num(y)?, num(m)?, num(day)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return Err(bad());
    }
    let mut secs_of_day = 0i64;
    let mut offset = 0i64;
    if !rest.is_empty() {
        let rest = &rest[1..];
        let (time, zone) = match rest.find(['Z', 'z', '+', '-']) {
            Some(i) => rest.split_at(i),
            None => return Err(bad()),
        };
        let time = time.split('.').next().unwrap_or(time);
        let t: Vec<&str> = time.split(':').collect();
        let [h, mi, se] = t.as_slice() else {
            return Err(bad());
        };
        let (h, mi, se) = (num(h)?, num(mi)?, num(se)?);
        if h > 23 || mi > 59 || se > 60 {
            return Err(bad());
        }
        secs_of_day = h * 3600 + mi * 60 + se;
        if zone != "Z" && zone != "z" {
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let z: Vec<&str> = zone[1..].split(':').collect();
            let [zh, zm] = z.as_slice() else {
                return Err(bad());
            };
            offset = sign * (num(zh)? * 3600 + num(zm)? * 60);
        }
    }
    // Days from civil date (proleptic Gregorian).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = if y2 >= 0 { y2 } else { y2 - 399 } / 400;
    let yoe = y2 - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + day - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    let total = days * 86_400 + secs_of_day - offset;
    if total < 0 {
        return Err(bad());
    }
    Ok(UNIX_EPOCH + Duration::from_secs(total as u64))
}

fn read_der_or_pem(path: &PathBuf) -> anyhow::Result<Vec<u8>> {
    let bytes = read_input(path)?;
    if bytes.trim_ascii_start().starts_with(b"-----BEGIN") {
        let (_, pem) = x509_parser::pem::parse_x509_pem(bytes.trim_ascii_start())
            .map_err(|e| anyhow::anyhow!("{}: bad PEM: {e}", path.display()))?;
        return Ok(pem.contents);
    }
    Ok(bytes)
}

fn verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let mut verifier = Verifier::new().allow_debug(args.allow_debug);
    if let Some(at) = &args.at {
        verifier = verifier.at(parse_rfc3339(at).map_err(unreadable)?);
    }
    for path in &args.collateral {
        let json = read_input(path).map_err(unreadable)?;
        let c = Collateral::from_json(&json)
            .with_context(|| format!("collateral {}", path.display()))
            .map_err(unreadable)?;
        verifier = verifier.with_collateral(c);
    }
    let vek = match &args.vek {
        Some(p) => Some(read_der_or_pem(p).map_err(unreadable)?),
        None => None,
    };
    let crls = args
        .crl
        .iter()
        .map(read_der_or_pem)
        .collect::<anyhow::Result<Vec<_>>>()
        .map_err(unreadable)?;
    let bytes = read_input(&args.file).map_err(unreadable)?;
    let input = classify(bytes, &args.platform, vek, crls).map_err(unreadable)?;

    let (kind, outcome) = match input {
        Input::Csr(der) => {
            let r = verifier.verify_csr(&der).map(|v| {
                let format = match v.csr.format {
                    moat_attest::csr::CsrFormat::Moat => "csr (moat)",
                    moat_attest::csr::CsrFormat::Enarx => "csr (enarx)",
                };
                (
                    format,
                    v.evidence.claims,
                    Some(v.evidence.key_binding),
                    v.evidence.nonce,
                    v.csr.uris,
                )
            });
            ("csr", r)
        }
        Input::Evidence(evidence, nonce) => {
            let r = verifier
                .verify_evidence(&evidence)
                .map(|claims| ("evidence", claims, None, nonce.map(hex::encode), Vec::new()));
            ("evidence", r)
        }
    };
    match outcome {
        Ok((format, claims, binding, nonce, uris)) => {
            if args.json {
                let out = serde_json::json!({
                    "verified": true,
                    "input": format,
                    "key_binding": binding,
                    "nonce": nonce,
                    "requested_uris": uris,
                    "claims": claims,
                });
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                print_claims(format, &claims, binding, nonce.as_deref(), &uris);
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(err) if err.check().is_some() => {
            let check = err.check().expect("checked above");
            if args.json {
                let out = serde_json::json!({
                    "verified": false,
                    "input": kind,
                    "check": check.as_str(),
                    "message": err.to_string(),
                });
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                eprintln!("refused: {err}");
            }
            Ok(ExitCode::from(exit::FAILURE))
        }
        Err(err) => Err(unreadable(anyhow::Error::new(err))),
    }
}

fn print_claims(
    format: &str,
    c: &Claims,
    binding: Option<moat_attest::KeyBinding>,
    nonce: Option<&str>,
    uris: &[String],
) {
    if c.attested {
        println!("verified {format}: {} evidence, attested", c.platform);
    } else {
        println!(
            "verified {format}: {} evidence, structurally valid, NOT attested",
            c.platform
        );
    }
    let line = |k: &str, v: &str| println!("  {k:<18} {v}");
    line("trust root", &c.trust_root);
    if c.test_only_root {
        line("WARNING", "test-only root of trust");
    }
    if let Some(b) = binding {
        line("key binding", &format!("{b:?}").to_lowercase());
    }
    if let Some(n) = nonce {
        line("nonce", n);
    }
    for u in uris {
        line("requested URI", u);
    }
    if let Some(m) = &c.measurement {
        line("measurement", m);
    }
    line("debug", &c.debug.to_string());
    line("migration agent", &c.migration_agent.to_string());
    if let Some(s) = &c.tcb_status {
        line("TCB status", s);
    }
    if !c.advisories.is_empty() {
        line("advisories", &c.advisories.join(", "));
    }
    if let Some(s) = &c.snp {
        line("product", &format!("{} ({:?})", s.product, s.signing_key));
        line("report version", &s.report_version.to_string());
        line("guest policy", &format!("0x{:x}", s.policy));
        line("VMPL", &s.vmpl.to_string());
        let t = s.reported_tcb;
        line(
            "reported TCB",
            &format!(
                "bootloader {} tee {} snp {} microcode {}{}",
                t.bootloader,
                t.tee,
                t.snp,
                t.microcode,
                t.fmc.map(|f| format!(" fmc {f}")).unwrap_or_default()
            ),
        );
        line("chip id", &s.chip_id);
        line("host data", &s.host_data);
    }
    if let Some(t) = &c.tdx {
        line("MRTD", &t.mrtd);
        for (i, r) in t.rtmrs.iter().enumerate() {
            line(&format!("RTMR{i}"), r);
        }
        line("TD attributes", &t.td_attributes);
    }
    if let Some(s) = &c.sgx {
        line("MRSIGNER", &s.mr_signer);
        line("ISV prod/svn", &format!("{}/{}", s.isv_prod_id, s.isv_svn));
    }
    line("report data", &c.report_data);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times() {
        let t = |s| {
            parse_rfc3339(s)
                .unwrap()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs()
        };
        assert_eq!(t("1970-01-01T00:00:00Z"), 0);
        assert_eq!(t("2025-07-01T00:00:00Z"), 1_751_328_000);
        assert_eq!(t("2025-07-01T02:00:00+02:00"), 1_751_328_000);
        assert_eq!(t("2025-07-01T00:00:00.5Z"), 1_751_328_000);
        assert_eq!(t("2025-07-01"), 1_751_328_000);
        for bad in [
            "",
            "2025",
            "2025-13-01",
            "2025-07-01T25:00:00Z",
            "2025-07-01T00:00:00",
            "x",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad}");
        }
    }
}

//! `moat verify https://HOST:PORT --ca STEWARD_CA.pem [--expect-...]`: the relying party's check.
//! Connects over TLS, validates the Keep's chain up to the given Steward CA, reads the attested
//! claims from the certificate, prints them, and exits 1 naming every failed expectation (or
//! the failure to connect or validate). An unattested (`nil`) Keep fails unless
//! `--allow-unattested` is given.

use std::io::Write;
use std::net::{IpAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use moat_attest::Platform;
use moat_client::steward_verify::{Expectations, KeepIdentity, KeepServerVerifier, steward_roots};
use rustls::pki_types::ServerName;

use crate::exit::{ExitWith, FAILURE};

#[derive(clap::Args)]
pub struct VerifyArgs {
    /// The Keep's TLS endpoint, `https://HOST:PORT`.
    url: String,
    /// The Steward CA certificate (PEM) to validate the Keep's chain against.
    #[arg(long, env = "MOAT_VERIFY_CA")]
    ca: PathBuf,
    /// Require this platform (snp, tdx, sgx, nil).
    #[arg(long)]
    expect_platform: Option<Platform>,
    /// Require this workload name (the certificate's URI SAN), e.g. oci://host:5000/demo/app.
    #[arg(long)]
    expect_workload: Option<String>,
    /// Require this measurement (hex: SNP launch measurement, TDX MRTD).
    #[arg(long)]
    expect_measurement: Option<String>,
    /// Accept a Keep whose certificate says it is not attested (nil).
    #[arg(long)]
    allow_unattested: bool,
    /// Accept evidence that chained to a test-only root.
    #[arg(long, env = "MOAT_VERIFY_ALLOW_TEST_ROOT")]
    allow_test_root: bool,
    /// Connect and handshake deadline, seconds.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub fn run(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let outcome = check(&args);
    match outcome {
        Ok((id, mismatches)) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({
                        "ok": mismatches.is_empty(),
                        "workload": id.workload,
                        "not_after": id.not_after,
                        "claims": id.result,
                        "mismatches": mismatches.iter().map(|m| serde_json::json!({
                            "check": m.check(),
                            "message": m.to_string(),
                        })).collect::<Vec<_>>(),
                    })
                );
            } else {
                print_identity(&id);
                for m in &mismatches {
                    eprintln!("mismatch ({}): {m}", m.check());
                }
            }
            if mismatches.is_empty() {
                if !args.json {
                    println!("verified");
                }
                Ok(ExitCode::SUCCESS)
            } else {
                Ok(ExitCode::from(FAILURE))
            }
        }
        Err(e) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({"ok": false, "error": format!("{e:#}")})
                );
                Ok(ExitCode::from(FAILURE))
            } else {
                Err(e.context(ExitWith(FAILURE)))
            }
        }
    }
}

fn print_identity(id: &KeepIdentity) {
    let r = &id.result;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "workload:     {}",
        id.workload.as_deref().unwrap_or("(none)")
    );
    let _ = writeln!(out, "platform:     {}", r.platform);
    let _ = writeln!(
        out,
        "attested:     {}{}",
        r.attested,
        if r.attested { "" } else { " (UNATTESTED)" }
    );
    let status = match r.status {
        moat_attest::result::Status::Affirming => "affirming",
        moat_attest::result::Status::Warning => "warning (accepted with reservations)",
        moat_attest::result::Status::None => "none (nothing attested)",
    };
    let _ = writeln!(out, "status:       {status}");
    if let Some(m) = &r.measurement {
        let _ = writeln!(out, "measurement:  {m}");
    }
    if let Some(t) = &r.tcb {
        let _ = writeln!(out, "tcb:          {t}");
    }
    if let Some(t) = &r.tcb_status {
        let _ = writeln!(out, "tcb_status:   {t}");
    }
    let _ = writeln!(out, "debug:        {}", r.debug);
    if r.test_only_root {
        let _ = writeln!(out, "trust root:   TEST-ONLY");
    }
    let _ = writeln!(out, "policy:       {}", r.policy);
    let _ = writeln!(out, "verifier:     {}", r.verifier);
    let expires = time::OffsetDateTime::from_unix_timestamp(id.not_after)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| id.not_after.to_string());
    let _ = writeln!(out, "not_after:    {expires}");
}

fn check(
    args: &VerifyArgs,
) -> anyhow::Result<(KeepIdentity, Vec<moat_client::steward_verify::Mismatch>)> {
    let (host, port) = parse_url(&args.url)?;
    let ca = std::fs::read(&args.ca).with_context(|| format!("reading {}", args.ca.display()))?;
    let roots = steward_roots(&ca)?;
    let config = Arc::new(KeepServerVerifier::client_config(roots));
    let timeout = Duration::from_secs(args.timeout.max(1));

    let addr = (host.as_str(), port)
        .to_socket_addrs()
        .with_context(|| format!("resolving {host}"))?
        .next()
        .ok_or_else(|| anyhow!("{host} has no address"))?;
    let mut tcp = TcpStream::connect_timeout(&addr, timeout)
        .with_context(|| format!("connecting to {addr}"))?;
    tcp.set_read_timeout(Some(timeout))?;
    tcp.set_write_timeout(Some(timeout))?;
    let name = match host.parse::<IpAddr>() {
        Ok(ip) => ServerName::IpAddress(ip.into()),
        Err(_) => ServerName::try_from(host.clone()).context("invalid host name")?,
    };
    let mut conn = rustls::ClientConnection::new(config, name).context("TLS setup")?;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp)
            .context("TLS handshake with the Keep (is its chain signed by this Steward CA?)")?;
    }
    let leaf = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or_else(|| anyhow!("the Keep sent no certificate"))?
        .clone();
    conn.send_close_notify();
    let _ = conn.complete_io(&mut tcp);

    let id = KeepIdentity::from_cert(&leaf).context("reading the Keep's certificate")?;
    let expect = Expectations {
        platform: args.expect_platform,
        workload: args.expect_workload.clone(),
        measurement: args.expect_measurement.clone(),
        allow_unattested: args.allow_unattested,
        allow_test_root: args.allow_test_root,
    };
    let mismatches = expect.check(&id);
    Ok((id, mismatches))
}

/// `https://HOST:PORT` → (host, port); IPv6 hosts in brackets.
fn parse_url(url: &str) -> anyhow::Result<(String, u16)> {
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| anyhow!("{url:?}: expected https://HOST:PORT"))?;
    let rest = rest.trim_end_matches('/');
    if rest.contains('/') {
        bail!("{url:?}: give only https://HOST:PORT");
    }
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (h, p) = v6
            .split_once("]:")
            .ok_or_else(|| anyhow!("{url:?}: expected https://[V6]:PORT"))?;
        (h.to_owned(), p)
    } else {
        let (h, p) = rest
            .rsplit_once(':')
            .map(|(h, p)| (h.to_owned(), p))
            .unwrap_or((rest.to_owned(), "443"));
        (h, p)
    };
    let port = port.parse().with_context(|| format!("{url:?}: bad port"))?;
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::parse_url;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("https://127.0.0.1:8443").unwrap(),
            ("127.0.0.1".into(), 8443)
        );
        assert_eq!(parse_url("https://[::1]:9/").unwrap(), ("::1".into(), 9));
        assert_eq!(parse_url("https://h").unwrap(), ("h".into(), 443));
        assert!(parse_url("http://h:1").is_err());
        assert!(parse_url("https://h:1/x").is_err());
        assert!(parse_url("https://h:x").is_err());
    }
}
